// The built-in synthetic e-commerce dataset (`mtan-data synth`): realistic
// feature columns with mismatched scales, and four tasks whose latent scores
// follow the MMoE synthetic recipe (Ma et al., KDD 2018, section 3.2) with the
// PLE paper's constants (m = 10, c = 1). The true probabilities and means are
// kept, so the best possible test score (the Bayes ceiling) is known exactly.
// No libtorch.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace mtan::trainer {

struct SynthOptions {
  int64_t rows = 500000;     // total, split train / val / test
  double correlation = 0.5;  // P: cosine between the click and purchase directions
  uint64_t seed = 1;
  double train_fraction = 0.7;
  double val_fraction = 0.1;  // the rest is test
};

inline constexpr int kSynthClasses = 5;

struct SynthData {
  SynthOptions options;
  int64_t rows = 0;
  int64_t train_end = 0;  // rows [0, train_end) are train,
  int64_t val_end = 0;    // [train_end, val_end) val, [val_end, rows) test
  std::vector<std::string> features;
  std::vector<float> x;  // rows x features, raw values as written to the CSV
  // Labels; spend is NaN where unobserved (no purchase), in currency units.
  std::vector<float> click, purchase, category, spend;
  // The truth behind the labels.
  std::vector<float> p_click, p_purchase;  // P(label = 1 | x)
  std::vector<float> p_category;           // rows x kSynthClasses
  std::vector<float> spend_log_mean;       // E[log1p(spend) | x, purchase]
};

// Deterministic in (options): the same bytes on every machine.
bool GenerateSynth(const SynthOptions& options, SynthData* data, std::string* error);

// The spec JSON of the synthetic tasks.
std::string SynthSpecJson();

// ceiling.json: per split the row and positive counts; for the test rows the
// Bayes scores (metrics of the true probabilities / means on the realised
// labels, computed with the shared metric code).
std::string SynthCeilingJson(const SynthData& data);

// Writes train.csv, val.csv, test.csv, tasks.json and ceiling.json into `dir`
// (created if missing).
bool WriteSynth(const SynthData& data, const std::string& dir, std::string* error);

}  // namespace mtan::trainer
