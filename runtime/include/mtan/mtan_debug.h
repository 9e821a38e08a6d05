/* mtan debug API: a loaded model's operators one by one, for profilers and
 * benchmarks (mtan-bench times each operator of a plan alone with it).
 * Not needed to run a model; same conventions as mtan.h (statuses, *_out,
 * no allocation). Pointers it returns point into the model bytes or the
 * model's arena and live as long as the model.
 *
 *   uint32_t n = 0;
 *   mtan_operator_count(m, &n);
 *   for (uint32_t o = 0; o < n; ++o) {
 *     mtan_operator_info info;
 *     mtan_operator_info_get(m, o, &info);
 *     mtan_operator_run(m, o, rows, batch, NULL);  // after the operators before it
 *   }
 */
#ifndef MTAN_MTAN_DEBUG_H_
#define MTAN_MTAN_DEBUG_H_

#include "mtan/mtan.h"

#ifdef __cplusplus
extern "C" {
#endif

/* MTAN_OK when this build can run `backend` (an mtan_backend), else
 * MTAN_ERROR_UNSUPPORTED (e.g. XNNPACK in a -DMTAN_WITH_XNNPACK=OFF build). */
mtan_status mtan_backend_available(uint32_t backend);

typedef struct mtan_operator_info {
  const char* opcode;      /* e.g. "FULLY_CONNECTED"; static storage */
  const char* output;      /* name of its output tensor; in the model bytes */
  uint32_t dtype;          /* what it computes in: MTAN_DTYPE_FLOAT32 or MTAN_DTYPE_INT8 */
  uint32_t backend;        /* MTAN_BACKEND_XNNPACK, or MTAN_BACKEND_REFERENCE for
                              the runtime's own kernels */
  const char* kernel;      /* what runs it: "xnnpack", "reference", or an own
                              optimized kernel ("avx512vnni", "avxvnni");
                              static storage */
  uint32_t in_channels;    /* per row, of its first input */
  uint32_t out_channels;   /* per row, of its output */
  uint64_t macs_per_row;   /* multiply-accumulates per row (FULLY_CONNECTED), else 0 */
} mtan_operator_info;

mtan_status mtan_operator_count(const mtan_model* model, uint32_t* count_out);
mtan_status mtan_operator_info_get(const mtan_model* model, uint32_t op,
                                   mtan_operator_info* info_out);

/* The operators `task` (or MTAN_ALL_TASKS) runs, in order: *plan_out points
 * into the model bytes (NULL for MTAN_ALL_TASKS, which runs 0..count-1). */
mtan_status mtan_task_plan(const mtan_model* model, int32_t task, const uint32_t** plan_out,
                           uint32_t* length_out);

/* Runs operator `op` alone on `batch` rows, on whatever its inputs hold:
 * run the operators of the plan before it first (mtan_run leaves them too).
 * `rows` is read only by the QUANTIZE operator (raw features, as mtan_run).
 * Same checks and statuses as mtan_run for model, batch and rows. */
mtan_status mtan_operator_run(mtan_model* model, uint32_t op, const float* rows, uint32_t batch,
                              void* threadpool);

#ifdef __cplusplus
}  /* extern "C" */
#endif

#endif  /* MTAN_MTAN_DEBUG_H_ */
