// Multi-task loss weighting, as plain formulas (no libtorch) so that tests can
// check them on known values and the training loop uses the same code.
#pragma once

#include <string>
#include <vector>

#include "dataset.h"

namespace mtan::trainer {

enum class LossWeighting { kEqual, kDwa, kUncertainty };

// "equal", "dwa", "uncertainty"; false for anything else.
bool ParseLossWeighting(const std::string& name, LossWeighting* out);
const char* LossWeightingName(LossWeighting w);

// Dynamic Weight Average (Liu et al., CVPR 2019): for epoch e (0-based),
//   lambda_k = K * softmax_k(w_k / T),  w_k = L_k(e-1) / L_k(e-2),
// and lambda_k = 1 for the first two epochs. `history[e][k]` is task k's mean
// training loss in completed epoch e; only the last two rows are used.
std::vector<double> DwaWeights(const std::vector<std::vector<double>>& history, int num_tasks,
                               double temperature = 2.0);

// Homoscedastic uncertainty weighting (Kendall, Gal and Cipolla, CVPR 2018),
// with s = log(sigma^2) learned per task:
//   regression:     0.5 * exp(-s) * L + 0.5 * s   (1/(2 sigma^2) L + log sigma)
//   classification:       exp(-s) * L + 0.5 * s   (1/sigma^2 L + log sigma)
double UncertaintyCoefficient(fb::TaskKind type);  // 0.5 or 1
double UncertaintyTerm(fb::TaskKind type, double loss, double log_var);
// d(term)/d(log_var): zero at the optimum exp(-s) = 0.5 / (c L).
double UncertaintyTermGrad(fb::TaskKind type, double loss, double log_var);

}  // namespace mtan::trainer
