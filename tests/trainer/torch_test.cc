// libtorch tests: the export round trip through the runtime, a tiny training
// run, and the uncertainty loss in tensor form.
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>

#include <nlohmann/json.hpp>
#include <torch/torch.h>
// libtorch's logging (glog) defines CHECK, CHECK_EQ, ...: included after it,
// doctest's own take their place. The other order made every CHECK here a
// glog check that aborts the process and that doctest never counts.
#undef CHECK
#undef CHECK_EQ
#undef CHECK_NE
#undef CHECK_LE
#undef CHECK_LT
#undef CHECK_GE
#undef CHECK_GT
#include <doctest/doctest.h>

#include "dataset.h"
#include "loss_weights.h"
#include "model.h"
#include "model_io.h"
#include "rng.h"
#include "train.h"

using namespace mtan::trainer;
namespace host = mtan::host;
namespace fb = mtan::fb;

namespace {

host::Spec ThreeTaskSpec() {
  host::Spec spec;
  std::string err;
  const bool ok = host::ParseSpec(R"({"tasks": [
      {"name": "click", "kind": "binary"},
      {"name": "category", "kind": "multiclass", "classes": 3},
      {"name": "spend", "kind": "regression", "transform": "log1p"}]})",
                                  "spec", &spec, &err);
  REQUIRE_MESSAGE(ok, err);
  return spec;
}

// Float32 constant values of a model that are denormal.
int64_t DenormalWeights(const mtan::fb::ModelT& m) {
  int64_t n = 0;
  for (const auto& t : m.tensors) {
    if (t->buffer == 0 || t->dtype != mtan::fb::DType::FLOAT32) continue;
    const auto& data = m.buffers.at(t->buffer)->data;
    for (size_t i = 0; i + 4 <= data.size(); i += 4) {
      float v;
      std::memcpy(&v, data.data() + i, 4);
      n += std::fpclassify(v) == FP_SUBNORMAL;
    }
  }
  return n;
}

int64_t DenormalWeights(const std::vector<uint8_t>& file) {
  mtan::fb::ModelT m;
  std::string err;
  REQUIRE_MESSAGE(host::UnpackModel(host::ModelBytes(file), &m, &err), err);
  return DenormalWeights(m);
}

}  // namespace

