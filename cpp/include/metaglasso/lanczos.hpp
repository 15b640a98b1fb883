// Lanczos top eigenvectors through a product operator (matrix-free), for the PCA start of D.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "metaglasso/dataset.hpp"

namespace metaglasso {

/// y = A x for a symmetric positive semi-definite operator A of size n. Must not alias.
using SymmetricOperator = std::function<void(const Eigen::Ref<const Vector>& x, Eigen::Ref<Vector> y)>;

struct LanczosResult {
  Vector values;   ///< (m) eigenvalues, descending
  Matrix vectors;  ///< (n, m) orthonormal eigenvectors, column j belongs to values(j)
  int n_iter = 0;  ///< operator applications (Krylov vectors generated over all restarts)
  bool converged = false;
};

/// Top-m eigenpairs of a symmetric operator by Lanczos with full reorthogonalisation and
/// restarts (Golub & Van Loan §10.1). The matrix is reached only through `op`.
/// @param n dimension; @param m number of pairs (1 ≤ m < n); @param tol residual tolerance
/// relative to the largest eigenvalue; @param seed start vector seed (see SplitMix64).
///
/// Thick restart with Krylov dimension p = min(n, max(2m + 1, m + 20)), keeping m + (p − m)/2
/// Ritz vectors. Converged when every wanted pair has ‖A y − θ y‖ ≤ tol · max|θ| (residuals
/// computed explicitly); a converged set is confirmed by one more cycle from a fresh random
/// vector, which catches copies of repeated eigenvalues that a single Krylov sequence misses.
/// When n ≤ p the operator's matrix is built column by column and decomposed densely.
/// @throws std::invalid_argument for m, n, tol or max_restarts out of range; NumericalError
///         when `op` returns non-finite values.
LanczosResult lanczos_top_eigenvectors(const SymmetricOperator& op, Index n, Index m,
                                       double tol = 1e-10, int max_restarts = 50,
                                       std::uint64_t seed = 0);

/// PCA start of D (paper, "Convergence and initialization"): the top-m eigenvectors of
/// Σ_k S_k, each column's sign fixed so that its entry of largest magnitude is positive.
/// Works in the datasets' coordinates: for datasets held in the span of the data (DataSpan) it is
/// a Lanczos run on Σ_k C_k C_kᵀ (r × r, dense when r is small), and the sign convention must then
/// be applied to the V-dimensional columns (see DataSpan::pca_start). @return (d, m).
Matrix pca_initial_projection(const std::vector<Dataset>& data, Index m, int n_threads = 0);

/// Flips the sign of column j of D where the entry of largest magnitude of column j of
/// `reference` is negative. @param reference (n, m); @param D (any rows, m).
void fix_column_signs(const Eigen::Ref<const Matrix>& reference, Eigen::Ref<Matrix> D);

}  // namespace metaglasso
