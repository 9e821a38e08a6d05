// Internal types of the runtime. Errors are values: every fallible function
// returns mtan_status and records a message with SetError().
#pragma once

#include <stddef.h>
#include <stdint.h>

#include <atomic>

#include "mtan/mtan.h"
#include "mtan_generated.h"
#include "ops/registry.h"

namespace mtan {

// Records the message for mtan_last_error() (printf-style) and returns status.
mtan_status SetError(mtan_status status, const char* format, ...)
    __attribute__((format(printf, 2, 3)));

#define MTAN_RETURN_IF_ERROR(expr)          \
  do {                                      \
    const mtan_status status_ = (expr);     \
    if (status_ != MTAN_OK) return status_; \
  } while (0)

constexpr size_t kArenaAlignment = 64;
inline size_t AlignUp(size_t n, size_t a) { return (n + a - 1) / a * a; }
// Arena sizes are summed in 64 bits whatever size_t is: on a 32-bit target a
// file can ask for more than 4 GiB (one weight shared by thousands of
// operators, each with its own scales or packed copy), which must be refused
// with MTAN_ERROR_LIMIT, never wrap.
inline uint64_t AlignUp64(uint64_t n) { return (n + kArenaAlignment - 1) / kArenaAlignment * kArenaAlignment; }

// A verified model file: the FlatBuffer plus the facts sizing needs.
struct ModelView {
  const fb::Model* fb = nullptr;
  uint32_t num_tensors = 0, num_ops = 0, num_tasks = 0, num_inputs = 0, num_tensor_inputs = 0;
  uint32_t output_floats_all = 0;  // floats per row of an all-tasks run
  uint32_t max_golden_rows = 0;
};

// Verifies `data` completely (footer, checksum, FlatBuffer, semantics). The
// caller holds the load lock: the verifier's working memory is static.
mtan_status VerifyModel(const void* data, size_t bytes, ModelView* view);

struct TaskState {
  const char* name;
  uint32_t kind;
  uint32_t output_size;
  uint32_t output_offset;
  fb::OutputTransform transform;
  const float* output;   // the task's output tensor in the arena
  const uint32_t* plan;  // operator indices, in the model bytes
  uint32_t plan_length;
};

}  // namespace mtan

struct mtan_model {
  // 1 while a thread runs or self-tests the model: a second thread gets
  // MTAN_ERROR_BUSY instead of sharing the activations.
  std::atomic<uint32_t> busy;
  const mtan::fb::Model* fb;
  uint8_t* arena;        // caller's arena start
  size_t arena_used;
  uint32_t max_batch;
  uint32_t num_inputs;
  uint32_t num_tensor_inputs;
  uint32_t num_ops;
  uint32_t num_tasks;
  uint32_t output_floats_all;
  mtan::OpState* ops;
  mtan::TaskState* tasks;
  uint8_t* activations;   // the activation region
  float* golden_scratch;  // max_batch x output_floats_all floats (self-test)
  bool loaded;
};

namespace mtan {

// The reference kernel of op (ops/<op>.cc, through the registry): the
// portable path, tested against tests/runtime/oracle.h. QUANTIZE reads
// `rows`; `model` names a non-finite feature in the error.
inline mtan_status RunReference(const OpState& op, uint32_t batch, const float* rows,
                                const fb::Model* model) {
  return FindOp(op.code)->eval(op, batch, rows, model);
}

// XNNPACK backend (backend_xnnpack.cc, or backend_none.cc when built without).
bool XnnpackAvailable();
mtan_status XnnpackInit();
bool XnnpackHandles(const OpState& op);
// Bump allocator over an arena region; all XNNPACK allocations of one load go
// through the one that is active (process-wide lock held by the caller).
struct XnnArena {
  uint8_t* base;    // nullptr: sizing mode, only counts
  uint64_t capacity;
  uint64_t used;
  bool failed;
};
// Creates op.xnn_op, allocating from `arena` (or, when arena->base is null,
// counting the bytes it would allocate into arena->used).
mtan_status XnnpackCreate(OpState* op, XnnArena* arena, const char* name);
mtan_status XnnpackRun(OpState* op, uint32_t batch, void* threadpool);
void XnnpackDelete(OpState* op);

// The process-wide load lock (platform::LoadLockAcquire): around sizing,
// load and unload, since XNNPACK's allocator hook and the verifier's working
// memory are process-wide.
void GlobalLock();
void GlobalUnlock();

}  // namespace mtan
