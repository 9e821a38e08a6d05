// Tensor inputs (schema: Model.tensor_inputs), the typed inputs beside the
// dense features: int64 ids through EMBEDDING_BAG, as the C API takes them
// (mtan_run_inputs, mtan_tensor_input_info), carried by golden cases, and
// the verifier's rules for them. The kernel against the oracle: oracle_test.cc.
#include <cmath>
#include <cstring>
#include <functional>
#include <limits>
#include <random>
#include <string>

#include "doctest/doctest.h"
#include "test_models.h"

using namespace mtan;

namespace {

constexpr int kFeatures = 4, kLength = 5, kVocab = 7, kWidth = 3;

// x [4] standardised, e = EMBEDDING_BAG(viewed [5], table [7, 3]);
// click = sigmoid(wh . (Wa x + ba + e) + bh); spend = ws . x + bs (its plan
// does not need the ids).
struct BagNet {
  std::vector<float> table, wa, ba, wh, bh, ws, bs;
  BagNet() {
    std::mt19937 rng(5);
    std::normal_distribution<float> d(0.0f, 0.5f);
    auto fill = [&](std::vector<float>* v, size_t n) { for (size_t i = 0; i < n; ++i) v->push_back(d(rng)); };
    fill(&table, kVocab * kWidth), fill(&wa, kWidth * kFeatures), fill(&ba, kWidth);
    fill(&wh, kWidth), fill(&bh, 1), fill(&ws, kFeatures), fill(&bs, 1);
  }
  // click and spend of one row, in double from the definitions.
  void Run(const float* x, const int64_t* ids, double* click, double* spend) const {
    double z = bh[0];
    for (int o = 0; o < kWidth; ++o) {
      double s = ba[o];
      for (int i = 0; i < kFeatures; ++i) s += double(wa[o * kFeatures + i]) * x[i];
      for (int l = 0; l < kLength; ++l)
        if (ids[l] >= 0) s += table[ids[l] * kWidth + o];
      z += double(wh[o]) * s;
    }
    *click = 1.0 / (1.0 + std::exp(-z));
    *spend = bs[0];
    for (int i = 0; i < kFeatures; ++i) *spend += double(ws[i]) * x[i];
  }
};

fb::ModelT BagModel(const BagNet& net) {
  fb::ModelT m;
  m.buffers.push_back(std::make_unique<fb::BufferT>());
  for (int i = 0; i < kFeatures; ++i) {
    auto in = std::make_unique<fb::InputT>();
    in->name = "f" + std::to_string(i);
    m.inputs.push_back(std::move(in));
  }
  m.input_tensor = tiny::AddTensor(m, "input", {kFeatures});
  const int x = tiny::AddTensor(m, "x", {kFeatures});
  tiny::AddOp(m, fb::OpCode::QUANTIZE, {m.input_tensor}, x);
  const int ids = tiny::AddTensor(m, "viewed", {kLength});
  tiny::MakeIdsInput(m, ids, "viewed");
  const int e = tiny::AddTensor(m, "bag", {kWidth}), a = tiny::AddTensor(m, "a", {kWidth});
  tiny::AddOp(m, fb::OpCode::EMBEDDING_BAG, {ids, tiny::AddTensor(m, "table", {kVocab, kWidth}, &net.table)}, e);
  tiny::AddOp(m, fb::OpCode::FULLY_CONNECTED,
              {x, tiny::AddTensor(m, "a.w", {kWidth, kFeatures}, &net.wa), tiny::AddTensor(m, "a.b", {kWidth}, &net.ba)}, a);
  const int s = tiny::AddTensor(m, "s", {kWidth}), z = tiny::AddTensor(m, "z", {1}), p = tiny::AddTensor(m, "p", {1});
  tiny::AddOp(m, fb::OpCode::ADD, {a, e}, s);
  tiny::AddOp(m, fb::OpCode::FULLY_CONNECTED, {s, tiny::AddTensor(m, "h.w", {1, kWidth}, &net.wh), tiny::AddTensor(m, "h.b", {1}, &net.bh)}, z);
  tiny::AddOp(m, fb::OpCode::LOGISTIC, {z}, p);
  const int sp = tiny::AddTensor(m, "spend", {1});
  tiny::AddOp(m, fb::OpCode::FULLY_CONNECTED,
              {x, tiny::AddTensor(m, "s.w", {1, kFeatures}, &net.ws), tiny::AddTensor(m, "s.b", {1}, &net.bs)}, sp);
  for (auto [name, kind, out] : {std::tuple{"click", fb::TaskKind::BINARY, p},
                                 std::tuple{"spend", fb::TaskKind::REGRESSION, sp}}) {
    auto task = std::make_unique<fb::TaskT>();
    task->name = name;
    task->kind = kind;
    task->output = out;
    m.tasks.push_back(std::move(task));
  }
  m.metadata = std::make_unique<fb::MetadataT>();
  return m;
}

std::vector<float> Rows(uint32_t n) {
  std::mt19937 rng(11);
  std::normal_distribution<float> d(0.0f, 1.0f);
  std::vector<float> v(static_cast<size_t>(n) * kFeatures);
  for (float& x : v) x = d(rng);
  return v;
}

// Ids in -1..kVocab-1; row 0 is all padding.
std::vector<int64_t> Ids(uint32_t n) {
  std::mt19937 rng(12);
  std::uniform_int_distribution<int> d(-1, kVocab - 1);
  std::vector<int64_t> v(static_cast<size_t>(n) * kLength);
  for (auto& x : v) x = d(rng);
  for (int l = 0; l < kLength; ++l) v[l] = -1;
  return v;
}

std::vector<uint8_t> Bytes(const std::vector<int64_t>& ids) {
  return {reinterpret_cast<const uint8_t*>(ids.data()), reinterpret_cast<const uint8_t*>(ids.data() + ids.size())};
}

mtan_status Verify(const std::vector<uint8_t>& file) {
  REQUIRE(mtan_init() == MTAN_OK);
  const host::ModelBytes bytes(file);
  size_t need = 0;
  return mtan_arena_size(bytes.data(), bytes.size(), nullptr, &need);
}

int Find(const fb::ModelT& m, const std::string& name) {
  for (size_t t = 0; t < m.tensors.size(); ++t)
    if (m.tensors[t]->name == name) return static_cast<int>(t);
  FAIL("no tensor " << name);
  return -1;
}

// The written model, edited in place (no new plan), sealed again.
std::vector<uint8_t> Edited(const std::function<void(fb::ModelT&)>& edit) {
  fb::ModelT m = BagModel(BagNet());
  const auto file = host::FinishModel(m, 8);
  fb::ModelT u;
  fb::GetModel(file.data())->UnPackTo(&u);
  edit(u);
  return host::SealModel(u);
}

void Expect(const std::vector<uint8_t>& file, mtan_status want, const std::string& message) {
  const mtan_status got = Verify(file);
  CHECK_MESSAGE(got == want, mtan_status_string(got) << ": " << mtan_last_error());
  CHECK_MESSAGE(std::string(mtan_last_error()).find(message) != std::string::npos, mtan_last_error());
}

}  // namespace

