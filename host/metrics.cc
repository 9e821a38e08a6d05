#include "metrics.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

namespace mtan::host {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

int ArgMax(const float* row, int classes) {
  int best = 0;
  for (int k = 1; k < classes; ++k) {
    if (row[k] > row[best]) best = k;
  }
  return best;
}

}  // namespace

double Auc(const float* score, const float* label, size_t n) {
  std::vector<uint32_t> order(n);
  std::iota(order.begin(), order.end(), 0u);
  std::sort(order.begin(), order.end(),
            [score](uint32_t a, uint32_t b) { return score[a] < score[b]; });
  // Sum of the (1-based, tie-averaged) ranks of the positives.
  double rank_sum = 0.0;
  double positives = 0.0;
  size_t i = 0;
  while (i < n) {
    size_t j = i;
    while (j + 1 < n && score[order[j + 1]] == score[order[i]]) ++j;
    const double avg_rank = 0.5 * (static_cast<double>(i + 1) + static_cast<double>(j + 1));
    for (size_t k = i; k <= j; ++k) {
      if (label[order[k]] > 0.5f) {
        rank_sum += avg_rank;
        positives += 1.0;
      }
    }
    i = j + 1;
  }
  const double negatives = static_cast<double>(n) - positives;
  if (positives == 0.0 || negatives == 0.0) return kNaN;
  const double u = rank_sum - positives * (positives + 1.0) / 2.0;
  return u / (positives * negatives);
}

double LogLoss(const float* prob, const float* label, size_t n, double eps) {
  if (n == 0) return kNaN;
  double sum = 0.0;
  for (size_t i = 0; i < n; ++i) {
    const double p = std::clamp(static_cast<double>(prob[i]), eps, 1.0 - eps);
    sum -= label[i] > 0.5f ? std::log(p) : std::log1p(-p);
  }
  return sum / static_cast<double>(n);
}

double Accuracy(const float* probs, const float* label, size_t n, int classes) {
  if (n == 0 || classes <= 0) return kNaN;
  size_t hits = 0;
  for (size_t i = 0; i < n; ++i) {
    if (ArgMax(probs + i * classes, classes) == static_cast<int>(label[i])) ++hits;
  }
  return static_cast<double>(hits) / static_cast<double>(n);
}

double MacroF1(const float* probs, const float* label, size_t n, int classes) {
  if (n == 0 || classes <= 0) return kNaN;
  std::vector<double> tp(classes, 0.0), fp(classes, 0.0), fn(classes, 0.0);
  for (size_t i = 0; i < n; ++i) {
    const int pred = ArgMax(probs + i * classes, classes);
    const int truth = static_cast<int>(label[i]);
    if (pred == truth) {
      tp[pred] += 1.0;
    } else {
      fp[pred] += 1.0;
      if (truth >= 0 && truth < classes) fn[truth] += 1.0;
    }
  }
  double sum = 0.0;
  int counted = 0;
  for (int k = 0; k < classes; ++k) {
    const double denom = 2.0 * tp[k] + fp[k] + fn[k];
    if (denom == 0.0) continue;
    sum += 2.0 * tp[k] / denom;
    ++counted;
  }
  return counted ? sum / counted : kNaN;
}

double Rmse(const float* pred, const float* label, size_t n) {
  if (n == 0) return kNaN;
  double sum = 0.0;
  for (size_t i = 0; i < n; ++i) {
    const double d = static_cast<double>(pred[i]) - label[i];
    sum += d * d;
  }
  return std::sqrt(sum / static_cast<double>(n));
}

double Nmse(const float* pred, const float* label, size_t n) {
  if (n == 0) return kNaN;
  double mean = 0.0;
  for (size_t i = 0; i < n; ++i) mean += label[i];
  mean /= static_cast<double>(n);
  double var = 0.0, mse = 0.0;
  for (size_t i = 0; i < n; ++i) {
    const double c = label[i] - mean;
    const double d = static_cast<double>(pred[i]) - label[i];
    var += c * c;
    mse += d * d;
  }
  if (var == 0.0) return kNaN;
  return mse / var;
}

std::vector<NamedMetric> EvaluateTask(const TaskSpec& task, const float* outputs,
                                      const TaskLabels& labels) {
  const int k = task.classes;
  std::vector<float> out, lab;
  const size_t rows = labels.value.size();
  out.reserve(static_cast<size_t>(labels.observed_rows) * k);
  lab.reserve(labels.observed_rows);
  for (size_t i = 0; i < rows; ++i) {
    if (!labels.observed[i]) continue;
    out.insert(out.end(), outputs + i * k, outputs + (i + 1) * k);
    lab.push_back(labels.value[i]);
  }
  const size_t n = lab.size();
  switch (task.type) {
    case fb::TaskKind::BINARY:
      return {{"auc", Auc(out.data(), lab.data(), n)},
              {"logloss", LogLoss(out.data(), lab.data(), n)}};
    case fb::TaskKind::MULTICLASS:
      return {{"accuracy", Accuracy(out.data(), lab.data(), n, k)},
              {"macro_f1", MacroF1(out.data(), lab.data(), n, k)}};
    case fb::TaskKind::REGRESSION:
      return {{"rmse", Rmse(out.data(), lab.data(), n)},
              {"nmse", Nmse(out.data(), lab.data(), n)}};
  }
  return {};
}

const char* PrimaryMetricName(fb::TaskKind type) {
  switch (type) {
    case fb::TaskKind::BINARY: return "auc";
    case fb::TaskKind::MULTICLASS: return "accuracy";
    case fb::TaskKind::REGRESSION: return "nmse";
  }
  return "?";
}

bool PrimaryHigherIsBetter(fb::TaskKind type) { return type != fb::TaskKind::REGRESSION; }

}  // namespace mtan::host