TEST_SUITE("export") {

TEST_CASE("denormal weights are written as zero, and the outputs do not change") {
  const host::Spec spec = ThreeTaskSpec();
  const int F = 5;
  torch::manual_seed(4);
  ModelConfig c;
  c.inputs = F;
  c.trunk = {16, 8};
  c.mask_hidden = 4;
  c.task_width = 8;
  c.att_hidden = 4;
  c.outputs = {1, 3, 1};
  MtanNet net(c);
  net->eval();
  // Weight decay leaves dead units' weights here: 1e-40 is below FLT_MIN.
  int planted = 0;
  {
    torch::NoGradGuard no_grad;
    for (auto& p : net->parameters()) {
      float* v = p.data_ptr<float>();
      for (int64_t i = 0; i < p.numel(); i += 3, ++planted) v[i] = (i % 2 ? 1e-40f : -3e-39f);
    }
  }
  REQUIRE(planted > 100);
  std::vector<std::string> names;
  for (int j = 0; j < F; ++j) names.push_back("f" + std::to_string(j));
  host::MtanWeights w;
  ExportWeights(net, spec, names, {}, std::vector<float>(F, 0.f), std::vector<float>(F, 1.f),
                {{}, {}, {0.0, 1.0}}, &w);
  mtan::fb::ModelT model = host::BuildFloatModel(w);
  CHECK(DenormalWeights(model) >= planted);  // what the writer is given
  const std::vector<uint8_t> bytes = host::FinishModel(model, 8);
  CHECK(DenormalWeights(model) == 0);
  CHECK(DenormalWeights(bytes) == 0);
  // Outputs as the trainer computes them with the denormal weights.
  const int N = 16;
  std::vector<float> x(N * F);
  host::Rng rng(5);
  for (float& v : x) v = static_cast<float>(rng.Normal());
  host::RuntimeModel runtime;
  std::string err;
  REQUIRE_MESSAGE(runtime.Load(bytes, 0, MTAN_BACKEND_DEFAULT, &err) == MTAN_OK, err);
  std::vector<float> got;
  REQUIRE_MESSAGE(runtime.Run(x.data(), N, MTAN_ALL_TASKS, &got, &err) == MTAN_OK, err);
  std::vector<float> zero(F, 0.f), one(F, 1.f);
  torch::Tensor want = RuntimeEquivalentOutputs(net, spec, torch::from_blob(x.data(), {N, F}), {},
                                                torch::from_blob(zero.data(), {F}),
                                                torch::from_blob(one.data(), {F}),
                                                {{}, {}, {0.0, 1.0}}).contiguous();
  REQUIRE(static_cast<size_t>(want.numel()) == got.size());
  for (size_t i = 0; i < got.size(); ++i) CHECK(got[i] == doctest::Approx(want.data_ptr<float>()[i]).epsilon(1e-5));
}

TEST_CASE("every architecture's export runs on the runtime like the trainer, within 1e-4") {
 for (bool with_ids : {false, true}) {
  CAPTURE(with_ids);
  host::Spec spec = ThreeTaskSpec();
  const int F = 7, N = 300;
  // With ids: a vocabulary table read by a categorical and a mean bag of 4,
  // and a hashed table read by a sum bag of 3. The raw keys go to the
  // runtime, which maps them itself; the trainer gets the rows MapIdsToRows
  // gives. Keys 0..29 with a vocabulary of the even ones: half are unknown.
  std::vector<host::IdTable> tables;
  host::Dataset ids;
  std::vector<torch::Tensor> id_rows;
  if (with_ids) {
    spec.tables = {{"items", mtan::fb::IdMap::VOCABULARY, 1, 0, 6},
                   {"words", mtan::fb::IdMap::HASHED, 1, 13, 5}};
    spec.id_features = {{"item", false, false, 1, mtan::fb::Combiner::MEAN, 0},
                        {"seen", true, false, 4, mtan::fb::Combiner::MEAN, 0},
                        {"words", true, true, 3, mtan::fb::Combiner::SUM, 1}};
    host::IdTable items{"items", mtan::fb::IdMap::VOCABULARY, {}, 0, 6};
    for (int64_t k = 0; k < 30; k += 2) items.vocabulary.push_back(k);
    tables = {items, {"words", mtan::fb::IdMap::HASHED, {}, 13, 5}};
    host::Rng id_rng(11);
    ids.rows = N;
    for (const auto& f : spec.id_features) {
      host::IdColumn c{f.name, f.max_length, {}, 0};
      for (int r = 0; r < N; ++r) {
        const int n = f.max_length == 1 ? 1 : static_cast<int>(id_rng.Below(f.max_length + 1));
        for (int l = 0; l < f.max_length; ++l)
          c.ids.push_back(l >= n ? -1 : f.string_ids ? static_cast<int64_t>(id_rng.Next() >> 1)
                                                     : static_cast<int64_t>(id_rng.Below(30)));
      }
      std::vector<int64_t> rows = c.ids;
      host::MapIdsToRows(tables[f.table], &rows);
      id_rows.push_back(torch::from_blob(rows.data(), {N, f.max_length}, torch::kInt64).clone());
      ids.ids.push_back(std::move(c));
    }
  }
  host::Rng rng(7);
  std::vector<float> mean(F), stddev(F), x(N * F);
  for (int j = 0; j < F; ++j) {
    mean[j] = static_cast<float>(10 * rng.Normal());
    stddev[j] = static_cast<float>(0.5 + 5 * rng.Uniform());
  }
  for (int i = 0; i < N * F; ++i) x[i] = mean[i % F] + stddev[i % F] * static_cast<float>(rng.Normal());
  std::vector<std::string> names;
  for (int j = 0; j < F; ++j) names.push_back("f" + std::to_string(j));
  const std::vector<LabelScale> scales = {{}, {}, {3.1, 0.7}};
  for (Arch arch : {Arch::kMtan, Arch::kMtanMask, Arch::kMtanCross, Arch::kSharedBottom, Arch::kSingle}) {
    CAPTURE(ArchName(arch));
    torch::manual_seed(3);
    ModelConfig c;
    c.arch = arch;
    c.inputs = F;
    c.trunk = {24, 16};
    c.mask_hidden = 8;
    c.task_width = 12;
    c.att_hidden = 6;
    c.outputs = {1, 3, 1};
    for (const auto& t : tables) c.tables.push_back({t.rows(), t.dim});
    for (const auto& f : spec.id_features) c.bags.push_back({f.table, f.combiner == mtan::fb::Combiner::MEAN});
    MtanNet net(c);
    net->eval();
    host::MtanWeights w;
    ExportWeights(net, spec, names, tables, mean, stddev, scales, &w);
    mtan::fb::ModelT model = host::BuildFloatModel(w);
    const std::vector<uint8_t> bytes = host::FinishModel(model, 64);
    host::RuntimeModel runtime;
    std::string err;
    REQUIRE_MESSAGE(runtime.Load(bytes, 0, MTAN_BACKEND_DEFAULT, &err) == MTAN_OK, err);
    std::vector<float> got;
    REQUIRE_MESSAGE(runtime.Run(x.data(), N, MTAN_ALL_TASKS, &got, &err,
                                host::TensorInputBytes(ids, 0, with_ids ? N : 0)) == MTAN_OK, err);
    torch::Tensor want = RuntimeEquivalentOutputs(
        net, spec, torch::from_blob(x.data(), {N, F}), id_rows, torch::from_blob(mean.data(), {F}),
        torch::from_blob(stddev.data(), {F}), scales).contiguous();
    REQUIRE(static_cast<size_t>(want.numel()) == got.size());
    double worst = 0;
    for (size_t i = 0; i < got.size(); ++i) {
      const double a = want.data_ptr<float>()[i];
      worst = std::max(worst, std::fabs(a - got[i]) / std::max(1.0, std::fabs(a)));
    }
    CHECK(worst < 1e-4);
  }
 }
}

}  // TEST_SUITE

