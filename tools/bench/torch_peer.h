// libtorch's float forward of a float32 .mtan model: the peer mtan-bench
// compares against ("what the trainer would give a user who shipped the
// float model"). This header has no torch types, so that only torch_peer.cc
// (one slow-compiling TU, built when CMake finds Torch) includes libtorch;
// torch_peer_none.cc stands in otherwise.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "mtan_generated.h"

namespace mtan::bench {

class TorchPeer {
 public:
  virtual ~TorchPeer() = default;
  // Runs `task` (or MTAN_ALL_TASKS) on `batch` raw feature rows and writes
  // the same floats mtan_run would (all tasks: every task's outputs per row,
  // in task order). `threads` sets libtorch's intra-op threads (and
  // OpenBLAS's). False with a message on failure.
  virtual bool Run(const float* rows, uint32_t batch, int32_t task, float* out, int threads,
                   std::string* error) = 0;
};

// True in builds with libtorch.
bool TorchPeerAvailable();

// "libtorch 1.13.1, OpenBLAS 0.3.21 (Haswell)" or why there is none.
std::string TorchPeerDescription();

// Builds the forward from the graph of a float32 model (FlatBuffer view of a
// verified file). Eager ATen ops, as torch::nn would run them; the
// cross-task attention is computed the way the trainer's module does it (the
// task vectors stacked, one linear over the stack) when the graph has that
// shape, else operator by operator. Null with a message on failure.
std::unique_ptr<TorchPeer> MakeTorchPeer(const fb::Model& float_model, std::string* error);

}  // namespace mtan::bench
