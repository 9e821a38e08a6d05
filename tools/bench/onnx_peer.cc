#include "onnx_peer.h"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <limits>

#include <nlohmann/json.hpp>

#include "model_io.h"

#ifndef MTAN_BENCH_ONNX_DIR
#define MTAN_BENCH_ONNX_DIR ""
#endif
#ifndef MTAN_BENCH_SCHEMA_PY
#define MTAN_BENCH_SCHEMA_PY ""
#endif

namespace mtan::bench {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

constexpr double kOpenTimeoutS = 600;  // session creation and a profiled run
constexpr double kRunTimeoutS = 120;   // a block of timed runs

const char kBase64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

std::string Base64(const void* data, size_t n) {
  const auto* p = static_cast<const uint8_t*>(data);
  std::string s;
  s.reserve((n + 2) / 3 * 4);
  for (size_t i = 0; i < n; i += 3) {
    const uint32_t v = (uint32_t{p[i]} << 16) | (i + 1 < n ? uint32_t{p[i + 1]} << 8 : 0) |
                       (i + 2 < n ? uint32_t{p[i + 2]} : 0);
    s += kBase64[(v >> 18) & 63];
    s += kBase64[(v >> 12) & 63];
    s += i + 1 < n ? kBase64[(v >> 6) & 63] : '=';
    s += i + 2 < n ? kBase64[v & 63] : '=';
  }
  return s;
}

bool FromBase64(const std::string& s, std::vector<uint8_t>* out) {
  out->clear();
  uint32_t v = 0;
  int bits = 0;
  for (char ch : s) {
    if (ch == '=') break;
    const char* at = std::strchr(kBase64, ch);
    if (at == nullptr || ch == '\0') return false;
    v = (v << 6) | static_cast<uint32_t>(at - kBase64);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out->push_back(static_cast<uint8_t>(v >> bits));
    }
  }
  return true;
}

// "model.f32.mtan" -> "model.f32"; "synthetic-int8" stays.
std::string Stem(const std::string& name) {
  std::string s = fs::path(name).filename().string();
  if (s.size() > 5 && s.compare(s.size() - 5, 5, ".mtan") == 0) s.resize(s.size() - 5);
  for (char& ch : s)
    if (!std::isalnum(static_cast<unsigned char>(ch)) && ch != '.' && ch != '-' && ch != '_') ch = '_';
  return s.empty() ? "model" : s;
}

// Fields of the peer's replies, read without throwing on a wrong type.
std::string Str(const json& j, const char* key) {
  return j.contains(key) && j[key].is_string() ? j[key].get<std::string>() : "?";
}
double Num(const json& j, const char* key) {
  return j.contains(key) && j[key].is_number() ? j[key].get<double>() : 0.0;
}

std::string KernelList(const json& kernels) {
  std::vector<std::pair<int, std::string>> k;
  if (!kernels.is_object()) return "";
  for (auto it = kernels.begin(); it != kernels.end(); ++it)
    if (it.value().is_number_integer()) k.push_back({it.value().get<int>(), it.key()});
  std::sort(k.begin(), k.end(), [](const auto& a, const auto& b) {
    return a.first != b.first ? a.first > b.first : a.second < b.second;
  });
  std::string s;
  for (const auto& [n, op] : k) s += (s.empty() ? "" : ", ") + op + " " + std::to_string(n);
  return s;
}

}  // namespace

OnnxTools DefaultOnnxTools() { return {MTAN_BENCH_ONNX_DIR, MTAN_BENCH_SCHEMA_PY}; }

std::string OnnxPeerMissing(const Config& c, const OnnxTools& tools) {
  std::string out, error;
  const std::string exporter = tools.scripts_dir + "/mtan2onnx.py";
  if (tools.scripts_dir.empty() || !fs::exists(exporter))
    return "the exporter " + exporter + " is not there (mtan-bench --onnx runs beside its source tree)";
  if (!fs::exists(tools.schema_py + "/mtan/fb/Model.py"))
    return "no flatc --python code of schema/mtan.fbs in " + tools.schema_py + " (build mtan-bench)";
  if (!RunCommand({c.onnx_python, "-c", "import onnx, numpy, flatbuffers"}, &out, &error))
    return "--onnx-python " + c.onnx_python + " cannot import onnx, numpy and flatbuffers (" +
           error + (out.empty() ? "" : ": " + out.substr(0, out.find('\n'))) +
           "); Debian 12: tools/setup.sh installs python3-onnx python3-numpy python3-flatbuffers";
  if (!RunCommand({c.onnx_node, "--version"}, &out, &error))
    return "--onnx-node " + c.onnx_node + " does not run (" + error + "); tools/setup.sh installs Node.js";
  if (!fs::exists(tools.scripts_dir + "/node_modules/onnxruntime-node/package.json"))
    return "onnxruntime-node is not installed in " + tools.scripts_dir +
           "/node_modules (tools/setup.sh runs ONNXRUNTIME_NODE_INSTALL=skip npm ci there)";
  return "";
}

