// mtan-convert: float32 .mtan -> calibrated int8 .mtan with golden cases and
// a per-task / per-layer accuracy report. See tools/convert/convert.h.
#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <cstdio>
#include <exception>

#include "convert.h"

int main(int argc, char** argv) {
  CLI::App app{"mtan-convert: quantize a float32 .mtan model to int8 with calibration, golden "
               "cases and an accuracy report"};
  mtan::convert::Options o;
  std::string method = "auto";
  app.add_option("--model", o.model_path, "Float32 model (.mtan) written by mtan-train")->required();
  app.add_option("--calib", o.calib_path,
                 "Labelled calibration CSV (e.g. the validation split): activation ranges and the "
                 "float / int8 metrics")
      ->required();
  app.add_option("--spec", o.spec_path, "Task spec JSON (features and tasks)")->required();
  app.add_option("--out", o.out_path, "Output int8 model (.mtan), written atomically")->required();
  app.add_option("--check", o.check_path,
                 "Labelled CSV the goals are judged on (default: every 5th row of --calib, which "
                 "calibration then leaves out)");
  app.add_option("--calibration", method,
                 "auto (each tensor's range chosen among minmax, percentile and mse by the error it "
                 "causes at the task outputs), or one of minmax, percentile (99.99), mse (histogram "
                 "search) for every tensor")
      ->capture_default_str()
      ->check(CLI::IsMember({"minmax", "percentile", "mse", "auto"}));
  app.add_option("--max-batch", o.max_batch,
                 "Maximum batch stored in the model; its arena size is measured for it (default: "
                 "the source model's)")
      ->check(CLI::Range(1u, static_cast<uint32_t>(MTAN_MAX_BATCH)));
  app.add_option("--report", o.report_path, "Also write the report as JSON to this file");
  bool no_equalization = false;
  app.add_flag("--no-input-equalization", no_equalization,
               "Quantize the standardized inputs with one scale as they are, instead of rescaling "
               "each feature to its own calibrated range first (for comparison)");
  bool int8_heads = false;
  app.add_flag("--int8-heads", int8_heads,
               "Quantize each task's last layer too (int8 logits, then DEQUANTIZE) instead of "
               "running it in float on the dequantized features (for comparison)");
  bool no_bias_correction = false, no_fallback = false;
  app.add_flag("--no-bias-correction", no_bias_correction,
               "Keep the float biases as they are instead of correcting each layer's mean "
               "quantization error (for comparison)");
  app.add_flag("--no-float-fallback", no_fallback,
               "Never keep a layer in float, even when a task misses its goal");
  double accuracy_points = 100.0 * o.goals.accuracy_drop;
  app.add_option("--max-auc-drop", o.goals.auc_drop, "Goal: largest AUC drop of a binary task")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.add_option("--max-accuracy-drop", accuracy_points,
                 "Goal: largest accuracy drop of a multiclass task, in percentage points")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.add_option("--max-nmse-ratio", o.goals.nmse_ratio, "Goal: largest NMSE of a regression task, "
                 "as a multiple of float's")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.add_option("--aim", o.goals.aim,
                 "The search and the float fallback stop once every task's loss on the calibration "
                 "rows is at most this fraction of its goal (room for the noise of unseen rows)")
      ->capture_default_str()
      ->check(CLI::Range(0.01, 1.0));
  bool allow_over_goal = false;
  app.add_flag("--allow-over-goal", allow_over_goal,
               "Write the model even when a goal is missed on the check rows (with a warning); "
               "without it mtan-convert writes no model then and exits with status 2");
  bool quiet = false;
  app.add_flag("--quiet", quiet, "No progress lines on stderr");
  CLI11_PARSE(app, argc, argv);
  mtan::host::ParseCalibrationMethod(method, &o.method);
  o.equalize_inputs = !no_equalization;
  o.float_heads = !int8_heads;
  o.bias_correction = !no_bias_correction;
  o.float_fallback = !no_fallback;
  o.goals.accuracy_drop = accuracy_points / 100.0;
  o.allow_over_goal = allow_over_goal;

  if (!quiet) o.progress = [](const std::string& line) { std::fprintf(stderr, "%s\n", line.c_str()); };

  mtan::convert::Report report;
  std::string error;
  bool ok = false;
  try {
    ok = mtan::convert::Convert(o, &report, &error);
  } catch (const std::exception& e) {
    error = e.what();
  }
  if (!ok) {
    std::fprintf(stderr, "mtan-convert: error: %s\n", error.c_str());
    return 1;
  }
  std::fputs(mtan::convert::ReportTable(report).c_str(), stdout);
  if (!report.written) {
    std::fprintf(stdout, "wrote no model%s%s\n", o.report_path.empty() ? "" : "; report in ",
                 o.report_path.c_str());
    std::fprintf(stderr,
                 "mtan-convert: error: the int8 model misses a goal on the check rows (OVER GOAL "
                 "above); no model written. Change the goals (--max-*) or pass --allow-over-goal to "
                 "write it anyway\n");
    return 2;
  }
  std::fprintf(stdout, "wrote %s%s%s\n", o.out_path.c_str(), o.report_path.empty() ? "" : " and ",
               o.report_path.c_str());
  if (!report.goals_met)
    std::fprintf(stderr,
                 "mtan-convert: WARNING: the int8 model misses a goal on the check rows (OVER GOAL "
                 "above); written because of --allow-over-goal\n");
  return 0;
}
