// A small, portable random number generator so that C++ and the NumPy reference draw the
// same numbers for the same seed on every platform.
#pragma once

#include <cstdint>
#include <vector>

#include "metaglasso/common.hpp"

namespace metaglasso {

/// SplitMix64 (Steele, Lea & Flood 2014). next() returns the next 64-bit output;
/// uniform() = (next() >> 11) · 2⁻⁵³ in [0, 1).
class SplitMix64 {
 public:
  explicit SplitMix64(std::uint64_t seed) : state_(seed) {}
  std::uint64_t next();
  double uniform();
  /// Fisher–Yates shuffle of 0..n−1: for i = n−1 down to 1, swap i with next() mod (i+1).
  std::vector<Index> permutation(Index n);

 private:
  std::uint64_t state_;
};

/// Random start of D as in the paper's data generation: the polar factor of a V × M matrix
/// of uniform [0, 1) draws, filled column by column from SplitMix64(seed). @return (V, M).
Matrix random_initial_projection(Index n_features, Index n_components, std::uint64_t seed);

}  // namespace metaglasso
