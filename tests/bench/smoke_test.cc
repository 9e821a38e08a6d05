// A smoke run of mtan-bench on tiny models: one warm-up and one run of every
// engine, in every output format, each of which must parse. No timing is
// checked (benchmarks are not tests).
#include <filesystem>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "bench.h"
#include "bench_test_util.h"
#include "doctest/doctest.h"
#include "model_io.h"
#include "torch_peer.h"

using namespace mtan::bench;

namespace {

std::vector<std::string> Lines(const std::string& s) {
  std::vector<std::string> lines;
  std::istringstream in(s);
  for (std::string l; std::getline(in, l);) lines.push_back(l);
  return lines;
}

// RFC 4180 fields of one line (quoted fields may hold commas and "").
std::vector<std::string> CsvFields(const std::string& line) {
  std::vector<std::string> f(1);
  bool quoted = false;
  for (size_t i = 0; i < line.size(); ++i) {
    const char c = line[i];
    if (quoted) {
      if (c == '"' && i + 1 < line.size() && line[i + 1] == '"') {
        f.back() += '"';
        ++i;
      } else if (c == '"') {
        quoted = false;
      } else {
        f.back() += c;
      }
    } else if (c == '"') {
      quoted = true;
    } else if (c == ',') {
      f.emplace_back();
    } else {
      f.back() += c;
    }
  }
  REQUIRE_FALSE(quoted);
  return f;
}

const std::vector<std::string> kKeys = {
    "commit", "compiler", "build_type", "cpu", "onnxruntime", "int8_peak_isa", "int8_peak_gops", "model", "model_bytes", "role", "dtype", "backend",
    "task", "batch", "threads", "load_us", "load_warm_us", "load_runs", "arena_required_bytes", "arena_used_bytes",
    "packed_bytes", "activation_bytes", "largest_activation_bytes", "weight_bytes",
    "memory_budget_bytes", "runs", "p50_us", "p90_us", "p99_us", "mean_us", "stddev_us",
    "rows_per_s", "fc_mop", "gops", "xnn_ops_us", "own_ops_us", "sequence_us", "plan_us", "overhead", "fc_gops_isolated",
    "speedup_vs_float32", "speedup_vs_reference", "speedup_vs_libtorch", "speedup_vs_onnxruntime",
    "check_max_abs_diff", "peer_kernels"};

// Two thread counts only where the row count is checked: a pthreadpool's
// workers spin between runs, which is slow on a loaded 2-core machine.
std::vector<std::string> BaseArgs(const std::string& f, const std::string& q,
                                  const std::string& threads = "1") {
  return {"--model", q, "--float-model", f, "--task", "each,all", "--batch", "1,3",
          "--threads", threads, "--warmup", "1", "--runs", "1", "--min-seconds", "0",
          "--load-runs", "1", "-q"};
}

}  // namespace

