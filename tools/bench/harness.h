// mtan-bench's timing harness: engines (anything that runs one inference of
// `batch` rows) measured interleaved in short blocks, so that a load that
// comes and goes on a shared machine hits all of them alike; and the thread
// pools of --threads.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "bench.h"

namespace mtan::bench {

using Clock = std::chrono::steady_clock;

inline double MicrosSince(Clock::time_point t0) {
  return std::chrono::duration<double, std::micro>(Clock::now() - t0).count();
}

// Something timed: one call of `run` is one inference of `batch` rows into
// `out`. An engine in another process also has `run_block`: n runs it times
// itself, their microseconds appended to the vector.
struct Engine {
  Row row;
  std::function<bool(std::string*)> run;
  std::function<bool(int, std::vector<double>*, std::string*)> run_block;
  std::vector<float> out;
  std::vector<double> samples;
  double elapsed_us = 0;
  int block = 1;
  bool done = false;
};

// One untimed check call, the warm-up, then blocks of about 2 ms taken from
// each engine in turn until each has `runs` samples and `min_seconds`.
bool MeasureInterleaved(const std::vector<Engine*>& engines, const Config& c, std::string* error);

// The row's latency percentiles, throughput and GOP/s from its samples.
void FillTimes(Engine* e);

// A row with the identity columns filled.
Row BaseRow(const std::string& model, uint64_t model_bytes, bool int8, const std::string& role,
            const std::string& backend, const std::string& task, uint32_t batch,
            uint32_t threads);

// pthreadpools by thread count, created on first use, destroyed with this.
class ThreadPools {
 public:
  ThreadPools() = default;
  ThreadPools(const ThreadPools&) = delete;
  ThreadPools& operator=(const ThreadPools&) = delete;
  ~ThreadPools();
  // NULL for 1 thread (the calling thread alone).
  bool Get(uint32_t threads, void** pool, std::string* error);

 private:
  std::map<uint32_t, void*> pools_;
};

}  // namespace mtan::bench
