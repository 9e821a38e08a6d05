// The default MTAN of the demo (48 features, trunk [256,128], masks of 32,
// task width 64, attention of 32, tasks click / purchase / category(5) /
// spend) with random weights, as float32 and int8 .mtan files. It lets the
// benchmark measure the default shapes without a trained model: speed does
// not depend on what the weights learned.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "model_io.h"

namespace mtan::bench {

struct SyntheticModels {
  std::vector<uint8_t> float32;  // sealed .mtan files
  std::vector<uint8_t> int8;
};

// Deterministic for a seed. The int8 model is calibrated with min/max ranges
// over `calibration_rows` random rows run through the runtime's float path.
// Returns false with a message on failure.
bool MakeSyntheticModels(uint32_t seed, uint32_t max_batch, SyntheticModels* out,
                         std::string* error, int calibration_rows = 1024);

// Raw feature rows drawn around each input's stored standardisation
// (mean + std * N(0, 1)), so that any model gets inputs of its own scale.
std::vector<float> RowsForModel(const fb::Model& model, uint32_t rows, uint32_t seed);

// Ids for each of the model's tensor inputs (mtan_run_inputs' layout: rows x
// row_bytes per input), as a shop's traffic gives them: a bag of L > 1 ids
// holds 1..L of them, uniformly (mean about L/2), and ids follow a Zipf-like
// popularity (key index V * u^3 of a vocabulary of V keys; a hashed input
// gets random 64-bit ids, row-number inputs id 0), so bags mostly read the
// head of a table, as real traffic does. Deterministic for a seed.
std::vector<std::vector<uint8_t>> IdsForModel(const fb::Model& model, uint32_t rows, uint32_t seed);

}  // namespace mtan::bench
