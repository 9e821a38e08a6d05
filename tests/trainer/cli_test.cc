// mtan-data, mtan-train and mtan-compare through their command lines: every
// option is passed on a tiny synthetic set (6,000 rows, a 1,600-parameter
// network, a few seconds per run) and its effect is checked in what the tool
// writes: the data, the model file, metrics.json, the predictions file, the
// comparison table. tests/README.md lists which case covers which option.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include "compare.h"
#include "dataset.h"
#include "evaluate.h"
#include "fixture.h"
#include "metrics.h"
#include "model_io.h"

using namespace mtan;
using json = nlohmann::json;

namespace {

std::string Quote(const std::string& s) { return "'" + s + "'"; }

// One temporary folder with a synthetic data set, shared by the cases of
// this binary, and the training runs made in it.
class Workspace {
 public:
  Workspace() {
    char tmpl[] = "/tmp/mtan_trainer_cli_XXXXXX";
    REQUIRE(mkdtemp(tmpl) != nullptr);
    dir = tmpl;
    data = dir + "/data";
    std::string out;
    REQUIRE_MESSAGE(test::RunCommand(std::string(MTAN_DATA_BIN) + " synth --out " + data +
                                         " --rows 6000 --seed 5",
                                     &out) == 0,
                    out);
    std::string error;
    REQUIRE_MESSAGE(host::LoadSpec(data + "/tasks.json", &spec, &error), error);
    REQUIRE_MESSAGE(host::LoadCsv(data + "/test.csv", spec, &test, &error), error);
    REQUIRE_MESSAGE(host::LoadCsv(data + "/val.csv", spec, &val, &error), error);
  }
  ~Workspace() {
    std::string out;
    test::RunCommand("rm -rf " + Quote(dir), &out);
  }

  // mtan-train with the tiny defaults below, overridden or extended by
  // `options` (an empty value is a flag; "-" removes a default). Files:
  // NAME.mtan, NAME/ (report dir), NAME.pred.csv.
  struct Run {
    int code = 0;
    std::string output, model, report_dir, predictions;
    json report;  // metrics.json, when written
  };
  Run Train(const std::string& name, const std::map<std::string, std::string>& options) {
    std::map<std::string, std::string> o = {
        {"--train", data + "/train.csv"}, {"--val", data + "/val.csv"},
        {"--spec", data + "/tasks.json"}, {"--test", data + "/test.csv"},
        {"--out", dir + "/" + name + ".mtan"}, {"--report-dir", dir + "/" + name},
        {"--predictions", dir + "/" + name + ".pred.csv"},
        {"--trunk", "16,8"}, {"--mask-hidden", "4"}, {"--task-width", "8"}, {"--att-hidden", "4"},
        {"--batch", "128"}, {"--epochs", "3"}, {"--lr", "0.005"}, {"--threads", "1"},
        {"--no-plots", ""}, {"--quiet", ""}};
    for (const auto& [k, v] : options) {
      if (v == "-") o.erase(k);
      else o[k] = v;
    }
    std::string cmd = MTAN_TRAIN_BIN;
    for (const auto& [k, v] : o) cmd += " " + k + (v.empty() ? "" : " " + Quote(v));
    Run r;
    r.code = test::RunCommand(cmd, &r.output);
    r.model = o["--out"];
    r.report_dir = o.count("--report-dir") ? o["--report-dir"] : dir;
    r.predictions = o.count("--predictions") ? o["--predictions"] : "";
    if (r.code == 0 && test::FileExists(r.report_dir + "/metrics.json"))
      r.report = json::parse(test::ReadText(r.report_dir + "/metrics.json"));
    return r;
  }
  // A successful run; a name already trained with the same options is
  // reused (cases share runs when the whole suite runs).
  Run MustTrain(const std::string& name, const std::map<std::string, std::string>& options) {
    const auto cached = runs_.find(name);
    if (cached != runs_.end() && cached->second.first == options) return cached->second.second;
    Run r = Train(name, options);
    REQUIRE_MESSAGE(r.code == 0, r.output);
    runs_[name] = {options, r};
    return r;
  }

  std::string dir, data;
  host::Spec spec;
  host::Dataset test, val;

