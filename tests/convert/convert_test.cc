// The converter end to end on a small model: what it writes into the file,
// the golden cases and the self-test, the report, and every bad input.
#include <cmath>
#include <map>
#include <set>
#include <nlohmann/json.hpp>

#include "convert.h"
#include "doctest/doctest.h"
#include "fixture.h"

using namespace mtan;

namespace {

convert::Options OptionsFor(const test::Fixture& fx, host::CalibrationMethod m) {
  convert::Options o;
  o.model_path = fx.float_model;
  o.calib_path = fx.calib_csv;
  o.spec_path = fx.spec_json;
  o.out_path = fx.Path("model.mtan");
  o.report_path = fx.Path("report.json");
  o.method = m;
  return o;
}

std::string Property(const fb::ModelT& m, const std::string& key) {
  for (const auto& kv : m.metadata->properties)
    if (kv->key == key) return kv->value;
  return "";
}

double Metric(const fb::ModelT& m, const std::string& name) {
  for (const auto& kv : m.metadata->metrics)
    if (kv->name == name) return kv->value;
  return NAN;
}

fb::ModelT Unpack(const std::vector<uint8_t>& bytes) {
  fb::ModelT m;
  std::string error;
  REQUIRE_MESSAGE(host::UnpackModel(host::ModelBytes(bytes), &m, &error), error);
  return m;
}

// Conversion fails with a message containing `want` and leaves no file.
void ExpectFailure(const convert::Options& o, const std::string& want) {
  convert::Report report;
  std::string error;
  CHECK_FALSE(convert::Convert(o, &report, &error));
  CHECK_MESSAGE(error.find(want) != std::string::npos, "error: " << error << " (wanted: " << want << ")");
  CHECK_FALSE(test::FileExists(o.out_path));
  CHECK_FALSE(test::FileExists(o.out_path + ".tmp"));
  CHECK_FALSE(test::FileExists(o.report_path));
}

}  // namespace

