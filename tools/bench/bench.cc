// mtan-bench's measurements. One process loads every engine of a
// comparison (the model, its float32 source, the reference kernels,
// libtorch), gives them the same input rows and interleaves their timed runs
// in short blocks, so that a load that comes and goes on a shared machine
// hits all of them alike and the ratios hold.
#include "bench.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <ostream>

#include <sys/mman.h>

#ifdef MTAN_BENCH_WITH_PTHREADPOOL
#include <pthreadpool.h>
#endif

#include "model_io.h"
#include "mtan/mtan.h"
#include "mtan/mtan_debug.h"
#include "stats.h"
#include "synthetic.h"
#include "torch_peer.h"

#ifndef MTAN_BENCH_COMMIT
#define MTAN_BENCH_COMMIT "unknown"
#endif
#ifndef MTAN_BENCH_BUILD_TYPE
#define MTAN_BENCH_BUILD_TYPE "unknown"
#endif

namespace mtan::bench {
namespace {

using Clock = std::chrono::steady_clock;

double MicrosSince(Clock::time_point t0) {
  return std::chrono::duration<double, std::micro>(Clock::now() - t0).count();
}

// Fresh anonymous pages for each cold load: the load pays its page faults
// the way a first load after start-up does, every time (a heap block could
// be memory an earlier load already touched).
class FreshPages {
 public:
  FreshPages() = default;
  FreshPages(const FreshPages&) = delete;
  FreshPages& operator=(const FreshPages&) = delete;
  ~FreshPages() { Release(); }
  bool Map(size_t bytes) {
    Release();
    void* p = mmap(nullptr, std::max<size_t>(bytes, 1), PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return false;
    data_ = static_cast<uint8_t*>(p);
    bytes_ = std::max<size_t>(bytes, 1);
    return true;
  }
  uint8_t* data() const { return data_; }

 private:
  void Release() {
    if (data_ != nullptr) munmap(data_, bytes_);
    data_ = nullptr;
  }
  uint8_t* data_ = nullptr;
  size_t bytes_ = 0;
};

// A verified model file and the facts of its graph the report needs.
struct ModelFile {
  std::string name;
  host::ModelBytes bytes;
  const fb::Model* fb = nullptr;
  bool int8 = false;
  uint64_t weight_bytes = 0;          // constant buffers (weights, biases)
  uint64_t largest_act_row_bytes = 0;  // the largest activation tensor, per row
  std::vector<std::string> task_names;
};

bool OpenModel(const std::string& name, const std::vector<uint8_t>& file, ModelFile* m,
               std::string* error) {
  m->name = name;
  m->bytes = host::ModelBytes(file);
  mtan_options opt = mtan_options_default();
  opt.backend = MTAN_BACKEND_REFERENCE;
  size_t need = 0;
  const mtan_status s = mtan_arena_size(m->bytes.data(), m->bytes.size(), &opt, &need);
  if (s != MTAN_OK) {
    *error = name + ": " + host::RuntimeError(s);
    return false;
  }
  m->fb = fb::GetModel(m->bytes.data());
  const int32_t input = m->fb->input_tensor();
  for (uint32_t t = 0; t < m->fb->tensors()->size(); ++t) {
    const fb::Tensor* x = m->fb->tensors()->Get(t);
    if (x->dtype() == fb::DType::INT8) m->int8 = true;
    if (x->buffer() != 0) {
      m->weight_bytes += m->fb->buffers()->Get(x->buffer())->data()->size();
    } else if (static_cast<int32_t>(t) != input) {
      const uint64_t row = static_cast<uint64_t>(x->shape()->Get(0)) *
                           (x->dtype() == fb::DType::INT8 ? 1 : 4);
      m->largest_act_row_bytes = std::max(m->largest_act_row_bytes, row);
    }
  }
  for (const fb::Task* t : *m->fb->tasks()) m->task_names.push_back(t->name()->str());
  return true;
}

int32_t FindTask(const ModelFile& m, const std::string& name) {
  for (size_t k = 0; k < m.task_names.size(); ++k)
    if (m.task_names[k] == name) return static_cast<int32_t>(k);
  return -2;
}

// Operators a run of `task` executes, in order.
std::vector<uint32_t> PlanOf(const fb::Model& m, int32_t task) {
  std::vector<uint32_t> plan;
  if (task == MTAN_ALL_TASKS) {
    for (uint32_t o = 0; o < m.operators()->size(); ++o) plan.push_back(o);
  } else {
    const auto* p = m.tasks()->Get(task)->plan();
    plan.assign(p->begin(), p->end());
  }
  return plan;
}

// Million operations (2 x multiply-accumulates) of the fully-connected
// layers in a plan, per row.
double FcMopPerRow(const fb::Model& m, const std::vector<uint32_t>& plan) {
  double ops = 0;
  for (uint32_t o : plan) {
    const fb::Operator* op = m.operators()->Get(o);
    if (op->opcode() != fb::OpCode::FULLY_CONNECTED) continue;
    const double in = m.tensors()->Get(op->inputs()->Get(0))->shape()->Get(0);
    const double out = m.tensors()->Get(op->outputs()->Get(0))->shape()->Get(0);
    ops += 2.0 * in * out;
  }
  return ops / 1e6;
}

// Floats per row a run of `task` returns.
uint32_t OutputFloats(const ModelFile& m, int32_t task) {
  uint32_t n = 0;
  for (uint32_t k = 0; k < m.fb->tasks()->size(); ++k) {
    if (task != MTAN_ALL_TASKS && static_cast<int32_t>(k) != task) continue;
    n += static_cast<uint32_t>(m.fb->tensors()->Get(m.fb->tasks()->Get(k)->output())->shape()->Get(0));
  }
  return n;
}

const char* BackendName(mtan_backend b) {
  return b == MTAN_BACKEND_REFERENCE ? "reference" : "xnnpack";
}

// One model loaded on one backend for one maximum batch, with its cold load
// time and its memory.
class Instance {
 public:
  Instance() = default;
  Instance(const Instance&) = delete;
  Instance& operator=(const Instance&) = delete;
  ~Instance() { mtan_unload(model_); }

