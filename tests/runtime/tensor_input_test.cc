// Tensor inputs (schema: Model.tensor_inputs), the typed inputs beside the
// dense features: int64 ids through EMBEDDING_BAG, as the C API takes them
// (mtan_run_inputs, mtan_tensor_input_info), carried by golden cases, and
// the verifier's rules for them. The kernel against the oracle: oracle_test.cc.
#include <cmath>
#include <algorithm>
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
  // Id maps: a vocabulary of ascending distinct int64 keys, buckets >= 1,
  // no field of another map, and a table with the rows the map produces.
  auto vocabulary = [](fb::ModelT& m, std::vector<int64_t> keys, size_t bytes) {
    auto b = std::make_unique<fb::BufferT>();
    b->data.assign(reinterpret_cast<const uint8_t*>(keys.data()),
                   reinterpret_cast<const uint8_t*>(keys.data()) + bytes);
    m.buffers.push_back(std::move(b));
    m.tensor_inputs[0]->id_map = fb::IdMap::VOCABULARY;
    m.tensor_inputs[0]->vocabulary = static_cast<uint32_t>(m.buffers.size() - 1);
  };
  CHECK(Verify(Edited([&](fb::ModelT& m) { vocabulary(m, {1, 5, 9}, 24); })) == MTAN_OK);
  Expect(Edited([&](fb::ModelT& m) { vocabulary(m, {1, 9, 5}, 24); }), MTAN_ERROR_BUFFER,
         "keys 1 and 2 are not ascending and distinct");
  Expect(Edited([&](fb::ModelT& m) { vocabulary(m, {1, 5, 5}, 24); }), MTAN_ERROR_BUFFER,
         "not ascending and distinct");
  Expect(Edited([&](fb::ModelT& m) { vocabulary(m, {1, 5, 9}, 20); }), MTAN_ERROR_BUFFER,
         "not 1..");
  Expect(Edited([&](fb::ModelT& m) { vocabulary(m, {1, 2, 3, 4, 5, 6, 7}, 56); }), MTAN_ERROR_SHAPE,
         "map to 8 rows, table 'table' has 7");
  Expect(Edited([&](fb::ModelT& m) { vocabulary(m, {1}, 8); m.tensor_inputs[0]->hash_buckets = 2; }),
         MTAN_ERROR_OPERATOR, "is not a valid map");
  Expect(Edited([](fb::ModelT& m) { m.tensor_inputs[0]->id_map = fb::IdMap::HASHED; }),
         MTAN_ERROR_OPERATOR, "is not a valid map");
  Expect(Edited([](fb::ModelT& m) { m.tensor_inputs[0]->hash_buckets = 3; }), MTAN_ERROR_OPERATOR,
         "is not a valid map");
  Expect(Edited([](fb::ModelT& m) {
           m.tensor_inputs[0]->id_map = fb::IdMap::HASHED;
           m.tensor_inputs[0]->hash_buckets = kVocab + 1;
         }),
         MTAN_ERROR_SHAPE, "map to 8 rows");
  // The combiner belongs to EMBEDDING_BAG.
  Expect(Edited([](fb::ModelT& m) { m.operators.back()->combiner = fb::Combiner::MEAN; }),
         MTAN_ERROR_OPERATOR, "combiner");
  // An int8 table has a scale per row.
  Expect(Edited([](fb::ModelT& m) {
           auto& t = *m.tensors[Find(m, "table")];
           t.dtype = fb::DType::INT8;
           m.buffers[t.buffer]->data.resize(kVocab * kWidth);
           t.quantization = std::make_unique<fb::QuantizationT>();
           t.quantization->scale = {0.1f};
         }),
         MTAN_ERROR_QUANTIZATION, "one scale per row");
}

