// mtan-bench's command line (CLI11). Every bad value gets a message that
// names the flag, the value and what is allowed.
#include <CLI/CLI.hpp>

#include <cerrno>
#include <cstdlib>
#include <sstream>

#include "bench.h"
#include "mtan/mtan.h"
#include "runtime_model.h"

namespace mtan::bench {
namespace {

std::vector<std::string> SplitComma(const std::string& s) {
  std::vector<std::string> parts;
  std::string cur;
  std::istringstream in(s);
  while (std::getline(in, cur, ',')) parts.push_back(cur);
  if (!s.empty() && s.back() == ',') parts.push_back("");
  return parts;
}

// A comma list of integers in [lo, hi]; false with a message otherwise.
bool ParseUintList(const std::string& flag, const std::string& text, uint32_t lo, uint32_t hi,
                   const char* what, std::vector<uint32_t>* out, std::string* message) {
  out->clear();
  for (const std::string& p : SplitComma(text)) {
    char* end = nullptr;
    errno = 0;
    const unsigned long long v = p.empty() || p[0] == '-' ? 0 : std::strtoull(p.c_str(), &end, 10);
    if (p.empty() || p[0] == '-' || end == nullptr || *end != '\0' || errno != 0 || v < lo ||
        v > hi) {
      *message = flag + ": '" + p + "' is not " + what + " (give " + std::to_string(lo) + ".." +
                 std::to_string(hi) + ", or a comma list of them)";
      return false;
    }
    out->push_back(static_cast<uint32_t>(v));
  }
  return true;
}

}  // namespace

ParseResult ParseFlags(int argc, const char* const* argv, Config* c, std::string* message) {
  CLI::App app{
      "mtan-bench: latency, throughput, cold load and memory of .mtan models, with the float32\n"
      "model, the reference kernels and libtorch measured in the same run on the same inputs.\n"
      "Comma lists sweep, e.g. --batch 1,16,256 --threads 1,2 --task each,all.",
      "mtan-bench"};
  app.option_defaults()->always_capture_default();
  std::string tasks = "all", batches = "1", threads = "1", backends = "default", compare = "all";
  app.add_option("-m,--model", c->models, "A .mtan model to measure (repeatable)")
      ->check(CLI::ExistingFile)
      ->take_all();
  app.add_option("--float-model", c->float_model,
                 "The float32 .mtan the --model files were converted from (peer for the "
                 "float32 and libtorch comparisons)")
      ->check(CLI::ExistingFile);
  app.add_flag("--synthetic", c->synthetic,
               "Also measure the default MTAN shapes with random weights (int8, with its "
               "float32 as the peer); no files needed");
  app.add_option("--write-synthetic", c->write_synthetic,
                 "Write the synthetic models to PREFIX.int8.mtan and PREFIX.float32.mtan, then exit");
  app.add_option("-t,--task", tasks, "Task name, 'all' (one run computes every task) or 'each' "
                                     "(every task on its own); a comma list");
  app.add_option("-b,--batch", batches, "Rows per run; a comma list sweeps");
  app.add_option("--threads", threads,
                 "Threads per run (1 = the calling thread alone; >1 = a pthreadpool); a comma list");
  app.add_option("--backend", backends,
                 "Runtime kernels: default (XNNPACK, and VNNI int8 kernels where the CPU has "
                 "them), xnnpack (XNNPACK's only), reference; a comma list");
  app.add_option("--compare", compare,
                 "Peers measured beside each --model: float32, reference, libtorch, overhead "
                 "(operators timed alone); 'all' or 'none'; a comma list");
  app.add_option("--warmup", c->warmup, "Untimed runs first")->check(CLI::Range(0, 1000000));
  app.add_option("-r,--runs", c->runs, "At least this many timed runs")
      ->check(CLI::Range(1, 100000000));
  app.add_option("--min-seconds", c->min_seconds, "And at least this much time per configuration")
      ->check(CLI::Range(0.0, 3600.0));
  app.add_option("--load-runs", c->load_runs, "Cold loads timed per model and batch (median)")
      ->check(CLI::Range(1, 1000));
  app.add_option("-o,--output", c->output, "md, csv, json (one object per row) or jsonl")
      ->check(CLI::IsMember({"md", "csv", "json", "jsonl"}));
  app.add_option("--seed", c->seed, "Seed of the input rows and of --synthetic weights");
  app.add_flag("--profile", c->profile,
               "Also print every operator's time alone for each XNNPACK row (markdown)");
  auto* onnx = app.add_flag(
      "--onnx", c->onnx,
      "Also measure ONNX Runtime (onnxruntime-node, in a child process timing its own runs in "
      "blocks interleaved with mtan's) on ONNX exports of each model and its --float-model, "
      "checked against mtan's outputs first; needs python3-onnx, Node.js and "
      "tools/bench/onnx/node_modules (tools/setup.sh)");
  app.add_option("--onnx-dir", c->onnx_dir,
                 "Keep the ONNX exports, ORT's optimized graphs and profiles in DIR "
                 "(default: a temporary folder, removed)")
      ->needs(onnx);
  app.add_option("--onnx-api", c->onnx_api,
                 "How the peer runs a model: binding (the binding's synchronous run) or session "
                 "(the public `await session.run`, one event-loop turn more)")
      ->check(CLI::IsMember({"binding", "session"}))
      ->needs(onnx);
  app.add_option("--onnx-python", c->onnx_python, "Python with python3-onnx, for the exporter")
      ->needs(onnx);
  app.add_option("--onnx-node", c->onnx_node, "Node.js, for the ONNX Runtime peer")->needs(onnx);
  bool quiet = false;
  app.add_flag("-q,--quiet", quiet, "No progress on stderr");
  app.set_version_flag("--version", std::string("mtan-bench (mtan ") +
                                        std::to_string(MTAN_VERSION_MAJOR) + "." +
                                        std::to_string(MTAN_VERSION_MINOR) + ")");
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp&) {
    *message = app.help();
    return ParseResult::kExit;
  } catch (const CLI::CallForAllHelp&) {
    *message = app.help("", CLI::AppFormatMode::All);
    return ParseResult::kExit;
  } catch (const CLI::CallForVersion& e) {
    *message = e.what();
    return ParseResult::kExit;
  } catch (const CLI::ParseError& e) {
    *message = e.what();
    return ParseResult::kError;
  }
  c->progress = !quiet;
  if (!ParseUintList("--batch", batches, 1, MTAN_MAX_BATCH, "a batch size", &c->batches, message))
    return ParseResult::kError;
  if (!ParseUintList("--threads", threads, 1, 1024, "a thread count", &c->threads, message))
    return ParseResult::kError;
  c->tasks = SplitComma(tasks);
  for (const std::string& t : c->tasks) {
    if (t.empty()) {
      *message = "--task: empty task name in '" + tasks + "' (give NAME, all or each)";
      return ParseResult::kError;
    }
  }
  c->backends = SplitComma(backends);
  for (const std::string& b : c->backends) {
    mtan_backend unused;
    if (!host::BackendFromName(b, &unused)) {
      *message = "--backend: '" + b + "' is not a backend (give default, xnnpack or reference)";
      return ParseResult::kError;
    }
  }
  c->compare_float = c->compare_reference = c->compare_torch = c->overhead = false;
  for (const std::string& p : SplitComma(compare)) {
    if (p == "all") {
      c->compare_float = c->compare_reference = c->compare_torch = c->overhead = true;
    } else if (p == "none") {
    } else if (p == "float32") {
      c->compare_float = true;
    } else if (p == "reference") {
      c->compare_reference = true;
    } else if (p == "libtorch") {
      c->compare_torch = true;
    } else if (p == "overhead") {
      c->overhead = true;
    } else {
      *message = "--compare: '" + p +
                 "' is not a peer (give float32, reference, libtorch, overhead, all or none)";
      return ParseResult::kError;
    }
  }
  if (c->models.empty() && !c->synthetic && c->write_synthetic.empty()) {
    *message = "give at least one --model M.mtan (or --synthetic); --help lists the flags";
    return ParseResult::kError;
  }
  return ParseResult::kRun;
}

}  // namespace mtan::bench
