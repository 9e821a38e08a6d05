// The int8 arithmetic of host/quantize.h: weight and bias
// quantization, degenerate ranges, and the golden-case tolerance.
#include <cmath>
#include <limits>
#include <random>

#include "doctest/doctest.h"
#include "calibrate.h"
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
  const auto qb = host::QuantizeBias({0.5f, 0.0f}, 0.1f, s, q);
  CHECK(qb[0] == 5);
  CHECK(qb[1] == 0);
}

TEST_CASE("bias is int32 at s_x * s_w, rounded to nearest even and saturated") {
  const std::vector<float> ws = {0.5f, 0.25f, 1.0f, 1e-6f, 1e-6f};
  // s_x * s_w = 0.05, 0.025, 0.1, 1e-7, 1e-7; [5][2] int8 weights.
  const std::vector<int8_t> w = {1, -1, 0, 0, 127, 127, 0, 0, -100, 27};
  const auto q = host::QuantizeBias({0.125f, -0.0625f, 0.25f, 1e6f, -1e6f}, 0.1f, ws, w);
  CHECK(q[0] == 2);    // 2.5 -> 2 (ties to even)
  CHECK(q[1] == -2);   // -2.5 -> -2
  CHECK(q[2] == 2);    // 2.5 -> 2
  // 1e13 saturates where the runtime's accumulator bound allows:
  // |bias| + 256 * sum |w| <= INT32_MAX.
  CHECK(q[3] == std::numeric_limits<int32_t>::max());
  CHECK(q[4] == -(std::numeric_limits<int32_t>::max() - 256 * 127));
  const auto r = host::QuantizeBias({0.13f, -0.14f}, 0.1f, {0.5f, 0.5f}, {0, 0});
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

TEST_CASE("an operator without a quantize rule is an error, not passed through") {
  fb::ModelT f = test::FloatModel(3);
  const std::vector<host::Range> ranges(f.tensors.size(), host::Range{-1.0f, 1.0f});
  CHECK_NOTHROW(host::QuantizeModel(f, ranges));
  // A value outside the schema's enum (a newer file, or a new opcode
  // without a rule), and DEQUANTIZE, which only int8 models have.
  for (fb::OpCode code : {static_cast<fb::OpCode>(200), fb::OpCode::DEQUANTIZE}) {
    CAPTURE(static_cast<int>(code));
    f.operators.back()->opcode = code;
    CHECK_THROWS_WITH_AS(host::QuantizeModel(f, ranges),
                         doctest::Contains("no quantize rule for operator"), std::invalid_argument);
  }
}

TEST_CASE("golden tolerances: one LSB of each output's logit scale through its activation, per output") {
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
    for (float t : host::GoldenTolerances(f, out, 1)) CHECK(t < 1e-4f);
  }
  // p = 0.5: the sigmoid's steepest point, s / 4.
  const float out1[6] = {0.5f, 1, 0, 0, 0, 0.0f};
  const std::vector<float> tol1 = host::GoldenTolerances(q, out1, 1);
  REQUIRE(tol1.size() == 6);
  CHECK(tol1[0] >= 0.25f * s_click * 0.99f);
  CHECK(tol1[0] <= 0.26f * s_click + 2e-5f);
  // A large regression output in label units: (y + 1)(e^s - 1) on its own
  // output only; the probabilities keep theirs (one tolerance for all let a
  // negated purchase head pass the self-test).
  const float out2[6] = {0.9f, 1, 0, 0, 0, 999.0f};
  const std::vector<float> tol2 = host::GoldenTolerances(q, out2, 1);
  CHECK(tol2[5] == doctest::Approx(1000.0 * std::expm1(s_spend) + 1e-5 * 999.0).epsilon(1e-4));
  CHECK(tol2[5] > 0.5f);
  for (int k = 0; k < 5; ++k) CHECK(tol2[k] < 0.05f);
  CHECK(tol2[0] < tol1[0]);  // p = 0.9 moves less than p = 0.5
  // Over rows: each output's largest.
  const float two_rows[12] = {0.5f, 1, 0, 0, 0, 0.0f, 0.9f, 1, 0, 0, 0, 999.0f};
  const std::vector<float> both = host::GoldenTolerances(q, two_rows, 2);
  CHECK(both[0] == tol1[0]);
  CHECK(both[5] == tol2[5]);
  // Not something huge: well under one percent of a probability's range for
  // a typical logit scale.
  CHECK(tol1[0] < 0.05f);
}

