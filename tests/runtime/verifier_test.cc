// Crafted bad files, one per check: each gets its specific status and a
// message, never a crash. Files are sealed with a valid checksum (unless the
// test is about the checksum) so that the check under test is the one hit.
#include <cmath>
#include <cstdio>
#include <cstring>
#include <functional>

#include "doctest/doctest.h"
#include "format.h"
#include "test_models.h"

using namespace mtan;

namespace {

mtan_status Verify(const std::vector<uint8_t>& file) {
  REQUIRE(mtan_init() == MTAN_OK);
  const host::ModelBytes bytes(file);
  size_t need = 0;
  return mtan_arena_size(bytes.data(), bytes.size(), nullptr, &need);
}

// Builds a valid planned model, applies `edit`, seals it without re-planning.
std::vector<uint8_t> Broken(bool int8, const std::function<void(fb::ModelT&)>& edit) {
  fb::ModelT m = int8 ? test::Int8Model(3) : test::FloatModel(3);
  host::FinishModel(m, 8);
  edit(m);
  return host::SealModel(m);
}

void Expect(const std::vector<uint8_t>& file, mtan_status want, const char* message_part) {
  const mtan_status got = Verify(file);
  CHECK_MESSAGE(got == want, mtan_status_string(got) << ": " << mtan_last_error());
  CHECK_MESSAGE(std::strstr(mtan_last_error(), message_part) != nullptr, std::string(mtan_last_error()));
}

int FindTensor(const fb::ModelT& m, const std::string& name) {
  for (size_t i = 0; i < m.tensors.size(); ++i)
    if (m.tensors[i]->name == name) return static_cast<int>(i);
  FAIL("no tensor " << name);
  return -1;
}

}  // namespace

TEST_CASE("a valid model verifies") {
  CHECK(Verify(Broken(false, [](fb::ModelT&) {})) == MTAN_OK);
  CHECK(Verify(Broken(true, [](fb::ModelT&) {})) == MTAN_OK);
}

TEST_CASE("container: empty, truncated, wrong identifier, checksum, trailing bytes") {
  const auto good = Broken(false, [](fb::ModelT&) {});
  Expect({}, MTAN_ERROR_TRUNCATED, "shorter");
  Expect(std::vector<uint8_t>(good.begin(), good.begin() + 8), MTAN_ERROR_TRUNCATED, "shorter");
  Expect(std::vector<uint8_t>(good.begin(), good.begin() + good.size() / 2), MTAN_ERROR_TRUNCATED,
         "truncated");
  auto wrong_id = good;
  wrong_id[4] = 'X';
  Expect(wrong_id, MTAN_ERROR_BAD_IDENTIFIER, "identifier");
  auto flipped = good;
  flipped[good.size() / 2] ^= 0x40;
  Expect(flipped, MTAN_ERROR_CHECKSUM, "corrupted");
  auto longer = good;
  longer.push_back(0);
  Expect(longer, MTAN_ERROR_TRUNCATED, "trailing");
}

TEST_CASE("a FlatBuffer the verifier rejects, with a valid checksum") {
  auto file = Broken(false, [](fb::ModelT&) {});
  const uint32_t huge = 0x7ffffff0u;  // root table offset far outside the file
  std::memcpy(file.data(), &huge, 4);
  Footer footer;
  std::memcpy(&footer, file.data() + file.size() - kFooterBytes, kFooterBytes);
  footer.checksum = Checksum64(file.data(), footer.flatbuffer_bytes);
  std::memcpy(file.data() + file.size() - kFooterBytes, &footer, kFooterBytes);
  Expect(file, MTAN_ERROR_MALFORMED, "verifier");
}

