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

// An embedding table, and a bag that pools ids from one.
struct EmbeddingConfig {
  int64_t rows = 0;
  int dim = 0;
};
struct BagConfig {
  int table = 0;
  bool mean = true;  // else sum
};

struct ModelConfig {
  Arch arch = Arch::kMtan;
  int inputs = 0;                       // dense features
  std::vector<EmbeddingConfig> tables;  // shared by every trunk
  std::vector<BagConfig> bags;          // pooled, then concatenated after the dense features
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
  // The width of the trunks' input: the dense features and every bag.
  int trunk_inputs() const {
    int n = inputs;
    for (const BagConfig& b : bags) n += tables[b.table].dim;
    return n;
  }
};

// Number of trainable weights and biases of the network `config` describes,
// embedding tables included (the loss-weighting parameters are not counted).
int64_t ParamCount(const ModelConfig& config);

// Trunk widths proportional to config.trunk (each at least 4) whose
// ParamCount is closest to `target`.
std::vector<int> MatchTrunk(const ModelConfig& config, int64_t target);

}  // namespace mtan::trainer