TEST_CASE("tensor inputs: int64 ids through EMBEDDING_BAG, as defined, on both backends") {
  const BagNet net;
  fb::ModelT m = BagModel(net);
  const uint32_t n = 8;
  // Without memory reuse, so that the ids stay in the arena after the run.
  const auto file = host::FinishModel(m, n, /*reuse_memory=*/false);
  const auto rows = Rows(n);
  const auto ids = Ids(n);
  for (mtan_backend be : {MTAN_BACKEND_REFERENCE, MTAN_BACKEND_XNNPACK}) {
    CAPTURE(be);
    test::Loaded rt(file, n, be);
    REQUIRE_MESSAGE(rt.status == MTAN_OK, mtan_last_error());
    uint32_t count = 0;
    REQUIRE(mtan_tensor_input_count(rt.model, &count) == MTAN_OK);
    CHECK(count == 1);
    mtan_input_info info;
    REQUIRE(mtan_tensor_input_info(rt.model, 0, &info) == MTAN_OK);
    CHECK(std::string(info.name) == "viewed");
    CHECK(info.dtype == MTAN_DTYPE_INT64);
    CHECK(info.rank == 1);
    CHECK(info.shape[0] == static_cast<uint32_t>(kLength));
    CHECK(info.shape[1] == 0);
    CHECK(info.row_bytes == 8u * kLength);
    CHECK(mtan_tensor_input_info(rt.model, 1, &info) == MTAN_ERROR_INVALID_ARGUMENT);

    std::vector<float> out(2 * n);
    const void* inputs[] = {ids.data()};
    REQUIRE_MESSAGE(mtan_run_inputs(rt.model, rows.data(), inputs, 1, n, MTAN_ALL_TASKS, out.data(),
                                    out.size(), nullptr) == MTAN_OK, mtan_last_error());
    for (uint32_t r = 0; r < n; ++r) {
      double click, spend;
      net.Run(&rows[r * kFeatures], &ids[r * kLength], &click, &spend);
      CHECK(out[2 * r] == doctest::Approx(click).epsilon(1e-5));
      CHECK(out[2 * r + 1] == doctest::Approx(spend).epsilon(1e-5));
    }
    // The ids as the run copied them into the arena.
    mtan_tensor_desc d;
    REQUIRE(mtan_tensor_get(rt.model, static_cast<uint32_t>(Find(m, "viewed")), &d) == MTAN_OK);
    CHECK(d.dtype == MTAN_DTYPE_INT64);
    REQUIRE(d.data != nullptr);
    CHECK(std::memcmp(d.data, ids.data(), ids.size() * 8) == 0);
    // One task's plan: spend does not run the bag, click does.
    int32_t spend_task = -1;
    REQUIRE(mtan_task_find(rt.model, "spend", &spend_task) == MTAN_OK);
    mtan_task_info ti;
    REQUIRE(mtan_task_info_get(rt.model, static_cast<uint32_t>(spend_task), &ti) == MTAN_OK);
    CHECK(ti.operator_count == 2);  // QUANTIZE, its FULLY_CONNECTED
    std::vector<float> one(n);
    REQUIRE(mtan_run_inputs(rt.model, rows.data(), inputs, 1, n, spend_task, one.data(), n, nullptr) == MTAN_OK);
    for (uint32_t r = 0; r < n; ++r) CHECK(one[r] == out[2 * r + 1]);
  }
}

