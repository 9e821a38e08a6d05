// The converter's search (tools/convert/search.h): the expected loss, the
// per-slot range search, bias correction and the sensitivity ranking, on a
// small model whose labels are drawn from its own outputs.
#include <algorithm>
#include <cmath>
#include <set>

#include "calibrate.h"
#include "doctest/doctest.h"
#include "fixture.h"
#include "metrics.h"
#include "search.h"

using namespace mtan;

namespace {

struct Setup {
  test::Fixture fx{9};
  std::vector<uint8_t> file;
  fb::ModelT f;
  host::Spec spec;
  host::Dataset rows;
  std::vector<int32_t> tasks;
  std::vector<std::vector<float>> values;
  convert::Scorer scorer;

  Setup() {
    std::string error;
    file = test::ReadBytes(fx.float_model);
    REQUIRE(host::UnpackModel(host::ModelBytes(file), &f, &error));
    REQUIRE(host::LoadSpec(fx.spec_json, &spec, &error));
    REQUIRE(host::LoadCsv(fx.calib_csv, spec, &rows, &error));
    host::RuntimeModel rt;
    REQUIRE(rt.Load(file, 64, MTAN_BACKEND_DEFAULT, &error) == MTAN_OK);
    REQUIRE(host::MatchInputs(rt.get(), fx.calib_csv, &rows, &error));
    REQUIRE(host::MatchTasks(rt.get(), spec, &tasks, &error));
    REQUIRE(host::CollectActivations(f, rows.x, static_cast<uint32_t>(rows.rows), &values, &error));
    REQUIRE_MESSAGE(scorer.Init(file, spec, rows, tasks, {0.001, 0.002, 0.02}, &error), error);
  }
  fb::ModelT Quantize(const std::vector<host::Range>& ranges, const std::vector<char>& float_ops = {}) {
    host::QuantizeOptions o;
    o.float_heads = true;
    o.float_ops = float_ops;
    std::vector<host::Range> r = ranges;
    r.resize(f.tensors.size());
    return host::QuantizeModel(f, r, o);
  }
  int Op(const std::string& output) const {
    for (size_t o = 0; o < f.operators.size(); ++o)
      if (f.tensors[f.operators[o]->outputs[0]]->name == output) return static_cast<int>(o);
    FAIL("no operator writes " << output);
    return -1;
  }
};

}  // namespace

TEST_CASE("expected loss: none for the float model, more for a worse calibration") {
  Setup s;
  std::string error;
  std::vector<double> loss;
  fb::ModelT same = s.f;
  REQUIRE(s.scorer.ExpectedLoss(same, &loss, &error));
  for (double l : loss) CHECK(l == doctest::Approx(0.0).epsilon(1e-12));

  const auto minmax = host::CalibrateRanges(s.values, host::CalibrationMethod::kMinMax);
  auto coarse = minmax;  // ranges 8x too wide: 3 bits fewer
  for (auto& r : coarse) r = {8 * r.min, 8 * r.max};
  fb::ModelT a = s.Quantize(minmax), b = s.Quantize(coarse);
  std::vector<double> la, lb;
  REQUIRE(s.scorer.ExpectedLoss(a, &la, &error));
  REQUIRE(s.scorer.ExpectedLoss(b, &lb, &error));
  double ta = 0, tb = 0;
  for (size_t t = 0; t < la.size(); ++t) {
    CHECK(la[t] >= -1e-9);  // float's own predictions are the truth: int8 can only lose
    ta += s.scorer.Fractions(la)[t];
    tb += s.scorer.Fractions(lb)[t];
  }
  CHECK(tb > ta);
  // Fractions are losses over the goals given to Init.
  CHECK(s.scorer.Fractions({0.0005, 0.001, 0.01})[0] == doctest::Approx(0.5));
  CHECK(s.scorer.Fractions({0.0005, 0.001, 0.01})[2] == doctest::Approx(0.5));
  // The metrics are the evaluator's, on the same rows.
  std::vector<host::TaskEvaluation> m;
  REQUIRE(s.scorer.Metrics(a, &m, &error));
  host::RuntimeModel rt;
  REQUIRE(rt.Load(host::FinishModel(a, 64), 0, MTAN_BACKEND_DEFAULT, &error) == MTAN_OK);
  std::vector<host::TaskEvaluation> direct;
  REQUIRE(host::EvaluateModel(rt, s.spec, s.rows, s.tasks, -1, &direct, &error));
  CHECK(host::MetricValue(m[0], "auc") == host::MetricValue(direct[0], "auc"));
}

