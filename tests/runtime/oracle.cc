#include "oracle.h"

#include "mtan/mtan.h"

#include <algorithm>
#include <cmath>

namespace mtan::oracle {
namespace {

// float32's unit roundoff. Each slack below is a small multiple of it times
// the magnitudes a float32 evaluation of the definition rounds (a few
// roundings each), with a margin of 4x.
constexpr double kU = 1.0 / (1 << 24);

double Real(int8_t q, Quant p) { return static_cast<double>(p.scale) * (q - p.zero_point); }

}  // namespace

Accept Requantize(double v, int32_t zero_point, int32_t lo, int32_t hi, double slack) {
  auto clamp = [&](double k) {
    const double q = k + zero_point;
    return static_cast<int8_t>(q < lo ? lo : (q > hi ? hi : q));
  };
  const double f = std::floor(v);
  const double frac = v - f;
  Accept a;
  if (frac == 0.5) {
    // Ties to even.
    a.exact_tie = true;
    a.lo = a.hi = clamp(std::fmod(f, 2.0) == 0.0 ? f : f + 1.0);
  } else {
    a.lo = a.hi = clamp(frac < 0.5 ? f : f + 1.0);
  }
  if (!a.exact_tie && std::fabs(frac - 0.5) <= slack) {
    a.near_tie = true;
    a.lo = clamp(f);
    a.hi = clamp(f + 1.0);
  }
  return a;
}

int Distance(const Accept& a, int8_t q) {
  if (q < a.lo) return a.lo - q;
  if (q > a.hi) return q - a.hi;
  return 0;
}

// Float models clamp standardised features at +-MTAN_STANDARDIZED_LIMIT (mtan.h).
std::vector<double> StandardizeF32(const float* x, uint32_t rows, uint32_t n, const float* mean,
                                   const float* stddev) {
  std::vector<double> y(static_cast<size_t>(rows) * n);
  for (size_t r = 0; r < rows; ++r)
    for (size_t i = 0; i < n; ++i)
      y[r * n + i] = std::clamp((static_cast<double>(x[r * n + i]) - mean[i]) / stddev[i],
                                -static_cast<double>(MTAN_STANDARDIZED_LIMIT),
                                static_cast<double>(MTAN_STANDARDIZED_LIMIT));
  return y;
}

std::vector<Accept> QuantizeS8(const float* x, uint32_t rows, uint32_t n, const float* mean,
                               const float* stddev, Quant y_q) {
  std::vector<Accept> y(static_cast<size_t>(rows) * n);
  for (size_t r = 0; r < rows; ++r) {
    for (size_t i = 0; i < n; ++i) {
      const double per = 1.0 / (static_cast<double>(stddev[i]) * y_q.scale);
      const double xs = x[r * n + i] * per, ms = mean[i] * per;
      // The documented fold is one float32 multiply-add, x * (1/(std s)) +
      // (zp - mean/(std s)): its error grows with both terms, not with v.
      const double slack = 16 * kU * (std::fabs(xs) + std::fabs(ms) + std::fabs(y_q.zero_point) + 1);
      y[r * n + i] = Requantize(xs - ms, y_q.zero_point, -128, 127, slack);
    }
  }
  return y;
}

std::vector<Accept> FullyConnectedS8(const int8_t* x, uint32_t rows, uint32_t in, Quant x_q,
                                     const int8_t* w, const float* w_scales, const int32_t* bias,
                                     uint32_t out, Quant y_q, bool relu) {
  std::vector<Accept> y(static_cast<size_t>(rows) * out);
  for (size_t r = 0; r < rows; ++r) {
    for (size_t o = 0; o < out; ++o) {
      int64_t acc = bias[o];
      for (size_t i = 0; i < in; ++i)
        acc += static_cast<int64_t>(x[r * in + i] - x_q.zero_point) * w[o * in + i];
      const double m = static_cast<double>(x_q.scale) * w_scales[o] / y_q.scale;
      const double v = static_cast<double>(acc) * m;
      // float(acc) (exact below 2^24), the multiplier (two roundings), the
      // product: four roundings of |v|.
      const double slack = 16 * kU * (std::fabs(v) + 1);
      y[r * out + o] = Requantize(v, y_q.zero_point, relu ? y_q.zero_point : -128, 127, slack);
    }
  }
  return y;
}

std::vector<double> FullyConnectedF32(const float* x, uint32_t rows, uint32_t in, const float* w,
                                      const float* bias, uint32_t out, bool relu) {
  std::vector<double> y(static_cast<size_t>(rows) * out);
  for (size_t r = 0; r < rows; ++r) {
    for (size_t o = 0; o < out; ++o) {
      double acc = bias[o];
      for (size_t i = 0; i < in; ++i) acc += static_cast<double>(x[r * in + i]) * w[o * in + i];
      y[r * out + o] = relu && acc < 0 ? 0.0 : acc;
    }
  }
  return y;
}

std::vector<double> FullyConnectedMagnitude(const float* x, uint32_t rows, uint32_t in,
                                            const float* w, const float* bias, uint32_t out) {
  std::vector<double> y(static_cast<size_t>(rows) * out);
  for (size_t r = 0; r < rows; ++r) {
    for (size_t o = 0; o < out; ++o) {
      double s = std::fabs(bias[o]);
      for (size_t i = 0; i < in; ++i) s += std::fabs(static_cast<double>(x[r * in + i]) * w[o * in + i]);
      y[r * out + o] = s;
    }
  }
  return y;
}

std::vector<Accept> LogisticS8(const int8_t* x, size_t n, Quant x_q) {
  std::vector<Accept> y(n);
  for (size_t i = 0; i < n; ++i) {
    const double t = Real(x[i], x_q);
    const double v = 256.0 / (1.0 + std::exp(-t));
    // x in float32 (one rounding of |t|, slope <= 1/4 at 256 per unit),
    // expf and the division (a few roundings of v).
    y[i] = Requantize(v, -128, -128, 127, 16 * kU * (64 * std::fabs(t) + v + 1));
  }
  return y;
}

std::vector<Accept> TanhS8(const int8_t* x, size_t n, Quant x_q) {
  std::vector<Accept> y(n);
  for (size_t i = 0; i < n; ++i) {
    const double t = Real(x[i], x_q);
    const double v = 128.0 * std::tanh(t);
    y[i] = Requantize(v, 0, -128, 127, 16 * kU * (128 * std::fabs(t) + std::fabs(v) + 1));
  }
  return y;
}

std::vector<Accept> MulS8(const int8_t* a, Quant a_q, const int8_t* b, Quant b_q, size_t n,
                          Quant y_q) {
  std::vector<Accept> y(n);
  for (size_t i = 0; i < n; ++i) {
    const double v = Real(a[i], a_q) * Real(b[i], b_q) / y_q.scale;
    y[i] = Requantize(v, y_q.zero_point, -128, 127, 16 * kU * (std::fabs(v) + 1));
  }
  return y;
}

std::vector<Accept> AddS8(const int8_t* a, Quant a_q, const int8_t* b, Quant b_q, size_t n,
                          Quant y_q) {
  std::vector<Accept> y(n);
  for (size_t i = 0; i < n; ++i) {
    const double ta = Real(a[i], a_q) / y_q.scale, tb = Real(b[i], b_q) / y_q.scale;
    y[i] = Requantize(ta + tb, y_q.zero_point, -128, 127,
                      16 * kU * (std::fabs(ta) + std::fabs(tb) + 1));
  }
  return y;
}

std::vector<Accept> AttentionPoolS8(const std::vector<const int8_t*>& scores,
                                    const std::vector<Quant>& score_q,
                                    const std::vector<const int8_t*>& values,
                                    const std::vector<Quant>& value_q, uint32_t rows,
                                    uint32_t channels, Quant y_q) {
  const size_t t = scores.size();
  std::vector<Accept> y(static_cast<size_t>(rows) * channels);
  std::vector<double> e(t);
  for (size_t r = 0; r < rows; ++r) {
    double max_e = -INFINITY, sum = 0;
    for (size_t s = 0; s < t; ++s) max_e = std::max(max_e, Real(scores[s][r], score_q[s]));
    for (size_t s = 0; s < t; ++s) sum += e[s] = std::exp(Real(scores[s][r], score_q[s]) - max_e);
    for (size_t k = 0; k < channels; ++k) {
      double v = 0, magnitude = 1;
      for (size_t s = 0; s < t; ++s) {
        const double term = e[s] / sum * Real(values[s][r * channels + k], value_q[s]) / y_q.scale;
        v += term;
        magnitude += std::fabs(term);
      }
      // exp to ~4 roundings, the weights, a float sum of T terms.
      y[r * channels + k] =
          Requantize(v, y_q.zero_point, -128, 127, 16 * kU * (8.0 + t) * magnitude);
    }
  }
  return y;
}

std::vector<double> AttentionPoolF32(const std::vector<const float*>& scores,
                                     const std::vector<const float*>& values, uint32_t rows,
                                     uint32_t channels) {
  const size_t t = scores.size();
  std::vector<double> y(static_cast<size_t>(rows) * channels), e(t);
  for (size_t r = 0; r < rows; ++r) {
    double max_e = -INFINITY, sum = 0;
    for (size_t s = 0; s < t; ++s) max_e = std::max(max_e, static_cast<double>(scores[s][r]));
    for (size_t s = 0; s < t; ++s) sum += e[s] = std::exp(scores[s][r] - max_e);
    for (size_t k = 0; k < channels; ++k) {
      double v = 0;
      for (size_t s = 0; s < t; ++s) v += e[s] / sum * values[s][r * channels + k];
      y[r * channels + k] = v;
    }
  }
  return y;
}

std::vector<double> SoftmaxF32(const float* x, uint32_t rows, uint32_t n) {
  std::vector<double> y(static_cast<size_t>(rows) * n);
  for (size_t r = 0; r < rows; ++r) {
    const float* xr = x + r * n;
    const double m = *std::max_element(xr, xr + n);
    double sum = 0;
    for (size_t i = 0; i < n; ++i) sum += y[r * n + i] = std::exp(xr[i] - m);
    for (size_t i = 0; i < n; ++i) y[r * n + i] /= sum;
  }
  return y;
}

std::vector<double> DequantizeS8(const int8_t* x, size_t n, Quant x_q) {
  std::vector<double> y(n);
  for (size_t i = 0; i < n; ++i) y[i] = Real(x[i], x_q);
  return y;
}

std::vector<Accept> ConcatS8(const std::vector<const int8_t*>& inputs, const std::vector<Quant>& q,
                             const std::vector<uint32_t>& channels, uint32_t rows, Quant y_q) {
  uint32_t total = 0;
  for (uint32_t c : channels) total += c;
  std::vector<Accept> y(static_cast<size_t>(rows) * total);
  for (size_t r = 0; r < rows; ++r) {
    size_t at = r * total;
    for (size_t k = 0; k < inputs.size(); ++k) {
      for (size_t i = 0; i < channels[k]; ++i) {
        const double v = Real(inputs[k][r * channels[k] + i], q[k]) / y_q.scale;
        y[at++] = Requantize(v, y_q.zero_point, -128, 127, 16 * kU * (std::fabs(v) + 1));
      }
    }
  }
  return y;
}

std::vector<double> ConcatF32(const std::vector<const float*>& inputs,
                              const std::vector<uint32_t>& channels, uint32_t rows) {
  std::vector<double> y;
  for (size_t r = 0; r < rows; ++r)
    for (size_t k = 0; k < inputs.size(); ++k)
      for (size_t i = 0; i < channels[k]; ++i) y.push_back(inputs[k][r * channels[k] + i]);
  return y;
}

std::vector<double> EmbeddingBagF32(const int64_t* ids, uint32_t rows, uint32_t length,
                                    const double* table, uint32_t width, bool mean) {
  std::vector<double> y(static_cast<size_t>(rows) * width, 0.0);
  for (size_t r = 0; r < rows; ++r) {
    int count = 0;
    for (size_t l = 0; l < length; ++l) {
      const int64_t id = ids[r * length + l];
      if (id == -1) continue;
      ++count;
      for (size_t k = 0; k < width; ++k) y[r * width + k] += table[static_cast<size_t>(id) * width + k];
    }
    for (size_t k = 0; mean && count > 0 && k < width; ++k) y[r * width + k] /= count;
  }
  return y;
}

}  // namespace mtan::oracle
