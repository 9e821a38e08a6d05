// Parameter structs of the operators whose kernels tests/runtime/
// kernels_test.cc drives directly (an OpState built by hand). An operator
// whose tests go through a model keeps its struct private to its file
// (quantize.cc, concat.cc).
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "ops/fully_connected_s8_x86.h"
#include "ops/registry.h"

namespace mtan {

// FULLY_CONNECTED: weights [O, I] and bias [O] in the model bytes.
struct FullyConnectedParams {
  const void* weights;
  const void* bias;
  const float* weight_scales;  // int8: per output channel, in the model bytes
  const float* requant;        // int8, reference kernel: s_x * s_w[o] / s_y
  // int8 on the default backend of a VNNI core (fully_connected_s8_x86.h):
  // the packed weights and the kernel; null otherwise.
  const FcS8Packed* packed;
  FcS8Kernel kernel;
};

// LOGISTIC and TANH int8 on the reference kernel: a 256-entry table.
struct LookupParams {
  const int8_t* lut;
};
void BuildSigmoidLut(float in_scale, int32_t in_zp, int8_t* lut);
void BuildTanhLut(float in_scale, int32_t in_zp, int8_t* lut);
// y = lut[x], for LOGISTIC and TANH int8.
void LookupS8(const OpState& op, uint32_t batch);
// What LOGISTIC and TANH share (logistic.cc): one int8 or float32
// activation in, the same shape and dtype out, an int8 output at the fixed
// quantization of contract.h; and at load the reference kernel's table.
mtan_status VerifyLookupOp(VerifyContext& c, uint32_t o);
void PrepareLookup(PrepareContext& c, OpState* st, void (*build)(float, int32_t, int8_t*));

// What MUL and ADD share (mul.cc): two activations of one dtype (int8 or
// float32) and of the output's shape.
mtan_status VerifyBinaryElementwise(VerifyContext& c, uint32_t o);

// ATTENTION_POOL: `inputs` sources (T scores then T values), their
// addresses and per-tensor quantization.
struct AttentionPoolParams {
  uint32_t inputs;
  const void* const* ptrs;
  const float* scales;
  const int32_t* zps;
};

}  // namespace mtan
