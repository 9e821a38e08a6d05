// The MTAN graph in the runtime's operator set, built from float weights:
// the one place that knows which operators make up a trunk, a mask, a task
// layer, cross-task attention and a head. Used by the trainer's export,
// mtan-bench --synthetic and the tests. Host only (STL, may throw).
#pragma once

#include <string>
#include <vector>

#include "mtan_generated.h"
#include "rng.h"

namespace mtan::host {

// A dense layer y = W x + b with W row-major [out][in] (PyTorch's layout).
struct Dense {
  int in = 0;
  int out = 0;
  std::vector<float> w;
  std::vector<float> b;
};

struct TaskHead {
  std::string name;
  fb::TaskKind kind = fb::TaskKind::BINARY;
  std::vector<std::string> class_names;  // multiclass: one per class
  fb::OutputTransform transform = fb::OutputTransform::IDENTITY;
  int trunk = 0;           // which trunk feeds this task (arch `single` has one per task)
  bool has_mask = false;   // a = sigmoid(mask_up(relu(mask_down(h)))), h^ = a * h
  Dense mask_down, mask_up;
  Dense task;              // z = relu(task(h^))
  bool has_cross = false;  // e_s = att_score(tanh(att(z_s))); c = sum_s softmax(e)_s z_s
  Dense att, att_score;    // att_score.out == 1
  Dense head;              // o = head(c), then sigmoid / softmax / identity
};

// A layer with N(0, 1/in) weights and N(0, 0.01/in) biases: the random
// networks of the tests, the fuzzer's seeds and mtan-bench --synthetic.
// Drawn with our own Rng (weights row by row, then biases), so that a seed
// gives the same network under every standard library.
Dense RandomDense(Rng& rng, int in, int out);

// An embedding table and how ids find its rows (host/ids.h's IdTable).
struct EmbeddingTable {
  std::string name;
  fb::IdMap map = fb::IdMap::VOCABULARY;
  std::vector<int64_t> vocabulary;  // VOCABULARY: ascending keys (rows = keys + 1)
  uint32_t hash_buckets = 0;        // HASHED: rows
  int rows = 0, dim = 0;
  std::vector<float> w;             // rows x dim
};

// An id input: its ids, pooled from table `table` into dim floats.
struct IdInput {
  std::string name;
  int length = 1;  // ids per row (-1 pads)
  fb::Combiner combiner = fb::Combiner::MEAN;
  int table = 0;   // index into MtanWeights::tables
};

// Float weights of a whole MTAN (or one of its ablations), in the graph's
// terms. Cross-attention pools over the `z` of every task with has_cross.
struct MtanWeights {
  std::vector<std::string> feature_names;
  std::vector<float> mean, stddev;        // per feature, standardisation
  // Id inputs: each pooled bag is concatenated after the standardised
  // features, in this order, into the trunks' first layer.
  std::vector<IdInput> id_inputs;
  std::vector<EmbeddingTable> tables;
  std::vector<std::vector<Dense>> trunks;  // each layer followed by ReLU
  std::vector<TaskHead> tasks;
};

// Builds the float32 graph of `w` in the runtime's operator set. Tensor names
// are stable ("trunk0.fc1", "click.mask.logistic", ...) so that the converter
// and the tools can report per layer.
fb::ModelT BuildFloatModel(const MtanWeights& w);

}  // namespace mtan::host
