#include "calibrate.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>

namespace mtan::host {

bool ParseCalibrationMethod(const std::string& name, CalibrationMethod* method) {
  if (name == "minmax") *method = CalibrationMethod::kMinMax;
  else if (name == "percentile") *method = CalibrationMethod::kPercentile;
  else if (name == "mse") *method = CalibrationMethod::kMse;
  else if (name == "auto") *method = CalibrationMethod::kAuto;
  else return false;
  return true;
}

const char* CalibrationMethodName(CalibrationMethod method) {
  switch (method) {
    case CalibrationMethod::kMinMax: return "minmax";
    case CalibrationMethod::kPercentile: return "percentile";
    case CalibrationMethod::kMse: return "mse";
    case CalibrationMethod::kAuto: return "auto";
  }
  return "?";
}

Range RangeMinMax(const float* v, size_t n) {
  Range r;  // {0, 0}: every range includes zero
  for (size_t i = 0; i < n; ++i) {
    if (!std::isfinite(v[i])) continue;
    r.min = std::min(r.min, v[i]);
    r.max = std::max(r.max, v[i]);
  }
  return r;
}

Range RangePercentile(const float* v, size_t n, double percentile) {
  std::vector<float> s;
  s.reserve(n);
  for (size_t i = 0; i < n; ++i)
    if (std::isfinite(v[i])) s.push_back(v[i]);
  if (s.empty()) return {};
  const double p = std::clamp(percentile, 50.0, 100.0) / 100.0;
  const size_t last = s.size() - 1;
  const size_t hi = static_cast<size_t>(std::ceil(p * static_cast<double>(last)));
  const size_t lo = static_cast<size_t>(std::floor((1.0 - p) * static_cast<double>(last)));
  std::nth_element(s.begin(), s.begin() + hi, s.end());
  Range r;
  r.max = std::max(0.0f, s[hi]);
  std::nth_element(s.begin(), s.begin() + lo, s.begin() + hi);
  r.min = std::min(0.0f, s[lo]);
  return r;
}

namespace {

// Expected squared error of clipping to [lo, hi] and rounding inside it, from
// a histogram of the values inside a window [edge_0, edge_B] plus exact sums
// of the values outside it (so that a window zoomed in on the optimum still
// prices the far outliers correctly). Exact zeros are left out: zero is
// always representable, so they cost nothing under any candidate range.
struct MseSearch {
  double window_lo = 0.0, width = 0.0;
  int bins = 0;
  std::vector<double> count, sum, sum_sq;  // prefix sums over bins, size bins + 1
  double left_n = 0, left_s = 0, left_q = 0;    // values below the window
  double right_n = 0, right_s = 0, right_q = 0;  // values above the window

  void Build(const float* v, size_t n, double lo, double hi, int b) {
    window_lo = lo;
    bins = b;
    width = (hi - lo) / b;
    std::vector<double> c(b, 0.0);
    left_n = left_s = left_q = right_n = right_s = right_q = 0.0;
    for (size_t i = 0; i < n; ++i) {
      const double x = v[i];
      if (x == 0.0 || !std::isfinite(x)) continue;
      if (x < lo) {
        left_n += 1; left_s += x; left_q += x * x;
      } else if (x > hi) {
        right_n += 1; right_s += x; right_q += x * x;
      } else {
        const int k = std::min(b - 1, static_cast<int>((x - lo) / width));
        c[k] += 1.0;
      }
    }
    count.assign(b + 1, 0.0);
    sum.assign(b + 1, 0.0);
    sum_sq.assign(b + 1, 0.0);
    for (int k = 0; k < b; ++k) {
      const double m = Edge(k) + 0.5 * width;  // bin centre
      count[k + 1] = count[k] + c[k];
      sum[k + 1] = sum[k] + c[k] * m;
      sum_sq[k + 1] = sum_sq[k] + c[k] * (m * m + width * width / 12.0);
    }
  }
  double Edge(int k) const { return window_lo + width * k; }