TEST_CASE("format 1.2: the footer holds XXH64, and 1.0 / 1.1 footers are refused by version") {
  const auto good = Broken(false, [](fb::ModelT&) {});
  Footer footer;
  std::memcpy(&footer, good.data() + good.size() - kFooterBytes, kFooterBytes);
  CHECK(std::memcmp(footer.magic, "MTXH", 4) == 0);
  // XXH64 with seed 0 of the FlatBuffer, as libxxhash computes it.
  CHECK(footer.checksum == XXH64(good.data(), footer.flatbuffer_bytes, 0));
  // XXH64's published test vector: the empty input, seed 0.
  CHECK(Checksum64(nullptr, 0) == 0xEF46DB3751D8E999ull);
  auto old = good;
  std::memcpy(old.data() + old.size() - kFooterBytes + 12, "MTCK", 4);
  Expect(old, MTAN_ERROR_VERSION, "format 1.0 or 1.1");
  // A truncated old file is still reported as truncated.
  old.push_back(0);
  Expect(old, MTAN_ERROR_TRUNCATED, "trailing");
#ifndef MTAN_TEST_CROSSCOMPILING
  // Outside tools check it too: xxhsum -H64 of the FlatBuffer prints the
  // footer's checksum.
  const std::string path = "verifier_test_xxh64.bin";
  FILE* f = std::fopen(path.c_str(), "wb");
  REQUIRE(f != nullptr);
  REQUIRE(std::fwrite(good.data(), 1, footer.flatbuffer_bytes, f) == footer.flatbuffer_bytes);
  std::fclose(f);
  FILE* p = popen(("xxhsum -H64 " + path + " 2>/dev/null").c_str(), "r");
  REQUIRE(p != nullptr);
  char line[256] = {};
  const bool read = std::fgets(line, sizeof line, p) != nullptr;
  const int rc = pclose(p);
  std::remove(path.c_str());
  REQUIRE_MESSAGE(read, "xxhsum printed nothing (tools/setup.sh installs it)");
  REQUIRE_MESSAGE(rc == 0, "xxhsum failed: " << line);
  char want[17];
  std::snprintf(want, sizeof want, "%016llx", static_cast<unsigned long long>(footer.checksum));
  CHECK_MESSAGE(std::string(line).find(want) != std::string::npos, "xxhsum: " << line << ", footer: " << want);
#endif
}

TEST_CASE("a newer major version is refused") {
  Expect(Broken(false, [](fb::ModelT& m) { m.version_major = MTAN_VERSION_MAJOR + 1; }),
         MTAN_ERROR_VERSION, "newer");
}

TEST_CASE("indices out of range") {
  Expect(Broken(false, [](fb::ModelT& m) { m.operators[3]->inputs[0] = 100000; }),
         MTAN_ERROR_INDEX, "out of range");
  Expect(Broken(false, [](fb::ModelT& m) { m.operators[3]->inputs[0] = -1; }), MTAN_ERROR_INDEX,
         "tensor -1");
  Expect(Broken(false, [](fb::ModelT& m) { m.tensors[5]->buffer = 99999; }), MTAN_ERROR_INDEX,
         "buffer 99999");
  Expect(Broken(false, [](fb::ModelT& m) { m.input_tensor = 77777; }), MTAN_ERROR_INDEX,
         "input tensor");
}

TEST_CASE("quantization: zero, NaN, infinite scale, zero point out of range") {
  for (float bad : {0.0f, std::nanf(""), INFINITY, -1.0f}) {
    Expect(Broken(true, [&](fb::ModelT& m) {
             m.tensors[FindTensor(m, "trunk0.fc1")]->quantization->scale[0] = bad;
           }),
           MTAN_ERROR_QUANTIZATION, "not finite and positive");
  }
  Expect(Broken(true, [](fb::ModelT& m) {
           m.tensors[FindTensor(m, "trunk0.fc1")]->quantization->zero_point[0] = 300;
         }),
         MTAN_ERROR_QUANTIZATION, "outside int8");
  Expect(Broken(true, [](fb::ModelT& m) {
           m.tensors[FindTensor(m, "click.mask.logistic")]->quantization->scale[0] = 0.01f;
         }),
         MTAN_ERROR_QUANTIZATION, "must have scale");
  Expect(Broken(true, [](fb::ModelT& m) {
           m.tensors[FindTensor(m, "trunk0.fc1.weight")]->quantization->zero_point[0] = 3;
         }),
         MTAN_ERROR_QUANTIZATION, "symmetric");
  Expect(Broken(false, [](fb::ModelT& m) { m.inputs[2]->std = 0.0f; }), MTAN_ERROR_QUANTIZATION,
         "std");
}

TEST_CASE("float weights: NaN or infinite values are refused") {
  for (float bad : {std::nanf(""), INFINITY, -INFINITY}) {
    Expect(Broken(false, [&](fb::ModelT& m) {
             auto& t = *m.tensors[FindTensor(m, "trunk0.fc2.weight")];
             std::memcpy(m.buffers[t.buffer]->data.data() + 8, &bad, 4);
           }),
           MTAN_ERROR_BUFFER, "'trunk0.fc2.weight': value 2 is");
  }
}

