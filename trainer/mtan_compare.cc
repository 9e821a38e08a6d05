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

#include "dataset.h"
#include "metrics.h"
#include "rng.h"

namespace {

using namespace mtan;

struct Group {
  std::string name;
  std::vector<std::string> files;
  std::vector<std::vector<std::vector<float>>> preds;  // [seed][task] rows x outputs
};

// Reads a predictions CSV: a header, then rows of floats, `width` per row.
bool ReadPredictions(const std::string& path, const host::Spec& spec, int64_t rows,
                     std::vector<std::vector<float>>* out, std::string* error) {
  std::string text;
  if (!host::ReadTextFile(path, &text, error)) return false;
  std::vector<float> values;
  size_t pos = text.find('\n');
  if (pos == std::string::npos) {
    *error = path + ": no header";
    return false;
  }
  int width = 0;
  for (const auto& t : spec.tasks) width += t.classes;
  ++pos;
  int64_t line = 1;
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string::npos) end = text.size();
    ++line;
    size_t p = pos;
    int fields = 0;
    while (p < end) {
      size_t comma = text.find(',', p);
      if (comma == std::string::npos || comma > end) comma = end;
      values.push_back(std::strtof(text.substr(p, comma - p).c_str(), nullptr));
      ++fields;
      p = comma + 1;
    }
    if (fields != width) {
      *error = fmt::format("{}:{}: expected {} values, found {}", path, line, width, fields);
      return false;
    }
    pos = end + 1;
  }
  if (static_cast<int64_t>(values.size()) != rows * width) {
    *error = fmt::format("{}: {} rows, the test file has {}", path, values.size() / width, rows);
    return false;
  }
  out->assign(spec.tasks.size(), {});
  for (int64_t r = 0; r < rows; ++r) {
    int off = 0;
    for (size_t t = 0; t < spec.tasks.size(); ++t) {
      const int k = spec.tasks[t].classes;
      (*out)[t].insert((*out)[t].end(), values.begin() + r * width + off,
                       values.begin() + r * width + off + k);
      off += k;
    }
  }
  return true;
}

double Primary(const host::TaskSpec& task, const std::vector<float>& pred,
               const host::TaskLabels& labels) {
  const auto m = host::EvaluateTask(task, pred.data(), labels);
  for (const auto& nm : m) {
    if (nm.name == host::PrimaryMetricName(task.type)) return nm.value;
  }
  return NAN;
}

}  // namespace

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
    std::vector<Group> groups;
    for (const std::string& arg : group_args) {
      const size_t eq = arg.find('=');
      if (eq == std::string::npos || eq == 0) {
        std::fprintf(stderr, "mtan-compare: error: --group %s: expected NAME=file,file\n", arg.c_str());
        return 1;
      }
      Group g;
      g.name = arg.substr(0, eq);
      std::string rest = arg.substr(eq + 1);
      size_t p = 0;
      while (p <= rest.size()) {
        size_t c = rest.find(',', p);
        if (c == std::string::npos) c = rest.size();
        if (c > p) g.files.push_back(rest.substr(p, c - p));
        p = c + 1;
      }
      for (const auto& f : g.files) {
        g.preds.emplace_back();
        if (!ReadPredictions(f, spec, test.rows, &g.preds.back(), &error)) {
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
    // Full-sample seed means and seed std.
    nlohmann::json out;
    out["baseline"] = groups[base].name;
    out["resamples"] = resamples;
    std::vector<std::vector<double>> mean(groups.size(), std::vector<double>(T));
    for (size_t g = 0; g < groups.size(); ++g) {
      for (size_t t = 0; t < T; ++t) {
        std::vector<double> v;
        for (const auto& p : groups[g].preds) v.push_back(Primary(spec.tasks[t], p[t], test.labels[t]));
        double m = 0, s = 0;
        for (double e : v) m += e;
        m /= v.size();
        for (double e : v) s += (e - m) * (e - m);
        s = v.size() > 1 ? std::sqrt(s / (v.size() - 1)) : 0.0;
        mean[g][t] = m;
        out["groups"][groups[g].name][spec.tasks[t].name] = {{"mean", m}, {"seed_std", s}, {"per_seed", v}};
      }
    }
    // Paired bootstrap of (group mean - baseline mean).
    trainer::Rng rng(seed);
    std::vector<std::vector<std::vector<double>>> diffs(groups.size(), std::vector<std::vector<double>>(T));
    std::vector<int64_t> idx(n);
    for (int b = 0; b < resamples; ++b) {
      for (auto& i : idx) i = static_cast<int64_t>(rng.Below(static_cast<uint64_t>(n)));
      for (size_t t = 0; t < T; ++t) {
        const int k = spec.tasks[t].classes;
        host::TaskLabels lab;
        lab.value.resize(n);
        lab.observed.resize(n);
        for (int64_t r = 0; r < n; ++r) {
          lab.value[r] = test.labels[t].value[idx[r]];
          lab.observed[r] = test.labels[t].observed[idx[r]];
          lab.observed_rows += lab.observed[r];
        }
        std::vector<double> gm(groups.size(), 0.0);
        std::vector<float> pred(static_cast<size_t>(n) * k);
        for (size_t g = 0; g < groups.size(); ++g) {
          for (const auto& p : groups[g].preds) {
            for (int64_t r = 0; r < n; ++r) {
              std::copy(p[t].begin() + idx[r] * k, p[t].begin() + (idx[r] + 1) * k, pred.begin() + r * k);
            }
            gm[g] += Primary(spec.tasks[t], pred, lab) / groups[g].preds.size();
          }
        }
        for (size_t g = 0; g < groups.size(); ++g) diffs[g][t].push_back(gm[g] - gm[base]);
      }
    }
    for (size_t g = 0; g < groups.size(); ++g) {
      for (size_t t = 0; t < T; ++t) {
        const auto& d = diffs[g][t];
        double m = 0, s = 0;
        for (double e : d) m += e;
        m /= std::max<size_t>(1, d.size());
        for (double e : d) s += (e - m) * (e - m);
        s = d.size() > 1 ? std::sqrt(s / (d.size() - 1)) : 0.0;
        out["groups"][groups[g].name][spec.tasks[t].name]["diff_vs_baseline"] = mean[g][t] - mean[base][t];
        out["groups"][groups[g].name][spec.tasks[t].name]["diff_se"] = s;
      }
    }
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
                groups[base].preds.size(), resamples, static_cast<long long>(n));
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "mtan-compare: error: %s\n", e.what());
    return 1;
  }
}
