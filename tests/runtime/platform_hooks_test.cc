// The platform-hook boundary (runtime/src/platform.h): a runtime built with
// other hooks (counting_hooks.cc) takes its load lock and its error buffer
// from them alone, takes the lock once per sizing, load, unload and init
// (never recursively), and releases it on every path, failures included.
// Self-contained: links that runtime and nothing of the host library, so the
// model is written here with the FlatBuffers object API.
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "counting_hooks.h"
#include "doctest/doctest.h"
#include "format.h"
#include "mtan/mtan.h"
#include "mtan_generated.h"

using namespace mtan;

namespace {

// y = (x - 1) / 2 as a float model: one QUANTIZE, one regression task, one
// golden case.
std::vector<uint8_t> TinyModel() {
  fb::ModelT m;
  m.buffers.push_back(std::make_unique<fb::BufferT>());
  auto in = std::make_unique<fb::InputT>();
  in->name = "x";
  in->mean = 1.0f;
  in->std = 2.0f;
  m.inputs.push_back(std::move(in));
  for (const char* name : {"input", "y"}) {
    auto t = std::make_unique<fb::TensorT>();
    t->name = name;
    t->dtype = fb::DType::FLOAT32;
    t->shape = {1};
    m.tensors.push_back(std::move(t));
  }
  m.input_tensor = 0;
  auto op = std::make_unique<fb::OperatorT>();
  op->opcode = fb::OpCode::QUANTIZE;
  op->inputs = {0};
  op->outputs = {1};
  m.operators.push_back(std::move(op));
  auto task = std::make_unique<fb::TaskT>();
  task->name = "y";
  task->kind = fb::TaskKind::REGRESSION;
  task->output = 1;
  task->plan = {0};
  m.tasks.push_back(std::move(task));
  m.activation_bytes_per_row = 4;
  m.max_batch = 4;
  m.version_minor = MTAN_VERSION_MINOR;
  auto g = std::make_unique<fb::GoldenCaseT>();
  g->rows = 2;
  g->input = {1.0f, 5.0f};
  g->output = {0.0f, 2.0f};
  g->tolerances = {1e-6f};
  m.golden.push_back(std::move(g));
  flatbuffers::FlatBufferBuilder fbb;
  fb::FinishModelBuffer(fbb, fb::Model::Pack(fbb, &m));
  std::vector<uint8_t> out(fbb.GetBufferPointer(), fbb.GetBufferPointer() + fbb.GetSize());
  const Footer footer = MakeFooter(out.data(), out.size());
  const uint8_t* f = reinterpret_cast<const uint8_t*>(&footer);
  out.insert(out.end(), f, f + sizeof footer);
  return out;
}

struct Aligned {
  void* p = nullptr;
  explicit Aligned(const std::vector<uint8_t>& bytes) {
    REQUIRE(posix_memalign(&p, 64, bytes.size()) == 0);
    std::memcpy(p, bytes.data(), bytes.size());
  }
  ~Aligned() { std::free(p); }
};

void CheckBalanced() {
  const mtan_test_hook_counts c = mtan_test_hooks_counts();
  CHECK(c.acquired == c.released);
  CHECK(c.max_depth == 1);
}

}  // namespace

TEST_CASE("the runtime takes its lock and error buffer from the platform hooks") {
  REQUIRE(mtan_init() == MTAN_OK);
  CheckBalanced();
  const std::vector<uint8_t> file = TinyModel();
  Aligned bytes(file);
  mtan_test_hook_counts before = mtan_test_hooks_counts();
  size_t need = 0;
  REQUIRE(mtan_arena_size(bytes.p, file.size(), nullptr, &need) == MTAN_OK);
  CHECK(mtan_test_hooks_counts().acquired == before.acquired + 1);
  CheckBalanced();

  std::vector<uint8_t> arena(need + 64);
  mtan_model* model = nullptr;
  REQUIRE(mtan_load(bytes.p, file.size(), nullptr, arena.data(), arena.size(), &model) == MTAN_OK);
  CheckBalanced();
  const float x[2] = {3.0f, -1.0f};
  float y[2] = {0, 0};
  CHECK(mtan_run(model, x, 2, MTAN_ALL_TASKS, y, 2, nullptr) == MTAN_OK);
  CHECK(y[0] == 1.0f);
  CHECK(y[1] == -1.0f);
  CHECK(mtan_self_test(model) == MTAN_OK);
  before = mtan_test_hooks_counts();
  mtan_unload(model);
  CHECK(mtan_test_hooks_counts().acquired == before.acquired + 1);
  CheckBalanced();

  // Failures: the message is in the hooks' buffer, the lock released.
  std::vector<uint8_t> corrupted = file;
  corrupted[corrupted.size() / 2] ^= 1;
  Aligned bad(corrupted);
  before = mtan_test_hooks_counts();
  CHECK(mtan_arena_size(bad.p, corrupted.size(), nullptr, &need) == MTAN_ERROR_CHECKSUM);
  CHECK(mtan_test_hooks_counts().message_buffer_calls > before.message_buffer_calls);
  CHECK(mtan_last_error() == mtan_test_hooks_message());
  CHECK(std::string(mtan_last_error()).find("checksum") != std::string::npos);
  CHECK(mtan_load(bad.p, corrupted.size(), nullptr, arena.data(), arena.size(), &model) ==
        MTAN_ERROR_CHECKSUM);
  CHECK(mtan_load(bytes.p, file.size(), nullptr, arena.data(), 8, &model) ==
        MTAN_ERROR_ARENA_TOO_SMALL);
  CheckBalanced();
}