  bool Load(const ModelFile& file, uint32_t max_batch, mtan_backend backend, int load_runs,
            std::string* error) {
    file_ = &file;
    backend_ = backend;
    max_batch_ = max_batch;
    mtan_options opt = mtan_options_default();
    opt.max_batch = max_batch;
    opt.backend = MTAN_BACKEND_REFERENCE;
    size_t ref_bytes = 0;
    mtan_status s = mtan_arena_size(file.bytes.data(), file.bytes.size(), &opt, &ref_bytes);
    opt.backend = backend;
    if (s == MTAN_OK) s = mtan_arena_size(file.bytes.data(), file.bytes.size(), &opt, &required_);
    if (s != MTAN_OK) {
      *error = file.name + ": " + host::RuntimeError(s);
      return false;
    }
    // What XNNPACK allocated (operators and packed weights): the only
    // difference between the two backends' layouts.
    packed_ = required_ - ref_bytes;
    std::vector<double> times;
    for (int i = 0; i < load_runs; ++i) {
      mtan_unload(model_);
      model_ = nullptr;
      if (!arena_.Map(required_)) {
        *error = file.name + ": cannot map an arena of " + std::to_string(required_) + " bytes";
        return false;
      }
      const auto t0 = Clock::now();
      s = mtan_load(file.bytes.data(), file.bytes.size(), &opt, arena_.data(), required_, &model_);
      times.push_back(MicrosSince(t0));
      if (s != MTAN_OK) {
        *error = file.name + ": " + host::RuntimeError(s);
        return false;
      }
    }
    load_us_ = Median(times);
    // The same loads into the arena the last one touched: what a hot swap
    // costs, and, by difference, what the cold load paid the OS for pages.
    times.clear();
    for (int i = 0; i < load_runs; ++i) {
      mtan_unload(model_);
      model_ = nullptr;
      const auto t0 = Clock::now();
      s = mtan_load(file.bytes.data(), file.bytes.size(), &opt, arena_.data(), required_, &model_);
      times.push_back(MicrosSince(t0));
      if (s != MTAN_OK) {
        *error = file.name + ": " + host::RuntimeError(s);
        return false;
      }
    }
    load_warm_us_ = Median(times);
    mtan_arena_used(model_, &used_);
    return true;
  }

  void FillMemory(Row* r) const {
    r->arena_required_bytes = required_;
    r->arena_used_bytes = used_;
    r->packed_bytes = packed_;
    r->activation_bytes = static_cast<uint64_t>(file_->fb->activation_bytes_per_row()) * max_batch_;
    r->largest_activation_bytes = file_->largest_act_row_bytes * max_batch_;
    r->weight_bytes = file_->weight_bytes;
    r->memory_budget_bytes = packed_ + 3 * *r->largest_activation_bytes;
  }

