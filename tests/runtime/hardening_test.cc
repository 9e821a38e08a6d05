// Regressions of the second hardening review (issue 12), runtime side: arena
// sizes that wrapped on 32-bit targets, verification cost under weight
// sharing, float models answering NaN for huge finite features, names with an
// embedded NUL or duplicated, and per-output golden tolerances. The 32-bit
// cases run under qemu-arm through platforms/test-arm.sh.
#include <time.h>

#include <cmath>
#include <cstring>
#include <string>

#include "doctest/doctest.h"
#include "test_models.h"

using namespace mtan;

namespace {

// Arena bytes of `file` with these options, or the status.
mtan_status ArenaSize(const host::ModelBytes& bytes, mtan_backend backend, size_t* need) {
  mtan_options opt = mtan_options_default();
  opt.backend = backend;
  return mtan_arena_size(bytes.data(), bytes.size(), &opt, need);
}

double ThreadCpuSeconds() {
  timespec t{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) + 1e-9 * static_cast<double>(t.tv_nsec);
}

std::string LastError() { return mtan_last_error(); }

}  // namespace

TEST_SUITE("hardening") {
  // Finding 1. Carver::used and XnnArena::used were size_t without an
  // overflow check: one weight shared by 4091 operators asks for over 4 GiB
  // (each carves its scales or its packed copy); on armhf the sum wrapped to
  // 721,536 bytes and mtan_load into that arena wrote past its end (SIGSEGV).
  TEST_CASE("an arena above MTAN_MAX_ARENA_BYTES is MTAN_ERROR_LIMIT on every target") {
    REQUIRE(mtan_init() == MTAN_OK);
    fb::ModelT m = tiny::SharedWeightModel(4091, 262144);
    const host::ModelBytes bytes(host::FinishModel(m, 1));
    MESSAGE("shared-weight model: " << bytes.size() << " bytes, " << m.operators.size()
            << " operators, size_t of " << sizeof(size_t) << " bytes");
    CHECK(bytes.size() < 4u * 1024 * 1024);  // inside a kiosk's 4 MiB file limit
    for (mtan_backend backend : {MTAN_BACKEND_REFERENCE, MTAN_BACKEND_XNNPACK}) {
      CAPTURE(backend);
      size_t need = 0;
      CHECK(ArenaSize(bytes, backend, &need) == MTAN_ERROR_LIMIT);
      CHECK(LastError().find("MTAN_MAX_ARENA_BYTES") != std::string::npos);
      // Whatever arena a caller offers, load refuses before carving it.
      std::vector<uint8_t> arena(1 << 20);
      mtan_options opt = {0, static_cast<uint32_t>(backend)};
      mtan_model* model = nullptr;
      CHECK(mtan_load(bytes.data(), bytes.size(), &opt, arena.data(), arena.size(), &model) ==
            MTAN_ERROR_LIMIT);
      CHECK(model == nullptr);
    }
  }

  TEST_CASE("below the cap, a shared weight sizes exactly and loads") {
    REQUIRE(mtan_init() == MTAN_OK);
    fb::ModelT m = tiny::SharedWeightModel(64, 4096);
    const host::ModelBytes bytes(host::FinishModel(m, 1));
    for (mtan_backend backend : {MTAN_BACKEND_REFERENCE, MTAN_BACKEND_XNNPACK}) {
      CAPTURE(backend);
      size_t need = 0;
      REQUIRE(ArenaSize(bytes, backend, &need) == MTAN_OK);
      // Every operator carves its own: at least 64 x the 16 KB of scales.
      CHECK(need > 64u * 4096u * 4u);
      std::vector<uint8_t> storage(need + 64 + 4096, 0x5A);
      uint8_t* arena = reinterpret_cast<uint8_t*>(
          (reinterpret_cast<uintptr_t>(storage.data()) + 63) & ~uintptr_t{63});
      const size_t tail = storage.size() - static_cast<size_t>(arena - storage.data()) - need;
      mtan_options opt = {0, static_cast<uint32_t>(backend)};
      mtan_model* model = nullptr;
      REQUIRE(mtan_load(bytes.data(), bytes.size(), &opt, arena, need, &model) == MTAN_OK);
      size_t used = 0;
      CHECK(mtan_arena_used(model, &used) == MTAN_OK);
      CHECK(used == need);
      const float x = 1.0f;
      std::vector<float> out(4096);
      CHECK(mtan_run(model, &x, 1, MTAN_ALL_TASKS, out.data(), out.size(), nullptr) == MTAN_OK);
      mtan_unload(model);
      // Nothing past the arena was written.
      for (size_t i = 0; i < tail; ++i) REQUIRE(arena[need + i] == 0x5A);
    }
  }

  // Finding 9. The int8 accumulator check ran again for every operator that
  // shares a weight: 5.7 s per mtan_arena_size for a 4 MB file. Now it runs
  // once per weight data, so sizing the 4091-operator model above costs
  // about what the same graph over a 16-channel weight does.
  TEST_CASE("verification checks each weight once, however many operators share it") {
    REQUIRE(mtan_init() == MTAN_OK);
    fb::ModelT wide = tiny::SharedWeightModel(4091, 262144);
    fb::ModelT narrow = tiny::SharedWeightModel(4091, 16);
    const host::ModelBytes wide_bytes(host::FinishModel(wide, 1));
    const host::ModelBytes narrow_bytes(host::FinishModel(narrow, 1));
    size_t need = 0;
    double t0 = ThreadCpuSeconds();
    CHECK(ArenaSize(narrow_bytes, MTAN_BACKEND_REFERENCE, &need) == MTAN_OK);
    const double narrow_s = ThreadCpuSeconds() - t0;
    t0 = ThreadCpuSeconds();
    CHECK(ArenaSize(wide_bytes, MTAN_BACKEND_REFERENCE, &need) == MTAN_ERROR_LIMIT);
    const double wide_s = ThreadCpuSeconds() - t0;
    MESSAGE("CPU to verify and size 4091 operators sharing one weight: 262144 channels "
            << wide_s << " s, 16 channels " << narrow_s << " s");
    // Checked per operator, the wide one costs 4091 passes over 262144 rows
    // (~1000x the narrow one); once, a few times at most.
    CHECK(wide_s < 10.0 * narrow_s + 0.05);
  }

  // Finding 4. Features of 1e28 or -3.4e38 made float models return NaN (14
  // of 92 cases) or differ between backends (87 of 92) with MTAN_OK: the
  // standardised value overflowed the network. It is clamped now, and the
  // verifier proves the float network finite for clamped inputs.
  TEST_CASE("huge finite features give finite outputs that agree across backends") {
    REQUIRE(mtan_init() == MTAN_OK);
    for (bool int8 : {false, true}) {
      CAPTURE(int8);
      fb::ModelT m = int8 ? test::Int8Model(12) : test::FloatModel(12);
      const auto file = host::FinishModel(m, 128);
      const std::vector<float> base = test::RandomRows(13, 1);
      const float kHuge[] = {3.4e38f, -3.4e38f, 1e28f, -1e28f, 1e10f, -1e10f, 65504.0f, -65504.0f, 1e-38f};
      std::vector<float> rows;
      for (int i = 0; i < 10; ++i)
        for (float v : kHuge) {
          std::vector<float> r = base;
          r[i] = v;
          rows.insert(rows.end(), r.begin(), r.end());
        }
      for (float v : {3.4e38f, -3.4e38f}) rows.insert(rows.end(), 10, v);
      const uint32_t n = static_cast<uint32_t>(rows.size() / 10);
      REQUIRE(n == 92);
      test::Loaded xnn(file, 128, MTAN_BACKEND_XNNPACK), ref(file, 128, MTAN_BACKEND_REFERENCE);
      REQUIRE(xnn.status == MTAN_OK);
      REQUIRE(ref.status == MTAN_OK);
      const auto a = xnn.Run(rows, n, MTAN_ALL_TASKS), b = ref.Run(rows, n, MTAN_ALL_TASKS);
      int non_finite = 0, differ = 0;
      for (size_t i = 0; i < a.size(); ++i) {
        non_finite += !std::isfinite(a[i]) || !std::isfinite(b[i]);
        const size_t k = i % 6;  // click, 4 category probabilities, spend
        if (k < 5) CHECK((a[i] >= 0.0f && a[i] <= 1.0f && b[i] >= 0.0f && b[i] <= 1.0f));
        differ += !(std::fabs(a[i] - b[i]) <= 2e-3 * std::max(1.0f, std::fabs(b[i])));
      }
      CHECK(non_finite == 0);
      // Float: the same arithmetic up to rounding. (int8 backends may round
      // a requantization the other way: the golden tolerances cover that.)
      if (!int8) CHECK(differ == 0);
    }
  }

  TEST_CASE("a float model whose weights could overflow float32 is refused") {
    REQUIRE(mtan_init() == MTAN_OK);
    auto tensor = [](fb::ModelT& m, const std::string& name) -> fb::TensorT& {
      for (auto& t : m.tensors)
        if (t->name == name) return *t;
      FAIL("no tensor " << name);
      throw;
    };
    {
      // A finite weight of 3e38: 1024 * 3e38 overflows, so every output of a
      // clamped feature would be inf or NaN.
      fb::ModelT m = test::FloatModel(14);
      const fb::TensorT& w = tensor(m, "trunk0.fc1.weight");
      const float big = 3e38f;
      std::memcpy(m.buffers[w.buffer]->data.data(), &big, 4);
      const host::ModelBytes bytes(host::FinishModel(m, 4));
      size_t need = 0;
      CHECK(ArenaSize(bytes, MTAN_BACKEND_REFERENCE, &need) == MTAN_ERROR_BUFFER);
      CHECK(LastError().find("'trunk0.fc1' could reach") != std::string::npos);
    }
    {
      // An int8 scale so large that a dequantized value overflows (the
      // "still possible" NaN of issue 7's results).
      fb::ModelT m = test::Int8Model(14);
      bool changed = false;
      for (const auto& op : m.operators)
        if (op->opcode == fb::OpCode::DEQUANTIZE && !changed) {
          m.tensors[op->inputs[0]]->quantization->scale[0] = 1e37f;
          changed = true;
        }
      REQUIRE(changed);
      const host::ModelBytes bytes(host::FinishModel(m, 4));
      size_t need = 0;
      CHECK(ArenaSize(bytes, MTAN_BACKEND_REFERENCE, &need) == MTAN_ERROR_QUANTIZATION);
    }
    // The unedited models load.
    fb::ModelT ok = test::FloatModel(14);
    const host::ModelBytes bytes(host::FinishModel(ok, 4));
    size_t need = 0;
    CHECK(ArenaSize(bytes, MTAN_BACKEND_REFERENCE, &need) == MTAN_OK);
  }

  // Finding 8. Task names "spend\0v1" and "spend\0v2" both read as "spend"
  // through the C API: mtan_task_find found task 0 for either. Names are
  // checked now: no NUL or control character, not empty or too long, unique.
  TEST_CASE("names: an embedded NUL, a control character, an empty, long or duplicate name") {
    REQUIRE(mtan_init() == MTAN_OK);
    auto status_of = [](void (*edit)(fb::ModelT&)) {
      fb::ModelT m = test::FloatModel(15);
      edit(m);
      const host::ModelBytes bytes(host::FinishModel(m, 4));
      size_t need = 0;
      return ArenaSize(bytes, MTAN_BACKEND_REFERENCE, &need);
    };
    CHECK(status_of([](fb::ModelT&) {}) == MTAN_OK);
    CHECK(status_of([](fb::ModelT& m) {
            m.tasks[0]->name = std::string("spend\0v1", 8);
            m.tasks[2]->name = std::string("spend\0v2", 8);
          }) == MTAN_ERROR_NAME);
    CHECK(LastError().find("task 0: name holds a NUL or control character") != std::string::npos);
    CHECK(status_of([](fb::ModelT& m) { m.tasks[1]->name = "click"; }) == MTAN_ERROR_NAME);
    CHECK(LastError().find("tasks 0 and 1 are both named 'click'") != std::string::npos);
    CHECK(status_of([](fb::ModelT& m) { m.tasks[1]->name = "cat\tegory"; }) == MTAN_ERROR_NAME);
    CHECK(status_of([](fb::ModelT& m) { m.tasks[1]->name.assign(MTAN_MAX_NAME_BYTES + 1, 'c'); }) ==
          MTAN_ERROR_NAME);
    CHECK(status_of([](fb::ModelT& m) { m.tasks[1]->name.assign(MTAN_MAX_NAME_BYTES, 'c'); }) ==
          MTAN_OK);
    CHECK(status_of([](fb::ModelT& m) { m.inputs[3]->name = "f1"; }) == MTAN_ERROR_NAME);
    CHECK(LastError().find("inputs 1 and 3 are both named 'f1'") != std::string::npos);
    CHECK(status_of([](fb::ModelT& m) { m.inputs[3]->name = std::string("f3\0x", 4); }) ==
          MTAN_ERROR_NAME);
    CHECK(status_of([](fb::ModelT& m) { m.inputs[3]->name.clear(); }) == MTAN_ERROR_NAME);
    CHECK(status_of([](fb::ModelT& m) { m.inputs[3]->name = "f\x7f"; }) == MTAN_ERROR_NAME);
    CHECK(status_of([](fb::ModelT& m) { m.tasks[1]->class_names[2] = "a"; }) == MTAN_ERROR_NAME);
    CHECK(LastError().find("task 'category': class 0 and 2 are both named 'a'") != std::string::npos);
    // UTF-8 is a name like any other.
    CHECK(status_of([](fb::ModelT& m) { m.inputs[3]->name = "pr\xc3\xa9" "cio"; }) == MTAN_OK);
  }

  // Finding 5, the format side: a golden case has one tolerance per output
  // (format 1.1); a 1.0 case (one tolerance) still self-tests.
  TEST_CASE("golden tolerances: one per output, checked; a 1.0 case keeps its one tolerance") {
    REQUIRE(mtan_init() == MTAN_OK);
    fb::ModelT m = test::FloatModel(16);
    const auto rows = test::RandomRows(17, 3);
    std::string error;
    REQUIRE_MESSAGE(tiny::AddReferenceGolden(m, rows, 3, 1e-4f, &error), error);
    REQUIRE(m.golden[0]->tolerances.size() == 6);
    auto self_test = [](fb::ModelT& model) {
      test::Loaded l(host::FinishModel(model, 4), 0, MTAN_BACKEND_REFERENCE);
      return l.status != MTAN_OK ? l.status : mtan_self_test(l.model);
    };
    CHECK(self_test(m) == MTAN_OK);
    // Each output is held to its own tolerance: output 5 (spend) may move
    // by its tolerance, output 0 (click) may not move by spend's.
    m.golden[0]->tolerances[5] = 10.0f;
    m.golden[0]->output[5] += 5.0f;
    CHECK(self_test(m) == MTAN_OK);
    m.golden[0]->output[6 + 0] += 5e-4f;  // row 1, click
    CHECK(self_test(m) == MTAN_ERROR_SELF_TEST);
    CHECK(LastError().find("row 1, output 0") != std::string::npos);
    m.golden[0]->output[6 + 0] -= 5e-4f;
    // Wrong count, negative or NaN: a malformed case.
    m.golden[0]->tolerances.push_back(1.0f);
    CHECK(self_test(m) == MTAN_ERROR_SHAPE);
    m.golden[0]->tolerances.pop_back();
    m.golden[0]->tolerances[2] = -1.0f;
    CHECK(self_test(m) == MTAN_ERROR_SHAPE);
    m.golden[0]->tolerances[2] = NAN;
    CHECK(self_test(m) == MTAN_ERROR_SHAPE);
    // A format-1.0 case: no per-output list, one tolerance for all.
    m.golden[0]->tolerances.clear();
    m.golden[0]->tolerance = 10.0f;
    CHECK(self_test(m) == MTAN_OK);
    m.golden[0]->tolerance = 1e-4f;
    CHECK(self_test(m) == MTAN_ERROR_SELF_TEST);  // output 5 moved by 5
  }
}
