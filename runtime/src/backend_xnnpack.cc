// XNNPACK backend: operators created at load, with every XNNPACK allocation
// routed into the arena of the model being loaded.
//
// Facts about Debian's XNNPACK (0.0~git20220216) this relies on, measured:
// - create allocates the operator (2112 bytes) then its packed weights or
//   lookup table, all through xnn_allocator, aligned to 64; setup and run of
//   the operators used here allocate nothing;
// - int8 fully-connected with per-channel scales is a 1x1 qc8 convolution;
// - there is no float tanh, softmax over a row is done by our kernels.
// Which operators XNNPACK runs, and how each is created and set up, is the
// operator's own (runtime/src/ops/<op>.cc); this file routes allocations.
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
  const OpRegistration* reg = FindOp(op.code);
  return reg->xnn_handles != nullptr && reg->xnn_handles(op);
}

mtan_status XnnpackCreate(OpState* op, XnnArena* arena, const char* name) {
  g_arena = arena;
  g_scratch_used = 0;
  const bool sizing = arena->base == nullptr;
  const OpRegistration* reg = FindOp(op->code);
  void* created = nullptr;
  const xnn_status s = reg->xnn_create != nullptr
                           ? static_cast<xnn_status>(reg->xnn_create(*op, &created))
                           : xnn_status_unsupported_parameter;
  xnn_operator_t x = static_cast<xnn_operator_t>(created);
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
  const OpRegistration* reg = FindOp(op->code);
  if (reg->xnn_uses_pool != nullptr && !reg->xnn_uses_pool(*op)) threadpool = nullptr;
  pthreadpool_t pool = static_cast<pthreadpool_t>(threadpool);
  if (op->setup_batch != batch || op->setup_pool != threadpool) {
    const xnn_status s = reg->xnn_setup != nullptr
                             ? static_cast<xnn_status>(reg->xnn_setup(*op, x, batch, threadpool))
                             : xnn_status_invalid_parameter;
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