  mtan_model* model() const { return model_; }
  const ModelFile& file() const { return *file_; }
  mtan_backend backend() const { return backend_; }
  double load_us() const { return load_us_; }
  double load_warm_us() const { return load_warm_us_; }

 private:
  const ModelFile* file_ = nullptr;
  mtan_backend backend_ = MTAN_BACKEND_XNNPACK;
  uint32_t max_batch_ = 0;
  size_t required_ = 0, used_ = 0, packed_ = 0;
  double load_us_ = 0, load_warm_us_ = 0;
  FreshPages arena_;
  mtan_model* model_ = nullptr;
};

// Something timed: one call of `run` is one inference of `batch` rows.
struct Engine {
  Row row;
  std::function<bool(std::string*)> run;
  std::vector<float> out;
  std::vector<double> samples;
  double elapsed_us = 0;
  int block = 1;
  bool done = false;
};

// One untimed check call, the warm-up, then blocks of about 2 ms taken from
// each engine in turn until each has `runs` samples and `min_seconds`.
bool MeasureInterleaved(const std::vector<Engine*>& engines, const Config& c, std::string* error) {
  for (Engine* e : engines) {
    if (!e->run(error)) return false;
    auto t0 = Clock::now();
    double last = 0;
    for (int w = 0; w < c.warmup; ++w) {
      t0 = Clock::now();
      if (!e->run(error)) return false;
      last = MicrosSince(t0);
    }
    if (c.warmup == 0) {
      t0 = Clock::now();
      if (!e->run(error)) return false;
      last = MicrosSince(t0);
    }
    e->block = static_cast<int>(std::clamp(2000.0 / std::max(last, 0.01), 1.0, 10000.0));
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
      for (int k = 0; k < n; ++k) {
        const auto t0 = Clock::now();
        if (!e->run(error)) return false;
        const double us = MicrosSince(t0);
        e->samples.push_back(us);
        e->elapsed_us += us;
      }
      e->done = e->samples.size() >= static_cast<size_t>(c.runs) && e->elapsed_us >= min_us;
      all_done = all_done && e->done;
    }
  }
  return true;
}

struct OpTimes {
  double xnn_us = 0;     // XNNPACK operators, each alone
  double own_us = 0;     // the runtime's own kernels (QUANTIZE, ATTENTION_POOL, ...), each alone
  double sequence_us = 0;  // the plan's operators called back to back, without mtan_run
  double plan_us = 0;      // mtan_run of the plan, timed between the operators
  double fc_us = 0;      // XNNPACK fully-connected operators alone
  double fc_mop = 0;     // their million ops per run
};

// Times every operator of the plan alone, on the shapes and data of a real
// run: the operators before it run once (so its inputs hold what the plan
// gives them), then it runs in a tight loop. The operators are the loaded
// model's own (same packed weights, same set-up), so the sum is exactly what
// the plan calls, minus the plan's own cost. After each operator, one block
// of whole runs (mtan_run) and one of the plan's operators called back to
// back: the three are measured in the same stretches of time, so a machine
// whose load changes does not bias their ratio. --min-seconds 0 (a smoke
// run) times each briefly.
bool MeasureOps(const Instance& inst, const float* rows, uint32_t batch, int32_t task, void* pool,
                double min_seconds, const std::function<bool(std::string*)>& run_plan,
                OpTimes* t, std::vector<OpTime>* profile, std::string* error) {
  const double block_us = min_seconds > 0 ? 200.0 : 10.0;
  const int blocks = min_seconds > 0 ? 7 : 3;
  mtan_model* m = inst.model();
  std::vector<uint32_t> plan;
  {
    const uint32_t* p = nullptr;
    uint32_t n = 0;
    if (const mtan_status s = mtan_task_plan(m, task, &p, &n); s != MTAN_OK) {
      *error = host::RuntimeError(s);
      return false;
    }
    for (uint32_t i = 0; i < n; ++i) plan.push_back(p ? p[i] : i);
  }
  auto run_sequence = [&](std::string* e) {
    for (uint32_t o : plan) {
      const mtan_status s = mtan_operator_run(m, o, rows, batch, pool);
      if (s != MTAN_OK) {
        *e = host::RuntimeError(s);
        return false;
      }
    }
    return true;
  };
  // Calls per block, from one timed call.
  auto reps_for = [&](const std::function<bool(std::string*)>& fn, int* reps) {
    const auto t0 = Clock::now();
    if (!fn(error)) return false;
    *reps = static_cast<int>(std::clamp(block_us / std::max(MicrosSince(t0), 0.01), 1.0, 100000.0));
    return true;
  };
  // Median µs per call over blocks of `reps` calls.
  auto per_call = [&](const std::function<bool(std::string*)>& fn, int reps, int n,
                      std::vector<double>* out) {
    for (int b = 0; b < n; ++b) {
      const auto t0 = Clock::now();
      for (int r = 0; r < reps; ++r)
        if (!fn(error)) return false;
      out->push_back(MicrosSince(t0) / reps);
    }
    return true;
  };
  int plan_reps = 1, seq_reps = 1;
  if (!reps_for(run_plan, &plan_reps) || !reps_for(run_sequence, &seq_reps)) return false;
  std::vector<double> plan_blocks, seq_blocks;
  for (size_t i = 0; i < plan.size(); ++i) {
    for (size_t j = 0; j < i; ++j) {
      const mtan_status s = mtan_operator_run(m, plan[j], rows, batch, pool);
      if (s != MTAN_OK) {
        *error = host::RuntimeError(s);
        return false;
      }
    }
    const uint32_t o = plan[i];
    auto run_one = [&](std::string* e) {
      const mtan_status s = mtan_operator_run(m, o, rows, batch, pool);
      if (s != MTAN_OK) *e = host::RuntimeError(s);
      return s == MTAN_OK;
    };
    for (int w = 0; w < 2; ++w)
      if (!run_one(error)) return false;
    int reps = 1;
    std::vector<double> op_blocks;
    if (!reps_for(run_one, &reps) || !per_call(run_one, reps, blocks, &op_blocks)) return false;
    const double us = Median(op_blocks);
    if (!per_call(run_plan, plan_reps, 1, &plan_blocks) ||
        !per_call(run_sequence, seq_reps, 1, &seq_blocks))
      return false;
    mtan_operator_info op;
    if (const mtan_status s = mtan_operator_info_get(m, o, &op); s != MTAN_OK) {
      *error = host::RuntimeError(s);
      return false;
    }
    if (op.backend == MTAN_BACKEND_XNNPACK) {
      t->xnn_us += us;
      if (op.macs_per_row > 0) {
        t->fc_us += us;
        t->fc_mop += 2.0 * static_cast<double>(op.macs_per_row) * batch / 1e6;
      }
    } else {
      t->own_us += us;
    }
    if (profile != nullptr) {
      OpTime ot;
      ot.index = o;
      ot.op = op.opcode;
      ot.name = op.output;
      ot.dtype = op.dtype == 1 ? "int8" : "float32";
      ot.backend = op.backend == MTAN_BACKEND_XNNPACK ? "xnnpack" : "own";
      ot.in_channels = op.in_channels;
      ot.out_channels = op.out_channels;
      ot.us = us;
      profile->push_back(ot);
    }
  }
  t->plan_us = Median(plan_blocks);
  t->sequence_us = Median(seq_blocks);
  return true;
}

class ThreadPools {
 public:
  ~ThreadPools() {
#ifdef MTAN_BENCH_WITH_PTHREADPOOL
    for (auto& [n, p] : pools_) pthreadpool_destroy(static_cast<pthreadpool_t>(p));
#endif
  }
  // NULL for 1 thread (the calling thread alone).
  bool Get(uint32_t threads, void** pool, std::string* error) {
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

 private:
  std::map<uint32_t, void*> pools_;
};

Row BaseRow(const ModelFile& f, const std::string& role, const std::string& backend,
            const std::string& task, uint32_t batch, uint32_t threads) {
  Row r;
  r.model = f.name;
  r.model_bytes = f.bytes.size();
  r.role = role;
  r.dtype = f.int8 ? "int8" : "float32";
  r.backend = backend;
  r.task = task;
  r.batch = batch;
  r.threads = threads;
  return r;
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

struct Primary {
  const ModelFile* model;
  const ModelFile* float_peer;  // null: none (or the model is float32 itself)
};

struct TaskChoice {
  std::string label;
  int32_t index;  // MTAN_ALL_TASKS or a task of the primary model
};

bool ResolveTasks(const Config& c, const ModelFile& m, std::vector<TaskChoice>* out,
                  std::string* error) {
  out->clear();
  for (const std::string& spec : c.tasks) {
    if (spec == "all") {
      out->push_back({"all", MTAN_ALL_TASKS});
    } else if (spec == "each") {
      for (size_t k = 0; k < m.task_names.size(); ++k)
        out->push_back({m.task_names[k], static_cast<int32_t>(k)});
    } else {
      const int32_t k = FindTask(m, spec);
      if (k < 0) {
        std::string names;
        for (const std::string& n : m.task_names) names += (names.empty() ? "" : ", ") + n;
        *error = "--task: " + m.name + " has no task '" + spec + "' (its tasks: " + names +
                 "; or all, each)";
        return false;
      }
      out->push_back({spec, k});
    }
  }
  return true;
}

std::string ReadCpuName() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("model name", 0) == 0) {
      const size_t colon = line.find(':');
      if (colon != std::string::npos) {
        size_t b = colon + 1;
        while (b < line.size() && line[b] == ' ') ++b;
        return line.substr(b);
      }
    }
  }
  return "unknown";
}

}  // namespace