 private:
  std::map<std::string, std::pair<std::map<std::string, std::string>, Run>> runs_;
};

Workspace& Ws() {
  static Workspace w;
  return w;
}

fb::ModelT Unpack(const std::string& path) {
  fb::ModelT m;
  std::string error;
  REQUIRE_MESSAGE(host::UnpackModel(host::ModelBytes(test::ReadBytes(path)), &m, &error), error);
  return m;
}

const fb::TensorT& TensorNamed(const fb::ModelT& m, const std::string& name) {
  for (const auto& t : m.tensors)
    if (t->name == name) return *t;
  FAIL("no tensor " << name);
  return *m.tensors[0];
}

std::vector<float> Floats(const fb::ModelT& m, const fb::TensorT& t) {
  const auto& d = m.buffers.at(t.buffer)->data;
  std::vector<float> v(d.size() / 4);
  std::memcpy(v.data(), d.data(), v.size() * 4);
  return v;
}

// Every float constant (weights and biases) of a float model, in file order,
// but the regression head's: the export folds the label's standardisation
// into it, which scales its changes.
std::vector<float> AllParameters(const fb::ModelT& m) {
  std::vector<float> v;
  for (const auto& t : m.tensors) {
    if (t->buffer == 0 || t->name.rfind("spend.head", 0) == 0) continue;
    const auto f = Floats(m, *t);
    v.insert(v.end(), f.begin(), f.end());
  }
  return v;
}

double MaxAbsDiff(const std::vector<float>& a, const std::vector<float>& b) {
  REQUIRE(a.size() == b.size());
  double d = 0;
  for (size_t i = 0; i < a.size(); ++i) d = std::max(d, std::fabs(double(a[i]) - b[i]));
  return d;
}

// Sum of squares of the 2-D weights (what --weight-decay penalises).
double WeightNorm2(const fb::ModelT& m) {
  double s = 0;
  for (const auto& t : m.tensors)
    if (t->buffer != 0 && t->shape.size() == 2)
      for (float w : Floats(m, *t)) s += double(w) * w;
  return s;
}

// The outputs of `model` on `data` through the runtime, per task in model
// space (log1p undone by the spec's transform, as the trainer reports).
std::vector<std::vector<float>> RuntimePredictions(const std::string& model, host::Dataset data,
                                                   const host::Spec& spec) {
  host::RuntimeModel rt;
  std::string error;
  REQUIRE_MESSAGE(rt.Load(test::ReadBytes(model), 0, MTAN_BACKEND_REFERENCE, &error) == MTAN_OK, error);
  REQUIRE_MESSAGE(host::MatchInputs(rt.get(), "data", &data, &error), error);
  std::vector<float> out;
  REQUIRE_MESSAGE(rt.Run(data.x.data(), static_cast<uint32_t>(data.rows), MTAN_ALL_TASKS, &out, &error) == MTAN_OK, error);
  const size_t per_row = out.size() / data.rows;
  std::vector<std::vector<float>> p(spec.tasks.size());
  for (int64_t r = 0; r < data.rows; ++r) {
    size_t at = static_cast<size_t>(r) * per_row;
    for (size_t t = 0; t < spec.tasks.size(); ++t)
      for (int k = 0; k < spec.tasks[t].classes; ++k, ++at)
        p[t].push_back(spec.tasks[t].log1p ? std::log1p(out[at]) : out[at]);
  }
  return p;
}

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string l; std::getline(in, l);) lines.push_back(l);
  return lines;
}

// Columns of a CSV file (no quoting: the files here have none).
std::vector<std::vector<std::string>> Csv(const std::string& path) {
  std::vector<std::vector<std::string>> rows;
  for (const std::string& line : Lines(test::ReadText(path))) {
    rows.emplace_back();
    std::istringstream in(line);
    for (std::string cell; std::getline(in, cell, ',');) rows.back().push_back(cell);
  }
  return rows;
}

}  // namespace

