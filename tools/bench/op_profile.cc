#include "op_profile.h"

#include <algorithm>

#include "harness.h"
#include "mtan/mtan_debug.h"
#include "stats.h"

namespace mtan::bench {

bool MeasureOps(const Instance& inst, const float* rows, uint32_t batch, int32_t task, void* pool,
                double min_seconds, const std::function<bool(std::string*)>& run_plan,
                OpTimes* t, std::vector<OpTime>* profile, std::string* error) {
  const double block_us = min_seconds > 0 ? 200.0 : 10.0;
  const int blocks = min_seconds > 0 ? 7 : 3;
  mtan_model* m = inst.model();
  std::vector<uint32_t> plan;
  {
    const uint32_t* p = nullptr;
    uint32_t n = 0;
    if (const mtan_status s = mtan_task_plan(m, task, &p, &n); s != MTAN_OK) {
      *error = host::RuntimeError(s);
      return false;
    }
    for (uint32_t i = 0; i < n; ++i) plan.push_back(p ? p[i] : i);
  }
  auto run_sequence = [&](std::string* e) {
    for (uint32_t o : plan) {
      const mtan_status s = mtan_operator_run(m, o, rows, batch, pool);
      if (s != MTAN_OK) {
        *e = host::RuntimeError(s);
        return false;
      }
    }
    return true;
  };
  // Calls per block, from one timed call.
  auto reps_for = [&](const std::function<bool(std::string*)>& fn, int* reps) {
    const auto t0 = Clock::now();
    if (!fn(error)) return false;
    *reps = static_cast<int>(std::clamp(block_us / std::max(MicrosSince(t0), 0.01), 1.0, 100000.0));
    return true;
  };
  // Median µs per call over blocks of `reps` calls.
  auto per_call = [&](const std::function<bool(std::string*)>& fn, int reps, int n,
                      std::vector<double>* out) {
    for (int b = 0; b < n; ++b) {
      const auto t0 = Clock::now();
      for (int r = 0; r < reps; ++r)
        if (!fn(error)) return false;
      out->push_back(MicrosSince(t0) / reps);
    }
    return true;
  };
  int plan_reps = 1, seq_reps = 1;
  if (!reps_for(run_plan, &plan_reps) || !reps_for(run_sequence, &seq_reps)) return false;
  std::vector<double> plan_blocks, seq_blocks;
  for (size_t i = 0; i < plan.size(); ++i) {
    for (size_t j = 0; j < i; ++j) {
      const mtan_status s = mtan_operator_run(m, plan[j], rows, batch, pool);
      if (s != MTAN_OK) {
        *error = host::RuntimeError(s);
        return false;
      }
    }
    const uint32_t o = plan[i];
    auto run_one = [&](std::string* e) {
      const mtan_status s = mtan_operator_run(m, o, rows, batch, pool);
      if (s != MTAN_OK) *e = host::RuntimeError(s);
      return s == MTAN_OK;
    };
    for (int w = 0; w < 2; ++w)
      if (!run_one(error)) return false;
    int reps = 1;
    std::vector<double> op_blocks;
    if (!reps_for(run_one, &reps) || !per_call(run_one, reps, blocks, &op_blocks)) return false;
    const double us = Median(op_blocks);
    if (!per_call(run_plan, plan_reps, 1, &plan_blocks) ||
        !per_call(run_sequence, seq_reps, 1, &seq_blocks))
      return false;
    mtan_operator_info op;
    if (const mtan_status s = mtan_operator_info_get(m, o, &op); s != MTAN_OK) {
      *error = host::RuntimeError(s);
      return false;
    }
    // XNNPACK's operators and the runtime's VNNI fully-connected kernels
    // (mtan_operator_info.kernel) are the optimized kernels; the rest is the
    // runtime's own scalar code.
    const std::string kernel = op.kernel;
    const bool optimized = kernel != "reference";
    if (optimized) {
      t->xnn_us += us;
      if (op.macs_per_row > 0) {
        t->fc_us += us;
        t->fc_mop += 2.0 * static_cast<double>(op.macs_per_row) * batch / 1e6;
      }
    } else {
      t->own_us += us;
    }
    if (profile != nullptr) {
      OpTime ot;
      ot.index = o;
      ot.op = op.opcode;
      ot.name = op.output;
      ot.dtype = op.dtype == MTAN_DTYPE_INT8 ? "int8" : "float32";
      ot.kernel = optimized ? kernel : "own";
      ot.in_channels = op.in_channels;
      ot.out_channels = op.out_channels;
      ot.us = us;
      profile->push_back(ot);
    }
  }
  t->plan_us = Median(plan_blocks);
  t->sequence_us = Median(seq_blocks);
  return true;
}

}  // namespace mtan::bench
