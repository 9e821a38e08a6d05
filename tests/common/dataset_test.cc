#include "dataset.h"
#include "ids.h"

#include <cmath>
#include <cstring>
#include <string>

#include <doctest/doctest.h>

#include "mtan/mtan.h"

using namespace mtan::host;

namespace {

const char* kSpec = R"({"features": ["price", "age"],
  "tasks": [
    {"name": "click", "kind": "binary", "label": "click"},
    {"name": "category", "kind": "multiclass", "label": "cat", "classes": 3,
     "class_names": ["fashion", "home", "grocery"]},
    {"name": "spend", "kind": "regression", "label": "spend", "transform": "log1p"}]})";

Spec MustSpec(const std::string& text = kSpec) {
  Spec spec;
  std::string err;
  REQUIRE_MESSAGE(ParseSpec(text, "tasks.json", &spec, &err), err);
  return spec;
}

// Expects ParseCsv to fail with a message containing every `parts`.
void ExpectCsvError(const std::string& csv, std::initializer_list<const char*> parts,
                    const std::string& spec_text = kSpec) {
  Spec spec = MustSpec(spec_text);
  Dataset d;
  std::string err;
  CHECK_FALSE(ParseCsv(csv, "data.csv", spec, &d, &err));
  for (const char* p : parts) CHECK_MESSAGE(err.find(p) != std::string::npos, err, " lacks ", p);
}

void ExpectSpecError(const std::string& text, std::initializer_list<const char*> parts) {
  Spec spec;
  std::string err;
  CHECK_FALSE(ParseSpec(text, "tasks.json", &spec, &err));
  for (const char* p : parts) CHECK_MESSAGE(err.find(p) != std::string::npos, err, " lacks ", p);
}

}  // namespace

TEST_SUITE("dataset") {

const char* kIdSpec = R"({"features": ["price", {"name": "visits", "kind": "dense", "default": 7},
    {"name": "item", "kind": "categorical", "vocabulary": {"min_count": 2}, "table": "items", "dim": 8},
    {"name": "brand", "kind": "categorical", "ids": "string", "hash_buckets": 16},
    {"name": "recent", "kind": "multi_hot", "max_length": 3, "combiner": "sum", "table": "items"}],
  "tasks": [{"name": "click", "kind": "binary"}]})";

TEST_CASE("id features: the spec, the CSV cells, vocabularies and the runtime's id maps") {
  Spec spec = MustSpec(kIdSpec);
  REQUIRE(spec.features == std::vector<std::string>{"price", "visits"});
  CHECK(std::isnan(spec.dense_default[0]));
  CHECK(spec.dense_default[1] == 7.0f);
  REQUIRE(spec.id_features.size() == 3);
  REQUIRE(spec.tables.size() == 2);
  CHECK(spec.id_features[0].table == spec.id_features[2].table);  // shared "items"
  CHECK(spec.tables[0].min_count == 2);
  CHECK(spec.tables[0].dim == 8);
  CHECK(spec.tables[1].map == mtan::fb::IdMap::HASHED);
  CHECK(spec.id_features[1].string_ids);
  CHECK(spec.id_features[2].max_length == 3);
  CHECK(spec.id_features[2].combiner == mtan::fb::Combiner::SUM);
  CHECK(spec.id_features[0].max_length == 1);

  const std::string csv =
      "price,visits,item,brand,recent,click\n"
      "1,2,17,acme,17|5|9|5,1\n"   // a bag of 4 keeps its first 3
      "2,,5,\"zeta co\",,0\n"     // empty visits: the default; empty bag
      "3,4,900,acme,17,1\n";
  Dataset d;
  std::string err;
  REQUIRE_MESSAGE(ParseCsv(csv, "data.csv", spec, &d, &err), err);
  CHECK(d.x == std::vector<float>{1, 2, 2, 7, 3, 4});
  CHECK(d.ids[0].ids == std::vector<int64_t>{17, 5, 900});
  CHECK(d.ids[1].ids == std::vector<int64_t>{mtan_hash_id("acme", 4), mtan_hash_id("zeta co", 7),
                                             mtan_hash_id("acme", 4)});
  CHECK(d.ids[2].ids == std::vector<int64_t>{17, 5, 9, -1, -1, -1, 17, -1, -1});
  CHECK(d.ids[2].truncated_rows == 1);

  // Vocabulary over both features of "items": 17 x3, 5 x2, 9 x1, 900 x1;
  // min_count 2 keeps 5 and 17, in ascending order, plus the unknown row.
  std::vector<IdTable> tables;
  REQUIRE_MESSAGE(BuildIdTables(spec, d, &tables, &err), err);
  REQUIRE(tables.size() == 2);
  CHECK(tables[0].vocabulary == std::vector<int64_t>{5, 17});
  CHECK(tables[0].rows() == 3);
  CHECK(tables[0].dim == 8);
  CHECK(tables[1].rows() == 16);
  CHECK(tables[1].dim == DefaultEmbeddingDim(16));
  std::vector<int64_t> rows = d.ids[2].ids;
  MapIdsToRows(tables[0], &rows);
  CHECK(rows == std::vector<int64_t>{1, 0, 2, -1, -1, -1, 1, -1, -1});  // 9: unknown row 2
  rows = {mtan_hash_id("acme", 4), -1, 35};
  MapIdsToRows(tables[1], &rows);
  CHECK(rows == std::vector<int64_t>{static_cast<int64_t>(static_cast<uint64_t>(mtan_hash_id("acme", 4)) % 16), -1, 3});

  // Tensor-input bytes: each column's rows in turn.
  const std::vector<uint8_t> bytes = TensorInputBytes(d, 1, 3);
  REQUIRE(bytes.size() == (2 + 2 + 6) * 8);
  int64_t v[10];
  std::memcpy(v, bytes.data(), sizeof v);
  CHECK(v[0] == 5);
  CHECK(v[1] == 900);
  CHECK(v[2] == mtan_hash_id("zeta co", 7));
  CHECK(v[4] == -1);
  CHECK(v[7] == 17);
}

