// The activation memory planners (host/memory_planner.h): live
// buffers never share bytes (the rule of runtime/src/contract.h, which the
// runtime's verifier checks in every file), and the greedy plan reuses the
// bytes of buffers that are dead.
#include "memory_planner.h"

#include <random>
#include <stdexcept>
#include <vector>

#include <doctest/doctest.h>

#include "contract.h"  // LiveTogether: the rule itself

using namespace mtan;
using namespace mtan::host;

namespace {

struct Spec {
  uint32_t bytes;
  int32_t first, last;
};

// No two buffers live at the same time overlap, and all fit in TotalBytes.
void CheckPlan(MemoryPlanner& p, const std::vector<Spec>& specs) {
  for (size_t a = 0; a < specs.size(); ++a) {
    const uint64_t a0 = p.Offset(static_cast<int>(a)), a1 = a0 + specs[a].bytes;
    CHECK(a1 <= p.TotalBytes());
    for (size_t b = a + 1; b < specs.size(); ++b) {
      const uint64_t b0 = p.Offset(static_cast<int>(b)), b1 = b0 + specs[b].bytes;
      const bool live = LiveTogether({specs[a].first, specs[a].last}, {specs[b].first, specs[b].last});
      CHECK_MESSAGE(!(live && a0 < b1 && b0 < a1), "buffers " << a << " and " << b << " overlap");
    }
  }
}

}  // namespace

TEST_SUITE("memory_planner") {

TEST_CASE("greedy: buffers whose lifetimes do not overlap share bytes; live ones never") {
  GreedyMemoryPlanner p;
  // A chain a -> b -> c: a and c are never live together.
  const std::vector<Spec> specs = {{64, 0, 1}, {32, 1, 2}, {64, 2, 3}};
  for (const Spec& s : specs) p.AddBuffer(s.bytes, s.first, s.last);
  CheckPlan(p, specs);
  CHECK(p.Offset(0) == p.Offset(2));
  CHECK(p.TotalBytes() == 96);
}

TEST_CASE("greedy: random lifetimes give a valid plan no larger than the linear one") {
  std::mt19937 rng(7);
  for (int trial = 0; trial < 50; ++trial) {
    std::uniform_int_distribution<int> n_d(1, 40), op_d(0, 30), len_d(0, 8), bytes_d(1, 64);
    std::vector<Spec> specs(n_d(rng));
    GreedyMemoryPlanner greedy;
    LinearMemoryPlanner linear;
    uint32_t sum = 0;
    for (Spec& s : specs) {
      s.bytes = 4u * bytes_d(rng);
      s.first = op_d(rng);
      s.last = s.first + len_d(rng);
      sum += s.bytes;
      greedy.AddBuffer(s.bytes, s.first, s.last);
      linear.AddBuffer(s.bytes, s.first, s.last);
    }
    CheckPlan(greedy, specs);
    CheckPlan(linear, specs);
    CHECK(linear.TotalBytes() == sum);
    CHECK(greedy.TotalBytes() <= sum);
  }
}

TEST_CASE("linear: every buffer its own bytes, in the order added") {
  LinearMemoryPlanner p;
  CHECK(p.AddBuffer(8, 0, 0) == 0);
  CHECK(p.AddBuffer(4, 5, 6) == 1);
  CHECK(p.AddBuffer(12, 0, 9) == 2);
  CHECK(p.Offset(0) == 0);
  CHECK(p.Offset(1) == 8);
  CHECK(p.Offset(2) == 12);
  CHECK(p.TotalBytes() == 24);
}

TEST_CASE("greedy: a buffer read before it is written is refused") {
  GreedyMemoryPlanner p;
  CHECK_THROWS_AS(p.AddBuffer(4, 3, 2), std::invalid_argument);
}

}  // TEST_SUITE