TEST_CASE("tensor inputs: the quantizer makes the table row-wise int8, the bag's output float") {
  const BagNet net;
  fb::ModelT f = BagModel(net);
  std::vector<host::Range> ranges(f.tensors.size(), host::Range{-6.0f, 6.0f});
  fb::ModelT q = host::QuantizeModel(f, ranges);
  const fb::TensorT& table = *q.tensors[Find(q, "table")];
  CHECK(table.dtype == fb::DType::INT8);
  CHECK(table.quantization->scale.size() == static_cast<size_t>(kVocab));
  CHECK(table.quantization->zero_point.size() == static_cast<size_t>(kVocab));
  for (const auto& op : q.operators)
    if (op->opcode == fb::OpCode::EMBEDDING_BAG) {
      CHECK(q.tensors[op->inputs[0]]->dtype == fb::DType::INT64);
      CHECK(q.tensors[op->outputs[0]]->dtype == fb::DType::FLOAT32);
    }
  CHECK(q.tensors[Find(q, "a")]->dtype == fb::DType::INT8);
  // Each table value within half a step of its row's scale.
  for (int r = 0; r < kVocab; ++r)
    for (int k = 0; k < kWidth; ++k) {
      const int8_t code = static_cast<int8_t>(q.buffers[table.buffer]->data[r * kWidth + k]);
      const float back = table.quantization->scale[r] * (code - table.quantization->zero_point[r]);
      CHECK(std::fabs(back - net.table[r * kWidth + k]) <= 0.5f * table.quantization->scale[r] + 1e-6f);
    }
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
  // float_ops keeps the bag and its table in float.
  host::QuantizeOptions keep;
  keep.float_ops.assign(f.operators.size(), 0);
  for (size_t o = 0; o < f.operators.size(); ++o)
    keep.float_ops[o] = f.operators[o]->opcode == fb::OpCode::EMBEDDING_BAG;
  fb::ModelT kept = host::QuantizeModel(f, ranges, keep);
  CHECK(kept.tensors[Find(kept, "table")]->dtype == fb::DType::FLOAT32);
}

TEST_CASE("tensor inputs: vocabulary and hashed ids map to table rows, as contract.h defines") {
  const BagNet net;
  const uint32_t n = 6;
  const std::vector<int64_t> keys = {-5, 3, 17, 100, 1000000000000, std::numeric_limits<int64_t>::max()};
  // Keys, unknown keys (the out-of-vocabulary row, 6) and padding.
  const std::vector<int64_t> raw = {
      -5, 3, 17, 100, 1000000000000,  42, -1, -1, -1, -1,  std::numeric_limits<int64_t>::max(),
      std::numeric_limits<int64_t>::min(), 4, 3, 3,  -1, -1, -1, -1, -1,  0, 18, 99, 101, -6,
      17, -1, 17, -1, 17};
  auto vocabulary_row = [&](int64_t k) -> int64_t {
    if (k == -1) return -1;
    const auto it = std::lower_bound(keys.begin(), keys.end(), k);
    return it != keys.end() && *it == k ? it - keys.begin() : static_cast<int64_t>(keys.size());
  };
  const auto rows = Rows(n);
  for (fb::IdMap map : {fb::IdMap::VOCABULARY, fb::IdMap::HASHED}) {
    CAPTURE(static_cast<int>(map));
    fb::ModelT m = BagModel(net);
    auto& in = *m.tensor_inputs[0];
    in.id_map = map;
    std::vector<int64_t> ids = raw, want(raw.size());
    if (map == fb::IdMap::VOCABULARY) {
      auto b = std::make_unique<fb::BufferT>();
      b->data.assign(reinterpret_cast<const uint8_t*>(keys.data()),
                     reinterpret_cast<const uint8_t*>(keys.data() + keys.size()));
      m.buffers.push_back(std::move(b));
      in.vocabulary = static_cast<uint32_t>(m.buffers.size() - 1);
      for (size_t i = 0; i < raw.size(); ++i) want[i] = vocabulary_row(raw[i]);
    } else {
      in.hash_buckets = kVocab;
      // String ids as apps hash them, and raw integers, both bucketed.
      const char* words[] = {"shoe", "boot", "", "sandal", "shoe"};
      for (int i = 0; i < 5; ++i) ids[i] = mtan_hash_id(words[i], std::strlen(words[i]));
      for (size_t i = 0; i < ids.size(); ++i)
        want[i] = ids[i] == -1 ? -1 : static_cast<int64_t>(static_cast<uint64_t>(ids[i]) % kVocab);
    }
    test::Loaded rt(host::FinishModel(m, n, /*reuse_memory=*/false), n, MTAN_BACKEND_DEFAULT);
    REQUIRE_MESSAGE(rt.status == MTAN_OK, mtan_last_error());
    mtan_input_info info;
    REQUIRE(mtan_tensor_input_info(rt.model, 0, &info) == MTAN_OK);
    CHECK(info.id_map == static_cast<uint32_t>(map));
    CHECK(info.id_rows == (map == fb::IdMap::VOCABULARY ? keys.size() + 1 : static_cast<uint32_t>(kVocab)));
    std::vector<float> out(2 * n);
    const void* inputs[] = {ids.data()};
    REQUIRE_MESSAGE(mtan_run_inputs(rt.model, rows.data(), inputs, 1, n, MTAN_ALL_TASKS, out.data(),
                                    out.size(), nullptr) == MTAN_OK, mtan_last_error());
    // The rows the runtime looked up, and the outputs they give.
    mtan_tensor_desc d;
    REQUIRE(mtan_tensor_get(rt.model, static_cast<uint32_t>(Find(m, "viewed")), &d) == MTAN_OK);
    CHECK(std::memcmp(d.data, want.data(), want.size() * 8) == 0);
    for (uint32_t r = 0; r < n; ++r) {
      double click, spend;
      net.Run(&rows[r * kFeatures], &want[r * kLength], &click, &spend);
      CHECK(out[2 * r] == doctest::Approx(click).epsilon(1e-5));
    }
  }
}

