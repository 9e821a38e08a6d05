// Model hot-swap as a kiosk does it (platforms/README.md, and
// platforms/examples/kiosk --update): the new model is loaded into a second
// arena and self-tested while the current one keeps serving; only then is it
// swapped in. A corrupted or wrong new model is rejected and the current one
// serves on, with the same outputs as before.
#include <algorithm>
#include <cstring>
#include <string>

#include "doctest/doctest.h"
#include "quantize.h"
#include "test_models.h"

using namespace mtan;

namespace {

constexpr uint32_t kRows = 8;

// One serving slot: the model's bytes and its arena, both owned here.
struct Slot {
  host::ModelBytes bytes;
  std::vector<uint8_t> arena_storage;
  mtan_model* model = nullptr;

  // The kiosk's sequence: size, load, self-test. On failure the slot holds
  // nothing and the status says why.
  mtan_status Load(const std::vector<uint8_t>& file) {
    bytes = host::ModelBytes(file);
    mtan_options opt = mtan_options_default();
    size_t need = 0;
    mtan_status s = mtan_arena_size(bytes.data(), bytes.size(), &opt, &need);
    if (s != MTAN_OK) return s;
    arena_storage.assign(need + 64, 0xA5);
    uint8_t* arena = reinterpret_cast<uint8_t*>(
        (reinterpret_cast<uintptr_t>(arena_storage.data()) + 63) & ~uintptr_t{63});
    s = mtan_load(bytes.data(), bytes.size(), &opt, arena, need, &model);
    if (s != MTAN_OK) return s;
    s = mtan_self_test(model);
    if (s != MTAN_OK) {
      mtan_unload(model);
      model = nullptr;
    }
    return s;
  }
  void Unload() {
    mtan_unload(model);
    model = nullptr;
  }
  ~Slot() { Unload(); }

  std::vector<float> Run(const std::vector<float>& rows) {
    uint32_t per_row = 0;
    REQUIRE(mtan_output_size(model, MTAN_ALL_TASKS, &per_row) == MTAN_OK);
    std::vector<float> out(kRows * per_row);
    REQUIRE_MESSAGE(mtan_run(model, rows.data(), kRows, MTAN_ALL_TASKS, out.data(), out.size(),
                             nullptr) == MTAN_OK, std::string(mtan_last_error()));
    return out;
  }
};

// An int8 model with one golden case at the converter's tolerances.
// `spend_offset` moves the spend head's bias (log1p space): 5 gives spends
// near e^5 = 150, in currency units like a shop's.
fb::ModelT GoldenModel(uint32_t seed, float spend_offset = 0.0f) {
  host::MtanWeights w = test::RandomMtan(seed);
  w.tasks[2].head.b[0] += spend_offset;
  fb::ModelT q = test::Int8Model(w, seed);
  const auto rows = test::RandomRows(seed + 100, kRows);
  test::Loaded ref(host::FinishModel(q, 16), kRows, MTAN_BACKEND_REFERENCE);
  REQUIRE_MESSAGE(ref.status == MTAN_OK, std::string(mtan_last_error()));
  const auto y = ref.Run(rows, kRows, MTAN_ALL_TASKS);
  std::string error;
  REQUIRE_MESSAGE(host::AddGoldenCase(q, rows, kRows, y, host::GoldenTolerances(q, y.data(), kRows),
                                      &error), error);
  return q;
}

}  // namespace

