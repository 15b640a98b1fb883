// Joint graphical lasso of K latent covariances: the step that gives Λ_1, …, Λ_K for a fixed D when
// a fused or group penalty ties the K networks together.
#pragma once

#include <vector>

#include "metaglasso/common.hpp"
#include "metaglasso/glasso.hpp"

namespace metaglasso {

/// How the K latent networks are tied together, besides each dataset's ρ_k ‖Λ_k‖₁.
enum class CouplingType {
  None,   ///< independent networks: K graphical lassos (eq. 13)
  Fused,  ///< β Σ_{(k,l)} Σ_{i≠j} |Λ_k,ij − Λ_l,ij| over the pairs of FusedPairs
  Group,  ///< β Σ_{i≠j} ‖(Λ_1,ij, …, Λ_K,ij)‖₂
};

/// The pairs of datasets whose networks a fused penalty pulls together.
enum class FusedPairs {
  All,    ///< every pair k < l
  Chain,  ///< consecutive datasets (k, k + 1) only: ordered contexts (years, dose levels)
};

/// The penalty that couples the K networks (Danaher, Wang & Witten 2014, JRSS-B 76:373). The sums
/// over i ≠ j count both (i, j) and (j, i); the diagonal is never coupled.
struct Coupling {
  CouplingType type = CouplingType::None;
  double beta = 0.0;  ///< λ₂ ≥ 0
  FusedPairs pairs = FusedPairs::All;

  /// True when the networks are actually coupled (a fused or group penalty with β > 0).
  bool active() const { return type != CouplingType::None && beta > 0.0; }
  /// @throws std::invalid_argument unless β is finite and ≥ 0 (the message names beta).
  void validate() const;
};

/// The coupling term of the objective at Λ_1, …, Λ_K: β times the fused or group sum above
/// (0 for CouplingType::None). @param precisions K matrices (M, M).
double coupling_penalty(const std::vector<Matrix>& precisions, const Coupling& coupling);

/// The joint objective Σ_k [tr(S_k Λ_k) − log|Λ_k| + ρ_k ‖Λ_k‖₁] + coupling_penalty, ‖·‖₁ over the
/// off-diagonal entries, or all of them when penalize_diagonal. +inf when some Λ_k is not positive
/// definite.
double joint_glasso_objective(const std::vector<Matrix>& S, const std::vector<double>& rho,
                              const std::vector<Matrix>& precisions, const Coupling& coupling,
                              bool penalize_diagonal);

/// Optimality residual of the joint problem at Λ (positive definite), in units where the S_k have
/// unit mean diagonal c (S' = S/c, Λ' = cΛ, penalties ρ_k/c and β/c): the largest entry of
/// |Λ'_k − prox(Λ'_k − (S'_k − Λ'_k⁻¹))|, prox that of the scaled penalties (the ℓ1 terms and the
/// coupling). It is the step of a proximal gradient method, zero exactly at the solution. +inf when
/// some Λ_k is not positive definite.
double joint_glasso_residual(const std::vector<Matrix>& S, const std::vector<double>& rho,
                             const std::vector<Matrix>& precisions, const Coupling& coupling,
                             bool penalize_diagonal);

// Method (cpp/src/joint_glasso.cpp). The problem is solved in the scaled units above. A warm start
// is first polished on its own pattern: the entries that are zero stay zero, the entries that are
// fused (equal across linked datasets) stay fused, and Newton's method with conjugate gradients
// minimises the (then smooth) objective over the rest. When the result passes the optimality test —
// joint_glasso_residual at most max(tol, 1e-13) — it is returned; between nearby problems
// (successive evaluations of a fit) this is the common case. If not, the proximal gradient step of
// the test, which has the new pattern when it changed little, is polished once more. Otherwise ADMM
// (Danaher et al.'s, with the exact proximal operators: soft thresholding and group shrinkage for
// the group penalty; soft thresholding of the total-variation denoiser for the fused one — the taut
// string along a chain, isotonic regression for all pairs) runs to a tolerance of 1e-3 that tightens
// by 100 each round, each round followed by the same polish and test. result.converged says whether
// the test passed within options.max_iter ADMM iterations; result.gap holds the residual.

/// Reusable joint solver (buffers kept between calls; not safe for concurrent use).
class JointGlassoSolver {
 public:
  /// Solves the joint problem for the K matrices S[k] (M, M, symmetric positive semi-definite)
  /// into results[k] (precision Λ_k, covariance Λ_k⁻¹, n_iter = ADMM iterations plus Newton
  /// steps of the whole solve, converged, gap = residual). With `warm`, results[k].precision
  /// (M, M, positive definite) is the starting point. With coupling not active the K problems are
  /// independent and are solved by `glasso` (GlassoSolver), bit for bit as graphical_lasso.
  /// @param rho ρ_k ≥ 0 (K values). A fused coupling needs equal ρ_k on the off-diagonal entries.
  /// @throws std::invalid_argument for sizes that differ, non-finite S, invalid ρ_k or β, and a
  ///         fused coupling with unequal ρ_k.
  void solve(const std::vector<const Matrix*>& S, const std::vector<double>& rho, const Coupling& coupling,
             const GlassoOptions& options, bool warm, const std::vector<GlassoResult*>& results);

 private:
  std::vector<Matrix> theta_, z_, u_, w_, a_, work_;
  GlassoSolver glasso_;
};

/// Convenience form of JointGlassoSolver::solve. @param S K matrices (M, M); @param rho K values;
/// @param precisions_init optional K warm starts (M, M).
std::vector<GlassoResult> joint_graphical_lasso(const std::vector<Matrix>& S, const std::vector<double>& rho,
                                                const Coupling& coupling, const GlassoOptions& options = {},
                                                const std::vector<Matrix>* precisions_init = nullptr);

namespace detail {
/// x = argmin ½‖x − y‖² + b Σ_e |x_k − x_l| over the pairs of `pairs` (the total-variation denoiser
/// of a chain, or of the complete graph); exact. Exposed for tests.
void tv_denoise(const double* y, Index n, double b, FusedPairs pairs, double* x);
}  // namespace detail

}  // namespace metaglasso
