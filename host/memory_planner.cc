#include "memory_planner.h"

#include <algorithm>
#include <stdexcept>
#include <utility>

#include "contract.h"

namespace mtan::host {

int LinearMemoryPlanner::AddBuffer(uint32_t bytes, int32_t, int32_t) {
  offsets_.push_back(total_);
  total_ += bytes;
  return static_cast<int>(offsets_.size()) - 1;
}
uint32_t LinearMemoryPlanner::Offset(int index) { return offsets_.at(index); }
uint32_t LinearMemoryPlanner::TotalBytes() { return total_; }

int GreedyMemoryPlanner::AddBuffer(uint32_t bytes, int32_t first_use, int32_t last_use) {
  if (first_use > last_use) throw std::invalid_argument("buffer used before it is written");
  buffers_.push_back({bytes, first_use, last_use, 0});
  planned_ = false;
  return static_cast<int>(buffers_.size()) - 1;
}

uint32_t GreedyMemoryPlanner::Offset(int index) {
  Plan();
  return buffers_.at(index).offset;
}

uint32_t GreedyMemoryPlanner::TotalBytes() {
  Plan();
  return total_;
}

void GreedyMemoryPlanner::Plan() {
  if (planned_) return;
  std::vector<int> order(buffers_.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = static_cast<int>(i);
  std::stable_sort(order.begin(), order.end(),
                   [&](int a, int b) { return buffers_[a].bytes > buffers_[b].bytes; });
  std::vector<int> placed;
  total_ = 0;
  for (int i : order) {
    Buffer& it = buffers_[i];
    std::vector<std::pair<uint32_t, uint32_t>> busy;
    for (int p : placed)
      if (LiveTogether({it.first_use, it.last_use}, {buffers_[p].first_use, buffers_[p].last_use}))
        busy.emplace_back(buffers_[p].offset, buffers_[p].offset + buffers_[p].bytes);
    std::sort(busy.begin(), busy.end());
    uint32_t off = 0;
    for (const auto& [b0, b1] : busy) {
      if (off + it.bytes <= b0) break;
      off = std::max(off, b1);
    }
    it.offset = off;
    total_ = std::max(total_, off + it.bytes);
    placed.push_back(i);
  }
  planned_ = true;
}

}  // namespace mtan::host