TEST_CASE("tensor inputs: what a caller can get wrong has a status and a message") {
  fb::ModelT m = BagModel(BagNet());
  const uint32_t n = 4;
  test::Loaded rt(host::FinishModel(m, n), n, MTAN_BACKEND_DEFAULT);
  REQUIRE(rt.status == MTAN_OK);
  const auto rows = Rows(n);
  auto ids = Ids(n);
  std::vector<float> out(2 * n);
  auto run = [&](const void* const* inputs, uint32_t count) {
    return mtan_run_inputs(rt.model, rows.data(), inputs, count, n, MTAN_ALL_TASKS, out.data(), out.size(), nullptr);
  };
  auto says = [](const char* what) {
    CHECK_MESSAGE(std::string(mtan_last_error()).find(what) != std::string::npos, mtan_last_error());
  };
  CHECK(mtan_run(rt.model, rows.data(), n, MTAN_ALL_TASKS, out.data(), out.size(), nullptr) ==
        MTAN_ERROR_INVALID_ARGUMENT);
  says("'viewed'): call mtan_run_inputs");
  const void* inputs[] = {ids.data(), ids.data()};
  CHECK(run(inputs, 2) == MTAN_ERROR_INVALID_ARGUMENT);
  CHECK(run(nullptr, 1) == MTAN_ERROR_INVALID_ARGUMENT);
  const void* null_input[] = {nullptr};
  CHECK(run(null_input, 1) == MTAN_ERROR_INVALID_ARGUMENT);
  says("tensor input 0 'viewed' is NULL");
  for (int64_t bad : {int64_t{kVocab}, int64_t{-2}, std::numeric_limits<int64_t>::max(),
                      std::numeric_limits<int64_t>::min()}) {
    CAPTURE(bad);
    ids[2 * kLength + 3] = bad;  // (in place: `inputs` points at ids)
    CHECK(run(inputs, 1) == MTAN_ERROR_INPUT_ID);
    says("row 2, id 3 of 'viewed'");
  }
  ids[2 * kLength + 3] = kVocab - 1;
  CHECK(run(inputs, 1) == MTAN_OK);

  // A model without tensor inputs takes none through mtan_run_inputs, and
  // gives what mtan_run gives.
  fb::ModelT plain = test::FloatModel(3);
  test::Loaded p(host::FinishModel(plain, n), n, MTAN_BACKEND_DEFAULT);
  REQUIRE(p.status == MTAN_OK);
  const auto prow = test::RandomRows(4, n);
  uint32_t per_row = 0;
  REQUIRE(mtan_output_size(p.model, MTAN_ALL_TASKS, &per_row) == MTAN_OK);
  std::vector<float> a(n * per_row), b(n * per_row);
  REQUIRE(mtan_run(p.model, prow.data(), n, MTAN_ALL_TASKS, a.data(), a.size(), nullptr) == MTAN_OK);
  REQUIRE(mtan_run_inputs(p.model, prow.data(), nullptr, 0, n, MTAN_ALL_TASKS, b.data(), b.size(), nullptr) == MTAN_OK);
  CHECK(a == b);
  CHECK(mtan_run_inputs(p.model, prow.data(), inputs, 1, n, MTAN_ALL_TASKS, b.data(), b.size(), nullptr) ==
        MTAN_ERROR_INVALID_ARGUMENT);
  says("this model takes none");
}

