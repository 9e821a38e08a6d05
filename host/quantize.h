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

// Asymmetric per-row int8 (an embedding table's row-wise layout): each row
// of the [rows][cols] matrix gets ChooseAsymmetric's scale and zero point
// for its own range, real = scale[r] * (q - zero_point[r]).
void QuantizeRowsAsymmetric(const std::vector<float>& t, int rows, int cols, std::vector<int8_t>* q,
                            std::vector<float>* scales, std::vector<int32_t>* zero_points);

// Int32 bias at scale s_x * s_w[o], rounded to nearest, saturated so that
// |bias| + 256 * sum |w| fits in int32 (the runtime's accumulator bound).
// `weights` is the int8 [out][in] matrix.
std::vector<int32_t> QuantizeBias(const std::vector<float>& b, float input_scale,
                                  const std::vector<float>& weight_scales,
                                  const std::vector<int8_t>& weights);

// Every activation tensor's values over `n` rows, read back from the
// runtime's own float path (a copy of the model written without memory
// reuse). values[t] is empty for constants; rows x channels otherwise.
// `progress`, if set, is called after each batch with (rows done, n). A
// model with tensor inputs takes their n rows in `tensor_input` (as
// RuntimeModel::Run does).
bool CollectActivations(const fb::ModelT& float_model, const std::vector<float>& rows, uint32_t n,
                        std::vector<std::vector<float>>* values, std::string* error,
                        const std::function<void(uint32_t, uint32_t)>& progress = nullptr,
                        const std::vector<uint8_t>& tensor_input = {});

// Per-feature input equalization, for raw inputs on wildly different scales
// (prices, counts, flags). QUANTIZE standardizes each feature and then
// quantizes all of them with ONE int8 scale, so a single heavy-tailed feature
// (a price 30 standard deviations out) would leave a 0/1 flag a handful of
// levels. Given each feature's calibrated range [lo_i, hi_i] in standardized
// units, this rewrites the float model into an equivalent one whose
// standardized features all span [-1, 1]:
//   mean'_i = mean_i + c_i std_i,  std'_i = k_i std_i   (c = centre, k = half-width)
//   W'[:, i] = k_i W[:, i],        b' = b + W c         (every consumer FC)
// so the int8 input gives each feature 255 levels over its own range. Returns
// false (model unchanged) when a consumer of the standardized input is not a
// FULLY_CONNECTED. `centre` and `half_width` (if not null) get c and k.
bool EqualizeInputs(fb::ModelT* float_model, const std::vector<Range>& feature_ranges,
                    std::vector<float>* centre = nullptr, std::vector<float>* half_width = nullptr);

// Index of the standardized input tensor (the QUANTIZE output), or -1.
int StandardizedInputTensor(const fb::ModelT& model);

// The range an equalized input is quantized with: [-128/127, 1], i.e. scale
// 1/127 and zero point 0, so that -1, 0 and 1 are exact.
inline Range EqualizedInputRange() { return {-128.0f / 127.0f, 1.0f}; }

struct QuantizeOptions {
  // Keep each task's last FULLY_CONNECTED (logits, or the regression value)
  // in float, reading a DEQUANTIZE of its int8 input: no 8-bit rounding of the
  // logits, whose ties cost AUC. Its weights are tiny (task width x outputs).
  bool float_heads = false;
  // Mixed precision: float_ops[o] (one entry per operator of the float
  // model, or empty) keeps operator o in float32, weights included. A
  // DEQUANTIZE feeds it from int8 and a QUANTIZE takes its output back to
  // int8 (at the output's calibrated range) for int8 readers.
  std::vector<char> float_ops;
};

// The float model with int8 weights and activations. `ranges[t]` is the
// calibrated range of activation t (ReLU outputs use [0, max]; LOGISTIC and
// TANH outputs get XNNPACK's fixed scales). The model input and the task
// outputs stay float32: heads compute int8 logits, DEQUANTIZE, then
// sigmoid/softmax in float (or, with float_heads, the whole last layer in
// float). Per-channel scales are kept within XNNPACK's requantization limits
// (see FitOutputScale / PruneNegligibleRows in quantize.cc). Throws
// std::invalid_argument for an already-quantized model or a wrong range count.
fb::ModelT QuantizeModel(const fb::ModelT& float_model, const std::vector<Range>& ranges,
                         const QuantizeOptions& options = {});

// How far one LSB moves the logits behind a task's output: the int8 scale of
// the logits its DEQUANTIZE reads, or for a float head the most one LSB of
// each of its int8 inputs can move a logit (s_c * max_k sum_j |W[k][j]|);
// 0 for a task computed in float all the way.
float TaskLogitScale(const fb::ModelT& model, const fb::TaskT& task);

// Golden-case tolerances for `rows` all-task output rows of `model` (as
// mtan_run returns them), one per output of a row, each in its output's
// units: the largest change of that output over the rows that one LSB of its
// logits' quantization can cause (sigmoid, softmax, expm1 or identity applied
// after the DEQUANTIZE), plus float noise. XNNPACK, the reference kernels and
// other CPUs may round a requantization the other way; more than that is a
// real regression. Per output, so that a spend in currency units does not
// widen a probability's tolerance (host::AddGoldenCase stores them).
std::vector<float> GoldenTolerances(const fb::ModelT& model, const float* outputs, uint32_t rows);

}  // namespace mtan::host
