// mtan-bench's measurements. One process loads every engine of a
// comparison (the model, its float32 source, the reference kernels,
// libtorch; ONNX Runtime runs in a child process that times its own blocks),
// gives them the same input rows and interleaves their timed runs in short
// blocks (harness.h), so that a load that comes and goes on a shared machine
// hits all of them alike and the ratios hold.
#include "bench.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <memory>
#include <ostream>

#include "harness.h"
#include "instance.h"
#include "model_io.h"
#include "mtan/mtan.h"
#include "mtan/mtan_debug.h"
#include "onnx_peer.h"
#include "op_profile.h"
#include "synthetic.h"
#include "torch_peer.h"

namespace mtan::bench {
namespace {

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

// Every model of the run: the files (the --float-model first), then the
// synthetic pair. Pointers into `files` stay valid (each is its own block).
struct Models {
  std::vector<std::unique_ptr<ModelFile>> files;
  std::vector<Primary> primaries;
};

// Opens the models; *exit_now when --write-synthetic alone was asked.
bool LoadModels(const Config& c, std::ostream& err, Models* ms, bool* exit_now,
                std::string* error) {
  *exit_now = false;
  auto open = [&](const std::string& name, const std::vector<uint8_t>& bytes) -> const ModelFile* {
    ms->files.push_back(std::make_unique<ModelFile>());
    return OpenModel(name, bytes, ms->files.back().get(), error) ? ms->files.back().get() : nullptr;
  };
  const ModelFile* float_file = nullptr;
  if (!c.float_model.empty()) {
    std::vector<uint8_t> bytes;
    if (!host::ReadFile(c.float_model, &bytes, error)) return false;
    float_file = open(c.float_model, bytes);
    if (float_file == nullptr) return false;
    if (float_file->int8) {
      *error = "--float-model " + c.float_model + " is an int8 model";
      return false;
    }
  }
  for (const std::string& path : c.models) {
    std::vector<uint8_t> bytes;
    if (!host::ReadFile(path, &bytes, error)) return false;
    const ModelFile* m = open(path, bytes);
    if (m == nullptr) return false;
    ms->primaries.push_back({m, m->int8 ? float_file : nullptr});
  }
  if (c.synthetic || !c.write_synthetic.empty()) {
    SyntheticModels syn;
    const uint32_t max_batch = *std::max_element(c.batches.begin(), c.batches.end());
    if (c.progress) err << "mtan-bench: building the synthetic default MTAN (seed " << c.seed << ")\n";
    if (!MakeSyntheticModels(c.seed, std::max<uint32_t>(max_batch, 256), &syn, error)) return false;
    if (!c.write_synthetic.empty()) {
      const std::string f = c.write_synthetic + ".float32.mtan", q = c.write_synthetic + ".int8.mtan";
      if (!host::WriteFileAtomic(f, syn.float32, error) || !host::WriteFileAtomic(q, syn.int8, error))
        return false;
      err << "mtan-bench: wrote " << q << " and " << f << "\n";
      if (!c.synthetic && c.models.empty()) {
        *exit_now = true;
        return true;
      }
    }
    if (c.synthetic) {
      const ModelFile* f = open("synthetic-float32", syn.float32);
      const ModelFile* q = f ? open("synthetic-int8", syn.int8) : nullptr;
      if (q == nullptr) return false;
      ms->primaries.push_back({q, f});
    }
  }
  return true;
}

// Checks everything that can be checked before measuring anything.
bool CheckRun(const Config& c, const Models& ms, ThreadPools* pools,
              std::vector<std::vector<TaskChoice>>* task_choices, std::string* error) {
  task_choices->assign(ms.primaries.size(), {});
  for (size_t p = 0; p < ms.primaries.size(); ++p) {
    const Primary& pr = ms.primaries[p];
    if (!ResolveTasks(c, *pr.model, &(*task_choices)[p], error)) return false;
    const auto* ids = pr.model->fb->tensor_inputs();
    if (c.onnx && ids && ids->size() > 0) {
      *error = pr.model->name + ": --onnx exports dense-feature models only; this one has id inputs";
      return false;
    }
    const ModelFile* f = pr.float_peer;
    if (f == nullptr) continue;
    const auto* float_ids = f->fb->tensor_inputs();
    if ((ids ? ids->size() : 0) != (float_ids ? float_ids->size() : 0)) {
      *error = f->name + " and " + pr.model->name + " take different id inputs";
      return false;
    }
    if (f->fb->inputs()->size() != pr.model->fb->inputs()->size()) {
      *error = f->name + " has " + std::to_string(f->fb->inputs()->size()) + " inputs, " +
               pr.model->name + " has " + std::to_string(pr.model->fb->inputs()->size());
      return false;
    }
    for (const TaskChoice& t : (*task_choices)[p]) {
      if (t.index != MTAN_ALL_TASKS && FindTask(*f, t.label) < 0) {
        *error = f->name + " has no task '" + t.label + "'";
        return false;
      }
    }
  }
  for (uint32_t t : c.threads) {
    void* pool;
    if (!pools->Get(t, &pool, error)) return false;
  }
  return true;
}

// libtorch peers, one per float model, built (and timed) once.
struct TorchEntry {
  std::unique_ptr<TorchPeer> peer;
  double build_us = 0;
};
using TorchPeers = std::map<const ModelFile*, TorchEntry>;

bool BuildTorchPeers(const Config& c, const Models& ms, std::ostream& err, TorchPeers* torch,
                     std::string* error) {
  if (!c.compare_torch) return true;
  if (!TorchPeerAvailable()) {
    if (c.progress) err << "mtan-bench: no libtorch comparison: " << TorchPeerDescription() << "\n";
    return true;
  }
  for (const Primary& p : ms.primaries) {
    const ModelFile* f = p.model->int8 ? p.float_peer : p.model;
    if (f == nullptr) {
      if (c.progress)
        err << "mtan-bench: no libtorch or float32 comparison for " << p.model->name
            << ": give its --float-model\n";
      continue;
    }
    if (torch->count(f)) continue;
    if (f->fb->tensor_inputs() && f->fb->tensor_inputs()->size() > 0) {
      if (c.progress)
        err << "mtan-bench: no libtorch comparison for " << f->name
            << ": its peer takes dense features only, the model has id inputs\n";
      continue;
    }
    const auto t0 = Clock::now();
    TorchEntry e;
    e.peer = MakeTorchPeer(*f->fb, error);
    e.build_us = MicrosSince(t0);
    if (!e.peer) return false;
    (*torch)[f] = std::move(e);
  }
  return true;
}

// The instances one batch of one primary model needs: the model on each
// --backend, its float32 on each, and the reference kernels.
struct BatchInstances {
  std::vector<std::unique_ptr<Instance>> prim, flt;
  std::unique_ptr<Instance> ref;
};

bool LoadBatch(const Config& c, const Primary& p, uint32_t batch, BatchInstances* b,
               std::string* error) {
  bool has_ref_backend = false;
  for (const std::string& name : c.backends) {
    mtan_backend be = MTAN_BACKEND_DEFAULT;
    host::BackendFromName(name, &be);  // checked by ParseFlags
    has_ref_backend |= be == MTAN_BACKEND_REFERENCE;
    b->prim.push_back(std::make_unique<Instance>());
    if (!b->prim.back()->Load(*p.model, batch, be, c.load_runs, error)) return false;
    if (c.compare_float && p.float_peer != nullptr) {
      b->flt.push_back(std::make_unique<Instance>());
      if (!b->flt.back()->Load(*p.float_peer, batch, be, c.load_runs, error)) return false;
    }
  }
  if (c.compare_reference && !has_ref_backend) {
    b->ref = std::make_unique<Instance>();
    if (!b->ref->Load(*p.model, batch, MTAN_BACKEND_REFERENCE, c.load_runs, error)) return false;
  }
  return true;
}

// The bound on |ORT int8 - mtan int8| of a file: its golden tolerance (one
// LSB of a task's logits, as mtan_self_test allows between backends) times
// kOnnxInt8LogitSteps, since ORT rounds some requantizations and lookup-table
// entries one step differently and such steps add up through the layers.
constexpr double kOnnxInt8LogitSteps = 8;
double OnnxInt8Tolerance(const ModelFile& f) {
  double tol = 0;
  if (f.fb->golden() != nullptr)
    for (const fb::GoldenCase* g : *f.fb->golden()) tol = std::max(tol, double{g->tolerance()});
  return kOnnxInt8LogitSteps * std::max(tol, 1e-3);
}

// ONNX Runtime engines for one configuration: the export of each file
// measured here (the model, and its float32 when that is measured too), each
// checked against mtan's output on the same rows before anything is timed;
// and an Identity of the input through the same path (the binding's floor).
bool AddOnnxEngines(OnnxPeer* onnx, const std::vector<const ModelFile*>& files,
                    const std::vector<Engine*>& ours, const TaskChoice& task, uint32_t batch,
                    uint32_t threads, const std::vector<float>& inputs,
                    std::vector<std::unique_ptr<Engine>>* engines, std::string* error) {
  const uint32_t width = files.front()->fb->inputs()->size();
  auto add = [&](const ModelFile& f, bool identity, Engine* mine) {
    std::string path;
    const OnnxPeer::Session* s = nullptr;
    if (!onnx->Export(f, task.label, identity, &path, error) ||
        !onnx->Open(path, threads, width, &s, error) || !onnx->SetInput(*s, inputs, batch, error))
      return false;
    auto e = std::make_unique<Engine>();
    e->row = BaseRow(f.name, f.bytes.size(), f.int8 && !identity,
                     identity ? "onnxruntime-identity" : "onnxruntime", "onnxruntime", task.label,
                     batch, threads);
    e->row.load_us = s->load_us;
    e->row.peer_kernels = s->kernels;
    const int32_t k = task.index == MTAN_ALL_TASKS ? MTAN_ALL_TASKS : FindTask(f, task.label);
    if (!identity) e->row.fc_mop = FcMopPerRow(*f.fb, PlanOf(*f.fb, k)) * batch;
    Engine* ep = e.get();
    e->run = [onnx, s, ep](std::string* err) { return onnx->Run(*s, &ep->out, err); };
    e->run_block = [onnx, s](int n, std::vector<double>* us, std::string* err) {
      return onnx->Time(*s, n, us, err);
    };
    if (mine != nullptr) {
      double diff = 0;
      if (!mine->run(error) || !e->run(error)) return false;
      if (!CheckPeerOutputs(mine->out, e->out, OutputFloats(f, k), f.int8,
                            f.int8 ? OnnxInt8Tolerance(f) : 0, &diff, error)) {
        *error = f.name + ", task " + task.label + ", batch " + std::to_string(batch) + ": " + *error;
        return false;
      }
      e->row.check_max_abs_diff = diff;
    }
    engines->push_back(std::move(e));
    return true;
  };
  for (size_t i = 0; i < files.size(); ++i)
    if (!add(*files[i], false, ours[i])) return false;
  return add(*files.front(), true, nullptr);
}

// One configuration (model, task, batch, threads): every engine measured
// interleaved, then the overhead, the peers' checks and the ratios.
bool MeasureConfiguration(const Config& c, const BatchInstances& b, const ModelFile* torch_model,
                          TorchEntry* te, OnnxPeer* onnx, const TaskChoice& task, uint32_t batch,
                          uint32_t threads, void* pool, const std::vector<float>& inputs,
                          const std::vector<std::vector<uint8_t>>& ids, std::vector<Row>* rows, std::vector<OpProfile>* profiles,
                          std::string* error) {
  std::vector<std::unique_ptr<Engine>> engines;
  std::vector<const Instance*> engine_inst;
  auto task_of = [&](const ModelFile& f) {
    return task.index == MTAN_ALL_TASKS ? MTAN_ALL_TASKS : FindTask(f, task.label);
  };
  auto add_instance = [&](const Instance& inst, const std::string& role) {
    const ModelFile& f = inst.file();
    const int32_t k = task_of(f);
    auto e = std::make_unique<Engine>();
    e->row = BaseRow(f.name, f.bytes.size(), f.int8, role, host::BackendName(inst.backend()), task.label,
                     batch, threads);
    e->row.load_us = inst.load_us();
    e->row.load_warm_us = inst.load_warm_us();
    e->row.load_runs = inst.load_runs();
    inst.FillMemory(&e->row);
    e->row.fc_mop = FcMopPerRow(*f.fb, PlanOf(*f.fb, k)) * batch;
    uint32_t per_row = 0;
    mtan_output_size(inst.model(), k, &per_row);
    e->out.assign(static_cast<size_t>(batch) * per_row, 0.0f);
    Engine* ep = e.get();
    mtan_model* m = inst.model();
    std::vector<const void*> id_ptrs;
    for (const auto& v : ids) id_ptrs.push_back(v.data());
    e->run = [ep, m, k, batch, pool, &inputs, id_ptrs](std::string* err) {
      const mtan_status s = mtan_run_inputs(m, inputs.data(), id_ptrs.data(),
                                            static_cast<uint32_t>(id_ptrs.size()), batch, k,
                                            ep->out.data(), ep->out.size(), pool);
      if (s != MTAN_OK) *err = host::RuntimeError(s);
      return s == MTAN_OK;
    };
    engines.push_back(std::move(e));
    engine_inst.push_back(&inst);
  };
  for (const auto& i : b.prim) add_instance(*i, "model");
  for (const auto& i : b.flt) add_instance(*i, "float32");
  if (b.ref) add_instance(*b.ref, "reference");
  Engine* torch_engine = nullptr;
  if (te != nullptr) {
    const int32_t k = task_of(*torch_model);
    auto e = std::make_unique<Engine>();
    e->row = BaseRow(torch_model->name, torch_model->bytes.size(), torch_model->int8, "libtorch",
                     "libtorch", task.label, batch, threads);
    e->row.load_us = te->build_us;
    e->row.fc_mop = FcMopPerRow(*torch_model->fb, PlanOf(*torch_model->fb, k)) * batch;
    e->out.assign(static_cast<size_t>(batch) * OutputFloats(*torch_model, k), 0.0f);
    Engine* ep = e.get();
    TorchPeer* peer = te->peer.get();
    e->run = [ep, peer, k, batch, threads, &inputs](std::string* err) {
      return peer->Run(inputs.data(), batch, k, ep->out.data(), static_cast<int>(threads), err);
    };
    torch_engine = e.get();
    engines.push_back(std::move(e));
    engine_inst.push_back(nullptr);
  }
  if (onnx != nullptr) {
    // Each file's first engine (its first --backend) is the one ORT must match.
    std::vector<const ModelFile*> files = {&b.prim.front()->file()};
    std::vector<Engine*> ours = {engines.front().get()};
    if (!b.flt.empty()) {
      files.push_back(&b.flt.front()->file());
      ours.push_back(engines[b.prim.size()].get());
    }
    std::vector<std::unique_ptr<Engine>> ort;
    if (!AddOnnxEngines(onnx, files, ours, task, batch, threads, inputs, &ort, error))
      return false;
    for (auto& e : ort) {
      engines.push_back(std::move(e));
      engine_inst.push_back(nullptr);
    }
  }
  std::vector<Engine*> ptrs;
  for (auto& e : engines) ptrs.push_back(e.get());
  if (!MeasureInterleaved(ptrs, c, error)) {
    *error = b.prim.front()->file().name + ": " + *error;
    return false;
  }
  for (auto& e : engines) FillTimes(e.get());

  // The runtime's overhead: each XNNPACK operator of the plan alone.
  if (c.overhead || c.profile) {
    for (size_t i = 0; i < engines.size(); ++i) {
      const Instance* inst = engine_inst[i];
      if (inst == nullptr || inst->backend() == MTAN_BACKEND_REFERENCE) continue;
      OpTimes t;
      OpProfile prof;
      prof.label = inst->file().name + ", task " + task.label + ", batch " + std::to_string(batch) +
                   ", " + std::to_string(threads) + " thread(s)";
      if (!MeasureOps(*inst, inputs.data(), batch, task_of(inst->file()), pool, c.min_seconds,
                      engines[i]->run, &t, c.profile ? &prof.ops : nullptr, error)) {
        *error = inst->file().name + ": " + *error;
        return false;
      }
      if (c.profile) profiles->push_back(std::move(prof));
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
    if (float_engine != nullptr && float_engine->out.size() == torch_engine->out.size())
      torch_engine->row.check_max_abs_diff = MaxAbsDiff(torch_engine->out, float_engine->out);
  }
  // Ratios: how many times faster the model runs than each peer.
  auto p50_of = [&](const std::string& role, const std::string& backend) -> double {
    for (auto& e : engines)
      if (e->row.role == role && e->row.backend == backend) return e->row.p50_us;
    return 0;
  };
  const double torch_p50 = p50_of("libtorch", "libtorch");
  auto onnx_p50_of = [&](const std::string& model) -> double {
    for (auto& e : engines)
      if (e->row.role == "onnxruntime" && e->row.model == model) return e->row.p50_us;
    return 0;
  };
  for (auto& e : engines) {
    Row& r = e->row;
    if (r.p50_us <= 0) continue;
    if ((r.role == "model" || r.role == "float32") && onnx_p50_of(r.model) > 0)
      r.speedup_vs_onnxruntime = onnx_p50_of(r.model) / r.p50_us;
    if (r.role == "model") {
      const double f = p50_of("float32", r.backend);
      if (f > 0) r.speedup_vs_float32 = f / r.p50_us;
      if (r.backend != "reference") {
        double rf = p50_of("reference", "reference");
        if (rf == 0) rf = p50_of("model", "reference");
        if (rf > 0) r.speedup_vs_reference = rf / r.p50_us;
      }
    }
    if ((r.role == "model" || r.role == "float32") && torch_p50 > 0)
      r.speedup_vs_libtorch = torch_p50 / r.p50_us;
  }
  for (auto& e : engines) rows->push_back(e->row);
  return true;
}

}  // namespace

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