TEST_SUITE("loss_tensor") {

TEST_CASE("the tensor uncertainty loss is the formula, with its gradient") {
  for (auto type : {fb::TaskKind::BINARY, fb::TaskKind::REGRESSION}) {
    torch::Tensor s = torch::full({}, 0.3, torch::requires_grad());
    torch::Tensor v = UncertaintyWeighted(type, torch::full({}, 1.7), s);
    v.backward();
    CHECK(v.item<double>() == doctest::Approx(UncertaintyTerm(type, 1.7, 0.3)).epsilon(1e-6));
    CHECK(s.grad().item<double>() == doctest::Approx(UncertaintyTermGrad(type, 1.7, 0.3)).epsilon(1e-5));
  }
}

}  // TEST_SUITE

TEST_SUITE("training") {

// Toy data: click = [a + b > 0], category = argmax(a, b, -a - b), spend =
// exp(1 + a) for about half of the rows; c is noise at a large scale.
void WriteToy(const std::filesystem::path& path, int rows, uint64_t seed) {
  host::Rng rng(seed);
  std::ofstream out(path);
  out << "a,b,c,click,category,spend\n";
  for (int i = 0; i < rows; ++i) {
    const double a = rng.Normal(), b = rng.Normal(), c = 1000 + 300 * rng.Normal();
    const double s[3] = {a, b, -a - b};
    const int k = static_cast<int>(std::max_element(s, s + 3) - s);
    out << a << "," << b << "," << c << "," << (a + b > 0) << "," << k << ",";
    if (rng.Bernoulli(0.5)) out << std::exp(1 + a);
    out << "\n";
  }
}

nlohmann::json Train(const std::filesystem::path& dir, const std::string& name,
                     const std::string& arch, const std::string& weighting,
                     double dropout = 0.0) {
  TrainOptions o;
  o.train_csv = (dir / "train.csv").string();
  o.val_csv = (dir / "val.csv").string();
  o.spec_path = (dir / "tasks.json").string();
  o.out_model = (dir / (name + ".mtan")).string();
  o.report_dir = (dir / name).string();
  o.arch = arch;
  o.loss_weights = weighting;
  o.trunk = {32, 16};
  o.mask_hidden = 8;
  o.task_width = 16;
  o.att_hidden = 8;
  o.epochs = 12;
  o.batch = 64;
  o.lr = 5e-3;
  o.patience = 12;
  o.dropout = dropout;
  o.quiet = true;
  o.plots = false;
  REQUIRE(RunTraining(o) == 0);
  std::ifstream in(dir / name / "metrics.json");
  return nlohmann::json::parse(in);
}

TEST_CASE("a tiny run learns a separable toy task, deterministically, and exports") {
  const auto dir = std::filesystem::temp_directory_path() / "mtan_tiny_training";
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  WriteToy(dir / "train.csv", 3000, 1);
  WriteToy(dir / "val.csv", 1000, 2);
  std::ofstream(dir / "tasks.json") << R"({"tasks": [
      {"name": "click", "kind": "binary"},
      {"name": "category", "kind": "multiclass", "classes": 3},
      {"name": "spend", "kind": "regression", "transform": "log1p"}]})";
  const auto r = Train(dir, "mtan", "mtan", "equal");
  CHECK(r["val"]["click"]["auc"].get<double>() > 0.98);
  CHECK(r["val"]["category"]["accuracy"].get<double>() > 0.85);
  CHECK(r["val"]["spend"]["nmse"].get<double>() < 0.1);
  CHECK(r["export"]["max_rel_diff_vs_runtime"].get<double>() < 1e-4);
  CHECK(r["alpha"]["matrix"].size() == 3);
  CHECK(std::filesystem::exists(dir / "mtan.mtan"));
  // The same seed gives the same result.
  const auto again = Train(dir, "mtan_again", "mtan", "equal");
  CHECK(again["val"] == r["val"]);
  // The loss weightings and the baseline train too.
  const auto u = Train(dir, "uncertainty", "shared-bottom", "uncertainty");
  CHECK(u["val"]["click"]["auc"].get<double>() > 0.97);
  CHECK(u["epochs"][0].contains("log_var"));
  const auto d = Train(dir, "dwa", "single", "dwa");
  CHECK(d["val"]["click"]["auc"].get<double>() > 0.97);
  // Dropout trains, and the export check runs without it (it used to fail
  // with "the exported model disagrees with the trainer").
  const auto dr = Train(dir, "dropout", "mtan", "equal", 0.2);
  CHECK(dr["options"]["dropout"].get<double>() == 0.2);
  CHECK(dr["val"]["click"]["auc"].get<double>() > 0.97);
  CHECK(dr["export"]["max_rel_diff_vs_runtime"].get<double>() < 1e-4);
  for (const char* name : {"mtan", "dropout"}) {
    std::ifstream in(dir / (std::string(name) + ".mtan"), std::ios::binary);
    const std::vector<uint8_t> file((std::istreambuf_iterator<char>(in)), {});
    CHECK(DenormalWeights(file) == 0);
  }
  std::filesystem::remove_all(dir);
}

