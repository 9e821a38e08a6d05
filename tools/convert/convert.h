// mtan-convert's pipeline, apart from its command line so that the tests can
// run it directly: float .mtan + labelled calibration CSV -> int8 .mtan with
// plans, memory plan, arena size, metadata and golden cases, plus a report
// of what quantization cost per task and per layer.
#pragma once

#include <cstdint>
#include <functional>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "calibrate.h"
#include "evaluate.h"
#include "model_io.h"

namespace mtan::convert {

// The goals an int8 model must meet on every task, against its float source,
// and how the search aims at them. One policy: mtan-convert's --max-* options
// set it, the search aims at it, the check judges by it.
struct GoalPolicy {
  double auc_drop = 0.001;       // binary: AUC may fall by at most this
  double accuracy_drop = 0.002;  // multiclass: accuracy (a fraction) may fall by at most this
  double nmse_ratio = 1.02;      // regression: NMSE may grow to at most this times float's
  // The search and the float fallback stop once every task's expected loss
  // (Scorer::Expected) is at most this fraction of its goal, leaving room for
  // the sampling noise of rows they did not see (the check rows, a test set).
  double aim = 0.5;
  // The verdict on the check rows, which decides whether the model is
  // written. A task meets its goal when both hold:
  //  - the upper confidence bound of its expected loss, expected +
  //    check_sigmas standard errors (bootstrap over the check rows), is
  //    within the goal: the loss on other rows drawn alike (a test set) is
  //    then within the goal with ~97.7 % confidence (one-sided, 2 sigma),
  //    and a task whose expected loss rests on a few rare rows (a wide
  //    error) fails instead of passing by the luck of the sample;
  //  - its measured loss (labels) is not over the goal by more than
  //    check_sigmas standard errors: a check that the expected loss, which
  //    takes float's outputs as the truth, has not missed a real loss. The
  //    measured loss alone cannot be bounded from above: with 10 000 rows its
  //    error is 0.1-0.9 goals of label noise (tools/convert/RESULTS.md).
  double check_sigmas = 2.0;
};

struct Options {
  std::string model_path;   // float32 .mtan (mtan-train's output)
  std::string calib_path;   // labelled CSV: calibration rows
  std::string check_path;   // labelled CSV the goals are judged on; empty: every 5th calibration row
  std::string spec_path;    // task spec JSON
  std::string out_path;     // int8 .mtan, written atomically
  std::string report_path;  // optional JSON report, written atomically
  // kAuto: each tensor's range chosen among minmax, percentile and mse by
  // the task outputs (SearchRanges); otherwise that one method everywhere.
  host::CalibrationMethod method = host::CalibrationMethod::kAuto;
  double percentile = host::kDefaultPercentile;
  uint32_t max_batch = 0;  // 0: the source model's
  // Rescale each raw feature to its own calibrated range (EqualizeInputs).
  bool equalize_inputs = true;
  // Run each task's last layer in float (QuantizeOptions::float_heads): the
  // 8-bit rounding of the logits alone cost 0.0004 purchase AUC on the
  // synthetic test set (tools/convert/RESULTS.md).
  bool float_heads = true;
  bool bias_correction = true;  // CorrectBiases
  bool float_fallback = true;   // keep the most sensitive layers in float until the goals hold
  GoalPolicy goals;
  // Write the model even when a goal is missed on the check rows (with a
  // warning in the report); without it Convert writes no model then.
  bool allow_over_goal = false;
  int golden_cases = 6;
  int golden_rows = 4;  // per case
  // Progress lines (calibration, candidates); nullptr for silence.
  std::function<void(const std::string&)> progress;
};

// One metric of one task, float against int8.
struct MetricDelta {
  std::string name;
  double float_value = 0, int8_value = 0;
  double delta() const { return int8_value - float_value; }
};

struct TaskReport {
  std::string name;
  std::string kind;
  int64_t rows = 0;
  std::string primary;  // auc, accuracy or nmse
  std::vector<MetricDelta> metrics;
  // Paired bootstrap standard error of the primary metric's loss (float -
  // int8, or the NMSE ratio int8/float), on the check rows only; else NaN.
  double loss_se = std::numeric_limits<double>::quiet_NaN();
  // The loss the outputs' distortion on these rows is expected to cost, as a
  // fraction of the goal (Scorer::Expected); NaN if not measured.
  double expected = std::numeric_limits<double>::quiet_NaN();
  // Bootstrap standard error of `expected` (check rows only); else NaN.
  double expected_se = std::numeric_limits<double>::quiet_NaN();
};

// Float against int8 activations of one tensor over the calibration rows.
struct LayerReport {
  std::string name;
  std::string dtype;  // of the int8 model's tensor: "int8" or "float32"
  std::string range;  // the calibration that set its int8 range ("fixed" for LOGISTIC/TANH)
  uint32_t channels = 0;
  float scale = 0;
  int32_t zero_point = 0;
  double cosine = 0;         // of the flattened float and dequantized int8 values
  double relative_rmse = 0;  // RMSE(int8 - float) / RMS(float)
  double saturated = 0;      // fraction of float values outside the int8 range (clipped)
};

struct CandidateReport {
  std::string method;
  double score = 0;     // worst task's measured loss as a fraction of its goal (fit rows)
  double expected = 0;  // expected losses summed over tasks, in goals (search rows)
  std::vector<TaskReport> tasks;
};

// One operator kept in float by the fallback, and what that costs.
struct FallbackReport {
  std::string name;         // its output tensor
  double sensitivity = 0;   // expected loss (in goals) of the failing tasks with only it in int8
  int64_t added_bytes = 0;  // file bytes it adds over int8
};

struct Report {
  std::string source_hash;  // Checksum64 of the source file, 16 hex digits
  std::string method;       // the calibration used: minmax, percentile, mse or per-tensor
  std::string requested;    // what was asked for
  int64_t calibration_rows = 0;  // rows the ranges, biases and search were fitted on
  int64_t check_rows = 0;        // rows the goals were judged on (none of the above)
  std::string check_source;      // "every 5th calibration row" or the --check file
  bool input_equalization = false;
  std::vector<std::pair<std::string, std::string>> input_ranges;  // feature, calibration of its range
  bool float_heads = false;
  bool bias_correction = false;      // applied (it is kept only when it lowers the expected loss)
  double bias_correction_gain = 0;   // total expected loss before / after
  std::vector<CandidateReport> candidates;  // every one-method calibration tried
  std::vector<TaskReport> fit_tasks;  // the chosen model on the calibration rows
  std::vector<TaskReport> tasks;      // ... and on the check rows: what the goals are judged on
  std::vector<FallbackReport> fallback;
  int64_t fallback_bytes = 0;  // file bytes of all the fallbacks together (with their QUANTIZE/DEQUANTIZE)
  GoalPolicy goals;
  bool goals_met = false;
  bool written = false;  // the model file was written (goals met, or allowed over goal)
  std::vector<LayerReport> layers;
  uint64_t float_file_bytes = 0, int8_file_bytes = 0, arena_bytes = 0;
  uint32_t max_batch = 0;
  int golden_cases = 0;
  std::vector<std::vector<float>> golden_tolerances;  // per case, one per output
  double calibration_seconds = 0;      // wall time from reading the rows to the chosen model
  double calibration_cpu_seconds = 0;  // process CPU time over the same span
  int64_t evaluations = 0;             // candidate models run through the runtime
};

// The whole conversion. Writes nothing on failure (false, *error says why:
// unreadable or corrupted model, already int8, columns or tasks that do not
// match, non-finite values, too few rows, a file that cannot be written).
// On success the report says whether every goal held on the check rows
// (goals_met); the model is written only then, or with allow_over_goal
// (report->written). The JSON report is written either way.
bool Convert(const Options& options, Report* report, std::string* error);

// The metric `name` of `task`; nullptr if the task has none by that name.
const MetricDelta* FindMetric(const TaskReport& task, const std::string& name);
// How far int8 fell short of float on the task's primary metric, as a
// fraction of the policy's goal: <= 1 meets the goal. NaN metrics count as 0.
double GoalFraction(const TaskReport& task, const GoalPolicy& goals);
// A task's goal as a loss (AUC or accuracy drop, NMSE ratio - 1).
double GoalLoss(fb::TaskKind type, const GoalPolicy& goals);
// The check rows' verdict (GoalPolicy::check_sigmas): expected (if
// measured) + check_sigmas x expected_se (0 if unknown) at most 1, and the
// measured loss at most the goal plus check_sigmas x loss_se (plus nothing
// when the error is unknown).
bool GoalMet(const TaskReport& task, const GoalPolicy& goals);

// The report as JSON and as the human-readable tables mtan-convert prints.
std::string ReportJson(const Report& report);
std::string ReportTable(const Report& report);

}  // namespace mtan::convert
