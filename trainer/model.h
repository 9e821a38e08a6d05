// The libtorch network of every architecture, in exactly the structure of the
// runtime graph (host/model_io.h), and its export.
//
//   h_0 = (x - mean) / std                   standardised by the caller
//   h_l = relu(W_l h_{l-1} + b_l)            trunk (one per task for `single`)
//   a_t = sigmoid(V_t relu(U_t h_L))         feature attention (masks)
//   z_t = relu(W_t (a_t * h_L) + b_t)        task layer
//   e_ts = v_t' tanh(A_t z_s + a_t) + d      cross-task attention (cross)
//   c_t = sum_s softmax_s(e_t.) z_s          (c_t = z_t without cross)
//   o_t = H_t c_t + d_t                      logits / standardised value
#pragma once

// The parts of libtorch used, not <torch/torch.h>: every file that includes
// this one compiles ~4 s faster.
#include <torch/nn/functional/loss.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/pimpl.h>
#include <torch/types.h>
#include <torch/utils.h>

#include <string>
#include <vector>

#include "arch.h"
#include "dataset.h"
#include "ids.h"

namespace mtan::host {
struct MtanWeights;
}

namespace mtan::trainer {

struct NetOutput {
  std::vector<torch::Tensor> logits;  // per task [B, outputs]
  torch::Tensor alpha;                // [B, T, T]: alpha[b][t][s]; undefined without cross
  // Sum of the squared table rows the bags read (padding excluded), over
  // the rows of the batch, divided by B: the in-batch L2 of the embeddings;
  // undefined without bags.
  torch::Tensor embedding_sq;
};

struct TaskLayers {
  torch::nn::Linear mask_down{nullptr}, mask_up{nullptr};  // masks only
  torch::nn::Linear task{nullptr};
  torch::nn::Linear att{nullptr}, att_score{nullptr};      // cross only
  torch::nn::Linear head{nullptr};
};

class MtanNetImpl : public torch::nn::Module {
 public:
  explicit MtanNetImpl(const ModelConfig& config);
  // x_std [B, F] standardised features; ids[k] [B, L_k] int64 table rows of
  // bag k (-1 pads), as the runtime's EMBEDDING_BAG reads them.
  NetOutput forward(const torch::Tensor& x_std, const std::vector<torch::Tensor>& ids = {});
  const ModelConfig& config() const { return config_; }

  std::vector<torch::Tensor> tables;  // [rows, dim] each, named "embedding<k>"
  std::vector<std::vector<torch::nn::Linear>> trunks;
  std::vector<TaskLayers> tasks;

 private:
  ModelConfig config_;
};
TORCH_MODULE(MtanNet);

// Standardisation of a regression label (model space); identity otherwise.
struct LabelScale {
  double mean = 0.0;
  double std = 1.0;
};

// Kendall et al.'s uncertainty-weighted task loss, the tensor form of
// UncertaintyTerm (loss_weights.h): c exp(-s) L + s / 2.
torch::Tensor UncertaintyWeighted(fb::TaskKind type, const torch::Tensor& loss,
                                  const torch::Tensor& log_var);

// Model-space predictions from logits: sigmoid, softmax, or the regression
// value de-standardised (still log1p for log1p labels). [B, outputs].
torch::Tensor Predict(const host::TaskSpec& task, const torch::Tensor& logits,
                      const LabelScale& scale);

// What the runtime returns for raw feature rows `x_raw` [B, F] and id rows
// `ids`: every task's outputs in task order, regression in the label's units
// (expm1 applied).
torch::Tensor RuntimeEquivalentOutputs(MtanNet& net, const host::Spec& spec,
                                       const torch::Tensor& x_raw,
                                       const std::vector<torch::Tensor>& ids,
                                       const torch::Tensor& mean, const torch::Tensor& stddev,
                                       const std::vector<LabelScale>& scales);

// Fills `w` for host's BuildFloatModel: the standardisation, the id inputs
// and their tables (`tables`: the id maps learned from the training rows), every
// layer (W row-major [out][in]), regression heads folded with their label
// scale (w' = w std, b' = b std + mean) and EXPM1 for log1p labels.
void ExportWeights(MtanNet& net, const host::Spec& spec, const std::vector<std::string>& features,
                   const std::vector<host::IdTable>& tables, const std::vector<float>& mean,
                   const std::vector<float>& stddev, const std::vector<LabelScale>& scales,
                   host::MtanWeights* w);

}  // namespace mtan::trainer