TEST_CASE("the ETA follows the recent epochs, not the mean") {
  CHECK(EtaSeconds({}, 5) == 0.0);
  CHECK(EtaSeconds({10.0}, 3) == 30.0);
  CHECK(EtaSeconds({10.0, 20.0, 30.0}, 0) == 0.0);
  // Epochs that grew from 6 s to 110 s (issue 11): the mean (64 s) said
  // 2m08s for two epochs left; the median of the last three says 3m44s.
  CHECK(EtaSeconds({6, 15, 14, 17, 59, 91, 101, 112, 115, 110}, 2) == 224.0);
  // One outlier among the last three does not move it.
  CHECK(EtaSeconds({8, 8, 30, 8}, 4) == 32.0);
}

// What RunTraining printed on stderr (and its exit code).
std::pair<int, std::string> RunCapturingStderr(const TrainOptions& o) {
  std::fflush(stderr);
  char path[] = "/tmp/mtan_train_stderr_XXXXXX";
  const int fd = mkstemp(path);
  REQUIRE(fd >= 0);
  const int saved = dup(2);
  dup2(fd, 2);
  const int code = RunTraining(o);
  std::fflush(stderr);
  dup2(saved, 2);
  close(saved);
  close(fd);
  std::ifstream in(path);
  std::string text((std::istreambuf_iterator<char>(in)), {});
  std::remove(path);
  return {code, text};
}