TEST_CASE("mtan_hash_id is XXH64 with seed 0, as xxhsum -H64 prints it") {
  // `printf abc | xxhsum -H64` and `printf '' | xxhsum -H64`.
  CHECK(static_cast<uint64_t>(mtan_hash_id("abc", 3)) == 0x44bc2cf5ad770999ull);
  CHECK(static_cast<uint64_t>(mtan_hash_id("", 0)) == 0xef46db3751d8e999ull);
  CHECK(mtan_hash_id(nullptr, 0) == mtan_hash_id("", 0));
  CHECK(static_cast<uint64_t>(mtan_hash_id("shoe", 4)) == 0xe0748e95db1af70bull);
}

TEST_CASE("mtan_run_batch: CSR ids give the padded rows' outputs; every odd input has its answer") {
  const BagNet net;
  fb::ModelT m = BagModel(net);
  // A vocabulary model: keys 10, 20, .., 60 are rows 0..5; every other key,
  // negative ones included, is row 6 (out of vocabulary).
  const std::vector<int64_t> keys = {10, 20, 30, 40, 50, 60};
  auto b = std::make_unique<fb::BufferT>();
  b->data.assign(reinterpret_cast<const uint8_t*>(keys.data()),
                 reinterpret_cast<const uint8_t*>(keys.data() + keys.size()));
  m.buffers.push_back(std::move(b));
  m.tensor_inputs[0]->id_map = fb::IdMap::VOCABULARY;
  m.tensor_inputs[0]->vocabulary = static_cast<uint32_t>(m.buffers.size() - 1);
  const uint32_t n = 5;
  test::Loaded rt(host::FinishModel(m, n, /*reuse_memory=*/false), n, MTAN_BACKEND_DEFAULT);
  REQUIRE_MESSAGE(rt.status == MTAN_OK, mtan_last_error());
  const auto rows = Rows(n);
  // Row 0: an empty bag; row 1: five known keys (the longest bag); row 2: an
  // unknown key and a negative one; row 3: -1 inside a bag (skipped); row 4:
  // one key.
  const std::vector<int64_t> ids = {10, 20, 30, 40, 60,  99, -7,  30, -1, 50,  20};
  const std::vector<uint32_t> offsets = {0, 0, 5, 7, 10, 11};
  const std::vector<int64_t> padded_rows = {-1, -1, -1, -1, -1,  0, 1, 2, 3, 5,  6, 6, -1, -1, -1,
                                            2, -1, 4, -1, -1,  1, -1, -1, -1, -1};
  mtan_ids in{ids.data(), offsets.data()};
  mtan_batch batch{rows.data(), n, &in, 1};
  std::vector<float> out(2 * n);
  REQUIRE_MESSAGE(mtan_run_batch(rt.model, &batch, MTAN_ALL_TASKS, out.data(), out.size(), nullptr) ==
                      MTAN_OK, mtan_last_error());
  mtan_tensor_desc d;
  REQUIRE(mtan_tensor_get(rt.model, static_cast<uint32_t>(Find(m, "viewed")), &d) == MTAN_OK);
  CHECK(std::memcmp(d.data, padded_rows.data(), padded_rows.size() * 8) == 0);
  for (uint32_t r = 0; r < n; ++r) {
    double click, spend;
    net.Run(&rows[r * kFeatures], &padded_rows[r * kLength], &click, &spend);
    CHECK(out[2 * r] == doctest::Approx(click).epsilon(1e-5));
  }
  // The same rows through mtan_run_inputs' padded keys: the same outputs.
  std::vector<int64_t> padded_keys(n * kLength, -1);
  for (uint32_t r = 0; r < n; ++r)
    for (uint32_t k = offsets[r]; k < offsets[r + 1]; ++k) padded_keys[r * kLength + k - offsets[r]] = ids[k];
  std::vector<float> out2(2 * n);
  const void* inputs[] = {padded_keys.data()};
  REQUIRE(mtan_run_inputs(rt.model, rows.data(), inputs, 1, n, MTAN_ALL_TASKS, out2.data(), out2.size(),
                          nullptr) == MTAN_OK);
  CHECK(out == out2);

  auto fails = [&](const mtan_batch& bb, mtan_status want, const char* what) {
    CAPTURE(what);
    const mtan_status s = mtan_run_batch(rt.model, &bb, MTAN_ALL_TASKS, out.data(), out.size(), nullptr);
    CHECK_MESSAGE(s == want, mtan_status_string(s) << ": " << mtan_last_error());
    CHECK_MESSAGE(std::string(mtan_last_error()).find(what) != std::string::npos, mtan_last_error());
  };
  {
    const std::vector<uint32_t> too_long = {0, 0, 6, 7, 10, 11};  // row 1 holds 6 ids
    mtan_ids bad{ids.data(), too_long.data()};
    fails({rows.data(), n, &bad, 1}, MTAN_ERROR_INPUT_ID, "row 1 of 'viewed' holds 6 ids; the model takes at most 5");
  }
  {
    const std::vector<uint32_t> decreasing = {0, 3, 2, 7, 10, 11};
    mtan_ids bad{ids.data(), decreasing.data()};
    fails({rows.data(), n, &bad, 1}, MTAN_ERROR_INVALID_ARGUMENT, "offsets[2] = 2 is below offsets[1] = 3");
  }
  {
    const std::vector<uint32_t> shifted = {1, 1, 5, 7, 10, 11};
    mtan_ids bad{ids.data(), shifted.data()};
    fails({rows.data(), n, &bad, 1}, MTAN_ERROR_INVALID_ARGUMENT, "offsets[0] is 1, not 0");
  }
  {
    mtan_ids bad{ids.data(), nullptr};
    fails({rows.data(), n, &bad, 1}, MTAN_ERROR_INVALID_ARGUMENT, "ids or offsets is NULL");
    fails({rows.data(), n, nullptr, 1}, MTAN_ERROR_INVALID_ARGUMENT, "ids is NULL");
    fails({rows.data(), n, &in, 0}, MTAN_ERROR_INVALID_ARGUMENT, "0 id inputs given; this model takes 1");
    fails({rows.data(), n + 1, &in, 1}, MTAN_ERROR_BATCH, "batch 6");
  }
  CHECK(mtan_run_batch(rt.model, nullptr, MTAN_ALL_TASKS, out.data(), out.size(), nullptr) ==
        MTAN_ERROR_INVALID_ARGUMENT);
}