  // Error of the range [Edge(a), Edge(b)], a <= b.
  double Error(int a, int b) const {
    const double lo = Edge(a), hi = Edge(b);
    // Values below lo (outside the window, then bins [0, a)) clip to lo.
    const double ln = left_n + count[a], ls = left_s + sum[a], lq = left_q + sum_sq[a];
    const double rn = right_n + count[bins] - count[b];
    const double rs = right_s + sum[bins] - sum[b];
    const double rq = right_q + sum_sq[bins] - sum_sq[b];
    const double clip = (lo * lo * ln - 2 * lo * ls + lq) + (hi * hi * rn - 2 * hi * rs + rq);
    const double scale = (hi - lo) / 255.0;
    return clip + (count[b] - count[a]) * scale * scale / 12.0;
  }
};

}  // namespace

Range RangeMse(const float* v, size_t n, int bins) {
  const Range full = RangeMinMax(v, n);
  if (!(full.max > full.min)) return full;
  bins = std::max(bins, 16);
  double lo = full.min, hi = full.max;
  Range best = full;
  // Search the full range, then zoom in on the best candidate twice: a few
  // huge outliers would otherwise leave the typical values in one bin.
  for (int pass = 0; pass < 3; ++pass) {
    MseSearch s;
    s.Build(v, n, lo, hi, bins);
    // Candidate edges: lower ones at or below zero, upper ones at or above.
    const double zero_at = -lo / s.width;
    const int a_max = std::clamp(static_cast<int>(std::floor(zero_at)), 0, bins);
    const int b_min = std::clamp(static_cast<int>(std::ceil(zero_at)), 0, bins);
    double best_err = std::numeric_limits<double>::infinity();
    int best_a = 0, best_b = bins;
    for (int a = 0; a <= a_max; ++a) {
      for (int b = std::max(b_min, a + 1); b <= bins; ++b) {
        const double e = s.Error(a, b);
        if (e < best_err) {
          best_err = e;
          best_a = a;
          best_b = b;
        }
      }
    }
    best.min = static_cast<float>(std::min(0.0, s.Edge(best_a)));
    best.max = static_cast<float>(std::max(0.0, s.Edge(best_b)));
    const double span = s.Edge(best_b) - s.Edge(best_a);
    if (span > 0.25 * (hi - lo)) break;  // the grid is already fine enough
    // The next window: the best range with two bins of slack on each side.
    lo = std::max<double>(full.min, s.Edge(best_a) - 2 * s.width);
    hi = std::min<double>(full.max, s.Edge(best_b) + 2 * s.width);
    lo = std::min(lo, 0.0);
    hi = std::max(hi, 0.0);
  }
  return best;
}

double QuantizationMse(const float* v, size_t n, Range r) {
  if (n == 0) return 0.0;
  float scale;
  int32_t zp;
  ChooseAsymmetric(r, &scale, &zp);
  double err = 0.0;
  for (size_t i = 0; i < n; ++i) {
    const double q = std::clamp(static_cast<double>(std::nearbyint(v[i] / scale)) + zp, -128.0, 127.0);
    const double d = scale * (q - zp) - v[i];
    err += d * d;
  }
  return err / static_cast<double>(n);
}

std::vector<Range> CalibrateRanges(const std::vector<std::vector<float>>& values,
                                   CalibrationMethod method, double percentile) {
  std::vector<Range> ranges(values.size());
  for (size_t t = 0; t < values.size(); ++t) {
    const float* v = values[t].data();
    const size_t n = values[t].size();
    switch (method) {
      case CalibrationMethod::kPercentile: ranges[t] = RangePercentile(v, n, percentile); break;
      case CalibrationMethod::kMse: ranges[t] = RangeMse(v, n); break;
      case CalibrationMethod::kMinMax: ranges[t] = RangeMinMax(v, n); break;
      case CalibrationMethod::kAuto:
        throw std::invalid_argument("auto is a choice between methods, not a range rule");
    }
  }
  return ranges;
}

std::vector<Range> ChannelRanges(const std::vector<float>& values, int channels,
                                 CalibrationMethod method, double percentile) {
  std::vector<Range> ranges(std::max(channels, 0));
  if (channels <= 0) return ranges;
  const size_t rows = values.size() / channels;
  std::vector<float> column(rows);
  for (int c = 0; c < channels; ++c) {
    for (size_t r = 0; r < rows; ++r) column[r] = values[r * channels + c];
    ranges[c] = CalibrateRanges({column}, method, percentile)[0];
  }
  return ranges;
}

}  // namespace mtan::host
