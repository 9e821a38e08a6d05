// What a benchmark result came from: commit, compiler, build type, CPU and
// the libtorch peer.
#include <cstdio>
#include <fstream>
#include <string>

#include "bench.h"
#include "int8_peak.h"
#include "torch_peer.h"

#ifndef MTAN_BENCH_COMMIT
#define MTAN_BENCH_COMMIT "unknown"
#endif
#ifndef MTAN_BENCH_BUILD_TYPE
#define MTAN_BENCH_BUILD_TYPE "unknown"
#endif

namespace mtan::bench {
namespace {

std::string ReadCpuName() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("model name", 0) == 0) {
      const size_t colon = line.find(':');
      if (colon != std::string::npos) {
        size_t b = colon + 1;
        while (b < line.size() && line[b] == ' ') ++b;
        return line.substr(b);
      }
    }
  }
  return "unknown";
}

}  // namespace

// The source tree's commit now, when this binary runs beside its source
// (a developer's build); empty elsewhere (a binary copied to a device).
// " (runtime/ modified)" marks a runtime with uncommitted changes.
std::string CommitNow() {
#ifdef MTAN_BENCH_SOURCE_DIR
  auto run = [](const std::string& cmd) {
    std::string text;
    FILE* p = popen(cmd.c_str(), "r");
    if (p == nullptr) return text;
    char buf[256];
    while (fgets(buf, sizeof(buf), p) != nullptr) text += buf;
    if (pclose(p) != 0) text.clear();
    return text;
  };
  const std::string dir = MTAN_BENCH_SOURCE_DIR;
  std::string commit = run("git -C '" + dir + "' rev-parse --short=12 HEAD 2>/dev/null");
  while (!commit.empty() && (commit.back() == '\n' || commit.back() == ' ')) commit.pop_back();
  if (commit.empty()) return "";
  if (!run("git -C '" + dir + "' status --porcelain -- runtime 2>/dev/null").empty())
    commit += " (runtime/ modified)";
  return commit;
#else
  return "";
#endif
}

BuildInfo GetBuildInfo() {
  BuildInfo b;
  b.commit = CommitNow();
  if (b.commit.empty()) b.commit = MTAN_BENCH_COMMIT;
#if defined(__clang__)
  b.compiler = std::string("clang ") + __clang_version__;
#elif defined(__GNUC__)
  b.compiler = std::string("gcc ") + __VERSION__;
#else
  b.compiler = "unknown";
#endif
  b.build_type = MTAN_BENCH_BUILD_TYPE;
  b.cpu = ReadCpuName();
  b.torch = TorchPeerDescription();
  const Int8Peak peak = MeasureInt8Peak();
  b.int8_peak_isa = peak.isa;
  b.int8_peak_gops = peak.gops;
  return b;
}

}  // namespace mtan::bench
