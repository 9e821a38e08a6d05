#include "arch.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>

namespace mtan::trainer {

bool ParseArch(const std::string& name, Arch* arch) {
  for (Arch a : {Arch::kMtan, Arch::kMtanMask, Arch::kMtanCross, Arch::kSharedBottom,
                 Arch::kSingle}) {
    if (name == ArchName(a)) {
      *arch = a;
      return true;
    }
  }
  return false;
}

const char* ArchName(Arch arch) {
  switch (arch) {
    case Arch::kMtan: return "mtan";
    case Arch::kMtanMask: return "mtan-mask";
    case Arch::kMtanCross: return "mtan-cross";
    case Arch::kSharedBottom: return "shared-bottom";
    case Arch::kSingle: return "single";
  }
  return "?";
}

int64_t ParamCount(const ModelConfig& c) {
  auto dense = [](int64_t in, int64_t out) { return in * out + out; };
  int64_t trunk = 0;
  int64_t width = c.trunk_inputs();
  for (int w : c.trunk) {
    trunk += dense(width, w);
    width = w;
  }
  int64_t total = trunk * c.num_trunks();
  for (const EmbeddingConfig& t : c.tables) total += t.rows * t.dim;
  for (int out : c.outputs) {
    if (c.masks()) total += dense(width, c.mask_hidden) + dense(c.mask_hidden, width);
    total += dense(width, c.task_width);
    if (c.cross()) total += dense(c.task_width, c.att_hidden) + dense(c.att_hidden, 1);
    total += dense(c.task_width, out);
  }
  return total;
}

std::vector<int> MatchTrunk(const ModelConfig& config, int64_t target) {
  ModelConfig c = config;
  std::vector<int> best = config.trunk;
  int64_t best_gap = -1;
  for (int step = 1; step <= 4000; ++step) {
    const double scale = step / 1000.0;  // 0.001 .. 4.0
    for (size_t i = 0; i < config.trunk.size(); ++i) {
      c.trunk[i] = std::max(4, static_cast<int>(std::lround(config.trunk[i] * scale)));
    }
    const int64_t gap = std::llabs(ParamCount(c) - target);
    if (best_gap < 0 || gap < best_gap) {
      best_gap = gap;
      best = c.trunk;
    }
  }
  return best;
}

}  // namespace mtan::trainer