TEST_CASE("convert: each calibration method gives a self-testing int8 model close to float") {
  test::Fixture fx;
  std::map<std::string, double> single_scores;  // each method's score converting alone
  for (auto m : {host::CalibrationMethod::kMinMax, host::CalibrationMethod::kPercentile,
                 host::CalibrationMethod::kMse, host::CalibrationMethod::kAuto}) {
    CAPTURE(host::CalibrationMethodName(m));
    convert::Options o = OptionsFor(fx, m);
    o.max_batch = 32;
    o.float_fallback = false;  // every layer int8 (the fallback has its own test)
    convert::Report report;
    std::string error;
    REQUIRE_MESSAGE(convert::Convert(o, &report, &error), error);
    const auto bytes = test::ReadBytes(o.out_path);
    const fb::ModelT q = Unpack(bytes);

    // Int8 weights and activations, float heads.
    int int8_tensors = 0;
    for (const auto& t : q.tensors) int8_tensors += t->dtype == fb::DType::INT8;
    CHECK(int8_tensors > 20);
    // Plans and memory plan written; max batch and the measured arena.
    for (const auto& t : q.tasks) CHECK_FALSE(t->plan.empty());
    CHECK(q.activation_bytes_per_row > 0);
    CHECK(q.max_batch == 32);
    host::RuntimeModel rt;
    REQUIRE(rt.Load(bytes, 0, MTAN_BACKEND_XNNPACK, &error) == MTAN_OK);
    CHECK(q.arena_bytes == rt.arena_bytes());
    CHECK(report.arena_bytes == rt.arena_bytes());
    // Golden cases pass the self-test on both backends.
    CHECK(q.golden.size() == 6);
    CHECK(mtan_self_test(rt.get()) == MTAN_OK);
    host::RuntimeModel ref;
    REQUIRE(ref.Load(bytes, 0, MTAN_BACKEND_REFERENCE, &error) == MTAN_OK);
    CHECK(mtan_self_test(ref.get()) == MTAN_OK);
    for (const auto& g : q.golden) {
      CHECK(g->tolerance > 0.0f);
      CHECK(g->tolerance < 0.5f);
    }
    // Metadata: source hash, calibration, metrics per task.
    CHECK(q.metadata->producer.rfind("mtan-convert", 0) == 0);
    CHECK(Property(q, "source_hash").size() == 16);
    CHECK(Property(q, "source_hash") == report.source_hash);
    CHECK(Property(q, "calibration") == report.method);
    CHECK(Property(q, "calibration_requested") == host::CalibrationMethodName(m));
    // Every 5th row is held out to check the goals on.
    CHECK(report.check_rows == fx.n / 5);
    CHECK(report.calibration_rows == fx.n - fx.n / 5);
    CHECK(Property(q, "calibration_rows") == std::to_string(report.calibration_rows));
    CHECK(Property(q, "check_rows") == std::to_string(report.check_rows));
    CHECK(Property(q, "goals") == (report.goals_met ? "met" : "missed"));
    CHECK(Property(q, "float_fallback") == "none");
    CHECK(report.written);
    for (const char* name : {"click/auc", "click/logloss", "category/accuracy",
                             "category/macro_f1", "spend/rmse", "spend/nmse"}) {
      CHECK(std::isfinite(Metric(q, std::string("float/") + name)));
      CHECK(std::isfinite(Metric(q, std::string("int8/") + name)));
    }
    // Small model, 800 rows: int8 stays close to float.
    CHECK(std::fabs(Metric(q, "int8/click/auc") - Metric(q, "float/click/auc")) < 0.01);
    CHECK(std::fabs(Metric(q, "int8/category/accuracy") - Metric(q, "float/category/accuracy")) < 0.03);
    CHECK(Metric(q, "int8/spend/nmse") < 1.1 * Metric(q, "float/spend/nmse"));
    // Report: per-layer agreement, sizes.
    REQUIRE(report.layers.size() > 20);
    bool saw_input = false;
    for (const auto& l : report.layers) {
      CAPTURE(l.name);
      CHECK(l.cosine > 0.98);
      CHECK(l.relative_rmse < 0.2);
      if (l.name == "input.standardized") saw_input = l.dtype == "int8";
    }
    CHECK(saw_input);
    CHECK(report.int8_file_bytes == bytes.size());
    CHECK(report.float_file_bytes == test::ReadBytes(fx.float_model).size());
    if (m == host::CalibrationMethod::kAuto) {
      // auto scores each method exactly as converting with that method alone
      // does (the loop ran minmax, percentile and mse first).
      REQUIRE(report.candidates.size() == 3);
      CHECK(report.method == "per-tensor");
      for (const auto& c : report.candidates) {
        CAPTURE(c.method);
        REQUIRE(single_scores.count(c.method) == 1);
        CHECK(c.score == single_scores.at(c.method));
        CHECK(std::isfinite(c.score));
        CHECK(c.score >= 0);
      }
    } else {
      REQUIRE(report.candidates.size() == 1);
      CHECK(report.method == host::CalibrationMethodName(m));
      single_scores[report.method] = report.candidates[0].score;
    }
    // Every int8 activation says which calibration set its range.
    for (const auto& l : report.layers) {
      CAPTURE(l.name);
      if (l.dtype == "int8") CHECK_FALSE(l.range.empty());
    }
    // The JSON report has the documented sections.
    const auto j = nlohmann::json::parse(test::ReadText(o.report_path));
    CHECK(j["tasks"]["click"]["metric"] == "auc");
    CHECK(j["tasks"]["click"].contains("float"));
    CHECK(j["tasks"]["click"].contains("int8"));
    CHECK(j["tasks"]["click"].contains("delta"));
    CHECK(j["layers"].size() == report.layers.size());
    CHECK(j["layers"][0].contains("cosine"));
    CHECK(j["layers"][0].contains("relative_rmse"));
    CHECK(j["sizes"]["arena_bytes"] == report.arena_bytes);
    CHECK(j["sizes"]["int8_file_bytes"] == bytes.size());
    CHECK(j["calibration"]["rows"] == report.calibration_rows);
    CHECK(j["goals"]["check_rows"] == report.check_rows);
    CHECK(j["goals"]["met"] == report.goals_met);
    CHECK(j["tasks"]["click"].contains("loss_se"));
    CHECK(j["tasks"]["click"].contains("expected_goal_fraction"));
    CHECK(j["fit_tasks"]["click"]["rows"] == report.calibration_rows);
    CHECK(j["calibration"]["input_ranges"].size() == 10);
  }
}

