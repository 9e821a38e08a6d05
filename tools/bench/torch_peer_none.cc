// Stand-in for torch_peer.cc in builds without libtorch.
#include "torch_peer.h"

namespace mtan::bench {

bool TorchPeerAvailable() { return false; }

std::string TorchPeerDescription() { return "not built (CMake did not find Torch)"; }

std::unique_ptr<TorchPeer> MakeTorchPeer(const fb::Model&, std::string* error) {
  *error = "this mtan-bench was built without libtorch";
  return nullptr;
}

}  // namespace mtan::bench
