// mtan-compare: the ablation table. Scores groups of test-prediction files
// (one group per architecture, one file per seed, as written by
// mtan-train --predictions) on the same test rows, and gives every group's
// mean over seeds and its difference to a baseline group with a paired
// bootstrap standard error: the test rows are resampled with replacement,
// the same rows for every group and seed, and the SE is the standard
// deviation of the resampled difference of the seed means.
//
//   mtan-compare --test test.csv --spec tasks.json \
//     --group shared-bottom=sb1.csv,sb2.csv,sb3.csv --group mtan=m1.csv,m2.csv,m3.csv \
//     [--baseline shared-bottom] [--resamples 200] [--json]
#include <cmath>
#include <cstdio>
#include <exception>
#include <map>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "compare.h"
#include "dataset.h"
#include "metrics.h"

namespace host = mtan::host;
namespace trainer = mtan::trainer;

int main(int argc, char** argv) {
  try {
    CLI::App app{"mtan-compare: seed means and paired bootstrap SEs of test metrics"};
    std::string test_csv, spec_path, baseline;
    std::vector<std::string> group_args;
    int resamples = 200;
    uint64_t seed = 1;
    bool as_json = false;
    std::string json_out;
    app.add_option("--test", test_csv, "Test CSV the predictions were made on")->required();
    app.add_option("--spec", spec_path, "Task spec JSON")->required();
    app.add_option("--group", group_args, "NAME=pred1.csv,pred2.csv,... (one file per seed)")
        ->required();
    app.add_option("--baseline", baseline, "Group the others are compared with (default: the first)");
    app.add_option("--resamples", resamples, "Bootstrap resamples")->capture_default_str();
    app.add_option("--seed", seed, "Bootstrap seed")->capture_default_str();
    app.add_flag("--json", as_json, "JSON instead of a markdown table");
    app.add_option("--json-out", json_out, "Also write the JSON to this file");
    CLI11_PARSE(app, argc, argv);

    std::string error;
    host::Spec spec;
    host::Dataset test;
    if (!host::LoadSpec(spec_path, &spec, &error) || !host::LoadCsv(test_csv, spec, &test, &error)) {
      std::fprintf(stderr, "mtan-compare: error: %s\n", error.c_str());
      return 1;
    }
    std::vector<trainer::PredictionGroup> groups;
    for (const std::string& arg : group_args) {
      const size_t eq = arg.find('=');
      if (eq == std::string::npos || eq == 0) {
        std::fprintf(stderr, "mtan-compare: error: --group %s: expected NAME=file,file\n", arg.c_str());
        return 1;
      }
      trainer::PredictionGroup g;
      g.name = arg.substr(0, eq);
      std::string rest = arg.substr(eq + 1);
      std::vector<std::string> files;
      size_t p = 0;
      while (p <= rest.size()) {
        size_t c = rest.find(',', p);
        if (c == std::string::npos) c = rest.size();
        if (c > p) files.push_back(rest.substr(p, c - p));
        p = c + 1;
      }
      for (const auto& f : files) {
        g.seeds.emplace_back();
        if (!trainer::ReadPredictions(f, spec, test.rows, &g.seeds.back(), &error)) {
          std::fprintf(stderr, "mtan-compare: error: %s\n", error.c_str());
          return 1;
        }
      }
      groups.push_back(std::move(g));
    }
    int base = 0;
    for (size_t i = 0; i < groups.size(); ++i) {
      if (groups[i].name == baseline) base = static_cast<int>(i);
    }
    const size_t T = spec.tasks.size();
    const int64_t n = test.rows;
    const nlohmann::json out = trainer::CompareGroups(spec, test, groups, base, resamples, seed);
    if (!json_out.empty()) {
      std::FILE* fp = std::fopen(json_out.c_str(), "wb");
      if (!fp) {
        std::fprintf(stderr, "mtan-compare: error: %s: cannot write\n", json_out.c_str());
        return 1;
      }
      std::fprintf(fp, "%s\n", out.dump(2).c_str());
      std::fclose(fp);
    }
    if (as_json) {
      std::printf("%s\n", out.dump(2).c_str());
      return 0;
    }
    std::string header = "| arch |", rule = "|---|";
    for (const auto& t : spec.tasks) {
      header += fmt::format(" {} {} | Δ vs {} ± SE |", t.name, host::PrimaryMetricName(t.type), groups[base].name);
      rule += "---|---|";
    }
    std::printf("%s\n%s\n", header.c_str(), rule.c_str());
    for (size_t g = 0; g < groups.size(); ++g) {
      std::string row = "| " + groups[g].name + " |";
      for (size_t t = 0; t < T; ++t) {
        const auto& j = out["groups"][groups[g].name][spec.tasks[t].name];
        row += fmt::format(" {:.4f} ± {:.4f} |", j["mean"].get<double>(), j["seed_std"].get<double>());
        row += g == static_cast<size_t>(base)
                   ? " — |"
                   : fmt::format(" {:+.4f} ± {:.4f} |", j["diff_vs_baseline"].get<double>(),
                                 j["diff_se"].get<double>());
      }
      std::printf("%s\n", row.c_str());
    }
    std::printf("\n(mean ± seed std over %zu seeds; Δ ± paired bootstrap SE, %d resamples of the %lld test rows)\n",
                groups[base].seeds.size(), resamples, static_cast<long long>(n));
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "mtan-compare: error: %s\n", e.what());
    return 1;
  }
}
