// The test oracle of the runtime's kernels: every operator of schema/mtan.fbs
// computed from its definition there, in double precision on plain arrays.
// It shares no code with the runtime (no Requantize, no lookup table, no
// folded standardisation), so a bug in a kernel or in what the loader
// precomputes for it cannot hide here. The reference backend and the
// XNNPACK backend are both compared with it (tests/runtime/oracle_test.cc);
// future kernels (own VNNI code) should be too.
//
// The int8 output rule (schema/mtan.fbs): an int8 result is the exact real
// value v in units of the output scale, rounded to nearest with ties to
// even, plus the zero point, clamped to [lo, 127] (lo = -128, or the zero
// point under RELU). Kernels evaluate v in float32, which can move a value
// that lies within float32 rounding of a tie to either side, so each oracle
// output is the set of acceptable codes: one code, or the two around a tie
// when v is within `slack` of it (slack follows the float32 error bound of
// the operator's definition; 0 when every scale is a power of two, where
// float32 is exact and a tie must go to even).
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace mtan::oracle {

struct Accept {
  int8_t lo = 0, hi = 0;   // acceptable codes: lo..hi (hi - lo <= 1)
  bool near_tie = false;   // lo != hi because v is within slack of a tie
  bool exact_tie = false;  // v is exactly k + 0.5: only the even choice is right
};

// The output rule above for one value.
Accept Requantize(double v, int32_t zero_point, int32_t lo, int32_t hi, double slack);
// 0 when q is acceptable, else how many codes it is off.
int Distance(const Accept& a, int8_t q);

// Per-tensor int8 parameters: real = scale * (q - zero_point).
struct Quant {
  float scale = 1.0f;
  int32_t zero_point = 0;
};

// QUANTIZE: y = (x - mean) / std, then int8 at `y_q` (rows x n values).
std::vector<Accept> QuantizeS8(const float* x, uint32_t rows, uint32_t n, const float* mean,
                               const float* stddev, Quant y_q);
std::vector<double> StandardizeF32(const float* x, uint32_t rows, uint32_t n, const float* mean,
                                   const float* stddev);

// FULLY_CONNECTED int8: acc = bias[o] + sum_i (x_i - zp_x) * w[o][i] in
// int64, y = acc * s_x * s_w[o] / s_y. Weights are symmetric (zero point 0).
std::vector<Accept> FullyConnectedS8(const int8_t* x, uint32_t rows, uint32_t in, Quant x_q,
                                     const int8_t* w, const float* w_scales, const int32_t* bias,
                                     uint32_t out, Quant y_q, bool relu);
std::vector<double> FullyConnectedF32(const float* x, uint32_t rows, uint32_t in, const float* w,
                                      const float* bias, uint32_t out, bool relu);
// For a float tolerance: sum_i |x_i w_oi| + |b_o| per output.
std::vector<double> FullyConnectedMagnitude(const float* x, uint32_t rows, uint32_t in,
                                            const float* w, const float* bias, uint32_t out);

// LOGISTIC (output scale 1/256, zero point -128) and TANH (1/128, 0), int8.
std::vector<Accept> LogisticS8(const int8_t* x, size_t n, Quant x_q);
std::vector<Accept> TanhS8(const int8_t* x, size_t n, Quant x_q);

// MUL and ADD, elementwise.
std::vector<Accept> MulS8(const int8_t* a, Quant a_q, const int8_t* b, Quant b_q, size_t n,
                          Quant y_q);
std::vector<Accept> AddS8(const int8_t* a, Quant a_q, const int8_t* b, Quant b_q, size_t n,
                          Quant y_q);

// ATTENTION_POOL: c = sum_s softmax_s(score_s) z_s over T sources; scores[s]
// holds one value per row, values[s] rows x channels.
std::vector<Accept> AttentionPoolS8(const std::vector<const int8_t*>& scores,
                                    const std::vector<Quant>& score_q,
                                    const std::vector<const int8_t*>& values,
                                    const std::vector<Quant>& value_q, uint32_t rows,
                                    uint32_t channels, Quant y_q);
std::vector<double> AttentionPoolF32(const std::vector<const float*>& scores,
                                     const std::vector<const float*>& values, uint32_t rows,
                                     uint32_t channels);

// SOFTMAX over each row of n values (float32 only).
std::vector<double> SoftmaxF32(const float* x, uint32_t rows, uint32_t n);

// CONCAT: the inputs side by side per row (inputs[k] holds rows x
// channels[k] values); int8 inputs each at their own quantization, the
// result at y_q.
std::vector<Accept> ConcatS8(const std::vector<const int8_t*>& inputs, const std::vector<Quant>& q,
                             const std::vector<uint32_t>& channels, uint32_t rows, Quant y_q);
std::vector<double> ConcatF32(const std::vector<const float*>& inputs,
                              const std::vector<uint32_t>& channels, uint32_t rows);

// EMBEDDING_BAG: per row, the sum (mean: the sum over the count) of table
// rows ids[l] (table [V, width], an int8 table dequantized), skipping the
// padding id -1; an all-padding bag is zeros. Ids must be valid rows (the
// runtime refuses others).
std::vector<double> EmbeddingBagF32(const int64_t* ids, uint32_t rows, uint32_t length,
                                    const double* table, uint32_t width, bool mean);

// DEQUANTIZE: scale * (q - zero_point).
std::vector<double> DequantizeS8(const int8_t* x, size_t n, Quant x_q);

}  // namespace mtan::oracle
