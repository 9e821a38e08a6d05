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
  torch::Tensor labels;  // [N, T] model space; regression standardised
  torch::Tensor mask;    // [N, T] 1 where observed
};

bool LoadSplit(const std::string& path, const host::Spec& spec,
               const std::vector<std::string>* expect_features, Split* split, std::string* error) {
  if (!host::LoadCsv(path, spec, &split->data, error)) return false;
  if (expect_features && split->data.features != *expect_features) {
    *error = path + ": its feature columns differ from the training file's";
    return false;
  }
  return true;
}

void MakeTensors(Split* s, const std::vector<float>& mean, const std::vector<float>& stddev,
                 const std::vector<LabelScale>& scales) {
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
    NetOutput o = net->forward(s.x.slice(0, b, e));
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
  if (!ParseArch(opt.arch, &arch)) {
    return Fail("--arch " + opt.arch + ": expected mtan, mtan-mask, mtan-cross, shared-bottom or single");
  }
  LossWeighting weighting;
  if (!ParseLossWeighting(opt.loss_weights, &weighting)) {
    return Fail("--loss-weights " + opt.loss_weights + ": expected equal, dwa or uncertainty");
  }
  if (opt.trunk.empty() || std::any_of(opt.trunk.begin(), opt.trunk.end(), [](int w) { return w < 1; })) {
    return Fail("--trunk: expected positive widths, e.g. 256,128");
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
      {"--dwa-temperature", opt.dwa_temperature > 0 && std::isfinite(opt.dwa_temperature), "positive"},
      {"--patience", opt.patience >= 1, "at least 1"},
      {"--lr-decay", opt.lr_decay > 0 && opt.lr_decay <= 1, "in (0, 1]"},
      {"--threads", opt.threads >= 1, "at least 1"},
      {"--golden-rows", opt.golden_rows >= 0, "0 or more"},
      {"--max-batch", opt.max_batch >= 1 && opt.max_batch <= MTAN_MAX_BATCH, "in 1..65536"},
  };
  for (const auto& c : checks) {
    if (!c.ok) return Fail(fmt::format("{}: expected a value {}", c.name, c.want));
  }
  if (!opt.predictions.empty() && opt.test_csv.empty()) {
    return Fail("--predictions needs --test: the predictions are made on the test split");
  }
  if (opt.max_batch < 1 || opt.max_batch > MTAN_MAX_BATCH) {
    return Fail(fmt::format("--max-batch {}: expected 1..{} (MTAN_MAX_BATCH)", opt.max_batch,
                            MTAN_MAX_BATCH));
  }
  {
    // Fail on an unwritable output now, not after training.
    std::error_code ec;
    const auto parent = std::filesystem::path(opt.out_model).parent_path();
    if (!parent.empty()) std::filesystem::create_directories(parent, ec);
    if (ec) return Fail(parent.string() + ": cannot create directory: " + ec.message());
  }
  torch::manual_seed(opt.seed);
  SetTrainingThreads(opt.threads);

  host::Spec spec;
  if (!host::LoadSpec(opt.spec_path, &spec, &error)) return Fail(error);
  Split train, val, test;
  if (!LoadSplit(opt.train_csv, spec, nullptr, &train, &error)) return Fail(error);
  const std::vector<std::string>& features = train.data.features;
  if (!LoadSplit(opt.val_csv, spec, &features, &val, &error)) return Fail(error);
  const bool have_test = !opt.test_csv.empty();
  if (have_test && !LoadSplit(opt.test_csv, spec, &features, &test, &error)) return Fail(error);
  const int T = static_cast<int>(spec.tasks.size());
  const int F = static_cast<int>(features.size());
  const int64_t N = train.data.rows;
  const double load_s = Seconds(start);
  // The runtime's limits, checked now rather than when exporting after
  // training (the whole export is tried on the untrained network below).
  if (F > MTAN_MAX_INPUTS || T > MTAN_MAX_TASKS) {
    return Fail(fmt::format("{}: {} features and {} tasks; a model takes at most {} and {} "
                            "(MTAN_MAX_INPUTS, MTAN_MAX_TASKS)", opt.train_csv, F, T,
                            MTAN_MAX_INPUTS, MTAN_MAX_TASKS));
  }

  // Standardisation from the training rows (std 1 for constant columns).
  std::vector<float> mean(F), stddev(F);
  for (int j = 0; j < F; ++j) {
    double s = 0, ss = 0;
    for (int64_t r = 0; r < N; ++r) s += train.data.x[r * F + j];
    const double m = s / N;
    for (int64_t r = 0; r < N; ++r) {
      const double c = train.data.x[r * F + j] - m;
      ss += c * c;
    }
    const double sd = std::sqrt(ss / N);
    mean[j] = static_cast<float>(m);
    stddev[j] = sd > 1e-12 * std::max(1.0, std::fabs(m)) ? static_cast<float>(sd) : 1.0f;
  }
  std::vector<LabelScale> scales(T);
  for (int t = 0; t < T; ++t) {
    const auto& lab = train.data.labels[t];
    if (lab.observed_rows == 0) {
      return Fail(opt.train_csv + ": task \"" + spec.tasks[t].name + "\" has no observed label");
    }
    if (spec.tasks[t].type != fb::TaskKind::REGRESSION) continue;
    double s = 0, ss = 0;
    for (int64_t r = 0; r < N; ++r) s += lab.observed[r] ? lab.value[r] : 0.0;
    const double m = s / lab.observed_rows;
    for (int64_t r = 0; r < N; ++r) {
      if (lab.observed[r]) ss += (lab.value[r] - m) * (lab.value[r] - m);
    }
    const double sd = std::sqrt(ss / lab.observed_rows);
    scales[t] = {m, sd > 1e-12 ? sd : 1.0};
  }
  MakeTensors(&train, mean, stddev, scales);
  MakeTensors(&val, mean, stddev, scales);
  if (have_test) MakeTensors(&test, mean, stddev, scales);

  ModelConfig config;
  config.arch = arch;
  config.inputs = F;
  config.trunk = opt.trunk;
  config.mask_hidden = opt.mask_hidden;
  config.task_width = opt.task_width;
  config.att_hidden = opt.att_hidden;
  config.dropout = opt.dropout;
  for (const auto& t : spec.tasks) config.outputs.push_back(t.classes);
  ModelConfig reference = config;  // mtan with the same widths: the size to match
  reference.arch = Arch::kMtan;
  const int64_t mtan_params = ParamCount(reference);
  if (opt.match_params || (arch == Arch::kSingle && !opt.trunk_given)) {
    config.trunk = MatchTrunk(config, mtan_params);
  }
  if (ParamCount(config) * 4 > static_cast<int64_t>(MTAN_MAX_FILE_BYTES)) {
    return Fail(fmt::format("{} parameters do not fit a model file (MTAN_MAX_FILE_BYTES is {} "
                            "bytes): use narrower layers", ParamCount(config), MTAN_MAX_FILE_BYTES));
  }
  MtanNet net(config);
  {
    // Export the untrained network and verify it with the runtime: every
    // limit the runtime has (operators, tensors, dimensions, ...) fails now,
    // not after training (36 tasks make 4,179 operators, over the 4,096).
    host::MtanWeights w;
    ExportWeights(net, spec, features, mean, stddev, scales, &w);
    fb::ModelT untrained = host::BuildFloatModel(w);
    fb::ModelT unpacked;
    if (!host::UnpackModel(host::ModelBytes(host::FinishModel(untrained, static_cast<uint32_t>(opt.max_batch))),
                           &unpacked, &error)) {
      return Fail("this configuration gives a model the runtime refuses (checked before "
                  "training): " + error);
    }
  }
  std::vector<torch::Tensor> weights, others;
  for (auto& p : net->named_parameters()) {
    (p.value().dim() == 2 ? weights : others).push_back(p.value());
  }
  torch::Tensor log_vars = torch::zeros({T}, torch::requires_grad(weighting == LossWeighting::kUncertainty));
  if (weighting == LossWeighting::kUncertainty) others.push_back(log_vars);
  std::vector<torch::optim::OptimizerParamGroup> groups;
  groups.emplace_back(weights, std::make_unique<torch::optim::AdamOptions>(
                                   torch::optim::AdamOptions(opt.lr).weight_decay(2 * opt.weight_decay)));
  groups.emplace_back(others, std::make_unique<torch::optim::AdamOptions>(
                                  torch::optim::AdamOptions(opt.lr).weight_decay(0)));
  torch::optim::Adam optimizer(groups, torch::optim::AdamOptions(opt.lr));
  const int64_t params = ParamCount(config);

  std::string trunk_str;
  for (int w : config.trunk) trunk_str += (trunk_str.empty() ? "" : ",") + std::to_string(w);
  if (!opt.quiet) {
    std::printf("mtan-train: %s, trunk %s, %lld parameters (mtan at these widths: %lld); "
                "%lld train / %lld val rows, %d features, %d tasks; loaded in %.1fs\n",
                ArchName(arch), trunk_str.c_str(), static_cast<long long>(params),
                static_cast<long long>(mtan_params), static_cast<long long>(N),
                static_cast<long long>(val.data.rows), F, T, load_s);
    std::fflush(stdout);
  }

  // Training.
  host::Rng shuffle_rng(opt.seed ^ 0x5DEECE66Dull);
  std::vector<int64_t> order(N);
  std::iota(order.begin(), order.end(), 0);
  std::vector<std::vector<double>> loss_history;
  json epochs_json = json::array();
  double best_score = -std::numeric_limits<double>::infinity();
  int best_epoch = -1, since_best = 0;
  std::vector<torch::Tensor> best_state;
  double lr = opt.lr;
  const bool tty = isatty(fileno(stderr));
  const auto train_start = Clock::now();
  std::vector<double> epoch_seconds;
  int epochs_run = 0;
  for (int epoch = 0; epoch < opt.epochs; ++epoch) {
    const auto epoch_start = Clock::now();
    std::vector<double> lambda(T, 1.0);
    if (weighting == LossWeighting::kDwa) lambda = DwaWeights(loss_history, T, opt.dwa_temperature);
    for (int64_t i = N - 1; i > 0; --i) {
      std::swap(order[i], order[shuffle_rng.Below(static_cast<uint64_t>(i + 1))]);
    }
    torch::Tensor order_t = torch::from_blob(order.data(), {N}, torch::kInt64);
    torch::Tensor loss_sum = torch::zeros({T}, torch::kFloat64);
    torch::Tensor count_sum = torch::zeros({T}, torch::kFloat64);
    const int64_t batches = (N + opt.batch - 1) / opt.batch;
    int64_t last_pct = -1;
    for (int64_t b = 0; b < batches; ++b) {
      torch::Tensor idx = order_t.slice(0, b * opt.batch, std::min(N, (b + 1) * opt.batch));
      torch::Tensor xb = train.x.index_select(0, idx);
      torch::Tensor yb = train.labels.index_select(0, idx);
      torch::Tensor mb = train.mask.index_select(0, idx);
      NetOutput o = net->forward(xb);
      torch::Tensor total = torch::zeros({});
      std::vector<torch::Tensor> task_losses(T);
      for (int t = 0; t < T; ++t) {
        torch::Tensor y = yb.select(1, t), m = mb.select(1, t);
        torch::Tensor l = TaskLoss(spec.tasks[t], o.logits[t], y, m);
        task_losses[t] = l;
        if (weighting == LossWeighting::kUncertainty) {
          total = total + UncertaintyWeighted(spec.tasks[t].type, l, log_vars[t]);
        } else {
          total = total + lambda[t] * l;
        }
      }
      optimizer.zero_grad();
      total.backward();
      optimizer.step();
      {
        torch::NoGradGuard no_grad;
        torch::Tensor counts = mb.sum(0).to(torch::kFloat64);
        loss_sum += torch::stack(task_losses).detach().to(torch::kFloat64) * counts;
        count_sum += counts;
      }
      if (tty && !opt.quiet) {
        const int64_t pct = (b + 1) * 100 / batches;
        if (pct / 5 != last_pct / 5) {
          std::fprintf(stderr, "\r  epoch %d: %3lld%%", epoch + 1, static_cast<long long>(pct));
          std::fflush(stderr);
          last_pct = pct;
        }
      }
    }
    if (tty && !opt.quiet) std::fprintf(stderr, "\r                    \r");
    std::vector<double> epoch_loss(T);
    for (int t = 0; t < T; ++t) {
      epoch_loss[t] = loss_sum[t].item<double>() / std::max(1.0, count_sum[t].item<double>());
      if (!std::isfinite(epoch_loss[t])) {
        // Stop here: a NaN network only fails later, at export, naming a weight.
        return Fail(fmt::format("training diverged in epoch {}: the loss of task \"{}\" is {} "
                                "(extreme feature or label values, or try a lower --lr)",
                                epoch + 1, spec.tasks[t].name, epoch_loss[t]));
      }
    }
    loss_history.push_back(epoch_loss);
    Evaluation ev = Evaluate(net, spec, val, scales);
    ++epochs_run;
    const bool improved = ev.score > best_score;
    if (improved) {
      best_score = ev.score;
      best_epoch = epoch;
      since_best = 0;
      best_state.clear();
      for (auto& p : net->parameters()) best_state.push_back(p.detach().clone());
    } else {
      ++since_best;
    }
    const double epoch_s = Seconds(epoch_start);
    epoch_seconds.push_back(epoch_s);
    json ej;
    ej["epoch"] = epoch + 1;
    ej["seconds"] = epoch_s;
    ej["lr"] = lr;
    ej["val_score"] = ev.score;
    ej["val"] = MetricsJson(spec, ev);
    for (int t = 0; t < T; ++t) {
      ej["train_loss"][spec.tasks[t].name] = epoch_loss[t];
      ej["lambda"][spec.tasks[t].name] =
          weighting == LossWeighting::kUncertainty
              ? UncertaintyCoefficient(spec.tasks[t].type) * std::exp(-log_vars[t].item<double>())
              : lambda[t];
      if (weighting == LossWeighting::kUncertainty) {
        ej["log_var"][spec.tasks[t].name] = log_vars[t].item<double>();
      }
    }
    epochs_json.push_back(ej);
    const bool stop = since_best >= opt.patience;
    if (!opt.quiet) {
      std::string losses;
      for (int t = 0; t < T; ++t) losses += fmt::format(" {} {:.4f}", spec.tasks[t].name, epoch_loss[t]);
      const int left = stop ? 0 : opt.epochs - epoch - 1;
      std::printf("epoch %2d/%d %5.1fs | loss%s | val%s | score %.4f%s | eta %s\n", epoch + 1,
                  opt.epochs, epoch_s, losses.c_str(), MetricsLine(spec, ev).c_str(), ev.score,
                  improved ? " *" : "  ", Duration(EtaSeconds(epoch_seconds, left)).c_str());
      std::fflush(stdout);
    }
    if (stop) break;
    if (!improved && opt.lr_decay < 1.0) {
      lr *= opt.lr_decay;
      for (auto& g : optimizer.param_groups()) {
        static_cast<torch::optim::AdamOptions&>(g.options()).lr(lr);
      }
    }
  }
  const double train_s = Seconds(train_start);
  net->eval();  // from here on: selection, report and export, never dropout
  {
    torch::NoGradGuard no_grad;
    auto ps = net->parameters();
    for (size_t i = 0; i < ps.size(); ++i) ps[i].copy_(best_state[i]);
  }
  const Evaluation final_val = Evaluate(net, spec, val, scales);

  // Report.
  json report;
  report["arch"] = ArchName(arch);
  report["trunk"] = config.trunk;
  report["parameters"] = params;
  report["mtan_parameters_at_these_widths"] = mtan_params;
  report["options"] = {{"epochs", opt.epochs}, {"batch", opt.batch}, {"lr", opt.lr},
                       {"weight_decay", opt.weight_decay}, {"dropout", opt.dropout},
                       {"loss_weights", opt.loss_weights}, {"patience", opt.patience},
                       {"lr_decay", opt.lr_decay}, {"seed", opt.seed}, {"threads", opt.threads},
                       {"mask_hidden", opt.mask_hidden}, {"task_width", opt.task_width},
                       {"att_hidden", opt.att_hidden}, {"match_params", opt.match_params},
                       {"dwa_temperature", opt.dwa_temperature}, {"golden_rows", opt.golden_rows},
                       {"max_batch", opt.max_batch}};
  report["data"] = {{"train", opt.train_csv}, {"val", opt.val_csv}, {"spec", opt.spec_path},
                    {"train_rows", N}, {"val_rows", val.data.rows}, {"features", F}};
  report["tasks"] = json::array();
  for (const auto& t : spec.tasks) {
    report["tasks"].push_back({{"name", t.name}, {"kind", host::TaskKindName(t.type)},
                               {"primary", host::PrimaryMetricName(t.type)},
                               {"space", t.log1p ? "log1p" : "label"}});
  }
  report["epochs"] = epochs_json;
  report["epochs_run"] = epochs_run;
  report["best_epoch"] = best_epoch + 1;
  report["train_seconds"] = train_s;
  report["val"] = MetricsJson(spec, final_val);
  report["val_score"] = final_val.score;
  if (!final_val.alpha.empty()) {
    json names = json::array();
    for (const auto& t : spec.tasks) names.push_back(t.name);
    report["alpha"] = {{"tasks", names}, {"matrix", final_val.alpha},
                       {"note", "alpha[t][s]: mean weight task t gives task s over the validation rows"}};
  }
  if (have_test) {
    const Evaluation tev = Evaluate(net, spec, test, scales);
    report["test"] = MetricsJson(spec, tev);
    report["data"]["test"] = opt.test_csv;
    report["data"]["test_rows"] = test.data.rows;
    if (!opt.predictions.empty() &&
        !WritePredictions(opt.predictions, spec, tev, test.data.rows, &error)) {
      return Fail(error);
    }
  }

  // Export: the runtime graph, metadata, golden rows; then check it against
  // this network on validation rows with the runtime itself.
  host::MtanWeights w;
  ExportWeights(net, spec, features, mean, stddev, scales, &w);
  fb::ModelT model = host::BuildFloatModel(w);
  if (!model.metadata) model.metadata = std::make_unique<fb::MetadataT>();
  model.metadata->producer = "mtan-train 1.0";
  model.metadata->description =
      fmt::format("{} trained on {} ({} rows), best epoch {}", ArchName(arch), opt.train_csv, N,
                  best_epoch + 1);
  for (int t = 0; t < T; ++t) {
    for (const auto& m : final_val.metrics[t]) {
      auto metric = std::make_unique<fb::MetricT>();
      metric->name = "val/" + spec.tasks[t].name + "/" + m.name;
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
  property("arch", ArchName(arch));
  property("trunk", trunk_str);
  property("seed", std::to_string(opt.seed));
  property("loss_weights", opt.loss_weights);
  property("train_rows", std::to_string(N));
  property("best_epoch", std::to_string(best_epoch + 1));
  // The exported graph on the runtime's float path must agree with this
  // network on validation rows (relative to max(1, |y|), the runtime's
  // float tolerance too).
  constexpr double kMaxRelDiff = 1e-4;
  const int64_t check_rows = std::min<int64_t>(val.data.rows, 512);
  const torch::Tensor mean_t = torch::from_blob(mean.data(), {F}, torch::kFloat32);
  const torch::Tensor std_t = torch::from_blob(stddev.data(), {F}, torch::kFloat32);
  auto torch_outputs = [&](int64_t rows) {
    torch::Tensor x_raw = torch::from_blob(val.data.x.data(), {rows, F}, torch::kFloat32);
    return RuntimeEquivalentOutputs(net, spec, x_raw, mean_t, std_t, scales).contiguous();
  };
  std::vector<float> runtime_out;
  {
    host::RuntimeModel runtime;
    if (runtime.Load(host::FinishModel(model, static_cast<uint32_t>(opt.max_batch)), 0,
                     MTAN_BACKEND_DEFAULT, &error) != MTAN_OK ||
        runtime.Run(val.data.x.data(), static_cast<uint32_t>(check_rows), MTAN_ALL_TASKS,
                    &runtime_out, &error) != MTAN_OK) {
      // The untrained network was verified before training, so a failure here
      // is the trained weights' (e.g. too large to keep float32 finite).
      return Fail("the trained model cannot be exported (training may have diverged; try a "
                  "lower --lr): " + error);
    }
  }
  const torch::Tensor ours = torch_outputs(check_rows);
  double max_diff = 0, max_rel = 0;
  for (int64_t i = 0; i < ours.numel(); ++i) {
    const double a = ours.data_ptr<float>()[i], b = runtime_out[i];
    max_diff = std::max(max_diff, std::fabs(a - b));
    max_rel = std::max(max_rel, std::fabs(a - b) / std::max(1.0, std::fabs(a)));
  }
  if (max_rel > kMaxRelDiff) {
    return Fail(fmt::format("the exported model disagrees with the trainer: max relative "
                            "difference {:.3g} on {} validation rows", max_rel, check_rows));
  }
  // Golden cases hold libtorch's outputs, an implementation independent of
  // the runtime, so the float model's self-test compares the two.
  const int golden = static_cast<int>(std::min<int64_t>(opt.golden_rows, val.data.rows));
  if (golden > 0) {
    const torch::Tensor g = torch_outputs(golden);
    const std::vector<float> y(g.data_ptr<float>(), g.data_ptr<float>() + g.numel());
    std::vector<float> tol(host::OutputsPerRow(model));
    for (size_t k = 0; k < tol.size(); ++k) {
      double largest = 1.0;
      for (int r = 0; r < golden; ++r) largest = std::max(largest, std::fabs(static_cast<double>(y[r * tol.size() + k])));
      tol[k] = static_cast<float>(kMaxRelDiff * largest);
    }
    if (!host::AddGoldenCase(model, std::vector<float>(val.data.x.begin(), val.data.x.begin() + golden * F),
                             golden, y, tol, &error))
      return Fail(error);
  }
  const std::vector<uint8_t> bytes = host::FinishModel(model, static_cast<uint32_t>(opt.max_batch));
  if (golden > 0) {
    host::RuntimeModel runtime;
    if (runtime.Load(bytes, 0, MTAN_BACKEND_DEFAULT, &error) != MTAN_OK)
      return Fail("the exported model does not load: " + error);
    const mtan_status st = mtan_self_test(runtime.get());
    if (st != MTAN_OK)
      return Fail("the exported model fails its self-test against libtorch's outputs: " +
                  host::RuntimeError(st));
  }
  report["export"] = {{"path", opt.out_model}, {"bytes", bytes.size()},
                      {"check_rows", check_rows}, {"max_abs_diff_vs_runtime", max_diff},
                      {"max_rel_diff_vs_runtime", max_rel}, {"golden_rows", golden},
                      {"golden_source", "libtorch"}};
  if (!host::WriteFileAtomic(opt.out_model, bytes, &error)) return Fail(error);

  std::string dir = opt.report_dir;
  if (dir.empty()) {
    dir = std::filesystem::path(opt.out_model).parent_path().string();
    if (dir.empty()) dir = ".";
  }
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  std::string note;
  if (opt.plots && !WritePlots(report, dir, &note)) {
    report["plots_note"] = note;
  }
  if (!WriteText(dir + "/metrics.json", report.dump(2) + "\n", &error)) return Fail(error);

  if (opt.json) {
    std::printf("%s\n", report.dump(2).c_str());
  } else if (!opt.quiet) {
    std::printf("best epoch %d of %d, %s training (%s total)\n", best_epoch + 1, epochs_run,
                Duration(train_s).c_str(), Duration(Seconds(start)).c_str());
    std::printf("val %s\n", MetricsLine(spec, final_val).c_str());
    if (have_test) {
      std::string s;
      for (const auto& [task, ms] : report["test"].items()) {
        for (const auto& [name, v] : ms.items()) {
          s += fmt::format(" {}/{} {}", task, name, v.is_null() ? std::string("nan") : fmt::format("{:.4f}", v.get<double>()));
        }
      }
      std::printf("test%s\n", s.c_str());
    }
    if (!final_val.alpha.empty()) {
      std::printf("cross-task attention (row t: weight on each task s):\n");
      for (int t = 0; t < T; ++t) {
        std::string row;
        for (int u = 0; u < T; ++u) row += fmt::format(" {:.3f}", final_val.alpha[t][u]);
        std::printf("  %-12s%s\n", spec.tasks[t].name.c_str(), row.c_str());
      }
    }
    std::printf("wrote %s (%zu bytes; runtime float path within %.2g of the trainer), %s/metrics.json%s\n",
                opt.out_model.c_str(), bytes.size(), max_rel, dir.c_str(),
                opt.plots && note.empty() ? ", curves.png, alpha.png" : "");
    if (!note.empty()) std::printf("note: %s\n", note.c_str());
  }
  return 0;
}

}  // namespace mtan::trainer