double MaxAbsDiff(const std::vector<float>& a, const std::vector<float>& b, size_t* at) {
  double worst = 0;
  size_t where = 0;
  for (size_t i = 0; i < std::min(a.size(), b.size()); ++i) {
    const double d = std::fabs(static_cast<double>(a[i]) - b[i]);
    const double dd = std::isnan(d) ? std::numeric_limits<double>::infinity() : d;
    if (dd > worst) worst = dd, where = i;
  }
  if (a.size() != b.size()) worst = std::numeric_limits<double>::infinity();
  if (at != nullptr) *at = where;
  return worst;
}

bool CheckPeerOutputs(const std::vector<float>& ours, const std::vector<float>& peer, uint32_t width,
                      bool int8, double int8_tolerance, double* max_diff, std::string* error) {
  if (ours.size() != peer.size()) {
    *error = "ONNX Runtime returned " + std::to_string(peer.size()) + " floats, mtan " +
             std::to_string(ours.size());
    return false;
  }
  size_t at = 0;
  *max_diff = MaxAbsDiff(ours, peer, &at);
  double worst_excess = 0;
  size_t worst = 0;
  for (size_t i = 0; i < ours.size(); ++i) {
    const double d = std::fabs(static_cast<double>(ours[i]) - peer[i]);
    const double tol = int8 ? int8_tolerance : 1e-4 * std::max(1.0, std::fabs(double{ours[i]}));
    const double excess = std::isnan(d) ? std::numeric_limits<double>::infinity() : d - tol;
    if (excess > worst_excess) worst_excess = excess, worst = i;
  }
  if (worst_excess <= 0) return true;
  const size_t w = std::max<uint32_t>(width, 1);
  *error = std::string("ONNX Runtime's ") + (int8 ? "int8" : "float32") +
           " output differs from mtan's at row " + std::to_string(worst / w) + ", output " +
           std::to_string(worst % w) + ": " + std::to_string(peer[worst]) + " vs " +
           std::to_string(ours[worst]) + " (max |diff| " + std::to_string(*max_diff) +
           (int8 ? ", int8 tolerance " + std::to_string(int8_tolerance) : std::string()) +
           "): the export does not compute the model";
  return false;
}