// The source tree's commit now, when this binary runs beside its source
// (a developer's build); empty elsewhere (a binary copied to a device).
// " (runtime/ modified)" marks a runtime with uncommitted changes.
std::string CommitNow() {
#ifdef MTAN_BENCH_SOURCE_DIR
  auto run = [](const std::string& cmd) {
    std::string text;
    FILE* p = popen(cmd.c_str(), "r");
    if (p == nullptr) return text;
    char buf[256];
    while (fgets(buf, sizeof(buf), p) != nullptr) text += buf;
    if (pclose(p) != 0) text.clear();
    return text;
  };
  const std::string dir = MTAN_BENCH_SOURCE_DIR;
  std::string commit = run("git -C '" + dir + "' rev-parse --short=12 HEAD 2>/dev/null");
  while (!commit.empty() && (commit.back() == '\n' || commit.back() == ' ')) commit.pop_back();
  if (commit.empty()) return "";
  if (!run("git -C '" + dir + "' status --porcelain -- runtime 2>/dev/null").empty())
    commit += " (runtime/ modified)";
  return commit;
#else
  return "";
#endif
}

BuildInfo GetBuildInfo() {
  BuildInfo b;
  b.commit = CommitNow();
  if (b.commit.empty()) b.commit = MTAN_BENCH_COMMIT;
#if defined(__clang__)
  b.compiler = std::string("clang ") + __clang_version__;
#elif defined(__GNUC__)
  b.compiler = std::string("gcc ") + __VERSION__;
#else
  b.compiler = "unknown";
#endif
  b.build_type = MTAN_BENCH_BUILD_TYPE;
  b.cpu = ReadCpuName();
  b.torch = TorchPeerDescription();
  return b;
}

