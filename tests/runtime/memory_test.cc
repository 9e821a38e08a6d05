// Arena sizing is exact, a byte too small fails with the size stated,
// activations are shared, and several models live side by side.
#include <cstring>
#include <string>

#include "doctest/doctest.h"
#include "test_models.h"

using namespace mtan;

namespace {

struct Arena {
  std::vector<uint8_t> storage;
  uint8_t* p;
  explicit Arena(size_t bytes, size_t misalign = 0) : storage(bytes + 128) {
    p = reinterpret_cast<uint8_t*>((reinterpret_cast<uintptr_t>(storage.data()) + 63) & ~uintptr_t{63}) + misalign;
  }
};

}  // namespace

TEST_CASE("arena size is exact: used == required, and one byte less fails") {
  REQUIRE(mtan_init() == MTAN_OK);
  for (bool int8 : {false, true}) {
    fb::ModelT m = int8 ? test::Int8Model(5) : test::FloatModel(5);
    const host::ModelBytes bytes(host::FinishModel(m, 32));
    for (uint32_t backend : {MTAN_BACKEND_XNNPACK, MTAN_BACKEND_REFERENCE}) {
      for (uint32_t max_batch : {1u, 7u, 256u}) {
        CAPTURE(int8);
        CAPTURE(backend);
        CAPTURE(max_batch);
        mtan_options opt = {max_batch, backend};
        size_t need = 0;
        REQUIRE(mtan_arena_size(bytes.data(), bytes.size(), &opt, &need) == MTAN_OK);
        Arena arena(need);
        mtan_model* model = nullptr;
        REQUIRE(mtan_load(bytes.data(), bytes.size(), &opt, arena.p, need, &model) == MTAN_OK);
        size_t used = 0;
        REQUIRE(mtan_arena_used(model, &used) == MTAN_OK);
        CHECK(used == need);
        mtan_unload(model);

        mtan_model* small = reinterpret_cast<mtan_model*>(0x1);
        CHECK(mtan_load(bytes.data(), bytes.size(), &opt, arena.p, need - 1, &small) ==
              MTAN_ERROR_ARENA_TOO_SMALL);
        CHECK(small == nullptr);
        CHECK(std::string(mtan_last_error()).find("needs " + std::to_string(need) + " bytes") !=
              std::string::npos);
        // A misaligned arena needs the padding to the next 64-byte boundary too.
        Arena shifted(need + 64, 8);
        CHECK(mtan_load(bytes.data(), bytes.size(), &opt, shifted.p, need, &small) ==
              MTAN_ERROR_ARENA_TOO_SMALL);
        CHECK(mtan_load(bytes.data(), bytes.size(), &opt, shifted.p, need + 56, &small) == MTAN_OK);
        mtan_unload(small);
      }
    }
  }
}

TEST_CASE("activations share arena bytes: far below the sum of all tensors") {
  fb::ModelT m = test::Int8Model(5);
  host::FinishModel(m, 256);
  size_t sum = 0;
  for (const auto& t : m.tensors)
    if (t->buffer == 0) sum += t->shape[0] * (t->dtype == fb::DType::INT8 ? 1 : 4);
  MESSAGE("activation bytes per row: planned " << m.activation_bytes_per_row << ", sum of tensors " << sum);
  CHECK(m.activation_bytes_per_row * 3 < sum);
}

TEST_CASE("several models, each in its own arena, in one process") {
  const auto rows = test::RandomRows(21, 16);
  fb::ModelT fa = test::FloatModel(1), fb_ = test::FloatModel(2);
  fb::ModelT qa = test::Int8Model(1);
  test::Loaded a(host::FinishModel(fa, 16), 16, MTAN_BACKEND_XNNPACK);
  test::Loaded b(host::FinishModel(fb_, 16), 16, MTAN_BACKEND_XNNPACK);
  test::Loaded q(host::FinishModel(qa, 16), 16, MTAN_BACKEND_XNNPACK);
  REQUIRE(a.status == MTAN_OK);
  REQUIRE(b.status == MTAN_OK);
  REQUIRE(q.status == MTAN_OK);
  const auto a1 = a.Run(rows, 16, MTAN_ALL_TASKS);
  const auto b1 = b.Run(rows, 16, MTAN_ALL_TASKS);
  const auto q1 = q.Run(rows, 16, MTAN_ALL_TASKS);
  CHECK(a1 != b1);
  // Interleaved runs give the same answers: no shared state between models.
  CHECK(b.Run(rows, 16, 1) != a.Run(rows, 16, 1));
  CHECK(a.Run(rows, 16, MTAN_ALL_TASKS) == a1);
  CHECK(q.Run(rows, 16, MTAN_ALL_TASKS) == q1);
  CHECK(b.Run(rows, 16, MTAN_ALL_TASKS) == b1);
}