namespace {

std::vector<host::Range> MinMaxRanges(const fb::ModelT& f, const std::vector<float>& rows, int n) {
  std::vector<std::vector<float>> values;
  std::string error;
  REQUIRE_MESSAGE(host::CollectActivations(f, rows, n, &values, &error), error);
  return host::CalibrateRanges(values, host::CalibrationMethod::kMinMax);
}

}  // namespace

TEST_CASE("input equalization: an equivalent float model whose features each span [-1, 1]") {
  fb::ModelT f = test::FloatModel(13);
  const int n = 300;
  auto rows = test::RandomRows(14, n);
  rows[5 * 10] = 5000.0f;  // a price 125 std devs out
  std::vector<std::vector<float>> values;
  std::string error;
  REQUIRE(host::CollectActivations(f, rows, n, &values, &error));
  const int x = host::StandardizedInputTensor(f);
  REQUIRE(x >= 0);
  std::vector<host::Range> feature(10);
  for (int r = 0; r < n; ++r)
    for (int i = 0; i < 10; ++i) {
      const float v = values[x][r * 10 + i];
      feature[i] = {std::min(feature[i].min, v), std::max(feature[i].max, v)};
    }
  fb::ModelT e = host::BuildFloatModel(test::RandomMtan(13));
  std::vector<float> c, h;
  REQUIRE(host::EqualizeInputs(&e, feature, &c, &h));
  CHECK(h[0] > 50.0f);   // the price feature's half-width, in standard deviations
  CHECK(h[1] == doctest::Approx(1.0f));  // a 0/1 flag standardized to +-1
  // Same outputs as the original float model.
  test::Loaded a(host::FinishModel(f, 64), 64, MTAN_BACKEND_REFERENCE);
  test::Loaded b(host::FinishModel(e, 64), 64, MTAN_BACKEND_REFERENCE);
  const auto ya = a.Run(rows, n, MTAN_ALL_TASKS), yb = b.Run(rows, n, MTAN_ALL_TASKS);
  for (size_t i = 0; i < ya.size(); ++i)
    CHECK(yb[i] == doctest::Approx(ya[i]).epsilon(1e-4).scale(1.0));
  // Its standardized features each span [-1, 1] on these rows.
  REQUIRE(host::CollectActivations(e, rows, n, &values, &error));
  for (int i = 0; i < 10; ++i) {
    float lo = 1e9f, hi = -1e9f;
    for (int r = 0; r < n; ++r) {
      lo = std::min(lo, values[x][r * 10 + i]);
      hi = std::max(hi, values[x][r * 10 + i]);
    }
    CHECK(lo == doctest::Approx(-1.0f).epsilon(1e-4));
    CHECK(hi == doctest::Approx(1.0f).epsilon(1e-4));
  }
  // Quantized with the equalized range, -1, 0 and 1 are exact: scale 1/127.
  float s;
  int32_t zp;
  host::ChooseAsymmetric(host::EqualizedInputRange(), &s, &zp);
  CHECK(s == doctest::Approx(1.0f / 127));
  CHECK(zp == 0);
}

