// Stack the runtime needs (issue 12, finding 11; mtan.h "Stack"): each part of
// the API runs on a thread whose stack was painted with a pattern; the bytes
// overwritten, less those of a thread that does nothing, are its peak use.
// The verifier's working memory (~40 KB) and XNNPACK sizing's scratch (16 KB)
// used to be on the stack (peaks of about 21 and 17 KB); they are static now,
// under the load lock.
#include <pthread.h>

#include <cstring>
#include <functional>
#include <string>

#include "doctest/doctest.h"
#include "test_models.h"

#if defined(__SANITIZE_ADDRESS__)
#define MTAN_TEST_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define MTAN_TEST_ASAN 1
#endif
#endif

using namespace mtan;

namespace {

constexpr size_t kStackBytes = 1 << 20;
constexpr uint8_t kPaint = 0xA5;
// What mtan.h promises a thread needs, XNNPACK's own use included.
constexpr size_t kBudgetBytes = 16 * 1024;

// Bytes of a painted stack that `work` overwrote (TLS and the thread
// descriptor, which glibc places in a caller-given stack, included).
size_t StackUsed(const std::function<void()>& work) {
  std::vector<uint8_t> stack(kStackBytes + 4096);
  uint8_t* base = reinterpret_cast<uint8_t*>(
      (reinterpret_cast<uintptr_t>(stack.data()) + 4095) & ~uintptr_t{4095});
  std::memset(base, kPaint, kStackBytes);
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  REQUIRE(pthread_attr_setstack(&attr, base, kStackBytes) == 0);
  pthread_t thread;
  auto body = [](void* arg) -> void* {
    (*static_cast<const std::function<void()>*>(arg))();
    return nullptr;
  };
  REQUIRE(pthread_create(&thread, &attr, body, const_cast<std::function<void()>*>(&work)) == 0);
  pthread_join(thread, nullptr);
  pthread_attr_destroy(&attr);
  size_t untouched = 0;  // stacks grow down: the low end keeps the paint
  while (untouched < kStackBytes && base[untouched] == kPaint) ++untouched;
  return kStackBytes - untouched;
}

}  // namespace

TEST_CASE("peak stack of sizing, loading, running and self-testing") {
  REQUIRE(mtan_init() == MTAN_OK);
  fb::ModelT q = test::Int8Model(3);
  std::string error;
  REQUIRE(tiny::AddReferenceGolden(q, test::RandomRows(4, 4), 4, 0.05f, &error));
  const host::ModelBytes bytes(host::FinishModel(q, 16));
  const auto rows = test::RandomRows(5, 16);
  const size_t idle = StackUsed([] {});
  for (mtan_backend backend : {MTAN_BACKEND_XNNPACK, MTAN_BACKEND_REFERENCE}) {
    CAPTURE(backend);
    mtan_options opt = {0, static_cast<uint32_t>(backend)};
    size_t need = 0;
    std::vector<uint8_t> arena;
    mtan_model* model = nullptr;
    mtan_status load = MTAN_ERROR_BACKEND, run = MTAN_ERROR_BACKEND, self = MTAN_ERROR_BACKEND;
    const size_t load_used = StackUsed([&] {
      if (mtan_arena_size(bytes.data(), bytes.size(), &opt, &need) != MTAN_OK) return;
      arena.resize(need + 64);
      load = mtan_load(bytes.data(), bytes.size(), &opt, arena.data(), arena.size(), &model);
    }) - idle;
    REQUIRE(load == MTAN_OK);
    const size_t run_used = StackUsed([&] {
      std::vector<float> out(16 * 6);
      run = mtan_run(model, rows.data(), 16, MTAN_ALL_TASKS, out.data(), out.size(), nullptr);
      self = mtan_self_test(model);
    }) - idle;
    CHECK(run == MTAN_OK);
    CHECK(self == MTAN_OK);
    mtan_unload(model);
    MESSAGE("peak stack (" << std::string(backend == MTAN_BACKEND_XNNPACK ? "XNNPACK" : "reference")
            << "): mtan_arena_size + mtan_load " << load_used << " bytes, mtan_run + "
            << "mtan_self_test " << run_used << " bytes (idle thread: " << idle << ")");
#ifndef MTAN_TEST_ASAN  // redzones multiply stack frames
    CHECK(load_used <= kBudgetBytes);
    CHECK(run_used <= kBudgetBytes);
#endif
  }
}
