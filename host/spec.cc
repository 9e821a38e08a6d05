// The task spec (JSON): dataset.h describes the format.
#include <cmath>
#include <limits>
#include <map>
#include <set>
#include <string_view>

#include <nlohmann/json.hpp>

#include "dataset.h"
#include "dataset_detail.h"
#include "mtan/mtan.h"

namespace mtan::host {
namespace {

using json = nlohmann::json;
using detail::Fail;
using detail::NameProblem;
using detail::Printable;
using detail::Quote;

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

}  // namespace

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
    if (!f.is_array()) return bad("features", "expected an array of column names or objects");
    std::set<std::string> seen;
    std::map<std::string, int> table_of;   // table name -> index
    std::vector<std::set<std::string>> table_keys;  // the table keys a feature gave
    for (size_t i = 0; i < f.size(); ++i) {
      std::string where = "features[" + std::to_string(i) + "]";
      if (!f[i].is_string() && !f[i].is_object())
        return bad(where, "expected a column name or an object");
      const json e = f[i].is_string() ? json{{"name", f[i]}} : f[i];
      if (!e.contains("name") || !e["name"].is_string())
        return bad(where + ".name", "expected a column name");
      const std::string name = e["name"].get<std::string>();
      if (const std::string p = NameProblem(name); !p.empty()) {
        return bad(where, "column name " + Quote(Printable(name)) + " " + p);
      }
      if (!seen.insert(name).second) return bad(where, "feature " + Quote(name) + " listed twice");
      where += " (" + Quote(name) + ")";
      const std::string kind = e.value("kind", std::string("dense"));
      static const std::set<std::string> kDenseKeys = {"name", "kind", "default", "description"};
      static const std::set<std::string> kIdKeys = {
          "name", "kind", "ids", "vocabulary", "hash_buckets", "dim", "table",
          "max_length", "combiner", "description"};
      if (kind != "dense" && kind != "categorical" && kind != "multi_hot")
        return bad(where + ".kind", Quote(kind) + " is not \"dense\", \"categorical\" or "
                                    "\"multi_hot\"");
      const auto& keys = kind == "dense" ? kDenseKeys : kIdKeys;
      for (auto it = e.begin(); it != e.end(); ++it)
        if (!keys.count(it.key()))
          return bad(where + "." + it.key(), "unknown key for a " + kind + " feature");
      if (kind == "dense") {
        float def = std::numeric_limits<float>::quiet_NaN();
        if (e.contains("default")) {
          if (!e["default"].is_number() || !std::isfinite(e["default"].get<double>()) ||
              !std::isfinite(static_cast<float>(e["default"].get<double>())))
            return bad(where + ".default", "expected a finite number");
          def = e["default"].get<float>();
        }
        out.features.push_back(name);
        out.dense_default.push_back(def);
        continue;
      }
      IdFeatureSpec id;
      id.name = name;
      id.multi_hot = kind == "multi_hot";
      if (e.contains("ids")) {
        const json& v = e["ids"];
        if (!v.is_string() || (v != "integer" && v != "string"))
          return bad(where + ".ids", "expected \"integer\" or \"string\"");
        id.string_ids = v == "string";
      }
      if (id.multi_hot) {
        id.max_length = 20;
        if (e.contains("max_length")) {
          const json& v = e["max_length"];
          if (!v.is_number_integer() || v.get<int64_t>() < 1 || v.get<int64_t>() > kMaxBagLength)
            return bad(where + ".max_length",
                       "expected an integer from 1 to " + std::to_string(kMaxBagLength));
          id.max_length = v.get<int>();
        }
        if (e.contains("combiner")) {
          const json& v = e["combiner"];
          if (!v.is_string() || (v != "sum" && v != "mean"))
            return bad(where + ".combiner", "expected \"sum\" or \"mean\"");
          id.combiner = v == "sum" ? fb::Combiner::SUM : fb::Combiner::MEAN;
        }
      } else if (e.contains("max_length") || e.contains("combiner")) {
        return bad(where, "max_length and combiner are for multi_hot features");
      }
      TableSpec table;
      table.name = name;
      if (e.contains("table")) {
        if (!e["table"].is_string() || !NameProblem(e["table"].get<std::string>()).empty())
          return bad(where + ".table", "expected a table name");
        table.name = e["table"].get<std::string>();
      }
      std::set<std::string> given;
      if (e.contains("vocabulary") && e.contains("hash_buckets"))
        return bad(where, "give \"vocabulary\" or \"hash_buckets\", not both");
      if (e.contains("vocabulary")) {
        given.insert("vocabulary");
        const json& v = e["vocabulary"];
        if (!v.is_object()) return bad(where + ".vocabulary", "expected an object");
        for (auto it = v.begin(); it != v.end(); ++it)
          if (it.key() != "min_count")
            return bad(where + ".vocabulary." + it.key(), "unknown key (expected \"min_count\")");
        if (v.contains("min_count")) {
          if (!v["min_count"].is_number_integer() || v["min_count"].get<int64_t>() < 1)
            return bad(where + ".vocabulary.min_count", "expected an integer of 1 or more");
          table.min_count = v["min_count"].get<int64_t>();
        }
      }
      if (e.contains("hash_buckets")) {
        given.insert("hash_buckets");
        const json& v = e["hash_buckets"];
        if (!v.is_number_integer() || v.get<int64_t>() < 1 || v.get<int64_t>() > kMaxTableRows)
          return bad(where + ".hash_buckets",
                     "expected an integer from 1 to " + std::to_string(kMaxTableRows));
        table.map = fb::IdMap::HASHED;
        table.hash_buckets = v.get<uint32_t>();
      }
      if (e.contains("dim")) {
        given.insert("dim");
        const json& v = e["dim"];
        if (!v.is_number_integer() || v.get<int64_t>() < 1 || v.get<int64_t>() > 1024)
          return bad(where + ".dim", "expected an integer from 1 to 1024");
        table.dim = v.get<int>();
      }
      auto it = table_of.find(table.name);
      if (it == table_of.end()) {
        it = table_of.emplace(table.name, static_cast<int>(out.tables.size())).first;
        out.tables.push_back(table);
        table_keys.push_back(given);
      } else {
        // A later feature of a shared table may omit the table's settings,
        // or repeat them; it may not change them.
        TableSpec& t = out.tables[it->second];
        for (const std::string& k : given) {
          const bool same = k == "dim" ? t.dim == table.dim
                            : k == "hash_buckets"
                                ? t.map == fb::IdMap::HASHED && t.hash_buckets == table.hash_buckets
                                : t.map == fb::IdMap::VOCABULARY && t.min_count == table.min_count;
          if (table_keys[it->second].count(k) ? !same : true)
            return bad(where + "." + k, "table " + Quote(table.name) + " is set by the first "
                       "feature that names it; a later one may only repeat its settings");
        }
      }
      id.table = it->second;
      out.id_features.push_back(id);
    }
    if (out.features.empty())
      return bad("features", "needs at least one dense feature (a numeric column)");
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
  for (const IdFeatureSpec& f : out.id_features) {
    if (labels.count(f.name))
      return bad("features", "column " + Quote(f.name) + " is also a task label");
  }
  *spec = std::move(out);
  return true;
}

bool LoadSpec(const std::string& path, Spec* spec, std::string* error) {
  std::string text;
  if (!ReadTextFile(path, &text, error, kMaxSpecBytes)) return false;
  return ParseSpec(text, path, spec, error);
}

}  // namespace mtan::host