TEST_CASE("auto: the per-tensor search ends no worse than the best single method") {
  test::Fixture fx(11);
  convert::Options o = OptionsFor(fx, host::CalibrationMethod::kAuto);
  o.bias_correction = false;
  o.float_fallback = false;
  convert::Report report;
  std::string error;
  REQUIRE_MESSAGE(convert::Convert(o, &report, &error), error);
  REQUIRE(report.candidates.size() == 3);
  double best = 1e30;
  for (const auto& c : report.candidates) best = std::min(best, c.expected);
  double total = 0;
  for (const auto& t : report.fit_tasks) total += t.expected;
  // fit_tasks' expectations are on all fit rows, the search's on a subset
  // that here is all of them.
  CHECK(total <= best + 1e-9);
  CHECK(report.method == "per-tensor");
  CHECK(report.requested == "auto");
  // Ranges from more than one method: chosen per tensor.
  std::set<std::string> used;
  for (const auto& l : report.layers)
    if (l.dtype == "int8" && l.range != "fixed" && l.range != "per feature") used.insert(l.range);
  CHECK(used.size() >= 2);
}

TEST_CASE("a corrupted golden case makes the self-test fail; a tolerable change does not") {
  test::Fixture fx;
  convert::Options o = OptionsFor(fx, host::CalibrationMethod::kMinMax);
  convert::Report report;
  std::string error;
  REQUIRE_MESSAGE(convert::Convert(o, &report, &error), error);
  for (float factor : {0.5f, 3.0f}) {
    CAPTURE(factor);
    fb::ModelT q = Unpack(test::ReadBytes(o.out_path));
    auto& g = *q.golden[2];
    REQUIRE(g.tolerances.size() == 6);
    g.output[1] += factor * g.tolerances[1];  // a category probability, in its own tolerance
    // Re-sealed: the checksum is valid, only the self-test can notice.
    const auto bytes = host::FinishModel(q, q.max_batch);
    for (mtan_backend b : {MTAN_BACKEND_XNNPACK, MTAN_BACKEND_REFERENCE}) {
      host::RuntimeModel rt;
      REQUIRE(rt.Load(bytes, 0, b, &error) == MTAN_OK);
      CHECK(mtan_self_test(rt.get()) == (factor < 1.0f ? MTAN_OK : MTAN_ERROR_SELF_TEST));
    }
  }
}

TEST_CASE("bad inputs: a clear message, nothing written") {
  test::Fixture fx;
  convert::Options o = OptionsFor(fx, host::CalibrationMethod::kMse);

  SUBCASE("calibration columns that do not match the model's inputs") {
    std::vector<std::string> header = {"f0", "f1", "f2", "f3", "f4", "f5", "f6", "f7", "f8", "price"};
    test::WriteText(fx.calib_csv, fx.Csv(fx.rows, fx.n, header));
    ExpectFailure(o, "missing: 'f9'");
    ExpectFailure(o, "not inputs of the model: 'price'");
  }
  SUBCASE("a NaN feature") {
    std::string csv = fx.Csv(fx.rows, 20);
    csv.replace(csv.find('\n', csv.find('\n') + 1) + 1, 0, "nan");  // third line's first cell
    const size_t line3 = csv.find("nan");
    csv.erase(line3 + 3, csv.find(',', line3) - line3 - 3);
    test::WriteText(fx.calib_csv, csv);
    ExpectFailure(o, "calib.csv:3:1");
  }
  SUBCASE("an infinite feature") {
    std::string csv = fx.Csv(fx.rows, 20);
    const size_t line2 = csv.find('\n') + 1;
    csv.replace(line2, csv.find(',', line2) - line2, "inf");
    test::WriteText(fx.calib_csv, csv);
    ExpectFailure(o, "not a finite");
  }
  SUBCASE("an empty calibration set") {
    const std::string csv = fx.Csv(fx.rows, 1);
    test::WriteText(fx.calib_csv, csv.substr(0, csv.find('\n') + 1));
    ExpectFailure(o, "no data rows");
  }
  SUBCASE("a model that is already int8") {
    convert::Report report;
    std::string error;
    convert::Options first = o;
    first.out_path = fx.Path("first.mtan");
    first.report_path = "";
    REQUIRE_MESSAGE(convert::Convert(first, &report, &error), error);
    o.model_path = first.out_path;
    ExpectFailure(o, "already quantized");
  }
  SUBCASE("a corrupted model") {
    auto bytes = test::ReadBytes(fx.float_model);
    bytes[bytes.size() / 2] ^= 0x40;
    test::WriteBytes(fx.float_model, bytes);
    ExpectFailure(o, "MTAN_ERROR_CHECKSUM");
  }
  SUBCASE("a truncated model") {
    auto bytes = test::ReadBytes(fx.float_model);
    bytes.resize(bytes.size() / 3);
    test::WriteBytes(fx.float_model, bytes);
    ExpectFailure(o, "model.f32.mtan: not a valid model");
  }
  SUBCASE("a missing model file") {
    o.model_path = fx.Path("nope.mtan");
    ExpectFailure(o, "nope.mtan");
  }
  SUBCASE("a spec whose tasks are not the model's") {
    test::WriteText(fx.spec_json, R"({"tasks": [{"name": "click", "kind": "binary"},
      {"name": "category", "kind": "multiclass", "class_names": ["a", "b", "c", "d", "e"]},
      {"name": "spend", "kind": "regression", "transform": "log1p"}]})");
    ExpectFailure(o, "task 'category'");
  }
  SUBCASE("a report that cannot be written: no model either") {
    o.report_path = fx.Path("no/such/dir/report.json");
    ExpectFailure(o, "no/such/dir");
  }
  SUBCASE("an output directory that does not exist") {
    o.out_path = fx.Path("no/such/dir/model.mtan");
    ExpectFailure(o, "no/such/dir");
  }
}

