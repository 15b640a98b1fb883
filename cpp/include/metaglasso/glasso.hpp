// Graphical lasso: the step that gives the latent precision Λ_k = Σ_k⁻¹ for a fixed D.
#pragma once

#include "metaglasso/common.hpp"

namespace metaglasso {

/// Options of graphical_lasso.
struct GlassoOptions {
  /// Stop when the duality gap is at most `tol * p` (p = dimension).
  double tol = 1e-8;
  /// Maximum number of outer sweeps over the columns.
  int max_iter = 1000;
  /// Penalise the diagonal of the precision as well (default: off-diagonal entries only,
  /// as scikit-learn and R's glasso with penalize.diagonal=FALSE).
  bool penalize_diagonal = false;
};

/// Result of graphical_lasso.
struct GlassoResult {
  Matrix precision;   ///< (p, p) symmetric positive definite estimate Θ = Σ⁻¹
  Matrix covariance;  ///< (p, p) Σ = Θ⁻¹
  int n_iter = 0;     ///< outer sweeps performed
  bool converged = false;
  double gap = 0.0;   ///< final duality gap (absolute)
};

// Method (cpp/src/glasso.cpp): exact covariance thresholding splits the problem into the connected
// components of |S_ij| > ρ; each component is solved by primal block coordinate descent over the
// columns (P-GLASSO, Mazumder & Hastie 2012), which keeps Θ positive definite at every step, with
// each column's lasso solved exactly by an active-set method, and a Newton finish on the sign
// pattern of Θ once the sweeps have settled it. It stops on the duality gap; as the gap bounds some
// errors of Θ only through their squares, a converged Θ is then polished to working precision.
// n_iter counts the sweeps (0 when a warm start is already optimal). Besides the errors listed
// below, std::invalid_argument is thrown for an S that is not symmetric to 1e-10 relative or has a
// negative diagonal entry, tol < 0 or max_iter < 0, and NumericalError for a zero diagonal entry of
// S when the diagonal is not penalised (the problem is then unbounded).

/// Graphical lasso (Friedman, Hastie & Tibshirani 2008), paper eqs. 1–2 and 13:
///   minimise  tr(S Θ) − log|Θ| + ρ ‖Θ‖₁   over symmetric positive definite Θ,
/// where ‖Θ‖₁ sums the off-diagonal |Θ_ij| (all entries if `penalize_diagonal`).
///
/// @param S          (p, p) symmetric positive semi-definite empirical covariance.
/// @param rho        penalty ρ ≥ 0.
/// @param options    tolerances and switches.
/// @param precision_init  optional (p, p) SPD warm start for Θ (nullptr: cold start).
/// @return precision, covariance, iterations, convergence flag and duality gap. The returned
///         precision is always symmetric positive definite.
/// @throws std::invalid_argument for a non-square or non-finite S, ρ < 0, or a warm start
///         of the wrong size; NumericalError when S is singular and ρ = 0.
GlassoResult graphical_lasso(const Eigen::Ref<const Matrix>& S, double rho,
                             const GlassoOptions& options = {},
                             const Matrix* precision_init = nullptr);

/// Duality gap of the graphical lasso at a positive definite Θ:
///   primal(Θ) − dual(W̃), where W̃ is S plus the projection of Θ⁻¹ − S onto the feasible
///   box |W̃ − S| ≤ ρ. Returns +inf when W̃ is not positive definite.
double glasso_duality_gap(const Eigen::Ref<const Matrix>& S, double rho,
                          const Eigen::Ref<const Matrix>& precision, bool penalize_diagonal);

/// Penalised objective tr(S Θ) − log|Θ| + ρ ‖Θ‖₁ (paper eq. 1 with S = XXᵀ/N).
double glasso_objective(const Eigen::Ref<const Matrix>& S, double rho,
                        const Eigen::Ref<const Matrix>& precision, bool penalize_diagonal);

}  // namespace metaglasso
