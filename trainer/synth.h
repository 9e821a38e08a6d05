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
  // Id columns (--categorical): item_id (`items` items, Zipf popularity,
  // latent vectors), brand (strings, one per item), store, segment and a
  // multi-hot list of recently viewed items, whose known effects join the
  // dense ones in every task's latent score.
  bool categorical = false;
  int64_t items = 20000;
};

inline constexpr int kSynthBrands = 500, kSynthStores = 50, kSynthSegments = 100,
                     kSynthMaxRecent = 20;

inline constexpr int kSynthClasses = 5;

struct SynthData {
  SynthOptions options;
  int64_t rows = 0;
  int64_t train_end = 0;  // rows [0, train_end) are train,
  int64_t val_end = 0;    // [train_end, val_end) val, [val_end, rows) test
  std::vector<std::string> features;
  std::vector<float> x;  // rows x features, raw values as written to the CSV
  // Id columns (options.categorical): item index (written as 1000000 + it),
  // brand index (written "brand-0042"), store and segment ids, and the
  // recently viewed items in CSR form (row r: recent[recent_offsets[r] ..
  // recent_offsets[r + 1]), item indices).
  std::vector<int32_t> item, brand, store, segment;
  std::vector<int32_t> recent;
  std::vector<uint32_t> recent_offsets;
  // Labels; spend is NaN where unobserved (no purchase), in currency units.
  std::vector<float> click, purchase, category, spend;
  // The truth behind the labels.
  std::vector<float> p_click, p_purchase;  // P(label = 1 | x)
  std::vector<float> p_category;           // rows x kSynthClasses
  std::vector<float> spend_log_mean;       // E[log1p(spend) | x, purchase]
};

// Deterministic in (options): the same bytes on every machine.
bool GenerateSynth(const SynthOptions& options, SynthData* data, std::string* error);

// The spec JSON of the synthetic tasks. With id columns it lists every
// feature (the dense ones by name, then the id features), or, with
// dense_only, the dense ones alone: the baseline without the ids.
std::string SynthSpecJson(const SynthData& data, bool dense_only = false);

// ceiling.json: per split the row and positive counts; for the test rows the
// Bayes scores (metrics of the true probabilities / means on the realised
// labels, computed with the shared metric code).
std::string SynthCeilingJson(const SynthData& data);

// Writes train.csv, val.csv, test.csv, tasks.json and ceiling.json into `dir`
// (created if missing), and with id columns tasks_dense.json.
bool WriteSynth(const SynthData& data, const std::string& dir, std::string* error);

}  // namespace mtan::trainer