TEST_CASE("tensor inputs: golden cases carry the ids, and the self-test catches a changed table") {
  fb::ModelT m = BagModel(BagNet());
  const uint32_t n = 6;
  std::string error;
  REQUIRE_MESSAGE(tiny::AddReferenceGolden(m, Rows(n), n, 1e-5f, &error, Bytes(Ids(n))), error);
  for (mtan_backend be : {MTAN_BACKEND_REFERENCE, MTAN_BACKEND_XNNPACK}) {
    // max_batch 4: the self-test runs the 6 rows in two chunks.
    test::Loaded rt(host::FinishModel(m, 4), 4, be);
    REQUIRE(rt.status == MTAN_OK);
    CHECK_MESSAGE(mtan_self_test(rt.model) == MTAN_OK, mtan_last_error());
  }
  // A different table row: the ids the golden case holds now give other sums.
  fb::ModelT changed;
  fb::GetModel(host::FinishModel(m, 4).data())->UnPackTo(&changed);
  auto& table = *changed.buffers[changed.tensors[Find(changed, "table")]->buffer];
  float v;
  std::memcpy(&v, table.data.data() + 4 * kWidth, 4);  // row 1, first value
  v += 0.5f;
  std::memcpy(table.data.data() + 4 * kWidth, &v, 4);
  test::Loaded bad(host::SealModel(changed), 4, MTAN_BACKEND_REFERENCE);
  REQUIRE(bad.status == MTAN_OK);
  CHECK(mtan_self_test(bad.model) == MTAN_ERROR_SELF_TEST);
  // Host side: the ids must be n rows of every tensor input.
  CHECK_FALSE(tiny::AddReferenceGolden(m, Rows(n), n, 1e-5f, &error, Bytes(Ids(n - 1))));
  CHECK(error.find("tensor input") != std::string::npos);
}

