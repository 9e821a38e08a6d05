// The flag parser: good values land in the config, and every bad value gets
// a message that names the flag and the value.
#include <string>
#include <vector>

#include "bench.h"
#include "bench_test_util.h"
#include "doctest/doctest.h"
#include "model_io.h"

using namespace mtan::bench;

namespace {

struct Parsed {
  ParseResult result;
  Config config;
  std::string message;
};

Parsed Parse(const std::vector<std::string>& args) {
  std::vector<const char*> argv = {"mtan-bench"};
  for (const std::string& a : args) argv.push_back(a.c_str());
  Parsed p;
  p.result = ParseFlags(static_cast<int>(argv.size()), argv.data(), &p.config, &p.message);
  return p;
}

void CheckRejected(const std::vector<std::string>& args, const std::vector<std::string>& words) {
  const Parsed p = Parse(args);
  CHECK(p.result == ParseResult::kError);
  for (const std::string& w : words)
    CHECK_MESSAGE(p.message.find(w) != std::string::npos, "'" << w << "' not in: " << p.message);
}

}  // namespace

TEST_SUITE("flags") {
  TEST_CASE("comma lists sweep and defaults hold") {
    test::TempDir dir;
    const auto [f, q] = test::WriteTinyModels(dir, 3);
    const Parsed p = Parse({"--model", q, "--model", f, "--float-model", f, "--batch", "1,16,256",
                            "--threads", "1,2", "--task", "each,all", "--output", "json",
                            "--warmup", "0", "--runs", "3", "--min-seconds", "0", "-q"});
    REQUIRE_MESSAGE(p.result == ParseResult::kRun, p.message);
    CHECK(p.config.models == std::vector<std::string>{q, f});
    CHECK(p.config.float_model == f);
    CHECK(p.config.batches == std::vector<uint32_t>{1, 16, 256});
    CHECK(p.config.threads == std::vector<uint32_t>{1, 2});
    CHECK(p.config.tasks == std::vector<std::string>{"each", "all"});
    CHECK(p.config.output == "json");
    CHECK(p.config.warmup == 0);
    CHECK(p.config.runs == 3);
    CHECK(p.config.min_seconds == 0.0);
    CHECK_FALSE(p.config.progress);
    CHECK(p.config.compare_float);
    CHECK(p.config.compare_torch);

    const Parsed d = Parse({"--synthetic"});
    REQUIRE(d.result == ParseResult::kRun);
    CHECK(d.config.batches == std::vector<uint32_t>{1});
    CHECK(d.config.threads == std::vector<uint32_t>{1});
    CHECK(d.config.tasks == std::vector<std::string>{"all"});
    CHECK(d.config.output == "md");
    CHECK(d.config.backends == std::vector<std::string>{"default"});

    const Parsed c = Parse({"--synthetic", "--compare", "float32,overhead", "--backend",
                            "default,xnnpack,reference"});
    REQUIRE(c.result == ParseResult::kRun);
    CHECK(c.config.compare_float);
    CHECK(c.config.overhead);
    CHECK_FALSE(c.config.compare_reference);
    CHECK_FALSE(c.config.compare_torch);
    CHECK(c.config.backends == std::vector<std::string>{"default", "xnnpack", "reference"});
  }

  TEST_CASE("batch 0 and other bad batches") {
    CheckRejected({"--synthetic", "--batch", "0"}, {"--batch", "'0'", "1..65536"});
    CheckRejected({"--synthetic", "--batch", "1,0,4"}, {"--batch", "'0'"});
    CheckRejected({"--synthetic", "--batch", "-1"}, {"--batch", "'-1'"});
    CheckRejected({"--synthetic", "--batch", "abc"}, {"--batch", "'abc'"});
    CheckRejected({"--synthetic", "--batch", "1,,2"}, {"--batch", "''"});
    CheckRejected({"--synthetic", "--batch", "16,"}, {"--batch", "''"});
    CheckRejected({"--synthetic", "--batch", "65537"}, {"--batch", "'65537'"});
    CheckRejected({"--synthetic", "--batch", "99999999999999999999"}, {"--batch"});
  }

  TEST_CASE("bad threads, outputs, backends, peers, counts") {
    CheckRejected({"--synthetic", "--threads", "0"}, {"--threads", "'0'"});
    CheckRejected({"--synthetic", "--output", "xml"}, {"--output", "xml"});
    CheckRejected({"--synthetic", "--backend", "gpu"}, {"--backend", "'gpu'", "default", "xnnpack"});
    CheckRejected({"--synthetic", "--compare", "tflite"}, {"--compare", "'tflite'", "libtorch"});
    CheckRejected({"--synthetic", "--runs", "0"}, {"--runs"});
    CheckRejected({"--synthetic", "--warmup", "-3"}, {"--warmup"});
    CheckRejected({"--synthetic", "--min-seconds", "-1"}, {"--min-seconds"});
    CheckRejected({"--synthetic", "--task", "click,,all"}, {"--task", "empty"});
    CheckRejected({"--synthetic", "--no-such-flag"}, {"--no-such-flag"});
    CheckRejected({}, {"--model"});
  }

  TEST_CASE("the ONNX Runtime peer's flags") {
    const Parsed d = Parse({"--synthetic"});
    REQUIRE(d.result == ParseResult::kRun);
    CHECK_FALSE(d.config.onnx);
    CHECK(d.config.onnx_api == "binding");
    CHECK(d.config.onnx_python == "/usr/bin/python3");
    CHECK(d.config.onnx_node == "node");
    const Parsed o = Parse({"--synthetic", "--onnx", "--onnx-dir", "/tmp/x", "--onnx-api",
                            "session", "--onnx-python", "/opt/py", "--onnx-node", "/opt/node"});
    REQUIRE_MESSAGE(o.result == ParseResult::kRun, o.message);
    CHECK(o.config.onnx);
    CHECK(o.config.onnx_dir == "/tmp/x");
    CHECK(o.config.onnx_api == "session");
    CHECK(o.config.onnx_python == "/opt/py");
    CHECK(o.config.onnx_node == "/opt/node");
    CheckRejected({"--synthetic", "--onnx", "--onnx-api", "napi"}, {"--onnx-api", "napi"});
    // The peer's settings without --onnx would silently do nothing.
    for (const char* flag : {"--onnx-dir", "--onnx-api", "--onnx-python", "--onnx-node"})
      CheckRejected({"--synthetic", flag, "binding"}, {flag, "--onnx"});
  }

  TEST_CASE("a missing model file") {
    CheckRejected({"--model", "/nonexistent/m.mtan"}, {"--model", "/nonexistent/m.mtan"});
    CheckRejected({"--synthetic", "--float-model", "/nonexistent/f.mtan"},
                  {"--float-model", "/nonexistent/f.mtan"});
    const test::Outcome o = test::RunBench({"--model", "/nonexistent/m.mtan"});
    CHECK(o.code == 2);
    CHECK(o.err.find("/nonexistent/m.mtan") != std::string::npos);
    CHECK(o.out.empty());
  }

  TEST_CASE("an unknown task names the model's tasks") {
    test::TempDir dir;
    const auto [f, q] = test::WriteTinyModels(dir, 5);
    const test::Outcome o = test::RunBench({"--model", q, "--task", "nope", "-q"});
    CHECK(o.code == 1);
    CHECK_MESSAGE(o.err.find("no task 'nope'") != std::string::npos, o.err);
    CHECK_MESSAGE(o.err.find("click, category, spend") != std::string::npos, o.err);
    CHECK(o.out.empty());  // nothing is measured before the check
  }

  TEST_CASE("a file that is not a model") {
    test::TempDir dir;
    const std::string p = dir.File("junk.mtan");
    std::string error;
    REQUIRE(mtan::host::WriteFileAtomic(p, std::vector<uint8_t>(100, 7), &error));
    const test::Outcome o = test::RunBench({"--model", p, "-q"});
    CHECK(o.code == 1);
    CHECK_MESSAGE(o.err.find("MTAN_ERROR_") != std::string::npos, o.err);
  }

  TEST_CASE("--help and --version answer and exit 0") {
    const Parsed h = Parse({"--help"});
    CHECK(h.result == ParseResult::kExit);
    CHECK(h.message.find("--batch") != std::string::npos);
    const Parsed v = Parse({"--version"});
    CHECK(v.result == ParseResult::kExit);
    CHECK(v.message.find("mtan-bench") != std::string::npos);
  }
}