TEST_CASE("the default embedding width follows 6 x rows^(1/4), in steps of 4, 4 to 16") {
  CHECK(DefaultEmbeddingDim(1) == 8);        // 6 -> 8
  CHECK(DefaultEmbeddingDim(16) == 12);      // 12
  CHECK(DefaultEmbeddingDim(50) == 16);      // 15.96 -> 16
  CHECK(DefaultEmbeddingDim(10000) == 16);   // 60 -> capped
  CHECK(DefaultEmbeddingDim(0) == 8);
}

TEST_CASE("bad id features and id cells fail with messages") {
  const std::string tasks = R"(, "tasks": [{"name": "click", "kind": "binary"}]})";
  ExpectSpecError(R"({"features": [{"name": "item", "kind": "categorical"}])" + tasks,
                  {"at least one dense feature"});
  ExpectSpecError(R"({"features": ["p", {"name": "item", "kind": "sparse"}])" + tasks,
                  {"features[1]", "\"sparse\" is not"});
  ExpectSpecError(R"({"features": ["p", {"name": "item", "kind": "categorical", "max_length": 3}])" + tasks,
                  {"multi_hot"});
  ExpectSpecError(R"({"features": ["p", {"name": "l", "kind": "multi_hot", "max_length": 0}])" + tasks,
                  {"max_length", "1 to 4096"});
  ExpectSpecError(R"({"features": ["p", {"name": "l", "kind": "multi_hot", "combiner": "max"}])" + tasks,
                  {"combiner"});
  ExpectSpecError(R"({"features": ["p", {"name": "a", "kind": "categorical", "hash_buckets": 0}])" + tasks,
                  {"hash_buckets"});
  ExpectSpecError(R"({"features": ["p", {"name": "a", "kind": "categorical", "hash_buckets": 8,
                     "vocabulary": {}}])" + tasks, {"not both"});
  ExpectSpecError(R"({"features": ["p", {"name": "a", "kind": "categorical", "dim": 8, "table": "t"},
                     {"name": "b", "kind": "categorical", "dim": 16, "table": "t"}])" + tasks,
                  {"features[2]", "table \"t\"", "repeat"});
  ExpectSpecError(R"({"features": ["p", {"name": "a", "kind": "categorical", "vocab": {}}])" + tasks,
                  {"vocab", "unknown key"});
  ExpectSpecError(R"({"features": ["p", {"name": "click", "kind": "categorical"}])" + tasks,
                  {"also a task label"});
  ExpectSpecError(R"({"features": ["p", {"name": "x", "kind": "dense", "default": "zero"}])" + tasks,
                  {"default", "finite number"});
  // A later feature may repeat a shared table's settings.
  MustSpec(R"({"features": ["p", {"name": "a", "kind": "categorical", "dim": 8, "table": "t"},
              {"name": "b", "kind": "multi_hot", "dim": 8, "table": "t"}])" + tasks);

  const std::string spec = R"({"features": ["p", {"name": "a", "kind": "categorical"},
      {"name": "l", "kind": "multi_hot", "max_length": 2}])" + tasks;
  ExpectCsvError("p,a,l,click\n1,x7,,1\n", {"data.csv:2:2", "\"x7\" is not an integer id"}, spec);
  ExpectCsvError("p,a,l,click\n1,-3,,1\n", {"data.csv:2:2", "\"-3\""}, spec);
  ExpectCsvError("p,a,l,click\n1,3,4||5,1\n", {"data.csv:2:3", "empty id"}, spec);
  ExpectCsvError("p,a,l,click\n1,3,4|,1\n", {"data.csv:2:3", "empty id"}, spec);
  ExpectCsvError("p,l,click\n1,4,1\n", {"no column \"a\"", "id feature"}, spec);
  ExpectCsvError("p,a,l,click\n,3,4,1\n", {"data.csv:2:1", "is empty", "default"}, spec);
}

