// The threading contract (mtan.h): one model run from two threads gets
// MTAN_ERROR_BUSY instead of wrong answers, each thread reads its own last
// error, and a thread waiting for the load lock sleeps. Issue 12, findings
// 2, 3 and 9.
#include <pthread.h>
#include <time.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <string>
#include <thread>

#include "doctest/doctest.h"
#include "internal.h"
#include "test_models.h"

using namespace mtan;

namespace {

constexpr uint32_t kMaxBatch = 16;

struct Counts {
  std::atomic<uint64_t> ok{0}, busy{0}, wrong{0}, other{0};
};

// Runs `model` `iterations` times on row sets of 1..kMaxBatch rows (every
// XNNPACK operator is set up again for each new batch) and compares each
// MTAN_OK result bit for bit with `want` (computed alone beforehand).
void Hammer(mtan_model* model, const std::vector<float>& rows, const std::vector<float>& want,
            uint32_t per_row, uint32_t seed, int iterations, const std::atomic<bool>* stop,
            Counts* counts) {
  std::vector<float> out(kMaxBatch * per_row);
  uint32_t state = seed;
  for (int i = 0; i < iterations && !stop->load(); ++i) {
    state = state * 1664525u + 1013904223u;
    const uint32_t batch = 1 + (state >> 16) % kMaxBatch;
    const uint32_t first = (state >> 8) % (kMaxBatch - batch + 1);
    const mtan_status s = mtan_run(model, rows.data() + first * 10, batch, MTAN_ALL_TASKS, out.data(),
                                   out.size(), nullptr);
    if (s == MTAN_ERROR_BUSY) {
      ++counts->busy;
    } else if (s != MTAN_OK) {
      ++counts->other;
    } else if (std::memcmp(out.data(), want.data() + first * per_row,
                           sizeof(float) * batch * per_row) != 0) {
      ++counts->wrong;
    } else {
      ++counts->ok;
    }
  }
}

}  // namespace