TEST_CASE("the raw-input path: standardisation inside QUANTIZE survives mismatched scales") {
  // Features 0, 3, 6, 9 are prices (mean 50, std 40, lognormal tail), 1, 4, 7
  // flags, 2, 5, 8 counts. Add rows with prices 30 std devs out.
  test::Fixture fx(21, 1000);
  std::vector<float> rows = fx.rows;
  for (int r = 0; r < 5; ++r) rows[r * 97 * 10] = 1250.0f;
  test::WriteText(fx.calib_csv, fx.Csv(rows, fx.n));
  for (auto m : {host::CalibrationMethod::kPercentile, host::CalibrationMethod::kMse}) {
    convert::Options o = OptionsFor(fx, m);
    o.float_fallback = false;   // the int8 input is the subject here,
    o.allow_over_goal = true;   // not the goals
    convert::Report report;
    std::string error;
    REQUIRE_MESSAGE(convert::Convert(o, &report, &error), error);
    // The standardized input keeps the flags and counts (most of the values)
    // accurate: outliers are clipped rather than stretching the scale.
    CHECK(report.input_equalization);
    for (const auto& l : report.layers) {
      if (l.name != "input.standardized") continue;
      CHECK(l.scale == doctest::Approx(1.0f / 127));
      CHECK(l.cosine > 0.999);
      CHECK(l.relative_rmse < 0.03);
    }
    // Outputs: per-row agreement with float on the fresh rows the int8
    // input can represent: every feature, standardized by the file's own
    // (equalized) mean and std, within the input's int8 range (half a step
    // of slack). A row beyond it is clipped by design (tools/convert/
    // RESULTS.md, issue 13b), and its error measures how much a random
    // network leans on that feature, not the standardisation: row 73's
    // f3 = 491.8 lies beyond the calibration range, and the 0 to 3 clipped
    // rows err by up to 0.21 over fixture seeds 21, 1021, ..., 19021.
    const auto bytes = test::ReadBytes(o.out_path);
    const fb::ModelT qm = Unpack(bytes);
    const int std_t = host::StandardizedInputTensor(qm);
    REQUIRE(std_t >= 0);
    const auto& iq = *qm.tensors[std_t]->quantization;
    const double lsb = iq.scale[0];
    const double z_lo = (-128 - iq.zero_point[0] - 0.5) * lsb, z_hi = (127 - iq.zero_point[0] + 0.5) * lsb;
    test::Loaded q(bytes, 0, MTAN_BACKEND_XNNPACK);
    test::Loaded f(test::ReadBytes(fx.float_model), 0, MTAN_BACKEND_XNNPACK);
    const auto fresh = test::RandomRows(77, 300);
    const auto yq = q.Run(fresh, 300, MTAN_ALL_TASKS), yf = f.Run(fresh, 300, MTAN_ALL_TASKS);
    std::vector<char> representable(300, 1);
    int kept = 0;
    for (int r = 0; r < 300; ++r) {
      for (size_t i = 0; i < qm.inputs.size(); ++i) {
        const double z = (fresh[r * 10 + i] - qm.inputs[i]->mean) / qm.inputs[i]->std;
        if (z < z_lo || z > z_hi) representable[r] = 0;
      }
      kept += representable[r];
    }
    // Ranges too narrow would clip many rows: 297 to 300 of the 300 are
    // representable over the 20 seeds (299 here).
    CHECK(kept >= 290);
    // The fixture's probabilities vary little (here each output spans 0.061
    // to 0.27 over these rows): the bound must sit well inside that spread.
    // The largest difference on the representable rows, over fixture seeds
    // 21, 1021, ..., 19021 (20 seeds, percentile and mse): 0.0030 to
    // 0.0121, 0.0073 at seed 21. 0.02 is 1.65x the largest, and below half
    // of the narrowest output's range on each of those seeds (0.0204 at
    // the least; checked here). Broken on purpose (seed 21, percentile): stds
    // 5% off give 0.027; price means off by a tenth of their equalized
    // half-width leave 16 rows representable.
    constexpr double kBound = 0.02;
    for (int k = 0; k < 5; ++k) {
      double max_p = 0, lo = 1, hi = 0;
      for (int r = 0; r < 300; ++r) {
        if (representable[r]) max_p = std::max(max_p, std::fabs(double(yq[r * 6 + k]) - yf[r * 6 + k]));
        lo = std::min(lo, double(yf[r * 6 + k]));
        hi = std::max(hi, double(yf[r * 6 + k]));
      }
      CHECK(max_p < kBound);
      CHECK(kBound < 0.5 * (hi - lo));
    }
  }
}