TEST_SUITE("cli") {

TEST_CASE("mtan-data synth: --rows, --seed, -p/--correlation and --json change the data") {
  const std::string bin = MTAN_DATA_BIN, dir = Ws().dir;
  std::string out;
  CHECK(test::RunCommand(bin + " synth --help", &out) == 0);
  CHECK(out.find("--correlation") != std::string::npos);
  // --json prints ceiling.json (and nothing else) on stdout.
  REQUIRE(test::RunCommand(bin + " synth --out " + dir + "/p9 --rows 20000 --seed 8 -p 0.9 --json", &out) == 0);
  const json c = json::parse(out);
  CHECK(c["rows"] == 20000);
  CHECK(c["seed"] == 8);
  CHECK(c["correlation"] == 0.9);
  CHECK(c == json::parse(test::ReadText(dir + "/p9/ceiling.json")));
  CHECK(c["splits"]["train"]["rows"] == 14000);
  CHECK(Csv(dir + "/p9/train.csv").size() == 14001);
  REQUIRE(test::RunCommand(bin + " synth --out " + dir + "/m9 --rows 20000 --seed 8 --correlation -0.9", &out) == 0);
  CHECK(out.find("P = -0.90") != std::string::npos);  // the summary, without --json
  REQUIRE(test::RunCommand(bin + " synth --out " + dir + "/s9 --rows 20000 --seed 9 -p 0.9", &out) == 0);

  host::Dataset p9, m9, s9;
  std::string error;
  REQUIRE(host::LoadCsv(dir + "/p9/train.csv", Ws().spec, &p9, &error));
  REQUIRE(host::LoadCsv(dir + "/m9/train.csv", Ws().spec, &m9, &error));
  REQUIRE(host::LoadCsv(dir + "/s9/train.csv", Ws().spec, &s9, &error));
  // The seed decides the features and the click labels; P only the other
  // tasks (their latent directions are mixed with click's by P).
  CHECK(p9.x == m9.x);
  CHECK(p9.x != s9.x);
  CHECK(p9.labels[0].value == m9.labels[0].value);
  CHECK(p9.labels[1].value != m9.labels[1].value);
  // P's effect on the data: P mixes every other task's latent direction with
  // click's; category 0 (fashion) shares click's direction (u1 in the MMoE
  // recipe), category 2 its opposite. So clicked rows are far more often
  // fashion than other rows for P = 0.9, and far less often for P = -0.9.
  // (P = 0 gives 0.264 vs 0.251 on these rows.)
  auto fashion_lift = [](const host::Dataset& d) {
    double clicked = 0, clicked_fashion = 0, other = 0, other_fashion = 0;
    for (int64_t r = 0; r < d.rows; ++r) {
      const bool fashion = d.labels[2].value[r] == 0.0f;
      if (d.labels[0].value[r] > 0.5f) {
        ++clicked;
        clicked_fashion += fashion;
      } else {
        ++other;
        other_fashion += fashion;
      }
    }
    return clicked_fashion / clicked - other_fashion / other;
  };
  const double lp = fashion_lift(p9), lm = fashion_lift(m9);
  MESSAGE("share of fashion among clicked rows minus among the others: P = 0.9: " << lp
          << ", P = -0.9: " << lm);
  CHECK(lp > 0.2);    // 0.547 - 0.216 here
  CHECK(lm < -0.1);   // 0.059 - 0.264 here
  // Bad values: exit 1 with the option named.
  CHECK(test::RunCommand(bin + " synth --out " + dir + "/bad -p 1.5", &out) == 1);
  CHECK(out.find("correlation") != std::string::npos);
}

TEST_CASE("mtan-train: --test, --predictions, early stopping, --lr-decay, --golden-rows, --max-batch, --json") {
  Workspace& w = Ws();
  const auto r = w.MustTrain("main", {{"--epochs", "40"}, {"--patience", "2"}, {"--lr", "0.02"},
                                       {"--lr-decay", "0.1"}, {"--golden-rows", "5"},
                                       {"--max-batch", "32"}, {"--seed", "3"}, {"--json", ""}});
  const json& rep = r.report;
  // --json: stdout is the report (--quiet: nothing else), as in metrics.json.
  CHECK(json::parse(r.output) == rep);
  // Early stopping: --patience 2 epochs without a better validation score,
  // well before --epochs 40.
  const int run = rep["epochs_run"], best = rep["best_epoch"];
  CHECK(run < 40);
  CHECK(run == best + 2);
  // --lr, then --lr-decay: the rate is multiplied by 0.1 after each epoch
  // without improvement, and only then.
  const json& ep = rep["epochs"];
  REQUIRE(ep.size() == static_cast<size_t>(run));
  CHECK(ep[0]["lr"].get<double>() == 0.02);
  double best_score = -1e30;
  int decays = 0;
  for (size_t e = 0; e + 1 < ep.size(); ++e) {
    const bool improved = ep[e]["val_score"].get<double>() > best_score;
    best_score = std::max(best_score, ep[e]["val_score"].get<double>());
    const double want = ep[e]["lr"].get<double>() * (improved ? 1.0 : 0.1);
    CHECK(ep[e + 1]["lr"].get<double>() == doctest::Approx(want).epsilon(1e-12));
    decays += !improved;
  }
  CHECK(decays >= 1);
  // The model: --max-batch, --golden-rows (the first validation rows, in the
  // model's input order), and its golden case passes the self-test.
  const fb::ModelT m = Unpack(r.model);
  CHECK(m.max_batch == 32);
  REQUIRE(m.golden.size() == 1);
  CHECK(m.golden[0]->rows == 5);
  REQUIRE(m.golden[0]->input.size() == 5 * m.inputs.size());
  for (size_t i = 0; i < m.golden[0]->input.size(); ++i)
    CHECK(m.golden[0]->input[i] == w.val.x[i]);
  for (mtan_backend b : {MTAN_BACKEND_REFERENCE, MTAN_BACKEND_XNNPACK}) {
    host::RuntimeModel rt;
    std::string error;
    REQUIRE_MESSAGE(rt.Load(test::ReadBytes(r.model), 0, b, &error) == MTAN_OK, error);
    CHECK(mtan_self_test(rt.get()) == MTAN_OK);
  }
  // The golden outputs are libtorch's, each output with a tolerance of 1e-4
  // relative to max(1, |y|): the trainer's export check, so the self-test
  // holds the runtime to the trainer.
  CHECK(rep["export"]["golden_source"] == "libtorch");
  CHECK(rep["export"]["golden_rows"] == 5);
  const size_t per_row = m.golden[0]->output.size() / 5;
  REQUIRE(m.golden[0]->tolerances.size() == per_row);
  for (size_t k = 0; k < per_row; ++k) {
    float largest = 1.0f;
    for (size_t r = 0; r < 5; ++r) largest = std::max(largest, std::fabs(m.golden[0]->output[r * per_row + k]));
    CHECK(m.golden[0]->tolerances[k] == doctest::Approx(1e-4 * largest).epsilon(1e-6));
  }
  // --test: scored once, on the test rows (not the validation rows).
  CHECK(rep["data"]["test_rows"] == w.test.rows);
  const auto from_runtime = RuntimePredictions(r.model, w.test, w.spec);
  for (size_t t = 0; t < w.spec.tasks.size(); ++t) {
    const auto& task = w.spec.tasks[t];
    CAPTURE(task.name);
    const auto want = host::EvaluateTask(task, from_runtime[t].data(), w.test.labels[t]);
    for (const auto& metric : want)
      CHECK(rep["test"][task.name][metric.name].get<double>() == doctest::Approx(metric.value).epsilon(1e-4));
  }
  CHECK(rep["test"]["click"]["auc"] != rep["val"]["click"]["auc"]);
  // --predictions: a header naming every output, one row per test row, the
  // network's outputs in model space (what the runtime computes from the
  // exported file), and the report's test metrics are theirs.
  const auto csv = Csv(r.predictions);
  REQUIRE(csv.size() == static_cast<size_t>(w.test.rows) + 1);
  CHECK(csv[0] == std::vector<std::string>{"click", "purchase", "category_0", "category_1",
                                           "category_2", "category_3", "category_4", "spend"});
  double worst = 0;
  for (int64_t row = 0; row < w.test.rows; ++row) {
    REQUIRE(csv[row + 1].size() == 8);
    size_t col = 0;
    for (size_t t = 0; t < w.spec.tasks.size(); ++t)
      for (int k = 0; k < w.spec.tasks[t].classes; ++k, ++col) {
        const double want = from_runtime[t][row * w.spec.tasks[t].classes + k];
        worst = std::max(worst, std::fabs(std::stod(csv[row + 1][col]) - want) / std::max(1.0, std::fabs(want)));
      }
  }
  CHECK(worst < 1e-4);  // the trainer's own export check bound
  std::vector<std::vector<float>> per_task;
  std::string error;
  REQUIRE_MESSAGE(trainer::ReadPredictions(r.predictions, w.spec, w.test.rows, &per_task, &error), error);
  for (size_t t = 0; t < w.spec.tasks.size(); ++t)
    for (const auto& metric : host::EvaluateTask(w.spec.tasks[t], per_task[t].data(), w.test.labels[t]))
      CHECK(rep["test"][w.spec.tasks[t].name][metric.name].get<double>() == doctest::Approx(metric.value).epsilon(1e-9));
  // --report-dir holds metrics.json and nothing else under --no-plots.
  CHECK(test::FileExists(r.report_dir + "/metrics.json"));
  CHECK_FALSE(test::FileExists(r.report_dir + "/curves.png"));
}

TEST_CASE("mtan-train: --arch and the widths shape the model; --match-params sizes the trunk") {
  Workspace& w = Ws();
  const size_t f = w.test.features.size();
  const auto r = w.MustTrain("widths", {{"--epochs", "1"}, {"--trunk", "12,6"}, {"--mask-hidden", "3"},
                                         {"--task-width", "5"}, {"--att-hidden", "7"}});
  const fb::ModelT m = Unpack(r.model);
  CHECK(TensorNamed(m, "trunk0.fc1.weight").shape == std::vector<int32_t>{12, static_cast<int32_t>(f)});
  CHECK(TensorNamed(m, "trunk0.fc2.weight").shape == std::vector<int32_t>{6, 12});
  CHECK(TensorNamed(m, "click.mask.fc1.weight").shape == std::vector<int32_t>{3, 6});
  CHECK(TensorNamed(m, "click.task.weight").shape == std::vector<int32_t>{5, 6});
  CHECK(TensorNamed(m, "click.att.fc.weight").shape == std::vector<int32_t>{7, 5});
  CHECK(r.report["trunk"] == json::array({12, 6}));
  // Architectures: shared-bottom has no masks or cross-attention, single one
  // trunk per task.
  const auto sb = w.MustTrain("shared_bottom", {{"--epochs", "1"}, {"--arch", "shared-bottom"}});
  const fb::ModelT msb = Unpack(sb.model);
  int pools = 0, muls = 0;
  for (const auto& op : msb.operators) {
    pools += op->opcode == fb::OpCode::ATTENTION_POOL;
    muls += op->opcode == fb::OpCode::MUL;
  }
  CHECK(pools == 0);
  CHECK(muls == 0);
  const auto single = w.MustTrain("single", {{"--epochs", "1"}, {"--arch", "single"}});
  CHECK_NOTHROW(TensorNamed(Unpack(single.model), "trunk3.fc1.weight"));
  // --match-params: the trunk is rescaled so the parameter count is mtan's
  // at these widths; without it (and with --trunk given) it is not.
  CHECK(single.report["parameters"] != single.report["mtan_parameters_at_these_widths"]);
  for (const char* arch : {"single", "shared-bottom"}) {
    CAPTURE(arch);
    const auto mp = w.MustTrain(std::string("match_") + arch,
                                {{"--epochs", "1"}, {"--arch", arch}, {"--match-params", ""}});
    const double p = mp.report["parameters"], want = mp.report["mtan_parameters_at_these_widths"];
    CHECK(std::fabs(p - want) / want < 0.1);
    CHECK(mp.report["trunk"] != json::array({16, 8}));
  }
}

TEST_CASE("mtan-train: --lr, --batch, --seed and --threads, through one Adam step") {
  // Adam's first step moves every parameter by lr * g / (|g| + eps), i.e.
  // by lr or (zero gradient) not at all. With the whole training set in one
  // batch (--batch 100000) and one epoch that is the only step: the model is
  // its initialisation (a run with --lr 1e-9) plus at most --lr per value.
  // Smaller batches take many steps.
  Workspace& w = Ws();
  auto params = [&](const std::string& name, std::map<std::string, std::string> o) {
    o["--epochs"] = "1";
    return AllParameters(Unpack(w.MustTrain(name, o).model));
  };
  const auto init = params("init", {{"--batch", "100000"}, {"--lr", "1e-9"}});
  const auto one_step = params("one_step", {{"--batch", "100000"}, {"--lr", "1e-3"}});
  const auto many = params("many_steps", {{"--batch", "64"}, {"--lr", "1e-3"}});
  const auto other_seed = params("other_seed", {{"--batch", "100000"}, {"--lr", "1e-9"}, {"--seed", "2"}});
  const auto threads = params("threads", {{"--batch", "100000"}, {"--lr", "1e-3"}, {"--threads", "2"}});
  const double d1 = MaxAbsDiff(one_step, init), dm = MaxAbsDiff(many, init);
  MESSAGE("largest parameter change: one step " << d1 << ", 66 steps " << dm);
  CHECK(d1 <= 1e-3 * (1 + 1e-4) + 1e-8);
  CHECK(d1 >= 0.9e-3);
  CHECK(dm > 10e-3);
  CHECK(MaxAbsDiff(other_seed, init) > 0.1);  // --seed: another initialisation
  // --threads 2: the same step, computed by two threads (reduction order only).
  CHECK(MaxAbsDiff(threads, one_step) < 1e-5);
}

TEST_CASE("mtan-train: --weight-decay shrinks the weights; --golden-rows 0; plots unless --no-plots") {
  Workspace& w = Ws();
  const auto none = w.MustTrain("wd0", {{"--weight-decay", "0"}, {"--golden-rows", "0"}});
  const auto strong = w.MustTrain("wd05", {{"--weight-decay", "0.05"}, {"--no-plots", "-"}});
  const double n0 = WeightNorm2(Unpack(none.model)), n5 = WeightNorm2(Unpack(strong.model));
  MESSAGE("sum of squared weights: --weight-decay 0: " << n0 << ", 0.05: " << n5);
  CHECK(n5 < 0.8 * n0);
  CHECK(none.report["options"]["weight_decay"] == 0.0);
  CHECK(Unpack(none.model).golden.empty());
  // Plots (gnuplot is installed by tools/setup.sh): both PNGs, named on stdout.
  CHECK(test::FileExists(strong.report_dir + "/curves.png"));
  CHECK(test::FileExists(strong.report_dir + "/alpha.png"));
  CHECK_FALSE(strong.report.contains("plots_note"));
  CHECK_FALSE(test::FileExists(none.report_dir + "/curves.png"));
  // Without --quiet: a progress line per epoch, and the summary.
  const auto loud = w.MustTrain("loud", {{"--quiet", "-"}, {"--epochs", "2"}});
  CHECK(loud.output.find("epoch  1/2") != std::string::npos);
  CHECK(loud.output.find("epoch  2/2") != std::string::npos);
  CHECK(loud.output.find("best epoch") != std::string::npos);
  CHECK(loud.output.find("curves.png") == std::string::npos);  // --no-plots: none written
  CHECK(none.output.empty());  // --quiet
}

TEST_CASE("mtan-train: --loss-weights dwa follows --dwa-temperature; uncertainty learns log variances") {
  Workspace& w = Ws();
  const double temperature = 0.5;
  const auto r = w.MustTrain("dwa", {{"--loss-weights", "dwa"}, {"--dwa-temperature", "0.5"},
                                      {"--epochs", "4"}, {"--patience", "4"}});
  const json& ep = r.report["epochs"];
  REQUIRE(ep.size() == 4);
  const std::vector<std::string> tasks = {"click", "purchase", "category", "spend"};
  // Epochs 1 and 2 weigh every task 1; from epoch 3 on,
  // lambda_k = K softmax_k(w_k / T), w_k = L_k(e-1) / L_k(e-2).
  for (const auto& t : tasks) {
    CHECK(ep[0]["lambda"][t] == 1.0);
    CHECK(ep[1]["lambda"][t] == 1.0);
  }
  for (size_t e = 2; e < 4; ++e) {
    double z = 0, z_default = 0;
    std::vector<double> ratio;
    for (const auto& t : tasks) {
      ratio.push_back(ep[e - 1]["train_loss"][t].get<double>() / ep[e - 2]["train_loss"][t].get<double>());
      z += std::exp(ratio.back() / temperature);
      z_default += std::exp(ratio.back() / 2.0);
    }
    double off_default = 0;
    for (size_t k = 0; k < tasks.size(); ++k) {
      const double got = ep[e]["lambda"][tasks[k]];
      CHECK(got == doctest::Approx(4 * std::exp(ratio[k] / temperature) / z).epsilon(1e-9));
      off_default = std::max(off_default, std::fabs(got - 4 * std::exp(ratio[k] / 2.0) / z_default));
    }
    CHECK(off_default > 1e-3);  // T = 2 (the default) would have given other weights
  }
  const auto u = w.MustTrain("uncertainty", {{"--loss-weights", "uncertainty"}, {"--epochs", "2"}});
  CHECK(u.report["epochs"][1]["log_var"]["click"].get<double>() != 0.0);
  const auto eq = w.MustTrain("equal", {{"--epochs", "2"}});
  CHECK(eq.report["epochs"][1]["lambda"]["spend"] == 1.0);
}

TEST_CASE("mtan-train: bad options fail before training, with the option named") {
  // Every option's bad values: trainer.tiny_training "bad inputs" (in
  // process, no libtorch start-up per value). Here, that the command line
  // reaches the same checks.
  Workspace& w = Ws();
  for (const auto& [option, value] : std::vector<std::pair<std::string, std::string>>{
           {"--lr-decay", "0"}, {"--max-batch", "70000"}}) {
    CAPTURE(option);
    CAPTURE(value);
    const auto r = w.Train("bad", {{option, value}});
    CHECK(r.code == 1);
    CHECK_MESSAGE(r.output.find("mtan-train: error: " + option) != std::string::npos, r.output);
    CHECK_FALSE(test::FileExists(r.model));
  }
  // --predictions without --test has nothing to predict: refused, not ignored.
  const auto p = w.Train("bad", {{"--test", "-"}});
  CHECK(p.code == 1);
  CHECK(p.output.find("--predictions needs --test") != std::string::npos);
  CHECK(w.Train("bad", {{"--help", ""}}).output.find("--dwa-temperature") != std::string::npos);
}

TEST_CASE("mtan-compare: the table and JSON of seed means and paired bootstrap SEs") {
  Workspace& w = Ws();
  // Three prediction files of two groups on the same test rows (runs of the
  // cases above, trained here when this case runs alone).
  const auto a1 = w.MustTrain("wd0", {{"--weight-decay", "0"}, {"--golden-rows", "0"}});
  const auto a2 = w.MustTrain("wd05", {{"--weight-decay", "0.05"}, {"--no-plots", "-"}});
  const auto b1 = w.MustTrain("shared_bottom", {{"--epochs", "1"}, {"--arch", "shared-bottom"}});
  const std::string base = std::string(MTAN_COMPARE_BIN) + " --test " + w.data + "/test.csv --spec " +
                           w.data + "/tasks.json --group a=" + a1.predictions + "," + a2.predictions +
                           " --group b=" + b1.predictions;
  std::string out;
  REQUIRE_MESSAGE(test::RunCommand(base + " --json --resamples 50 --seed 7 --json-out " + w.dir + "/cmp.json",
                                   &out) == 0,
                  out);
  const json j = json::parse(out);
  CHECK(j == json::parse(test::ReadText(w.dir + "/cmp.json")));  // --json-out
  CHECK(j["baseline"] == "a");                                     // the first group by default
  CHECK(j["resamples"] == 50);
  // Seed means are the metric of each file, averaged; differences are to a.
  auto metric = [&](const std::string& path, size_t t) {
    std::vector<std::vector<float>> p;
    std::string error;
    REQUIRE(trainer::ReadPredictions(path, w.spec, w.test.rows, &p, &error));
    const std::string name = host::PrimaryMetricName(w.spec.tasks[t].type);
    for (const auto& m : host::EvaluateTask(w.spec.tasks[t], p[t].data(), w.test.labels[t]))
      if (m.name == name) return m.value;
    return std::nan("");
  };
  for (size_t t = 0; t < w.spec.tasks.size(); ++t) {
    const std::string name = w.spec.tasks[t].name;
    CAPTURE(name);
    const double ma = (metric(a1.predictions, t) + metric(a2.predictions, t)) / 2, mb = metric(b1.predictions, t);
    CHECK(j["groups"]["a"][name]["mean"].get<double>() == doctest::Approx(ma).epsilon(1e-9));
    CHECK(j["groups"]["b"][name]["mean"].get<double>() == doctest::Approx(mb).epsilon(1e-9));
    CHECK(j["groups"]["b"][name]["diff_vs_baseline"].get<double>() == doctest::Approx(mb - ma).epsilon(1e-9));
    CHECK(j["groups"]["b"][name]["diff_se"].get<double>() > 0);
  }
  // --baseline, --resamples and --seed change what they say, and only that.
  REQUIRE(test::RunCommand(base + " --json --resamples 50 --seed 7 --baseline b", &out) == 0);
  const json jb = json::parse(out);
  CHECK(jb["baseline"] == "b");
  CHECK(jb["groups"]["a"]["click"]["diff_vs_baseline"].get<double>() ==
        doctest::Approx(-j["groups"]["b"]["click"]["diff_vs_baseline"].get<double>()));
  REQUIRE(test::RunCommand(base + " --json --resamples 50 --seed 8", &out) == 0);
  const json js = json::parse(out);
  CHECK(js["groups"]["b"]["click"]["mean"] == j["groups"]["b"]["click"]["mean"]);
  CHECK(js["groups"]["b"]["click"]["diff_se"] != j["groups"]["b"]["click"]["diff_se"]);
  REQUIRE(test::RunCommand(base + " --json --resamples 400 --seed 7", &out) == 0);
  CHECK(json::parse(out)["resamples"] == 400);
  CHECK(json::parse(out)["groups"]["b"]["click"]["diff_se"] != j["groups"]["b"]["click"]["diff_se"]);
  // The markdown table: one row per group, the baseline's difference a dash.
  REQUIRE(test::RunCommand(base + " --resamples 50", &out) == 0);
  CHECK(out.find("| arch | click auc | Δ vs a ± SE |") != std::string::npos);
  CHECK(out.find("| a | ") != std::string::npos);
  CHECK(out.find("| b | ") != std::string::npos);
  CHECK(out.find("50 resamples of the 1200 test rows") != std::string::npos);
  // Bad input: a message and exit 1.
  CHECK(test::RunCommand(base + " --group nameless", &out) == 1);
  CHECK(out.find("expected NAME=file") != std::string::npos);
  CHECK(test::RunCommand(std::string(MTAN_COMPARE_BIN) + " --help", &out) == 0);
  CHECK(out.find("--resamples") != std::string::npos);
}

// Sum of squares of the embedding tables (what --embedding-l2 penalises).
double TableNorm2(const fb::ModelT& m) {
  double s = 0;
  for (const auto& t : m.tensors)
    if (t->buffer != 0 && t->name.rfind("table.", 0) == 0)
      for (float w : Floats(m, *t)) s += double(w) * w;
  return s;
}

TEST_CASE("mtan-train with id features: tables in the model, --embedding-l2 shrinks them") {
  Workspace& w = Ws();
  const std::string ids = w.dir + "/ids";
  std::string out;
  REQUIRE_MESSAGE(test::RunCommand(std::string(MTAN_DATA_BIN) + " synth --categorical --items 300 --out " +
                                       ids + " --rows 6000 --seed 5", &out) == 0, out);
  const std::map<std::string, std::string> data = {
      {"--train", ids + "/train.csv"}, {"--val", ids + "/val.csv"}, {"--test", ids + "/test.csv"},
      {"--spec", ids + "/tasks.json"}};
  auto with = [&](std::map<std::string, std::string> o) {
    o.insert(data.begin(), data.end());
    return o;
  };
  const auto none = w.MustTrain("ids_l2_0", with({{"--embedding-l2", "0"}, {"--quiet", "-"}}));
  const auto strong = w.MustTrain("ids_l2_1", with({{"--embedding-l2", "1"}}));
  const fb::ModelT m = Unpack(none.model);
  REQUIRE(m.tensor_inputs.size() == 5);
  CHECK(m.tensor_inputs[0]->name == "item_id");
  CHECK(m.tensor_inputs[1]->id_map == fb::IdMap::HASHED);
  CHECK(none.output.find("table items: 301 rows x 16 (vocabulary + 1 unknown-id row), read by item_id, "
                         "recent_items") != std::string::npos);
  const double n0 = TableNorm2(m), n1 = TableNorm2(Unpack(strong.model));
  MESSAGE("sum of squared table entries: --embedding-l2 0: " << n0 << ", 1: " << n1);
  CHECK(n0 > 0);
  CHECK(n1 < 0.8 * n0);
  CHECK(none.report["options"]["embedding_l2"] == 0.0);
  const auto bad = w.Train("ids_bad", with({{"--embedding-l2", "-1"}}));
  CHECK(bad.code != 0);
  CHECK(bad.output.find("--embedding-l2") != std::string::npos);
}

}  // TEST_SUITE
