// The debug API (mtan/mtan_debug.h): a loaded model's operators one by one.
#include "mtan/mtan_debug.h"

#include "internal.h"
#include "ops/fully_connected_s8_x86.h"

using namespace mtan;

extern "C" {

mtan_status mtan_backend_available(uint32_t backend) {
  switch (backend) {
    case MTAN_BACKEND_DEFAULT:
    case MTAN_BACKEND_REFERENCE:
      return MTAN_OK;
    case MTAN_BACKEND_XNNPACK:
      return XnnpackAvailable() ? MTAN_OK
                                : SetError(MTAN_ERROR_UNSUPPORTED, "this build has no XNNPACK backend");
    default:
      return SetError(MTAN_ERROR_INVALID_ARGUMENT, "unknown backend %u", backend);
  }
}

mtan_status mtan_operator_count(const mtan_model* model, uint32_t* count_out) {
  if (model == nullptr || !model->loaded || count_out == nullptr)
    return SetError(MTAN_ERROR_INVALID_ARGUMENT, "model not loaded, or count_out is NULL");
  *count_out = model->num_ops;
  return MTAN_OK;
}

mtan_status mtan_operator_info_get(const mtan_model* model, uint32_t op,
                                   mtan_operator_info* info_out) {
  if (model == nullptr || !model->loaded || info_out == nullptr)
    return SetError(MTAN_ERROR_INVALID_ARGUMENT, "model not loaded, or info_out is NULL");
  if (op >= model->num_ops)
    return SetError(MTAN_ERROR_INVALID_ARGUMENT, "operator %u out of range (%u operators)", op,
                    model->num_ops);
  const OpState& s = model->ops[op];
  const fb::Tensor* y =
      model->fb->tensors()->Get(model->fb->operators()->Get(op)->outputs()->Get(0));
  info_out->opcode = fb::EnumNameOpCode(s.code);
  info_out->output = y->name() ? y->name()->c_str() : "";
  info_out->dtype = s.int8 ? MTAN_DTYPE_INT8 : MTAN_DTYPE_FLOAT32;
  info_out->backend = s.backend == MTAN_BACKEND_XNNPACK ? MTAN_BACKEND_XNNPACK : MTAN_BACKEND_REFERENCE;
  uint32_t isas = 0;
  const FcS8Isa* native = CpuInt8FcKernels(&isas);  // the native kernels today
  info_out->kernel = s.backend == MTAN_BACKEND_XNNPACK ? "xnnpack"
                     : s.backend == kBackendNative && isas > 0 ? native[0].name
                                                               : "reference";
  info_out->in_channels = s.in_channels;
  info_out->out_channels = s.out_channels;
  info_out->macs_per_row = s.code == fb::OpCode::FULLY_CONNECTED
                               ? static_cast<uint64_t>(s.in_channels) * s.out_channels
                               : 0;
  return MTAN_OK;
}

mtan_status mtan_task_plan(const mtan_model* model, int32_t task, const uint32_t** plan_out,
                           uint32_t* length_out) {
  if (model == nullptr || !model->loaded || plan_out == nullptr || length_out == nullptr)
    return SetError(MTAN_ERROR_INVALID_ARGUMENT, "model not loaded, or an output is NULL");
  if (task == MTAN_ALL_TASKS) {
    *plan_out = nullptr;
    *length_out = model->num_ops;
    return MTAN_OK;
  }
  if (task < 0 || static_cast<uint32_t>(task) >= model->num_tasks)
    return SetError(MTAN_ERROR_INVALID_ARGUMENT, "task %d out of range (%u tasks)", task,
                    model->num_tasks);
  *plan_out = model->tasks[task].plan;
  *length_out = model->tasks[task].plan_length;
  return MTAN_OK;
}

mtan_status mtan_operator_run(mtan_model* model, uint32_t op, const float* rows, uint32_t batch,
                              void* threadpool) {
  if (model == nullptr || !model->loaded || rows == nullptr)
    return SetError(MTAN_ERROR_INVALID_ARGUMENT, "model not loaded, or rows is NULL");
  if (op >= model->num_ops)
    return SetError(MTAN_ERROR_INVALID_ARGUMENT, "operator %u out of range (%u operators)", op,
                    model->num_ops);
  if (batch == 0 || batch > model->max_batch)
    return SetError(MTAN_ERROR_BATCH, "batch %u is not 1..%u (the max_batch loaded)", batch,
                    model->max_batch);
  OpState& s = model->ops[op];
  return s.backend == MTAN_BACKEND_XNNPACK ? XnnpackRun(&s, batch, threadpool)
                                      : RunReference(s, batch, rows, model->fb);
}

}  // extern "C"