TEST_CASE("mtan-convert CLI: help, success, and a bad input's message and exit code") {
  test::Fixture fx;
  std::string out;
  const std::string tool = MTAN_CONVERT_BIN;
  CHECK(test::RunCommand(tool + " --help", &out) == 0);
  CHECK(out.find("--calibration") != std::string::npos);
  const std::string args = " --model " + fx.float_model + " --calib " + fx.calib_csv + " --spec " +
                           fx.spec_json + " --out " + fx.Path("cli.mtan");
  CHECK(test::RunCommand(tool + args + " --calibration minmax --report " + fx.Path("cli.json"), &out) == 0);
  CHECK(out.find("cosine") != std::string::npos);
  CHECK(out.find("calibrating on 640 rows") != std::string::npos);  // progress on stderr
  CHECK(test::FileExists(fx.Path("cli.mtan")));
  CHECK(test::FileExists(fx.Path("cli.json")));
  // Converting the int8 output again: refused, exit 1, nothing written.
  const std::string again = " --model " + fx.Path("cli.mtan") + " --calib " + fx.calib_csv +
                            " --spec " + fx.spec_json + " --out " + fx.Path("again.mtan");
  CHECK(test::RunCommand(tool + again, &out) == 1);
  CHECK(out.find("mtan-convert: error:") != std::string::npos);
  CHECK(out.find("already quantized") != std::string::npos);
  CHECK_FALSE(test::FileExists(fx.Path("again.mtan")));
  // The comparison switches: one scale for the raw inputs, int8 logits.
  // Checked in the written models, not only in the report's labels:
  // equalization rewrites each input's mean and std (the float model's stay
  // with --no-input-equalization); heads are float32 unless --int8-heads.
  const std::string no_out = " --model " + fx.float_model + " --calib " + fx.calib_csv +
                             " --spec " + fx.spec_json;
  CHECK(test::RunCommand(tool + no_out + " --out " + fx.Path("plain.mtan") + " --quiet" +
                             " --no-input-equalization --int8-heads --max-batch 48 --report " +
                             fx.Path("plain.json"), &out) == 0);
  CHECK(out.find("calibrating") == std::string::npos);  // --quiet
  const auto plain = nlohmann::json::parse(test::ReadText(fx.Path("plain.json")));
  CHECK(plain["calibration"]["input_equalization"] == "off");
  CHECK(plain["calibration"]["heads"] == "int8");
  const fb::ModelT f = Unpack(test::ReadBytes(fx.float_model));
  const fb::ModelT dflt = Unpack(test::ReadBytes(fx.Path("cli.mtan")));
  const fb::ModelT pm = Unpack(test::ReadBytes(fx.Path("plain.mtan")));
  CHECK(pm.max_batch == 48);  // --max-batch
  CHECK(Property(dflt, "calibration") == "minmax");  // --calibration minmax
  CHECK(Property(pm, "calibration_requested") == "auto");  // the default
  int moved = 0;
  for (size_t i = 0; i < f.inputs.size(); ++i) {
    CHECK(pm.inputs[i]->mean == f.inputs[i]->mean);
    CHECK(pm.inputs[i]->std == f.inputs[i]->std);
    moved += dflt.inputs[i]->mean != f.inputs[i]->mean || dflt.inputs[i]->std != f.inputs[i]->std;
  }
  // Prices and counts move; the 0/1 flags already span [-1, 1] standardised.
  CHECK(moved >= 6);
  auto head_dtype = [](const fb::ModelT& m, const std::string& task) {
    for (const auto& t : m.tensors)
      if (t->name == task + ".head") return t->dtype;
    FAIL("no tensor " << task << ".head");
    return fb::DType::INT32;
  };
  for (const char* task : {"click", "category", "spend"}) {
    CAPTURE(task);
    CHECK(head_dtype(dflt, task) == fb::DType::FLOAT32);
    CHECK(head_dtype(pm, task) == fb::DType::INT8);
  }
  CHECK(test::RunCommand(tool + args + " --calibration kl", &out) != 0);
  CHECK(out.find("kl") != std::string::npos);
}