TEST_CASE("input equalization: with one price far out, the flags keep their precision") {
  // Int8 against float on the standardized input, with and without.
  fb::ModelT f = test::FloatModel(15);
  const int n = 400;
  auto rows = test::RandomRows(16, n);
  rows[7 * 10 + 3] = 4000.0f;
  const auto ranges = MinMaxRanges(f, rows, n);
  const int x = host::StandardizedInputTensor(f);
  std::vector<std::vector<float>> values;
  std::string error;
  REQUIRE(host::CollectActivations(f, rows, n, &values, &error));
  float s_plain;
  int32_t zp;
  host::ChooseAsymmetric(ranges[x], &s_plain, &zp);
  CHECK(s_plain > 0.3f);  // one scale for all: a flag (+-1) gets ~6 levels
  // Equalized: every feature gets the full 255 levels over its own range,
  // and the int8 model tracks float much more closely.
  std::vector<host::Range> feature(10);
  for (int r = 0; r < n; ++r)
    for (int i = 0; i < 10; ++i) {
      const float v = values[x][r * 10 + i];
      feature[i] = {std::min(feature[i].min, v), std::max(feature[i].max, v)};
    }
  fb::ModelT e = test::FloatModel(15);
  std::vector<float> c, h;
  REQUIRE(host::EqualizeInputs(&e, feature, &c, &h));
  // The standardized input as int8 carries it, back in standard deviations:
  // plain, with the one scale; equalized, each feature over its own range.
  auto roundtrip = [](float v, host::Range r) {
    float sc;
    int32_t z;
    host::ChooseAsymmetric(r, &sc, &z);
    const float q = std::clamp(std::nearbyint(v / sc) + z, -128.0f, 127.0f);
    return sc * (q - z);
  };
  double err_plain = 0, err_eq = 0;
  for (int r = 0; r < n; ++r) {
    for (int i : {1, 4, 7, 2, 5, 8}) {  // flags and counts
      const float v = values[x][r * 10 + i];
      err_plain += std::fabs(roundtrip(v, ranges[x]) - v);
      err_eq += std::fabs(roundtrip((v - c[i]) / h[i], host::EqualizedInputRange()) * h[i] + c[i] - v);
    }
  }
  CHECK(err_eq < 0.1 * err_plain);
}

TEST_CASE("input equalization is refused when something other than a FULLY_CONNECTED reads the input") {
  fb::ModelT f = test::FloatModel(3);
  const int x = host::StandardizedInputTensor(f);
  for (auto& op : f.operators)
    if (op->opcode == fb::OpCode::MUL) op->inputs[1] = x;  // nonsense graph, but a non-FC consumer
  std::vector<host::Range> feature(10, {-1.0f, 1.0f});
  const auto before = f.inputs[0]->std;
  CHECK_FALSE(host::EqualizeInputs(&f, feature));
  CHECK(f.inputs[0]->std == before);
}

TEST_CASE("float heads: the last layer runs in float on a DEQUANTIZE, and matches float closely") {
  fb::ModelT f = test::FloatModel(19);
  const int n = 256;
  const auto rows = test::RandomRows(20, n);
  const auto ranges = MinMaxRanges(f, rows, n);
  host::QuantizeOptions opt;
  opt.float_heads = true;
  fb::ModelT q = host::QuantizeModel(f, ranges, opt);
  int heads = 0;
  for (const auto& op : q.operators) {
    if (op->opcode != fb::OpCode::FULLY_CONNECTED) continue;
    const auto& y = *q.tensors[op->outputs[0]];
    if (y.name.size() > 5 && y.name.substr(y.name.size() - 5) == ".head") {
      ++heads;
      CHECK(y.dtype == fb::DType::FLOAT32);
      CHECK(q.tensors[op->inputs[1]]->dtype == fb::DType::FLOAT32);
      CHECK(q.tensors[op->inputs[0]]->name.find(".float") != std::string::npos);
    }
  }
  CHECK(heads == 3);
  for (mtan_backend b : {MTAN_BACKEND_XNNPACK, MTAN_BACKEND_REFERENCE}) {
    test::Loaded m(host::FinishModel(q, 64), 64, b);
    REQUIRE_MESSAGE(m.status == MTAN_OK, mtan_last_error());
  }
  // One LSB of the head's int8 input, through its weights (L1 of a row).
  const float s = host::TaskLogitScale(q, *q.tasks[0]);
  CHECK(s > 0.0f);
  CHECK(s < 1.0f);
  const auto yi = test::Loaded(host::FinishModel(q, 64), 64, MTAN_BACKEND_XNNPACK).Run(rows, n, MTAN_ALL_TASKS);
  const auto yf = test::Loaded(host::FinishModel(f, 64), 64, MTAN_BACKEND_XNNPACK).Run(rows, n, MTAN_ALL_TASKS);
  for (size_t i = 0; i < yi.size(); ++i)
    if (i % 6 < 5) CHECK(std::fabs(yi[i] - yf[i]) < 0.05f);
}

