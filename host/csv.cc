// Data files (CSV) against a task spec: dataset.h describes the format.
#include <charconv>
#include <cmath>
#include <limits>
#include <set>
#include <string_view>
#include <unordered_map>

#include "dataset.h"
#include "dataset_detail.h"
#include "mtan/mtan.h"

namespace mtan::host {
namespace {

using detail::Fail;
using detail::NameProblem;
using detail::Printable;
using detail::Quote;

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// Parses a whole cell as a number; false if anything is left over.
bool ParseFloat(std::string_view s, double* value) {
  s = Trim(s);
  if (!s.empty() && s.front() == '+') s.remove_prefix(1);
  if (s.empty()) return false;
  double v = 0;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || ptr != s.data() + s.size()) return false;
  *value = v;
  return true;
}

// Splits one CSV line (no line break) into fields. Returns the 1-based column
// of a quoting error, or 0 on success.
size_t SplitLine(std::string_view line, std::vector<std::string>* fields) {
  fields->clear();
  size_t i = 0;
  const size_t n = line.size();
  while (true) {
    std::string field;
    if (i < n && line[i] == '"') {
      ++i;
      bool closed = false;
      while (i < n) {
        if (line[i] == '"') {
          if (i + 1 < n && line[i + 1] == '"') {
            field.push_back('"');
            i += 2;
          } else {
            ++i;
            closed = true;
            break;
          }
        } else {
          field.push_back(line[i++]);
        }
      }
      if (!closed || (i < n && line[i] != ',')) return fields->size() + 1;
    } else {
      const size_t start = i;
      while (i < n && line[i] != ',') ++i;
      field.assign(line.substr(start, i - start));
      if (field.find('"') != std::string::npos) return fields->size() + 1;
    }
    fields->push_back(std::move(field));
    if (i >= n) break;
    ++i;  // the comma
    if (i == n) {
      fields->emplace_back();  // trailing empty field
      break;
    }
  }
  return 0;
}

// Iterates the lines of `text`: strips a BOM at the start and a CR at the end
// of each line.
class LineReader {
 public:
  explicit LineReader(const std::string& text) : text_(text) {
    if (text_.size() >= 3 && text_.compare(0, 3, "\xEF\xBB\xBF") == 0) pos_ = 3;
  }
  bool Next(std::string_view* line) {
    if (pos_ >= text_.size()) return false;
    size_t end = text_.find('\n', pos_);
    if (end == std::string::npos) end = text_.size();
    std::string_view l(text_.data() + pos_, end - pos_);
    if (!l.empty() && l.back() == '\r') l.remove_suffix(1);
    pos_ = end + 1;
    ++line_number_;
    *line = l;
    return true;
  }
  size_t line_number() const { return line_number_; }

 private:
  const std::string& text_;
  size_t pos_ = 0;
  size_t line_number_ = 0;
};

bool IsBlank(std::string_view line) { return Trim(line).empty(); }

float DenseDefault(const Spec& spec, size_t j) {
  return j < spec.dense_default.size() ? spec.dense_default[j]
                                       : std::numeric_limits<float>::quiet_NaN();
}

// Appends one row of `f`'s ids from `cell` to `column`: max_length ids,
// padded with -1 (the first max_length of a longer bag). "" or what is wrong.
std::string ParseIds(std::string_view cell, const IdFeatureSpec& f, IdColumn* column) {
  cell = Trim(cell);
  int n = 0;
  bool cut = false;
  const std::string_view whole = cell;
  bool more = !cell.empty();  // an id follows (after a '|', even an empty one)
  while (more) {
    const size_t bar = f.multi_hot ? cell.find('|') : std::string_view::npos;
    const std::string_view id = Trim(cell.substr(0, bar));
    more = bar != std::string_view::npos;
    cell = more ? cell.substr(bar + 1) : std::string_view();
    if (id.empty()) return "an empty id in " + Quote(whole) + " (ids are separated by single '|')";
    int64_t v = 0;
    if (f.string_ids) {
      v = mtan_hash_id(id.data(), id.size());
    } else {
      auto [ptr, ec] = std::from_chars(id.data(), id.data() + id.size(), v);
      if (ec != std::errc() || ptr != id.data() + id.size() || v < 0)
        return Quote(id) + " is not an integer id from 0 to 2^63-1 (string ids need \"ids\": "
               "\"string\" in the spec)";
    }
    if (n < f.max_length) {
      column->ids.push_back(v);
      ++n;
    } else {
      cut = true;
    }
  }
  for (; n < f.max_length; ++n) column->ids.push_back(-1);
  column->truncated_rows += cut;
  return "";
}

}  // namespace