OnnxPeer::~OnnxPeer() {
  if (remove_dir_) {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
}

bool OnnxPeer::Start(const Config& c, std::string* error, const OnnxTools& tools) {
  tools_ = tools;
  python_ = c.onnx_python;
  const std::string missing = OnnxPeerMissing(c, tools);
  if (!missing.empty()) {
    *error = "--onnx: " + missing;
    return false;
  }
  std::error_code ec;
  if (c.onnx_dir.empty()) {
    std::string tmpl = (fs::temp_directory_path(ec) / "mtan-bench-onnx-XXXXXX").string();
    if (mkdtemp(tmpl.data()) == nullptr) {
      *error = "--onnx: cannot make a temporary folder " + tmpl + ": " + std::strerror(errno);
      return false;
    }
    dir_ = tmpl;
    remove_dir_ = true;
  } else {
    dir_ = c.onnx_dir;
    fs::create_directories(dir_, ec);
    if (!fs::is_directory(dir_)) {
      *error = "--onnx-dir " + dir_ + ": not a folder" + (ec ? " (" + ec.message() + ")" : "");
      return false;
    }
  }
  if (!child_.Start({c.onnx_node, tools_.scripts_dir + "/ort_peer.js", "--api=" + c.onnx_api}, error))
    return false;
  json h;
  if (!Call(R"({"cmd":"hello"})", kOpenTimeoutS, &h, error)) return false;
  description_ = "onnxruntime-node " + Str(h, "ort") + " (Node.js " + Str(h, "node") +
                 ", " + c.onnx_api + " run), CPU execution provider, intra-op threads = --threads, " +
                 "inter-op 1, sequential, graph optimization all, denormals as zero; int8 as QDQ " +
                 "with uint8 activations; exports in " + (remove_dir_ ? "a temporary folder" : dir_);
  return true;
}

bool OnnxPeer::Call(const std::string& request, double timeout_s, json* reply,
                    std::string* error) {
  std::string line;
  if (!child_.Request(request, &line, timeout_s, error)) {
    *error = "ONNX Runtime peer: " + *error;
    return false;
  }
  json j = json::parse(line, nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    *error = "ONNX Runtime peer: not a reply: " + line.substr(0, 200);
    return false;
  }
  if (!j.contains("ok") || j["ok"] != true) {
    *error = "ONNX Runtime peer: " + Str(j, "error");
    return false;
  }
  *reply = std::move(j);
  return true;
}

bool OnnxPeer::Export(const ModelFile& m, const std::string& task, bool identity, std::string* path,
                      std::string* error) {
  auto st = stems_.find(&m);
  if (st == stems_.end()) {
    std::string stem = Stem(m.name);
    for (int k = 2; std::any_of(stems_.begin(), stems_.end(), [&](const auto& e) { return e.second == stem; });
         ++k)
      stem = Stem(m.name) + "-" + std::to_string(k);
    // The exporter reads a file: the bytes mtan-bench verified.
    const std::vector<uint8_t> bytes(m.bytes.data(), m.bytes.data() + m.bytes.size());
    if (!host::WriteFileAtomic(dir_ + "/" + stem + ".mtan", bytes, error)) return false;
    st = stems_.emplace(&m, stem).first;
  }
  const std::string what = identity ? "identity" : task;
  const std::string key = st->second + "." + what;
  auto it = exports_.find(key);
  if (it != exports_.end()) {
    *path = it->second;
    return true;
  }
  const std::string out = dir_ + "/" + key + ".onnx";
  std::vector<std::string> argv = {python_, tools_.scripts_dir + "/mtan2onnx.py",
                                   dir_ + "/" + st->second + ".mtan", "-o", out,
                                   "--schema-py", tools_.schema_py};
  if (identity) argv.push_back("--identity");
  else argv.insert(argv.end(), {"--task", task});
  std::string output;
  if (!RunCommand(argv, &output, error)) {
    while (!output.empty() && output.back() == '\n') output.pop_back();
    *error = "exporting " + m.name + " (" + what + ") to ONNX: " + *error +
             (output.empty() ? "" : ": " + output);
    return false;
  }
  exports_[key] = out;
  *path = out;
  return true;
}

bool OnnxPeer::Open(const std::string& path, uint32_t threads, uint32_t width,
                    const Session** session, std::string* error) {
  const std::string key = path + "#" + std::to_string(threads);
  auto it = sessions_.find(key);
  if (it != sessions_.end()) {
    *session = it->second.get();
    return true;
  }
  json req = {{"cmd", "open"}, {"key", key}, {"path", path}, {"threads", threads}, {"width", width}};
  const bool inspect = !profiled_[path];
  if (inspect) {
    // x.onnx -> x.ort.optimized.onnx and x.ort.profile_<time>.json beside it.
    const fs::path p(path);
    req["inspect"] = (p.parent_path() / p.stem()).string() + ".ort";
  }
  json j;
  if (!Call(req.dump(), kOpenTimeoutS, &j, error)) return false;
  auto s = std::make_unique<Session>();
  s->key = key;
  s->load_us = Num(j, "load_us");
  if (inspect) {
    s->kernels = KernelList(j.contains("kernels") ? j["kernels"] : json());
    profiled_[path] = true;
  } else {
    for (const auto& [k, other] : sessions_)
      if (k.rfind(path + "#", 0) == 0 && !other->kernels.empty()) s->kernels = other->kernels;
  }
  *session = s.get();
  sessions_[key] = std::move(s);
  return true;
}

bool OnnxPeer::SetInput(const Session& s, const std::vector<float>& rows, uint32_t batch,
                        std::string* error) {
  const json req = {{"cmd", "input"}, {"key", s.key}, {"batch", batch},
                    {"rows", Base64(rows.data(), rows.size() * sizeof(float))}};
  json reply;
  return Call(req.dump(), kRunTimeoutS, &reply, error);
}

bool OnnxPeer::Run(const Session& s, std::vector<float>* out, std::string* error) {
  json reply;
  if (!Call(json{{"cmd", "check"}, {"key", s.key}}.dump(), kRunTimeoutS, &reply, error)) return false;
  std::vector<uint8_t> bytes;
  if (!FromBase64(Str(reply, "out"), &bytes) || bytes.size() % 4 != 0) {
    *error = "ONNX Runtime peer: the output is not base64 float32";
    return false;
  }
  out->resize(bytes.size() / 4);
  std::memcpy(out->data(), bytes.data(), bytes.size());
  return true;
}

bool OnnxPeer::Time(const Session& s, int n, std::vector<double>* us, std::string* error) {
  json j;
  if (!Call(json{{"cmd", "time"}, {"key", s.key}, {"n", n}}.dump(), kRunTimeoutS, &j, error))
    return false;
  const json t = j.contains("us") ? j["us"] : json();
  if (!t.is_array() || t.size() != static_cast<size_t>(n) ||
      !std::all_of(t.begin(), t.end(), [](const json& v) { return v.is_number(); })) {
    *error = "ONNX Runtime peer: " + std::to_string(n) + " run times asked, another answer";
    return false;
  }
  for (const json& v : t) us->push_back(v.get<double>());
  return true;
}

}  // namespace mtan::bench
