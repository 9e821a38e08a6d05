// A seeded PRNG and samplers of our own (xoshiro256** seeded by splitmix64,
// Box-Muller normals), so that generated data and weight initialisation are
// identical across standard libraries and machines; std::*_distribution is
// implementation-defined.
#pragma once

#include <cmath>
#include <cstdint>

namespace mtan::host {

inline uint64_t SplitMix64(uint64_t* state) {
  uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

class Rng {
 public:
  explicit Rng(uint64_t seed) {
    uint64_t s = seed;
    for (uint64_t& word : s_) word = SplitMix64(&s);
  }

  uint64_t Next() {
    const uint64_t result = Rotl(s_[1] * 5, 7) * 9;
    const uint64_t t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = Rotl(s_[3], 45);
    return result;
  }

  // Uniform in [0, 1) with 53 random bits.
  double Uniform() { return static_cast<double>(Next() >> 11) * 0x1.0p-53; }
  // Uniform in (0, 1): safe for log().
  double UniformOpen() { return (static_cast<double>(Next() >> 11) + 0.5) * 0x1.0p-53; }
  // Uniform integer in [0, n).
  uint64_t Below(uint64_t n) { return static_cast<uint64_t>(Uniform() * static_cast<double>(n)); }

  // Standard normal by Box-Muller; the second value of each pair is kept.
  double Normal() {
    if (have_spare_) {
      have_spare_ = false;
      return spare_;
    }
    const double r = std::sqrt(-2.0 * std::log(UniformOpen()));
    const double theta = 2.0 * 3.14159265358979323846 * Uniform();
    spare_ = r * std::sin(theta);
    have_spare_ = true;
    return r * std::cos(theta);
  }

  bool Bernoulli(double p) { return Uniform() < p; }

  // Poisson: Knuth's product method below 30, a rounded normal above.
  int64_t Poisson(double lambda) {
    if (lambda <= 0) return 0;
    if (lambda < 30.0) {
      const double limit = std::exp(-lambda);
      double prod = Uniform();
      int64_t k = 0;
      while (prod > limit) {
        prod *= Uniform();
        ++k;
      }
      return k;
    }
    const double v = std::floor(lambda + std::sqrt(lambda) * Normal() + 0.5);
    return v < 0 ? 0 : static_cast<int64_t>(v);
  }

  // Standard Gumbel.
  double Gumbel() { return -std::log(-std::log(UniformOpen())); }

 private:
  static uint64_t Rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  uint64_t s_[4];
  double spare_ = 0.0;
  bool have_spare_ = false;
};

}  // namespace mtan::host
