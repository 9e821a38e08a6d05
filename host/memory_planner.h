// Ahead-of-time planning of the activation region, behind a small interface
// as TensorFlow Lite Micro's MicroMemoryPlanner: add every buffer with its
// size and lifetime, then read the offsets. The writer (FinishModel) plans
// per batch row with it and the runtime's verifier checks the result (live
// buffers never share bytes: runtime/src/contract.h states the rule).
#pragma once

#include <cstdint>
#include <vector>

namespace mtan::host {

class MemoryPlanner {
 public:
  virtual ~MemoryPlanner() = default;
  // A buffer of `bytes` live from operator first_use to last_use (inclusive,
  // contract.h's Lifetime). Returns its index for Offset().
  virtual int AddBuffer(uint32_t bytes, int32_t first_use, int32_t last_use) = 0;
  // Offset of buffer `index`, once every buffer was added.
  virtual uint32_t Offset(int index) = 0;
  // Bytes the plan spans.
  virtual uint32_t TotalBytes() = 0;
};

// Every buffer its own bytes, in the order added: every tensor of a run can
// be read afterwards (calibration).
class LinearMemoryPlanner : public MemoryPlanner {
 public:
  int AddBuffer(uint32_t bytes, int32_t first_use, int32_t last_use) override;
  uint32_t Offset(int index) override;
  uint32_t TotalBytes() override;

 private:
  std::vector<uint32_t> offsets_;
  uint32_t total_ = 0;
};

// Largest buffer first, each at the lowest offset that does not overlap a
// placed buffer live at the same time.
class GreedyMemoryPlanner : public MemoryPlanner {
 public:
  int AddBuffer(uint32_t bytes, int32_t first_use, int32_t last_use) override;
  uint32_t Offset(int index) override;
  uint32_t TotalBytes() override;

 private:
  void Plan();
  struct Buffer {
    uint32_t bytes;
    int32_t first_use, last_use;  // contract.h's Lifetime
    uint32_t offset;
  };
  std::vector<Buffer> buffers_;
  uint32_t total_ = 0;
  bool planned_ = false;
};

}  // namespace mtan::host
