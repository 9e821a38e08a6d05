// The int8 dot-product peak of one core, the yardstick for mtan-bench's
// "FC GOP/s alone": independent vpdpbusd chains (no loads, no dependencies
// between them) on the ISA the runtime's VNNI kernels use on this CPU.
#pragma once

#include <string>

namespace mtan::bench {

struct Int8Peak {
  std::string isa;    // "avx512vnni", "avxvnni", or empty: the CPU has neither
  double gops = 0;    // 2 ops per multiply-add, one thread
};

// About 0.2 s of vpdpbusd on the calling thread; the best of three blocks.
Int8Peak MeasureInt8Peak();

}  // namespace mtan::bench
