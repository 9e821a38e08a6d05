// Post-training int8 quantization of a float MTAN: the arithmetic the
// converter uses, kept apart from its command line so that tests share it.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "model_io.h"

namespace mtan::host {

struct Range {
  float min = 0.0f;
  float max = 0.0f;
};

// Asymmetric int8 parameters covering [min, max] (always including 0). A zero
// or empty range gets scale 1 rather than a division by zero.
void ChooseAsymmetric(Range r, float* scale, int32_t* zero_point);

// Symmetric per-output-channel weights in [-127, 127]: one scale per row of
// the [out][in] matrix; an all-zero row gets scale 1 and zero weights.
void QuantizeWeightsPerChannel(const std::vector<float>& w, int out, int in,
                               std::vector<int8_t>* q, std::vector<float>* scales);

// Int32 bias at scale s_x * s_w[o], rounded to nearest and saturated.
std::vector<int32_t> QuantizeBias(const std::vector<float>& b, float input_scale,
                                  const std::vector<float>& weight_scales);

// Every activation tensor's values over `n` rows, read back from the
// runtime's own float path (a copy of the model written without memory
// reuse). values[t] is empty for constants; rows x channels otherwise.
// `progress`, if set, is called after each batch with (rows done, n).
bool CollectActivations(const fb::ModelT& float_model, const std::vector<float>& rows, uint32_t n,
                        std::vector<std::vector<float>>* values, std::string* error,
                        const std::function<void(uint32_t, uint32_t)>& progress = nullptr);

// The float model with int8 weights and activations. `ranges[t]` is the
// calibrated range of activation t. The model input and the task outputs stay
// float32: heads compute int8 logits, DEQUANTIZE, then sigmoid/softmax in float.
fb::ModelT QuantizeModel(const fb::ModelT& float_model, const std::vector<Range>& ranges);

// The int8 scale of the logits behind a task's output (what its DEQUANTIZE
// reads), or 0 for a task whose output is computed in float all the way.
float TaskLogitScale(const fb::ModelT& model, const fb::TaskT& task);

// Golden-case tolerance for `rows` all-task output rows of `model` (as
// mtan_run returns them): the largest change of any output that one LSB of
// its logits' quantization can cause (sigmoid, softmax, expm1 or identity
// applied after the DEQUANTIZE), plus float noise. XNNPACK, the reference
// kernels and other CPUs may round a requantization the other way; more than
// that is a real regression.
float GoldenTolerance(const fb::ModelT& model, const float* outputs, uint32_t rows);

}  // namespace mtan::host