TEST_CASE("goals: the policy's fractions, and the check rows' verdict with its standard error") {
  convert::GoalPolicy g;
  convert::TaskReport auc;
  auc.primary = "auc";
  auc.metrics = {{"auc", 0.80, 0.7995}};
  CHECK(convert::GoalFraction(auc, g) == doctest::Approx(0.5));
  g.auc_drop = 0.0002;
  CHECK(convert::GoalFraction(auc, g) == doctest::Approx(2.5));
  CHECK_FALSE(convert::GoalMet(auc, g));
  auc.loss_se = 0.0003;  // 2.5 goals measured, but 2 SE = 3 goals of noise
  CHECK(convert::GoalMet(auc, g));
  auc.expected = 1.2;  // expected over the goal: missed whatever the noise
  CHECK_FALSE(convert::GoalMet(auc, g));
  // The expected loss needs a margin of check_sigmas of its own errors.
  auc.expected = 0.8;
  CHECK(convert::GoalMet(auc, g));
  auc.expected_se = 0.15;  // 0.8 + 2 x 0.15 > 1
  CHECK_FALSE(convert::GoalMet(auc, g));
  auc.expected_se = 0.05;
  CHECK(convert::GoalMet(auc, g));
  g.check_sigmas = 5.0;  // 0.8 + 5 x 0.05 > 1 (and 2.5 measured < 1 + 5 SE)
  CHECK_FALSE(convert::GoalMet(auc, g));
  convert::TaskReport acc;
  acc.primary = "accuracy";
  acc.metrics = {{"accuracy", 0.50, 0.499}};
  CHECK(convert::GoalFraction(acc, convert::GoalPolicy{}) == doctest::Approx(0.5));
  convert::TaskReport nmse;
  nmse.primary = "nmse";
  nmse.metrics = {{"nmse", 0.40, 0.412}};
  CHECK(convert::GoalFraction(nmse, convert::GoalPolicy{}) == doctest::Approx(1.5));
  convert::GoalPolicy loose;
  loose.nmse_ratio = 1.06;
  CHECK(convert::GoalFraction(nmse, loose) == doctest::Approx(0.5));
  CHECK(convert::GoalLoss(fb::TaskKind::REGRESSION, loose) == doctest::Approx(0.06));
  CHECK(convert::GoalLoss(fb::TaskKind::BINARY, loose) == doctest::Approx(0.001));
}

TEST_CASE("a missed goal: no model unless allowed, the report either way") {
  test::Fixture fx;
  convert::Options o = OptionsFor(fx, host::CalibrationMethod::kMinMax);
  // Goals no 8-bit model can meet, and no fallback to reach them.
  o.goals.auc_drop = o.goals.accuracy_drop = 1e-9;
  o.goals.nmse_ratio = 1.0 + 1e-9;
  o.float_fallback = false;
  convert::Report report;
  std::string error;
  REQUIRE_MESSAGE(convert::Convert(o, &report, &error), error);
  CHECK_FALSE(report.goals_met);
  CHECK_FALSE(report.written);
  CHECK_FALSE(test::FileExists(o.out_path));
  const auto j = nlohmann::json::parse(test::ReadText(o.report_path));
  CHECK(j["goals"]["met"] == false);
  CHECK(j["goals"]["written"] == false);
  CHECK(j["goals"]["auc_drop"] == doctest::Approx(1e-9));
  CHECK(convert::ReportTable(report).find("OVER GOAL") != std::string::npos);

  o.allow_over_goal = true;
  REQUIRE_MESSAGE(convert::Convert(o, &report, &error), error);
  CHECK_FALSE(report.goals_met);
  CHECK(report.written);
  const fb::ModelT q = Unpack(test::ReadBytes(o.out_path));
  CHECK(Property(q, "goals") == "missed");

  // Nonsense goals are refused up front.
  std::remove(o.out_path.c_str());
  std::remove(o.report_path.c_str());
  o.goals.nmse_ratio = 0.9;
  ExpectFailure(o, "NMSE ratio > 1");
}

