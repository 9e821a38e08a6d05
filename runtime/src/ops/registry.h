// One module per operator (runtime/src/ops/<op>.cc), each exporting one
// OpRegistration, as TFLite Micro's TFLMRegistration does: the verifier, the
// loader and both backends find an operator's code through FindOp(opcode)
// and hold no per-operator switch of their own.
//
// What an operator provides:
//   verify      arity, dtypes, shapes and quantization of one operator of an
//               untrusted file (the generic checks ran already: indices,
//               graph order, one output, activation and model-input rules);
//   float_bound the bound of a float32 output from its inputs' bounds (the
//               verifier refuses an output that could exceed 2^127);
//   prepare     what it carves from the arena and precomputes at load. It runs
//               twice with the same code: sizing (ctx.load false, Carve only
//               counts) and loading, so the planned bytes are exact by
//               construction;
//   eval        the portable reference kernel (no allocation, no checks
//               beyond what load proved);
//   xnn_*       the XNNPACK operator, when the op has one: whether it takes
//               this instance, create (allocations go to the arena through
//               backend_xnnpack.cc) and setup for a batch.
// Adding an operator: its enum value in schema/mtan.fbs, one file here, one
// line in registry.cc, one quantize rule in host/quantize.cc.
//
// Backends: MTAN_BACKEND_REFERENCE runs every eval's portable kernel;
// MTAN_BACKEND_XNNPACK runs XNNPACK where xnn_handles says so; the default
// backend is XNNPACK's, except where native_handles takes an instance.
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "contract.h"
#include "mtan/mtan.h"
#include "mtan_generated.h"

namespace mtan {

// Bytes of per-operator parameters kept inside OpState (its struct is the
// operator's own: pointers to what prepare carved, counts, precomputed
// values; the largest today is CONCAT's, a count and four pointers). OpState
// stays the size it had before the split into ops/ (160 bytes on 64-bit
// targets, 96 on 32-bit ones), so that arena sizes, and the files
// mtan-convert writes, which record the measured arena size, did not change.
constexpr size_t kOpParamsBytes = sizeof(void*) == 8 ? 72 : 32;

// OpState.backend of an operator on the runtime's own optimized kernel
// (native_handles below); it runs through eval, as the reference kernels.
constexpr uint8_t kBackendNative = 3;

// Everything one operator needs at run time, decided at load.
struct OpState {
  fb::OpCode code;
  bool relu;
  bool int8;
  uint8_t backend;       // MTAN_BACKEND_REFERENCE, MTAN_BACKEND_XNNPACK or kBackendNative
  uint32_t in_channels;  // per-row elements of the (first) input
  uint32_t out_channels;
  const void* in0;       // activations in the arena (QUANTIZE of the model
  const void* in1;       // input: null, rows come at run)
  void* out;
  // Per-tensor quantization: zero points and scales of in0, in1 and out.
  int32_t zp_in0, zp_in1, zp_out;
  float scale_in0, scale_in1, scale_out;
  void* xnn_op;          // xnn_operator_t
  uint32_t setup_batch;  // batch and threadpool the xnn_op was last set up for
  void* setup_pool;
  alignas(8) unsigned char params[kOpParamsBytes];  // the operator's own struct
};

// The operator's parameter struct inside `op`.
template <typename P>
P& Params(OpState& op) {
  static_assert(sizeof(P) <= kOpParamsBytes && alignof(P) <= 8, "parameters too large");
  return *reinterpret_cast<P*>(op.params);
}
template <typename P>
const P& Params(const OpState& op) {
  static_assert(sizeof(P) <= kOpParamsBytes && alignof(P) <= 8, "parameters too large");
  return *reinterpret_cast<const P*>(op.params);
}

// What verify and float_bound see of the model being verified (verify.cc
// implements the out-of-line parts). Indices were checked before the call.
struct VerifyContext {
  const fb::Model* m;
  uint32_t num_tensors;
  int16_t* same_data;  // constants: first tensor with the same data
  int16_t* bound;      // float32 tensors: exponent of their value bound

