// Each calibration method on distributions whose answer is known.
#include <algorithm>
#include <cmath>
#include <random>

#include "calibrate.h"
#include "doctest/doctest.h"

using namespace mtan;
using host::Range;

namespace {

std::vector<float> Uniform(float lo, float hi, int n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(lo, hi);
  std::vector<float> v(n);
  for (float& x : v) x = u(rng);
  return v;
}

std::vector<float> Normal(int n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> g(0.0f, 1.0f);
  std::vector<float> v(n);
  for (float& x : v) x = g(rng);
  return v;
}

}  // namespace

TEST_CASE("method names parse and print") {
  host::CalibrationMethod m;
  for (const char* name : {"minmax", "percentile", "mse", "auto"}) {
    REQUIRE(host::ParseCalibrationMethod(name, &m));
    CHECK(std::string(host::CalibrationMethodName(m)) == name);
  }
  CHECK_FALSE(host::ParseCalibrationMethod("kl", &m));
}

TEST_CASE("minmax: the observed range, always including zero") {
  const auto v = Uniform(1.0f, 5.0f, 1000, 1);
  const Range r = host::RangeMinMax(v.data(), v.size());
  CHECK(r.min == 0.0f);
  CHECK(r.max == *std::max_element(v.begin(), v.end()));
  const std::vector<float> neg = {-3.0f, -1.0f, NAN, -2.0f};
  const Range rn = host::RangeMinMax(neg.data(), neg.size());
  CHECK(rn.min == -3.0f);
  CHECK(rn.max == 0.0f);
  const Range empty = host::RangeMinMax(nullptr, 0);
  CHECK(empty.min == 0.0f);
  CHECK(empty.max == 0.0f);
}

TEST_CASE("percentile: 99.99 of a uniform and of a normal distribution") {
  const int n = 1000000;
  const auto u = Uniform(-1.0f, 1.0f, n, 2);
  const Range ru = host::RangePercentile(u.data(), n);
  CHECK(ru.max == doctest::Approx(0.9998).epsilon(2e-4));
  CHECK(ru.min == doctest::Approx(-0.9998).epsilon(2e-4));
  const auto g = Normal(n, 3);
  const Range rg = host::RangePercentile(g.data(), n);
  // The 99.99th percentile of N(0, 1) is 3.719.
  CHECK(rg.max == doctest::Approx(3.719).epsilon(0.02));
  CHECK(rg.min == doctest::Approx(-3.719).epsilon(0.02));
  // Ten outliers at 1000 among a million values are clipped away...
  auto o = g;
  for (int i = 0; i < 10; ++i) o[i * 1000] = 1000.0f;
  CHECK(host::RangePercentile(o.data(), n).max < 5.0f);
  // ...and 99 keeps a narrower range.
  CHECK(host::RangePercentile(g.data(), n, 99.0).max == doctest::Approx(2.326).epsilon(0.02));
}

TEST_CASE("mse: minimises the quantization error, clipping only what is worth clipping") {
  const int n = 200000;
  // Uniform: nothing is worth clipping, the range stays (almost) full.
  const auto u = Uniform(-1.0f, 1.0f, n, 4);
  const Range ru = host::RangeMse(u.data(), n);
  CHECK(ru.max > 0.97f);
  CHECK(ru.min < -0.97f);
  // Normal: 8-bit MSE-optimal clipping of N(0, 1) lies between the 3-sigma
  // of a rough rule and the ~4.7-sigma tail of 200000 samples.
  const auto g = Normal(n, 5);
  const Range rg = host::RangeMse(g.data(), n);
  CHECK(rg.max > 2.5f);
  CHECK(rg.max < 4.5f);
  CHECK(rg.min < -2.5f);
  CHECK(rg.min > -4.5f);
  // Its error is no worse than minmax's, and within 2% of a dense scan's.
  const double e_mse = host::QuantizationMse(g.data(), n, rg);
  CHECK(e_mse <= host::QuantizationMse(g.data(), n, host::RangeMinMax(g.data(), n)));
  double best = 1e30;
  for (float c = 2.0f; c <= 6.0f; c += 0.01f) best = std::min(best, host::QuantizationMse(g.data(), n, {-c, c}));
  CHECK(e_mse <= best * 1.02);
}

TEST_CASE("mse: the clipping point of a lone outlier is where both errors balance") {
  // n values of N(0, 1) (min ~ -4.9) and one outlier at M = 200. Clipping at
  // h costs (M - h)^2; the rounding noise of the others is
  // n ((h + 4.9) / 255)^2 / 12. The sum is least at
  // h = (M - 4.9 c) / (1 + c), c = n / (255^2 * 12): 84.9 for n = 1e6.
  const int n = 1000000;
  auto g = Normal(n, 6);
  g[12345] = 200.0f;
  const Range r = host::RangeMse(g.data(), n);
  CHECK(r.max > 80.0f);
  CHECK(r.max < 90.0f);
  CHECK(host::QuantizationMse(g.data(), n, r) <
        0.5 * host::QuantizationMse(g.data(), n, host::RangeMinMax(g.data(), n)));
  // Among only 1000 values the outlier is worth keeping almost whole: MSE
  // is not a percentile.
  std::vector<float> few(g.begin() + 12000, g.begin() + 13000);
  const Range rf = host::RangeMse(few.data(), few.size());
  CHECK(rf.max > 190.0f);
}

TEST_CASE("mse: one-sided ReLU outputs with many exact zeros") {
  // Half zeros, half |N(0, 1)|: zeros are exact and cost nothing, so they
  // must not pull the range in.
  auto g = Normal(100000, 7);
  for (size_t i = 0; i < g.size(); ++i) g[i] = i % 2 ? std::fabs(g[i]) : 0.0f;
  const Range r = host::RangeMse(g.data(), g.size());
  CHECK(r.min == 0.0f);
  CHECK(r.max > 2.5f);
  CHECK(r.max < 4.7f);
}

TEST_CASE("degenerate tensors: constant, empty") {
  const std::vector<float> c(100, 2.5f);
  for (auto m : {host::CalibrationMethod::kMinMax, host::CalibrationMethod::kPercentile,
                 host::CalibrationMethod::kMse}) {
    const auto r = host::CalibrateRanges({c, {}}, m);
    REQUIRE(r.size() == 2);
    CHECK(r[0].min == 0.0f);
    CHECK(r[0].max == doctest::Approx(2.5f).epsilon(0.01));
    CHECK(r[1].min == 0.0f);
    CHECK(r[1].max == 0.0f);
    float s;
    int32_t zp;
    host::ChooseAsymmetric(r[0], &s, &zp);
    CHECK(host::QuantizationMse(c.data(), c.size(), r[0]) < s * s);
  }
  CHECK_THROWS(host::CalibrateRanges({c}, host::CalibrationMethod::kAuto));
}
