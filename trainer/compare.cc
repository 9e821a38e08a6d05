#include "compare.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>

#include <fmt/format.h>

#include "metrics.h"
#include "rng.h"

namespace mtan::trainer {
namespace {

double Primary(const host::TaskSpec& task, const std::vector<float>& pred,
               const host::TaskLabels& labels) {
  const auto m = host::EvaluateTask(task, pred.data(), labels);
  for (const auto& nm : m) {
    if (nm.name == host::PrimaryMetricName(task.type)) return nm.value;
  }
  return NAN;
}

}  // namespace

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

nlohmann::json CompareGroups(const host::Spec& spec, const host::Dataset& test,
                             const std::vector<PredictionGroup>& groups, int base,
                             int resamples, uint64_t seed) {
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
      for (const auto& p : groups[g].seeds) v.push_back(Primary(spec.tasks[t], p[t], test.labels[t]));
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
  host::Rng rng(seed);
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
        for (const auto& p : groups[g].seeds) {
          for (int64_t r = 0; r < n; ++r) {
            std::copy(p[t].begin() + idx[r] * k, p[t].begin() + (idx[r] + 1) * k, pred.begin() + r * k);
          }
          gm[g] += Primary(spec.tasks[t], pred, lab) / groups[g].seeds.size();
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
  return out;
}

}  // namespace mtan::trainer
