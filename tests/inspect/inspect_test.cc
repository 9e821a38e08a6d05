// mtan-inspect describes a valid file completely, and rejects a corrupted or
// hostile one with the verifier's message and a non-zero exit.
#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <sstream>

#include <nlohmann/json.hpp>

#include "doctest/doctest.h"
#include "format.h"
#include "inspect.h"
#include "model_io.h"
#include "test_models.h"

using namespace mtan;

namespace {

const std::string kVersion = std::to_string(MTAN_VERSION_MAJOR) + "." + std::to_string(MTAN_VERSION_MINOR);

class TempDir {
 public:
  TempDir() {
    std::string t = (std::filesystem::temp_directory_path() / "mtan-inspect-test-XXXXXX").string();
    REQUIRE(mkdtemp(t.data()) != nullptr);
    path_ = t;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  std::string Write(const std::string& name, const std::vector<uint8_t>& bytes) const {
    const std::string p = path_ + "/" + name;
    std::string error;
    REQUIRE_MESSAGE(host::WriteFileAtomic(p, bytes, &error), error);
    return p;
  }

 private:
  std::string path_;
};

struct Outcome {
  int code;
  std::string out, err;
};

Outcome Inspect(const std::vector<std::string>& args) {
  std::vector<const char*> argv = {"mtan-inspect"};
  for (const std::string& a : args) argv.push_back(a.c_str());
  std::ostringstream out, err;
  const int code = inspect::InspectMain(static_cast<int>(argv.size()), argv.data(), out, err);
  return {code, out.str(), err.str()};
}

// An int8 model with metadata, metrics and one golden case.
std::vector<uint8_t> RichInt8Model() {
  fb::ModelT m = test::Int8Model(31);
  m.metadata->producer = "mtan-convert 1.0";
  m.metadata->description = "test model";
  auto metric = std::make_unique<fb::MetricT>();
  metric->name = "int8/click/auc";
  metric->value = 0.75;
  m.metadata->metrics.push_back(std::move(metric));
  auto kv = std::make_unique<fb::KeyValueT>();
  kv->key = "calibration";
  kv->value = "minmax";
  m.metadata->properties.push_back(std::move(kv));
  m.max_batch = 32;
  std::string error;
  REQUIRE_MESSAGE(tiny::AddReferenceGolden(m, test::RandomRows(32, 4), 4, 1e-3f, &error), error);
  return host::FinishModel(m, 32);
}

// Re-seals a modified FlatBuffer with a correct footer, so that only the
// verifier (not the checksum) can reject it.
std::vector<uint8_t> Reseal(std::vector<uint8_t> file) {
  const size_t fb_bytes = file.size() - kFooterBytes;
  Footer footer;
  std::memcpy(&footer, file.data() + fb_bytes, sizeof(footer));
  footer.checksum = Checksum64(file.data(), fb_bytes);
  std::memcpy(file.data() + fb_bytes, &footer, sizeof(footer));
  return file;
}

}  // namespace

TEST_CASE("a valid file, as JSON") {
  TempDir dir;
  const std::vector<uint8_t> file = RichInt8Model();
  const Outcome o = Inspect({dir.Write("m.mtan", file), "--json"});
  REQUIRE_MESSAGE(o.code == 0, o.err);
  const auto d = nlohmann::json::parse(o.out);
  CHECK(d["file_bytes"] == file.size());
  CHECK(d["version"] == kVersion);
  CHECK(d["producer"] == "mtan-convert 1.0");
  CHECK(d["dtype"] == "int8");
  CHECK(d["properties"]["calibration"] == "minmax");
  REQUIRE(d["inputs"].size() == 10);
  CHECK(d["inputs"][0]["name"] == "f0");
  CHECK(d["inputs"][0]["mean"].get<double>() == doctest::Approx(50.0));
  CHECK(d["inputs"][0]["std"].get<double>() == doctest::Approx(40.0));
  REQUIRE(d["tasks"].size() == 3);
  CHECK(d["tasks"][0]["name"] == "click");
  CHECK(d["tasks"][0]["kind"] == "BINARY");
  CHECK(d["tasks"][1]["classes"].size() == 4);
  CHECK(d["tasks"][1]["output_size"] == 4);
  CHECK(d["tasks"][2]["transform"] == "EXPM1");
  CHECK(d["tasks"][0]["plan"].size() == d["tasks"][0]["operator_count"]);

  fb::ModelT m;
  std::string error;
  REQUIRE(host::UnpackModel(host::ModelBytes(file), &m, &error));
  REQUIRE(d["operators"].size() == m.operators.size());
  uint64_t weight_bytes = 0;
  bool per_channel = false;
  for (const auto& op : d["operators"]) {
    weight_bytes += op["weight_bytes"].get<uint64_t>();
    if (op["op"] == "FULLY_CONNECTED") {
      CHECK(op["weight_bytes"].get<uint64_t>() > 0);
      CHECK(op["inputs"][1]["constant"] == true);
      per_channel |= op["inputs"][1]["quantization"].get<std::string>().rfind("per-channel", 0) == 0;
    }
  }
  CHECK(per_channel);
  CHECK(d["weight_bytes"] == weight_bytes);
  REQUIRE(d["arena"].size() == 2);
  CHECK(d["arena"][0]["batch"] == 1);
  CHECK(d["arena"][1]["batch"] == 32);
  CHECK(d["arena"][0]["reference"].get<uint64_t>() < d["arena"][1]["reference"].get<uint64_t>());
  REQUIRE(d["metrics"].size() == 1);
  CHECK(d["metrics"][0]["name"] == "int8/click/auc");
  CHECK(d["golden_case_count"] == 1);
  CHECK(d["golden_cases"][0]["rows"] == 4);
}

TEST_CASE("a valid file, as text") {
  TempDir dir;
  const Outcome o = Inspect({dir.Write("m.mtan", RichInt8Model())});
  REQUIRE_MESSAGE(o.code == 0, o.err);
  for (const std::string& want : std::vector<std::string>{"format " + kVersion, "producer: mtan-convert 1.0", "inputs (10)", "tasks (3)",
                           "category", "MULTICLASS", "plan:", "ATTENTION_POOL", "per-channel",
                           "arena bytes", "int8/click/auc", "golden cases: 1"})
    CHECK_MESSAGE(o.out.find(want) != std::string::npos, "missing '" << want << "'");
  CHECK(o.err.empty());
}

TEST_CASE("tensor inputs: listed with their dtype and shape") {
  TempDir dir;
  fb::ModelT m = tiny::IdsModel(4);
  const std::string path = dir.Write("ids.mtan", host::FinishModel(m, 4));
  const Outcome text = Inspect({path});
  REQUIRE_MESSAGE(text.code == 0, text.err);
  for (const std::string& want : std::vector<std::string>{"tensor inputs (1)", "ids", "INT64 [4] ids: row numbers",
                                                          "EMBEDDING_BAG", "i64→f32"})
    CHECK_MESSAGE(text.out.find(want) != std::string::npos, "missing '" << want << "'");
  const Outcome json = Inspect({path, "--json"});
  REQUIRE_MESSAGE(json.code == 0, json.err);
  const auto d = nlohmann::json::parse(json.out);
  REQUIRE(d["tensor_inputs"].size() == 1);
  CHECK(d["tensor_inputs"][0]["name"] == "ids");
  CHECK(d["tensor_inputs"][0]["dtype"] == "INT64");
  CHECK(d["tensor_inputs"][0]["shape"] == std::vector<int>{4});
  CHECK(d["tensor_inputs"][0]["id_map"] == "ROWS");
  // Its table, once, with its bytes.
  CHECK(text.out.find("embedding tables (1)") != std::string::npos);
  CHECK(text.out.find("table                    6 rows x 2 FLOAT32 (48 bytes), read by ids") != std::string::npos);
  REQUIRE(d["tables"].size() == 1);
  CHECK(d["tables"][0]["rows"] == 6);
  CHECK(d["tables"][0]["bytes"] == 48);
  CHECK(d["tables"][0]["read_by"] == std::vector<std::string>{"ids"});
}

TEST_CASE("--summary: the tasks and the arena without the long lists") {
  TempDir dir;
  const std::string path = dir.Write("m.mtan", RichInt8Model());
  const Outcome full = Inspect({path});
  const Outcome o = Inspect({path, "--summary"});
  REQUIRE_MESSAGE(o.code == 0, o.err);
  for (const std::string& want : std::vector<std::string>{"format " + kVersion, "inputs (10)", "tasks (3)", "plan:", "operators (",
                           "weight bytes", "arena bytes", "metrics (1)", "golden cases: 1"})
    CHECK_MESSAGE(o.out.find(want) != std::string::npos, "missing '" << want << "'");
  // The per-input, per-operator and metric lines are what it leaves out.
  for (const char* gone : {"mean 50", "ATTENTION_POOL", "per-channel", "int8/click/auc"}) {
    CHECK_MESSAGE(full.out.find(gone) != std::string::npos, "full output lacks '" << gone << "'");
    CHECK_MESSAGE(o.out.find(gone) == std::string::npos, "summary has '" << gone << "'");
  }
  const auto lines = [](const std::string& s) { return std::count(s.begin(), s.end(), '\n'); };
  CHECK(lines(o.out) <= 25);
  CHECK(lines(o.out) < lines(full.out));
  CHECK(Inspect({path, "--summary", "--json"}).code == 2);
  const Outcome help = Inspect({"--help"});
  CHECK(help.code == 0);
  CHECK(help.out.find("--summary") != std::string::npos);
}

TEST_CASE("a corrupted file gives the verifier's message and a non-zero exit") {
  TempDir dir;
  const std::vector<uint8_t> good = RichInt8Model();

  SUBCASE("one flipped byte: checksum") {
    std::vector<uint8_t> bad = good;
    bad[bad.size() / 2] ^= 0x40;
    const Outcome o = Inspect({dir.Write("bad.mtan", bad)});
    CHECK(o.code == 1);
    CHECK_MESSAGE(o.err.find("MTAN_ERROR_CHECKSUM") != std::string::npos, o.err);
    CHECK(o.out.empty());
  }
  SUBCASE("truncated") {
    std::vector<uint8_t> bad(good.begin(), good.begin() + good.size() / 3);
    const Outcome o = Inspect({dir.Write("short.mtan", bad), "--json"});
    CHECK(o.code == 1);
    CHECK_MESSAGE(o.err.find("MTAN_ERROR_") != std::string::npos, o.err);
    CHECK(o.out.empty());
  }
  SUBCASE("empty, and not a model") {
    CHECK(Inspect({dir.Write("empty.mtan", {})}).code == 1);
    const Outcome o = Inspect({dir.Write("text.mtan", std::vector<uint8_t>(4096, 'x'))});
    CHECK(o.code == 1);
    CHECK_MESSAGE(o.err.find("MTAN_ERROR_") != std::string::npos, o.err);
  }
  SUBCASE("hostile but sealed: the verifier, not the checksum, rejects it") {
    // Every 61st byte of the FlatBuffer overwritten, each time re-sealed:
    // never a crash, and either a clean description or a verifier status.
    int rejected = 0;
    for (size_t i = 8; i + kFooterBytes < good.size(); i += 61) {
      std::vector<uint8_t> bad = good;
      bad[i] = static_cast<uint8_t>(bad[i] ^ 0xA5);
      const Outcome o = Inspect({dir.Write("hostile.mtan", Reseal(bad)), "--json"});
      CHECK((o.code == 0 || o.code == 1));
      if (o.code == 1) {
        ++rejected;
        CHECK_MESSAGE(o.err.find("MTAN_ERROR_") != std::string::npos, o.err);
        CHECK(o.err.find("MTAN_ERROR_CHECKSUM") == std::string::npos);
      } else {
        CHECK(nlohmann::json::parse(o.out).is_object());
      }
    }
    CHECK(rejected > 0);
  }
  SUBCASE("a missing file, and no file") {
    const Outcome o = Inspect({"/nonexistent/m.mtan"});
    CHECK(o.code == 1);
    CHECK(o.err.find("/nonexistent/m.mtan") != std::string::npos);
    CHECK(Inspect({}).code == 2);
  }
}
