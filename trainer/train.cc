#include "train.h"

#include <dlfcn.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <limits>
#include <memory>
#include <numeric>

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <torch/optim/adam.h>

#include "arch.h"
#include "dataset.h"
#include "loss_weights.h"
#include "metrics.h"
#include "model.h"
#include "model_io.h"
#include "plots.h"
#include "rng.h"

namespace mtan::trainer {
namespace {

using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

double Seconds(Clock::time_point since) {
  return std::chrono::duration<double>(Clock::now() - since).count();
}

std::string Duration(double s) {
  if (s < 60) return fmt::format("{:.0f}s", s);
  return fmt::format("{}m{:02d}s", static_cast<int>(s) / 60, static_cast<int>(s) % 60);
}

// Debian's libtorch calls the system BLAS; OpenBLAS keeps its own pool.
void SetBlasThreads(int n) {
  using SetFn = void (*)(int);
  if (auto fn = reinterpret_cast<SetFn>(dlsym(RTLD_DEFAULT, "openblas_set_num_threads"))) fn(n);
}

// Thread layout and float mode for training, set before any worker thread
// exists so that libgomp's threads inherit the flush-to-zero mode (POSIX
// threads inherit the creator's floating-point environment).
//  - Denormals: weight decay shrinks dead units toward zero; x86 arithmetic
//    on denormal floats is 10-100x slower, so epochs slowed down as training
//    went on (6 s to 55 s). FTZ/DAZ makes them zero.
//  - Threads: libtorch's OpenMP pool and OpenBLAS's pthread pool each spin
//    while the other works; with both at N, 2 cores ran 4+ spinning threads.
//    OpenBLAS's workers also start before main, so they would not inherit
//    FTZ. libtorch gets the threads and BLAS runs on the calling thread
//    (trainer/RESULTS.md, "Training speed", measures each layout).
void SetTrainingThreads(int threads) {
  at::globalContext().setFlushDenormal(true);
  at::set_num_threads(threads);
  SetBlasThreads(1);
}

struct Split {
  host::Dataset data;
  torch::Tensor x;       // [N, F] standardised
  std::vector<torch::Tensor> ids;  // per id feature: [N, L] table rows, -1 padding
  torch::Tensor labels;  // [N, T] model space; regression standardised
  torch::Tensor mask;    // [N, T] 1 where observed
};

bool LoadSplit(const std::string& path, const host::Spec& spec,
               const std::vector<std::string>* expect_features, Split* split, std::string* error) {
  if (!host::LoadCsv(path, spec, &split->data, error)) return false;
  for (size_t k = 0; k < spec.id_features.size(); ++k) {
    if (const int64_t cut = split->data.ids[k].truncated_rows)
      std::fprintf(stderr, "mtan-train: %s: %lld rows of \"%s\" hold more than %d ids; "
                   "each keeps its first %d\n", path.c_str(), static_cast<long long>(cut),
                   spec.id_features[k].name.c_str(), spec.id_features[k].max_length,
                   spec.id_features[k].max_length);
  }
  if (expect_features && split->data.features != *expect_features) {
    *error = path + ": its feature columns differ from the training file's";
    return false;
  }
  return true;
}

// The id columns of `data` as table rows (the runtime's id maps), one [N, L]
// tensor per id feature.
std::vector<torch::Tensor> IdRows(const host::Spec& spec, const std::vector<host::IdTable>& tables,
                                  const host::Dataset& data, int64_t rows) {
  std::vector<torch::Tensor> out;
  for (size_t k = 0; k < spec.id_features.size(); ++k) {
    const int64_t length = spec.id_features[k].max_length;
    std::vector<int64_t> ids(data.ids[k].ids.begin(), data.ids[k].ids.begin() + rows * length);
    host::MapIdsToRows(tables[spec.id_features[k].table], &ids);
    out.push_back(torch::from_blob(ids.data(), {rows, length}, torch::kInt64).clone());
  }
  return out;
}

void MakeTensors(Split* s, const host::Spec& spec, const std::vector<host::IdTable>& tables,
                 const std::vector<float>& mean, const std::vector<float>& stddev,
                 const std::vector<LabelScale>& scales) {
  s->ids = IdRows(spec, tables, s->data, s->data.rows);
  const int64_t n = s->data.rows;
  const int64_t f = static_cast<int64_t>(mean.size());
  const int64_t T = static_cast<int64_t>(scales.size());
  std::vector<float> x(s->data.x.size());
  for (int64_t r = 0; r < n; ++r) {
    for (int64_t j = 0; j < f; ++j) x[r * f + j] = (s->data.x[r * f + j] - mean[j]) / stddev[j];
  }
  s->x = torch::from_blob(x.data(), {n, f}, torch::kFloat32).clone();
  std::vector<float> y(n * T), m(n * T);
  for (int64_t t = 0; t < T; ++t) {
    const auto& lab = s->data.labels[t];
    for (int64_t r = 0; r < n; ++r) {
      y[r * T + t] = lab.observed[r]
                         ? static_cast<float>((lab.value[r] - scales[t].mean) / scales[t].std)
                         : 0.0f;
      m[r * T + t] = lab.observed[r];
    }
  }
  s->labels = torch::from_blob(y.data(), {n, T}, torch::kFloat32).clone();
  s->mask = torch::from_blob(m.data(), {n, T}, torch::kFloat32).clone();
}

// Per-task loss on a batch, averaged over the rows where the task is
// observed (0 when none is).
torch::Tensor TaskLoss(const host::TaskSpec& task, const torch::Tensor& logits,
                       const torch::Tensor& y, const torch::Tensor& m) {
  torch::Tensor per_row;
  switch (task.type) {
    case fb::TaskKind::BINARY:
      per_row = torch::binary_cross_entropy_with_logits(logits.squeeze(1), y, {}, {},
                                                        at::Reduction::None);
      break;
    case fb::TaskKind::MULTICLASS:
      per_row = torch::nn::functional::cross_entropy(
          logits, y.to(torch::kLong),
          torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kNone));
      break;
    case fb::TaskKind::REGRESSION:
      per_row = (logits.squeeze(1) - y).pow(2);
      break;
  }
  return (per_row * m).sum() / m.sum().clamp_min(1.0);
}

struct Evaluation {
  std::vector<std::vector<host::NamedMetric>> metrics;  // per task
  std::vector<std::vector<float>> predictions;          // per task, rows x outputs
  double score = 0;                                     // mean of auc / accuracy / 1 - nmse
  std::vector<std::vector<double>> alpha;               // [T][T] mean, empty without cross
};

double PrimaryOf(const host::TaskSpec& task, const std::vector<host::NamedMetric>& m) {
  const std::string name = host::PrimaryMetricName(task.type);
  for (const auto& nm : m) {
    if (nm.name == name) return nm.value;
  }
  return std::numeric_limits<double>::quiet_NaN();
}

Evaluation Evaluate(MtanNet& net, const host::Spec& spec, const Split& s,
                    const std::vector<LabelScale>& scales) {
  torch::NoGradGuard no_grad;
  const bool was_training = net->is_training();
  net->eval();
  const int T = static_cast<int>(spec.tasks.size());
  const int64_t n = s.data.rows;
  Evaluation ev;
  ev.predictions.resize(T);
  torch::Tensor alpha_sum;
  for (int64_t b = 0; b < n; b += 8192) {
    const int64_t e = std::min(n, b + 8192);
    std::vector<torch::Tensor> ids;
    for (const torch::Tensor& t : s.ids) ids.push_back(t.slice(0, b, e));
    NetOutput o = net->forward(s.x.slice(0, b, e), ids);
    for (int t = 0; t < T; ++t) {
      torch::Tensor p = Predict(spec.tasks[t], o.logits[t], scales[t]).contiguous();
      ev.predictions[t].insert(ev.predictions[t].end(), p.data_ptr<float>(),
                               p.data_ptr<float>() + p.numel());
    }
    if (o.alpha.defined()) {
      torch::Tensor a = o.alpha.sum(0).to(torch::kFloat64);
      alpha_sum = alpha_sum.defined() ? alpha_sum + a : a;
    }
  }
  double score = 0;
  for (int t = 0; t < T; ++t) {
    ev.metrics.push_back(host::EvaluateTask(spec.tasks[t], ev.predictions[t].data(), s.data.labels[t]));
    double v = PrimaryOf(spec.tasks[t], ev.metrics.back());
    if (!host::PrimaryHigherIsBetter(spec.tasks[t].type)) v = 1.0 - v;
    score += std::isfinite(v) ? v : 0.0;
  }
  ev.score = score / T;
  if (alpha_sum.defined()) {
    alpha_sum = (alpha_sum / static_cast<double>(n)).contiguous();
    ev.alpha.assign(T, std::vector<double>(T));
    for (int t = 0; t < T; ++t) {
      for (int u = 0; u < T; ++u) ev.alpha[t][u] = alpha_sum[t][u].item<double>();
    }
  }
  net->train(was_training);
  return ev;
}

json MetricsJson(const host::Spec& spec, const Evaluation& ev) {
  json j = json::object();
  for (size_t t = 0; t < spec.tasks.size(); ++t) {
    for (const auto& m : ev.metrics[t]) {
      j[spec.tasks[t].name][m.name] = std::isfinite(m.value) ? json(m.value) : json(nullptr);
    }
  }
  return j;
}

std::string MetricsLine(const host::Spec& spec, const Evaluation& ev) {
  std::string s;
  for (size_t t = 0; t < spec.tasks.size(); ++t) {
    s += fmt::format(" {} {} {:.4f}", spec.tasks[t].name, host::PrimaryMetricName(spec.tasks[t].type),
                     PrimaryOf(spec.tasks[t], ev.metrics[t]));
  }
  return s;
}

bool WriteText(const std::string& path, const std::string& text, std::string* error) {
  std::ofstream out(path, std::ios::binary);
  out << text;
  out.close();
  if (!out) {
    *error = path + ": cannot write";
    return false;
  }
  return true;
}

bool WritePredictions(const std::string& path, const host::Spec& spec, const Evaluation& ev,
                      int64_t rows, std::string* error) {
  fmt::memory_buffer buf;
  bool first = true;
  for (const auto& t : spec.tasks) {
    for (int k = 0; k < t.classes; ++k) {
      fmt::format_to(std::back_inserter(buf), "{}{}", first ? "" : ",",
                     t.classes > 1 ? fmt::format("{}_{}", t.name, k) : t.name);
      first = false;
    }
  }
  buf.push_back('\n');
  for (int64_t r = 0; r < rows; ++r) {
    first = true;
    for (size_t t = 0; t < spec.tasks.size(); ++t) {
      const int k = spec.tasks[t].classes;
      for (int c = 0; c < k; ++c) {
        fmt::format_to(std::back_inserter(buf), "{}{}", first ? "" : ",", ev.predictions[t][r * k + c]);
        first = false;
      }
    }
    buf.push_back('\n');
  }
  return WriteText(path, std::string(buf.data(), buf.size()), error);
}

int Fail(const std::string& message) {
  std::fprintf(stderr, "mtan-train: error: %s\n", message.c_str());
  return 1;
}

// RunTraining's stages, in the order it runs them. Each returns false with a
// message in *error when training must stop; RunTraining prints it.

// The data after loading and standardisation: what every later stage reads.
struct Data {
  host::Spec spec;
  Split train, val, test;
  bool have_test = false;
  int T = 0;      // tasks
  int F = 0;      // features
  int64_t N = 0;  // training rows
  double load_seconds = 0;
  // From the training rows, applied to every split and stored in the model.
  std::vector<host::IdTable> tables;  // the id maps (vocabularies) and widths
  std::vector<float> mean, stddev;
  std::vector<LabelScale> scales;  // per task; identity except for regression
};

// The network and what trains it.
struct Learner {
  ModelConfig config;
  int64_t params = 0;       // ParamCount(config)
  int64_t mtan_params = 0;  // mtan's at the same widths: the size --match-params matches
  LossWeighting weighting = LossWeighting::kEqual;
  MtanNet net{nullptr};
  torch::Tensor log_vars;   // [T] uncertainty weighting's s = log(sigma^2)
  std::unique_ptr<torch::optim::Adam> optimizer;
};

// What the epoch loop leaves behind.
struct Training {
  json epochs = json::array();  // the report's record of every epoch run
  int epochs_run = 0;
  int best_epoch = -1;          // 0-based
  double seconds = 0;
  std::vector<torch::Tensor> best_state;  // the parameters after the best epoch
  Evaluation val;               // of the selected parameters (SelectBest)
};

// What the epoch loop carries from one epoch to the next.
struct Loop {
  Loop(const TrainOptions& opt, int64_t rows)
      : shuffle_rng(opt.seed ^ 0x5DEECE66Dull), order(rows), lr(opt.lr) {
    std::iota(order.begin(), order.end(), 0);
  }
  host::Rng shuffle_rng;
  std::vector<int64_t> order;  // the training rows, reshuffled in place every epoch
  std::vector<std::vector<double>> loss_history;  // [epoch][task]: DWA's input
  std::vector<double> epoch_seconds;
  double best_score = -std::numeric_limits<double>::infinity();
  int since_best = 0;
  double lr;
  const bool tty = isatty(fileno(stderr));
};

// One epoch's numbers, for its line on stdout and its record in the report.
struct Epoch {
  int index = 0;               // 0-based
  std::vector<double> lambda;  // the task weights of the loss (equal or DWA)
  std::vector<double> loss;    // per task: mean training loss over its observed rows
  Evaluation val;
  bool improved = false;
  double lr = 0;
  double seconds = 0;
};

// The exported model and how well it agrees with this network.
struct Exported {
  std::vector<uint8_t> bytes;  // the finished .mtan
  int64_t check_rows = 0;
  double max_diff = 0, max_rel = 0;  // runtime float path vs libtorch on check_rows
  int golden = 0;                    // rows in the golden case (0: none)
};

// Where the report went, and why the plots are missing if they are.
struct ReportFiles {
  std::string dir;
  std::string plots_note;
};

bool CheckOptions(const TrainOptions& opt, Arch* arch, LossWeighting* weighting,
                  std::string* error) {
  if (!ParseArch(opt.arch, arch)) {
    *error = "--arch " + opt.arch + ": expected mtan, mtan-mask, mtan-cross, shared-bottom or single";
    return false;
  }
  if (!ParseLossWeighting(opt.loss_weights, weighting)) {
    *error = "--loss-weights " + opt.loss_weights + ": expected equal, dwa or uncertainty";
    return false;
  }
  if (opt.trunk.empty() || std::any_of(opt.trunk.begin(), opt.trunk.end(), [](int w) { return w < 1; })) {
    *error = "--trunk: expected positive widths, e.g. 256,128";
    return false;
  }
  // Every numeric option is checked here, before any data is read: a bad
  // value fails at once, naming the option, never after an hour of training
  // (a max batch the runtime refuses) or as a silent no-op (a learning-rate
  // decay of 0 or a negative one).
  const struct {
    const char* name;
    bool ok;
    const char* want;
  } checks[] = {
      {"--mask-hidden", opt.mask_hidden >= 1, "at least 1"},
      {"--task-width", opt.task_width >= 1, "at least 1"},
      {"--att-hidden", opt.att_hidden >= 1, "at least 1"},
      {"--dropout", opt.dropout >= 0 && opt.dropout < 1, "in [0, 1)"},
      {"--epochs", opt.epochs >= 1, "at least 1"},
      {"--batch", opt.batch >= 1, "at least 1"},
      {"--lr", opt.lr > 0 && std::isfinite(opt.lr), "positive"},
      {"--weight-decay", opt.weight_decay >= 0 && std::isfinite(opt.weight_decay), "0 or more"},
      {"--embedding-l2", opt.embedding_l2 >= 0 && std::isfinite(opt.embedding_l2), "0 or more"},
      {"--dwa-temperature", opt.dwa_temperature > 0 && std::isfinite(opt.dwa_temperature), "positive"},
      {"--patience", opt.patience >= 1, "at least 1"},
      {"--lr-decay", opt.lr_decay > 0 && opt.lr_decay <= 1, "in (0, 1]"},
      {"--threads", opt.threads >= 1, "at least 1"},
      {"--golden-rows", opt.golden_rows >= 0, "0 or more"},
      {"--max-batch", opt.max_batch >= 1 && opt.max_batch <= MTAN_MAX_BATCH, "in 1..65536"},
  };
  for (const auto& c : checks) {
    if (!c.ok) {
      *error = fmt::format("{}: expected a value {}", c.name, c.want);
      return false;
    }
  }
  if (!opt.predictions.empty() && opt.test_csv.empty()) {
    *error = "--predictions needs --test: the predictions are made on the test split";
    return false;
  }
  if (opt.max_batch < 1 || opt.max_batch > MTAN_MAX_BATCH) {
    *error = fmt::format("--max-batch {}: expected 1..{} (MTAN_MAX_BATCH)", opt.max_batch,
                         MTAN_MAX_BATCH);
    return false;
  }
  return true;
}

// Fail on an unwritable output now, not after training.
bool MakeOutputDirectory(const TrainOptions& opt, std::string* error) {
  std::error_code ec;
  const auto parent = std::filesystem::path(opt.out_model).parent_path();
  if (!parent.empty()) std::filesystem::create_directories(parent, ec);
  if (ec) {
    *error = parent.string() + ": cannot create directory: " + ec.message();
    return false;
  }
  return true;
}

// The spec and the splits, checked against each other and against the
// runtime's limits.
bool LoadData(const TrainOptions& opt, Clock::time_point start, Data* d, std::string* error) {
  if (!host::LoadSpec(opt.spec_path, &d->spec, error)) return false;
  if (!LoadSplit(opt.train_csv, d->spec, nullptr, &d->train, error)) return false;
  const std::vector<std::string>& features = d->train.data.features;
  if (!host::BuildIdTables(d->spec, d->train.data, &d->tables, error)) {
    *error = opt.train_csv + ": " + *error;
    return false;
  }
  if (!LoadSplit(opt.val_csv, d->spec, &features, &d->val, error)) return false;
  d->have_test = !opt.test_csv.empty();
  if (d->have_test && !LoadSplit(opt.test_csv, d->spec, &features, &d->test, error)) return false;
  d->T = static_cast<int>(d->spec.tasks.size());
  d->F = static_cast<int>(features.size());
  d->N = d->train.data.rows;
  d->load_seconds = Seconds(start);
  // The runtime's limits, checked now rather than when exporting after
  // training (BuildNet tries the whole export on the untrained network).
  if (d->F > MTAN_MAX_INPUTS || d->T > MTAN_MAX_TASKS) {
    *error = fmt::format("{}: {} features and {} tasks; a model takes at most {} and {} "
                         "(MTAN_MAX_INPUTS, MTAN_MAX_TASKS)", opt.train_csv, d->F, d->T,
                         MTAN_MAX_INPUTS, MTAN_MAX_TASKS);
    return false;
  }
  return true;
}

// Standardisation from the training rows (std 1 for constant columns), and
// every split's tensors with it.
bool Standardise(const TrainOptions& opt, Data* d, std::string* error) {
  const int F = d->F, T = d->T;
  const int64_t N = d->N;
  const host::Dataset& train = d->train.data;
  d->mean.assign(F, 0.0f);
  d->stddev.assign(F, 0.0f);
  for (int j = 0; j < F; ++j) {
    double s = 0, ss = 0;
    for (int64_t r = 0; r < N; ++r) s += train.x[r * F + j];
    const double m = s / N;
    for (int64_t r = 0; r < N; ++r) {
      const double c = train.x[r * F + j] - m;
      ss += c * c;
    }
    const double sd = std::sqrt(ss / N);
    d->mean[j] = static_cast<float>(m);
    d->stddev[j] = sd > 1e-12 * std::max(1.0, std::fabs(m)) ? static_cast<float>(sd) : 1.0f;
  }
  d->scales.assign(T, LabelScale{});
  for (int t = 0; t < T; ++t) {
    const auto& lab = train.labels[t];
    if (lab.observed_rows == 0) {
      *error = opt.train_csv + ": task \"" + d->spec.tasks[t].name + "\" has no observed label";
      return false;
    }
    if (d->spec.tasks[t].type != fb::TaskKind::REGRESSION) continue;
    double s = 0, ss = 0;
    for (int64_t r = 0; r < N; ++r) s += lab.observed[r] ? lab.value[r] : 0.0;
    const double m = s / lab.observed_rows;
    for (int64_t r = 0; r < N; ++r) {
      if (lab.observed[r]) ss += (lab.value[r] - m) * (lab.value[r] - m);
    }
    const double sd = std::sqrt(ss / lab.observed_rows);
    d->scales[t] = {m, sd > 1e-12 ? sd : 1.0};
  }
  MakeTensors(&d->train, d->spec, d->tables, d->mean, d->stddev, d->scales);
  MakeTensors(&d->val, d->spec, d->tables, d->mean, d->stddev, d->scales);
  if (d->have_test) MakeTensors(&d->test, d->spec, d->tables, d->mean, d->stddev, d->scales);
  return true;
}

// Export the untrained network and verify it with the runtime: every limit
// the runtime has (operators, tensors, dimensions, ...) fails now, not after
// training (36 tasks make 4,179 operators, over the 4,096).
bool CheckUntrainedExport(const TrainOptions& opt, const Data& d, Learner* l, std::string* error) {
  host::MtanWeights w;
  ExportWeights(l->net, d.spec, d.train.data.features, d.tables, d.mean, d.stddev, d.scales, &w);
  fb::ModelT untrained = host::BuildFloatModel(w);
  fb::ModelT unpacked;
  if (!host::UnpackModel(host::ModelBytes(host::FinishModel(untrained, static_cast<uint32_t>(opt.max_batch))),
                         &unpacked, error)) {
    *error = "this configuration gives a model the runtime refuses (checked before "
             "training): " + *error;
    return false;
  }
  return true;
}

// The configuration from the options (the trunk scaled to mtan's parameter
// count when asked, and for `single` by default) and the initialised network.
bool BuildNet(const TrainOptions& opt, Arch arch, const Data& d, Learner* l, std::string* error) {
  ModelConfig& config = l->config;
  config.arch = arch;
  config.inputs = d.F;
  for (const host::IdTable& t : d.tables) config.tables.push_back({t.rows(), t.dim});
  for (const host::IdFeatureSpec& f : d.spec.id_features)
    config.bags.push_back({f.table, f.combiner == fb::Combiner::MEAN});
  config.trunk = opt.trunk;
  config.mask_hidden = opt.mask_hidden;
  config.task_width = opt.task_width;
  config.att_hidden = opt.att_hidden;
  config.dropout = opt.dropout;
  for (const auto& t : d.spec.tasks) config.outputs.push_back(t.classes);
  ModelConfig reference = config;  // mtan with the same widths: the size to match
  reference.arch = Arch::kMtan;
  l->mtan_params = ParamCount(reference);
  if (opt.match_params || (arch == Arch::kSingle && !opt.trunk_given)) {
    config.trunk = MatchTrunk(config, l->mtan_params);
  }
  l->params = ParamCount(config);
  if (l->params * 4 > static_cast<int64_t>(MTAN_MAX_FILE_BYTES)) {
    *error = fmt::format("{} parameters do not fit a model file (MTAN_MAX_FILE_BYTES is {} "
                         "bytes): use narrower layers", l->params, MTAN_MAX_FILE_BYTES);
    return false;
  }
  l->net = MtanNet(config);  // draws the initial weights from torch's seeded generator
  return CheckUntrainedExport(opt, d, l, error);
}

// Adam with weight decay on the weight matrices only (2 wd: the decay of
// wd * ||W||^2), not on biases or embedding tables (a row is decayed on every
// step but trained only on the steps its ids appear in), plus the
// uncertainty weighting's log variances when it is on.
void MakeOptimizer(const TrainOptions& opt, int T, Learner* l) {
  std::vector<torch::Tensor> weights, others;
  for (auto& p : l->net->named_parameters()) {
    const bool table = p.key().rfind("embedding", 0) == 0;
    (p.value().dim() == 2 && !table ? weights : others).push_back(p.value());
  }
  const bool uncertainty = l->weighting == LossWeighting::kUncertainty;
  l->log_vars = torch::zeros({T}, torch::requires_grad(uncertainty));
  if (uncertainty) others.push_back(l->log_vars);
  std::vector<torch::optim::OptimizerParamGroup> groups;
  groups.emplace_back(weights, std::make_unique<torch::optim::AdamOptions>(
                                   torch::optim::AdamOptions(opt.lr).weight_decay(2 * opt.weight_decay)));
  groups.emplace_back(others, std::make_unique<torch::optim::AdamOptions>(
                                  torch::optim::AdamOptions(opt.lr).weight_decay(0)));
  l->optimizer = std::make_unique<torch::optim::Adam>(groups, torch::optim::AdamOptions(opt.lr));
}

std::string WidthsString(const std::vector<int>& widths) {
  std::string s;
  for (int w : widths) s += (s.empty() ? "" : ",") + std::to_string(w);
  return s;
}

void PrintHeader(const TrainOptions& opt, const Data& d, const Learner& l) {
  if (opt.quiet) return;
  std::printf("mtan-train: %s, trunk %s, %lld parameters (mtan at these widths: %lld); "
              "%lld train / %lld val rows, %d features, %d tasks; loaded in %.1fs\n",
              ArchName(l.config.arch), WidthsString(l.config.trunk).c_str(),
              static_cast<long long>(l.params), static_cast<long long>(l.mtan_params),
              static_cast<long long>(d.N), static_cast<long long>(d.val.data.rows), d.F, d.T,
              d.load_seconds);
  for (size_t t = 0; t < d.tables.size(); ++t) {
    const host::IdTable& table = d.tables[t];
    std::string features;
    for (const host::IdFeatureSpec& f : d.spec.id_features)
      if (f.table == static_cast<int>(t)) features += (features.empty() ? "" : ", ") + f.name;
    std::printf("  table %s: %lld rows x %d (%s), read by %s\n", table.name.c_str(),
                static_cast<long long>(table.rows()), table.dim,
                table.map == fb::IdMap::HASHED ? "hashed" : "vocabulary + 1 unknown-id row",
                features.c_str());
  }
  std::fflush(stdout);
}

// One pass over the training rows in a fresh shuffled order, in batches of
// --batch; fills e->loss. Fails when a task's loss is no longer finite.
bool TrainEpoch(const TrainOptions& opt, const Data& d, Loop* loop, Learner* l, Epoch* e,
                std::string* error) {
  const int T = d.T;
  const int64_t N = d.N;
  std::vector<int64_t>& order = loop->order;
  for (int64_t i = N - 1; i > 0; --i) {
    std::swap(order[i], order[loop->shuffle_rng.Below(static_cast<uint64_t>(i + 1))]);
  }
  torch::Tensor order_t = torch::from_blob(order.data(), {N}, torch::kInt64);
  torch::Tensor loss_sum = torch::zeros({T}, torch::kFloat64);
  torch::Tensor count_sum = torch::zeros({T}, torch::kFloat64);
  const int64_t batches = (N + opt.batch - 1) / opt.batch;
  const bool progress = loop->tty && !opt.quiet;
  int64_t last_pct = -1;
  for (int64_t b = 0; b < batches; ++b) {
    torch::Tensor idx = order_t.slice(0, b * opt.batch, std::min(N, (b + 1) * opt.batch));
    torch::Tensor xb = d.train.x.index_select(0, idx);
    std::vector<torch::Tensor> ids;
    for (const torch::Tensor& t : d.train.ids) ids.push_back(t.index_select(0, idx));
    torch::Tensor yb = d.train.labels.index_select(0, idx);
    torch::Tensor mb = d.train.mask.index_select(0, idx);
    NetOutput o = l->net->forward(xb, ids);
    torch::Tensor total = torch::zeros({});
    std::vector<torch::Tensor> task_losses(T);
    for (int t = 0; t < T; ++t) {
      torch::Tensor y = yb.select(1, t), m = mb.select(1, t);
      torch::Tensor loss = TaskLoss(d.spec.tasks[t], o.logits[t], y, m);
      task_losses[t] = loss;
      if (l->weighting == LossWeighting::kUncertainty) {
        total = total + UncertaintyWeighted(d.spec.tasks[t].type, loss, l->log_vars[t]);
      } else {
        total = total + e->lambda[t] * loss;
      }
    }
    if (o.embedding_sq.defined() && opt.embedding_l2 > 0)
      total = total + opt.embedding_l2 * o.embedding_sq;
    l->optimizer->zero_grad();
    total.backward();
    l->optimizer->step();
    {
      torch::NoGradGuard no_grad;
      torch::Tensor counts = mb.sum(0).to(torch::kFloat64);
      loss_sum += torch::stack(task_losses).detach().to(torch::kFloat64) * counts;
      count_sum += counts;
    }
    if (progress) {
      const int64_t pct = (b + 1) * 100 / batches;
      if (pct / 5 != last_pct / 5) {
        std::fprintf(stderr, "\r  epoch %d: %3lld%%", e->index + 1, static_cast<long long>(pct));
        std::fflush(stderr);
        last_pct = pct;
      }
    }
  }
  if (progress) std::fprintf(stderr, "\r                    \r");
  e->loss.assign(T, 0.0);
  for (int t = 0; t < T; ++t) {
    e->loss[t] = loss_sum[t].item<double>() / std::max(1.0, count_sum[t].item<double>());
    if (!std::isfinite(e->loss[t])) {
      // Stop here: a NaN network only fails later, at export, naming a weight.
      *error = fmt::format("training diverged in epoch {}: the loss of task \"{}\" is {} "
                           "(extreme feature or label values, or try a lower --lr)",
                           e->index + 1, d.spec.tasks[t].name, e->loss[t]);
      return false;
    }
  }
  return true;
}

json EpochJson(const host::Spec& spec, const Learner& l, const Epoch& e) {
  const bool uncertainty = l.weighting == LossWeighting::kUncertainty;
  json ej;
  ej["epoch"] = e.index + 1;
  ej["seconds"] = e.seconds;
  ej["lr"] = e.lr;
  ej["val_score"] = e.val.score;
  ej["val"] = MetricsJson(spec, e.val);
  for (size_t t = 0; t < spec.tasks.size(); ++t) {
    ej["train_loss"][spec.tasks[t].name] = e.loss[t];
    ej["lambda"][spec.tasks[t].name] =
        uncertainty ? UncertaintyCoefficient(spec.tasks[t].type) * std::exp(-l.log_vars[t].item<double>())
                    : e.lambda[t];
    if (uncertainty) ej["log_var"][spec.tasks[t].name] = l.log_vars[t].item<double>();
  }
  return ej;
}

void PrintEpoch(const TrainOptions& opt, const host::Spec& spec, const Epoch& e, double eta_s) {
  std::string losses;
  for (size_t t = 0; t < spec.tasks.size(); ++t) {
    losses += fmt::format(" {} {:.4f}", spec.tasks[t].name, e.loss[t]);
  }
  std::printf("epoch %2d/%d %5.1fs | loss%s | val%s | score %.4f%s | eta %s\n", e.index + 1,
              opt.epochs, e.seconds, losses.c_str(), MetricsLine(spec, e.val).c_str(), e.val.score,
              e.improved ? " *" : "  ", Duration(eta_s).c_str());
  std::fflush(stdout);
}

// The epoch loop: train, score on validation, keep the best parameters;
// stop after --patience epochs without a better score, and decay the
// learning rate after each epoch without one.
bool TrainEpochs(const TrainOptions& opt, const Data& d, Learner* l, Training* tr,
                 std::string* error) {
  Loop loop(opt, d.N);
  const auto train_start = Clock::now();
  for (int epoch = 0; epoch < opt.epochs; ++epoch) {
    const auto epoch_start = Clock::now();
    Epoch e;
    e.index = epoch;
    e.lambda.assign(d.T, 1.0);
    if (l->weighting == LossWeighting::kDwa) {
      e.lambda = DwaWeights(loop.loss_history, d.T, opt.dwa_temperature);
    }
    if (!TrainEpoch(opt, d, &loop, l, &e, error)) return false;
    loop.loss_history.push_back(e.loss);
    e.val = Evaluate(l->net, d.spec, d.val, d.scales);
    ++tr->epochs_run;
    e.improved = e.val.score > loop.best_score;
    if (e.improved) {
      loop.best_score = e.val.score;
      tr->best_epoch = epoch;
      loop.since_best = 0;
      tr->best_state.clear();
      for (auto& p : l->net->parameters()) tr->best_state.push_back(p.detach().clone());
    } else {
      ++loop.since_best;
    }
    e.seconds = Seconds(epoch_start);
    e.lr = loop.lr;
    loop.epoch_seconds.push_back(e.seconds);
    tr->epochs.push_back(EpochJson(d.spec, *l, e));
    const bool stop = loop.since_best >= opt.patience;
    if (!opt.quiet) {
      const int left = stop ? 0 : opt.epochs - epoch - 1;
      PrintEpoch(opt, d.spec, e, EtaSeconds(loop.epoch_seconds, left));
    }
    if (stop) break;
    if (!e.improved && opt.lr_decay < 1.0) {
      loop.lr *= opt.lr_decay;
      for (auto& g : l->optimizer->param_groups()) {
        static_cast<torch::optim::AdamOptions&>(g.options()).lr(loop.lr);
      }
    }
  }
  tr->seconds = Seconds(train_start);
  return true;
}

// Puts the best epoch's parameters back and scores them on validation.
void SelectBest(const Data& d, Learner* l, Training* tr) {
  l->net->eval();  // from here on: selection, report and export, never dropout
  {
    torch::NoGradGuard no_grad;
    auto ps = l->net->parameters();
    for (size_t i = 0; i < ps.size(); ++i) ps[i].copy_(tr->best_state[i]);
  }
  tr->val = Evaluate(l->net, d.spec, d.val, d.scales);
}

// metrics.json, without the test split's scores and the export's check.
json Report(const TrainOptions& opt, const Data& d, const Learner& l, const Training& tr) {
  json report;
  report["arch"] = ArchName(l.config.arch);
  report["trunk"] = l.config.trunk;
  report["parameters"] = l.params;
  report["mtan_parameters_at_these_widths"] = l.mtan_params;
  report["options"] = {{"epochs", opt.epochs}, {"batch", opt.batch}, {"lr", opt.lr},
                       {"weight_decay", opt.weight_decay}, {"embedding_l2", opt.embedding_l2},
                       {"dropout", opt.dropout},
                       {"loss_weights", opt.loss_weights}, {"patience", opt.patience},
                       {"lr_decay", opt.lr_decay}, {"seed", opt.seed}, {"threads", opt.threads},
                       {"mask_hidden", opt.mask_hidden}, {"task_width", opt.task_width},
                       {"att_hidden", opt.att_hidden}, {"match_params", opt.match_params},
                       {"dwa_temperature", opt.dwa_temperature}, {"golden_rows", opt.golden_rows},
                       {"max_batch", opt.max_batch}};
  report["data"] = {{"train", opt.train_csv}, {"val", opt.val_csv}, {"spec", opt.spec_path},
                    {"train_rows", d.N}, {"val_rows", d.val.data.rows}, {"features", d.F}};
  report["tasks"] = json::array();
  for (const auto& t : d.spec.tasks) {
    report["tasks"].push_back({{"name", t.name}, {"kind", host::TaskKindName(t.type)},
                               {"primary", host::PrimaryMetricName(t.type)},
                               {"space", t.log1p ? "log1p" : "label"}});
  }
  report["epochs"] = tr.epochs;
  report["epochs_run"] = tr.epochs_run;
  report["best_epoch"] = tr.best_epoch + 1;
  report["train_seconds"] = tr.seconds;
  report["val"] = MetricsJson(d.spec, tr.val);
  report["val_score"] = tr.val.score;
  if (!tr.val.alpha.empty()) {
    json names = json::array();
    for (const auto& t : d.spec.tasks) names.push_back(t.name);
    report["alpha"] = {{"tasks", names}, {"matrix", tr.val.alpha},
                       {"note", "alpha[t][s]: mean weight task t gives task s over the validation rows"}};
  }
  return report;
}

// The test split, scored once with the selected parameters (never used to
// select), into the report and --predictions.
bool ScoreTest(const TrainOptions& opt, const Data& d, Learner* l, json* report, std::string* error) {
  const Evaluation tev = Evaluate(l->net, d.spec, d.test, d.scales);
  (*report)["test"] = MetricsJson(d.spec, tev);
  (*report)["data"]["test"] = opt.test_csv;
  (*report)["data"]["test_rows"] = d.test.data.rows;
  return opt.predictions.empty() || WritePredictions(opt.predictions, d.spec, tev, d.test.data.rows, error);
}

// The runtime graph of the selected network with its metadata; no golden case yet.
fb::ModelT BuildModel(const TrainOptions& opt, const Data& d, const Training& tr, Learner* l) {
  host::MtanWeights w;
  ExportWeights(l->net, d.spec, d.train.data.features, d.tables, d.mean, d.stddev, d.scales, &w);
  fb::ModelT model = host::BuildFloatModel(w);
  if (!model.metadata) model.metadata = std::make_unique<fb::MetadataT>();
  const char* arch = ArchName(l->config.arch);
  model.metadata->producer = "mtan-train 1.0";
  model.metadata->description = fmt::format("{} trained on {} ({} rows), best epoch {}", arch,
                                            opt.train_csv, d.N, tr.best_epoch + 1);
  for (int t = 0; t < d.T; ++t) {
    for (const auto& m : tr.val.metrics[t]) {
      auto metric = std::make_unique<fb::MetricT>();
      metric->name = "val/" + d.spec.tasks[t].name + "/" + m.name;
      metric->value = m.value;
      model.metadata->metrics.push_back(std::move(metric));
    }
  }
  auto property = [&](const std::string& k, const std::string& v) {
    auto kv = std::make_unique<fb::KeyValueT>();
    kv->key = k;
    kv->value = v;
    model.metadata->properties.push_back(std::move(kv));
  };
  property("arch", arch);
  property("trunk", WidthsString(l->config.trunk));
  property("seed", std::to_string(opt.seed));
  property("loss_weights", opt.loss_weights);
  property("train_rows", std::to_string(d.N));
  property("best_epoch", std::to_string(tr.best_epoch + 1));
  return model;
}

// The exported graph on the runtime's float path must agree with this
// network on validation rows (relative to max(1, |y|), the runtime's float
// tolerance too).
constexpr double kMaxRelDiff = 1e-4;

// libtorch's outputs, as the runtime returns them, for the first `rows`
// validation rows.
torch::Tensor TorchOutputs(const Data& d, Learner* l, int64_t rows) {
  // from_blob takes mutable pointers; these tensors are only read.
  const torch::Tensor mean = torch::from_blob(const_cast<float*>(d.mean.data()), {d.F}, torch::kFloat32);
  const torch::Tensor stddev = torch::from_blob(const_cast<float*>(d.stddev.data()), {d.F}, torch::kFloat32);
  const torch::Tensor x_raw =
      torch::from_blob(const_cast<float*>(d.val.data.x.data()), {rows, d.F}, torch::kFloat32);
  std::vector<torch::Tensor> ids;
  for (const torch::Tensor& t : d.val.ids) ids.push_back(t.slice(0, 0, rows));
  return RuntimeEquivalentOutputs(l->net, d.spec, x_raw, ids, mean, stddev, d.scales).contiguous();
}

// Runs `model` with the runtime itself on up to 512 validation rows and
// compares it with this network.
bool CheckAgainstRuntime(const TrainOptions& opt, const Data& d, Learner* l, fb::ModelT* model,
                         Exported* ex, std::string* error) {
  ex->check_rows = std::min<int64_t>(d.val.data.rows, 512);
  std::vector<float> runtime_out;
  {
    host::RuntimeModel runtime;
    if (runtime.Load(host::FinishModel(*model, static_cast<uint32_t>(opt.max_batch)), 0,
                     MTAN_BACKEND_DEFAULT, error) != MTAN_OK ||
        runtime.Run(d.val.data.x.data(), static_cast<uint32_t>(ex->check_rows), MTAN_ALL_TASKS,
                    &runtime_out, error, host::TensorInputBytes(d.val.data, 0, ex->check_rows)) !=
            MTAN_OK) {
      // The untrained network was verified before training, so a failure here
      // is the trained weights' (e.g. too large to keep float32 finite).
      *error = "the trained model cannot be exported (training may have diverged; try a "
               "lower --lr): " + *error;
      return false;
    }
  }
  const torch::Tensor ours = TorchOutputs(d, l, ex->check_rows);
  for (int64_t i = 0; i < ours.numel(); ++i) {
    const double a = ours.data_ptr<float>()[i], b = runtime_out[i];
    ex->max_diff = std::max(ex->max_diff, std::fabs(a - b));
    ex->max_rel = std::max(ex->max_rel, std::fabs(a - b) / std::max(1.0, std::fabs(a)));
  }
  if (ex->max_rel > kMaxRelDiff) {
    *error = fmt::format("the exported model disagrees with the trainer: max relative "
                         "difference {:.3g} on {} validation rows", ex->max_rel, ex->check_rows);
    return false;
  }
  return true;
}

// Golden cases hold libtorch's outputs, an implementation independent of
// the runtime, so the float model's self-test compares the two.
bool AddGolden(const TrainOptions& opt, const Data& d, Learner* l, fb::ModelT* model,
               Exported* ex, std::string* error) {
  const int golden = static_cast<int>(std::min<int64_t>(opt.golden_rows, d.val.data.rows));
  ex->golden = golden;
  if (golden == 0) return true;
  const torch::Tensor g = TorchOutputs(d, l, golden);
  const std::vector<float> y(g.data_ptr<float>(), g.data_ptr<float>() + g.numel());
  std::vector<float> tol(host::OutputsPerRow(*model));
  for (size_t k = 0; k < tol.size(); ++k) {
    double largest = 1.0;
    for (int r = 0; r < golden; ++r) largest = std::max(largest, std::fabs(static_cast<double>(y[r * tol.size() + k])));
    tol[k] = static_cast<float>(kMaxRelDiff * largest);
  }
  const std::vector<float> rows(d.val.data.x.begin(), d.val.data.x.begin() + golden * d.F);
  return host::AddGoldenCase(*model, rows, golden, y, tol, error,
                             host::TensorInputBytes(d.val.data, 0, golden));
}

bool SelfTest(const std::vector<uint8_t>& bytes, std::string* error) {
  host::RuntimeModel runtime;
  if (runtime.Load(bytes, 0, MTAN_BACKEND_DEFAULT, error) != MTAN_OK) {
    *error = "the exported model does not load: " + *error;
    return false;
  }
  const mtan_status st = mtan_self_test(runtime.get());
  if (st != MTAN_OK) {
    *error = "the exported model fails its self-test against libtorch's outputs: " +
             host::RuntimeError(st);
    return false;
  }
  return true;
}

// Export: the runtime graph, metadata, golden rows; then check it against
// this network on validation rows with the runtime itself, and self-test
// the finished file.
bool Export(const TrainOptions& opt, const Data& d, const Training& tr, Learner* l, Exported* ex,
            std::string* error) {
  fb::ModelT model = BuildModel(opt, d, tr, l);
  if (!CheckAgainstRuntime(opt, d, l, &model, ex, error)) return false;
  if (!AddGolden(opt, d, l, &model, ex, error)) return false;
  ex->bytes = host::FinishModel(model, static_cast<uint32_t>(opt.max_batch));
  return ex->golden == 0 || SelfTest(ex->bytes, error);
}

json ExportJson(const TrainOptions& opt, const Exported& ex) {
  return {{"path", opt.out_model}, {"bytes", ex.bytes.size()},
          {"check_rows", ex.check_rows}, {"max_abs_diff_vs_runtime", ex.max_diff},
          {"max_rel_diff_vs_runtime", ex.max_rel}, {"golden_rows", ex.golden},
          {"golden_source", "libtorch"}};
}

// The model file, then the plots and metrics.json in --report-dir (default:
// the model's directory).
bool WriteOutputs(const TrainOptions& opt, const Exported& ex, json* report, ReportFiles* files,
                  std::string* error) {
  if (!host::WriteFileAtomic(opt.out_model, ex.bytes, error)) return false;
  files->dir = opt.report_dir;
  if (files->dir.empty()) {
    files->dir = std::filesystem::path(opt.out_model).parent_path().string();
    if (files->dir.empty()) files->dir = ".";
  }
  std::error_code ec;
  std::filesystem::create_directories(files->dir, ec);
  if (opt.plots && !WritePlots(*report, files->dir, &files->plots_note)) {
    (*report)["plots_note"] = files->plots_note;
  }
  return WriteText(files->dir + "/metrics.json", report->dump(2) + "\n", error);
}

void PrintSummary(const TrainOptions& opt, Clock::time_point start, const Data& d,
                  const Training& tr, const Exported& ex, const ReportFiles& files,
                  const json& report) {
  if (opt.json) {
    std::printf("%s\n", report.dump(2).c_str());
    return;
  }
  if (opt.quiet) return;
  std::printf("best epoch %d of %d, %s training (%s total)\n", tr.best_epoch + 1, tr.epochs_run,
              Duration(tr.seconds).c_str(), Duration(Seconds(start)).c_str());
  std::printf("val %s\n", MetricsLine(d.spec, tr.val).c_str());
  if (d.have_test) {
    std::string s;
    for (const auto& [task, ms] : report["test"].items()) {
      for (const auto& [name, v] : ms.items()) {
        s += fmt::format(" {}/{} {}", task, name, v.is_null() ? std::string("nan") : fmt::format("{:.4f}", v.get<double>()));
      }
    }
    std::printf("test%s\n", s.c_str());
  }
  if (!tr.val.alpha.empty()) {
    std::printf("cross-task attention (row t: weight on each task s):\n");
    for (int t = 0; t < d.T; ++t) {
      std::string row;
      for (int u = 0; u < d.T; ++u) row += fmt::format(" {:.3f}", tr.val.alpha[t][u]);
      std::printf("  %-12s%s\n", d.spec.tasks[t].name.c_str(), row.c_str());
    }
  }
  const std::string& note = files.plots_note;
  std::printf("wrote %s (%zu bytes; runtime float path within %.2g of the trainer), %s/metrics.json%s\n",
              opt.out_model.c_str(), ex.bytes.size(), ex.max_rel, files.dir.c_str(),
              opt.plots && note.empty() ? ", curves.png, alpha.png" : "");
  if (!note.empty()) std::printf("note: %s\n", note.c_str());
}

}  // namespace

