#include "metaglasso/random.hpp"

#include <utility>

#include "metaglasso/model.hpp"

namespace metaglasso {

std::uint64_t SplitMix64::next() {
  std::uint64_t z = (state_ += 0x9E3779B97F4A7C15ULL);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

double SplitMix64::uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }

std::vector<Index> SplitMix64::permutation(Index n) {
  std::vector<Index> p(static_cast<std::size_t>(n));
  for (Index i = 0; i < n; ++i) p[static_cast<std::size_t>(i)] = i;
  for (Index i = n - 1; i > 0; --i) {
    const auto j = static_cast<Index>(next() % static_cast<std::uint64_t>(i + 1));
    std::swap(p[static_cast<std::size_t>(i)], p[static_cast<std::size_t>(j)]);
  }
  return p;
}

Matrix random_initial_projection(Index n_features, Index n_components, std::uint64_t seed) {
  if (n_components < 1 || n_components >= n_features) {
    throw std::invalid_argument("n_components must satisfy 1 <= n_components < n_features; got n_components=" +
                                std::to_string(n_components) + ", n_features=" + std::to_string(n_features));
  }
  SplitMix64 rng(seed);
  Matrix Z(n_features, n_components);
  for (Index j = 0; j < n_components; ++j)
    for (Index i = 0; i < n_features; ++i) Z(i, j) = rng.uniform();
  return polar_retraction(Z);
}

}  // namespace metaglasso