TEST_CASE("the expected AUC weighs pairs by the float probabilities") {
  // A pair count weighted p_i (1 - p_j), ties counted half: checked
  // against the O(n^2) sum.
  Setup s;
  std::string error;
  // The expected AUC of the float model against itself is a property of
  // its probabilities; computed here by brute force from the same outputs.
  host::RuntimeModel rt;
  REQUIRE(rt.Load(s.file, 64, MTAN_BACKEND_DEFAULT, &error) == MTAN_OK);
  std::vector<std::vector<float>> out;
  REQUIRE(host::PredictModelSpace(rt, s.spec, s.rows, s.tasks, -1, &out, &error));
  const auto& p = out[0];
  // An int8 candidate with int8 logits: its scores reorder some pairs and
  // tie many (one logit step).
  fb::ModelT a = host::QuantizeModel(s.f, host::CalibrateRanges(s.values, host::CalibrationMethod::kMinMax));
  host::RuntimeModel qa;
  REQUIRE(qa.Load(host::FinishModel(a, 64), 0, MTAN_BACKEND_DEFAULT, &error) == MTAN_OK);
  std::vector<std::vector<float>> qout;
  REQUIRE(host::PredictModelSpace(qa, s.spec, s.rows, s.tasks, -1, &qout, &error));
  auto brute = [&](const std::vector<float>& score) {
    double num = 0, den = 0;
    for (size_t i = 0; i < p.size(); ++i)
      for (size_t j = 0; j < p.size(); ++j) {
        if (i == j) continue;
        const double w = static_cast<double>(p[i]) * (1.0 - p[j]);
        den += w;
        num += w * (score[i] > score[j] ? 1.0 : score[i] == score[j] ? 0.5 : 0.0);
      }
    return num / den;
  };
  std::set<float> distinct(qout[0].begin(), qout[0].end());
  CHECK(distinct.size() < qout[0].size() / 2);
  std::vector<double> loss;
  REQUIRE(s.scorer.ExpectedLoss(a, &loss, &error));
  CHECK(loss[0] == doctest::Approx(brute(p) - brute(qout[0])).epsilon(1e-6));
}

TEST_CASE("Compare: paired bootstrap errors, zero against itself") {
  Setup s;
  std::string error;
  std::vector<host::TaskEvaluation> m;
  std::vector<double> se;
  fb::ModelT same = s.f;
  REQUIRE(s.scorer.Compare(same, 50, &m, &se, &error));
  for (double v : se) CHECK(v == doctest::Approx(0.0));
  fb::ModelT a = s.Quantize(host::CalibrateRanges(s.values, host::CalibrationMethod::kMinMax));
  REQUIRE(s.scorer.Compare(a, 50, &m, &se, &error));
  for (double v : se) {
    CHECK(std::isfinite(v));
    CHECK(v > 0.0);
  }
  CHECK(convert::PrimaryLoss(fb::TaskKind::REGRESSION, 0.5, 0.51) == doctest::Approx(0.02));
  CHECK(convert::PrimaryLoss(fb::TaskKind::BINARY, 0.8, 0.79) == doctest::Approx(0.01));
}

TEST_CASE("range search: every slot ends on the candidate that costs least") {
  Setup s;
  std::string error;
  // Candidate 0: min/max ranges. Candidate 1: ranges 20x too narrow, which
  // clip nearly every value. Starting from all 1, the search must move the
  // slots that matter to 0.
  const auto good = host::CalibrateRanges(s.values, host::CalibrationMethod::kMinMax);
  auto bad = good;
  for (auto& r : bad) r = {r.min / 20, r.max / 20};
  std::vector<int32_t> slots;
  for (const auto& op : s.f.operators)
    if (op->opcode == fb::OpCode::FULLY_CONNECTED) slots.push_back(op->outputs[0]);
  auto build = [&](const std::vector<int>& choice) {
    auto r = good;
    for (size_t k = 0; k < slots.size(); ++k) r[slots[k]] = (choice[k] ? bad : good)[slots[k]];
    return s.Quantize(r);
  };
  std::vector<int> choice(slots.size(), 1);
  std::vector<double> start;
  fb::ModelT q = build(choice);
  REQUIRE(s.scorer.Expected(q, &start, &error));
  double objective = 0;
  const int64_t before = s.scorer.evaluations();
  REQUIRE(convert::SearchRanges(s.scorer, build, slots.size(), 2, 2, &choice, &objective, &error));
  CHECK(objective < convert::Total(start));
  CHECK(s.scorer.evaluations() - before >= static_cast<int64_t>(slots.size()) + 1);
  // The trunk feeds every task: its ranges must be the good ones.
  for (size_t k = 0; k < slots.size(); ++k) {
    CAPTURE(s.f.tensors[slots[k]]->name);
    if (s.f.tensors[slots[k]]->name.rfind("trunk0.", 0) == 0) CHECK(choice[k] == 0);
  }
  fb::ModelT end = build(choice);
  std::vector<double> e;
  REQUIRE(s.scorer.Expected(end, &e, &error));
  CHECK(convert::Total(e) == doctest::Approx(objective));
}

