// The ONNX Runtime peer (--onnx): the exporter and onnxruntime-node compute
// the model's function (checked against the runtime's outputs), the int8
// fully-connected layers run as ORT's int8 kernels, and every failure is a
// message. Skipped, with the reason, only where python3-onnx, Node.js or
// onnxruntime-node are missing (tools/setup.sh installs them; CI has them).
#include <filesystem>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "bench.h"
#include "bench_test_util.h"
#include "calibrate.h"
#include "doctest/doctest.h"
#include "instance.h"
#include "model_io.h"
#include "mtan/mtan.h"
#include "onnx_peer.h"
#include "quantize.h"
#include "subprocess.h"
#include "synthetic.h"
#include "test_models.h"

using namespace mtan;
using namespace mtan::bench;
namespace bt = mtan::bench::test;
namespace mt = mtan::test;

namespace {

// Why the peer cannot run here, or empty.
// What is missing for the peer; with MTAN_REQUIRE_ONNX_PEER (CI) a missing
// peer fails the test instead of skipping it.
std::string Missing() {
  const std::string missing = OnnxPeerMissing(Config{});
#ifdef MTAN_REQUIRE_ONNX_PEER
  REQUIRE_MESSAGE(missing.empty(), "MTAN_REQUIRE_ONNX_PEER is on, but: " << missing);
#endif
  return missing;
}

int Count(const std::string& kernels, const std::string& op) {
  // "QGemm 12, DequantizeLinear 3": the number after "op ".
  const std::string key = op + " ";
  for (size_t at = kernels.find(key); at != std::string::npos; at = kernels.find(key, at + 1))
    if (at == 0 || kernels[at - 1] == ' ') return std::stoi(kernels.substr(at + key.size()));
  return 0;
}

// The fully-connected layers of a file with int8 weights, and with float.
std::pair<int, int> FullyConnected(const std::string& path) {
  std::vector<uint8_t> bytes;
  std::string error;
  REQUIRE(host::ReadFile(path, &bytes, &error));
  const host::ModelBytes b(bytes);
  const fb::Model* m = fb::GetModel(b.data());
  int int8 = 0, f32 = 0;
  for (const fb::Operator* op : *m->operators()) {
    if (op->opcode() != fb::OpCode::FULLY_CONNECTED) continue;
    (m->tensors()->Get(op->inputs()->Get(1))->dtype() == fb::DType::INT8 ? int8 : f32) += 1;
  }
  return {int8, f32};
}

// The tiny model as mtan-convert writes one: float heads, and the weights'
// zero points (all 0) not stored.
std::string WriteConvertedInt8(const bt::TempDir& dir, uint32_t seed) {
  fb::ModelT f = mt::FloatModel(seed);
  std::vector<std::vector<float>> values;
  std::string error;
  REQUIRE_MESSAGE(host::CollectActivations(f, mt::RandomRows(seed + 1, 512), 512, &values,
                                           &error), error);
  host::QuantizeOptions options;
  options.float_heads = true;
  fb::ModelT q =
      host::QuantizeModel(f, host::CalibrateRanges(values, host::CalibrationMethod::kMinMax), options);
  for (auto& t : q.tensors)
    if (t->buffer != 0 && t->dtype == fb::DType::INT8 && t->quantization) t->quantization->zero_point.clear();
  const std::string path = dir.File("conv.int8.mtan");
  REQUIRE_MESSAGE(host::WriteFileAtomic(path, host::FinishModel(q, 16), &error), error);
  return path;
}

}  // namespace

