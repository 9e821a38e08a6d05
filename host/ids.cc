#include "ids.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <unordered_map>

#include "contract.h"

namespace mtan::host {

int DefaultEmbeddingDim(int64_t rows) {
  const double d = 6.0 * std::pow(static_cast<double>(std::max<int64_t>(rows, 1)), 0.25);
  const int dim = static_cast<int>(std::ceil(d / 4.0)) * 4;
  return std::clamp(dim, 4, 16);
}

bool BuildIdTables(const Spec& spec, const Dataset& train, std::vector<IdTable>* tables,
                   std::string* error) {
  std::vector<IdTable> out(spec.tables.size());
  for (size_t t = 0; t < spec.tables.size(); ++t) {
    const TableSpec& ts = spec.tables[t];
    IdTable& table = out[t];
    table.name = ts.name;
    table.map = ts.map;
    table.hash_buckets = ts.hash_buckets;
    if (ts.map == fb::IdMap::VOCABULARY) {
      std::unordered_map<int64_t, int64_t> count;
      for (size_t k = 0; k < spec.id_features.size(); ++k) {
        if (spec.id_features[k].table != static_cast<int>(t)) continue;
        for (int64_t id : train.ids[k].ids)
          if (id != kPaddingId) ++count[id];
      }
      for (const auto& [key, n] : count)
        if (n >= ts.min_count) table.vocabulary.push_back(key);
      std::sort(table.vocabulary.begin(), table.vocabulary.end());
      if (table.rows() > kMaxTableRows) {
        *error = "table '" + ts.name + "': " + std::to_string(table.vocabulary.size()) +
                 " ids in its vocabulary, more than " + std::to_string(kMaxTableRows - 1) +
                 "; raise min_count or hash it";
        return false;
      }
    }
    table.dim = ts.dim > 0 ? ts.dim : DefaultEmbeddingDim(table.rows());
  }
  *tables = std::move(out);
  return true;
}

void MapIdsToRows(const IdTable& table, std::vector<int64_t>* ids) {
  const uint8_t* keys = reinterpret_cast<const uint8_t*>(table.vocabulary.data());
  const uint32_t count = static_cast<uint32_t>(table.vocabulary.size());
  for (int64_t& id : *ids) {
    if (id == kPaddingId) continue;
    id = table.map == fb::IdMap::HASHED ? HashedRow(id, table.hash_buckets)
                                        : VocabularyRow(keys, count, id);
  }
}

std::vector<uint8_t> TensorInputBytes(const Dataset& data, int64_t begin, int64_t end) {
  std::vector<uint8_t> out;
  for (const IdColumn& c : data.ids) {
    const size_t length = static_cast<size_t>(c.length);
    const size_t at = out.size();
    const size_t n = static_cast<size_t>(end - begin) * length;
    out.resize(at + n * 8);
    std::memcpy(out.data() + at, c.ids.data() + static_cast<size_t>(begin) * length, n * 8);
  }
  return out;
}

std::vector<uint8_t> TensorInputRows(const Dataset& data, const std::vector<uint32_t>& rows) {
  std::vector<uint8_t> out;
  for (const IdColumn& c : data.ids) {
    const size_t row_bytes = static_cast<size_t>(c.length) * 8;
    for (uint32_t r : rows) {
      const uint8_t* p = reinterpret_cast<const uint8_t*>(c.ids.data()) + r * row_bytes;
      out.insert(out.end(), p, p + row_bytes);
    }
  }
  return out;
}

}  // namespace mtan::host
