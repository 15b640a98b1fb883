// The MGLASSO model for a fixed projection D: closed-form ε_k, objective, gradients, retraction.
#pragma once

#include <vector>

#include "metaglasso/dataset.hpp"
#include "metaglasso/glasso.hpp"

namespace metaglasso {

/// Noise variance of the remaining V − M directions, paper eq. 16:
///   ε_k = (tr S_k − tr Dᵀ S_k D) / (V − M).
/// @param trace_S tr S_k; @param DtSD (M, M); @param n_features V (> M).
/// @throws NumericalError when the result is not positive (the data has no variance
///         outside span D).
double noise_variance(double trace_S, const Eigen::Ref<const Matrix>& DtSD, Index n_features);

/// Everything the fit knows about dataset k at the current D.
struct DatasetState {
  Matrix SD;            ///< (V, M) S_k D
  Matrix DtSD;          ///< (M, M) Dᵀ S_k D
  double noise = 0.0;   ///< ε_k (eq. 16)
  GlassoResult glasso;  ///< Λ_k = glasso(Dᵀ S_k D, ρ) (eq. 13) and Σ_k
  double objective = 0.0;  ///< this dataset's term L_k of E (eq. 6)
};

/// Term L_k of the objective (eq. 6) without forming Φ_k:
///   tr(Λ A) + (tr S − tr A)/ε − log|Λ| + (V − M) log ε + ρ‖Λ‖₁,   A = Dᵀ S_k D.
double dataset_objective(double trace_S, const Eigen::Ref<const Matrix>& DtSD,
                         const Eigen::Ref<const Matrix>& precision, double noise,
                         Index n_features, double rho, bool penalize_diagonal);

/// Refit dataset k at D: projections, ε_k (eq. 16), Λ_k (eq. 13, warm-started from
/// state.glasso.precision when its size matches) and L_k. @param D (V, M).
void update_dataset_state(const Dataset& data, const Eigen::Ref<const Matrix>& D, double rho,
                          const GlassoOptions& glasso_options, DatasetState& state);

/// Adds dataset k's share of the Euclidean gradient, eq. 10:
///   G += 2 S_k D (Λ_k − ε_k⁻¹ I).   @param G (V, M).
void add_euclidean_gradient(const DatasetState& state, Eigen::Ref<Matrix> G);

/// Riemannian gradient on the Stiefel manifold, eq. 9: G − ½ D (Dᵀ G + Gᵀ D).
/// @param D (V, M) with DᵀD = I; @param G (V, M) Euclidean gradient.
Matrix riemannian_gradient(const Eigen::Ref<const Matrix>& D, const Eigen::Ref<const Matrix>& G);

/// Polar retraction, eqs. 7–8: Z = P S Qᵀ (thin SVD) ↦ P Qᵀ. @param Z (V, M), full column rank.
Matrix polar_retraction(const Eigen::Ref<const Matrix>& Z);

/// Profile objective f(D) = min_{Λ,ε} E and its Riemannian gradient (for tests and
/// line searches). @param D (V, M). @param riemannian_grad (V, M) output, optional.
double profile_objective(const std::vector<Dataset>& data, const Eigen::Ref<const Matrix>& D,
                         double rho, const GlassoOptions& glasso_options,
                         std::vector<DatasetState>& states, Matrix* riemannian_grad,
                         int n_threads = 0);

}  // namespace metaglasso
