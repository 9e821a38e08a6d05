#include "metrics.h"

#include <cmath>
#include <vector>

#include <doctest/doctest.h>

using namespace mtan::host;
namespace fb = mtan::fb;

TEST_SUITE("metrics") {

TEST_CASE("AUC on hand-computed cases") {
  // Pairs (pos, neg): (0.35, 0.1) win, (0.35, 0.4) loss, (0.8, *) two wins: 3/4.
  const std::vector<float> s = {0.1f, 0.4f, 0.35f, 0.8f}, y = {0, 0, 1, 1};
  CHECK(Auc(s.data(), y.data(), 4) == doctest::Approx(0.75));
  // Perfect and reversed.
  const std::vector<float> s2 = {0.1f, 0.2f, 0.3f, 0.4f};
  const std::vector<float> y2 = {0, 0, 1, 1}, y3 = {1, 1, 0, 0};
  CHECK(Auc(s2.data(), y2.data(), 4) == doctest::Approx(1.0));
  CHECK(Auc(s2.data(), y3.data(), 4) == doctest::Approx(0.0));
}

TEST_CASE("AUC counts ties as one half (average rank)") {
  // Positive 0.5 ties with negative 0.5: pairs 1 + 0.5 + 1 + 1 = 3.5 of 4.
  const std::vector<float> s = {0.1f, 0.5f, 0.5f, 0.9f}, y = {0, 0, 1, 1};
  CHECK(Auc(s.data(), y.data(), 4) == doctest::Approx(0.875));
  // All scores equal: 0.5 whatever the labels.
  const std::vector<float> c = {0.3f, 0.3f, 0.3f, 0.3f, 0.3f}, yc = {1, 0, 0, 1, 0};
  CHECK(Auc(c.data(), yc.data(), 5) == doctest::Approx(0.5));
  // Ties within the positives only do not matter.
  const std::vector<float> s3 = {0.1f, 0.2f, 0.7f, 0.7f}, y4 = {0, 0, 1, 1};
  CHECK(Auc(s3.data(), y4.data(), 4) == doctest::Approx(1.0));
}

TEST_CASE("AUC with one class is NaN") {
  const std::vector<float> s = {0.1f, 0.2f}, y = {1, 1};
  CHECK(std::isnan(Auc(s.data(), y.data(), 2)));
  CHECK(std::isnan(Auc(s.data(), y.data(), 0)));
}

TEST_CASE("log loss") {
  const std::vector<float> p = {0.5f, 0.9f, 0.2f}, y = {1, 1, 0};
  const double want = (std::log(2.0) - std::log(0.9) - std::log(0.8)) / 3.0;
  CHECK(LogLoss(p.data(), y.data(), 3) == doctest::Approx(want).epsilon(1e-6));
  // Clipped, never infinite.
  const std::vector<float> p0 = {0.0f}, y1 = {1};
  CHECK(std::isfinite(LogLoss(p0.data(), y1.data(), 1)));
}

TEST_CASE("accuracy and macro-F1") {
  // 3 classes; predictions 0, 1, 1, 2, 0 for labels 0, 1, 2, 2, 1.
  const std::vector<float> probs = {
      0.7f, 0.2f, 0.1f,  //
      0.1f, 0.8f, 0.1f,  //
      0.2f, 0.5f, 0.3f,  //
      0.1f, 0.1f, 0.8f,  //
      0.6f, 0.3f, 0.1f};
  const std::vector<float> y = {0, 1, 2, 2, 1};
  CHECK(Accuracy(probs.data(), y.data(), 5, 3) == doctest::Approx(0.6));
  // F1: class 0: tp1 fp1 fn0 -> 2/3; class 1: tp1 fp1 fn1 -> 1/2; class 2: tp1 fp0 fn1 -> 2/3.
  CHECK(MacroF1(probs.data(), y.data(), 5, 3) == doctest::Approx((2.0 / 3 + 0.5 + 2.0 / 3) / 3));
}

TEST_CASE("RMSE and NMSE") {
  const std::vector<float> y = {1, 2, 3, 4};
  const std::vector<float> mean = {2.5f, 2.5f, 2.5f, 2.5f};
  CHECK(Nmse(mean.data(), y.data(), 4) == doctest::Approx(1.0));
  CHECK(Nmse(y.data(), y.data(), 4) == doctest::Approx(0.0));
  const std::vector<float> off = {2, 3, 4, 5};
  CHECK(Rmse(off.data(), y.data(), 4) == doctest::Approx(1.0));
  CHECK(Nmse(off.data(), y.data(), 4) == doctest::Approx(1.0 / 1.25));
  const std::vector<float> constant = {3, 3};
  CHECK(std::isnan(Nmse(constant.data(), constant.data(), 2)));
}

TEST_CASE("EvaluateTask skips unobserved rows") {
  TaskSpec t;
  t.type = fb::TaskKind::REGRESSION;
  TaskLabels lab;
  lab.value = {1, 0, 3};
  lab.observed = {1, 0, 1};
  lab.observed_rows = 2;
  const std::vector<float> pred = {1, 100, 3};
  auto m = EvaluateTask(t, pred.data(), lab);
  REQUIRE(m.size() == 2);
  CHECK(m[0].name == "rmse");
  CHECK(m[0].value == doctest::Approx(0.0));
  CHECK(std::string(PrimaryMetricName(fb::TaskKind::BINARY)) == "auc");
  CHECK_FALSE(PrimaryHigherIsBetter(fb::TaskKind::REGRESSION));
}

}  // TEST_SUITE
