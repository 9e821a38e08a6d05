#include "loss_weights.h"

#include <algorithm>
#include <cmath>

namespace mtan::trainer {

bool ParseLossWeighting(const std::string& name, LossWeighting* out) {
  if (name == "equal") {
    *out = LossWeighting::kEqual;
  } else if (name == "dwa") {
    *out = LossWeighting::kDwa;
  } else if (name == "uncertainty") {
    *out = LossWeighting::kUncertainty;
  } else {
    return false;
  }
  return true;
}

const char* LossWeightingName(LossWeighting w) {
  switch (w) {
    case LossWeighting::kEqual: return "equal";
    case LossWeighting::kDwa: return "dwa";
    case LossWeighting::kUncertainty: return "uncertainty";
  }
  return "?";
}

std::vector<double> DwaWeights(const std::vector<std::vector<double>>& history, int num_tasks,
                               double temperature) {
  std::vector<double> lambda(num_tasks, 1.0);
  if (history.size() < 2 || num_tasks == 0) return lambda;
  const auto& last = history[history.size() - 1];
  const auto& prev = history[history.size() - 2];
  std::vector<double> w(num_tasks);
  double mx = -1e300;
  for (int k = 0; k < num_tasks; ++k) {
    w[k] = prev[k] > 0 ? last[k] / prev[k] : 1.0;
    mx = std::max(mx, w[k] / temperature);
  }
  double z = 0;
  for (int k = 0; k < num_tasks; ++k) {
    lambda[k] = std::exp(w[k] / temperature - mx);
    z += lambda[k];
  }
  for (double& l : lambda) l = num_tasks * l / z;
  return lambda;
}

double UncertaintyCoefficient(fb::TaskKind type) {
  return type == fb::TaskKind::REGRESSION ? 0.5 : 1.0;
}

double UncertaintyTerm(fb::TaskKind type, double loss, double log_var) {
  return UncertaintyCoefficient(type) * std::exp(-log_var) * loss + 0.5 * log_var;
}

double UncertaintyTermGrad(fb::TaskKind type, double loss, double log_var) {
  return -UncertaintyCoefficient(type) * std::exp(-log_var) * loss + 0.5;
}

}  // namespace mtan::trainer
