// The int8 arithmetic of tools/common/quantize.h: weight and bias
// quantization, degenerate ranges, and the golden-case tolerance.
#include <cmath>
#include <limits>
#include <random>

#include "doctest/doctest.h"
#include "quantize.h"
#include "test_models.h"

using namespace mtan;

TEST_CASE("per-channel weight scales are each row's max |w| / 127") {
  // 3 output channels of very different magnitudes.
  const std::vector<float> w = {0.5f, -1.0f, 0.25f,     //
                                 0.01f, 0.002f, -0.004f,  //
                                 100.0f, -50.0f, 25.0f};
  std::vector<int8_t> q;
  std::vector<float> s;
  host::QuantizeWeightsPerChannel(w, 3, 3, &q, &s);
  REQUIRE(s.size() == 3);
  CHECK(s[0] == doctest::Approx(1.0f / 127));
  CHECK(s[1] == doctest::Approx(0.01f / 127));
  CHECK(s[2] == doctest::Approx(100.0f / 127));
  // The largest weight of each row maps to +-127 exactly; symmetric range.
  CHECK(q[1] == -127);
  CHECK(q[3] == 127);
  CHECK(q[6] == 127);
  CHECK(q[7] == -64);  // -50 / (100/127) = -63.5, rounded to even
  for (size_t i = 0; i < w.size(); ++i) {
    CHECK(q[i] >= -127);
    CHECK(std::fabs(q[i] * s[i / 3] - w[i]) <= 0.5f * s[i / 3] + 1e-7f);
  }
}

TEST_CASE("a zero-range channel (all weights 0) gets scale 1 and zeros, no division by zero") {
  const std::vector<float> w = {0, 0, 0, 0, 1, -2, 0, 0};
  std::vector<int8_t> q;
  std::vector<float> s;
  host::QuantizeWeightsPerChannel(w, 2, 4, &q, &s);
  CHECK(s[0] == 1.0f);
  for (int i = 0; i < 4; ++i) CHECK(q[i] == 0);
  CHECK(std::isfinite(s[1]));
  CHECK(q[6] == 0);
  // Its bias still quantizes (at scale s_x * 1).
  const auto qb = host::QuantizeBias({0.5f, 0.0f}, 0.1f, s);
  CHECK(qb[0] == 5);
  CHECK(qb[1] == 0);
}

TEST_CASE("bias is int32 at s_x * s_w, rounded to nearest even and saturated") {
  const std::vector<float> ws = {0.5f, 0.25f, 1.0f, 1e-6f};
  // s_x * s_w = 0.05, 0.025, 0.1, 1e-7.
  const auto q = host::QuantizeBias({0.125f, -0.0625f, 0.25f, 1e6f}, 0.1f, ws);
  CHECK(q[0] == 2);    // 2.5 -> 2 (ties to even)
  CHECK(q[1] == -2);   // -2.5 -> -2
  CHECK(q[2] == 2);    // 2.5 -> 2
  CHECK(q[3] == std::numeric_limits<int32_t>::max());  // 1e13 saturates
  const auto r = host::QuantizeBias({0.13f, -0.14f}, 0.1f, {0.5f, 0.5f});
  CHECK(r[0] == 3);    // 2.6 -> 3
  CHECK(r[1] == -3);   // -2.8 -> -3
}

TEST_CASE("asymmetric activation parameters: range includes 0, constant and empty ranges are safe") {
  float s;
  int32_t zp;
  host::ChooseAsymmetric({-1.0f, 3.0f}, &s, &zp);
  CHECK(s == doctest::Approx(4.0f / 255));
  CHECK(zp == -128 + 64);  // 0 sits a quarter of the way up
  // A constant activation (min == max == c > 0): the range becomes [0, c].
  host::ChooseAsymmetric({2.0f, 2.0f}, &s, &zp);
  CHECK(s == doctest::Approx(2.0f / 255));
  CHECK(zp == -128);
  host::ChooseAsymmetric({-3.0f, -3.0f}, &s, &zp);
  CHECK(s == doctest::Approx(3.0f / 255));
  CHECK(zp == 127);
  // Constant zero, or nothing seen: a valid scale, not 0/0.
  host::ChooseAsymmetric({0.0f, 0.0f}, &s, &zp);
  CHECK(s == 1.0f);
  CHECK(zp == 0);
  host::ChooseAsymmetric({0.0f, std::numeric_limits<float>::infinity()}, &s, &zp);
  CHECK(std::isfinite(s));
}

