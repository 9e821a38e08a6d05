// mtan-bench's output: markdown tables for people, csv and json for
// scripts. csv and json carry every key of every row, in one fixed order.
#include <fmt/format.h>

#include <nlohmann/json.hpp>
#include <ostream>
#include <set>
#include <tuple>
#include <variant>

#include "bench.h"

namespace mtan::bench {
namespace {

using Value = std::variant<std::monostate, std::string, uint64_t, double>;
using Fields = std::vector<std::pair<const char*, Value>>;

template <typename T>
Value Opt(const std::optional<T>& v) {
  if (!v) return std::monostate{};
  return *v;
}

Fields RowFields(const Row& r, const BuildInfo& b) {
  return {
      {"commit", b.commit},
      {"compiler", b.compiler},
      {"build_type", b.build_type},
      {"cpu", b.cpu},
      {"onnxruntime", b.onnxruntime},
      {"int8_peak_isa", b.int8_peak_isa},
      {"int8_peak_gops", b.int8_peak_gops},
      {"model", r.model},
      {"model_bytes", r.model_bytes},
      {"role", r.role},
      {"dtype", r.dtype},
      {"backend", r.backend},
      {"task", r.task},
      {"batch", uint64_t{r.batch}},
      {"threads", uint64_t{r.threads}},
      {"load_us", r.load_us},
      {"load_warm_us", Opt(r.load_warm_us)},
      {"load_runs", Opt(r.load_runs)},
      {"arena_required_bytes", Opt(r.arena_required_bytes)},
      {"arena_used_bytes", Opt(r.arena_used_bytes)},
      {"packed_bytes", Opt(r.packed_bytes)},
      {"activation_bytes", Opt(r.activation_bytes)},
      {"largest_activation_bytes", Opt(r.largest_activation_bytes)},
      {"weight_bytes", Opt(r.weight_bytes)},
      {"memory_budget_bytes", Opt(r.memory_budget_bytes)},
      {"runs", r.runs},
      {"p50_us", r.p50_us},
      {"p90_us", r.p90_us},
      {"p99_us", r.p99_us},
      {"mean_us", r.mean_us},
      {"stddev_us", r.stddev_us},
      {"rows_per_s", r.rows_per_s},
      {"fc_mop", r.fc_mop},
      {"gops", r.gops},
      {"xnn_ops_us", Opt(r.xnn_ops_us)},
      {"own_ops_us", Opt(r.own_ops_us)},
      {"sequence_us", Opt(r.sequence_us)},
      {"plan_us", Opt(r.plan_us)},
      {"overhead", Opt(r.overhead)},
      {"fc_gops_isolated", Opt(r.fc_gops_isolated)},
      {"speedup_vs_float32", Opt(r.speedup_vs_float32)},
      {"speedup_vs_reference", Opt(r.speedup_vs_reference)},
      {"speedup_vs_libtorch", Opt(r.speedup_vs_libtorch)},
      {"speedup_vs_onnxruntime", Opt(r.speedup_vs_onnxruntime)},
      {"check_max_abs_diff", Opt(r.check_max_abs_diff)},
      {"peer_kernels", r.peer_kernels},
  };
}

nlohmann::ordered_json ToJson(const Fields& f) {
  nlohmann::ordered_json j = nlohmann::ordered_json::object();
  for (const auto& [k, v] : f) {
    if (std::holds_alternative<std::string>(v)) j[k] = std::get<std::string>(v);
    else if (std::holds_alternative<uint64_t>(v)) j[k] = std::get<uint64_t>(v);
    else if (std::holds_alternative<double>(v)) j[k] = std::get<double>(v);
    else j[k] = nullptr;
  }
  return j;
}

std::string CsvField(const Value& v) {
  if (std::holds_alternative<std::string>(v)) {
    const std::string& s = std::get<std::string>(v);
    if (s.find_first_of(",\"\n") == std::string::npos) return s;
    std::string q = "\"";
    for (char ch : s) {
      if (ch == '"') q += '"';
      q += ch;
    }
    return q + "\"";
  }
  if (std::holds_alternative<uint64_t>(v)) return std::to_string(std::get<uint64_t>(v));
  if (std::holds_alternative<double>(v)) return fmt::format("{:.6g}", std::get<double>(v));
  return "";
}

std::string Us(double v) { return v >= 1000 ? fmt::format("{:.0f}", v) : fmt::format("{:.2f}", v); }
std::string Ratio(const std::optional<double>& v) {
  return v ? fmt::format("{:.2f}×", *v) : "-";
}
std::string OptUs(const std::optional<double>& v) { return v ? Us(*v) : "-"; }
std::string Bytes(const std::optional<uint64_t>& v) { return v ? std::to_string(*v) : "-"; }

void Table(std::ostream& out, const std::vector<std::string>& head,
           const std::vector<std::vector<std::string>>& body, size_t text_columns) {
  out << "|";
  for (const std::string& h : head) out << " " << h << " |";
  out << "\n|";
  for (size_t i = 0; i < head.size(); ++i) out << (i < text_columns ? " --- |" : " ---: |");
  out << "\n";
  for (const auto& row : body) {
    out << "|";
    for (const std::string& cell : row) out << " " << cell << " |";
    out << "\n";
  }
}

void WriteMarkdown(const std::vector<Row>& rows, const BuildInfo& b, std::ostream& out) {
  std::vector<std::vector<std::string>> lat, cmp, mem;
  std::set<std::tuple<std::string, std::string, uint32_t>> seen;
  std::vector<std::string> checks, kernels;
  std::set<std::tuple<std::string, std::string, std::string>> kernels_seen;
  for (const Row& r : rows) {
    lat.push_back({r.model, r.role, r.dtype, r.backend, r.task, std::to_string(r.batch),
                   std::to_string(r.threads), Us(r.load_us), OptUs(r.load_warm_us),
                   Us(r.p50_us), Us(r.p90_us),
                   Us(r.p99_us), Us(r.mean_us) + " ± " + Us(r.stddev_us),
                   fmt::format("{:.0f}", r.rows_per_s), fmt::format("{:.1f}", r.gops)});
    if (r.role == "model" || r.role == "float32") {
      cmp.push_back({r.model, r.dtype, r.backend, r.task, std::to_string(r.batch),
                     std::to_string(r.threads), Ratio(r.speedup_vs_float32),
                     Ratio(r.speedup_vs_reference), Ratio(r.speedup_vs_libtorch),
                     Ratio(r.speedup_vs_onnxruntime),
                     OptUs(r.xnn_ops_us), OptUs(r.own_ops_us), OptUs(r.sequence_us),
                     OptUs(r.plan_us), Ratio(r.overhead),
                     r.fc_gops_isolated ? fmt::format("{:.1f}", *r.fc_gops_isolated) : "-"});
    }
    if (r.arena_required_bytes && seen.insert({r.model, r.backend, r.batch}).second) {
      const bool within = *r.arena_required_bytes <= *r.memory_budget_bytes;
      mem.push_back({r.model, r.backend, std::to_string(r.batch), std::to_string(r.model_bytes),
                     Bytes(r.weight_bytes), Bytes(r.arena_required_bytes), Bytes(r.arena_used_bytes),
                     Bytes(r.packed_bytes), Bytes(r.activation_bytes),
                     Bytes(r.largest_activation_bytes), Bytes(r.memory_budget_bytes),
                     within ? "yes" : "no"});
    }
    if (r.check_max_abs_diff)
      checks.push_back(fmt::format("{} ({}) vs mtan, max |Δ|: {} {} batch {}: {:.3g}", r.role,
                                   r.dtype, r.model, r.task, r.batch, *r.check_max_abs_diff));
    if (!r.peer_kernels.empty() && r.role == "onnxruntime" &&
        kernels_seen.insert({r.model, r.dtype, r.task}).second)
      kernels.push_back(fmt::format("ONNX Runtime ran ({} export of {}, task {}): {}", r.dtype,
                                    r.model, r.task, r.peer_kernels));
  }
  out << "Latency (one run = one mtan_run of `batch` rows; load: mtan_load into fresh pages "
         "(cold) and into an arena already touched (warm), medians; onnxruntime: a new input "
         "tensor and one run through onnxruntime-node, timed in its process, load = session "
         "creation; onnxruntime-identity: the same for y = x)\n\n";
  Table(out, {"model", "role", "dtype", "backend", "task", "batch", "threads", "cold load µs",
              "warm load µs", "p50 µs",
              "p90 µs", "p99 µs", "mean ± sd µs", "rows/s", "GOP/s"},
        lat, 5);
  out << "\nSpeed-ups (p50 of the peer / p50 of this row, same run, same inputs) and overhead "
         "(mtan_run / sum of the XNNPACK operators each run alone; own kernels: the runtime's, "
         "each alone; in sequence: the plan's operators back to back without mtan_run; the "
         "last four measured in the same stretches of time)\n\n";
  Table(out, {"model", "dtype", "backend", "task", "batch", "threads", "vs float32",
              "vs reference", "vs libtorch", "vs ONNX Runtime", "XNNPACK ops µs", "own kernels µs",
              "in sequence µs", "mtan_run µs", "overhead", "FC GOP/s alone"},
        cmp, 4);
  out << "\nMemory (bytes; packed = what XNNPACK allocated in the arena: operators and packed "
         "weights; budget = packed + 3 × largest activation)\n\n";
  Table(out, {"model", "backend", "max batch", "file", "weights", "arena", "used", "packed",
              "activations", "largest activation", "budget", "within"},
        mem, 2);
  out << "\n";
  for (const std::string& c : checks) out << c << "\n";
  for (const std::string& k : kernels) out << k << "\n";
  if (!b.int8_peak_isa.empty())
    out << fmt::format("int8 peak of this core: {:.0f} GOP/s ({} vpdpbusd, independent chains, "
                       "1 thread); FC GOP/s alone over it is the FC layers' share of peak\n",
                       b.int8_peak_gops, b.int8_peak_isa);
  out << "build: commit " << b.commit << ", " << b.compiler << " (" << b.build_type << "), cpu "
      << b.cpu << "; " << b.torch << (b.onnxruntime.empty() ? "" : "; " + b.onnxruntime) << "\n";
}

}  // namespace

void WriteProfiles(const std::vector<OpProfile>& profiles, std::ostream& out) {
  for (const OpProfile& p : profiles) {
    out << "\nOperators alone: " << p.label << "\n\n";
    std::vector<std::vector<std::string>> body;
    double xnn = 0, own = 0;
    for (const OpTime& o : p.ops) {
      (o.kernel == "own" ? own : xnn) += o.us;
      body.push_back({std::to_string(o.index), o.op, o.name, o.dtype, o.kernel,
                      std::to_string(o.in_channels) + "→" + std::to_string(o.out_channels),
                      fmt::format("{:.3f}", o.us)});
    }
    body.push_back({"", "sum", "", "", "optimized", "", fmt::format("{:.3f}", xnn)});
    body.push_back({"", "sum", "", "", "own", "", fmt::format("{:.3f}", own)});
    Table(out, {"#", "op", "output", "dtype", "kernel", "channels", "µs"}, body, 5);
  }
}

void WriteReport(const std::vector<Row>& rows, const BuildInfo& info, const std::string& format,
                 std::ostream& out) {
  if (format == "json" || format == "jsonl") {
    if (format == "json") out << "[\n";
    for (size_t i = 0; i < rows.size(); ++i) {
      out << (format == "json" ? "  " : "") << ToJson(RowFields(rows[i], info)).dump();
      if (format == "json" && i + 1 < rows.size()) out << ",";
      out << "\n";
    }
    if (format == "json") out << "]\n";
  } else if (format == "csv") {
    const Fields head = RowFields(Row{}, info);
    for (size_t i = 0; i < head.size(); ++i) out << (i ? "," : "") << head[i].first;
    out << "\n";
    for (const Row& r : rows) {
      const Fields f = RowFields(r, info);
      for (size_t i = 0; i < f.size(); ++i) out << (i ? "," : "") << CsvField(f[i].second);
      out << "\n";
    }
  } else {
    WriteMarkdown(rows, info, out);
  }
}

}  // namespace mtan::bench