TEST_CASE("tensor inputs: the verifier's rules") {
  CHECK(Verify(Edited([](fb::ModelT&) {})) == MTAN_OK);
  Expect(Edited([](fb::ModelT& m) { m.tensors[Find(m, "table")]->dtype = fb::DType::INT64; }),
         MTAN_ERROR_OPERATOR, "int64 is for tensor inputs only");
  Expect(Edited([](fb::ModelT& m) { m.tensors[Find(m, "viewed")]->dtype = fb::DType::FLOAT32; }),
         MTAN_ERROR_OPERATOR, "a tensor input must be an int64 activation");
  // Only EMBEDDING_BAG reads ids.
  Expect(Edited([](fb::ModelT& m) {
           for (auto& op : m.operators)
             if (op->opcode == fb::OpCode::FULLY_CONNECTED && op->inputs[0] == Find(m, "x")) {
               op->inputs[0] = Find(m, "viewed");
               break;
             }
         }),
         MTAN_ERROR_OPERATOR, "reads the int64 ids 'viewed'; only EMBEDDING_BAG may");
  // No operator writes a model input.
  Expect(Edited([](fb::ModelT& m) {
           for (auto& op : m.operators)
             if (op->outputs[0] == Find(m, "a")) op->outputs[0] = Find(m, "viewed");
         }),
         MTAN_ERROR_GRAPH, "or a model input");
  Expect(Edited([](fb::ModelT& m) { m.tensor_inputs[0]->tensor = 999; }), MTAN_ERROR_INDEX, "out of range");
  Expect(Edited([](fb::ModelT& m) { m.tensor_inputs[0]->tensor = m.input_tensor; }), MTAN_ERROR_GRAPH,
         "is already a model input");
  Expect(Edited([](fb::ModelT& m) {
           auto twice = std::make_unique<fb::TensorInputT>(*m.tensor_inputs[0]);
           twice->name = "again";
           m.tensor_inputs.push_back(std::move(twice));
         }),
         MTAN_ERROR_GRAPH, "is already a model input");
  Expect(Edited([](fb::ModelT& m) { m.tensor_inputs[0]->name = "f2"; }), MTAN_ERROR_NAME,
         "both named 'f2'");
  Expect(Edited([](fb::ModelT& m) { m.tensor_inputs[0]->name = "bad\nname"; }), MTAN_ERROR_NAME,
         "control character");
  // EMBEDDING_BAG: int64 ids, a [rows, D] table of its output's width.
  Expect(Edited([](fb::ModelT& m) {
           for (auto& op : m.operators)
             if (op->opcode == fb::OpCode::EMBEDDING_BAG) op->inputs[0] = Find(m, "x");
         }),
         MTAN_ERROR_OPERATOR, "takes int64 ids");
  Expect(Edited([](fb::ModelT& m) { m.tensors[Find(m, "table")]->shape = {kVocab * kWidth, 1}; }),
         MTAN_ERROR_SHAPE, "is not [rows, 3]");
  // The ids live from the start of a run to the bag: nothing live may share their bytes.
  Expect(Edited([](fb::ModelT& m) {
           m.tensors[Find(m, "viewed")]->arena_offset = m.tensors[Find(m, "x")]->arena_offset;
         }),
         MTAN_ERROR_MEMORY_PLAN, "'viewed'");
  // A golden case holds every row of every tensor input.
  Expect(Edited([](fb::ModelT& m) {
           std::string error;
           REQUIRE(tiny::AddReferenceGolden(m, Rows(2), 2, 1e-5f, &error, Bytes(Ids(2))));
           m.golden[0]->tensor_input.resize(8 * kLength);
         }),
         MTAN_ERROR_SHAPE, "bytes of tensor inputs");
}

TEST_CASE("tensor inputs: the quantizer keeps EMBEDDING_BAG float and quantizes its readers") {
  const BagNet net;
  fb::ModelT f = BagModel(net);
  std::vector<host::Range> ranges(f.tensors.size(), host::Range{-6.0f, 6.0f});
  fb::ModelT q = host::QuantizeModel(f, ranges);
  for (const auto& op : q.operators)
    if (op->opcode == fb::OpCode::EMBEDDING_BAG) {
      CHECK(q.tensors[op->inputs[0]]->dtype == fb::DType::INT64);
      CHECK(q.tensors[op->inputs[1]]->dtype == fb::DType::FLOAT32);
      CHECK(q.tensors[op->outputs[0]]->dtype == fb::DType::FLOAT32);
    }
  CHECK(q.tensors[Find(q, "a")]->dtype == fb::DType::INT8);
  const uint32_t n = 8;
  test::Loaded rt(host::FinishModel(q, n), n, MTAN_BACKEND_DEFAULT);
  REQUIRE_MESSAGE(rt.status == MTAN_OK, mtan_last_error());
  const auto rows = Rows(n);
  const auto ids = Ids(n);
  std::vector<float> out;
  std::string error;
  REQUIRE_MESSAGE(rt.rt.Run(rows.data(), n, MTAN_ALL_TASKS, &out, &error, Bytes(ids)) == MTAN_OK, error);
  // int8 at scale 12/255 per tensor: within a few steps of the float result.
  for (uint32_t r = 0; r < n; ++r) {
    double click, spend;
    net.Run(&rows[r * kFeatures], &ids[r * kLength], &click, &spend);
    CHECK(std::fabs(out[2 * r] - click) < 0.06);
    CHECK(std::fabs(out[2 * r + 1] - spend) < 0.15);
  }
}