// Sets channel 0's bias of trunk0.fc1 to `sign` * (INT32_MAX - 256 * sum |w|
// + past): the accumulator bound, `past` beyond it.
void BiasAtBound(fb::ModelT& m, int sign, int64_t past) {
  const auto& w = *m.tensors[FindTensor(m, "trunk0.fc1.weight")];
  const auto& b = *m.tensors[FindTensor(m, "trunk0.fc1.bias")];
  int64_t sum = 0;
  for (int i = 0; i < w.shape[1]; ++i) sum += std::abs(static_cast<int8_t>(m.buffers[w.buffer]->data[i]));
  const int32_t bias = static_cast<int32_t>(sign * (int64_t{INT32_MAX} - 256 * sum + past));
  std::memcpy(m.buffers[b.buffer]->data.data(), &bias, 4);
}

TEST_CASE("int8 weights and bias that could overflow the int32 accumulator") {
  for (int sign : {1, -1}) {
    Expect(Broken(true, [&](fb::ModelT& m) { BiasAtBound(m, sign, 1); }), MTAN_ERROR_QUANTIZATION,
           "output channel 0 of 'trunk0.fc1.weight' can overflow");
    CHECK(Verify(Broken(true, [&](fb::ModelT& m) { BiasAtBound(m, sign, 0); })) == MTAN_OK);
  }
}

TEST_CASE("shapes: huge dimension, overflowing product, rank") {
  Expect(Broken(false, [](fb::ModelT& m) { m.tensors[FindTensor(m, "trunk0.fc1")]->shape[0] = 1 << 22; }),
         MTAN_ERROR_SHAPE, "dimension 0 is 4194304");
  Expect(Broken(false, [](fb::ModelT& m) {
           m.tensors[FindTensor(m, "trunk0.fc1.weight")]->shape = {1 << 20, 1 << 20, 1 << 20};
         }),
         MTAN_ERROR_SHAPE, "overflows");
  Expect(Broken(false, [](fb::ModelT& m) { m.tensors[FindTensor(m, "trunk0.fc1.weight")]->shape = {}; }),
         MTAN_ERROR_SHAPE, "rank 0");
  Expect(Broken(false, [](fb::ModelT& m) { m.tensors[FindTensor(m, "trunk0.fc1.weight")]->shape = {32, 9}; }),
         MTAN_ERROR_BUFFER, "needs");
}

namespace {

// Appends RESHAPE(tensor `from`) -> a new activation of `shape`, placed in
// 256 new bytes at the end of the row plan (enough for any edit below), and
// returns the new tensor's index.
int AppendReshape(fb::ModelT& m, const std::string& from, std::vector<int32_t> shape) {
  const int x = FindTensor(m, from);
  auto t = std::make_unique<fb::TensorT>(*m.tensors[x]);
  t->name = from + ".reshaped";
  t->shape = std::move(shape);
  t->arena_offset = m.activation_bytes_per_row;
  m.activation_bytes_per_row += 256;
  m.tensors.push_back(std::move(t));
  const int y = static_cast<int>(m.tensors.size()) - 1;
  auto op = std::make_unique<fb::OperatorT>();
  op->opcode = fb::OpCode::RESHAPE;
  op->inputs = {x};
  op->outputs = {y};
  m.operators.push_back(std::move(op));
  return y;
}

}  // namespace

