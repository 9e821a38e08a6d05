// Seed means and paired bootstrap standard errors of test metrics, for the
// ablation table (mtan-compare). No libtorch.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "dataset.h"

namespace mtan::trainer {

// One architecture: per seed, per task, the test predictions in model space
// (rows x task.classes), as mtan-train --predictions writes them.
struct PredictionGroup {
  std::string name;
  std::vector<std::vector<std::vector<float>>> seeds;  // [seed][task]
};

// Reads a predictions CSV (a header, then the outputs of every task per row).
bool ReadPredictions(const std::string& path, const host::Spec& spec, int64_t rows,
                     std::vector<std::vector<float>>* per_task, std::string* error);

// For every group and task: the primary metric's mean and std over seeds,
// and the difference of the seed means to group `baseline` with its paired
// bootstrap SE (test rows resampled with replacement, the same rows for every
// group and seed). Returns {"groups": {name: {task: {mean, seed_std,
// per_seed, diff_vs_baseline, diff_se}}}, "baseline", "resamples"}.
nlohmann::json CompareGroups(const host::Spec& spec, const host::Dataset& test,
                             const std::vector<PredictionGroup>& groups, int baseline,
                             int resamples, uint64_t seed);

}  // namespace mtan::trainer
