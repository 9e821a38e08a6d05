// mtan-convert's pipeline, apart from its command line so that the tests can
// run it directly: float .mtan + labelled calibration CSV -> int8 .mtan with
// plans, memory plan, arena size, metadata and golden cases, plus a report
// of what quantization cost per task and per layer.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "calibrate.h"
#include "evaluate.h"
#include "model_io.h"

namespace mtan::convert {

struct Options {
  std::string model_path;   // float32 .mtan (mtan-train's output)
  std::string calib_path;   // labelled CSV: calibration and validation rows
  std::string spec_path;    // task spec JSON
  std::string out_path;     // int8 .mtan, written atomically
  std::string report_path;  // optional JSON report, written atomically
  host::CalibrationMethod method = host::CalibrationMethod::kAuto;
  double percentile = host::kDefaultPercentile;
  uint32_t max_batch = 0;  // 0: the source model's
  // Rescale each raw feature to its own calibrated range (EqualizeInputs).
  bool equalize_inputs = true;
  // Run each task's last layer in float (QuantizeOptions::float_heads): the
  // 8-bit rounding of the logits alone cost 0.0004 purchase AUC on the
  // synthetic test set (tools/convert/RESULTS.md).
  bool float_heads = true;
  int golden_cases = 6;
  int golden_rows = 4;  // per case
  // Progress lines (calibration, candidates); nullptr for silence.
  std::function<void(const std::string&)> progress;
};

// One metric of one task, float against int8 (on the calibration rows).
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
};

// Float against int8 activations of one tensor over the calibration rows.
struct LayerReport {
  std::string name;
  std::string dtype;  // of the int8 model's tensor: "int8" or "float32"
  uint32_t channels = 0;
  float scale = 0;
  int32_t zero_point = 0;
  double cosine = 0;         // of the flattened float and dequantized int8 values
  double relative_rmse = 0;  // RMSE(int8 - float) / RMS(float)
  double saturated = 0;      // fraction of float values outside the int8 range (clipped)
};

struct CandidateReport {
  std::string method;
  double score = 0;  // worst task's loss as a fraction of its goal (lower is better)
  std::vector<TaskReport> tasks;
};

struct Report {
  std::string source_hash;  // Checksum64 of the source file, 16 hex digits
  std::string method;       // the calibration used
  std::string requested;    // what was asked for (auto picks among candidates)
  int64_t calibration_rows = 0;
  bool input_equalization = false;
  bool float_heads = false;
  std::vector<CandidateReport> candidates;  // every method tried
  std::vector<TaskReport> tasks;            // of the chosen method
  std::vector<LayerReport> layers;
  uint64_t float_file_bytes = 0, int8_file_bytes = 0, arena_bytes = 0;
  uint32_t max_batch = 0;
  int golden_cases = 0;
  std::vector<std::vector<float>> golden_tolerances;  // per case, one per output
};

// The whole conversion. Writes nothing on failure (false, *error says why:
// unreadable or corrupted model, already int8, columns or tasks that do not
// match, non-finite values, no rows, a file that cannot be written).
bool Convert(const Options& options, Report* report, std::string* error);

// How far int8 fell short of float on the task's primary metric, as a
// fraction of the goal (AUC 0.001, accuracy 0.002, NMSE x1.02):
// <= 1 meets the goal. NaN metrics count as 0.
double GoalFraction(const TaskReport& task);

// The report as JSON and as the human-readable tables mtan-convert prints.
std::string ReportJson(const Report& report);
std::string ReportTable(const Report& report);

}  // namespace mtan::convert
