// Counts every heap call by interposing malloc & co. and operator new/delete,
// and asserts there are none during load, runs, self-test and unload once
// mtan_init has run. Nothing inside a counting window calls the test
// framework, which allocates itself.
#include <dlfcn.h>
#include <malloc.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <new>

#include "test_models.h"

#include "doctest/doctest.h"

namespace {
std::atomic<bool> g_counting{false};
std::atomic<long> g_calls{0};
inline void Count() {
  if (g_counting.load(std::memory_order_relaxed)) g_calls.fetch_add(1, std::memory_order_relaxed);
}
}  // namespace

extern "C" {
void* __libc_malloc(size_t);
void* __libc_calloc(size_t, size_t);
void* __libc_realloc(void*, size_t);
void __libc_free(void*);
void* __libc_memalign(size_t, size_t);

void* malloc(size_t n) { Count(); return __libc_malloc(n); }
void* calloc(size_t a, size_t b) { Count(); return __libc_calloc(a, b); }
void* realloc(void* p, size_t n) { Count(); return __libc_realloc(p, n); }
void free(void* p) { if (p) Count(); __libc_free(p); }
int posix_memalign(void** out, size_t align, size_t n) {
  Count();
  *out = __libc_memalign(align, n);
  return *out ? 0 : 12;
}
void* aligned_alloc(size_t align, size_t n) { Count(); return __libc_memalign(align, n); }
void* memalign(size_t align, size_t n) { Count(); return __libc_memalign(align, n); }
}

void* operator new(size_t n) { Count(); void* p = __libc_malloc(n ? n : 1); if (!p) throw std::bad_alloc(); return p; }
void* operator new[](size_t n) { Count(); void* p = __libc_malloc(n ? n : 1); if (!p) throw std::bad_alloc(); return p; }
void operator delete(void* p) noexcept { if (p) Count(); __libc_free(p); }
void operator delete[](void* p) noexcept { if (p) Count(); __libc_free(p); }
void operator delete(void* p, size_t) noexcept { if (p) Count(); __libc_free(p); }
void operator delete[](void* p, size_t) noexcept { if (p) Count(); __libc_free(p); }

using namespace mtan;

TEST_CASE("zero heap calls during load, runs, self-test and unload") {
  REQUIRE(mtan_init() == MTAN_OK);
  // Sanity: the interposition sees heap calls at all.
  g_counting = true;
  void* probe = malloc(16);
  free(probe);
  g_counting = false;
  REQUIRE_MESSAGE(g_calls.load() == 2, "malloc interposition is not active");
  for (bool int8 : {false, true}) {
    for (uint32_t backend : {MTAN_BACKEND_XNNPACK, MTAN_BACKEND_REFERENCE}) {
      fb::ModelT m = int8 ? test::Int8Model(2) : test::FloatModel(2);
      m.max_batch = 16;
      std::string error;
      REQUIRE_MESSAGE(tiny::AddReferenceGolden(m, test::RandomRows(5, 4), 4, 0.05f, &error), error);
      const host::ModelBytes bytes(host::FinishModel(m, 16));
      const std::vector<float> rows = test::RandomRows(6, 16);
      std::vector<float> out(16 * 6);
      std::vector<uint8_t> storage(1 << 22);
      void* arena = storage.data();
      mtan_options opt = {16, backend};

      g_calls = 0;
      g_counting = true;
      size_t need = 0;
      mtan_model* model = nullptr;
      mtan_status s = mtan_arena_size(bytes.data(), bytes.size(), &opt, &need);
      if (s == MTAN_OK) s = mtan_load(bytes.data(), bytes.size(), &opt, arena, storage.size(), &model);
      const long load_calls = g_calls.exchange(0);
      for (uint32_t batch : {1u, 16u, 3u}) {
        if (s == MTAN_OK) s = mtan_run(model, rows.data(), batch, MTAN_ALL_TASKS, out.data(), out.size(), nullptr);
        for (int32_t task = 0; task < 3 && s == MTAN_OK; ++task)
          s = mtan_run(model, rows.data(), batch, task, out.data(), out.size(), nullptr);
      }
      if (s == MTAN_OK) s = mtan_self_test(model);
      // Failing calls allocate nothing either.
      mtan_run(model, rows.data(), 0, 0, out.data(), out.size(), nullptr);
      const long run_calls = g_calls.exchange(0);
      mtan_unload(model);
      const long unload_calls = g_calls.exchange(0);
      g_counting = false;

      CAPTURE(int8);
      CAPTURE(backend);
      CHECK_MESSAGE(s == MTAN_OK, mtan_status_string(s));
      CHECK(load_calls == 0);
      CHECK(run_calls == 0);
      CHECK(unload_calls == 0);
    }
  }
}