  std::string error;
  Models ms;
  bool exit_now = false;
  if (!LoadModels(c, err, &ms, &exit_now, &error)) return fail(error);
  if (exit_now) return 0;
  ThreadPools pools;
  std::vector<std::vector<TaskChoice>> task_choices;
  if (!CheckRun(c, ms, &pools, &task_choices, &error)) return fail(error);
  TorchPeers torch;
  if (!BuildTorchPeers(c, ms, err, &torch, &error)) return fail(error);
  std::unique_ptr<OnnxPeer> onnx;
  if (c.onnx) {
    onnx = std::make_unique<OnnxPeer>();
    if (!onnx->Start(c, &error)) return fail(error);
    if (c.progress) err << "mtan-bench: ONNX Runtime peer started; exports in " << onnx->dir() << "\n";
  }

  size_t total = 0, done = 0;
  for (size_t p = 0; p < ms.primaries.size(); ++p)
    total += c.batches.size() * task_choices[p].size() * c.threads.size();
  std::vector<Row> rows;
  std::vector<OpProfile> profiles;
  for (size_t p = 0; p < ms.primaries.size(); ++p) {
    const Primary& primary = ms.primaries[p];
    const ModelFile& model = *primary.model;
    const ModelFile* torch_model = model.int8 ? primary.float_peer : &model;
    TorchEntry* te = torch_model && torch.count(torch_model) ? &torch[torch_model] : nullptr;
    for (uint32_t batch : c.batches) {
      BatchInstances instances;
      if (!LoadBatch(c, primary, batch, &instances, &error)) return fail(error);
      const std::vector<float> inputs = RowsForModel(*model.fb, batch, c.seed + batch);
      const std::vector<std::vector<uint8_t>> ids = IdsForModel(*model.fb, batch, c.seed + batch);
      for (const TaskChoice& task : task_choices[p]) {
        for (uint32_t threads : c.threads) {
          void* pool = nullptr;
          pools.Get(threads, &pool, &error);
          ++done;
          if (c.progress)
            err << "mtan-bench: [" << done << "/" << total << "] " << model.name << " task "
                << task.label << ", batch " << batch << ", " << threads << " thread"
                << (threads > 1 ? "s" : "") << "\n";
          if (!MeasureConfiguration(c, instances, torch_model, te, onnx.get(), task, batch, threads,
                                    pool, inputs, ids, &rows, &profiles, &error))
            return fail(error);
        }
      }
    }
  }
  BuildInfo info = GetBuildInfo();
  if (onnx) info.onnxruntime = onnx->description();
  WriteReport(rows, info, c.output, out);
  // Profiles are tables for people: after the markdown, else on stderr so
  // that csv and json stay one row per line.
  if (c.profile) WriteProfiles(profiles, c.output == "md" ? out : err);
  return 0;
}

}  // namespace mtan::bench