TEST_CASE("per-row shapes: rank 1 to 3 activations, rank-1 operators, elementwise shapes, RESHAPE") {
  // A [4, 8] row is fine for the tensor, but FULLY_CONNECTED takes rank 1.
  Expect(Broken(false, [](fb::ModelT& m) { m.tensors[FindTensor(m, "trunk0.fc1")]->shape = {4, 8}; }),
         MTAN_ERROR_SHAPE, "'trunk0.fc1' has per-row rank 2; this operator takes rank 1");
  // Rank 4 per row is rank 5 with the batch.
  Expect(Broken(false, [](fb::ModelT& m) {
           m.tensors[FindTensor(m, "click.mask.logistic")]->shape = {2, 2, 2, 2};
         }),
         MTAN_ERROR_SHAPE, "per-row rank 4 is not 1..3");
  // Elementwise: the same element count under another shape is not the same shape.
  Expect(Broken(false, [](fb::ModelT& m) {
           m.tensors[FindTensor(m, "click.mask.logistic")]->shape = {4, 4};
         }),
         MTAN_ERROR_SHAPE, "shapes differ");
  // The model input is rank 1.
  Expect(Broken(false, [](fb::ModelT& m) {
           m.tensors[m.input_tensor]->shape = {1, static_cast<int32_t>(m.inputs.size())};
         }),
         MTAN_ERROR_SHAPE, "must be float32 [");
  // So is a task's output.
  Expect(Broken(false, [](fb::ModelT& m) { m.tasks[0]->output = AppendReshape(m, "click.prob", {1, 1}); }),
         MTAN_ERROR_TASK, "per-row rank 2, not 1");
  // RESHAPE keeps the element count, the dtype and the quantization.
  Expect(Broken(true, [](fb::ModelT& m) { AppendReshape(m, "trunk0.fc1", {4, 9}); }),
         MTAN_ERROR_OPERATOR, "changes the number of elements per row");
  Expect(Broken(true, [](fb::ModelT& m) {
           m.tensors[AppendReshape(m, "trunk0.fc1", {4, 8})]->quantization->scale[0] *= 2.0f;
         }),
         MTAN_ERROR_OPERATOR, "changes the quantization");
  Expect(Broken(true, [](fb::ModelT& m) {
           auto& t = *m.tensors[AppendReshape(m, "trunk0.fc1", {2, 4, 4})];
           t.dtype = fb::DType::FLOAT32;
           t.quantization.reset();
         }),
         MTAN_ERROR_OPERATOR, "keeps its dtype");
}

TEST_CASE("buffers: shorter than the tensor, or missing") {
  Expect(Broken(false, [](fb::ModelT& m) {
           auto& t = *m.tensors[FindTensor(m, "trunk0.fc2.weight")];
           m.buffers[t.buffer]->data.resize(m.buffers[t.buffer]->data.size() - 4);
         }),
         MTAN_ERROR_BUFFER, "trunk0.fc2.weight");
  Expect(Broken(false, [](fb::ModelT& m) { m.tensors[FindTensor(m, "trunk0.fc2.bias")]->buffer = 0; m.tensors[FindTensor(m, "trunk0.fc2.bias")]->arena_offset = 1u << 30; }),
         MTAN_ERROR_MEMORY_PLAN, "outside");
}

TEST_CASE("graph: a cycle, a tensor written twice, writing a constant") {
  // Operator 1 (trunk0.fc1) reads the output of operator 2 (trunk0.fc2): a cycle.
  Expect(Broken(false, [](fb::ModelT& m) { m.operators[1]->inputs[0] = m.operators[2]->outputs[0]; }),
         MTAN_ERROR_GRAPH, "before any operator writes it");
  Expect(Broken(false, [](fb::ModelT& m) { m.operators[2]->outputs[0] = m.operators[1]->outputs[0]; }),
         MTAN_ERROR_GRAPH, "written by operators");
  Expect(Broken(false, [](fb::ModelT& m) { m.operators[2]->outputs[0] = m.operators[2]->inputs[1]; }),
         MTAN_ERROR_GRAPH, "constant");
}

TEST_CASE("operators: arity, dtypes, activation, unknown opcode") {
  Expect(Broken(false, [](fb::ModelT& m) { m.operators[1]->inputs.pop_back(); }),
         MTAN_ERROR_OPERATOR, "needs [x, weights, bias]");
  Expect(Broken(false, [](fb::ModelT& m) { m.operators[0]->activation = fb::Activation::RELU; }),
         MTAN_ERROR_OPERATOR, "activation");
  Expect(Broken(false, [](fb::ModelT& m) { m.operators[1]->opcode = static_cast<fb::OpCode>(77); }),
         MTAN_ERROR_OPERATOR, "unknown opcode");
  Expect(Broken(false, [](fb::ModelT& m) {
           m.operators[1]->opcode = fb::OpCode::DEQUANTIZE;
           m.operators[1]->activation = fb::Activation::NONE;
         }),
         MTAN_ERROR_OPERATOR, "int8 -> float32");
  Expect(Broken(false, [](fb::ModelT& m) { m.operators[0]->opcode = fb::OpCode::DEQUANTIZE; }),
         MTAN_ERROR_GRAPH, "only QUANTIZE may");
  Expect(Broken(false, [](fb::ModelT& m) {
           for (auto& op : m.operators) {
             if (op->opcode != fb::OpCode::ATTENTION_POOL) continue;
             const auto in = op->inputs;  // 3 scores, 3 values -> 129 of each
             op->inputs.clear();
             for (int k = 0; k < 2 * (MTAN_MAX_TASKS + 1); ++k) op->inputs.push_back(in[k < MTAN_MAX_TASKS + 1 ? 0 : 3]);
           }
         }),
         MTAN_ERROR_OPERATOR, "at most MTAN_MAX_TASKS");
  Expect(Broken(true, [](fb::ModelT& m) {
           m.tensors[FindTensor(m, "trunk0.fc1.bias")]->dtype = fb::DType::INT8;
         }),
         MTAN_ERROR_BUFFER, "trunk0.fc1.bias");
}