TEST_CASE("bias correction: every layer's mean pre-activation output matches float again") {
  Setup s;
  std::string error;
  const auto ranges = host::CalibrateRanges(s.values, host::CalibrationMethod::kMse);
  auto quantize = [&](const fb::ModelT& fm) {
    host::QuantizeOptions o;
    o.float_heads = true;
    auto r = ranges;
    r.resize(fm.tensors.size());
    return host::QuantizeModel(fm, r, o);
  };
  const float* x = s.rows.x.data();
  const uint32_t n = static_cast<uint32_t>(s.rows.rows);
  std::vector<std::vector<double>> float_means, before, after;
  REQUIRE(convert::ChannelMeans(s.f, x, n, &float_means, &error));
  REQUIRE(convert::ChannelMeans(quantize(s.f), x, n, &before, &error));
  fb::ModelT corrected = s.f;
  double largest = 0;
  REQUIRE(convert::CorrectBiases(&corrected, quantize, x, n, &largest, &error));
  CHECK(largest > 0);
  const fb::ModelT q_after = quantize(corrected);
  REQUIRE(convert::ChannelMeans(q_after, x, n, &after, &error));
  // Layers without ReLU show their pre-activation mean: the attention
  // scores and the heads (float, on dequantized inputs).
  int checked = 0;
  for (const auto& op : s.f.operators) {
    if (op->opcode != fb::OpCode::FULLY_CONNECTED || op->activation == fb::Activation::RELU) continue;
    const int32_t y = op->outputs[0];
    CAPTURE(s.f.tensors[y]->name);
    double err_before = 0, err_after = 0;
    for (size_t c = 0; c < float_means[y].size(); ++c) {
      err_before += std::fabs(before[y][c] - float_means[y][c]);
      err_after += std::fabs(after[y][c] - float_means[y][c]);
    }
    // Within the int8 output's rounding of the mean (an LSB / 10) or 10x better.
    const auto& q = q_after.tensors[y]->quantization;
    const double lsb = q && !q->scale.empty() ? q->scale[0] : 0.0;
    CHECK(err_after <= std::max(0.1 * err_before, 0.1 * lsb * float_means[y].size() + 1e-6));
    ++checked;
  }
  CHECK(checked >= 10);
  // Shared cross-attention biases got one copy per operator.
  std::set<int32_t> biases;
  for (const auto& op : corrected.operators)
    if (op->opcode == fb::OpCode::FULLY_CONNECTED) CHECK(biases.insert(op->inputs[2]).second);
}

TEST_CASE("sensitivity: the operator whose int8 version is broken ranks first") {
  Setup s;
  std::string error;
  auto ranges = host::CalibrateRanges(s.values, host::CalibrationMethod::kMinMax);
  const int op = s.Op("category.task");
  const int32_t y = s.f.operators[op]->outputs[0];
  ranges[y] = {ranges[y].min / 50, ranges[y].max / 50};  // clips nearly everything
  std::vector<int> candidates;
  for (size_t o = 0; o < s.f.operators.size(); ++o)
    if (s.f.operators[o]->opcode == fb::OpCode::FULLY_CONNECTED) candidates.push_back(static_cast<int>(o));
  std::vector<convert::Sensitivity> ranking;
  auto build = [&](const std::vector<char>& float_ops) { return s.Quantize(ranges, float_ops); };
  REQUIRE(convert::RankSensitivity(s.scorer, build, s.f.operators.size(), candidates, {1}, &ranking, &error));
  REQUIRE(ranking.size() == candidates.size());
  CHECK(ranking[0].op == op);
  for (size_t k = 1; k < ranking.size(); ++k) CHECK(ranking[k - 1].score >= ranking[k].score);
  // Only category was scored: a layer only click's output reads costs it nothing.
  for (const auto& r : ranking)
    if (r.op == s.Op("click.att.click.fc")) CHECK(r.score == doctest::Approx(0.0).epsilon(1e-9));
}

