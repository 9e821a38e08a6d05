// mtan-bench: latency, throughput, cold load and memory of .mtan models on
// this device, with the peers (float32 through the same runtime, the
// reference kernels, libtorch; ONNX Runtime in a child process, --onnx)
// measured on the same inputs with their runs interleaved, so that the
// ratios hold on a noisy machine. Flags follow llama-bench and TFLite's
// benchmark_model: comma lists sweep.
#pragma once

#include <cstdint>
#include <iosfwd>
#include <optional>
#include <string>
#include <vector>

namespace mtan::bench {

struct Config {
  std::vector<std::string> models;       // --model, repeatable
  std::string float_model;               // --float-model
  bool synthetic = false;                // --synthetic: default MTAN shapes, random weights
  std::string write_synthetic;           // --write-synthetic PREFIX: write them and exit
  std::vector<std::string> tasks{"all"};  // names, "all", "each"
  std::vector<uint32_t> batches{1};
  std::vector<uint32_t> threads{1};
  std::vector<std::string> backends{"xnnpack"};  // xnnpack, reference
  bool compare_float = true;      // the float32 model through the same runtime
  bool compare_reference = true;  // the reference kernels
  bool compare_torch = true;      // libtorch (builds with Torch)
  bool overhead = true;           // operators timed in isolation
  int warmup = 10;
  int runs = 100;
  double min_seconds = 0.5;
  int load_runs = 5;
  std::string output = "md";  // md, csv, json, jsonl
  uint32_t seed = 1;
  bool progress = true;
  bool profile = false;  // --profile: every operator's time alone, per XNNPACK row
  // --onnx: ONNX Runtime (onnxruntime-node) on ONNX exports of the models.
  bool onnx = false;
  std::string onnx_dir;     // --onnx-dir: keep the exports there (default: a temporary folder)
  std::string onnx_api = "binding";  // --onnx-api: binding (synchronous run) or session (public API)
  std::string onnx_python = "/usr/bin/python3";  // Debian's, which has python3-onnx
  std::string onnx_node = "node";
};

enum class ParseResult { kRun, kExit, kError };

// Parses argv into *config. kExit: --help or --version was answered in
// *message (exit 0). kError: *message says which flag and value is wrong.
ParseResult ParseFlags(int argc, const char* const* argv, Config* config, std::string* message);

// One measured configuration. Every row has every key (JSON null / empty CSV
// field where a value does not apply), in this order.
struct Row {
  std::string model;  // path, or synthetic-int8 / synthetic-float32
  uint64_t model_bytes = 0;
  // model, float32, reference, libtorch, onnxruntime, onnxruntime-identity
  // (an Identity of the input through the same ONNX Runtime path: its floor)
  std::string role;
  std::string dtype;    // int8, float32
  std::string backend;  // xnnpack, reference, libtorch, onnxruntime
  std::string task;     // a task name or "all"
  uint32_t batch = 0;
  uint32_t threads = 0;
  double load_us = 0;  // cold: mtan_load into fresh pages (median of --load-runs); ORT: session creation
  std::optional<double> load_warm_us;  // into an arena already touched (a hot swap)
  std::optional<uint64_t> load_runs;   // loads timed for each of the two medians
  std::optional<uint64_t> arena_required_bytes, arena_used_bytes, packed_bytes;
  std::optional<uint64_t> activation_bytes, largest_activation_bytes, weight_bytes;
  std::optional<uint64_t> memory_budget_bytes;  // packed + 3 x largest activation
  uint64_t runs = 0;
  double p50_us = 0, p90_us = 0, p99_us = 0, mean_us = 0, stddev_us = 0;
  double rows_per_s = 0;
  double fc_mop = 0;  // million ops (2 x MACs) of the fully-connected layers run
  double gops = 0;    // fc_mop / p50
  // XNNPACK rows: the plan's XNNPACK operators and the runtime's own kernels,
  // each timed alone; the same operators called back to back; mtan_run of
  // the plan timed in the same stretches (plan_us); overhead = plan_us over
  // the XNNPACK sum; the fully-connected layers' GOP/s alone.
  std::optional<double> xnn_ops_us, own_ops_us, sequence_us, plan_us, overhead, fc_gops_isolated;
  std::optional<double> speedup_vs_float32, speedup_vs_reference, speedup_vs_libtorch;
  std::optional<double> speedup_vs_onnxruntime;  // ORT on the export of this row's file
  // A peer's output vs the runtime's on the same file (libtorch: the float32
  // model; ONNX Runtime: the file it was exported from).
  std::optional<double> check_max_abs_diff;
  std::string peer_kernels;  // ONNX Runtime rows: the operators it ran, "QGemm 50, ..."
};

// One operator of a plan, timed alone (--profile).
struct OpTime {
  uint32_t index = 0;
  std::string op, name, dtype, kernel;  // xnnpack, avx512vnni, avxvnni, or own (scalar)
  uint32_t in_channels = 0, out_channels = 0;
  double us = 0;
};
struct OpProfile {
  std::string label;  // model, task, batch, threads
  std::vector<OpTime> ops;
};
void WriteProfiles(const std::vector<OpProfile>& profiles, std::ostream& out);

struct BuildInfo {
  std::string commit, compiler, build_type, cpu, torch;
  std::string onnxruntime;  // its version and session settings, when --onnx ran
  std::string int8_peak_isa;  // MeasureInt8Peak (int8_peak.h): empty without VNNI
  double int8_peak_gops = 0;
};
BuildInfo GetBuildInfo();

// Writes rows as md (tables for people), csv or json (an array, one object
// per row) / jsonl (one object per line).
void WriteReport(const std::vector<Row>& rows, const BuildInfo& info, const std::string& format,
                 std::ostream& out);

// The whole tool: parse, load, measure, report. Progress and errors go to
// `err`. Returns the process exit code.
int BenchMain(int argc, const char* const* argv, std::ostream& out, std::ostream& err);

}  // namespace mtan::bench
