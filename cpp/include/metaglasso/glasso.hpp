// Graphical lasso: the step that gives the latent precision Λ_k = Σ_k⁻¹ for a fixed D.
#pragma once

#include <memory>

#include "metaglasso/common.hpp"

namespace metaglasso {

/// Options of graphical_lasso.
struct GlassoOptions {
  /// Stop when the duality gap is at most `tol * p` (p = dimension).
  double tol = 1e-8;
  /// Maximum number of sweeps over the columns.
  int max_iter = 1000;
  /// Penalise the diagonal of the precision as well (default: off-diagonal entries only,
  /// as scikit-learn and R's glasso with penalize.diagonal=FALSE).
  bool penalize_diagonal = false;
};

/// Result of graphical_lasso.
struct GlassoResult {
  Matrix precision;   ///< (p, p) symmetric positive definite estimate Θ = Σ⁻¹
  Matrix covariance;  ///< (p, p) Σ = Θ⁻¹
  int n_iter = 0;     ///< sweeps over the columns performed (dual and primal)
  bool converged = false;
  double gap = 0.0;   ///< final duality gap (absolute)
};

// Method (cpp/src/glasso.cpp): exact covariance thresholding splits the problem into the connected
// components of |S_ij| > ρ; each component is solved by block coordinate descent over the columns
// of the dual (the glasso of Friedman et al. 2008, with each column's lasso solved exactly by an
// active-set method), whose primal iterate is certified by its duality gap; a warm start is used
// as the dual's starting point. When the dual sweeps cannot finish (or a warm start does not map to
// a positive definite dual point), primal block coordinate descent (P-GLASSO, Mazumder & Hastie
// 2012), which keeps Θ positive definite at every step, takes over, with Newton's method on the
// sign pattern of Θ once the sweeps have nearly settled it. It stops when the duality gap is at
// most tol·p and the KKT conditions hold to tol (relative to √(w_ii w_jj)): the gap bounds some
// errors of Θ only through their squares, so a converged Θ that misses the second condition is
// polished by Newton steps on its pattern; Θ is not refined beyond that.
// n_iter counts the sweeps (0 when a warm start is already optimal). Besides the errors listed
// below, std::invalid_argument is thrown for an S that is not symmetric to 1e-10 relative or has a
// negative diagonal entry, tol < 0 or max_iter < 0, and NumericalError for a zero diagonal entry of
// S when the diagonal is not penalised (the problem is then unbounded) or a precision that overflows.

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
///         of the wrong size; NumericalError when ρ = 0 and S is singular or numerically singular
///         (a Cholesky pivot L_jj² ≤ 1e-12 S_jj: a variable all but explained by the others).
GlassoResult graphical_lasso(const Eigen::Ref<const Matrix>& S, double rho,
                             const GlassoOptions& options = {},
                             const Matrix* precision_init = nullptr);

/// Reusable graphical lasso solver: owns every work buffer of graphical_lasso, so that repeated
/// calls with problems of the same size p allocate nothing once the buffers have grown to it (with
/// a GlassoResult whose matrices already have shape (p, p); beyond p = 48, Eigen's blocked matrix
/// products may still take temporary blocking space of their own). Results are identical to
/// graphical_lasso's, bit for bit, whatever the solver solved before. A solver is not safe for
/// concurrent use; copies start with empty buffers.
class GlassoSolver {
 public:
  GlassoSolver();
  ~GlassoSolver();
  GlassoSolver(const GlassoSolver& other);
  GlassoSolver& operator=(const GlassoSolver& other);
  GlassoSolver(GlassoSolver&& other) noexcept;
  GlassoSolver& operator=(GlassoSolver&& other) noexcept;

  /// graphical_lasso(S, rho, options, precision_init) into `result`. `precision_init` may point to
  /// `result.precision` (a warm start from the previous answer).
  void solve(const Eigen::Ref<const Matrix>& S, double rho, const GlassoOptions& options,
             const Matrix* precision_init, GlassoResult& result);

  /// The same, returning the result.
  GlassoResult solve(const Eigen::Ref<const Matrix>& S, double rho, const GlassoOptions& options = {},
                     const Matrix* precision_init = nullptr);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

/// Duality gap of the graphical lasso at a positive definite Θ:
///   primal(Θ) − dual(W̃), where W̃ is S plus the projection of Θ⁻¹ − S onto the feasible
///   box |W̃ − S| ≤ ρ. Returns +inf when W̃ is not positive definite.
double glasso_duality_gap(const Eigen::Ref<const Matrix>& S, double rho,
                          const Eigen::Ref<const Matrix>& precision, bool penalize_diagonal);

/// Penalised objective tr(S Θ) − log|Θ| + ρ ‖Θ‖₁ (paper eq. 1 with S = XXᵀ/N).
double glasso_objective(const Eigen::Ref<const Matrix>& S, double rho,
                        const Eigen::Ref<const Matrix>& precision, bool penalize_diagonal);

}  // namespace metaglasso
