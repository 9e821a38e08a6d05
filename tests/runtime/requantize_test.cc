// QUANTIZE of a float activation: how an int8 graph takes a float layer's
// output back to int8 (mixed precision, tools/convert's float fallback).
// The verifier accepts exactly float32 activation -> int8, and both backends
// compute round(x / s) + zp, saturated.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>

#include "calibrate.h"
#include "doctest/doctest.h"
#include "format.h"
#include "test_models.h"

using namespace mtan;

namespace {

// The test model with trunk0.fc2 in float inside an otherwise int8 graph.
fb::ModelT MixedModel() {
  fb::ModelT f = test::FloatModel(41);
  const int n = 256;
  std::vector<std::vector<float>> values;
  std::string error;
  REQUIRE_MESSAGE(host::CollectActivations(f, test::RandomRows(42, n), n, &values, &error), error);
  host::QuantizeOptions opt;
  opt.float_ops.assign(f.operators.size(), 0);
  for (size_t o = 0; o < f.operators.size(); ++o)
    if (f.tensors[f.operators[o]->outputs[0]]->name == "trunk0.fc2") opt.float_ops[o] = 1;
  return host::QuantizeModel(f, host::CalibrateRanges(values, host::CalibrationMethod::kMinMax), opt);
}

// The QUANTIZE that reads an activation (not the model input).
int Requantize(const fb::ModelT& m) {
  for (size_t o = 0; o < m.operators.size(); ++o)
    if (m.operators[o]->opcode == fb::OpCode::QUANTIZE && m.operators[o]->inputs[0] != m.input_tensor)
      return static_cast<int>(o);
  return -1;
}

mtan_status Verify(const std::vector<uint8_t>& file) {
  REQUIRE(mtan_init() == MTAN_OK);
  const host::ModelBytes bytes(file);
  size_t need = 0;
  return mtan_arena_size(bytes.data(), bytes.size(), nullptr, &need);
}

}  // namespace

TEST_CASE("QUANTIZE of a float activation: round(x / s) + zp on both backends, saturating") {
  fb::ModelT m = MixedModel();
  const int op = Requantize(m);
  REQUIRE(op >= 0);
  const int32_t x = m.operators[op]->inputs[0], y = m.operators[op]->outputs[0];
  CHECK(m.tensors[x]->name == "trunk0.fc2");
  CHECK(m.tensors[x]->dtype == fb::DType::FLOAT32);
  CHECK(m.tensors[y]->dtype == fb::DType::INT8);
  SUBCASE("at the calibrated scale") {}
  SUBCASE("at a scale so fine that most values saturate") {
    m.tensors[y]->quantization->scale[0] = 1e-4f;
    m.tensors[y]->quantization->zero_point[0] = -100;
  }
  const float s = m.tensors[y]->quantization->scale[0];
  const int zp = m.tensors[y]->quantization->zero_point[0];
  // Every tensor kept after a run, so that both can be read back.
  const auto file = host::FinishModel(m, 64, /*reuse_memory=*/false);
  const int n = 50;
  const auto rows = test::RandomRows(43, n);
  for (mtan_backend b : {MTAN_BACKEND_XNNPACK, MTAN_BACKEND_REFERENCE}) {
    CAPTURE(b);
    test::Loaded l(file, 64, b);
    REQUIRE_MESSAGE(l.status == MTAN_OK, mtan_last_error());
    l.Run(rows, n, MTAN_ALL_TASKS);
    mtan_tensor_desc dx, dy;
    REQUIRE(mtan_tensor_get(l.model, static_cast<uint32_t>(x), &dx) == MTAN_OK);
    REQUIRE(mtan_tensor_get(l.model, static_cast<uint32_t>(y), &dy) == MTAN_OK);
    REQUIRE(dx.channels == dy.channels);
    int saturated = 0;
    for (size_t i = 0; i < static_cast<size_t>(n) * dx.channels; ++i) {
      const float v = static_cast<const float*>(dx.data)[i];
      const long want = std::clamp(std::lrint(v / s) + zp, -128L, 127L);
      const int got = static_cast<const int8_t*>(dy.data)[i];
      saturated += want == 127;
      // Both backends fold 1/s into a multiply: a value on a rounding edge
      // may land one step over.
      CHECK(std::abs(got - want) <= 1);
    }
    if (s == 1e-4f) CHECK(saturated > n);
  }
}

TEST_CASE("QUANTIZE of an activation: float32 in, int8 out, nothing else") {
  const fb::ModelT good = MixedModel();
  {
    fb::ModelT m = good;
    CHECK(Verify(host::FinishModel(m, 8)) == MTAN_OK);
  }
  auto broken = [&](const std::function<void(fb::ModelT&, fb::OperatorT&)>& edit) {
    fb::ModelT m = good;
    host::FinishModel(m, 8);
    edit(m, *m.operators[Requantize(m)]);
    return host::SealModel(m);
  };
  // An int8 input (requantizing int8 to int8 is not an operator of the format).
  CHECK(Verify(broken([](fb::ModelT& m, fb::OperatorT& op) {
          for (const auto& o : m.operators)
            if (o->opcode == fb::OpCode::FULLY_CONNECTED && m.tensors[o->outputs[0]]->dtype == fb::DType::INT8) {
              op.inputs[0] = o->outputs[0];
              break;
            }
        })) == MTAN_ERROR_OPERATOR);
  CHECK(std::strstr(mtan_last_error(), "float32 activation with an int8 output") != nullptr);
  // A float output.
  CHECK(Verify(broken([](fb::ModelT& m, fb::OperatorT& op) {
          m.tensors[op.outputs[0]]->dtype = fb::DType::FLOAT32;
        })) == MTAN_ERROR_OPERATOR);
  CHECK(std::strstr(mtan_last_error(), "int8 output") != nullptr);
  // Two inputs.
  CHECK(Verify(broken([](fb::ModelT&, fb::OperatorT& op) { op.inputs.push_back(op.inputs[0]); })) ==
        MTAN_ERROR_OPERATOR);
  CHECK(std::strstr(mtan_last_error(), "needs one input") != nullptr);
}
