// Four threads, each with models of its own, load, run, self-test, unload
// and fail to load (an arena one thread-specific size too small) at the same
// time. mtan.h allows concurrent calls on different models: every result
// must be the one computed alone beforehand, and every thread must read its
// own error message. CI runs this under ThreadSanitizer for 10 s
// (tests/fuzz/run-sanitizers.sh, MTAN_STRESS_SECONDS); the default suite for
// one second.
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "doctest/doctest.h"
#include "test_models.h"

using namespace mtan;

namespace {

constexpr uint32_t kRows = 7;
constexpr int kThreads = 4;

struct Job {
  std::vector<uint8_t> file;
  mtan_backend backend;
  std::vector<float> rows, want;
};

struct Tally {
  uint64_t cycles = 0, wrong = 0, failed = 0, foreign_errors = 0;
  std::string first_problem;
};

double StressSeconds() {
  const char* s = std::getenv("MTAN_STRESS_SECONDS");
  const double v = s ? std::atof(s) : 1.0;
  return v > 0 ? v : 1.0;
}

void Note(Tally* t, uint64_t* counter, const std::string& what) {
  ++*counter;
  if (t->first_problem.empty()) t->first_problem = what;
}

// One thread's loop: the whole life of a model, then a load that must fail
// with this thread's own arena size in the message.
void Cycle(const Job& job, int thread, std::chrono::steady_clock::time_point until, Tally* t) {
  const mtan_options opt = {kRows, static_cast<uint32_t>(job.backend)};
  size_t need = 0;
  if (mtan_arena_size(job.file.data(), job.file.size(), &opt, &need) != MTAN_OK)
    return Note(t, &t->failed, std::string("arena size: ") + mtan_last_error());
  std::vector<uint8_t> arena(need + 64);
  uint8_t* base = arena.data() + (64 - reinterpret_cast<uintptr_t>(arena.data()) % 64) % 64;
  std::vector<float> out(job.want.size());
  while (std::chrono::steady_clock::now() < until) {
    ++t->cycles;
    mtan_model* m = nullptr;
    if (mtan_load(job.file.data(), job.file.size(), &opt, base, need, &m) != MTAN_OK)
      return Note(t, &t->failed, std::string("load: ") + mtan_last_error());
    for (int run = 0; run < 3; ++run) {
      if (mtan_run(m, job.rows.data(), kRows, MTAN_ALL_TASKS, out.data(), out.size(), nullptr) != MTAN_OK)
        Note(t, &t->failed, std::string("run: ") + mtan_last_error());
      else if (std::memcmp(out.data(), job.want.data(), sizeof(float) * out.size()) != 0)
        Note(t, &t->wrong, "run: outputs differ from the run alone");
    }
    if (mtan_self_test(m) != MTAN_OK) Note(t, &t->failed, std::string("self-test: ") + mtan_last_error());
    mtan_unload(m);
    // Fails with "arena of <size> bytes is too small": the size is this
    // thread's own, so another thread's message cannot pass for it.
    const size_t small = need - 1 - static_cast<size_t>(thread);
    if (mtan_load(job.file.data(), job.file.size(), &opt, base, small, &m) != MTAN_ERROR_ARENA_TOO_SMALL) {
      Note(t, &t->failed, "a too-small arena was accepted");
    } else {
      const std::string want = "arena of " + std::to_string(small) + " bytes";
      if (std::string(mtan_last_error()).find(want) == std::string::npos)
        Note(t, &t->foreign_errors, std::string("error message of another call: ") + mtan_last_error());
    }
  }
}

}  // namespace

TEST_SUITE("concurrency") {
  TEST_CASE("four threads, each on its own models: the results of each alone, its own errors") {
    mtan_init();
    // float and int8, XNNPACK and reference: every kernel family at once.
    std::vector<Job> jobs;
    const mtan_backend backends[kThreads] = {MTAN_BACKEND_XNNPACK, MTAN_BACKEND_XNNPACK,
                                             MTAN_BACKEND_REFERENCE, MTAN_BACKEND_REFERENCE};
    for (int i = 0; i < kThreads; ++i) {
      const uint32_t seed = 40 + static_cast<uint32_t>(i);
      fb::ModelT m = i % 2 == 0 ? test::FloatModel(seed) : test::Int8Model(seed);
      Job job{{}, backends[i], test::RandomRows(seed, kRows), {}};
      {
        test::Loaded alone(host::FinishModel(m, kRows), kRows, job.backend);
        job.want = alone.Run(job.rows, kRows, MTAN_ALL_TASKS);
      }
      // The golden case is this run alone, so the self-test must pass exactly.
      std::string error;
      REQUIRE_MESSAGE(host::AddGoldenCase(m, job.rows, kRows, job.want,
                                          std::vector<float>(host::OutputsPerRow(m), 0.0f), &error),
                      error);
      job.file = host::FinishModel(m, kRows);
      jobs.push_back(std::move(job));
    }
    const double seconds = StressSeconds();
    const auto until = std::chrono::steady_clock::now() +
                       std::chrono::milliseconds(static_cast<int64_t>(seconds * 1000));
    std::vector<Tally> tallies(kThreads);
    std::vector<std::thread> threads;
    for (int i = 0; i < kThreads; ++i) threads.emplace_back(Cycle, std::cref(jobs[i]), i, until, &tallies[i]);
    for (auto& th : threads) th.join();
    for (int i = 0; i < kThreads; ++i) {
      const Tally& t = tallies[i];
      CAPTURE(i);
      CAPTURE(t.first_problem);
      MESSAGE("thread " << i << ": " << t.cycles << " load/run/self-test/unload/failed-load cycles in "
                        << seconds << " s");
      CHECK(t.cycles > 0);
      CHECK(t.failed == 0);
      CHECK(t.wrong == 0);
      CHECK(t.foreign_errors == 0);
    }
  }
}
