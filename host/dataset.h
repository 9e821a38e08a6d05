// Reading training / evaluation data: a CSV file with a header row plus a
// task spec in JSON. Shared by mtan-train, mtan-eval and mtan-convert.
// Host only. Errors are returned as values: every function returns false and
// fills *error with a message that names the file, line and column.
//
// Spec (JSON):
//   {"features": ["price", "age",             // optional: default = every
//                                              // column that is not a label
//      {"name": "visits", "kind": "dense", "default": 0},   // empty cell -> 0
//      {"name": "item_id", "kind": "categorical", "vocabulary": {"min_count": 2},
//       "table": "items", "dim": 16},
//      {"name": "brand", "kind": "categorical", "ids": "string", "hash_buckets": 1024},
//      {"name": "recent_items", "kind": "multi_hot", "max_length": 20,
//       "combiner": "mean", "table": "items"}],
//    "tasks": [
//      {"name": "click", "kind": "binary", "label": "click"},
//      {"name": "category", "kind": "multiclass", "label": "category",
//       "classes": 5, "class_names": ["fashion", "home", ...]},   // names optional
//      {"name": "spend", "kind": "regression", "label": "spend",
//       "transform": "log1p"}]}                // optional, regression only
//
// Names (features, CSV columns, tasks, classes): 1..MTAN_MAX_NAME_BYTES
// bytes, no NUL or control character, no duplicates, as the runtime requires.
//
// Id features. A categorical cell holds one id, a multi_hot cell a list of
// ids separated by '|' ("12|907|33"); an empty cell is an empty bag (the
// embedding bag gives zeros). Ids are integers 0..2^63-1, or with "ids":
// "string" any bytes, hashed to an int64 by mtan_hash_id (XXH64), which the C
// API exposes so an app passes what the trainer saw. A bag longer than
// max_length (default 20; categorical: 1) keeps its first max_length ids
// (Dataset counts the rows cut). Each feature reads an embedding table,
// named by "table" (default: its own name); features naming one table share
// its rows, its vocabulary and its width. A table maps ids to rows by a
// vocabulary learned from the training file (ids seen at least min_count
// times, default 1; every other id shares one out-of-vocabulary row) or by
// hashing into hash_buckets rows (the id modulo the buckets). "dim" is the
// table's width, by default DefaultEmbeddingDim(rows) (ids.h: 4 to 16). Pooling
// ("combiner", multi_hot only): "sum" or "mean" (default), as
// torch.nn.EmbeddingBag's modes.
//
// CSV: comma separated, first row is the header; a UTF-8 byte order mark and
// CRLF line ends are accepted; fields may be double-quoted ("" escapes a
// quote) but may not span lines; blank lines are skipped. Feature cells must
// be finite numbers (an empty one takes the feature's "default", if it has
// one). An empty label cell means the task is not observed on
// that row. Binary labels are 0 or 1; multiclass labels are a class index
// 0..classes-1 or one of class_names; regression labels are finite numbers
// (> -1 with log1p).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "mtan_generated.h"

namespace mtan::host {

// A task's kind is the file format's fb::TaskKind everywhere on the host; the
// C API's mtan_task_kind has the same values (checked in the runtime).
// "binary", "multiclass", "regression".
const char* TaskKindName(fb::TaskKind type);

struct TaskSpec {
  std::string name;
  fb::TaskKind type = fb::TaskKind::BINARY;
  std::string label;                     // CSV column holding the label
  int classes = 1;                       // outputs per row: K for multiclass, else 1
  std::vector<std::string> class_names;  // multiclass only; empty or `classes` names
  bool log1p = false;                    // regression: model space is log1p(label)
};

// An embedding table: how ids become its rows, and its width.
struct TableSpec {
  std::string name;
  fb::IdMap map = fb::IdMap::VOCABULARY;  // VOCABULARY or HASHED
  int64_t min_count = 1;                  // VOCABULARY: ids seen fewer times are out of it
  uint32_t hash_buckets = 0;              // HASHED: rows
  int dim = 0;                            // 0: DefaultEmbeddingDim of its rows
};

// A categorical or multi_hot column: its ids, pooled from table `table`.
struct IdFeatureSpec {
  std::string name;       // the CSV column, and the model's tensor input
  bool multi_hot = false;
  bool string_ids = false;
  int max_length = 1;
  fb::Combiner combiner = fb::Combiner::MEAN;
  int table = 0;          // index into Spec::tables
};

struct Spec {
  std::vector<std::string> features;  // dense; empty: every non-label column, in CSV order
  std::vector<float> dense_default;   // per features entry: the value of an empty cell, NaN: none
  std::vector<IdFeatureSpec> id_features;
  std::vector<TableSpec> tables;
  std::vector<TaskSpec> tasks;
};

// Longest bag a multi_hot feature may declare, and most hash buckets.
constexpr int kMaxBagLength = 4096;
constexpr int64_t kMaxTableRows = int64_t{1} << 24;

// Parses spec JSON text; `source` names it in messages (usually the path).
bool ParseSpec(const std::string& text, const std::string& source, Spec* spec,
               std::string* error);
bool LoadSpec(const std::string& path, Spec* spec, std::string* error);

struct TaskLabels {
  // One value per row, in the task's model space: 0/1, the class index, or the
  // regression label (log1p-transformed when the spec says so). 0 where the
  // label is unobserved.
  std::vector<float> value;
  std::vector<uint8_t> observed;  // 1 where the label cell was not empty
  int64_t observed_rows = 0;
};

// One id feature's column: rows x max_length ids as the model takes them
// (strings already hashed), -1 after the last id of a shorter bag.
struct IdColumn {
  std::string name;  // the column, and the model's tensor input
  int length = 1;    // ids per row: the feature's max_length
  std::vector<int64_t> ids;
  int64_t truncated_rows = 0;  // rows whose bag was longer than max_length
};

struct Dataset {
  int64_t rows = 0;
  std::vector<std::string> features;  // resolved dense feature columns, in model order
  std::vector<float> x;               // rows x features, raw (not standardised)
  std::vector<IdColumn> ids;          // one per Spec::id_features entry
  std::vector<TaskLabels> labels;     // one per Spec::tasks entry
};

// Parses CSV text against `spec`; `source` names it in messages.
bool ParseCsv(const std::string& text, const std::string& source, const Spec& spec,
              Dataset* data, std::string* error);
bool LoadCsv(const std::string& path, const Spec& spec, Dataset* data, std::string* error);

// Largest CSV (4 GiB) and spec (16 MiB) the tools read: a bigger file, or a
// stream such as /dev/zero, fails with a message instead of filling memory.
constexpr uint64_t kMaxCsvBytes = uint64_t{4} << 30;
constexpr uint64_t kMaxSpecBytes = uint64_t{16} << 20;

// Reads a whole text file (no NUL byte, at most max_bytes; FIFOs do not
// block: see file_io.h); false with a message naming the path.
bool ReadTextFile(const std::string& path, std::string* text, std::string* error,
                  uint64_t max_bytes = kMaxCsvBytes);

// The model-space value of a raw regression label, and back (log1p / expm1
// or identity). Used by evaluators that get currency units from the runtime.
double ToModelSpace(const TaskSpec& task, double raw);
double FromModelSpace(const TaskSpec& task, double value);

}  // namespace mtan::host