bool ParseCsv(const std::string& text, const std::string& source, const Spec& spec,
              Dataset* data, std::string* error) {
  LineReader reader(text);
  std::string_view line;
  std::vector<std::string> fields;
  auto at = [&](size_t line_no, size_t col) {
    return source + ":" + std::to_string(line_no) + ":" + std::to_string(col) + ": ";
  };
  // Header.
  bool have_header = false;
  while (reader.Next(&line)) {
    if (!IsBlank(line)) {
      have_header = true;
      break;
    }
  }
  if (!have_header) return Fail(error, source + ":1:1: empty file, expected a header row");
  const size_t header_line = reader.line_number();
  if (size_t bad = SplitLine(line, &fields)) {
    return Fail(error, at(header_line, bad) + "malformed quoting in the header");
  }
  std::vector<std::string> header;
  std::unordered_map<std::string, size_t> column_of;
  for (size_t c = 0; c < fields.size(); ++c) {
    std::string name(Trim(fields[c]));
    if (name.empty()) return Fail(error, at(header_line, c + 1) + "empty column name");
    if (const std::string p = NameProblem(name); !p.empty()) {
      return Fail(error, at(header_line, c + 1) + "column name " + Quote(Printable(name)) + " " + p);
    }
    if (!column_of.emplace(name, c).second) {
      return Fail(error, at(header_line, c + 1) + "column " + Quote(name) + " appears twice");
    }
    header.push_back(name);
  }
  const size_t columns = header.size();

  std::vector<size_t> label_col(spec.tasks.size());
  std::set<size_t> label_cols;
  for (size_t t = 0; t < spec.tasks.size(); ++t) {
    auto it = column_of.find(spec.tasks[t].label);
    if (it == column_of.end()) {
      return Fail(error, at(header_line, 1) + "no column " + Quote(spec.tasks[t].label) +
                             " for the label of task " + Quote(spec.tasks[t].name) +
                             " (the spec does not match the header)");
    }
    label_col[t] = it->second;
    label_cols.insert(it->second);
  }
  Dataset out;
  std::vector<size_t> feature_col;
  if (!spec.features.empty()) {
    for (const std::string& f : spec.features) {
      auto it = column_of.find(f);
      if (it == column_of.end()) {
        return Fail(error, at(header_line, 1) + "no column " + Quote(f) +
                               " for a feature the spec names (the spec does not match the header)");
      }
      feature_col.push_back(it->second);
      out.features.push_back(f);
    }
  } else {
    for (size_t c = 0; c < columns; ++c) {
      if (label_cols.count(c)) continue;
      feature_col.push_back(c);
      out.features.push_back(header[c]);
    }
  }
  // Reserve from a cheap line count.
  size_t approx_rows = 0;
  for (char ch : text) approx_rows += ch == '\n';
  if (feature_col.empty()) return Fail(error, at(header_line, 1) + "no feature columns");
  std::vector<size_t> id_col;
  for (const IdFeatureSpec& f : spec.id_features) {
    auto it = column_of.find(f.name);
    if (it == column_of.end()) {
      return Fail(error, at(header_line, 1) + "no column " + Quote(f.name) +
                             " for an id feature the spec names (the spec does not match the header)");
    }
    id_col.push_back(it->second);
  }
  out.ids.resize(spec.id_features.size());
  for (size_t k = 0; k < spec.id_features.size(); ++k) {
    out.ids[k].name = spec.id_features[k].name;
    out.ids[k].length = spec.id_features[k].max_length;
    out.ids[k].ids.reserve(approx_rows * spec.id_features[k].max_length);
  }

  const size_t num_features = feature_col.size();
  out.labels.resize(spec.tasks.size());
  out.x.reserve(approx_rows * num_features);
  for (auto& l : out.labels) {
    l.value.reserve(approx_rows);
    l.observed.reserve(approx_rows);
  }
  std::vector<std::unordered_map<std::string, int>> class_index(spec.tasks.size());
  for (size_t t = 0; t < spec.tasks.size(); ++t) {
    for (size_t k = 0; k < spec.tasks[t].class_names.size(); ++k) {
      class_index[t][spec.tasks[t].class_names[k]] = static_cast<int>(k);
    }
  }

  while (reader.Next(&line)) {
    if (IsBlank(line)) continue;
    const size_t ln = reader.line_number();
    if (size_t bad = SplitLine(line, &fields)) {
      return Fail(error, at(ln, bad) + "malformed quoting");
    }
    if (fields.size() != columns) {
      return Fail(error, at(ln, std::min(fields.size(), columns) + 1) + "row has " +
                             std::to_string(fields.size()) + " fields, the header has " +
                             std::to_string(columns));
    }
    for (size_t j = 0; j < num_features; ++j) {
      const size_t c = feature_col[j];
      double v = 0;
      if (Trim(fields[c]).empty() && !std::isnan(DenseDefault(spec, j))) {
        v = DenseDefault(spec, j);
      } else if (!ParseFloat(fields[c], &v)) {
        if (Trim(fields[c]).empty()) {
          return Fail(error, at(ln, c + 1) + "feature " + Quote(header[c]) +
                                 " is empty (give it a \"default\" in the spec's features)");
        }
        return Fail(error, at(ln, c + 1) + "feature " + Quote(header[c]) + ": " +
                               Quote(fields[c]) + " is not a number");
      }
      if (!std::isfinite(v) || !std::isfinite(static_cast<float>(v))) {
        return Fail(error, at(ln, c + 1) + "feature " + Quote(header[c]) + ": " +
                               Quote(fields[c]) + " is not a finite float32");
      }
      out.x.push_back(static_cast<float>(v));
    }
    for (size_t k = 0; k < id_col.size(); ++k) {
      const size_t c = id_col[k];
      if (std::string bad = ParseIds(fields[c], spec.id_features[k], &out.ids[k]); !bad.empty())
        return Fail(error, at(ln, c + 1) + "id feature " + Quote(header[c]) + ": " + bad);
    }
    for (size_t t = 0; t < spec.tasks.size(); ++t) {
      const TaskSpec& task = spec.tasks[t];
      const size_t c = label_col[t];
      TaskLabels& lab = out.labels[t];
      const std::string_view cell = Trim(fields[c]);
      if (cell.empty()) {
        lab.value.push_back(0.0f);
        lab.observed.push_back(0);
        continue;
      }
      auto label_error = [&](const std::string& msg) {
        return Fail(error, at(ln, c + 1) + "label " + Quote(header[c]) + " of task " +
                               Quote(task.name) + ": " + Quote(cell) + " " + msg);
      };
      double v = 0;
      if (task.type == fb::TaskKind::MULTICLASS) {
        auto it = class_index[t].find(std::string(cell));
        if (it != class_index[t].end()) {
          v = it->second;
        } else if (!ParseFloat(cell, &v) || v != std::floor(v)) {
          return label_error(task.class_names.empty()
                                 ? "is not a class index"
                                 : "is neither a class index nor a class name");
        } else if (v < 0 || v >= task.classes) {
          return label_error("is out of range: classes are 0.." +
                             std::to_string(task.classes - 1));
        }
      } else if (!ParseFloat(cell, &v) || !std::isfinite(v)) {
        return label_error("is not a finite number");
      } else if (task.type == fb::TaskKind::BINARY) {
        if (v != 0.0 && v != 1.0) return label_error("is not 0 or 1");
      } else if (!std::isfinite(static_cast<float>(v))) {
        // 1e39 is a finite double but an infinite float32 (the runtime's
        // outputs): training on it made every weight NaN.
        return label_error("is not a finite float32");
      } else if (task.log1p) {
        if (v <= -1.0) return label_error("is <= -1, outside log1p's domain");
        v = std::log1p(v);
      }
      lab.value.push_back(static_cast<float>(v));
      lab.observed.push_back(1);
      ++lab.observed_rows;
    }
    ++out.rows;
  }
  if (out.rows == 0) return Fail(error, at(header_line + 1, 1) + "no data rows after the header");
  *data = std::move(out);
  return true;
}

bool LoadCsv(const std::string& path, const Spec& spec, Dataset* data, std::string* error) {
  std::string text;
  if (!ReadTextFile(path, &text, error)) return false;
  return ParseCsv(text, path, spec, data, error);
}

}  // namespace mtan::host
