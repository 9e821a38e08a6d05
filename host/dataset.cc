#include "dataset.h"

#include <charconv>
#include <cmath>
#include <cstdio>
#include <set>
#include <string_view>
#include <unordered_map>

#include <nlohmann/json.hpp>

#include "file_io.h"
#include "mtan/mtan.h"

namespace mtan::host {
namespace {

using json = nlohmann::json;

// 1-based line and column of byte `offset` in `text`.
void LineColumn(const std::string& text, size_t offset, size_t* line, size_t* column) {
  *line = 1;
  *column = 1;
  for (size_t i = 0; i < offset && i < text.size(); ++i) {
    if (text[i] == '\n') {
      ++*line;
      *column = 1;
    } else {
      ++*column;
    }
  }
}

bool Fail(std::string* error, const std::string& message) {
  if (error) *error = message;
  return false;
}

std::string Quote(std::string_view s) { return "\"" + std::string(s) + "\""; }

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

// What is wrong with a feature, task or class name, or "" (the runtime's
// verifier applies the same rule: mtan.h, MTAN_MAX_NAME_BYTES). A NUL made
// "spend\0v1" and "spend\0v2" one task for every C caller.
std::string NameProblem(std::string_view name) {
  if (name.empty()) return "is empty";
  if (name.size() > MTAN_MAX_NAME_BYTES)
    return "is longer than " + std::to_string(MTAN_MAX_NAME_BYTES) + " bytes";
  for (char ch : name) {
    const unsigned char c = static_cast<unsigned char>(ch);
    if (c < 0x20 || c == 0x7f) return "holds a NUL or control character";
  }
  return "";
}

// A printable form of a name for messages (control characters as \xNN).
std::string Printable(std::string_view name) {
  std::string out;
  for (char ch : name) {
    const unsigned char c = static_cast<unsigned char>(ch);
    if (c < 0x20 || c == 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    } else {
      out += ch;
    }
  }
  return out;
}

}  // namespace

const char* TaskKindName(fb::TaskKind type) {
  switch (type) {
    case fb::TaskKind::BINARY: return "binary";
    case fb::TaskKind::MULTICLASS: return "multiclass";
    case fb::TaskKind::REGRESSION: return "regression";
  }
  return "?";
}

bool ReadTextFile(const std::string& path, std::string* text, std::string* error,
                  uint64_t max_bytes) {
  return ReadFileCapped(path, max_bytes, /*text=*/true, text, error);
}

double ToModelSpace(const TaskSpec& task, double raw) {
  return task.log1p ? std::log1p(raw) : raw;
}

double FromModelSpace(const TaskSpec& task, double value) {
  return task.log1p ? std::expm1(value) : value;
}

bool ParseSpec(const std::string& text, const std::string& source, Spec* spec,
               std::string* error) {
  json root;
  try {
    root = json::parse(text);
  } catch (const json::parse_error& e) {
    size_t line = 0, col = 0;
    LineColumn(text, e.byte > 0 ? e.byte - 1 : 0, &line, &col);
    std::string what = e.what();
    const size_t p = what.find("parse error");
    if (p != std::string::npos) what = what.substr(p);
    return Fail(error, source + ":" + std::to_string(line) + ":" + std::to_string(col) +
                           ": invalid JSON: " + what);
  }
  Spec out;
  auto bad = [&](const std::string& where, const std::string& msg) {
    return Fail(error, source + ": " + where + ": " + msg);
  };
  if (!root.is_object()) return bad("top level", "expected a JSON object");
  for (auto it = root.begin(); it != root.end(); ++it) {
    if (it.key() != "features" && it.key() != "tasks" && it.key() != "description") {
      return bad(it.key(), "unknown key (expected \"features\", \"tasks\", \"description\")");
    }
  }
  if (root.contains("features")) {
    const json& f = root["features"];
    if (!f.is_array()) return bad("features", "expected an array of column names");
    std::set<std::string> seen;
    for (size_t i = 0; i < f.size(); ++i) {
      const std::string where = "features[" + std::to_string(i) + "]";
      if (!f[i].is_string()) return bad(where, "expected a column name");
      const std::string name = f[i].get<std::string>();
      if (const std::string p = NameProblem(name); !p.empty()) {
        return bad(where, "column name " + Quote(Printable(name)) + " " + p);
      }
      if (!seen.insert(name).second) return bad(where, "feature " + Quote(name) + " listed twice");
      out.features.push_back(name);
    }
  }
  if (!root.contains("tasks") || !root["tasks"].is_array() || root["tasks"].empty()) {
    return bad("tasks", "expected a non-empty array of tasks");
  }
  const json& tasks = root["tasks"];
  std::set<std::string> names, labels;
  for (size_t i = 0; i < tasks.size(); ++i) {
    const json& t = tasks[i];
    std::string where = "tasks[" + std::to_string(i) + "]";
    if (!t.is_object()) return bad(where, "expected an object");
    for (auto it = t.begin(); it != t.end(); ++it) {
      static const std::set<std::string> kKeys = {"name", "kind", "label", "classes",
                                                  "class_names", "transform", "description"};
      if (!kKeys.count(it.key())) return bad(where + "." + it.key(), "unknown key");
    }
    TaskSpec task;
    if (!t.contains("name") || !t["name"].is_string() || t["name"].get<std::string>().empty()) {
      return bad(where + ".name", "expected a non-empty string");
    }
    task.name = t["name"].get<std::string>();
    if (const std::string p = NameProblem(task.name); !p.empty()) {
      return bad(where + ".name", "task name " + Quote(Printable(task.name)) + " " + p);
    }
    where += " (" + Quote(task.name) + ")";
    if (!names.insert(task.name).second) return bad(where, "task name used twice");
    if (!t.contains("kind") || !t["kind"].is_string()) {
      return bad(where + ".kind", "expected \"binary\", \"multiclass\" or \"regression\"");
    }
    const std::string kind = t["kind"].get<std::string>();
    if (kind == "binary") {
      task.type = fb::TaskKind::BINARY;
    } else if (kind == "multiclass") {
      task.type = fb::TaskKind::MULTICLASS;
    } else if (kind == "regression") {
      task.type = fb::TaskKind::REGRESSION;
    } else {
      return bad(where + ".kind",
                 Quote(kind) + " is not \"binary\", \"multiclass\" or \"regression\"");
    }
    task.label = task.name;
    if (t.contains("label")) {
      if (!t["label"].is_string() || t["label"].get<std::string>().empty()) {
        return bad(where + ".label", "expected a column name");
      }
      task.label = t["label"].get<std::string>();
    }
    if (!labels.insert(task.label).second) {
      return bad(where + ".label", "column " + Quote(task.label) + " is the label of two tasks");
    }
    if (t.contains("class_names")) {
      const json& cn = t["class_names"];
      if (task.type != fb::TaskKind::MULTICLASS) {
        return bad(where + ".class_names", "only a multiclass task has class names");
      }
      if (!cn.is_array()) return bad(where + ".class_names", "expected an array of strings");
      std::set<std::string> seen;
      for (size_t k = 0; k < cn.size(); ++k) {
        if (!cn[k].is_string() || cn[k].get<std::string>().empty()) {
          return bad(where + ".class_names[" + std::to_string(k) + "]", "expected a non-empty string");
        }
        if (const std::string p = NameProblem(cn[k].get<std::string>()); !p.empty()) {
          return bad(where + ".class_names[" + std::to_string(k) + "]",
                     "class name " + Quote(Printable(cn[k].get<std::string>())) + " " + p);
        }
        if (!seen.insert(cn[k].get<std::string>()).second) {
          return bad(where + ".class_names[" + std::to_string(k) + "]", "class name used twice");
        }
        task.class_names.push_back(cn[k].get<std::string>());
      }
    }
    if (task.type == fb::TaskKind::MULTICLASS) {
      if (t.contains("classes")) {
        if (!t["classes"].is_number_integer() || t["classes"].get<int64_t>() < 2 ||
            t["classes"].get<int64_t>() > 65536) {
          return bad(where + ".classes", "expected an integer from 2 to 65536");
        }
        task.classes = t["classes"].get<int>();
      } else if (!task.class_names.empty()) {
        task.classes = static_cast<int>(task.class_names.size());
      } else {
        return bad(where + ".classes", "a multiclass task needs \"classes\" or \"class_names\"");
      }
      if (!task.class_names.empty() && static_cast<int>(task.class_names.size()) != task.classes) {
        return bad(where + ".class_names", "has " + std::to_string(task.class_names.size()) +
                                               " names but classes is " +
                                               std::to_string(task.classes));
      }
      if (task.classes < 2) return bad(where + ".classes", "needs at least 2 classes");
    } else if (t.contains("classes")) {
      const bool ok = task.type == fb::TaskKind::BINARY && t["classes"].is_number_integer() &&
                      t["classes"].get<int64_t>() == 2;
      if (!ok) return bad(where + ".classes", "only a multiclass task has classes");
    }
    if (t.contains("transform")) {
      if (!t["transform"].is_string()) return bad(where + ".transform", "expected a string");
      const std::string tr = t["transform"].get<std::string>();
      if (tr == "log1p") {
        if (task.type != fb::TaskKind::REGRESSION) {
          return bad(where + ".transform", "only a regression label can be transformed");
        }
        task.log1p = true;
      } else if (tr != "none" && tr != "identity") {
        return bad(where + ".transform", Quote(tr) + " is not \"log1p\" or \"none\"");
      }
    }
    out.tasks.push_back(std::move(task));
  }
  for (const std::string& f : out.features) {
    if (labels.count(f)) return bad("features", "column " + Quote(f) + " is also a task label");
  }
  *spec = std::move(out);
  return true;
}

bool LoadSpec(const std::string& path, Spec* spec, std::string* error) {
  std::string text;
  if (!ReadTextFile(path, &text, error, kMaxSpecBytes)) return false;
  return ParseSpec(text, path, spec, error);
}

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
  if (feature_col.empty()) return Fail(error, at(header_line, 1) + "no feature columns");

  const size_t num_features = feature_col.size();
  out.labels.resize(spec.tasks.size());
  // Reserve from a cheap line count.
  size_t approx_rows = 0;
  for (char ch : text) approx_rows += ch == '\n';
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
      if (!ParseFloat(fields[c], &v)) {
        if (Trim(fields[c]).empty()) {
          return Fail(error, at(ln, c + 1) + "feature " + Quote(header[c]) +
                                 " is empty (missing feature values are not supported)");
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