TEST_CASE("float fallback: the most sensitive layers stay float until the expected loss is within the aim") {
  test::Fixture fx(5);
  convert::Options o = OptionsFor(fx, host::CalibrationMethod::kMinMax);
  o.goals.aim = 0.01;  // an aim int8 alone cannot reach on this model
  o.allow_over_goal = true;
  convert::Report report;
  std::string error;
  REQUIRE_MESSAGE(convert::Convert(o, &report, &error), error);
  REQUIRE_FALSE(report.fallback.empty());
  double worst = 0;
  for (const auto& t : report.fit_tasks) worst = std::max(worst, t.expected);
  CHECK(worst <= 0.01);
  const auto bytes = test::ReadBytes(o.out_path);
  const fb::ModelT q = Unpack(bytes);
  std::string names;
  int64_t added = 0;
  for (const auto& fr : report.fallback) {
    CAPTURE(fr.name);
    names += (names.empty() ? "" : ",") + fr.name;
    added += fr.added_bytes;
    bool found = false;
    for (const auto& t : q.tensors) {
      if (t->name != fr.name) continue;
      found = true;
      CHECK(t->dtype == fb::DType::FLOAT32);
    }
    CHECK(found);
    CHECK(fr.sensitivity > 0);
  }
  CHECK(Property(q, "float_fallback") == names);
  // Float weights cost bytes: a float FULLY_CONNECTED 3 more bytes per
  // weight, less the 4-byte scale per row, give or take the structure
  // around it: at most one QUANTIZE or DEQUANTIZE (with its tensor, ~120 B
  // here) at its input and one at its output, which depend on whether its
  // neighbours are float too, and its output's int8 parameters (~50 B).
  // The layers are small (trunk0.fc1's 10x32 weights: 832 B), so that
  // structure is up to a third of the formula and a relative tolerance
  // holds only for some draws. Measured, minus the formula, over fixture
  // seeds 5, 1005, ..., 29005 with both the old std::normal_distribution
  // and the host::Rng weights (133 FULLY_CONNECTED fallbacks): -304 B
  // (trunk0.fc1 with float neighbours, which in int8 would need both
  // conversions) to +192 B (in float between int8 layers); -288 B here.
  // 320 B is both conversions and the parameters with a little margin. It
  // still fails a wrong count on this seed's trunk0.fc1 and trunk0.fc2:
  // 0 bytes, or the float weights' 4 B each without the int8 ones taken off.
  // Other operators add no weights: -144 to +464 B over the 143 others
  // (an ATTENTION_POOL's conversions on its inputs and its output).
  constexpr int64_t kStructureBytes = 320;
  const fb::ModelT f = Unpack(test::ReadBytes(fx.float_model));
  for (const auto& fr : report.fallback) {
    CAPTURE(fr.name);
    for (const auto& op : f.operators) {
      if (f.tensors[op->outputs[0]]->name != fr.name) continue;
      if (op->opcode == fb::OpCode::FULLY_CONNECTED) {
        const auto& w = f.tensors[op->inputs[1]]->shape;
        const int64_t weights = 3 * w[0] * w[1] - 4 * w[0];
        CAPTURE(weights);
        CHECK(std::abs(fr.added_bytes - weights) <= kStructureBytes);
      } else {
        CHECK(std::abs(fr.added_bytes) < 512);
      }
    }
  }
  CHECK(report.fallback_bytes > 0);
  CHECK(report.fallback_bytes >= added - 512);
  // Mixed precision passes its self-test on both backends.
  for (mtan_backend b : {MTAN_BACKEND_XNNPACK, MTAN_BACKEND_REFERENCE}) {
    host::RuntimeModel rt;
    REQUIRE(rt.Load(bytes, 0, b, &error) == MTAN_OK);
    CHECK(mtan_self_test(rt.get()) == MTAN_OK);
  }
  const auto j = nlohmann::json::parse(test::ReadText(o.report_path));
  CHECK(j["float_fallback"]["layers"].size() == report.fallback.size());
  CHECK(j["float_fallback"]["bytes"] == report.fallback_bytes);
}