TEST_CASE("bad inputs fail with a message, not an exception") {
  TrainOptions o;
  o.train_csv = "/nonexistent/train.csv";
  o.val_csv = o.train_csv;
  o.spec_path = "/nonexistent/tasks.json";
  char dir[] = "/tmp/mtan_bad_inputs_XXXXXX";
  REQUIRE(mkdtemp(dir) != nullptr);
  o.out_model = std::string(dir) + "/x.mtan";
  auto [code, err] = RunCapturingStderr(o);
  CHECK(code == 1);
  CHECK_MESSAGE(err.rfind("mtan-train: error: ", 0) == 0, err);
  CHECK_MESSAGE(err.find("/nonexistent/tasks.json") != std::string::npos, err);  // the spec comes first
  o.arch = "mmoe";
  std::tie(code, err) = RunCapturingStderr(o);
  CHECK(code == 1);
  CHECK_MESSAGE(err.find("--arch mmoe: expected mtan, mtan-mask, mtan-cross, shared-bottom or single") !=
                    std::string::npos,
                err);
  CHECK_FALSE(std::filesystem::exists(o.out_model));
  // Every option's bad value is refused before any data is read, naming the
  // option (--lr-decay 0 used to train with a rate of 0, --max-batch 70000 to
  // fail only when the finished model was loaded).
  const TrainOptions good = [&] {
    TrainOptions g = o;
    g.arch = "mtan";
    return g;
  }();
  const std::vector<std::pair<std::string, std::function<void(TrainOptions&)>>> bad = {
      {"--arch", [](TrainOptions& t) { t.arch = "mmoe"; }},
      {"--loss-weights", [](TrainOptions& t) { t.loss_weights = "gradnorm"; }},
      {"--trunk", [](TrainOptions& t) { t.trunk = {16, 0}; }},
      {"--trunk", [](TrainOptions& t) { t.trunk = {}; }},
      {"--mask-hidden", [](TrainOptions& t) { t.mask_hidden = 0; }},
      {"--task-width", [](TrainOptions& t) { t.task_width = 0; }},
      {"--att-hidden", [](TrainOptions& t) { t.att_hidden = 0; }},
      {"--dropout", [](TrainOptions& t) { t.dropout = 1; }},
      {"--dropout", [](TrainOptions& t) { t.dropout = -0.1; }},
      {"--epochs", [](TrainOptions& t) { t.epochs = 0; }},
      {"--batch", [](TrainOptions& t) { t.batch = 0; }},
      {"--lr", [](TrainOptions& t) { t.lr = 0; }},
      {"--lr", [](TrainOptions& t) { t.lr = NAN; }},
      {"--weight-decay", [](TrainOptions& t) { t.weight_decay = -1; }},
      {"--dwa-temperature", [](TrainOptions& t) { t.dwa_temperature = 0; }},
      {"--patience", [](TrainOptions& t) { t.patience = 0; }},
      {"--lr-decay", [](TrainOptions& t) { t.lr_decay = 0; }},
      {"--lr-decay", [](TrainOptions& t) { t.lr_decay = 1.5; }},
      {"--threads", [](TrainOptions& t) { t.threads = 0; }},
      {"--golden-rows", [](TrainOptions& t) { t.golden_rows = -1; }},
      {"--max-batch", [](TrainOptions& t) { t.max_batch = 0; }},
      {"--max-batch", [](TrainOptions& t) { t.max_batch = 70000; }},
      {"--predictions", [](TrainOptions& t) { t.predictions = "p.csv"; }},  // without --test
  };
  for (const auto& [option, spoil] : bad) {
    CAPTURE(option);
    TrainOptions t = good;
    spoil(t);
    std::tie(code, err) = RunCapturingStderr(t);
    CHECK(code == 1);
    CHECK_MESSAGE(err.rfind("mtan-train: error: " + option, 0) == 0, err);
  }
  std::filesystem::remove_all(dir);
}

}  // TEST_SUITE
