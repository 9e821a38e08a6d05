// Counts every heap call by interposing malloc & co. and operator new/delete,
// and asserts there are none during load, runs, self-test and unload once
// mtan_init has run. Nothing inside a counting window calls the test
// framework, which allocates itself.
#include <dlfcn.h>
#include <malloc.h>

#include <atomic>
#include <cstdlib>
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