TEST_CASE("zero heap calls with id inputs: mtan_run_inputs, mtan_run_batch (CSR), self-test") {
  REQUIRE(mtan_init() == MTAN_OK);
  for (bool int8 : {false, true}) {
    const host::MtanWeights w = test::RandomIdMtan(3);
    fb::ModelT m = int8 ? test::Int8Model(w, 3) : host::BuildFloatModel(w);
    std::string error;
    REQUIRE_MESSAGE(tiny::AddReferenceGolden(m, test::RandomRows(5, 4), 4, 0.05f, &error,
                                             test::RandomIds(5, 4)), error);
    const host::ModelBytes bytes(host::FinishModel(m, 16));
    const uint32_t n = 16;
    const std::vector<float> rows = test::RandomRows(6, n);
    const std::vector<uint8_t> padded = test::RandomIds(6, n);
    const void* inputs[3] = {padded.data(), padded.data() + n * 8, padded.data() + n * 8 * 7};
    // CSR: every row's first ids (the padding dropped), lengths 0 to full.
    std::vector<int64_t> csr_ids[3];
    std::vector<uint32_t> offsets[3];
    mtan_ids ids[3];
    const int length[3] = {1, 6, 4};
    for (int j = 0; j < 3; ++j) {
      offsets[j].push_back(0);
      for (uint32_t r = 0; r < n; ++r) {
        for (int l = 0; l < length[j]; ++l) {
          int64_t id;
          std::memcpy(&id, static_cast<const uint8_t*>(inputs[j]) + (r * length[j] + l) * 8, 8);
          if (id != -1) csr_ids[j].push_back(id);
        }
        offsets[j].push_back(static_cast<uint32_t>(csr_ids[j].size()));
      }
      ids[j] = {csr_ids[j].data(), offsets[j].data()};
    }
    const mtan_batch batch{rows.data(), n, ids, 3};
    std::vector<float> out(n * 6);
    std::vector<uint8_t> storage(1 << 22);
    mtan_options opt = {n, MTAN_BACKEND_DEFAULT};

    g_calls = 0;
    g_counting = true;
    size_t need = 0;
    mtan_model* model = nullptr;
    mtan_status s = mtan_arena_size(bytes.data(), bytes.size(), &opt, &need);
    if (s == MTAN_OK) s = mtan_load(bytes.data(), bytes.size(), &opt, storage.data(), storage.size(), &model);
    const long load_calls = g_calls.exchange(0);
    if (s == MTAN_OK)
      s = mtan_run_inputs(model, rows.data(), inputs, 3, n, MTAN_ALL_TASKS, out.data(), out.size(), nullptr);
    if (s == MTAN_OK) s = mtan_run_batch(model, &batch, MTAN_ALL_TASKS, out.data(), out.size(), nullptr);
    if (s == MTAN_OK) s = mtan_run_batch(model, &batch, 1, out.data(), out.size(), nullptr);
    if (s == MTAN_OK) s = mtan_self_test(model);
    // A failing call (a bag too long) allocates nothing either.
    const uint32_t too_long[2] = {0, 2};
    const mtan_ids bad[3] = {{csr_ids[0].data(), too_long}, ids[1], ids[2]};
    const mtan_batch bad_batch{rows.data(), 1, bad, 3};
    const mtan_status bad_status = mtan_run_batch(model, &bad_batch, MTAN_ALL_TASKS, out.data(), out.size(), nullptr);
    const long run_calls = g_calls.exchange(0);
    mtan_unload(model);
    g_counting = false;

    CAPTURE(int8);
    CHECK_MESSAGE(s == MTAN_OK, mtan_status_string(s));
    CHECK(bad_status == MTAN_ERROR_INPUT_ID);
    CHECK(load_calls == 0);
    CHECK(run_calls == 0);
  }
}
