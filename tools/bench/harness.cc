#include "harness.h"

#include <algorithm>

#ifdef MTAN_BENCH_WITH_PTHREADPOOL
#include <pthreadpool.h>
#endif

#include "stats.h"

namespace mtan::bench {

bool MeasureInterleaved(const std::vector<Engine*>& engines, const Config& c, std::string* error) {
  // n timed runs of e: timed here, or by the engine's own process.
  auto timed = [&](Engine* e, int n, std::vector<double>* us) {
    if (e->run_block) return e->run_block(n, us, error);
    for (int k = 0; k < n; ++k) {
      const auto t0 = Clock::now();
      if (!e->run(error)) return false;
      us->push_back(MicrosSince(t0));
    }
    return true;
  };
  std::vector<double> us;
  for (Engine* e : engines) {
    if (!e->run(error)) return false;
    us.clear();
    if (!timed(e, std::max(c.warmup, 1), &us)) return false;
    e->block = static_cast<int>(std::clamp(2000.0 / std::max(us.back(), 0.01), 1.0, 10000.0));
    e->samples.clear();
    e->samples.reserve(static_cast<size_t>(c.runs));
    e->elapsed_us = 0;
    e->done = false;
  }
  const double min_us = c.min_seconds * 1e6;
  for (bool all_done = false; !all_done;) {
    all_done = true;
    for (Engine* e : engines) {
      if (e->done) continue;
      // Once the time is reached, only the runs still missing.
      int n = e->block;
      if (e->elapsed_us >= min_us && e->samples.size() < static_cast<size_t>(c.runs))
        n = std::min<int>(n, c.runs - static_cast<int>(e->samples.size()));
      us.clear();
      if (!timed(e, n, &us)) return false;
      for (double t : us) {
        e->samples.push_back(t);
        e->elapsed_us += t;
      }
      e->done = e->samples.size() >= static_cast<size_t>(c.runs) && e->elapsed_us >= min_us;
      all_done = all_done && e->done;
    }
  }
  return true;
}

void FillTimes(Engine* e) {
  const Summary s = Summarize(e->samples);
  Row& r = e->row;
  r.runs = s.n;
  r.p50_us = s.p50;
  r.p90_us = s.p90;
  r.p99_us = s.p99;
  r.mean_us = s.mean;
  r.stddev_us = s.stddev;
  r.rows_per_s = s.p50 > 0 ? r.batch * 1e6 / s.p50 : 0;
  r.gops = s.p50 > 0 ? r.fc_mop / s.p50 * 1e3 : 0;  // Mop/µs = 1000 GOP/s
}

Row BaseRow(const std::string& model, uint64_t model_bytes, bool int8, const std::string& role,
            const std::string& backend, const std::string& task, uint32_t batch,
            uint32_t threads) {
  Row r;
  r.model = model;
  r.model_bytes = model_bytes;
  r.role = role;
  r.dtype = int8 ? "int8" : "float32";
  r.backend = backend;
  r.task = task;
  r.batch = batch;
  r.threads = threads;
  return r;
}

ThreadPools::~ThreadPools() {
#ifdef MTAN_BENCH_WITH_PTHREADPOOL
  for (auto& [n, p] : pools_) pthreadpool_destroy(static_cast<pthreadpool_t>(p));
#endif
}

bool ThreadPools::Get(uint32_t threads, void** pool, std::string* error) {
  *pool = nullptr;
  if (threads <= 1) return true;
#ifdef MTAN_BENCH_WITH_PTHREADPOOL
  auto it = pools_.find(threads);
  if (it == pools_.end()) {
    void* p = pthreadpool_create(threads);
    if (p == nullptr) {
      *error = "pthreadpool_create(" + std::to_string(threads) + ") failed";
      return false;
    }
    it = pools_.emplace(threads, p).first;
  }
  *pool = it->second;
  return true;
#else
  *error = "--threads " + std::to_string(threads) + ": this build has no pthreadpool";
  return false;
#endif
}

}  // namespace mtan::bench
