#include "loss_weights.h"

#include <cmath>

#include <doctest/doctest.h>

using namespace mtan::trainer;
namespace fb = mtan::fb;

TEST_SUITE("loss_weights") {

TEST_CASE("DWA is 1 for the first two epochs") {
  CHECK(DwaWeights({}, 3) == std::vector<double>{1, 1, 1});
  CHECK(DwaWeights({{1.0, 2.0, 3.0}}, 3) == std::vector<double>{1, 1, 1});
}

TEST_CASE("DWA on known values") {
  // w = (0.5, 1.0); T = 2: lambda = 2 softmax(0.25, 0.5).
  const auto l = DwaWeights({{9, 9}, {2.0, 1.0}, {1.0, 1.0}}, 2, 2.0);
  const double e1 = std::exp(0.25), e2 = std::exp(0.5);
  CHECK(l[0] == doctest::Approx(2 * e1 / (e1 + e2)));
  CHECK(l[1] == doctest::Approx(2 * e2 / (e1 + e2)));
  CHECK(l[0] + l[1] == doctest::Approx(2.0));
  // Equal ratios give equal weights; the task whose loss fell least gets more.
  const auto eq = DwaWeights({{4, 2, 1}, {2, 1, 0.5}}, 3);
  for (double v : eq) CHECK(v == doctest::Approx(1.0));
  const auto un = DwaWeights({{1, 1}, {0.5, 0.9}}, 2);
  CHECK(un[1] > un[0]);
}

TEST_CASE("uncertainty weighting on known values") {
  CHECK(UncertaintyTerm(fb::TaskKind::BINARY, 2.0, 0.0) == doctest::Approx(2.0));
  CHECK(UncertaintyTerm(fb::TaskKind::REGRESSION, 2.0, 0.0) == doctest::Approx(1.0));
  // s = log 2: classification exp(-s) L + s/2 = L/2 + log(2)/2.
  CHECK(UncertaintyTerm(fb::TaskKind::MULTICLASS, 3.0, std::log(2.0)) ==
        doctest::Approx(1.5 + 0.5 * std::log(2.0)));
  // The optimum in s is exp(-s) = 0.5 / (c L): s* = log(2 c L).
  for (fb::TaskKind type : {fb::TaskKind::BINARY, fb::TaskKind::REGRESSION}) {
    const double L = 0.37, c = UncertaintyCoefficient(type);
    const double s_opt = std::log(2 * c * L);
    CHECK(UncertaintyTermGrad(type, L, s_opt) == doctest::Approx(0.0).epsilon(1e-12));
    CHECK(UncertaintyTerm(type, L, s_opt) < UncertaintyTerm(type, L, s_opt + 0.1));
    CHECK(UncertaintyTerm(type, L, s_opt) < UncertaintyTerm(type, L, s_opt - 0.1));
  }
}

TEST_CASE("names") {
  LossWeighting w;
  CHECK(ParseLossWeighting("dwa", &w));
  CHECK(w == LossWeighting::kDwa);
  CHECK_FALSE(ParseLossWeighting("gradnorm", &w));
  CHECK(std::string(LossWeightingName(LossWeighting::kUncertainty)) == "uncertainty");
}

}  // TEST_SUITE
