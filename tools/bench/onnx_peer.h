// ONNX Runtime as a peer of mtan-bench (--onnx): each .mtan exported to ONNX
// (tools/bench/onnx/mtan2onnx.py on Debian's python3-onnx: float, or QDQ int8
// with the file's scales and zero points), run by onnxruntime-node in a child
// process (tools/bench/onnx/ort_peer.js) that times its own runs in blocks,
// so that the harness interleaves those blocks with mtan's runs without an
// IPC round trip inside a timed run. A benchmark peer only: nothing of it is
// linked into, or needed by, the runtime.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "bench.h"
#include "instance.h"
#include "subprocess.h"

namespace mtan::bench {

// Where the exporter and the peer script are (the source tree mtan-bench was
// built from) and the flatc --python code of the schema (its build tree).
struct OnnxTools {
  std::string scripts_dir;  // mtan2onnx.py, ort_peer.js, node_modules/
  std::string schema_py;    // mtan/fb/*.py
};
OnnxTools DefaultOnnxTools();

// Empty when the exporter's Python modules, Node.js and onnxruntime-node are
// there for `c`'s --onnx-python and --onnx-node; else what is missing and how
// to install it.
std::string OnnxPeerMissing(const Config& c, const OnnxTools& tools = DefaultOnnxTools());

// The largest |a[i] - b[i]| (NaN anywhere: infinity); *at its index.
double MaxAbsDiff(const std::vector<float>& a, const std::vector<float>& b, size_t* at = nullptr);

// ONNX Runtime must compute mtan's function before it is timed. Float: within
// float noise (1e-4 relative, 1e-4 absolute below 1). Int8: requantization
// rounds at ties in a different order and the lookup-table activations are
// computed differently, so single int8 steps differ: within `int8_tolerance`
// (the caller's bound; see bench.cc). False with a message naming the row
// and output where they differ most.
bool CheckPeerOutputs(const std::vector<float>& ours, const std::vector<float>& peer, uint32_t width,
                      bool int8, double int8_tolerance, double* max_diff, std::string* error);

class OnnxPeer {
 public:
  struct Session {
    std::string key;
    double load_us = 0;   // session creation (parse, optimize, pack), in the peer
    std::string kernels;  // operators ORT ran in a profiled run, "QGemm 50, ..."
  };

  // Makes the folder of the exports (--onnx-dir, or a temporary one removed
  // with this object) and starts the peer.
  bool Start(const Config& c, std::string* error, const OnnxTools& tools = DefaultOnnxTools());
  ~OnnxPeer();

  const std::string& dir() const { return dir_; }
  // "onnxruntime-node 1.30.0 (Node v20...): ..." with every session setting.
  const std::string& description() const { return description_; }

  // The ONNX file of `m` for `task` ("all" or a task name), exported once.
  // identity: an Identity of the input rows instead (the binding's floor).
  bool Export(const ModelFile& m, const std::string& task, bool identity, std::string* path,
              std::string* error);
  // A session of `path` on `threads` intra-op threads, opened once; the
  // first of each file is profiled (Session::kernels).
  bool Open(const std::string& path, uint32_t threads, uint32_t width, const Session** session,
            std::string* error);
  bool SetInput(const Session& s, const std::vector<float>& rows, uint32_t batch,
                std::string* error);
  // One run on the input, its output into *out (resized).
  bool Run(const Session& s, std::vector<float>* out, std::string* error);
  // n runs timed by the peer, microseconds each, appended to *us.
  bool Time(const Session& s, int n, std::vector<double>* us, std::string* error);

 private:
  // One request; *reply is the peer's answer when it says ok.
  bool Call(const std::string& request, double timeout_s, nlohmann::json* reply,
            std::string* error);
  OnnxTools tools_;
  std::string python_, dir_, description_;
  bool remove_dir_ = false;
  LineChild child_;
  std::map<const ModelFile*, std::string> stems_;
  std::map<std::string, std::string> exports_;  // stem.task -> path
  std::map<std::string, std::unique_ptr<Session>> sessions_;  // path#threads
  std::map<std::string, bool> profiled_;
};

}  // namespace mtan::bench