TEST_CASE("expected loss: the regression distortion is averaged over every row, labelled or not") {
  // spend is labelled on every other row (fixture.cc): the distortion
  // (q - f)^2 counts on all rows, float's squared error on the labelled ones.
  Setup s;
  std::string error;
  REQUIRE(s.rows.labels[2].observed_rows < s.rows.rows);
  fb::ModelT q = s.Quantize(host::CalibrateRanges(s.values, host::CalibrationMethod::kPercentile));
  std::vector<std::vector<float>> fo, qo;
  {
    host::RuntimeModel rf, rq;
    REQUIRE(rf.Load(s.file, 64, MTAN_BACKEND_DEFAULT, &error) == MTAN_OK);
    REQUIRE(rq.Load(host::FinishModel(q, 64), 0, MTAN_BACKEND_DEFAULT, &error) == MTAN_OK);
    REQUIRE(host::PredictModelSpace(rf, s.spec, s.rows, s.tasks, -1, &fo, &error));
    REQUIRE(host::PredictModelSpace(rq, s.spec, s.rows, s.tasks, -1, &qo, &error));
  }
  double d = 0, sse = 0;
  const auto& l = s.rows.labels[2];
  for (size_t r = 0; r < l.observed.size(); ++r) {
    d += (qo[2][r] - fo[2][r]) * static_cast<double>(qo[2][r] - fo[2][r]);
    if (l.observed[r]) sse += (l.value[r] - fo[2][r]) * static_cast<double>(l.value[r] - fo[2][r]);
  }
  const double want = (d / static_cast<double>(s.rows.rows)) / (sse / static_cast<double>(l.observed_rows));
  std::vector<double> loss;
  REQUIRE(s.scorer.ExpectedLoss(q, &loss, &error));
  REQUIRE(want > 0);
  CHECK(loss[2] == doctest::Approx(want).epsilon(1e-6));

  // Tail rows (every 3rd here) count for the regression's distortion only:
  // the other tasks score as if they were not there, float's squared error
  // leaves them out too.
  std::vector<char> tail(static_cast<size_t>(s.rows.rows), 0);
  host::Dataset rest;
  rest.features = s.rows.features;
  rest.labels.resize(s.rows.labels.size());
  const size_t nf = s.rows.features.size();
  double sse_rest = 0, labelled_rest = 0;
  for (size_t r = 0; r < tail.size(); ++r) {
    tail[r] = r % 3 == 0;
    if (tail[r]) continue;
    ++rest.rows;
    rest.x.insert(rest.x.end(), s.rows.x.begin() + r * nf, s.rows.x.begin() + (r + 1) * nf);
    for (size_t t = 0; t < s.rows.labels.size(); ++t) {
      rest.labels[t].value.push_back(s.rows.labels[t].value[r]);
      rest.labels[t].observed.push_back(s.rows.labels[t].observed[r]);
      rest.labels[t].observed_rows += s.rows.labels[t].observed[r];
    }
    if (l.observed[r]) {
      sse_rest += (l.value[r] - fo[2][r]) * static_cast<double>(l.value[r] - fo[2][r]);
      ++labelled_rest;
    }
  }
  convert::Scorer with_tail, without;
  REQUIRE(with_tail.Init(s.file, s.spec, s.rows, s.tasks, {0.001, 0.002, 0.02}, &error, tail));
  REQUIRE(without.Init(s.file, s.spec, rest, s.tasks, {0.001, 0.002, 0.02}, &error));
  std::vector<double> lt, lw;
  REQUIRE(with_tail.ExpectedLoss(q, &lt, &error));
  REQUIRE(without.ExpectedLoss(q, &lw, &error));
  // Relative comparisons (scale 0): the losses are of the order of 1e-5.
  CHECK(lt[0] == doctest::Approx(lw[0]).epsilon(1e-9).scale(0));
  CHECK(lt[1] == doctest::Approx(lw[1]).epsilon(1e-9).scale(0));
  CHECK(lt[0] != doctest::Approx(loss[0]).epsilon(1e-9).scale(0));  // the tail rows did change them
  CHECK(lt[2] == doctest::Approx((d / static_cast<double>(s.rows.rows)) / (sse_rest / labelled_rest)).epsilon(1e-6));
}

