// Shared types and error classes of the metaglasso core.
#pragma once

#include <Eigen/Core>
#include <stdexcept>
#include <string>

namespace metaglasso {

using Index = Eigen::Index;
using Matrix = Eigen::MatrixXd;  // column-major
using Vector = Eigen::VectorXd;

/// A numerical failure that is not the caller's fault (e.g. a matrix that should be positive
/// definite is not, to working precision). User errors throw std::invalid_argument instead.
class NumericalError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// Number of threads a parallel region will use: `n_threads` if positive, otherwise the
/// OpenMP default (1 when built without OpenMP).
int resolve_threads(int n_threads);

/// Instruction set of the large products in this process: "avx512", "avx2" or "baseline" (the
/// widest the CPU supports, unless the environment variable METAGLASSO_SIMD names a narrower one).
const char* simd_instruction_set();

}  // namespace metaglasso