TEST_SUITE("threads") {
  TEST_CASE("one model run from two threads: MTAN_OK with the right rows, or MTAN_ERROR_BUSY") {
    REQUIRE(mtan_init() == MTAN_OK);
    for (bool int8 : {false, true}) {
      CAPTURE(int8);
      fb::ModelT m = int8 ? test::Int8Model(3) : test::FloatModel(3);
      test::Loaded l(host::FinishModel(m, kMaxBatch), kMaxBatch, MTAN_BACKEND_XNNPACK);
      REQUIRE(l.status == MTAN_OK);
      const auto rows = test::RandomRows(4, kMaxBatch);
      const auto want = l.Run(rows, kMaxBatch, MTAN_ALL_TASKS);
      uint32_t per_row = 0;
      REQUIRE(mtan_output_size(l.model, MTAN_ALL_TASKS, &per_row) == MTAN_OK);
      // Until both threads have collided often enough, or 20 000 runs each.
      Counts counts;
      std::atomic<bool> stop{false};
      std::thread a(Hammer, l.model, std::cref(rows), std::cref(want), per_row, 1u, 20000, &stop, &counts);
      std::thread b(Hammer, l.model, std::cref(rows), std::cref(want), per_row, 2u, 20000, &stop, &counts);
      for (int i = 0; i < 300 && counts.busy < 200; ++i)
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
      stop = true;
      a.join();
      b.join();
      MESSAGE("two threads on one model: " << counts.ok.load() << " OK, " << counts.busy.load()
              << " BUSY, " << counts.wrong.load() << " wrong, " << counts.other.load() << " other errors");
      CHECK(counts.wrong == 0);
      CHECK(counts.other == 0);
      CHECK(counts.busy > 0);  // they did collide
      CHECK(counts.ok > 0);
      // Released: the model answers as before.
      CHECK(l.Run(rows, kMaxBatch, MTAN_ALL_TASKS) == want);
    }
  }

  TEST_CASE("mtan_self_test and mtan_run on a model another thread holds: MTAN_ERROR_BUSY") {
    REQUIRE(mtan_init() == MTAN_OK);
    fb::ModelT m = test::FloatModel(5);
    std::string error;
    REQUIRE(tiny::AddReferenceGolden(m, test::RandomRows(6, 2), 2, 1e-4f, &error));
    test::Loaded l(host::FinishModel(m, 4), 4, MTAN_BACKEND_REFERENCE);
    REQUIRE(l.status == MTAN_OK);
    l.model->busy.store(1);  // as while another thread is inside mtan_run
    const auto rows = test::RandomRows(7, 1);
    float out[6];
    CHECK(mtan_run(l.model, rows.data(), 1, MTAN_ALL_TASKS, out, 6, nullptr) == MTAN_ERROR_BUSY);
    CHECK(std::string(mtan_last_error()).find("another thread") != std::string::npos);
    CHECK(mtan_self_test(l.model) == MTAN_ERROR_BUSY);
    l.model->busy.store(0);
    CHECK(mtan_self_test(l.model) == MTAN_OK);
    CHECK(mtan_run(l.model, rows.data(), 1, MTAN_ALL_TASKS, out, 6, nullptr) == MTAN_OK);
    CHECK(l.model->busy.load() == 0);  // released on success and on failure
    CHECK(mtan_run(l.model, rows.data(), 9, MTAN_ALL_TASKS, out, 6, nullptr) == MTAN_ERROR_BATCH);
    CHECK(l.model->busy.load() == 0);
  }

  // Finding 3: the message buffer was one global; 55 of 47,829 messages read
  // by four threads were torn or another thread's.
  TEST_CASE("each thread reads its own last error") {
    REQUIRE(mtan_init() == MTAN_OK);
    fb::ModelT m = test::FloatModel(8);
    const auto file = host::FinishModel(m, 4);
    constexpr int kThreads = 4;
    std::vector<std::unique_ptr<test::Loaded>> models;
    for (int t = 0; t < kThreads; ++t)
      models.push_back(std::make_unique<test::Loaded>(file, 4, MTAN_BACKEND_REFERENCE));
    for (auto& l : models) REQUIRE(l->status == MTAN_OK);
    std::atomic<int> wrong{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&, t] {
        const uint32_t batch = 10 + static_cast<uint32_t>(t);
        const std::string want = "batch " + std::to_string(batch) + " is not 1..4 (the max_batch loaded)";
        std::vector<float> rows(10 * batch, 1.0f), out(6 * batch);
        for (int i = 0; i < 20000; ++i) {
          if (mtan_run(models[t]->model, rows.data(), batch, MTAN_ALL_TASKS, out.data(), out.size(),
                       nullptr) != MTAN_ERROR_BATCH ||
              want != mtan_last_error())
            ++wrong;
        }
      });
    }
    for (auto& th : threads) th.join();
    CHECK(wrong == 0);
    // A thread that never failed reads "no error".
    std::string fresh;
    std::thread([&] { fresh = mtan_last_error(); }).join();
    CHECK(fresh == "no error");
  }

  // Finding 9: the load lock was a spin lock; a second load burnt a core
  // while the first verified (5.3 s of CPU in 10.4 s).
  TEST_CASE("a thread waiting for the load lock sleeps") {
    REQUIRE(mtan_init() == MTAN_OK);
    fb::ModelT m = test::FloatModel(9);
    const host::ModelBytes bytes(host::FinishModel(m, 4));
    std::atomic<bool> started{false}, done{false};
    mtan_status status = MTAN_ERROR_BACKEND;
    GlobalLock();  // as a long load in another thread would
    std::thread waiter([&] {
      started = true;
      size_t need = 0;
      status = mtan_arena_size(bytes.data(), bytes.size(), nullptr, &need);
      done = true;
    });
    while (!started) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    clockid_t clock;
    timespec cpu{};
    const bool have_clock = pthread_getcpuclockid(waiter.native_handle(), &clock) == 0 &&
                            clock_gettime(clock, &cpu) == 0;
    CHECK_FALSE(done.load());
    GlobalUnlock();
    waiter.join();
    CHECK(done.load());
    CHECK(status == MTAN_OK);
    if (!have_clock) {  // (qemu user mode may not emulate per-thread CPU clocks)
      WARN_MESSAGE(false, "no CPU clock for another thread here: not measured");
      return;
    }
    const double cpu_s = static_cast<double>(cpu.tv_sec) + 1e-9 * static_cast<double>(cpu.tv_nsec);
    MESSAGE("CPU used by a thread waiting 0.5 s for the load lock: " << cpu_s << " s");
    CHECK(cpu_s < 0.1);
  }
}
