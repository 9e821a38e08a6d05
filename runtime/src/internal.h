// Internal types of the runtime. Errors are values: every fallible function
// returns mtan_status and records a message with SetError().
#pragma once

#include <stddef.h>
#include <stdint.h>

#include <atomic>

#include "mtan/mtan.h"
#include "mtan_generated.h"

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
  uint32_t num_tensors = 0, num_ops = 0, num_tasks = 0, num_inputs = 0;
  uint32_t output_floats_all = 0;  // floats per row of an all-tasks run
  uint32_t max_golden_rows = 0;
};

// Verifies `data` completely (footer, checksum, FlatBuffer, semantics). The
// caller holds the load lock: the verifier's working memory is static.
mtan_status VerifyModel(const void* data, size_t bytes, ModelView* view);

// Everything one operator needs at run time, decided at load.
struct OpState {
  fb::OpCode code;
  bool relu;
  bool int8;
  uint8_t backend;       // kBackendReference or kBackendXnnpack
  uint32_t in_channels;  // per-row elements of the (first) input
  uint32_t out_channels;
  const void* in0;       // activations in the arena (QUANTIZE: rows at run)
  const void* in1;
  void* out;
  const void* weights;   // FULLY_CONNECTED, in the model bytes
  const void* bias;
  const float* scales;   // FULLY_CONNECTED int8: per-channel requant scales;
                         // QUANTIZE: [mul..., add...] per feature
  const float* weight_scales;  // FULLY_CONNECTED int8: per channel, in the model bytes
  const int8_t* lut;     // LOGISTIC / TANH int8: 256 entries
  // Per-tensor quantization: zero points and scales of in0, in1 and out.
  int32_t zp_in0, zp_in1, zp_out;
  float scale_in0, scale_in1, scale_out;
  // ATTENTION_POOL: `pool_inputs` sources (scores then values), their params.
  uint32_t pool_inputs;
  const void* const* pool_ptrs;
  const float* pool_scales;
  const int32_t* pool_zps;
  void* xnn_op;          // xnn_operator_t
  uint32_t setup_batch;  // batch and threadpool the xnn_op was last set up for
  void* setup_pool;
};

constexpr uint8_t kBackendReference = 0;
constexpr uint8_t kBackendXnnpack = 1;

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

// Reference kernels (kernels_ref.cc): the portable path (tested against
// tests/runtime/oracle.h).
// QUANTIZE reads `rows`; `model` names a non-finite feature in the error.
mtan_status RunReference(const OpState& op, uint32_t batch, const float* rows,
                         const fb::Model* model);
void BuildSigmoidLut(float in_scale, int32_t in_zp, int8_t* lut);
void BuildTanhLut(float in_scale, int32_t in_zp, int8_t* lut);

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