TEST_CASE("reads a CSV with BOM, CRLF, quotes, empty labels and class names") {
  const std::string csv =
      "\xEF\xBB\xBFid,price,\"age\",click,cat,spend\r\n"
      "a,12.5,30,1,home,9\r\n"
      "\r\n"
      "\"b,c\",+3,41,0,2,\r\n"
      "d,1e3,  22 ,,fashion,0\r\n";
  Spec spec = MustSpec();
  Dataset d;
  std::string err;
  REQUIRE_MESSAGE(ParseCsv(csv, "data.csv", spec, &d, &err), err);
  CHECK(d.rows == 3);
  CHECK(d.features == std::vector<std::string>{"price", "age"});
  CHECK(d.x == std::vector<float>{12.5f, 30, 3, 41, 1000, 22});
  CHECK(d.labels[0].observed == std::vector<uint8_t>{1, 1, 0});
  CHECK(d.labels[0].observed_rows == 2);
  CHECK(d.labels[1].value == std::vector<float>{1, 2, 0});
  CHECK(d.labels[2].observed == std::vector<uint8_t>{1, 0, 1});
  CHECK(d.labels[2].value[0] == doctest::Approx(std::log1p(9.0)));
}

TEST_CASE("without a features list every non-label column is a feature") {
  Spec spec = MustSpec(R"({"tasks": [{"name": "y", "kind": "binary"}]})");
  CHECK(spec.tasks[0].label == "y");
  Dataset d;
  std::string err;
  REQUIRE_MESSAGE(ParseCsv("a,y,b\n1,0,2\n3,1,4\n", "d.csv", spec, &d, &err), err);
  CHECK(d.features == std::vector<std::string>{"a", "b"});
  CHECK(d.x == std::vector<float>{1, 2, 3, 4});
}

TEST_CASE("bad CSV input is named by file, line and column") {
  const std::string head = "price,age,click,cat,spend\n";
  SUBCASE("malformed row") {
    ExpectCsvError(head + "1,2,1,0,3\n1,2,1\n", {"data.csv:3:", "3 fields", "header has 5"});
  }
  SUBCASE("non-numeric value") {
    ExpectCsvError(head + "1,2,1,0,3\n1,abc,1,0,3\n", {"data.csv:3:2:", "\"age\"", "not a number"});
  }
  SUBCASE("empty feature") { ExpectCsvError(head + "1,,1,0,3\n", {"data.csv:2:2:", "empty"}); }
  SUBCASE("non-finite feature") { ExpectCsvError(head + "inf,2,1,0,3\n", {"data.csv:2:1:", "finite"}); }
  SUBCASE("unknown feature column") {
    ExpectCsvError("prize,age,click,cat,spend\n1,2,1,0,3\n",
                   {"data.csv:1:", "no column \"price\"", "does not match the header"});
  }
  SUBCASE("missing label column") {
    ExpectCsvError("price,age,click,spend\n1,2,1,3\n", {"data.csv:1:", "\"cat\"", "category"});
  }
  SUBCASE("class out of range") {
    ExpectCsvError(head + "1,2,1,3,3\n", {"data.csv:2:4:", "out of range", "0..2"});
  }
  SUBCASE("unknown class name") {
    ExpectCsvError(head + "1,2,1,toys,3\n", {"data.csv:2:4:", "class name"});
  }
  SUBCASE("binary label not 0/1") { ExpectCsvError(head + "1,2,2,0,3\n", {"data.csv:2:3:", "not 0 or 1"}); }
  SUBCASE("log1p label out of domain") {
    ExpectCsvError(head + "1,2,1,0,-2\n", {"data.csv:2:5:", "log1p"});
  }
  SUBCASE("bad quoting") { ExpectCsvError(head + "\"1,2,1,0,3\n", {"data.csv:2:1:", "quoting"}); }
  SUBCASE("duplicate header") {
    ExpectCsvError("price,price,age,click,cat,spend\n", {"data.csv:1:2:", "twice"});
  }
  SUBCASE("no rows") { ExpectCsvError(head, {"data.csv:", "no data rows"}); }
  SUBCASE("empty file") { ExpectCsvError("", {"data.csv:1:1:", "empty"}); }
}