TEST_CASE("requantization limits: negligible rows are zeroed, too-fine output scales coarsened") {
  // Weight decay leaves dead units' rows at ~1e-38: per-channel scales of
  // ~1e-40 that XNNPACK refuses (requantization below 2^-32).
  host::MtanWeights w = test::RandomMtan(23);
  for (int i = 0; i < 32; ++i) w.trunks[0][1].w[i] = 1e-38f * (i % 3 - 1);  // row 0 of trunk0.fc2
  fb::ModelT f = host::BuildFloatModel(w);
  const int n = 128;
  const auto rows = test::RandomRows(24, n);
  auto ranges = MinMaxRanges(f, rows, n);
  // And an output range far finer than its inputs and weights can resolve.
  int tiny = -1;
  for (size_t t = 0; t < f.tensors.size(); ++t)
    if (f.tensors[t]->name == "click.att.click.score") tiny = static_cast<int>(t);
  REQUIRE(tiny >= 0);
  ranges[tiny] = {-1e-6f, 1e-6f};
  fb::ModelT q = host::QuantizeModel(f, ranges);
  for (const auto& op : q.operators) {
    if (op->opcode != fb::OpCode::FULLY_CONNECTED) continue;
    const auto& x = *q.tensors[op->inputs[0]];
    const auto& wt = *q.tensors[op->inputs[1]];
    const auto& y = *q.tensors[op->outputs[0]];
    if (wt.dtype != fb::DType::INT8) continue;
    for (float sw : wt.quantization->scale) {
      const float requant = x.quantization->scale[0] * sw / y.quantization->scale[0];
      CHECK(requant >= 0x1.0p-32f);
      CHECK(requant < 256.0f);
    }
    if (y.name == "trunk0.fc2") {
      const auto& data = q.buffers[wt.buffer]->data;
      for (int i = 0; i < 32; ++i) CHECK(data[i] == 0);
    }
  }
  test::Loaded m(host::FinishModel(q, 16), 16, MTAN_BACKEND_XNNPACK);
  CHECK_MESSAGE(m.status == MTAN_OK, mtan_last_error());
}

namespace {

int OpWriting(const fb::ModelT& m, const std::string& name) {
  for (size_t o = 0; o < m.operators.size(); ++o)
    if (m.tensors[m.operators[o]->outputs[0]]->name == name) return static_cast<int>(o);
  return -1;
}

double MeanAbsDiff(const std::vector<float>& a, const std::vector<float>& b) {
  double s = 0;
  for (size_t i = 0; i < a.size(); ++i) s += std::fabs(static_cast<double>(a[i]) - b[i]);
  return s / static_cast<double>(a.size());
}

}  // namespace