TEST_SUITE("onnx_peer") {
  TEST_CASE("outputs are compared with float noise, int8 steps, NaN and sizes") {
    double diff = 0;
    std::string error;
    const std::vector<float> ours = {0.5f, 0.25f, 100.0f, 0.75f};
    CHECK(CheckPeerOutputs(ours, ours, 2, false, 0, &diff, &error));
    CHECK(diff == 0);
    // 1e-4 relative to the value above 1: 100.005 passes, 0.2503 does not.
    CHECK(CheckPeerOutputs(ours, {0.5f, 0.25f, 100.005f, 0.75f}, 2, false, 0, &diff, &error));
    CHECK_FALSE(CheckPeerOutputs(ours, {0.5f, 0.2503f, 100.0f, 0.75f}, 2, false, 0, &diff, &error));
    CHECK_MESSAGE(error.find("row 0, output 1") != std::string::npos, error);
    CHECK(diff == doctest::Approx(3e-4).epsilon(0.01));
    // int8: the caller's absolute bound.
    CHECK(CheckPeerOutputs(ours, {0.51f, 0.25f, 100.0f, 0.74f}, 2, true, 0.02, &diff, &error));
    CHECK_FALSE(CheckPeerOutputs(ours, {0.5f, 0.25f, 100.0f, 0.8f}, 2, true, 0.02, &diff, &error));
    CHECK_MESSAGE(error.find("row 1, output 1") != std::string::npos, error);
    CHECK_MESSAGE(error.find("int8 tolerance") != std::string::npos, error);
    CHECK_FALSE(CheckPeerOutputs(ours, {0.5f, NAN, 100.0f, 0.75f}, 2, true, 1, &diff, &error));
    CHECK_FALSE(CheckPeerOutputs(ours, {0.5f, 0.25f}, 2, false, 0, &diff, &error));
    CHECK_MESSAGE(error.find("returned 2 floats") != std::string::npos, error);
    size_t at = 9;
    CHECK(MaxAbsDiff({1, 2, 3}, {1, 2.5f, 3}, &at) == 0.5);
    CHECK(at == 1);
  }

  TEST_CASE("what is missing is named, with how to install it") {
    Config c;
    c.onnx_python = "/nonexistent/python3";
    const std::string py = OnnxPeerMissing(c);
    CHECK_MESSAGE(py.find("--onnx-python /nonexistent/python3") != std::string::npos, py);
    CHECK_MESSAGE(py.find("python3-onnx") != std::string::npos, py);
    CHECK(OnnxPeerMissing(Config{}, {"/nonexistent", "/nonexistent"}).find("exporter") !=
          std::string::npos);
    if (!Missing().empty()) return;
    c = Config{};
    c.onnx_node = "/nonexistent/node";
    CHECK(OnnxPeerMissing(c).find("--onnx-node /nonexistent/node") != std::string::npos);
    const OnnxTools tools = DefaultOnnxTools();
    CHECK(OnnxPeerMissing(c, {tools.scripts_dir, "/nonexistent"}).find("flatc --python") !=
          std::string::npos);
    // --onnx with a missing tool fails before anything is measured.
    bt::TempDir dir;
    const auto [f, q] = bt::WriteTinyModels(dir, 30);
    const bt::Outcome o = bt::RunBench({"--model", q, "--onnx", "--onnx-node", "/nonexistent/node", "-q"});
    CHECK(o.code == 1);
    CHECK_MESSAGE(o.err.find("--onnx: --onnx-node /nonexistent/node") != std::string::npos, o.err);
    CHECK(o.out.empty());
  }

  TEST_CASE("mtan-bench --onnx: ORT computes the model, its int8 layers as int8 kernels") {
    const std::string missing = Missing();
    if (!missing.empty()) {
      MESSAGE("skipped: " << missing);
      return;
    }
    bt::TempDir dir;
    const std::string f = bt::WriteTinyModels(dir, 31).first;
    const std::string q = WriteConvertedInt8(dir, 31);
    const std::string onnx_dir = dir.File("onnx");
    const bt::Outcome o = bt::RunBench(
        {"--model", q, "--float-model", f, "--task", "click,all", "--batch", "1,3", "--compare",
         "float32", "--onnx", "--onnx-dir", onnx_dir, "--warmup", "1", "--runs", "2",
         "--min-seconds", "0", "--load-runs", "1", "--output", "json", "-q"});
    REQUIRE_MESSAGE(o.code == 0, o.err);
    const auto j = nlohmann::json::parse(o.out);
    // 2 tasks x 2 batches x (model, float32, ORT int8, ORT float32, ORT identity).
    REQUIRE(j.size() == 2 * 2 * 5);
    const auto [fc_int8, fc_float] = FullyConnected(q);
    REQUIRE(fc_int8 > 0);
    REQUIRE(fc_float > 0);  // the heads
    std::set<std::string> seen;
    for (const auto& row : j) {
      const std::string role = row["role"], dtype = row["dtype"], task = row["task"];
      seen.insert(role + "/" + dtype);
      CHECK(row["onnxruntime"].get<std::string>().find("onnxruntime-node") != std::string::npos);
      if (role == "model" || role == "float32") CHECK(row["speedup_vs_onnxruntime"].get<double>() > 0);
      if (role == "onnxruntime") {
        CHECK(row["backend"] == "onnxruntime");
        CHECK(row["runs"].get<uint64_t>() >= 2);
        CHECK(row["p50_us"].get<double>() > 0);
        CHECK(row["load_us"].get<double>() > 0);
        // Checked before timing: float to float noise, int8 to a few steps.
        CHECK(row["check_max_abs_diff"].get<double>() < (dtype == "int8" ? 0.1 : 1e-3));
        const std::string kernels = row["peer_kernels"];
        if (dtype == "int8" && task == "all") {
          // Every int8 fully-connected layer ran as ORT's int8 QGemm, the
          // float heads as float Gemm (fused with their sigmoid or not).
          CHECK_MESSAGE(Count(kernels, "QGemm") == fc_int8, kernels);
          CHECK_MESSAGE(Count(kernels, "Gemm") + Count(kernels, "FusedGemm") == fc_float, kernels);
        }
        if (dtype == "float32") CHECK_MESSAGE(Count(kernels, "QGemm") == 0, kernels);
      }
      if (role == "onnxruntime-identity") CHECK(row["check_max_abs_diff"].is_null());
    }
    CHECK(seen == std::set<std::string>{"model/int8", "float32/float32", "onnxruntime/int8",
                                        "onnxruntime/float32", "onnxruntime-identity/float32"});
    // --onnx-dir keeps the exports and ORT's optimized graphs.
    for (const char* name : {"conv.int8.all.onnx", "conv.int8.click.onnx", "tiny.float32.all.onnx",
                             "conv.int8.identity.onnx", "conv.int8.all.ort.optimized.onnx"})
      CHECK_MESSAGE(std::filesystem::exists(onnx_dir + "/" + name), name);

    // The markdown names the kernels, the checks and the settings.
    const bt::Outcome md = bt::RunBench(
        {"--model", q, "--task", "all", "--compare", "none", "--onnx", "--onnx-api", "session",
         "--warmup", "0", "--runs", "1", "--min-seconds", "0", "--load-runs", "1", "-q"});
    REQUIRE_MESSAGE(md.code == 0, md.err);
    CHECK(md.out.find("| onnxruntime | int8 | onnxruntime | all |") != std::string::npos);
    CHECK(md.out.find("onnxruntime (int8) vs mtan, max |Δ|") != std::string::npos);
    CHECK(md.out.find("ONNX Runtime ran (int8 export of") != std::string::npos);
    CHECK(md.out.find("session run), CPU execution provider") != std::string::npos);
    CHECK(md.out.find("a temporary folder") != std::string::npos);
  }

  TEST_CASE("the exporter: int8 activations, and bad input refused with a message") {
    const std::string missing = Missing();
    if (!missing.empty()) {
      MESSAGE("skipped: " << missing);
      return;
    }
    const OnnxTools tools = DefaultOnnxTools();
    bt::TempDir dir;
    const auto [f, q] = bt::WriteTinyModels(dir, 32);
    auto exporter = [&](std::vector<std::string> args, std::string* output) {
      std::vector<std::string> argv = {"/usr/bin/python3", tools.scripts_dir + "/mtan2onnx.py",
                                       "--schema-py", tools.schema_py};
      argv.insert(argv.end(), args.begin(), args.end());
      std::string error;
      return RunCommand(argv, output, &error);
    };
    std::string out;
    // The file's literal int8 activations compute the same function; ORT
    // then leaves layers whose input and output types its x86 rewrite made
    // differ as float Gemm (why uint8 is the default).
    const std::string i8 = dir.File("i8.onnx");
    REQUIRE_MESSAGE(exporter({q, "--task", "all", "--activations", "int8", "-o", i8}, &out), out);
    Config c;
    c.onnx = true;
    OnnxPeer peer;
    std::string error;
    REQUIRE_MESSAGE(peer.Start(c, &error), error);
    std::vector<uint8_t> bytes;
    REQUIRE(host::ReadFile(q, &bytes, &error));
    host::RuntimeModel rt;
    REQUIRE_MESSAGE(rt.Load(bytes, 4, MTAN_BACKEND_DEFAULT, &error) == MTAN_OK, error);
    const host::ModelBytes mb(bytes);
    const std::vector<float> rows = RowsForModel(*fb::GetModel(mb.data()), 4, 5);
    std::vector<float> want, got;
    REQUIRE_MESSAGE(rt.Run(rows.data(), 4, MTAN_ALL_TASKS, &want, &error) == MTAN_OK, error);
    const OnnxPeer::Session* s = nullptr;
    const uint32_t width = static_cast<uint32_t>(rows.size() / 4);
    REQUIRE_MESSAGE(peer.Open(i8, 1, width, &s, &error), error);
    REQUIRE_MESSAGE(peer.SetInput(*s, rows, 4, &error), error);
    REQUIRE_MESSAGE(peer.Run(*s, &got, &error), error);
    double diff = 0;
    CHECK_MESSAGE(CheckPeerOutputs(want, got, want.size() / 4, true, 0.1, &diff, &error), error);
    CHECK_MESSAGE(Count(s->kernels, "Gemm") > 0, s->kernels);
    CHECK(std::filesystem::exists(dir.File("i8.ort.optimized.onnx")));
    // A reply the peer cannot give is an error, not a crash.
    CHECK_FALSE(peer.SetInput(*s, std::vector<float>(3), 4, &error));
    CHECK_MESSAGE(error.find("input: 12 bytes for 4 rows") != std::string::npos, error);

    CHECK_FALSE(exporter({q, "--task", "nope", "-o", dir.File("x.onnx")}, &out));
    CHECK_MESSAGE(out.find("no task 'nope' (tasks: click, category, spend; or all)") !=
                      std::string::npos, out);
    std::string e2;
    REQUIRE(host::WriteFileAtomic(dir.File("junk.mtan"), std::vector<uint8_t>(64, 7), &e2));
    CHECK_FALSE(exporter({dir.File("junk.mtan"), "-o", dir.File("x.onnx")}, &out));
    CHECK_MESSAGE(out.find("not a .mtan file") != std::string::npos, out);
    CHECK_FALSE(exporter({dir.File("missing.mtan"), "-o", dir.File("x.onnx")}, &out));
    CHECK_MESSAGE(out.find("missing.mtan") != std::string::npos, out);
    CHECK_FALSE(std::filesystem::exists(dir.File("x.onnx")));
    const std::vector<std::string> no_schema = {"/usr/bin/python3", tools.scripts_dir + "/mtan2onnx.py",
                                                "--schema-py", "/nonexistent", q, "-o", dir.File("x.onnx")};
    CHECK_FALSE(RunCommand(no_schema, &out, &error));
    CHECK_MESSAGE(out.find("no flatc --python code of schema/mtan.fbs in /nonexistent") !=
                      std::string::npos, out);
    CHECK_FALSE(exporter({q}, &out));  // no -o: a usage error
    CHECK_MESSAGE(out.find("-o/--output") != std::string::npos, out);
  }
}
