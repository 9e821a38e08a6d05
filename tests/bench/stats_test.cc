#include "stats.h"

#include <cmath>

#include "doctest/doctest.h"

using mtan::bench::Median;
using mtan::bench::Percentile;
using mtan::bench::Summarize;

TEST_SUITE("stats") {
  TEST_CASE("percentiles interpolate between ranks as numpy does") {
    const std::vector<double> v = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
    // numpy.percentile(range(1, 11), [0, 50, 90, 99, 100])
    CHECK(Percentile(v, 0) == doctest::Approx(1.0));
    CHECK(Percentile(v, 50) == doctest::Approx(5.5));
    CHECK(Percentile(v, 90) == doctest::Approx(9.1));
    CHECK(Percentile(v, 99) == doctest::Approx(9.91));
    CHECK(Percentile(v, 100) == doctest::Approx(10.0));
    CHECK(Percentile({10, 20}, 50) == doctest::Approx(15.0));
    CHECK(Percentile({42}, 99) == doctest::Approx(42.0));
    CHECK(Percentile({}, 50) == 0.0);
    // Out-of-range p is clamped, not an out-of-bounds read.
    CHECK(Percentile(v, 150) == doctest::Approx(10.0));
    CHECK(Percentile(v, -5) == doctest::Approx(1.0));
  }

  TEST_CASE("summary of unsorted samples") {
    const auto s = Summarize({5, 1, 4, 2, 3});
    CHECK(s.n == 5);
    CHECK(s.min == 1);
    CHECK(s.max == 5);
    CHECK(s.p50 == doctest::Approx(3.0));
    CHECK(s.p90 == doctest::Approx(4.6));
    CHECK(s.p99 == doctest::Approx(4.96));
    CHECK(s.mean == doctest::Approx(3.0));
    CHECK(s.stddev == doctest::Approx(std::sqrt(2.5)));  // sample (n-1) deviation
  }

  TEST_CASE("summary edge cases") {
    const auto one = Summarize({7.5});
    CHECK(one.n == 1);
    CHECK(one.p99 == 7.5);
    CHECK(one.stddev == 0.0);
    const auto none = Summarize({});
    CHECK(none.n == 0);
    CHECK(none.mean == 0.0);
    // A constant series has no spread beyond rounding (two passes: no
    // catastrophic cancellation of sum-of-squares formulas).
    const auto flat = Summarize(std::vector<double>(1000, 1e6 + 0.1));
    CHECK(flat.stddev < 1e-6);
    CHECK(Median({3, 1, 2}) == doctest::Approx(2.0));
  }
}
