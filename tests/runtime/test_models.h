// Small MTAN-shaped models built in the tests with the real writer.
#pragma once

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "model_io.h"
#include "mtan/mtan.h"
#include "quantize.h"
#include "tiny_models.h"  // tiny::SharedWeightModel

namespace mtan::test {

// 3 tasks (binary "click", multiclass "category" with 4 classes, regression
// "spend" with log1p), 10 raw features on mismatched scales, masks and
// cross-attention: every operator kind of the format.
host::MtanWeights RandomMtan(uint32_t seed, int features = 10);

// Raw feature rows in the ranges RandomMtan's standardisation expects.
std::vector<float> RandomRows(uint32_t seed, int rows, int features = 10);

fb::ModelT FloatModel(uint32_t seed);
// Quantized with min/max ranges collected through the runtime's float path
// (on RandomIds' ids when the model has id inputs).
fb::ModelT Int8Model(uint32_t seed);
fb::ModelT Int8Model(const host::MtanWeights& w, uint32_t seed);

// RandomMtan with id inputs pooled into its trunk: "item" [1] and "viewed"
// [6] (mean) from a vocabulary table of keys 100, 110, .., 390 (31 rows),
// "words" [4] (sum) hashed into 16 buckets.
host::MtanWeights RandomIdMtan(uint32_t seed);
// Raw keys for RandomIdMtan's inputs in RuntimeModel::Run's layout: known
// and unknown keys, bags of 0 to full length.
std::vector<uint8_t> RandomIds(uint32_t seed, int rows);

// Edits of an int8 model's head that a self-test must catch: task's logits
// negated (a binary p becomes about 1 - p), or two classes' rows swapped.
void NegateHead(fb::ModelT& q, const std::string& task);
void SwapClasses(fb::ModelT& q, const std::string& task, int a, int b);

// A loaded model whose Run REQUIREs success.
struct Loaded {
  host::RuntimeModel rt;
  mtan_model* model = nullptr;
  mtan_status status = MTAN_OK;
  Loaded(const std::vector<uint8_t>& file, uint32_t max_batch, mtan_backend backend);
  std::vector<float> Run(const std::vector<float>& rows, uint32_t n, int32_t task);
};

}  // namespace mtan::test