TEST_CASE("--check rows: the goals are judged on another file, calibration uses every --calib row") {
  test::Fixture fx;
  convert::Options o = OptionsFor(fx, host::CalibrationMethod::kPercentile);
  o.check_path = fx.test_csv;
  o.allow_over_goal = true;
  SUBCASE("a check file that does not match the model") {
    test::WriteText(fx.test_csv, "a,b\n1,2\n");
    ExpectFailure(o, "test.csv");
    return;
  }
  convert::Report report;
  std::string error;
  REQUIRE_MESSAGE(convert::Convert(o, &report, &error), error);
  host::Spec spec;
  host::Dataset test_rows;
  REQUIRE(host::LoadSpec(fx.spec_json, &spec, &error));
  REQUIRE(host::LoadCsv(fx.test_csv, spec, &test_rows, &error));
  CHECK(report.calibration_rows == fx.n);
  CHECK(report.check_rows == test_rows.rows);
  CHECK(report.check_source == fx.test_csv);
  for (size_t t = 0; t < report.tasks.size(); ++t) CHECK(report.tasks[t].rows == test_rows.labels[t].observed_rows);
}

TEST_CASE("too few calibration rows to hold any out") {
  test::Fixture fx;
  convert::Options o = OptionsFor(fx, host::CalibrationMethod::kMinMax);
  test::WriteText(fx.calib_csv, fx.Csv(fx.rows, 4));
  ExpectFailure(o, "too few to hold out");
  o.check_path = fx.test_csv;  // with a check file, 4 rows calibrate
  convert::Report report;
  std::string error;
  CHECK_MESSAGE(convert::Convert(o, &report, &error), error);
}

TEST_CASE("mtan-convert CLI: a missed goal exits 2 and writes no model; --allow-over-goal writes and warns") {
  test::Fixture fx;
  std::string out;
  const std::string tool = MTAN_CONVERT_BIN;
  const std::string args = " --model " + fx.float_model + " --calib " + fx.calib_csv + " --spec " +
                           fx.spec_json + " --out " + fx.Path("cli.mtan") + " --report " + fx.Path("cli.json") +
                           " --calibration minmax --no-float-fallback --max-auc-drop 1e-9 --max-accuracy-drop 1e-7"
                           " --max-nmse-ratio 1.000000001";
  CHECK(test::RunCommand(tool + args, &out) == 2);
  CHECK(out.find("OVER GOAL") != std::string::npos);
  CHECK(out.find("no model written") != std::string::npos);
  CHECK_FALSE(test::FileExists(fx.Path("cli.mtan")));
  CHECK(test::FileExists(fx.Path("cli.json")));
  CHECK(test::RunCommand(tool + args + " --allow-over-goal", &out) == 0);
  CHECK(out.find("WARNING") != std::string::npos);
  CHECK(test::FileExists(fx.Path("cli.mtan")));
  const auto j = nlohmann::json::parse(test::ReadText(fx.Path("cli.json")));
  CHECK(j["goals"]["accuracy_drop"] == doctest::Approx(1e-9));  // points / 100
  CHECK(j["goals"]["met"] == false);
  CHECK(j["goals"]["written"] == true);
  // The other switches reach the report.
  CHECK(test::RunCommand(tool + " --model " + fx.float_model + " --calib " + fx.calib_csv + " --spec " +
                             fx.spec_json + " --out " + fx.Path("b.mtan") + " --report " + fx.Path("b.json") +
                             " --quiet --no-bias-correction --aim 0.9 --allow-over-goal --check " + fx.test_csv,
                         &out) == 0);
  const auto b = nlohmann::json::parse(test::ReadText(fx.Path("b.json")));
  CHECK(b["calibration"]["bias_correction"] == false);
  CHECK(b["goals"]["aim"] == doctest::Approx(0.9));
  CHECK(b["goals"]["check_source"] == fx.test_csv);
  CHECK(test::RunCommand(tool + args + " --aim 0", &out) != 0);
  CHECK(test::RunCommand(tool + args + " --max-auc-drop -1", &out) != 0);
}
