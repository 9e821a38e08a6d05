// XNNPACK backend: operators created at load, with every XNNPACK allocation
// routed into the arena of the model being loaded.
//
// Facts about Debian's XNNPACK (0.0~git20220216) this relies on, measured:
// - create allocates the operator (2112 bytes) then its packed weights or
//   lookup table, all through xnn_allocator, aligned to 64; setup and run of
//   the operators used here allocate nothing;
// - int8 fully-connected with per-channel scales is a 1x1 qc8 convolution;
// - there is no float tanh, softmax over a row is done by our kernels.
#include <math.h>
#include <string.h>
#include <xnnpack.h>

#include "internal.h"

namespace mtan {
namespace {

// The arena XNNPACK allocates from during the current load; null otherwise,
// in which case every allocation fails (never the heap). Only set while the
// load lock is held.
XnnArena* g_arena = nullptr;
// Sizing mode serves small requests (the operator struct, lookup tables) from
// a scratch block so that create proceeds; a request that does not fit
// (packed weights, XNNPACK's last allocation in create) is counted and
// refused, which ends the create cleanly. Static, not on the stack (16 KB):
// it is used only under the load lock.
alignas(64) uint8_t g_scratch[4 * 4096];
size_t g_scratch_used = 0;

constexpr size_t kHeader = 64;  // holds the block size, for reallocate

void* ArenaAllocate(size_t alignment, size_t size) {
  XnnArena* a = g_arena;
  if (a == nullptr || alignment > kArenaAlignment) return nullptr;
  const uint64_t need = kHeader + AlignUp64(size);
  if (a->base == nullptr) {  // sizing
    a->used += need;
    if (g_scratch_used + need > sizeof(g_scratch)) return nullptr;
    uint8_t* p = g_scratch + g_scratch_used;
    g_scratch_used += static_cast<size_t>(need);
    memcpy(p, &size, sizeof(size));
    return p + kHeader;
  }
  // 64-bit sums: on a 32-bit target a request near SIZE_MAX must not wrap
  // past the capacity check.
  if (a->used + need > a->capacity) {
    a->failed = true;
    a->used += need;
    return nullptr;
  }
  uint8_t* p = a->base + static_cast<size_t>(a->used);
  a->used += need;
  memcpy(p, &size, sizeof(size));
  return p + kHeader;
}

void* Allocate(void*, size_t size) { return ArenaAllocate(kArenaAlignment, size); }
void* AlignedAllocate(void*, size_t alignment, size_t size) { return ArenaAllocate(alignment, size); }
void* Reallocate(void*, void* old, size_t size) {
  void* p = ArenaAllocate(kArenaAlignment, size);
  if (p != nullptr && old != nullptr) {
    size_t old_size;
    memcpy(&old_size, static_cast<uint8_t*>(old) - kHeader, sizeof(old_size));
    memcpy(p, old, old_size < size ? old_size : size);
  }
  return p;
}
void Deallocate(void*, void*) {}  // the arena is released whole by its owner

const xnn_allocator kAllocator = {nullptr, Allocate, Reallocate, Deallocate, AlignedAllocate,
                                  Deallocate};

mtan_status FromXnn(xnn_status s, const char* what, const char* name) {
  if (s == xnn_status_success) return MTAN_OK;
  if (s == xnn_status_unsupported_parameter || s == xnn_status_invalid_parameter ||
      s == xnn_status_unsupported_hardware)
    return SetError(MTAN_ERROR_UNSUPPORTED, "XNNPACK cannot %s '%s' (status %d): parameters out "
                    "of its range", what, name, static_cast<int>(s));
  return SetError(MTAN_ERROR_BACKEND, "XNNPACK failed to %s '%s' (status %d)", what, name,
                  static_cast<int>(s));
}

}  // namespace

bool XnnpackAvailable() { return true; }

mtan_status XnnpackInit() {
  const xnn_status s = xnn_initialize(&kAllocator);
  if (s != xnn_status_success)
    return SetError(MTAN_ERROR_NOT_INITIALIZED, "xnn_initialize failed (status %d)",
                    static_cast<int>(s));
  return MTAN_OK;
}

bool XnnpackHandles(const OpState& op) {
  switch (op.code) {
    case fb::OpCode::FULLY_CONNECTED:
    case fb::OpCode::MUL:
    case fb::OpCode::ADD:
      return true;
    case fb::OpCode::LOGISTIC:  // float: Debian's XNNPACK (2022-02) returns NaN
                                // for |x| above about 5.3e26, inside the
                                // verifier's float bounds; our kernel does not
    case fb::OpCode::TANH:      // float: XNNPACK has none
      return op.int8;
    default:
      return false;
  }
}

mtan_status XnnpackCreate(OpState* op, XnnArena* arena, const char* name) {
  g_arena = arena;
  g_scratch_used = 0;
  const bool sizing = arena->base == nullptr;
  xnn_operator_t x = nullptr;
  xnn_status s = xnn_status_success;
  const int8_t lo = static_cast<int8_t>(op->relu ? op->zp_out : -128);
  switch (op->code) {
    case fb::OpCode::FULLY_CONNECTED:
      if (op->int8) {
        s = xnn_create_convolution2d_nhwc_qc8(
            0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, op->in_channels, op->out_channels, op->in_channels,
            op->out_channels, static_cast<int8_t>(op->zp_in0), op->scale_in0,
            op->weight_scales, static_cast<const int8_t*>(op->weights),
            static_cast<const int32_t*>(op->bias), static_cast<int8_t>(op->zp_out), op->scale_out,
            lo, 127, 0, &x);
      } else {
        s = xnn_create_fully_connected_nc_f32(
            op->in_channels, op->out_channels, op->in_channels, op->out_channels,
            static_cast<const float*>(op->weights), static_cast<const float*>(op->bias),
            op->relu ? 0.0f : -INFINITY, INFINITY, 0, &x);
      }
      break;
    case fb::OpCode::LOGISTIC:
      s = op->int8 ? xnn_create_sigmoid_nc_qs8(op->in_channels, op->in_channels, op->in_channels,
                                               static_cast<int8_t>(op->zp_in0), op->scale_in0,
                                               -128, 1.0f / 256, -128, 127, 0, &x)
                   : xnn_create_sigmoid_nc_f32(op->in_channels, op->in_channels, op->in_channels,
                                               0, &x);
      break;
    case fb::OpCode::TANH:
      s = xnn_create_tanh_nc_qs8(op->in_channels, op->in_channels, op->in_channels,
                                 static_cast<int8_t>(op->zp_in0), op->scale_in0, 0, 1.0f / 128,
                                 -128, 127, 0, &x);
      break;
    case fb::OpCode::MUL:
      s = op->int8 ? xnn_create_multiply_nd_qs8(
                         static_cast<int8_t>(op->zp_in0), op->scale_in0,
                         static_cast<int8_t>(op->zp_in1), op->scale_in1,
                         static_cast<int8_t>(op->zp_out), op->scale_out, -128, 127, 0, &x)
                   : xnn_create_multiply_nd_f32(-INFINITY, INFINITY, 0, &x);
      break;
    case fb::OpCode::ADD:
      s = op->int8 ? xnn_create_add_nd_qs8(static_cast<int8_t>(op->zp_in0), op->scale_in0,
                                           static_cast<int8_t>(op->zp_in1), op->scale_in1,
                                           static_cast<int8_t>(op->zp_out), op->scale_out, -128,
                                           127, 0, &x)
                   : xnn_create_add_nd_f32(-INFINITY, INFINITY, 0, &x);
      break;
    default:
      s = xnn_status_unsupported_parameter;
      break;
  }
  g_arena = nullptr;
  if (sizing) {
    // Counted; a refused allocation is expected here.
    if (x != nullptr) xnn_delete_operator(x);
    op->xnn_op = nullptr;
    return s == xnn_status_success || s == xnn_status_out_of_memory ? MTAN_OK
                                                                    : FromXnn(s, "create", name);
  }
  if (arena->failed) return MTAN_ERROR_ARENA_TOO_SMALL;  // the caller states the size
  op->xnn_op = x;
  op->setup_batch = 0;
  op->setup_pool = nullptr;
  return FromXnn(s, "create", name);
}

mtan_status XnnpackRun(OpState* op, uint32_t batch, void* threadpool) {
  xnn_operator_t x = static_cast<xnn_operator_t>(op->xnn_op);
  pthreadpool_t pool = static_cast<pthreadpool_t>(threadpool);
  if (op->setup_batch != batch || op->setup_pool != threadpool) {
    xnn_status s = xnn_status_success;
    const size_t shape[2] = {batch, op->in_channels};
    switch (op->code) {
      case fb::OpCode::FULLY_CONNECTED:
        s = op->int8 ? xnn_setup_convolution2d_nhwc_qc8(x, batch, 1, 1,
                                                        static_cast<const int8_t*>(op->in0),
                                                        static_cast<int8_t*>(op->out), pool)
                     : xnn_setup_fully_connected_nc_f32(x, batch, static_cast<const float*>(op->in0),
                                                        static_cast<float*>(op->out), pool);
        break;
      case fb::OpCode::LOGISTIC:
        s = op->int8 ? xnn_setup_sigmoid_nc_qs8(x, batch, static_cast<const int8_t*>(op->in0),
                                                static_cast<int8_t*>(op->out), pool)
                     : xnn_setup_sigmoid_nc_f32(x, batch, static_cast<const float*>(op->in0),
                                                static_cast<float*>(op->out), pool);
        break;
      case fb::OpCode::TANH:
        s = xnn_setup_tanh_nc_qs8(x, batch, static_cast<const int8_t*>(op->in0),
                                  static_cast<int8_t*>(op->out), pool);
        break;
      case fb::OpCode::MUL:
        s = op->int8 ? xnn_setup_multiply_nd_qs8(x, 2, shape, 2, shape,
                                                 static_cast<const int8_t*>(op->in0),
                                                 static_cast<const int8_t*>(op->in1),
                                                 static_cast<int8_t*>(op->out), pool)
                     : xnn_setup_multiply_nd_f32(x, 2, shape, 2, shape,
                                                 static_cast<const float*>(op->in0),
                                                 static_cast<const float*>(op->in1),
                                                 static_cast<float*>(op->out), pool);
        break;
      case fb::OpCode::ADD:
        s = op->int8 ? xnn_setup_add_nd_qs8(x, 2, shape, 2, shape,
                                            static_cast<const int8_t*>(op->in0),
                                            static_cast<const int8_t*>(op->in1),
                                            static_cast<int8_t*>(op->out), pool)
                     : xnn_setup_add_nd_f32(x, 2, shape, 2, shape,
                                            static_cast<const float*>(op->in0),
                                            static_cast<const float*>(op->in1),
                                            static_cast<float*>(op->out), pool);
        break;
      default:
        s = xnn_status_invalid_parameter;
        break;
    }
    if (s != xnn_status_success) return FromXnn(s, "set up", fb::EnumNameOpCode(op->code));
    op->setup_batch = batch;
    op->setup_pool = threadpool;
  }
  const xnn_status s = xnn_run_operator(x, pool);
  if (s != xnn_status_success) return FromXnn(s, "run", fb::EnumNameOpCode(op->code));
  return MTAN_OK;
}

void XnnpackDelete(OpState* op) {
  if (op->xnn_op != nullptr) xnn_delete_operator(static_cast<xnn_operator_t>(op->xnn_op));
  op->xnn_op = nullptr;
}

}  // namespace mtan
