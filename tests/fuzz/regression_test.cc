// Regressions of the runtime bugs the fuzzer found (tests/fuzz), each as a
// small crafted model built with the real writer so the test says what was
// wrong. The fuzzer's own inputs are replayed by ctest fuzz.regressions. The
// undefined-behaviour cases fail loudly only under UBSan (build-asan); in
// other builds they check the status and that results are defined.
#include <cmath>
#include <cstring>
#include <string>

#include "doctest/doctest.h"
#include "model_io.h"
#include "tiny_models.h"

using namespace mtan;

namespace {

constexpr int kFeatures = 4;

fb::ModelT Tiny(bool int8) {
  fb::ModelT m = host::BuildFloatModel(tiny::Weights(
      tiny::kArchs[0], {fb::TaskKind::BINARY, fb::TaskKind::MULTICLASS, fb::TaskKind::REGRESSION},
      kFeatures, 21));
  if (int8) {
    std::string error;
    REQUIRE_MESSAGE(tiny::Quantize(&m, 21, kFeatures, &error), error);
  }
  return m;
}

fb::TensorT& Named(fb::ModelT& m, const std::string& name) {
  for (auto& t : m.tensors)
    if (t->name == name) return *t;
  FAIL("no tensor " << name);
  throw;
}

// Loads with `backend`, runs all tasks on 3 rows, reads every tensor's
// description and self-tests; returns the load status.
mtan_status LoadAndRun(const std::vector<uint8_t>& file, mtan_backend backend,
                       std::vector<float>* out = nullptr) {
  host::RuntimeModel rt;
  std::string error;
  const mtan_status s = rt.Load(file, 0, backend, &error);
  if (s != MTAN_OK) return s;
  std::vector<float> values;
  REQUIRE_MESSAGE(rt.Run(tiny::Rows(3, 3, kFeatures).data(), 3, MTAN_ALL_TASKS, &values, &error) ==
                      MTAN_OK,
                  error);
  uint32_t n = 0;
  REQUIRE(mtan_tensor_count(rt.get(), &n) == MTAN_OK);
  for (uint32_t t = 0; t < n; ++t) {
    mtan_tensor_desc d;
    CHECK(mtan_tensor_get(rt.get(), t, &d) == MTAN_OK);
  }
  const mtan_status st = mtan_self_test(rt.get());
  CHECK((st == MTAN_OK || st == MTAN_ERROR_NO_GOLDEN_CASES));
  if (out) *out = values;
  return MTAN_OK;
}

}  // namespace

// model.cc Scale() read quantization->scale()->Get(0) whenever a tensor had a
// quantization table: a float tensor with an empty table (which the verifier
// allows, it checks int8 tensors only) was a null dereference at load and in
// mtan_tensor_get. Found in seconds (regressions/scale-without-values.mtan).
TEST_CASE("a float tensor with a quantization table but no scales loads and runs") {
  fb::ModelT m = Tiny(false);
  host::FinishModel(m, 4);
  Named(m, "trunk0.fc1").quantization = std::make_unique<fb::QuantizationT>();
  Named(m, "trunk0.fc1.weight").quantization = std::make_unique<fb::QuantizationT>();
  const auto file = host::SealModel(m);
  CHECK(LoadAndRun(file, MTAN_BACKEND_REFERENCE) == MTAN_OK);
  CHECK(LoadAndRun(file, MTAN_BACKEND_XNNPACK) == MTAN_OK);
}

// kernels_ref.cc FullyConnectedS8 summed into an int32_t: a bias near
// INT32_MAX (or a wide layer) overflowed, which is undefined behaviour. The
// sum now wraps as XNNPACK's does, and the verifier refuses any channel
// whose |bias| + 256 * sum |w| exceeds INT32_MAX, so a wrapped (wrong)
// result cannot come back with MTAN_OK (regressions/fc-accumulator-overflow.mtan).
TEST_CASE("an int8 bias that can overflow the int32 accumulator is refused at load") {
  for (int32_t edge : {0x7fffffff - 3, -0x7fffffff}) {
    fb::ModelT m = Tiny(true);
    const fb::TensorT& bias = Named(m, "trunk0.fc1.bias");
    REQUIRE(bias.dtype == fb::DType::INT32);
    auto& data = m.buffers[bias.buffer]->data;
    std::memcpy(&data[4], &edge, 4);  // output channel 1
    const auto file = host::FinishModel(m, 4);
    CHECK(LoadAndRun(file, MTAN_BACKEND_REFERENCE) == MTAN_ERROR_QUANTIZATION);
    CHECK(std::string(mtan_last_error()).find("output channel 1 of 'trunk0.fc1.weight' can overflow") !=
          std::string::npos);
    CHECK(LoadAndRun(file, MTAN_BACKEND_XNNPACK) == MTAN_ERROR_QUANTIZATION);
  }
  // The converter's biases stay inside the bound: the unedited model loads.
  fb::ModelT ok = Tiny(true);
  CHECK(LoadAndRun(host::FinishModel(ok, 4), MTAN_BACKEND_REFERENCE) == MTAN_OK);
}

// kernels_ref.cc Requantize clamped with `v < lo ? lo : v`, which lets NaN
// through to a float -> int32 conversion (undefined behaviour). NaN comes
// from a hostile but verified scale: a denormal QUANTIZE output scale makes
// 1/s infinite, and a zero mean makes the folded offset 0 * inf. NaN now
// clamps to the low end (regressions/requantize-nan.mtan).
TEST_CASE("a scale product that is NaN requantizes to a defined value") {
  fb::ModelT m = Tiny(true);
  fb::TensorT& x = Named(m, "input.standardized");
  REQUIRE(x.dtype == fb::DType::INT8);
  x.quantization->scale[0] = 1e-45f;  // positive and finite, so it verifies
  m.inputs[1]->mean = 0.0f;
  const auto file = host::FinishModel(m, 4);
  std::vector<float> out;
  CHECK(LoadAndRun(file, MTAN_BACKEND_REFERENCE, &out) == MTAN_OK);
  for (float v : out) CHECK(!std::isnan(v));
  // XNNPACK refuses a denormal scale outright.
  const mtan_status s = LoadAndRun(file, MTAN_BACKEND_XNNPACK);
  CHECK((s == MTAN_OK || s == MTAN_ERROR_UNSUPPORTED));
}

// verify.cc let any operator read the model input. The input is the
// caller's rows and has no arena bytes, so its arena_offset is never checked:
// a FULLY_CONNECTED reading it read the arena at that unchecked offset (out
// of bounds). Only QUANTIZE may read the model input now.
TEST_CASE("only QUANTIZE may read the model input") {
  fb::ModelT m = Tiny(false);
  host::FinishModel(m, 4);
  REQUIRE(m.operators[1]->opcode == fb::OpCode::FULLY_CONNECTED);
  m.operators[1]->inputs[0] = m.input_tensor;  // same width as input.standardized
  m.tensors[m.input_tensor]->arena_offset = 1u << 30;
  const host::ModelBytes bytes(host::SealModel(m));
  REQUIRE(mtan_init() == MTAN_OK);
  size_t need = 0;
  CHECK(mtan_arena_size(bytes.data(), bytes.size(), nullptr, &need) == MTAN_ERROR_GRAPH);
  CHECK(std::string(mtan_last_error()).find("reads the model input") != std::string::npos);
}
