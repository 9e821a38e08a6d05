// Calibration: choosing each activation tensor's int8 range from its values
// on the calibration rows (collected through the runtime's float path by
// CollectActivations). Kept apart from the converter's command line so that
// the tests check every method on known distributions.
//
//   minmax      the observed [min, max];
//   percentile  the [100-p, p] percentiles (p = 99.99 by default), so that a
//               few outliers do not stretch the scale of everyone else;
//   mse         the clipping range that minimises the expected squared error
//               of quantizing the tensor's histogram (clipping error of the
//               values outside plus rounding noise scale^2/12 inside);
//   auto        not a range rule: the converter quantizes with each of the
//               above and keeps the one with the best validation metrics.
//
// Every range includes 0 (zero must be exact for ReLU, padding and the
// zero point), and a tensor with no spread gets a range that ChooseAsymmetric
// turns into a valid scale instead of a division by zero.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "quantize.h"

namespace mtan::host {

enum class CalibrationMethod { kMinMax, kPercentile, kMse, kAuto };

// "minmax", "percentile", "mse", "auto"; false for anything else.
bool ParseCalibrationMethod(const std::string& name, CalibrationMethod* method);
const char* CalibrationMethodName(CalibrationMethod method);

inline constexpr double kDefaultPercentile = 99.99;
inline constexpr int kDefaultMseBins = 2048;

// Ranges of one tensor's values (n may be 0: the range is {0, 0}). Values
// must be finite (CollectActivations' are; a non-finite value is ignored).
Range RangeMinMax(const float* v, size_t n);
Range RangePercentile(const float* v, size_t n, double percentile = kDefaultPercentile);
Range RangeMse(const float* v, size_t n, int bins = kDefaultMseBins);

// Mean squared error of quantizing then dequantizing `v` with the int8
// parameters ChooseAsymmetric picks for `r`: what RangeMse minimises (it
// minimises a histogram estimate of this). For tests and the report.
double QuantizationMse(const float* v, size_t n, Range r);

// One range per tensor: values[t] as CollectActivations returns them (empty
// for constants, which get {0, 0}). `method` must not be kAuto.
std::vector<Range> CalibrateRanges(const std::vector<std::vector<float>>& values,
                                   CalibrationMethod method,
                                   double percentile = kDefaultPercentile);

// One range per channel of a rows x channels tensor (e.g. per input
// feature, for EqualizeInputs). `method` must not be kAuto.
std::vector<Range> ChannelRanges(const std::vector<float>& values, int channels,
                                 CalibrationMethod method, double percentile = kDefaultPercentile);

}  // namespace mtan::host
