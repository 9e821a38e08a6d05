// Summary statistics of latency samples, as mtan-bench reports them.
#pragma once

#include <cstddef>
#include <vector>

namespace mtan::bench {

// The p-th percentile (0..100) of `sorted` (ascending), interpolating
// linearly between the two nearest ranks: rank = p/100 * (n-1), as numpy's
// default. An empty input gives 0.
double Percentile(const std::vector<double>& sorted, double p);

struct Summary {
  size_t n = 0;
  double min = 0, p50 = 0, p90 = 0, p99 = 0, max = 0;
  double mean = 0;
  double stddev = 0;  // sample standard deviation (n-1); 0 for n < 2
};

// Summarises samples in any order.
Summary Summarize(std::vector<double> samples);

// Median of samples in any order (0 for none).
double Median(std::vector<double> samples);

}  // namespace mtan::bench