int BenchMain(int argc, const char* const* argv, std::ostream& out, std::ostream& err) {
  Config c;
  std::string message;
  switch (ParseFlags(argc, argv, &c, &message)) {
    case ParseResult::kExit:
      out << message << "\n";
      return 0;
    case ParseResult::kError:
      err << "mtan-bench: " << message << "\n";
      return 2;
    case ParseResult::kRun:
      break;
  }
  auto fail = [&](const std::string& m) {
    err << "mtan-bench: " << m << "\n";
    return 1;
  };
  const mtan_status init = mtan_init();
  if (init != MTAN_OK) return fail(host::RuntimeError(init));
  bool want_xnnpack = false;
  for (const std::string& b : c.backends) want_xnnpack |= b == "xnnpack";
  if (want_xnnpack && mtan_backend_available(MTAN_BACKEND_XNNPACK) != MTAN_OK)
    return fail("--backend xnnpack: this build has no XNNPACK (MTAN_WITH_XNNPACK=OFF)");

  // Models: files first, then the synthetic pair. std::list-like stability:
  // reserve so that pointers into the vector stay valid.
  std::vector<std::unique_ptr<ModelFile>> files;
  std::vector<Primary> primaries;
  std::string error;
  const ModelFile* float_file = nullptr;
  if (!c.float_model.empty()) {
    std::vector<uint8_t> bytes;
    if (!host::ReadFile(c.float_model, &bytes, &error)) return fail(error);
    files.push_back(std::make_unique<ModelFile>());
    if (!OpenModel(c.float_model, bytes, files.back().get(), &error)) return fail(error);
    if (files.back()->int8) return fail("--float-model " + c.float_model + " is an int8 model");
    float_file = files.back().get();
  }
  for (const std::string& path : c.models) {
    std::vector<uint8_t> bytes;
    if (!host::ReadFile(path, &bytes, &error)) return fail(error);
    files.push_back(std::make_unique<ModelFile>());
    if (!OpenModel(path, bytes, files.back().get(), &error)) return fail(error);
    const ModelFile* m = files.back().get();
    primaries.push_back({m, m->int8 ? float_file : nullptr});
  }
  if (c.synthetic || !c.write_synthetic.empty()) {
    SyntheticModels syn;
    const uint32_t max_batch = *std::max_element(c.batches.begin(), c.batches.end());
    if (c.progress) err << "mtan-bench: building the synthetic default MTAN (seed " << c.seed << ")\n";
    if (!MakeSyntheticModels(c.seed, std::max<uint32_t>(max_batch, 256), &syn, &error))
      return fail(error);
    if (!c.write_synthetic.empty()) {
      const std::string f = c.write_synthetic + ".float32.mtan", q = c.write_synthetic + ".int8.mtan";
      if (!host::WriteFileAtomic(f, syn.float32, &error) ||
          !host::WriteFileAtomic(q, syn.int8, &error))
        return fail(error);
      err << "mtan-bench: wrote " << q << " and " << f << "\n";
      if (!c.synthetic && c.models.empty()) return 0;
    }
    if (c.synthetic) {
      files.push_back(std::make_unique<ModelFile>());
      if (!OpenModel("synthetic-float32", syn.float32, files.back().get(), &error)) return fail(error);
      const ModelFile* f = files.back().get();
      files.push_back(std::make_unique<ModelFile>());
      if (!OpenModel("synthetic-int8", syn.int8, files.back().get(), &error)) return fail(error);
      primaries.push_back({files.back().get(), f});
    }
  }

  // Check everything that can be checked before measuring anything.
  std::vector<std::vector<TaskChoice>> task_choices(primaries.size());
  for (size_t p = 0; p < primaries.size(); ++p) {
    if (!ResolveTasks(c, *primaries[p].model, &task_choices[p], &error)) return fail(error);
    const ModelFile* f = primaries[p].float_peer;
    if (f != nullptr) {
      if (f->fb->inputs()->size() != primaries[p].model->fb->inputs()->size())
        return fail(f->name + " has " + std::to_string(f->fb->inputs()->size()) + " inputs, " +
                    primaries[p].model->name + " has " +
                    std::to_string(primaries[p].model->fb->inputs()->size()));
      for (const TaskChoice& t : task_choices[p])
        if (t.index != MTAN_ALL_TASKS && FindTask(*f, t.label) < 0)
          return fail(f->name + " has no task '" + t.label + "'");
    }
  }
  ThreadPools pools;
  for (uint32_t t : c.threads) {
    void* pool;
    if (!pools.Get(t, &pool, &error)) return fail(error);
  }

  // libtorch peers, one per float model, built (and timed) once.
  struct TorchEntry {
    std::unique_ptr<TorchPeer> peer;
    double build_us = 0;
  };
  std::map<const ModelFile*, TorchEntry> torch;
  if (c.compare_torch) {
    if (!TorchPeerAvailable()) {
      if (c.progress) err << "mtan-bench: no libtorch comparison: " << TorchPeerDescription() << "\n";
    } else {
      for (const Primary& p : primaries) {
        const ModelFile* f = p.model->int8 ? p.float_peer : p.model;
        if (f == nullptr) {
          if (c.progress)
            err << "mtan-bench: no libtorch or float32 comparison for " << p.model->name
                << ": give its --float-model\n";
          continue;
        }
        if (torch.count(f)) continue;
        const auto t0 = Clock::now();
        TorchEntry e;
        e.peer = MakeTorchPeer(*f->fb, &error);
        e.build_us = MicrosSince(t0);
        if (!e.peer) return fail(error);
        torch[f] = std::move(e);
      }
    }
  }

  size_t total = 0, done = 0;
  for (size_t p = 0; p < primaries.size(); ++p)
    total += c.batches.size() * task_choices[p].size() * c.threads.size();

  std::vector<Row> rows;
  std::vector<OpProfile> profiles;
  for (size_t p = 0; p < primaries.size(); ++p) {
    const ModelFile& model = *primaries[p].model;
    const ModelFile* float_peer = primaries[p].float_peer;
    for (uint32_t batch : c.batches) {
      // Load every instance this batch needs.
      std::vector<std::unique_ptr<Instance>> prim, flt;
      std::unique_ptr<Instance> ref;
      bool has_ref_backend = false;
      for (const std::string& b : c.backends) {
        const mtan_backend be = b == "reference" ? MTAN_BACKEND_REFERENCE : MTAN_BACKEND_XNNPACK;
        has_ref_backend |= be == MTAN_BACKEND_REFERENCE;
        prim.push_back(std::make_unique<Instance>());
        if (!prim.back()->Load(model, batch, be, c.load_runs, &error)) return fail(error);
        if (c.compare_float && float_peer != nullptr) {
          flt.push_back(std::make_unique<Instance>());
          if (!flt.back()->Load(*float_peer, batch, be, c.load_runs, &error)) return fail(error);
        }
      }
      if (c.compare_reference && !has_ref_backend) {
        ref = std::make_unique<Instance>();
        if (!ref->Load(model, batch, MTAN_BACKEND_REFERENCE, c.load_runs, &error)) return fail(error);
      }
      const std::vector<float> inputs = RowsForModel(*model.fb, batch, c.seed + batch);
      const ModelFile* torch_model = model.int8 ? float_peer : &model;
      TorchEntry* te = torch_model && torch.count(torch_model) ? &torch[torch_model] : nullptr;

      for (const TaskChoice& task : task_choices[p]) {
        for (uint32_t threads : c.threads) {
          void* pool = nullptr;
          pools.Get(threads, &pool, &error);
          ++done;
          if (c.progress)
            err << "mtan-bench: [" << done << "/" << total << "] " << model.name << " task "
                << task.label << ", batch " << batch << ", " << threads << " thread"
                << (threads > 1 ? "s" : "") << "\n";
          // Engines: the model on each backend, its float32 on each, the
          // reference kernels, libtorch.
          std::vector<std::unique_ptr<Engine>> engines;
          std::vector<const Instance*> engine_inst;
          auto add_instance = [&](const Instance& inst, const std::string& role) {
            const ModelFile& f = inst.file();
            const int32_t k = task.index == MTAN_ALL_TASKS ? MTAN_ALL_TASKS : FindTask(f, task.label);
            auto e = std::make_unique<Engine>();
            e->row = BaseRow(f, role, BackendName(inst.backend()), task.label, batch, threads);
            e->row.load_us = inst.load_us();
            e->row.load_warm_us = inst.load_warm_us();
            inst.FillMemory(&e->row);
            e->row.fc_mop = FcMopPerRow(*f.fb, PlanOf(*f.fb, k)) * batch;
            uint32_t per_row = 0;
            mtan_output_size(inst.model(), k, &per_row);
            e->out.assign(static_cast<size_t>(batch) * per_row, 0.0f);
            Engine* ep = e.get();
            mtan_model* m = inst.model();
            e->run = [ep, m, k, batch, pool, &inputs](std::string* error) {
              const mtan_status s =
                  mtan_run(m, inputs.data(), batch, k, ep->out.data(), ep->out.size(), pool);
              if (s != MTAN_OK) *error = host::RuntimeError(s);
              return s == MTAN_OK;
            };
            engines.push_back(std::move(e));
            engine_inst.push_back(&inst);
          };
          for (const auto& i : prim) add_instance(*i, "model");
          for (const auto& i : flt) add_instance(*i, "float32");
          if (ref) add_instance(*ref, "reference");
          Engine* torch_engine = nullptr;
          if (te != nullptr) {
            const int32_t k =
                task.index == MTAN_ALL_TASKS ? MTAN_ALL_TASKS : FindTask(*torch_model, task.label);
            auto e = std::make_unique<Engine>();
            e->row = BaseRow(*torch_model, "libtorch", "libtorch", task.label, batch, threads);
            e->row.load_us = te->build_us;
            e->row.fc_mop = FcMopPerRow(*torch_model->fb, PlanOf(*torch_model->fb, k)) * batch;
            e->out.assign(static_cast<size_t>(batch) * OutputFloats(*torch_model, k), 0.0f);
            Engine* ep = e.get();
            TorchPeer* peer = te->peer.get();
            e->run = [ep, peer, k, batch, threads, &inputs](std::string* error) {
              return peer->Run(inputs.data(), batch, k, ep->out.data(), static_cast<int>(threads),
                               error);
            };
            torch_engine = e.get();
            engines.push_back(std::move(e));
            engine_inst.push_back(nullptr);
          }
          std::vector<Engine*> ptrs;
          for (auto& e : engines) ptrs.push_back(e.get());
          if (!MeasureInterleaved(ptrs, c, &error)) return fail(model.name + ": " + error);
          for (auto& e : engines) FillTimes(e.get());

          // The runtime's overhead: each XNNPACK operator of the plan alone.
          if (c.overhead || c.profile) {
            for (size_t i = 0; i < engines.size(); ++i) {
              const Instance* inst = engine_inst[i];
              if (inst == nullptr || inst->backend() != MTAN_BACKEND_XNNPACK) continue;
              const int32_t k = task.index == MTAN_ALL_TASKS ? MTAN_ALL_TASKS
                                                             : FindTask(inst->file(), task.label);
              OpTimes t;
              OpProfile prof;
              prof.label = inst->file().name + ", task " + task.label + ", batch " +
                           std::to_string(batch) + ", " + std::to_string(threads) + " thread(s)";
              if (!MeasureOps(*inst, inputs.data(), batch, k, pool, c.min_seconds, engines[i]->run, &t,
                              c.profile ? &prof.ops : nullptr, &error))
                return fail(inst->file().name + ": " + error);
              if (c.profile) profiles.push_back(std::move(prof));
              if (!c.overhead) continue;
              Row& r = engines[i]->row;
              r.xnn_ops_us = t.xnn_us;
              r.own_ops_us = t.own_us;
              r.sequence_us = t.sequence_us;
              r.plan_us = t.plan_us;
              if (t.xnn_us > 0) r.overhead = t.plan_us / t.xnn_us;
              if (t.fc_us > 0) r.fc_gops_isolated = t.fc_mop / t.fc_us * 1e3;
            }
          }
          // libtorch computes the runtime's float function: say how closely.
          if (torch_engine != nullptr) {
            const Engine* float_engine = nullptr;
            for (size_t i = 0; i < engines.size(); ++i)
              if (engine_inst[i] != nullptr && !engine_inst[i]->file().int8) float_engine = engines[i].get();
            if (float_engine != nullptr && float_engine->out.size() == torch_engine->out.size()) {
              double diff = 0;
              for (size_t i = 0; i < torch_engine->out.size(); ++i)
                diff = std::max(diff, static_cast<double>(std::fabs(torch_engine->out[i] -
                                                                    float_engine->out[i])));
              torch_engine->row.check_max_abs_diff = diff;
            }
          }
          // Ratios: how many times faster the model runs than each peer.
          auto p50_of = [&](const std::string& role, const std::string& backend) -> double {
            for (auto& e : engines)
              if (e->row.role == role && e->row.backend == backend) return e->row.p50_us;
            return 0;
          };
          for (auto& e : engines) {
            Row& r = e->row;
            if (r.p50_us <= 0) continue;
            const double torch_p50 = p50_of("libtorch", "libtorch");
            if (r.role == "model") {
              const double f = p50_of("float32", r.backend);
              if (f > 0) r.speedup_vs_float32 = f / r.p50_us;
              if (r.backend == "xnnpack") {
                double rf = p50_of("reference", "reference");
                if (rf == 0) rf = p50_of("model", "reference");
                if (rf > 0) r.speedup_vs_reference = rf / r.p50_us;
              }
            }
            if ((r.role == "model" || r.role == "float32") && torch_p50 > 0)
              r.speedup_vs_libtorch = torch_p50 / r.p50_us;
          }
          for (auto& e : engines) rows.push_back(e->row);
        }
      }
    }
  }
  WriteReport(rows, GetBuildInfo(), c.output, out);
  // Profiles are tables for people: after the markdown, else on stderr so
  // that csv and json stay one row per line.
  if (c.profile) WriteProfiles(profiles, c.output == "md" ? out : err);
  return 0;
}

}  // namespace mtan::bench