  const fb::Tensor* T(uint32_t i) const { return m->tensors()->Get(i); }
  bool IsActivation(uint32_t i) const { return T(i)->buffer() == 0; }
  // Per-row elements of an activation (the product of its per-row shape).
  uint32_t Channels(uint32_t i) const {
    return static_cast<uint32_t>(RowElements(*T(i)->shape()));
  }
  uint32_t Rank(uint32_t i) const { return T(i)->shape()->size(); }
  // Rows tensor input t's ids map to (contract.h's TensorInputRows; 0: the
  // ids are row numbers, checked at run time, or t is no tensor input).
  uint32_t IdRows(uint32_t t) const;
  // The same per-row shape: rank and every dimension.
  bool SameShape(uint32_t a, uint32_t b) const;
  const char* Name(uint32_t i) const;
  // MTAN_ERROR_OPERATOR "operator o (OPCODE): what".
  mtan_status Fail(uint32_t o, const char* what) const;
  // MTAN_ERROR_SHAPE "operator o: shapes differ".
  mtan_status ShapesDiffer(uint32_t o) const;
  // The value bound of float32 tensor t (an earlier operator's output).
  double InputBound(uint32_t t) const;
  // The largest bound of operator o's inputs first.. (outputs that copy or
  // convexly combine their inputs).
  double MaxInputBound(uint32_t o, uint32_t first) const;
  // Largest row sum of |w| (weights [O, I]) or largest |b| (a vector) of a
  // float32 constant, computed once per data.
  double ConstantBound(uint32_t t);
  // int8 tensor t's per-tensor scale and zero point (verified to exist).
  float Scale(uint32_t t) const;
  int32_t ZeroPoint(uint32_t t) const;
};

// What prepare sees: the operator in the file and the arena being carved.
struct PrepareContext {
  const fb::Model* m;
  const fb::Operator* op;
  bool load;     // false: sizing, Carve returns null and only counts
  bool xnnpack;  // the XNNPACK backend runs this operator (its own tables)
  bool native;   // eval runs it on the runtime's own optimized kernel
  uint32_t max_batch;
  uint8_t* activations;  // load: the activation region
  uint64_t* carved;      // the carver's running total
  uint8_t* arena;        // load: the arena base

  // 64-byte aligned chunk of `bytes` (null while sizing).
  void* Carve(uint64_t bytes);
  // The arena address of activation t (null while sizing).
  void* Activation(int32_t t) const;
  const fb::Tensor* Tensor(uint32_t i) const { return m->tensors()->Get(i); }
  // Per-tensor quantization; float tensors (no scale) read as 1 and 0.
  float Scale(int32_t t) const;
  int32_t ZeroPoint(int32_t t) const;
};

struct OpRegistration {
  fb::OpCode code;
  // The model input (the caller's rows) may be its first input.
  bool reads_model_input;
  // Activation (RELU) may be fused.
  bool fuses_relu;
  // Activations of any per-row rank (elementwise operators, RESHAPE); else
  // every activation it reads or writes is rank 1 (checked by the verifier).
  bool any_rank;
  // May read int64 activations (tensor inputs of ids); no other operator
  // may (checked by the verifier).
  bool reads_ids;
  mtan_status (*verify)(VerifyContext& ctx, uint32_t o);
  // Bound of a float32 output; a value beyond 2^127 is refused with
  // bound_error.
  double (*float_bound)(VerifyContext& ctx, uint32_t o);
  mtan_status bound_error;
  // Optional (null: nothing to carve or precompute).
  void (*prepare)(PrepareContext& ctx, OpState* op);
  mtan_status (*eval)(const OpState& op, uint32_t batch, const float* rows,
                      const fb::Model* model);
  // Optional (null: no): whether the runtime's own optimized kernel takes
  // this instance on the default backend, ahead of XNNPACK (the int8
  // fully-connected VNNI kernels). It then runs through eval, and prepare
  // sees ctx.native.
  bool (*native_handles)(const OpState& op);
  // Optional; null when XNNPACK has no such operator (or the build has no
  // XNNPACK). Return xnn_status values.
  bool (*xnn_handles)(const OpState& op);
  int (*xnn_create)(const OpState& op, void** xnn_op);
  int (*xnn_setup)(const OpState& op, void* xnn_op, uint32_t batch, void* threadpool);
  // Optional (null: yes): whether this instance may run on the caller's
  // threadpool; if not, XNNPACK runs it on the calling thread alone.
  bool (*xnn_uses_pool)(const OpState& op);
};

// The registration of `code`, or null for a value outside the schema's enum.
const OpRegistration* FindOp(fb::OpCode code);

// The XNNPACK part of a registration: compiled only into XNNPACK builds.
#if MTAN_HAS_XNNPACK
#define MTAN_XNNPACK_OP(handles, create, setup, uses_pool) handles, create, setup, uses_pool
#else
#define MTAN_XNNPACK_OP(handles, create, setup, uses_pool) nullptr, nullptr, nullptr, nullptr
#endif

}  // namespace mtan