TEST_CASE("ExpectedWithError: the expected fractions, and their bootstrap errors") {
  Setup s;
  std::string error;
  std::vector<double> frac, se;
  fb::ModelT same = s.f;
  REQUIRE(s.scorer.ExpectedWithError(same, 50, &frac, &se, &error));
  for (size_t t = 0; t < frac.size(); ++t) {
    CHECK(frac[t] == doctest::Approx(0.0));
    CHECK(se[t] == doctest::Approx(0.0));
  }
  fb::ModelT q = s.Quantize(host::CalibrateRanges(s.values, host::CalibrationMethod::kMinMax));
  std::vector<double> plain;
  REQUIRE(s.scorer.Expected(q, &plain, &error));
  REQUIRE(s.scorer.ExpectedWithError(q, 100, &frac, &se, &error));
  for (size_t t = 0; t < frac.size(); ++t) {
    CAPTURE(t);
    CHECK(frac[t] == doctest::Approx(plain[t]));
    CHECK(se[t] > 0.0);
    CHECK(se[t] < std::max(1.0, 2 * frac[t]));  // an error, not a second loss
  }
  REQUIRE(s.scorer.ExpectedWithError(q, 1, &frac, &se, &error));
  for (double v : se) CHECK(std::isnan(v));
}

TEST_CASE("search rows: the first rows, every feature's extremes, and labels for every task") {
  host::Dataset d;
  d.rows = 100;
  d.features = {"a", "b"};
  for (int r = 0; r < 100; ++r) {
    d.x.push_back(static_cast<float>(r % 10));  // a: 0..9
    d.x.push_back(0.0f);                        // b: 0 but for two rows
  }
  d.x[60 * 2 + 1] = 50.0f;
  d.x[70 * 2 + 1] = -50.0f;
  host::TaskLabels rare;  // labelled on rows 80, 90 only
  rare.value.assign(100, 0.0f);
  rare.observed.assign(100, 0);
  rare.observed[80] = rare.observed[90] = 1;
  rare.observed_rows = 2;
  d.labels.push_back(rare);
  convert::SearchRowCounts c;
  c.first = 10;
  c.labels = 1;
  c.tail = 1;
  std::vector<char> tail;
  const std::vector<uint32_t> rows = convert::SearchRows(d, c, &tail);
  CAPTURE(rows.size());
  REQUIRE(tail.size() == rows.size());
  for (size_t k = 0; k < rows.size(); ++k) CHECK(tail[k] == (rows[k] == 60 || rows[k] == 70 ? 1 : 0));
  CHECK(std::is_sorted(rows.begin(), rows.end()));
  for (uint32_t r = 0; r < 10; ++r) CHECK(std::count(rows.begin(), rows.end(), r) == 1);
  CHECK(std::count(rows.begin(), rows.end(), 60u) == 1);  // b's largest: a tail row
  CHECK(std::count(rows.begin(), rows.end(), 70u) == 1);  // b's smallest: a tail row
  CHECK(std::count(rows.begin(), rows.end(), 80u) == 1);  // the first label of `rare`
  CHECK(std::count(rows.begin(), rows.end(), 90u) == 0);  // one was asked for
  // a's extremes (0 and 9) are among the first rows already: nothing else.
  CHECK(rows.size() == 13);
  c.tail = 0;
  CHECK(convert::SearchRows(d, c).size() == 11);
}

TEST_CASE("float fallback: the cheapest trial that clears the aim, else the most excess removed per byte") {
  using convert::FallbackTrial;
  CHECK(convert::PickFallback({}, 1.0) == -1);
  // Two clear the aim: the smaller wins, whatever the order or the excess of others.
  CHECK(convert::PickFallback({{1, 0.5, 100}, {2, 0.0, 90000}, {3, 0.0, 3000}}, 1.0) == 3);
  // None clears it: 0.6 removed for 3 KB beats 0.9 for 90 KB.
  CHECK(convert::PickFallback({{1, 0.1, 90000}, {2, 0.4, 3000}}, 1.0) == 2);
  // None removes any: the one that leaves the least.
  CHECK(convert::PickFallback({{1, 1.5, 10}, {2, 1.2, 90000}}, 1.0) == 2);
}
