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
  app.add_option("--calibration", method,
                 "minmax, percentile (99.99), mse (histogram search) or auto (the best of them on "
                 "the calibration rows' metrics)")
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
  bool quiet = false;
  app.add_flag("--quiet", quiet, "No progress lines on stderr");
  CLI11_PARSE(app, argc, argv);
  mtan::host::ParseCalibrationMethod(method, &o.method);
  o.equalize_inputs = !no_equalization;
  o.float_heads = !int8_heads;
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
  std::fprintf(stdout, "wrote %s%s%s\n", o.out_path.c_str(), o.report_path.empty() ? "" : " and ",
               o.report_path.c_str());
  return 0;
}