TEST_CASE("tasks: no output, wrong size, bad plan, transform on a binary task") {
  Expect(Broken(false, [](fb::ModelT& m) { m.tasks[0]->output = -1; }), MTAN_ERROR_TASK,
         "no output tensor");
  Expect(Broken(false, [](fb::ModelT& m) { m.tasks[0]->output = m.input_tensor; }), MTAN_ERROR_TASK,
         "not a float32 tensor written");
  Expect(Broken(false, [](fb::ModelT& m) { m.tasks[0]->plan.erase(m.tasks[0]->plan.begin() + 1); }),
         MTAN_ERROR_TASK, "without the operator");
  Expect(Broken(false, [](fb::ModelT& m) { m.tasks[0]->plan.clear(); }), MTAN_ERROR_TASK, "no plan");
  Expect(Broken(false, [](fb::ModelT& m) { std::swap(m.tasks[0]->plan[0], m.tasks[0]->plan[1]); }),
         MTAN_ERROR_TASK, "not ascending");
  Expect(Broken(false, [](fb::ModelT& m) { m.tasks[0]->transform = fb::OutputTransform::EXPM1; }),
         MTAN_ERROR_TASK, "regression only");
  Expect(Broken(false, [](fb::ModelT& m) { m.tasks[1]->class_names.push_back("extra"); }),
         MTAN_ERROR_TASK, "class names");
  Expect(Broken(false, [](fb::ModelT& m) { m.tasks[0]->output = m.tasks[1]->output; }),
         MTAN_ERROR_TASK, "BINARY output has 4 values");
}

TEST_CASE("memory plan: live tensors sharing bytes") {
  Expect(Broken(false, [](fb::ModelT& m) {
           m.tensors[FindTensor(m, "trunk0.fc2")]->arena_offset =
               m.tensors[FindTensor(m, "trunk0.fc1")]->arena_offset;
         }),
         MTAN_ERROR_MEMORY_PLAN, "share arena bytes");
}

TEST_CASE("limits and golden cases") {
  Expect(Broken(false, [](fb::ModelT& m) { m.max_batch = MTAN_MAX_BATCH + 1; }), MTAN_ERROR_LIMIT,
         "max_batch");
  Expect(Broken(false, [](fb::ModelT& m) {
           for (int i = 0; i < MTAN_MAX_TASKS; ++i) {
             auto t = std::make_unique<fb::TaskT>(*m.tasks[0]);
             m.tasks.push_back(std::move(t));
           }
         }),
         MTAN_ERROR_LIMIT, "tasks");
  Expect(Broken(false, [](fb::ModelT& m) {
           auto g = std::make_unique<fb::GoldenCaseT>();
           g->rows = 2;
           g->input.assign(3, 0.0f);
           g->output.assign(12, 0.0f);
           m.golden.push_back(std::move(g));
         }),
         MTAN_ERROR_SHAPE, "golden case 0");
}

TEST_CASE("misaligned or missing model data") {
  REQUIRE(mtan_init() == MTAN_OK);
  const auto good = Broken(false, [](fb::ModelT&) {});
  std::vector<uint8_t> shifted(good.size() + 16);
  const host::ModelBytes aligned(shifted);
  std::memcpy(const_cast<uint8_t*>(aligned.data()) + 4, good.data(), good.size());
  size_t need = 0;
  CHECK(mtan_arena_size(aligned.data() + 4, good.size(), nullptr, &need) == MTAN_ERROR_INVALID_ARGUMENT);
  CHECK(mtan_arena_size(nullptr, 100, nullptr, &need) == MTAN_ERROR_INVALID_ARGUMENT);
  CHECK(mtan_arena_size(aligned.data(), good.size(), nullptr, nullptr) == MTAN_ERROR_INVALID_ARGUMENT);
}
