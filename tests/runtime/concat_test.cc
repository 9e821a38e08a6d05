// CONCAT, the operator added the new way (runtime/src/ops/concat.cc): the
// verifier's cases for bad arity, dtypes and shapes, and a crafted float
// model through the runtime and through the host quantizer to int8, on
// both backends. The kernel against the oracle: oracle_test.cc.
#include <cmath>
#include <cstring>
#include <functional>
#include <random>

#include "calibrate.h"
#include "doctest/doctest.h"
#include "test_models.h"

using namespace mtan;

namespace {

// x [6] standardised; a = relu(Wa x + ba) [4], b = Wb x + bb [3];
// c = CONCAT(a, b) [7]; y = Wh c + bh [1], a regression task.
struct ConcatNet {
  std::vector<float> wa, ba, wb, bb, wh, bh;
  explicit ConcatNet(uint32_t seed) {
    std::mt19937 rng(seed);
    std::normal_distribution<float> d(0.0f, 0.5f);
    for (auto* v : {&wa, &ba, &wb, &bb, &wh, &bh}) v->clear();
    auto fill = [&](std::vector<float>* v, size_t n) { for (size_t i = 0; i < n; ++i) v->push_back(d(rng)); };
    fill(&wa, 24), fill(&ba, 4), fill(&wb, 18), fill(&bb, 3), fill(&wh, 7), fill(&bh, 1);
  }
  // In double, from the definitions.
  double Run(const float* x) const {
    double c[7];
    for (int o = 0; o < 4; ++o) {
      double s = ba[o];
      for (int i = 0; i < 6; ++i) s += double(wa[o * 6 + i]) * x[i];
      c[o] = s > 0 ? s : 0;
    }
    for (int o = 0; o < 3; ++o) {
      double s = bb[o];
      for (int i = 0; i < 6; ++i) s += double(wb[o * 6 + i]) * x[i];
      c[4 + o] = s;
    }
    double y = bh[0];
    for (int k = 0; k < 7; ++k) y += double(wh[k]) * c[k];
    return y;
  }
};

fb::ModelT FloatConcatModel(const ConcatNet& net) {
  fb::ModelT m;
  m.buffers.push_back(std::make_unique<fb::BufferT>());
  for (int i = 0; i < 6; ++i) {
    auto in = std::make_unique<fb::InputT>();
    in->name = "f" + std::to_string(i);
    m.inputs.push_back(std::move(in));
  }
  m.input_tensor = tiny::AddTensor(m, "input", {6});
  const int x = tiny::AddTensor(m, "x", {6});
  tiny::AddOp(m, fb::OpCode::QUANTIZE, {m.input_tensor}, x);
  const int a = tiny::AddTensor(m, "a", {4}), b = tiny::AddTensor(m, "b", {3}), c = tiny::AddTensor(m, "c", {7});
  tiny::AddOp(m, fb::OpCode::FULLY_CONNECTED, {x, tiny::AddTensor(m, "a.w", {4, 6}, &net.wa), tiny::AddTensor(m, "a.b", {4}, &net.ba)}, a, true);
  tiny::AddOp(m, fb::OpCode::FULLY_CONNECTED, {x, tiny::AddTensor(m, "b.w", {3, 6}, &net.wb), tiny::AddTensor(m, "b.b", {3}, &net.bb)}, b);
  tiny::AddOp(m, fb::OpCode::CONCAT, {a, b}, c);
  const int y = tiny::AddTensor(m, "y", {1});
  tiny::AddOp(m, fb::OpCode::FULLY_CONNECTED, {c, tiny::AddTensor(m, "h.w", {1, 7}, &net.wh), tiny::AddTensor(m, "h.b", {1}, &net.bh)}, y);
  auto task = std::make_unique<fb::TaskT>();
  task->name = "value";
  task->kind = fb::TaskKind::REGRESSION;
  task->output = y;
  m.tasks.push_back(std::move(task));
  m.metadata = std::make_unique<fb::MetadataT>();
  return m;
}

std::vector<float> Rows(uint32_t seed, uint32_t n) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> d(0.0f, 1.0f);
  std::vector<float> v(static_cast<size_t>(n) * 6);
  for (float& x : v) x = d(rng);
  return v;
}

int Find(const fb::ModelT& m, fb::OpCode code) {
  for (size_t o = 0; o < m.operators.size(); ++o)
    if (m.operators[o]->opcode == code) return static_cast<int>(o);
  FAIL("no such operator");
  return -1;
}

mtan_status Verify(const std::vector<uint8_t>& file) {
  REQUIRE(mtan_init() == MTAN_OK);
  const host::ModelBytes bytes(file);
  size_t need = 0;
  return mtan_arena_size(bytes.data(), bytes.size(), nullptr, &need);
}

void Expect(fb::ModelT m, const std::function<void(fb::ModelT&)>& edit, mtan_status want,
            const char* part) {
  host::FinishModel(m, 4);
  edit(m);
  const mtan_status got = Verify(host::SealModel(m));
  CHECK_MESSAGE(got == want, mtan_status_string(got) << ": " << mtan_last_error());
  CHECK_MESSAGE(std::strstr(mtan_last_error(), part) != nullptr, std::string(mtan_last_error()));
}

constexpr mtan_backend kBackends[] = {MTAN_BACKEND_REFERENCE, MTAN_BACKEND_XNNPACK};

}  // namespace

