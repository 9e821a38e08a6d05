// Architectures mtan-train builds, and their sizes (no libtorch).
//
//   mtan           shared trunk, a feature-attention mask per task, cross-task attention
//   mtan-mask      masks only
//   mtan-cross     cross-task attention only
//   shared-bottom  shared trunk, plain task layers
//   single         one trunk per task, no masks, no cross; trunk widths scaled
//                  so the total parameter count is close to mtan's
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace mtan::trainer {

enum class Arch { kMtan, kMtanMask, kMtanCross, kSharedBottom, kSingle };

bool ParseArch(const std::string& name, Arch* arch);
const char* ArchName(Arch arch);

struct ModelConfig {
  Arch arch = Arch::kMtan;
  int inputs = 0;
  std::vector<int> trunk = {256, 128};  // widths of the trunk layers (each + ReLU)
  int mask_hidden = 32;                 // feature attention: a = sigmoid(V relu(U h))
  int task_width = 64;                  // z_t = relu(W_t h^_t + b_t)
  int att_hidden = 32;                  // cross attention: e = v' tanh(A z + a)
  double dropout = 0.0;                 // after every ReLU of trunk and task layers
  std::vector<int> outputs;             // per task: 1, or classes for multiclass

  int num_tasks() const { return static_cast<int>(outputs.size()); }
  bool masks() const { return arch == Arch::kMtan || arch == Arch::kMtanMask; }
  bool cross() const { return arch == Arch::kMtan || arch == Arch::kMtanCross; }
  int num_trunks() const { return arch == Arch::kSingle ? num_tasks() : 1; }
};

// Number of trainable weights and biases of the network `config` describes
// (the loss-weighting parameters are not counted).
int64_t ParamCount(const ModelConfig& config);

// Trunk widths proportional to config.trunk (each at least 4) whose
// ParamCount is closest to `target`.
std::vector<int> MatchTrunk(const ModelConfig& config, int64_t target);

}  // namespace mtan::trainer