TEST_CASE("a model with a constant activation quantizes, loads and reproduces it") {
  // Zero the first trunk layer's weights: its output is relu(b), the same
  // on every row.
  host::MtanWeights w = test::RandomMtan(5);
  for (float& v : w.trunks[0][0].w) v = 0.0f;
  for (size_t i = 0; i < w.trunks[0][0].b.size(); ++i) w.trunks[0][0].b[i] = 0.05f * (i % 5);
  fb::ModelT f = host::BuildFloatModel(w);
  const int n = 64;
  const auto rows = test::RandomRows(6, n);
  std::vector<std::vector<float>> values;
  std::string error;
  REQUIRE_MESSAGE(host::CollectActivations(f, rows, n, &values, &error), error);
  std::vector<host::Range> ranges(values.size());
  for (size_t t = 0; t < values.size(); ++t)
    for (float v : values[t]) ranges[t] = {std::min(ranges[t].min, v), std::max(ranges[t].max, v)};
  fb::ModelT q = host::QuantizeModel(f, ranges);
  test::Loaded qm(host::FinishModel(q, 64), 64, MTAN_BACKEND_REFERENCE);
  REQUIRE_MESSAGE(qm.status == MTAN_OK, mtan_last_error());
  test::Loaded fm(host::FinishModel(f, 64), 64, MTAN_BACKEND_REFERENCE);
  const auto a = fm.Run(rows, n, MTAN_ALL_TASKS), b = qm.Run(rows, n, MTAN_ALL_TASKS);
  // Every row sees the same trunk output, so the int8 outputs are all alike
  // and close to float.
  for (size_t i = 0; i < a.size(); ++i) CHECK(std::isfinite(b[i]));
  for (size_t r = 1; r < static_cast<size_t>(n); ++r)
    for (size_t k = 0; k < 6; ++k) CHECK(b[r * 6 + k] == b[k]);
  CHECK(std::fabs(a[0] - b[0]) < 0.02f);
}

TEST_CASE("an already-quantized model is refused") {
  fb::ModelT q = test::Int8Model(3);
  std::vector<host::Range> ranges(q.tensors.size());
  CHECK_THROWS_AS(host::QuantizeModel(q, ranges), std::invalid_argument);
}

TEST_CASE("golden tolerance: one LSB of each output's logit scale through its activation") {
  fb::ModelT q = test::Int8Model(9);
  // Logit scales of the three tasks (click, category, spend).
  const float s_click = host::TaskLogitScale(q, *q.tasks[0]);
  const float s_cat = host::TaskLogitScale(q, *q.tasks[1]);
  const float s_spend = host::TaskLogitScale(q, *q.tasks[2]);
  REQUIRE(s_click > 0);
  REQUIRE(s_cat > 0);
  REQUIRE(s_spend > 0);
  // A float model has no logit quantization: only float noise remains.
  fb::ModelT f = test::FloatModel(9);
  CHECK(host::TaskLogitScale(f, *f.tasks[0]) == 0.0f);
  {
    const float out[6] = {0.5f, 0.25f, 0.25f, 0.25f, 0.25f, 0.0f};
    CHECK(host::GoldenTolerance(f, out, 1) < 1e-4f);
  }
  // p = 0.5 with tiny other outputs: the sigmoid's steepest point, s / 4.
  const float out1[6] = {0.5f, 1, 0, 0, 0, 0.0f};
  const float tol1 = host::GoldenTolerance(q, out1, 1);
  CHECK(tol1 >= 0.25f * s_click * 0.99f);
  CHECK(tol1 <= std::max({0.26f * s_click, s_spend * 1.01f}) + 2e-5f);
  // A large regression output in label units dominates: (y + 1)(e^s - 1).
  const float out2[6] = {0.9f, 1, 0, 0, 0, 999.0f};
  CHECK(host::GoldenTolerance(q, out2, 1) ==
        doctest::Approx(1000.0 * std::expm1(s_spend) + 1e-5 * 999.0).epsilon(1e-4));
  // Not something huge: well under one percent of a probability's range for
  // a typical logit scale.
  CHECK(tol1 < 0.05f);
}
