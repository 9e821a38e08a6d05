// Id features on the host: the vocabularies learned from the training rows,
// ids mapped to table rows exactly as the runtime maps them (contract.h's
// formulas), and id columns laid out as the runtime's tensor inputs take
// them. Shared by the trainer, mtan-eval, mtan-convert and the tests.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "dataset.h"

namespace mtan::host {

// A table's id map, as the model stores it (TensorInput.id_map).
struct IdTable {
  std::string name;
  fb::IdMap map = fb::IdMap::VOCABULARY;
  std::vector<int64_t> vocabulary;  // VOCABULARY: ascending distinct keys
  uint32_t hash_buckets = 0;        // HASHED
  int dim = 0;                      // embedding width
  // Rows of the embedding table: the vocabulary plus its out-of-vocabulary
  // row, or the buckets.
  int64_t rows() const {
    return map == fb::IdMap::HASHED ? hash_buckets : static_cast<int64_t>(vocabulary.size()) + 1;
  }
};

// The width of a table of `rows` rows when the spec gives none: 6 x rows^(1/4)
// (the rule of thumb of Google's feature-column guide), rounded up to a
// multiple of 4, from 4 to 16. The cap: on mtan-data synth --categorical
// (150k rows) width 8 beat 64 by 0.020 click AUC, the wide tables fitting
// rare ids to their few rows (trainer/RESULTS.md).
int DefaultEmbeddingDim(int64_t rows);

// Every spec table's id map: a vocabulary holds the keys seen at least
// min_count times over all of the table's features in `train`; the width is
// the spec's or DefaultEmbeddingDim. False with a message when a vocabulary
// would exceed kMaxTableRows.
bool BuildIdTables(const Spec& spec, const Dataset& train, std::vector<IdTable>* tables,
                   std::string* error);

// `ids` (raw keys, -1 padding) mapped in place to rows of `table`: the
// runtime's VocabularyRow or HashedRow; -1 stays -1.
void MapIdsToRows(const IdTable& table, std::vector<int64_t>* ids);

// The tensor-input bytes of rows [begin, end) of `data`'s id columns, in the
// order RuntimeModel::Run and AddGoldenCase take them: each column's rows in
// turn, int64 little-endian, as the ids are (raw keys: the model maps them).
std::vector<uint8_t> TensorInputBytes(const Dataset& data, int64_t begin, int64_t end);

// The same for the rows `rows` of `data`, in that order.
std::vector<uint8_t> TensorInputRows(const Dataset& data, const std::vector<uint32_t>& rows);

}  // namespace mtan::host
