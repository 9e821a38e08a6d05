// Loading (sizing, carving the arena, preparing operators), running plans and
// the golden-case self-test. All validation happens in VerifyModel and here
// at load; the run path only computes.
#include <float.h>
#include <math.h>
#include <string.h>

#include <new>

#include "internal.h"

// OpState kept its size through the split into ops/ (ops/registry.h).
static_assert(sizeof(mtan::OpState) == (sizeof(void*) == 8 ? 160 : 96), "OpState size");

namespace mtan {
namespace {

bool g_initialized = false;
constexpr size_t kXnnExtraBytes = 16;  // XNNPACK may read this far past a tensor

// Carves 64-byte aligned chunks from the arena; with a null base it only
// counts, so sizing and loading share one layout. The count is 64-bit on
// every target and sizing stops at MTAN_MAX_ARENA_BYTES, so a load (which
// runs only after sizing succeeded into an arena at least that large) never
// carves past the arena's end.
struct Carver {
  uint8_t* base;
  uint64_t used;
  void* Take(uint64_t bytes) {
    void* p = base ? base + static_cast<size_t>(used) : nullptr;
    used += AlignUp64(bytes);
    return p;
  }
  bool OverLimit() const { return used > MTAN_MAX_ARENA_BYTES; }
};

mtan_status ArenaLimitError(uint64_t bytes, uint32_t max_batch, const char* where) {
  return SetError(MTAN_ERROR_LIMIT, "this model needs more than %llu arena bytes at max_batch %u "
                  "(%s), above MTAN_MAX_ARENA_BYTES (%u)", static_cast<unsigned long long>(bytes),
                  max_batch, where, MTAN_MAX_ARENA_BYTES);
}

const fb::Tensor* TensorAt(const fb::Model* m, int32_t i) { return m->tensors()->Get(i); }

// Float tensors may carry a quantization table without scales (only int8
// ones are verified to have one): those read as 1.
float Scale(const fb::Tensor* t) {
  const fb::Quantization* q = t->quantization();
  return q && q->scale() && q->scale()->size() ? q->scale()->Get(0) : 1.0f;
}
int32_t ZeroPoint(const fb::Tensor* t) {
  const fb::Quantization* q = t->quantization();
  return q && q->zero_point() && q->zero_point()->size() ? q->zero_point()->Get(0) : 0;
}
const char* NameOf(const fb::Tensor* t) { return t->name() ? t->name()->c_str() : "(unnamed)"; }

}  // namespace

void* PrepareContext::Carve(uint64_t bytes) {
  Carver c{arena, *carved};
  void* p = c.Take(bytes);
  *carved = c.used;
  return p;
}
void* PrepareContext::Activation(int32_t t) const {
  return load ? activations + static_cast<size_t>(TensorAt(m, t)->arena_offset()) * max_batch
              : nullptr;
}
float PrepareContext::Scale(int32_t t) const { return mtan::Scale(TensorAt(m, t)); }
int32_t PrepareContext::ZeroPoint(int32_t t) const { return mtan::ZeroPoint(TensorAt(m, t)); }

namespace {

// Lays out the model in `arena` (or counts, when arena is null) and writes
// the bytes it takes to *bytes. In load mode the arena is known to be large
// enough (sized first), so this fills every structure.
mtan_status Prepare(const ModelView& v, uint32_t max_batch, mtan_backend backend, uint8_t* arena,
                    size_t* bytes, mtan_model** model_out) {
  const fb::Model* m = v.fb;
  const bool load = arena != nullptr;
  Carver c{arena, 0};
  mtan_model* model = static_cast<mtan_model*>(c.Take(sizeof(mtan_model)));
  OpState* ops = static_cast<OpState*>(c.Take(sizeof(OpState) * v.num_ops));
  TaskState* tasks = static_cast<TaskState*>(c.Take(sizeof(TaskState) * v.num_tasks));
  uint8_t* acts = static_cast<uint8_t*>(
      c.Take(static_cast<uint64_t>(m->activation_bytes_per_row()) * max_batch + kXnnExtraBytes));
  const uint32_t golden_rows = v.max_golden_rows < max_batch ? v.max_golden_rows : max_batch;
  float* golden = static_cast<float*>(
      c.Take(sizeof(float) * static_cast<uint64_t>(golden_rows) * v.output_floats_all));
  if (c.OverLimit()) return ArenaLimitError(c.used, max_batch, "activations and golden rows");
  PrepareContext common{m, nullptr, load, false, false, max_batch, acts, &c.used, arena};
  auto act = [&](int32_t t) { return static_cast<uint8_t*>(common.Activation(t)); };

  bool any_xnn = false;
  for (uint32_t o = 0; o < v.num_ops; ++o) {
    const fb::Operator* fop = m->operators()->Get(o);
    const auto* ins = fop->inputs();
    const fb::Tensor* x = TensorAt(m, ins->Get(0));
    const fb::Tensor* y = TensorAt(m, fop->outputs()->Get(0));
    OpState st;
    memset(&st, 0, sizeof(st));
    st.code = fop->opcode();
    st.relu = fop->activation() == fb::Activation::RELU;
    st.int8 = y->dtype() == fb::DType::INT8 || x->dtype() == fb::DType::INT8;
    st.in_channels = static_cast<uint32_t>(RowElements(*x->shape()));
    st.out_channels = static_cast<uint32_t>(RowElements(*y->shape()));
    st.in0 = act(ins->Get(0));
    st.in1 = ins->size() > 1 ? act(ins->Get(1)) : nullptr;
    st.out = act(fop->outputs()->Get(0));
    st.zp_in0 = ZeroPoint(x);
    st.scale_in0 = Scale(x);
    st.zp_out = ZeroPoint(y);
    st.scale_out = Scale(y);
    if (ins->size() > 1) {
      st.zp_in1 = ZeroPoint(TensorAt(m, ins->Get(1)));
      st.scale_in1 = Scale(TensorAt(m, ins->Get(1)));
    }
    // XNNPACK computes its own requantization scales and lookup tables: an
    // operator carves the reference kernel's only when that kernel runs it.
    const OpRegistration& reg = *FindOp(st.code);  // verified
    const bool native = backend == MTAN_BACKEND_DEFAULT && reg.native_handles != nullptr &&
                        reg.native_handles(st);
    const bool xnn = !native && backend != MTAN_BACKEND_REFERENCE && XnnpackAvailable() &&
                     XnnpackHandles(st);
    if (reg.prepare != nullptr) {
      PrepareContext pc{m, fop, load, xnn, native, max_batch, acts, &c.used, arena};
      reg.prepare(pc, &st);
    }
    st.backend = xnn      ? uint8_t{MTAN_BACKEND_XNNPACK}
                 : native ? kBackendNative
                          : uint8_t{MTAN_BACKEND_REFERENCE};
    any_xnn |= st.backend == MTAN_BACKEND_XNNPACK;
    if (load) ops[o] = st;
    else if (st.backend == MTAN_BACKEND_XNNPACK) {
      // Sizing: count what XNNPACK allocates for this operator.
      XnnArena count{nullptr, 0, 0, false};
      MTAN_RETURN_IF_ERROR(XnnpackCreate(&st, &count, NameOf(y)));
      c.used += count.used;
    }
    if (c.OverLimit()) return ArenaLimitError(c.used, max_batch, NameOf(y));
  }
  if (load && any_xnn) {
    XnnArena xa{arena + static_cast<size_t>(c.used), *bytes - c.used, 0, false};
    for (uint32_t o = 0; o < v.num_ops; ++o) {
      if (ops[o].backend != MTAN_BACKEND_XNNPACK) continue;
      const mtan_status s =
          XnnpackCreate(&ops[o], &xa, NameOf(TensorAt(m, m->operators()->Get(o)->outputs()->Get(0))));
      if (s != MTAN_OK) {
        for (uint32_t k = 0; k < o; ++k) XnnpackDelete(&ops[k]);
        if (s == MTAN_ERROR_ARENA_TOO_SMALL)
          return SetError(s, "XNNPACK needed more arena than sized (%llu bytes available)",
                          static_cast<unsigned long long>(*bytes - c.used));
        return s;
      }
    }
    c.used += xa.used;
  }
  if (load) {
    uint32_t offset = 0;
    for (uint32_t k = 0; k < v.num_tasks; ++k) {
      const fb::Task* t = m->tasks()->Get(k);
      TaskState& ts = tasks[k];
      ts.name = t->name()->c_str();
      static_assert(MTAN_TASK_BINARY == static_cast<int>(fb::TaskKind::BINARY) &&
                        MTAN_TASK_MULTICLASS == static_cast<int>(fb::TaskKind::MULTICLASS) &&
                        MTAN_TASK_REGRESSION == static_cast<int>(fb::TaskKind::REGRESSION),
                    "mtan_task_kind mirrors the schema's TaskKind");
      ts.kind = static_cast<uint32_t>(t->kind());
      ts.output_size = static_cast<uint32_t>(TensorAt(m, t->output())->shape()->Get(0));
      ts.output_offset = offset;
      offset += ts.output_size;
      ts.transform = t->transform();
      ts.output = reinterpret_cast<const float*>(act(t->output()));
      ts.plan = t->plan()->data();
      ts.plan_length = t->plan()->size();
    }
    new (model) mtan_model();  // value-initialised: `busy` starts at 0
    model->fb = m;
    model->arena = arena;
    model->arena_used = static_cast<size_t>(c.used);
    model->max_batch = max_batch;
    model->num_inputs = v.num_inputs;
    model->num_tensor_inputs = v.num_tensor_inputs;
    model->num_ops = v.num_ops;
    model->num_tasks = v.num_tasks;
    model->output_floats_all = v.output_floats_all;
    model->ops = ops;
    model->tasks = tasks;
    model->golden_scratch = golden;
    model->activations = acts;
    model->loaded = true;
    *model_out = model;
  }
  *bytes = static_cast<size_t>(c.used);  // <= MTAN_MAX_ARENA_BYTES: fits any size_t
  return MTAN_OK;
}

mtan_status ResolveOptions(const ModelView& v, const mtan_options* options, uint32_t* max_batch,
                           mtan_backend* backend) {
  const mtan_options opt = options ? *options : mtan_options_default();
  *max_batch = opt.max_batch ? opt.max_batch : v.fb->max_batch();
  if (*max_batch > MTAN_MAX_BATCH)
    return SetError(MTAN_ERROR_BATCH, "max_batch %u above the limit %d", *max_batch, MTAN_MAX_BATCH);
  if (static_cast<uint64_t>(v.fb->activation_bytes_per_row()) * *max_batch > MTAN_MAX_FILE_BYTES * 4ull)
    return SetError(MTAN_ERROR_LIMIT, "activations of %u bytes per row x %u rows are too large",
                    v.fb->activation_bytes_per_row(), *max_batch);
  switch (opt.backend) {
    case MTAN_BACKEND_DEFAULT:  // XNNPACK where built with it, and native kernels
      *backend = MTAN_BACKEND_DEFAULT;
      break;
    case MTAN_BACKEND_XNNPACK:
      if (!XnnpackAvailable())
        return SetError(MTAN_ERROR_UNSUPPORTED, "this build has no XNNPACK backend");
      *backend = MTAN_BACKEND_XNNPACK;
      break;
    case MTAN_BACKEND_REFERENCE:
      *backend = MTAN_BACKEND_REFERENCE;
      break;
    default:
      return SetError(MTAN_ERROR_INVALID_ARGUMENT, "unknown backend %u", opt.backend);
  }
  if (!g_initialized) return SetError(MTAN_ERROR_NOT_INITIALIZED, "call mtan_init() first");
  return MTAN_OK;
}

// Verify + size, under the global lock held by the caller.
mtan_status Size(const void* data, size_t bytes, const mtan_options* options, ModelView* v,
                 uint32_t* max_batch, mtan_backend* backend, size_t* arena_bytes) {
  MTAN_RETURN_IF_ERROR(VerifyModel(data, bytes, v));
  MTAN_RETURN_IF_ERROR(ResolveOptions(*v, options, max_batch, backend));
  *arena_bytes = 0;
  MTAN_RETURN_IF_ERROR(Prepare(*v, *max_batch, *backend, nullptr, arena_bytes, nullptr));
  return MTAN_OK;
}

struct LockGuard {
  LockGuard() { GlobalLock(); }
  ~LockGuard() { GlobalUnlock(); }
};

mtan_status RunOps(mtan_model* model, const float* rows, uint32_t batch, const uint32_t* plan,
                   uint32_t length, void* threadpool) {
  for (uint32_t i = 0; i < length; ++i) {
    OpState& op = model->ops[plan ? plan[i] : i];
    if (op.backend == MTAN_BACKEND_XNNPACK) {
      MTAN_RETURN_IF_ERROR(XnnpackRun(&op, batch, threadpool));
    } else {
      MTAN_RETURN_IF_ERROR(RunReference(op, batch, rows, model->fb));
    }
  }
  return MTAN_OK;
}

// expm1 of a value the verifier bounds (finite) may still exceed float32:
// it saturates at FLT_MAX, as int8 values saturate, so outputs stay finite.
inline float Expm1Saturated(float v) {
  const float y = expm1f(v);
  return y < FLT_MAX ? y : FLT_MAX;
}

void CopyOutput(const TaskState& t, uint32_t batch, float* out, uint32_t stride, uint32_t offset) {
  for (uint32_t r = 0; r < batch; ++r) {
    const float* src = t.output + static_cast<size_t>(r) * t.output_size;
    float* dst = out + static_cast<size_t>(r) * stride + offset;
    for (uint32_t k = 0; k < t.output_size; ++k)
      dst[k] = t.transform == fb::OutputTransform::EXPM1 ? Expm1Saturated(src[k]) : src[k];
  }
}

// Claims `model` for the calling thread: false (and the model untouched) if
// another thread holds it.
struct ModelClaim {
  mtan_model* model;
  bool claimed;
  explicit ModelClaim(mtan_model* m)
      : model(m), claimed(m->busy.exchange(1, std::memory_order_acquire) == 0) {}
  ~ModelClaim() {
    if (claimed) model->busy.store(0, std::memory_order_release);
  }
  ModelClaim(const ModelClaim&) = delete;
  ModelClaim& operator=(const ModelClaim&) = delete;
};

mtan_status BusyError() {
  return SetError(MTAN_ERROR_BUSY, "another thread is running or self-testing this model (one "
                  "model serves one thread at a time)");
}

const fb::Tensor* TensorInput(const mtan_model* model, uint32_t j) {
  return TensorAt(model->fb, model->fb->tensor_inputs()->Get(j)->tensor());
}

// Bytes of one row of tensor input j, as the caller passes it (and as the
// memory plan holds it: int64 rows are a multiple of 4 bytes).
size_t TensorInputRowBytes(const mtan_model* model, uint32_t j) {
  const fb::Tensor* t = TensorInput(model, j);
  return static_cast<size_t>(RowElements(*t->shape())) * DTypeBytes(t->dtype());
}

// Copies `rows` rows of the caller's ids into the arena, mapped to table
// rows by the tensor input's IdMap (contract.h). Padding stays -1.
void CopyIds(const fb::Model* m, const fb::TensorInput* in, const uint8_t* src, uint8_t* dst,
             size_t ids) {
  if (in->id_map() == fb::IdMap::ROWS) {
    memcpy(dst, src, ids * 8);
    return;
  }
  const uint32_t buckets = in->hash_buckets();
  const auto* vocabulary = in->id_map() == fb::IdMap::VOCABULARY
                               ? m->buffers()->Get(in->vocabulary())->data()
                               : nullptr;
  for (size_t i = 0; i < ids; ++i) {
    int64_t id;
    memcpy(&id, src + i * 8, 8);
    if (id != kPaddingId)
      id = vocabulary ? VocabularyRow(vocabulary->data(), vocabulary->size() / 8, id)
                      : HashedRow(id, buckets);
    memcpy(dst + i * 8, &id, 8);
  }
}

// mtan_run_batch's ids: each row's CSR bag copied to its padded arena row
// (length ids, -1 after the last), mapped by CopyIds. Checks the offsets
// before reading any id.
mtan_status CopyCsrIds(mtan_model* model, const mtan_batch* b) {
  const uint32_t count = model->num_tensor_inputs;
  if (b->id_input_count != count)
    return SetError(MTAN_ERROR_INVALID_ARGUMENT, "%u id inputs given; this model takes %u",
                    b->id_input_count, count);
  if (count != 0 && b->ids == nullptr) return SetError(MTAN_ERROR_INVALID_ARGUMENT, "ids is NULL");
  for (uint32_t j = 0; j < count; ++j) {
    const fb::TensorInput* in = model->fb->tensor_inputs()->Get(j);
    const char* name = in->name()->c_str();
    if (TensorInput(model, j)->dtype() != fb::DType::INT64)
      return SetError(MTAN_ERROR_INVALID_ARGUMENT, "tensor input %u '%s' is not ids: call "
                      "mtan_run_inputs", j, name);
    const mtan_ids& ids = b->ids[j];
    if (ids.offsets == nullptr || (ids.ids == nullptr && ids.offsets[b->batch] != 0))
      return SetError(MTAN_ERROR_INVALID_ARGUMENT, "id input %u '%s': ids or offsets is NULL", j,
                      name);
    if (ids.offsets[0] != 0)
      return SetError(MTAN_ERROR_INVALID_ARGUMENT, "id input %u '%s': offsets[0] is %u, not 0", j,
                      name, ids.offsets[0]);
    const size_t length = TensorInputRowBytes(model, j) / 8;
    for (uint32_t r = 0; r < b->batch; ++r) {
      if (ids.offsets[r + 1] < ids.offsets[r])
        return SetError(MTAN_ERROR_INVALID_ARGUMENT, "id input %u '%s': offsets[%u] = %u is "
                        "below offsets[%u] = %u", j, name, r + 1, ids.offsets[r + 1], r,
                        ids.offsets[r]);
      if (ids.offsets[r + 1] - ids.offsets[r] > length)
        return SetError(MTAN_ERROR_INPUT_ID, "row %u of '%s' holds %u ids; the model takes at "
                        "most %zu", r, name, ids.offsets[r + 1] - ids.offsets[r], length);
    }
    uint8_t* dst = model->activations + static_cast<size_t>(TensorInput(model, j)->arena_offset()) *
                                            model->max_batch;
    for (uint32_t r = 0; r < b->batch; ++r) {
      const uint32_t n = ids.offsets[r + 1] - ids.offsets[r];
      uint8_t* row = dst + static_cast<size_t>(r) * length * 8;
      CopyIds(model->fb, in, reinterpret_cast<const uint8_t*>(ids.ids + ids.offsets[r]), row, n);
      for (size_t l = n; l < length; ++l) memcpy(row + l * 8, &kPaddingId, 8);
    }
  }
  return MTAN_OK;
}

// Copies the caller's tensor inputs into their planned arena bytes.
mtan_status CopyTensorInputs(mtan_model* model, const void* const* inputs, uint32_t count,
                             uint32_t batch) {
  if (count != model->num_tensor_inputs) {
    if (model->num_tensor_inputs == 0)
      return SetError(MTAN_ERROR_INVALID_ARGUMENT, "%u tensor inputs given; this model takes none",
                      count);
    return SetError(MTAN_ERROR_INVALID_ARGUMENT, "%u tensor inputs given; this model takes %u "
                    "(the first is '%s'): call mtan_run_inputs with all of them", count,
                    model->num_tensor_inputs,
                    model->fb->tensor_inputs()->Get(0)->name()->c_str());
  }
  if (count != 0 && inputs == nullptr)
    return SetError(MTAN_ERROR_INVALID_ARGUMENT, "tensor_inputs is NULL");
  for (uint32_t j = 0; j < count; ++j) {
    if (inputs[j] == nullptr)
      return SetError(MTAN_ERROR_INVALID_ARGUMENT, "tensor input %u '%s' is NULL", j,
                      model->fb->tensor_inputs()->Get(j)->name()->c_str());
    uint8_t* dst = model->activations +
                   static_cast<size_t>(TensorInput(model, j)->arena_offset()) * model->max_batch;
    const size_t bytes = TensorInputRowBytes(model, j) * batch;
    if (TensorInput(model, j)->dtype() == fb::DType::INT64)
      CopyIds(model->fb, model->fb->tensor_inputs()->Get(j), static_cast<const uint8_t*>(inputs[j]),
              dst, bytes / 8);
    else
      memcpy(dst, inputs[j], bytes);
  }
  return MTAN_OK;
}

// mtan_run_inputs' and mtan_run_batch's work (ids in `csr` when it is not
// NULL), for a model the caller has claimed.
mtan_status RunClaimed(mtan_model* model, const float* rows, const void* const* tensor_inputs,
                       uint32_t tensor_input_count, uint32_t batch, int32_t task, float* output,
                       size_t output_floats, void* threadpool, const mtan_batch* csr = nullptr) {
  if (rows == nullptr || output == nullptr)
    return SetError(MTAN_ERROR_INVALID_ARGUMENT, "rows or output is NULL");
  if (batch == 0 || batch > model->max_batch)
    return SetError(MTAN_ERROR_BATCH, "batch %u is not 1..%u (the max_batch loaded)", batch,
                    model->max_batch);
  uint32_t per_row = 0;
  MTAN_RETURN_IF_ERROR(mtan_output_size(model, task, &per_row));
  if (static_cast<uint64_t>(output_floats) < static_cast<uint64_t>(batch) * per_row)
    return SetError(MTAN_ERROR_OUTPUT_TOO_SMALL, "output holds %zu floats, %u rows need %llu",
                    output_floats, batch, static_cast<unsigned long long>(batch) * per_row);
  if (csr != nullptr) {
    MTAN_RETURN_IF_ERROR(CopyCsrIds(model, csr));
  } else {
    MTAN_RETURN_IF_ERROR(CopyTensorInputs(model, tensor_inputs, tensor_input_count, batch));
  }
  if (task == MTAN_ALL_TASKS) {
    MTAN_RETURN_IF_ERROR(RunOps(model, rows, batch, nullptr, model->num_ops, threadpool));
    for (uint32_t k = 0; k < model->num_tasks; ++k)
      CopyOutput(model->tasks[k], batch, output, per_row, model->tasks[k].output_offset);
  } else {
    const TaskState& t = model->tasks[task];
    MTAN_RETURN_IF_ERROR(RunOps(model, rows, batch, t.plan, t.plan_length, threadpool));
    CopyOutput(t, batch, output, per_row, 0);
  }
  return MTAN_OK;
}

}  // namespace
}  // namespace mtan