TEST_CASE("CONCAT float: the crafted model matches its definition, on both backends") {
  const ConcatNet net(1);
  fb::ModelT m = FloatConcatModel(net);
  const uint32_t n = 33;
  const auto rows = Rows(2, n);
  const auto file = host::FinishModel(m, n);
  for (mtan_backend be : kBackends) {
    CAPTURE(be);
    test::Loaded rt(file, n, be);
    REQUIRE_MESSAGE(rt.status == MTAN_OK, mtan_last_error());
    const auto y = rt.Run(rows, n, MTAN_ALL_TASKS);
    for (uint32_t r = 0; r < n; ++r) CHECK(y[r] == doctest::Approx(net.Run(&rows[r * 6])).epsilon(1e-5));
  }
}

TEST_CASE("CONCAT int8: the host quantizer's rule, then the runtime, close to float; self-test") {
  const ConcatNet net(3);
  fb::ModelT f = FloatConcatModel(net);
  const uint32_t n = 256;
  const auto rows = Rows(4, n);
  std::vector<std::vector<float>> values;
  std::string error;
  REQUIRE_MESSAGE(host::CollectActivations(f, rows, n, &values, &error), error);
  fb::ModelT q = host::QuantizeModel(f, host::CalibrateRanges(values, host::CalibrationMethod::kMinMax));
  // The concatenation runs in int8, its inputs at their own scales.
  const auto& cat = *q.operators.at(Find(q, fb::OpCode::CONCAT));
  REQUIRE(cat.inputs.size() == 2);
  const auto& qa = *q.tensors[cat.inputs[0]];
  const auto& qb = *q.tensors[cat.inputs[1]];
  CHECK(q.tensors[cat.outputs[0]]->dtype == fb::DType::INT8);
  CHECK(qa.dtype == fb::DType::INT8);
  CHECK(qb.dtype == fb::DType::INT8);
  CHECK(qa.quantization->scale[0] != qb.quantization->scale[0]);
  const auto file = host::FinishModel(q, 64);
  double range = 0;
  for (uint32_t r = 0; r < n; ++r) range = std::max(range, std::fabs(net.Run(&rows[r * 6])));
  for (mtan_backend be : kBackends) {
    CAPTURE(be);
    test::Loaded rt(file, 64, be);
    REQUIRE_MESSAGE(rt.status == MTAN_OK, mtan_last_error());
    const auto y = rt.Run(rows, n, MTAN_ALL_TASKS);
    double worst = 0;
    for (uint32_t r = 0; r < n; ++r) worst = std::max(worst, std::fabs(y[r] - net.Run(&rows[r * 6])));
    // A few int8 steps of the output range (the float head on int8 features).
    CHECK(worst < 0.05 * range);
  }
  REQUIRE_MESSAGE(tiny::AddReferenceGolden(q, std::vector<float>(rows.begin(), rows.begin() + 16 * 6),
                                             16, 1e-6f, &error), error);
  const auto sealed = host::FinishModel(q, 64);
  for (mtan_backend be : kBackends) {
    CAPTURE(be);
    test::Loaded rt(sealed, 64, be);
    REQUIRE(rt.status == MTAN_OK);
    CHECK_MESSAGE(mtan_self_test(rt.model) == MTAN_OK, mtan_last_error());
  }
}

TEST_CASE("CONCAT verifier: arity, dtypes, constants, the model input and shapes") {
  const fb::ModelT f = FloatConcatModel(ConcatNet(5));
  auto copy = [&] {
    fb::ModelT m;
    flatbuffers::FlatBufferBuilder fbb;
    fb::FinishModelBuffer(fbb, fb::Model::Pack(fbb, &f));
    fb::GetModel(fbb.GetBufferPointer())->UnPackTo(&m);
    return m;
  };
  const int cat = Find(f, fb::OpCode::CONCAT);
  {
    fb::ModelT good = copy();
    CHECK(Verify(host::FinishModel(good, 4)) == MTAN_OK);
  }
  // Output channels are not the sum of the inputs'.
  Expect(copy(), [&](fb::ModelT& m) { m.tensors[m.operators[cat]->outputs[0]]->shape = {6}; },
         MTAN_ERROR_SHAPE, "inputs have 7 channels in all");
  // An input missing (then the sum is wrong too), and 65 inputs.
  Expect(copy(), [&](fb::ModelT& m) { m.operators[cat]->inputs.pop_back(); }, MTAN_ERROR_SHAPE,
         "inputs have 4 channels");
  Expect(copy(), [&](fb::ModelT& m) { m.operators[cat]->inputs.assign(65, m.operators[cat]->inputs[0]); },
         MTAN_ERROR_OPERATOR, "more than 64 inputs");
  // A constant input, an int8 output over float inputs, the model input.
  Expect(copy(), [&](fb::ModelT& m) { m.operators[cat]->inputs[1] = m.operators[cat - 1]->inputs[2]; },
         MTAN_ERROR_OPERATOR, "activations of one dtype");
  Expect(copy(), [&](fb::ModelT& m) {
           auto& y = *m.tensors[m.operators[cat]->outputs[0]];
           y.dtype = fb::DType::INT8;
           y.quantization = std::make_unique<fb::QuantizationT>();
           y.quantization->scale = {0.1f};
         }, MTAN_ERROR_OPERATOR, "activations of one dtype");
  Expect(copy(), [&](fb::ModelT& m) { m.operators[cat]->inputs[0] = m.input_tensor; },
         MTAN_ERROR_GRAPH, "only QUANTIZE may");
  // No input at all: the generic check.
  Expect(copy(), [&](fb::ModelT& m) { m.operators[cat]->inputs.clear(); }, MTAN_ERROR_OPERATOR,
         "needs inputs");
}
