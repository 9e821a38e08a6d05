// mtan-bench's per-operator profile: every operator of a plan timed alone
// through the debug API (mtan/mtan_debug.h), beside whole runs in the same
// stretches of time; the runtime's overhead is their ratio.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "bench.h"
#include "instance.h"

namespace mtan::bench {

struct OpTimes {
  double xnn_us = 0;     // optimized kernels (XNNPACK's, the VNNI FC), each alone
  double own_us = 0;     // the runtime's own kernels (QUANTIZE, ATTENTION_POOL, ...), each alone
  double sequence_us = 0;  // the plan's operators called back to back, without mtan_run
  double plan_us = 0;      // mtan_run of the plan, timed between the operators
  double fc_us = 0;      // fully-connected operators on optimized kernels, alone
  double fc_mop = 0;     // their million ops per run
};

// Times every operator of the plan alone, on the shapes and data of a real
// run: the operators before it run once (so its inputs hold what the plan
// gives them), then it runs in a tight loop. The operators are the loaded
// model's own (same packed weights, same set-up), so the sum is exactly what
// the plan calls, minus the plan's own cost. After each operator, one block
// of whole runs (mtan_run) and one of the plan's operators called back to
// back: the three are measured in the same stretches of time, so a machine
// whose load changes does not bias their ratio. --min-seconds 0 (a smoke
// run) times each briefly.
bool MeasureOps(const Instance& inst, const float* rows, uint32_t batch, int32_t task, void* pool,
                double min_seconds, const std::function<bool(std::string*)>& run_plan,
                OpTimes* t, std::vector<OpTime>* profile, std::string* error);

}  // namespace mtan::bench