TEST_CASE("mixed precision: a float layer reads a DEQUANTIZE, its int8 readers a QUANTIZE") {
  fb::ModelT f = test::FloatModel(31);
  const int n = 256;
  const auto rows = test::RandomRows(32, n);
  const auto ranges = MinMaxRanges(f, rows, n);
  host::QuantizeOptions opt;
  opt.float_heads = true;
  opt.float_ops.assign(f.operators.size(), 0);
  const int fc2 = OpWriting(f, "trunk0.fc2");
  REQUIRE(fc2 >= 0);
  opt.float_ops[fc2] = 1;
  fb::ModelT q = host::QuantizeModel(f, ranges, opt);
  // Its weights, bias and output are float; it reads trunk0.fc1 through a
  // DEQUANTIZE; every int8 reader of trunk0.fc2 reads it through one QUANTIZE.
  const int y = OpWriting(q, "trunk0.fc2");
  const auto& op = *q.operators[y];
  CHECK(q.tensors[op.inputs[1]]->dtype == fb::DType::FLOAT32);
  CHECK(q.tensors[op.inputs[2]]->dtype == fb::DType::FLOAT32);
  CHECK(q.tensors[op.outputs[0]]->dtype == fb::DType::FLOAT32);
  CHECK(q.operators[OpWriting(q, q.tensors[op.inputs[0]]->name)]->opcode == fb::OpCode::DEQUANTIZE);
  int requantized = 0;
  for (const auto& o : q.operators) {
    if (o->opcode == fb::OpCode::QUANTIZE && o->inputs[0] == op.outputs[0]) {
      ++requantized;
      CHECK(q.tensors[o->outputs[0]]->name == "trunk0.fc2.int8");
      CHECK(q.tensors[o->outputs[0]]->dtype == fb::DType::INT8);
    }
    if (o->opcode == fb::OpCode::FULLY_CONNECTED && q.tensors[o->outputs[0]]->name == "click.mask.fc1")
      CHECK(q.tensors[o->inputs[0]]->name == "trunk0.fc2.int8");
  }
  CHECK(requantized == 1);
  // It runs on both backends, and is closer to float than all-int8.
  host::QuantizeOptions all_int8;
  all_int8.float_heads = true;
  fb::ModelT i8 = host::QuantizeModel(f, ranges, all_int8);
  const auto yf = test::Loaded(host::FinishModel(f, 64), 64, MTAN_BACKEND_XNNPACK).Run(rows, n, MTAN_ALL_TASKS);
  const auto y8 = test::Loaded(host::FinishModel(i8, 64), 64, MTAN_BACKEND_XNNPACK).Run(rows, n, MTAN_ALL_TASKS);
  for (mtan_backend b : {MTAN_BACKEND_XNNPACK, MTAN_BACKEND_REFERENCE}) {
    test::Loaded m(host::FinishModel(q, 64), 64, b);
    REQUIRE_MESSAGE(m.status == MTAN_OK, mtan_last_error());
    const auto ym = m.Run(rows, n, MTAN_ALL_TASKS);
    CHECK(MeanAbsDiff(ym, yf) < MeanAbsDiff(y8, yf));
  }
}

TEST_CASE("mixed precision: every operator in float is the float model; shared weights are copied") {
  fb::ModelT f = test::FloatModel(33);
  const int n = 128;
  const auto rows = test::RandomRows(34, n);
  const auto ranges = MinMaxRanges(f, rows, n);
  host::QuantizeOptions opt;
  opt.float_ops.assign(f.operators.size(), 1);
  fb::ModelT all = host::QuantizeModel(f, ranges, opt);
  for (const auto& t : all.tensors) CHECK(t->dtype != fb::DType::INT8);
  const auto yf = test::Loaded(host::FinishModel(f, 64), 64, MTAN_BACKEND_XNNPACK).Run(rows, n, MTAN_ALL_TASKS);
  const auto ya = test::Loaded(host::FinishModel(all, 64), 64, MTAN_BACKEND_XNNPACK).Run(rows, n, MTAN_ALL_TASKS);
  CHECK(MeanAbsDiff(ya, yf) == 0.0);

  // click's attention weights are shared by its three (task, source) pairs:
  // one of them in float gets its own float copy, the others stay int8.
  opt.float_ops.assign(f.operators.size(), 0);
  const int pair = OpWriting(f, "click.att.spend.fc");
  REQUIRE(pair >= 0);
  opt.float_ops[pair] = 1;
  fb::ModelT q = host::QuantizeModel(f, ranges, opt);
  const auto& fl = *q.operators[OpWriting(q, "click.att.spend.fc")];
  const auto& i8 = *q.operators[OpWriting(q, "click.att.click.fc")];
  CHECK(fl.inputs[1] != i8.inputs[1]);
  CHECK(q.tensors[fl.inputs[1]]->dtype == fb::DType::FLOAT32);
  CHECK(q.tensors[i8.inputs[1]]->dtype == fb::DType::INT8);
  CHECK(q.tensors[fl.inputs[1]]->name == "click.att.spend.fc.weights");
  test::Loaded m(host::FinishModel(q, 16), 16, MTAN_BACKEND_REFERENCE);
  CHECK_MESSAGE(m.status == MTAN_OK, mtan_last_error());

  opt.float_ops.assign(3, 0);
  CHECK_THROWS_AS(host::QuantizeModel(f, ranges, opt), std::invalid_argument);
}