TEST_CASE("bad specs are named") {
  SUBCASE("invalid JSON has line and column") {
    ExpectSpecError("{\"tasks\": [\n  {\"name\": \"a\",, }]}", {"tasks.json:2:", "invalid JSON"});
  }
  SUBCASE("no tasks") { ExpectSpecError(R"({"features": ["a"]})", {"tasks.json", "tasks"}); }
  SUBCASE("unknown kind") {
    ExpectSpecError(R"({"tasks": [{"name": "a", "kind": "ranking"}]})", {"tasks[0]", "ranking"});
  }
  SUBCASE("multiclass without classes") {
    ExpectSpecError(R"({"tasks": [{"name": "a", "kind": "multiclass"}]})", {"tasks[0]", "classes"});
  }
  SUBCASE("class names do not match classes") {
    ExpectSpecError(R"({"tasks": [{"name": "a", "kind": "multiclass", "classes": 3,
                      "class_names": ["x", "y"]}]})",
                    {"class_names", "2 names"});
  }
  SUBCASE("transform on a binary task") {
    ExpectSpecError(R"({"tasks": [{"name": "a", "kind": "binary", "transform": "log1p"}]})",
                    {"tasks[0]", "transform"});
  }
  SUBCASE("unknown key (typo)") {
    ExpectSpecError(R"({"tasks": [{"name": "a", "kind": "binary", "lable": "b"}]})",
                    {"tasks[0]", "lable", "unknown key"});
  }
  SUBCASE("duplicate task") {
    ExpectSpecError(R"({"tasks": [{"name": "a", "kind": "binary"}, {"name": "a", "kind": "binary", "label": "b"}]})",
                    {"tasks[1]", "twice"});
  }
  SUBCASE("label used as feature") {
    ExpectSpecError(R"({"features": ["a"], "tasks": [{"name": "a", "kind": "binary"}]})",
                    {"features", "label"});
  }
  SUBCASE("missing file") {
    Spec spec;
    std::string err;
    CHECK_FALSE(LoadSpec("/nonexistent/tasks.json", &spec, &err));
    CHECK(err.find("/nonexistent/tasks.json") != std::string::npos);
  }
}

// Issue 12, findings 8 and 10: names the runtime would refuse (or, with an
// embedded NUL, confuse) are refused here first, and a regression label that
// is finite only as a double is refused before it reaches training.
TEST_CASE("names with a NUL or control character, too long, or duplicated, are refused") {
  SUBCASE("task names spend\\u0000v1 and spend\\u0000v2 (one task to a C caller)") {
    ExpectSpecError(R"({"tasks": [{"name": "spend\u0000v1", "kind": "regression", "label": "a"},
                                  {"name": "spend\u0000v2", "kind": "regression", "label": "b"}]})",
                    {"tasks[0].name", "spend\\x00v1", "NUL or control character"});
  }
  SUBCASE("a tab in a task name") {
    ExpectSpecError(R"({"tasks": [{"name": "cl\tick", "kind": "binary"}]})", {"tasks[0].name", "control"});
  }
  SUBCASE("a task name over MTAN_MAX_NAME_BYTES") {
    ExpectSpecError(R"({"tasks": [{"name": ")" + std::string(MTAN_MAX_NAME_BYTES + 1, 'a') +
                        R"(", "kind": "binary"}]})",
                    {"tasks[0].name", "longer than 128 bytes"});
  }
  SUBCASE("a feature name with a NUL") {
    ExpectSpecError(R"({"features": ["pr\u0000ice"], "tasks": [{"name": "a", "kind": "binary"}]})",
                    {"features[0]", "NUL"});
  }
  SUBCASE("a class name with a control character") {
    ExpectSpecError(R"({"tasks": [{"name": "a", "kind": "multiclass", "class_names": ["x", "y\u0007"]}]})",
                    {"class_names[1]", "control"});
  }
  SUBCASE("a CSV column with a NUL") {
    ExpectCsvError(std::string("price,a") + '\0' + "ge,click,cat,spend\n1,2,1,0,3\n", {"data.csv:1:2:", "NUL"});
  }
}

TEST_CASE("a regression label beyond float32 (1e39) is refused") {
  const char* spec = R"({"features": ["price", "age"], "tasks": [{"name": "spend", "kind": "regression"}]})";
  ExpectCsvError("price,age,spend\n1,2,1e39\n", {"data.csv:2:3:", "not a finite float32"}, spec);
  Dataset d;
  std::string err;
  CHECK(ParseCsv("price,age,spend\n1,2,3e38\n", "data.csv", MustSpec(spec), &d, &err));
}

TEST_CASE("model space transform") {
  TaskSpec t;
  t.log1p = true;
  CHECK(FromModelSpace(t, ToModelSpace(t, 41.5)) == doctest::Approx(41.5));
  t.log1p = false;
  CHECK(ToModelSpace(t, 3.0) == 3.0);
}

}  // TEST_SUITE