using namespace mtan;

extern "C" {

mtan_status mtan_init(void) {
  LockGuard lock;
  if (g_initialized) return MTAN_OK;
  MTAN_RETURN_IF_ERROR(XnnpackInit());
  g_initialized = true;
  return MTAN_OK;
}

mtan_options mtan_options_default(void) {
  mtan_options o;
  o.max_batch = 0;
  o.backend = MTAN_BACKEND_DEFAULT;
  return o;
}

mtan_status mtan_arena_size(const void* model_data, size_t model_bytes,
                            const mtan_options* options, size_t* arena_bytes_out) {
  if (arena_bytes_out == nullptr)
    return SetError(MTAN_ERROR_INVALID_ARGUMENT, "arena_bytes_out is NULL");
  LockGuard lock;
  ModelView v;
  uint32_t max_batch;
  mtan_backend backend;
  return Size(model_data, model_bytes, options, &v, &max_batch, &backend, arena_bytes_out);
}

mtan_status mtan_load(const void* model_data, size_t model_bytes, const mtan_options* options,
                      void* arena, size_t arena_bytes, mtan_model** model_out) {
  if (model_out == nullptr) return SetError(MTAN_ERROR_INVALID_ARGUMENT, "model_out is NULL");
  *model_out = nullptr;
  if (arena == nullptr) return SetError(MTAN_ERROR_INVALID_ARGUMENT, "arena is NULL");
  LockGuard lock;
  ModelView v;
  uint32_t max_batch;
  mtan_backend backend;
  size_t need = 0;
  MTAN_RETURN_IF_ERROR(Size(model_data, model_bytes, options, &v, &max_batch, &backend, &need));
  uint8_t* raw = static_cast<uint8_t*>(arena);
  uint8_t* base = reinterpret_cast<uint8_t*>(
      AlignUp(reinterpret_cast<uintptr_t>(raw), kArenaAlignment));
  const size_t pad = static_cast<size_t>(base - raw);
  if (arena_bytes < pad || arena_bytes - pad < need)
    return SetError(MTAN_ERROR_ARENA_TOO_SMALL, "arena of %zu bytes is too small: this model "
                    "needs %zu bytes at max_batch %u (%zu with this arena's alignment)",
                    arena_bytes, need, max_batch, need + pad);
  size_t bytes = arena_bytes - pad;
  mtan_model* model = nullptr;
  MTAN_RETURN_IF_ERROR(Prepare(v, max_batch, backend, base, &bytes, &model));
  model->arena = raw;
  model->arena_used = bytes + pad;
  *model_out = model;
  return MTAN_OK;
}

void mtan_unload(mtan_model* model) {
  if (model == nullptr || !model->loaded) return;
  LockGuard lock;
  for (uint32_t o = 0; o < model->num_ops; ++o) XnnpackDelete(&model->ops[o]);
  model->loaded = false;
}

#define MTAN_CHECK_MODEL(model)                                                     \
  if ((model) == nullptr || !(model)->loaded)                                       \
    return SetError(MTAN_ERROR_INVALID_ARGUMENT, "model is NULL or not loaded");

mtan_status mtan_arena_used(const mtan_model* model, size_t* bytes_out) {
  MTAN_CHECK_MODEL(model);
  if (!bytes_out) return SetError(MTAN_ERROR_INVALID_ARGUMENT, "bytes_out is NULL");
  *bytes_out = model->arena_used;
  return MTAN_OK;
}

mtan_status mtan_max_batch(const mtan_model* model, uint32_t* max_batch_out) {
  MTAN_CHECK_MODEL(model);
  if (!max_batch_out) return SetError(MTAN_ERROR_INVALID_ARGUMENT, "max_batch_out is NULL");
  *max_batch_out = model->max_batch;
  return MTAN_OK;
}

mtan_status mtan_input_count(const mtan_model* model, uint32_t* count_out) {
  MTAN_CHECK_MODEL(model);
  if (!count_out) return SetError(MTAN_ERROR_INVALID_ARGUMENT, "count_out is NULL");
  *count_out = model->num_inputs;
  return MTAN_OK;
}

mtan_status mtan_input_name(const mtan_model* model, uint32_t index, const char** name_out) {
  MTAN_CHECK_MODEL(model);
  if (!name_out || index >= model->num_inputs)
    return SetError(MTAN_ERROR_INVALID_ARGUMENT, "input %u out of range (%u inputs)", index,
                    model->num_inputs);
  const auto* name = model->fb->inputs()->Get(index)->name();
  *name_out = name ? name->c_str() : "";
  return MTAN_OK;
}

mtan_status mtan_task_count(const mtan_model* model, uint32_t* count_out) {
  MTAN_CHECK_MODEL(model);
  if (!count_out) return SetError(MTAN_ERROR_INVALID_ARGUMENT, "count_out is NULL");
  *count_out = model->num_tasks;
  return MTAN_OK;
}

mtan_status mtan_task_info_get(const mtan_model* model, uint32_t task, mtan_task_info* info_out) {
  MTAN_CHECK_MODEL(model);
  if (!info_out || task >= model->num_tasks)
    return SetError(MTAN_ERROR_INVALID_ARGUMENT, "task %u out of range (%u tasks)", task,
                    model->num_tasks);
  const TaskState& t = model->tasks[task];
  info_out->name = t.name;
  info_out->kind = t.kind;
  info_out->output_size = t.output_size;
  info_out->output_offset = t.output_offset;
  info_out->operator_count = t.plan_length;
  return MTAN_OK;
}

mtan_status mtan_task_find(const mtan_model* model, const char* name, int32_t* task_out) {
  MTAN_CHECK_MODEL(model);
  if (!name || !task_out) return SetError(MTAN_ERROR_INVALID_ARGUMENT, "name or task_out is NULL");
  for (uint32_t k = 0; k < model->num_tasks; ++k) {
    if (strcmp(model->tasks[k].name, name) == 0) {
      *task_out = static_cast<int32_t>(k);
      return MTAN_OK;
    }
  }
  return SetError(MTAN_ERROR_INVALID_ARGUMENT, "no task named '%s'", name);
}

mtan_status mtan_output_size(const mtan_model* model, int32_t task, uint32_t* floats_out) {
  MTAN_CHECK_MODEL(model);
  if (!floats_out) return SetError(MTAN_ERROR_INVALID_ARGUMENT, "floats_out is NULL");
  if (task == MTAN_ALL_TASKS) {
    *floats_out = model->output_floats_all;
    return MTAN_OK;
  }
  if (task < 0 || static_cast<uint32_t>(task) >= model->num_tasks)
    return SetError(MTAN_ERROR_INVALID_ARGUMENT, "task %d out of range (%u tasks)", task,
                    model->num_tasks);
  *floats_out = model->tasks[task].output_size;
  return MTAN_OK;
}

mtan_status mtan_run(mtan_model* model, const float* rows, uint32_t batch, int32_t task,
                     float* output, size_t output_floats, void* threadpool) {
  MTAN_CHECK_MODEL(model);
  ModelClaim claim(model);
  if (!claim.claimed) return BusyError();
  return RunClaimed(model, rows, nullptr, 0, batch, task, output, output_floats, threadpool);
}

mtan_status mtan_run_inputs(mtan_model* model, const float* rows, const void* const* tensor_inputs,
                            uint32_t tensor_input_count, uint32_t batch, int32_t task,
                            float* output, size_t output_floats, void* threadpool) {
  MTAN_CHECK_MODEL(model);
  ModelClaim claim(model);
  if (!claim.claimed) return BusyError();
  return RunClaimed(model, rows, tensor_inputs, tensor_input_count, batch, task, output,
                    output_floats, threadpool);
}

mtan_status mtan_run_batch(mtan_model* model, const mtan_batch* batch, int32_t task, float* output,
                           size_t output_floats, void* threadpool) {
  MTAN_CHECK_MODEL(model);
  if (batch == nullptr) return SetError(MTAN_ERROR_INVALID_ARGUMENT, "batch is NULL");
  ModelClaim claim(model);
  if (!claim.claimed) return BusyError();
  return RunClaimed(model, batch->rows, nullptr, 0, batch->batch, task, output, output_floats,
                    threadpool, batch);
}

mtan_status mtan_tensor_input_count(const mtan_model* model, uint32_t* count_out) {
  MTAN_CHECK_MODEL(model);
  if (!count_out) return SetError(MTAN_ERROR_INVALID_ARGUMENT, "count_out is NULL");
  *count_out = model->num_tensor_inputs;
  return MTAN_OK;
}

mtan_status mtan_tensor_input_info(const mtan_model* model, uint32_t index, mtan_input_info* info_out) {
  MTAN_CHECK_MODEL(model);
  if (!info_out || index >= model->num_tensor_inputs)
    return SetError(MTAN_ERROR_INVALID_ARGUMENT, "tensor input %u out of range (%u tensor inputs)",
                    index, model->num_tensor_inputs);
  const fb::Tensor* t = TensorInput(model, index);
  info_out->name = model->fb->tensor_inputs()->Get(index)->name()->c_str();
  info_out->dtype = static_cast<uint32_t>(t->dtype());
  info_out->rank = t->shape()->size();
  for (uint32_t d = 0; d < MTAN_MAX_RANK; ++d)
    info_out->shape[d] = d < info_out->rank ? static_cast<uint32_t>(t->shape()->Get(d)) : 0;
  info_out->row_bytes = static_cast<uint32_t>(TensorInputRowBytes(model, index));
  const fb::TensorInput* in = model->fb->tensor_inputs()->Get(index);
  info_out->id_map = static_cast<uint32_t>(in->id_map());
  info_out->id_rows = TensorInputRows(model->fb, in);
  return MTAN_OK;
}

int64_t mtan_hash_id(const void* bytes, size_t length) {
  return HashId(bytes == nullptr ? "" : bytes, bytes == nullptr ? 0 : length);
}

mtan_status mtan_tensor_count(const mtan_model* model, uint32_t* count_out) {
  MTAN_CHECK_MODEL(model);
  if (!count_out) return SetError(MTAN_ERROR_INVALID_ARGUMENT, "count_out is NULL");
  *count_out = model->fb->tensors()->size();
  return MTAN_OK;
}

mtan_status mtan_tensor_get(const mtan_model* model, uint32_t tensor, mtan_tensor_desc* desc_out) {
  MTAN_CHECK_MODEL(model);
  if (!desc_out || tensor >= model->fb->tensors()->size())
    return SetError(MTAN_ERROR_INVALID_ARGUMENT, "tensor %u out of range", tensor);
  const fb::Tensor* t = model->fb->tensors()->Get(tensor);
  desc_out->name = NameOf(t);
  static_assert(MTAN_DTYPE_FLOAT32 == static_cast<int>(fb::DType::FLOAT32) &&
                    MTAN_DTYPE_INT8 == static_cast<int>(fb::DType::INT8) &&
                    MTAN_DTYPE_INT32 == static_cast<int>(fb::DType::INT32) &&
                    MTAN_DTYPE_INT64 == static_cast<int>(fb::DType::INT64),
                "mtan_dtype mirrors the schema's DType");
  desc_out->dtype = static_cast<uint32_t>(t->dtype());
  desc_out->channels = static_cast<uint32_t>(RowElements(*t->shape()));
  desc_out->rank = t->shape()->size();
  for (uint32_t d = 0; d < MTAN_MAX_RANK; ++d)
    desc_out->shape[d] = d < desc_out->rank ? static_cast<uint32_t>(t->shape()->Get(d)) : 0;
  desc_out->is_constant = t->buffer() != 0;
  desc_out->scale = Scale(t);
  desc_out->zero_point = ZeroPoint(t);
  desc_out->data = nullptr;
  if (t->buffer() == 0 && static_cast<int32_t>(tensor) != model->fb->input_tensor())
    desc_out->data = model->activations + static_cast<size_t>(t->arena_offset()) * model->max_batch;
  return MTAN_OK;
}

mtan_status mtan_self_test(mtan_model* model) {
  MTAN_CHECK_MODEL(model);
  ModelClaim claim(model);
  if (!claim.claimed) return BusyError();
  const auto* golden = model->fb->golden();
  if (golden == nullptr || golden->size() == 0)
    return SetError(MTAN_ERROR_NO_GOLDEN_CASES, "the model has no golden cases");
  const uint32_t per_row = model->output_floats_all;
  for (uint32_t g = 0; g < golden->size(); ++g) {
    const fb::GoldenCase* gc = golden->Get(g);
    // Format 1.1: one tolerance per output (a probability in probability
    // units, a spend in currency units); a 1.0 file has one for all.
    const auto* tols = gc->tolerances();
    const bool per_output = tols != nullptr && tols->size() != 0;
    for (uint32_t r0 = 0; r0 < gc->rows(); r0 += model->max_batch) {
      const uint32_t n = gc->rows() - r0 < model->max_batch ? gc->rows() - r0 : model->max_batch;
      // Tensor input j's rows follow those of inputs 0..j-1 (all rows each).
      const void* ids[MTAN_MAX_TENSOR_INPUTS];
      const uint8_t* at = gc->tensor_input() ? gc->tensor_input()->data() : nullptr;
      for (uint32_t j = 0; j < model->num_tensor_inputs; ++j) {
        ids[j] = at + TensorInputRowBytes(model, j) * r0;
        at += TensorInputRowBytes(model, j) * gc->rows();
      }
      MTAN_RETURN_IF_ERROR(RunClaimed(model, gc->input()->data() + static_cast<size_t>(r0) * model->num_inputs,
                                      ids, model->num_tensor_inputs, n, MTAN_ALL_TASKS,
                                      model->golden_scratch, static_cast<size_t>(n) * per_row,
                                      nullptr));
      for (uint32_t i = 0; i < n * per_row; ++i) {
        const float got = model->golden_scratch[i];
        const float want = gc->output()->Get(static_cast<size_t>(r0) * per_row + i);
        const float tol = per_output ? tols->Get(i % per_row) : gc->tolerance();
        if (!(fabsf(got - want) <= tol))
          return SetError(MTAN_ERROR_SELF_TEST, "golden case %u, row %u, output %u: got %g, "
                          "expected %g (tolerance %g)", g, r0 + i / per_row, i % per_row,
                          static_cast<double>(got), static_cast<double>(want),
                          static_cast<double>(tol));
      }
    }
  }
  return MTAN_OK;
}

}  // extern "C"