TEST_SUITE("hot_swap") {
  // Issue 12, finding 5: one tolerance per case, set by the spend output in
  // currency units (4.6-8.8 on the demo), let a model whose purchase head was
  // negated pass the self-test, and the kiosk swapped to it. Per output, a
  // probability is held to probability units.
  TEST_CASE("a negated or swapped head fails the self-test (one tolerance for all let it pass)") {
    REQUIRE(mtan_init() == MTAN_OK);
    const fb::ModelT good = GoldenModel(61, 5.0f);
    float largest = 0.0f;
    for (float t : good.golden[0]->tolerances) largest = std::max(largest, t);
    MESSAGE("golden tolerances: click " << good.golden[0]->tolerances[0] << ", spend "
            << good.golden[0]->tolerances[5] << " (the largest, for format-1.0 runtimes: "
            << good.golden[0]->tolerance << ")");
    CHECK(largest == good.golden[0]->tolerance);
    for (int variant = 0; variant < 2; ++variant) {
      CAPTURE(variant);
      fb::ModelT q = GoldenModel(61, 5.0f);
      if (variant == 0) test::NegateHead(q, "click");
      else test::SwapClasses(q, "category", 0, 3);
      Slot next;
      CHECK(next.Load(host::FinishModel(q, 16)) == MTAN_ERROR_SELF_TEST);
      MESSAGE("rejected: " << std::string(mtan_last_error()));
      CHECK(next.model == nullptr);
      // The same file with format 1.0's single tolerance: it passes.
      q.golden[0]->tolerances.clear();
      CHECK(next.Load(host::FinishModel(q, 16)) == MTAN_OK);
      next.Unload();
    }
    fb::ModelT q = GoldenModel(61, 5.0f);
    Slot ok;
    CHECK(ok.Load(host::FinishModel(q, 16)) == MTAN_OK);
  }

  TEST_CASE("a good new model is swapped in; the old one served until then") {
    REQUIRE(mtan_init() == MTAN_OK);
    fb::ModelT a = GoldenModel(31), b = GoldenModel(32);
    const auto rows = test::RandomRows(33, kRows);
    Slot slots[2];
    REQUIRE_MESSAGE(slots[0].Load(host::FinishModel(a, 16)) == MTAN_OK, std::string(mtan_last_error()));
    Slot* current = &slots[0];
    const auto before = current->Run(rows);

    Slot* next = &slots[1];
    REQUIRE_MESSAGE(next->Load(host::FinishModel(b, 16)) == MTAN_OK, std::string(mtan_last_error()));
    // Both are loaded: the old one still answers exactly as before.
    CHECK(current->Run(rows) == before);
    current->Unload();
    current = next;
    const auto after = current->Run(rows);
    CHECK(after != before);
    // The freed slot takes the next update.
    REQUIRE(slots[0].Load(host::FinishModel(a, 16)) == MTAN_OK);
    CHECK(slots[0].Run(rows) == before);
    CHECK(current->Run(rows) == after);
  }

  TEST_CASE("a corrupted new model fails verification; the old one keeps serving") {
    REQUIRE(mtan_init() == MTAN_OK);
    fb::ModelT a = GoldenModel(41), b = GoldenModel(42);
    const auto rows = test::RandomRows(43, kRows);
    Slot current, next;
    REQUIRE(current.Load(host::FinishModel(a, 16)) == MTAN_OK);
    const auto before = current.Run(rows);
    const std::vector<uint8_t> good = host::FinishModel(b, 16);

    SUBCASE("one byte flipped in transit") {
      std::vector<uint8_t> bad = good;
      bad[bad.size() / 2] ^= 0x10;
      CHECK(next.Load(bad) == MTAN_ERROR_CHECKSUM);
      CHECK(std::string(mtan_last_error()).size() > 0);
    }
    SUBCASE("download cut short") {
      std::vector<uint8_t> bad(good.begin(), good.begin() + good.size() / 3);
      const mtan_status s = next.Load(bad);
      CHECK(s != MTAN_OK);
      MESSAGE("truncated update: " << std::string(mtan_status_string(s)) << ": "
              << std::string(mtan_last_error()));
    }
    SUBCASE("not a model at all") {
      std::vector<uint8_t> bad(good.size(), 0x42);
      CHECK(next.Load(bad) != MTAN_OK);
    }
    CHECK(next.model == nullptr);
    CHECK(current.Run(rows) == before);
  }

  TEST_CASE("a new model that does not reproduce its golden outputs fails self-test") {
    // Well-formed and correctly sealed, but its weights do not give the
    // outputs it promises (a wrong build, or a device that computes
    // differently): verification passes, the self-test rejects it.
    REQUIRE(mtan_init() == MTAN_OK);
    fb::ModelT a = GoldenModel(51), b = GoldenModel(52);
    const auto rows = test::RandomRows(53, kRows);
    for (float& v : b.golden[0]->output) v += 10.0f * b.golden[0]->tolerance + 0.5f;
    Slot current, next;
    REQUIRE(current.Load(host::FinishModel(a, 16)) == MTAN_OK);
    const auto before = current.Run(rows);
    CHECK(next.Load(host::FinishModel(b, 16)) == MTAN_ERROR_SELF_TEST);
    MESSAGE("rejected: " << std::string(mtan_last_error()));
    CHECK(next.model == nullptr);
    CHECK(current.Run(rows) == before);
    // A model without golden cases cannot be vetted: refused as well.
    b.golden.clear();
    CHECK(next.Load(host::FinishModel(b, 16)) == MTAN_ERROR_NO_GOLDEN_CASES);
    CHECK(current.Run(rows) == before);
  }
}