double EtaSeconds(const std::vector<double>& epoch_seconds, int epochs_left) {
  const size_t k = std::min<size_t>(3, epoch_seconds.size());
  if (k == 0 || epochs_left <= 0) return 0.0;
  std::vector<double> last(epoch_seconds.end() - k, epoch_seconds.end());
  std::sort(last.begin(), last.end());
  return last[k / 2] * epochs_left;
}

int RunTraining(const TrainOptions& opt) {
  const auto start = Clock::now();
  std::string error;
  Arch arch;
  Learner learner;
  if (!CheckOptions(opt, &arch, &learner.weighting, &error)) return Fail(error);
  if (!MakeOutputDirectory(opt, &error)) return Fail(error);
  torch::manual_seed(opt.seed);
  SetTrainingThreads(opt.threads);

  Data data;
  if (!LoadData(opt, start, &data, &error)) return Fail(error);
  if (!Standardise(opt, &data, &error)) return Fail(error);
  if (!BuildNet(opt, arch, data, &learner, &error)) return Fail(error);
  MakeOptimizer(opt, data.T, &learner);
  PrintHeader(opt, data, learner);

  Training training;
  if (!TrainEpochs(opt, data, &learner, &training, &error)) return Fail(error);
  SelectBest(data, &learner, &training);

  json report = Report(opt, data, learner, training);
  if (data.have_test && !ScoreTest(opt, data, &learner, &report, &error)) return Fail(error);
  Exported exported;
  if (!Export(opt, data, training, &learner, &exported, &error)) return Fail(error);
  report["export"] = ExportJson(opt, exported);
  ReportFiles files;
  if (!WriteOutputs(opt, exported, &report, &files, &error)) return Fail(error);
  PrintSummary(opt, start, data, training, exported, files, report);
  return 0;
}

}  // namespace mtan::trainer
