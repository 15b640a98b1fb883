// Block Lanczos top eigenvectors through a product operator (matrix-free), for the PCA start of D.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "metaglasso/dataset.hpp"

namespace metaglasso {

/// y = A x for a symmetric positive semi-definite operator A of size n. Must not alias.
using SymmetricOperator = std::function<void(const Eigen::Ref<const Vector>& x, Eigen::Ref<Vector> y)>;

/// Y = A X for a block X (n, b) of a symmetric positive semi-definite operator A of size n; Y is
/// (n, b), sized by the caller, and does not alias X. Applying A to b vectors at once lets a
/// matrix-backed operator read its matrix once per block (GEMM) instead of once per vector (gemv).
using BlockOperator = std::function<void(const Eigen::Ref<const Matrix>& X, Eigen::Ref<Matrix> Y)>;

struct LanczosResult {
  Vector values;   ///< (m) eigenvalues, descending
  Matrix vectors;  ///< (n, m) orthonormal eigenvectors, column j belongs to values(j)
  int n_iter = 0;  ///< vectors the operator was applied to (block size × blocks, over all restarts)
  bool converged = false;
  double residual = 0.0;  ///< max_j ‖A y_j − θ_j y_j‖ / max_j |θ_j| of the returned pairs (0 on the dense path)
};

/// Parameters of block_lanczos_top_eigenvectors; zero selects the documented default.
struct BlockLanczosOptions {
  /// b, vectors per block. Raised to m when smaller (see block_lanczos_top_eigenvectors); default
  /// default_block_size(m).
  Index block_size = 0;
  /// p, basis vectors before a thick restart; default default_max_basis(m, b). Raised to m + 2b
  /// when smaller.
  Index max_basis = 0;
  /// Converged when ‖A y_j − θ_j y_j‖ ≤ tol · max|θ| for each of the m wanted pairs.
  double tol = 1e-10;
  /// Thick restarts before giving up (the last Ritz pairs are then returned, converged = false).
  int max_restarts = 50;
  /// Seed of the random start block (SplitMix64, entries uniform in [−½, ½), column by column).
  std::uint64_t seed = 0;
  /// Optional start vectors (n, c): the first min(c, b) columns of the start block (they need
  /// not be orthonormal); the remaining columns are random.
  Matrix start;
  /// Threads of the orthogonalisation products (0 = OpenMP default). `op` threads itself.
  int n_threads = 0;
};

/// Default block size for m wanted pairs: b = max(m, 8). The number of vectors block Lanczos
/// needs grows with b (on the PCA benchmark spectra, m = 20: about 110, 180 and 320 vectors for
/// b = 10, 20 and 40) while a product with the data gets cheaper per vector up to b of a few
/// tens; b ≥ m is required (see block_lanczos_top_eigenvectors), and b ≥ 8 keeps the products
/// GEMM-shaped for small m.
Index default_block_size(Index m);
/// Default basis size before a thick restart: p = m + 8b, so that the PCA start rarely restarts
/// (it stops after seven to nine blocks); storage 2 n p numbers for V and A V.
Index default_max_basis(Index m, Index b);

/// Top-m eigenpairs of a symmetric positive semi-definite operator by block Lanczos with full
/// reorthogonalisation (block classical Gram–Schmidt twice, SVQB inside the block) and thick
/// restarts (Golub & Underwood 1977; Golub & Van Loan, "Matrix Computations", ch. 10; Saad,
/// "Numerical Methods for Large Eigenvalue Problems", ch. 6; Zhou & Saad 2008 for block thick
/// restart).
///
/// The basis V (n, j) is stored with W = A V; the projected matrix H = Vᵀ W and the residuals
/// ‖A y − θ y‖ = ‖W s − θ V s‖ of the Ritz pairs (θ, y = V s) are computed explicitly, so the
/// Krylov recurrence only chooses the next block: breakdowns (a block that is numerically inside
/// span V: an invariant subspace, a rank-deficient operator) are handled by replacing the lost
/// directions with random vectors. Converged when every wanted pair has residual
/// ≤ tol · max|θ|. The block size is at least m: a block Krylov space from b random vectors
/// holds min(b, q) vectors of an eigenspace of multiplicity q (exact arithmetic), so every copy
/// of a repeated wanted eigenvalue is reachable. Deterministic for a seed and independent of
/// n_threads when `op` is. When n ≤ p the operator's matrix is built block by block and
/// decomposed densely.
/// @throws std::invalid_argument for n, m, tol, max_restarts, block_size, max_basis or start out
///         of range; NumericalError when `op` returns non-finite values.
LanczosResult block_lanczos_top_eigenvectors(const BlockOperator& op, Index n, Index m,
                                             const BlockLanczosOptions& options = {});

/// Top-m eigenpairs of a symmetric operator given one vector at a time: the block method with
/// block size m (op applied to each column of a block) and basis p = max(9m, m + 20); the dense
/// path when p ≥ n. @param n dimension; @param m number of pairs (1 ≤ m < n); @param tol
/// residual tolerance relative to the largest eigenvalue; @param seed start block seed (see
/// SplitMix64).
/// @throws std::invalid_argument for m, n, tol or max_restarts out of range; NumericalError
///         when `op` returns non-finite values.
LanczosResult lanczos_top_eigenvectors(const SymmetricOperator& op, Index n, Index m,
                                       double tol = 1e-10, int max_restarts = 50,
                                       std::uint64_t seed = 0);

/// PCA start of D (paper, "Convergence and initialization"): the top-m eigenvectors of
/// Σ_k S_k, each column's sign fixed so that its entry of largest magnitude is positive.
///
/// Two paths, chosen by an estimate of their multiply-adds (see lanczos.cpp): block Lanczos on
/// the operator X ↦ Σ_k S_k X (each block one GEMM pass per stored matrix), or, when every
/// dataset is a Gram factor F_k (d, N_k) and ΣN_k is small, the ΣN × ΣN Gram matrix
/// G = F̂ᵀ F̂ of F̂ = [F_1 … F_K] (Σ_k S_k = F̂ F̂ᵀ): its top eigenpairs (u, λ) give the
/// eigenvectors F̂ u / √λ, which are then checked (one block pass, Rayleigh–Ritz, explicit
/// residuals) and refined by block Lanczos if needed. Residuals ≤ 1e-10 · θ_max on both paths.
/// Works in the datasets' coordinates: for datasets held in the span of the data (DataSpan) the
/// sign convention must be applied to the V-dimensional columns (see DataSpan::pca_start).
/// The result does not depend on n_threads. @return (d, m).
Matrix pca_initial_projection(const std::vector<Dataset>& data, Index m, int n_threads = 0);

/// The same PCA start for K data matrices (V, N_k), one sample per column. With
/// `assume_centered`, a dataset with N_k ≤ V is read in place (S_k = X_k X_kᵀ / N_k, no copy);
/// otherwise it goes through Dataset::from_data (Representation::Auto). @return (V, m).
/// @throws std::invalid_argument for invalid data (validate_data) or m outside [1, V).
Matrix pca_initial_projection(const DataList& Xs, Index m, bool assume_centered, int n_threads = 0);

/// Flips the sign of column j of D where the entry of largest magnitude of column j of
/// `reference` is negative. @param reference (n, m); @param D (any rows, m).
void fix_column_signs(const Eigen::Ref<const Matrix>& reference, Eigen::Ref<Matrix> D);

}  // namespace metaglasso