TEST_SUITE("smoke") {
  TEST_CASE("json: one object per row, every row with the same stable keys") {
    test::TempDir dir;
    const auto [f, q] = test::WriteTinyModels(dir, 11);
    auto args = BaseArgs(f, q, "1,2");
    args.insert(args.end(), {"--output", "json"});
    const test::Outcome o = test::RunBench(args);
    REQUIRE_MESSAGE(o.code == 0, o.err);
    const auto j = nlohmann::ordered_json::parse(o.out);
    REQUIRE(j.is_array());
    // 4 task choices (3 tasks + all) x 2 batches x 2 thread counts, each
    // with the model, its float32, the reference kernels (and libtorch).
    const size_t engines = TorchPeerAvailable() ? 4 : 3;
    CHECK(j.size() == 4 * 2 * 2 * engines);
    std::set<std::string> roles;
    for (const auto& row : j) {
      std::vector<std::string> keys;
      for (const auto& [k, v] : row.items()) keys.push_back(k);
      REQUIRE(keys == kKeys);
      roles.insert(row["role"].get<std::string>());
      CHECK(row["runs"].get<uint64_t>() >= 1);
      CHECK(row["batch"].get<uint32_t>() >= 1);
      // The core's int8 peak, where it has VNNI (none under qemu).
      CHECK((row["int8_peak_gops"].get<double>() > 0) ==
            !row["int8_peak_isa"].get<std::string>().empty());
      if (row["role"] == "model") {
        CHECK(row["backend"] == "default");
        CHECK(row["dtype"] == "int8");
        CHECK(row["arena_required_bytes"].is_number());
        CHECK(row["arena_used_bytes"] == row["arena_required_bytes"]);
        CHECK(row["speedup_vs_float32"].is_number());
        CHECK(row["speedup_vs_reference"].is_number());
        CHECK(row["overhead"].is_number());
      }
      if (row["role"] == "libtorch") {
        CHECK(row["arena_required_bytes"].is_null());
        // libtorch computes the runtime's float function.
        CHECK(row["check_max_abs_diff"].get<double>() < 1e-3);
      }
    }
    std::set<std::string> want = {"model", "float32", "reference"};
    if (TorchPeerAvailable()) want.insert("libtorch");
    CHECK(roles == want);
  }

  TEST_CASE("jsonl, csv and md parse") {
    test::TempDir dir;
    const auto [f, q] = test::WriteTinyModels(dir, 12);
    auto run = [&](const std::string& format) {
      auto args = BaseArgs(f, q);
      args.insert(args.end(), {"--output", format});
      const test::Outcome o = test::RunBench(args);
      REQUIRE_MESSAGE(o.code == 0, o.err);
      return Lines(o.out);
    };
    const auto jsonl = run("jsonl");
    REQUIRE(!jsonl.empty());
    for (const std::string& l : jsonl) CHECK(nlohmann::json::parse(l).is_object());

    const auto csv = run("csv");
    REQUIRE(csv.size() == jsonl.size() + 1);
    CHECK(CsvFields(csv[0]) == kKeys);
    for (size_t i = 1; i < csv.size(); ++i) CHECK(CsvFields(csv[i]).size() == kKeys.size());

    // Markdown: three tables, each with a separator line and rows of the
    // header's width.
    const auto md = run("md");
    int tables = 0;
    size_t columns = 0;
    for (size_t i = 0; i < md.size(); ++i) {
      const std::string& l = md[i];
      if (l.empty() || l[0] != '|') {
        columns = 0;
        continue;
      }
      REQUIRE(l.back() == '|');
      size_t bars = 0;
      for (char c : l) bars += c == '|';
      if (columns == 0) {
        ++tables;
        columns = bars;
        REQUIRE(i + 1 < md.size());
        CHECK(md[i + 1].find("---") != std::string::npos);
      }
      CHECK(bars == columns);
    }
    CHECK(tables == 3);
    CHECK(md.back().rfind("build: commit", 0) == 0);
  }

  TEST_CASE("the reference backend alone, synthetic models, profiles") {
    test::TempDir dir;
    const test::Outcome w = test::RunBench({"--write-synthetic", dir.File("syn"), "-q"});
    REQUIRE_MESSAGE(w.code == 0, w.err);
    std::vector<uint8_t> bytes;
    std::string error;
    REQUIRE(mtan::host::ReadFile(dir.File("syn.int8.mtan"), &bytes, &error));
    mtan::fb::ModelT m;
    REQUIRE_MESSAGE(mtan::host::UnpackModel(mtan::host::ModelBytes(bytes), &m, &error), error);
    CHECK(m.inputs.size() == 48);
    CHECK(m.tasks.size() == 4);

    const test::Outcome r = test::RunBench(
        {"--model", dir.File("syn.int8.mtan"), "--float-model", dir.File("syn.float32.mtan"),
         "--backend", "reference", "--compare", "float32", "--task", "click", "--warmup", "0",
         "--runs", "1", "--min-seconds", "0", "--load-runs", "1", "--output", "json", "-q"});
    REQUIRE_MESSAGE(r.code == 0, r.err);
    const auto j = nlohmann::json::parse(r.out);
    REQUIRE(j.size() == 2);
    CHECK(j[0]["backend"] == "reference");
    CHECK(j[0]["packed_bytes"] == 0);
    CHECK(j[1]["role"] == "float32");

    const test::Outcome p = test::RunBench({"--synthetic", "--compare", "none", "--profile",
                                            "--warmup", "0", "--runs", "1", "--min-seconds", "0",
                                            "--load-runs", "1", "-q"});
    REQUIRE_MESSAGE(p.code == 0, p.err);
    CHECK(p.out.find("Operators alone: synthetic-int8") != std::string::npos);
    CHECK(p.out.find("ATTENTION_POOL") != std::string::npos);
  }
}

TEST_SUITE("smoke") {
  TEST_CASE("--runs and --load-runs are honoured; --seed decides the synthetic weights") {
    test::TempDir dir;
    const auto [f, q] = test::WriteTinyModels(dir, 13);
    const test::Outcome o = test::RunBench({"--model", q, "--float-model", f, "--compare", "float32",
                                            "--batch", "1,2", "--warmup", "0", "--runs", "7",
                                            "--min-seconds", "0", "--load-runs", "3", "--output",
                                            "json", "-q"});
    REQUIRE_MESSAGE(o.code == 0, o.err);
    const auto j = nlohmann::json::parse(o.out);
    REQUIRE(j.size() == 4);  // 2 batches x (model, float32)
    for (const auto& row : j) {
      // --min-seconds 0: exactly --runs timed runs; every load median of 3.
      CHECK(row["runs"] == 7);
      CHECK(row["load_runs"] == 3);
    }
    // --min-seconds: more runs than --runs until the time is spent (no time
    // is checked); without -q, progress on stderr.
    const test::Outcome t = test::RunBench({"--model", q, "--compare", "none", "--warmup", "0",
                                            "--runs", "1", "--min-seconds", "0.05", "--load-runs",
                                            "1", "--output", "json"});
    REQUIRE_MESSAGE(t.code == 0, t.err);
    CHECK(nlohmann::json::parse(t.out)[0]["runs"].get<int>() > 1);
    CHECK(t.err.find("mtan-bench") != std::string::npos);
    CHECK(o.err.empty());  // -q
    // Same seed, same bytes; another seed, other weights.
    for (const char* s : {"3", "3b", "4"}) {
      const std::string seed = std::string(s).substr(0, 1);
      const test::Outcome w = test::RunBench({"--write-synthetic", dir.File(std::string("syn") + s), "--seed", seed, "-q"});
      REQUIRE_MESSAGE(w.code == 0, w.err);
    }
    std::vector<uint8_t> a, b, c;
    std::string error;
    REQUIRE(mtan::host::ReadFile(dir.File("syn3.int8.mtan"), &a, &error));
    REQUIRE(mtan::host::ReadFile(dir.File("syn3b.int8.mtan"), &b, &error));
    REQUIRE(mtan::host::ReadFile(dir.File("syn4.int8.mtan"), &c, &error));
    CHECK(a == b);
    CHECK(a != c);
    CHECK(a.size() == c.size());  // the same shapes, other values
  }
}
