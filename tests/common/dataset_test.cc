#include "dataset.h"

#include <cmath>
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
