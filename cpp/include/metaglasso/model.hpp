// The MGLASSO model for a fixed projection D: closed-form ε_k, objective, gradients, retraction.
#pragma once

#include <Eigen/QR>
#include <Eigen/SVD>
#include <utility>
#include <vector>

#include "metaglasso/covariance_products.hpp"
#include "metaglasso/dataset.hpp"
#include "metaglasso/glasso.hpp"
#include "metaglasso/joint_glasso.hpp"

namespace metaglasso {

/// The penalties of the K datasets: ρ_k, one ρ for every dataset (converts implicitly from a
/// double) or one value per dataset, and optionally a Coupling of the K networks. Dataset k's ρ_k
/// enters its graphical lasso (eq. 13), its term ρ_k ‖Λ_k‖₁ of E (eq. 6) and so the gradient; ε_k
/// (eq. 16) does not depend on it. An active coupling adds its term (coupling_penalty) to E once and
/// makes the K graphical lassos one joint problem (joint_glasso.hpp); the gradient keeps the form of
/// eq. 10, since the Λ_k are optimal for it (the envelope theorem).
class Penalty {
 public:
  Penalty(double rho = 0.0) : common_(rho) {}  // NOLINT(google-explicit-constructor): ρ for all
  explicit Penalty(std::vector<double> per_dataset) : values_(std::move(per_dataset)) {}
  /// ρ_k of dataset k.
  double operator[](Index k) const {
    return values_.empty() ? common_ : values_[static_cast<std::size_t>(k)];
  }
  /// This penalty with the K networks coupled by `c`.
  Penalty coupled(const Coupling& c) const {
    Penalty p = *this;
    p.coupling_ = c;
    return p;
  }
  const Coupling& coupling() const { return coupling_; }
  /// @throws std::invalid_argument unless every value is finite and >= 0 and, when given per
  ///         dataset, there are n_datasets of them (messages name alpha and alpha[k]), and the
  ///         coupling's beta is finite and >= 0.
  void validate(Index n_datasets) const;

 private:
  double common_ = 0.0;
  std::vector<double> values_;
  Coupling coupling_;
};

/// Noise variance of the remaining V − M directions, paper eq. 16:
///   ε_k = (tr S_k − tr Dᵀ S_k D) / (V − M).
/// @param trace_S tr S_k; @param DtSD (M, M); @param n_features V (> M).
/// @throws NumericalError when tr S_k = 0, or when the result is at most 1e-10 · tr(S_k)/V (the
///         data has no variance outside span D, and the likelihood is unbounded).
double noise_variance(double trace_S, const Eigen::Ref<const Matrix>& DtSD, Index n_features);

/// Everything the fit knows about dataset k at the current D: the products S_k D, Dᵀ S_k D (the
/// Projection base) and what follows from them. The matrices keep their sizes between evaluations, so
/// refits after the first allocate nothing in the products or the glasso.
struct DatasetState : Projection {
  double noise = 0.0;   ///< ε_k (eq. 16)
  GlassoResult glasso;  ///< Λ_k = glasso(Dᵀ S_k D, ρ) (eq. 13) and Σ_k
  GlassoSolver glasso_solver;  ///< buffers of that glasso, reused by every refit
  double objective = 0.0;  ///< this dataset's term L_k of E (eq. 6)
};

/// Term L_k of the objective (eq. 6) without forming Φ_k:
///   tr(Λ A) + (tr S − tr A)/ε − log|Λ| + (V − M) log ε + ρ‖Λ‖₁,   A = Dᵀ S_k D.
double dataset_objective(double trace_S, const Eigen::Ref<const Matrix>& DtSD,
                         const Eigen::Ref<const Matrix>& precision, double noise,
                         Index n_features, double rho, bool penalize_diagonal);

/// Refit dataset k at D: projections, ε_k (eq. 16), Λ_k (eq. 13, warm-started from
/// state.glasso.precision when its size matches) and L_k. @param D (d, M), d = data.dimension().
/// @throws NumericalError from noise_variance, and — unless the diagonal is penalised with ρ > 0 —
///         when a diagonal entry of Dᵀ S_k D is at most 1e-10 · tr(S_k)/V: a factor without variance
///         makes the objective unbounded below.
/// @param n_threads threads of the two products (Dataset::project).
void update_dataset_state(const Dataset& data, const Eigen::Ref<const Matrix>& D, double rho,
                          const GlassoOptions& glasso_options, DatasetState& state, int n_threads = 1);

/// The part of update_dataset_state after the products: ε_k, Λ_k and L_k from state.SD and
/// state.DtSD (M, M) at D, for a dataset with tr S_k = trace_S and V = n_features. Throws as
/// update_dataset_state.
void refit_from_projection(double trace_S, Index n_features, double rho, const GlassoOptions& glasso_options,
                           DatasetState& state);

/// Refits the datasets ks[0], …, ks[count − 1] at D, dataset k with its penalty rho[k]: their
/// products in one call of products.project, then refit_from_projection for each — in parallel over the datasets when
/// n_threads > 1, there are at least as many of them as threads and the work is large enough.
/// Each dataset writes only its own state, so the results do not depend on n_threads.
/// With an active coupling (rho.coupling()) every dataset must be refitted (count = n_datasets()):
/// ε_k as before, then the Λ_k of the joint graphical lasso of the K matrices Dᵀ S_k D
/// (JointGlassoSolver, warm-started from the states' precisions when they have size M), then L_k.
/// @param states (n_datasets()), resized if needed.
/// @return the coupling term of E at the new Λ_k (coupling_penalty; 0 without coupling): E is the
///         sum of the states' objectives plus it.
/// @throws std::invalid_argument for invalid penalties (Penalty::validate), when the operator
///         returns products of the wrong shape or with non-finite entries, or a coupled refit of
///         fewer than all datasets; NumericalError prefixed by "dataset k: " as update_dataset_state.
double refit_datasets(const CovarianceProducts& products, const Eigen::Ref<const Matrix>& D, const Penalty& rho,
                    const GlassoOptions& glasso_options, const Index* ks, Index count,
                    std::vector<DatasetState>& states, int n_threads = 0);

/// The same for datasets in memory (DatasetProducts).
double refit_datasets(const std::vector<Dataset>& data, const Eigen::Ref<const Matrix>& D, const Penalty& rho,
                    const GlassoOptions& glasso_options, const Index* ks, Index count,
                    std::vector<DatasetState>& states, int n_threads = 0);

/// Adds dataset k's share of the Euclidean gradient, eq. 10:
///   G += 2 S_k D (Λ_k − ε_k⁻¹ I).   @param G (V, M).
void add_euclidean_gradient(const DatasetState& state, Eigen::Ref<Matrix> G);

/// Riemannian gradient on the Stiefel manifold, eq. 9: G − ½ D (Dᵀ G + Gᵀ D).
/// @param D (V, M) with DᵀD = I; @param G (V, M) Euclidean gradient.
Matrix riemannian_gradient(const Eigen::Ref<const Matrix>& D, const Eigen::Ref<const Matrix>& G);

/// The same into preallocated storage: R = G − D sym(Dᵀ G). @param R (V, M) output (must not
/// alias D or G); @param work (M, M) scratch. Allocates nothing when R and work have their sizes.
void riemannian_gradient(const Eigen::Ref<const Matrix>& D, const Eigen::Ref<const Matrix>& G, Matrix& R,
                         Matrix& work);

/// Polar retraction, eqs. 7–8: Z = P S Qᵀ (thin SVD) ↦ P Qᵀ. @param Z (V, M), full column rank.
/// Computed as Z = Q R (Householder), R = U Σ Wᵀ (Jacobi SVD, M × M), P Qᵀ = Q U Wᵀ.
/// @throws NumericalError for non-finite or rank-deficient Z.
Matrix polar_retraction(const Eigen::Ref<const Matrix>& Z);

/// The polar retraction with storage kept between calls: after the first call for a shape it
/// allocates nothing (the fit loops retract once per step). Same arithmetic as polar_retraction.
class PolarRetraction {
 public:
  /// out = polar(Z). @param Z (V, M), full column rank; @param out (V, M), must not alias Z.
  void operator()(const Eigen::Ref<const Matrix>& Z, Matrix& out);

 private:
  Eigen::HouseholderQR<Matrix> qr_;
  Eigen::JacobiSVD<Matrix> svd_;
  Matrix R_, UVt_;
  Vector work_;
};

/// Profile objective f(D) = min_{Λ,ε} E and its Riemannian gradient (for tests and
/// line searches), dataset k penalised by rho[k]. @param D (d, M). @param riemannian_grad (d, M) output, optional.
double profile_objective(const CovarianceProducts& products, const Eigen::Ref<const Matrix>& D, const Penalty& rho,
                         const GlassoOptions& glasso_options, std::vector<DatasetState>& states,
                         Matrix* riemannian_grad, int n_threads = 0);

/// The same for datasets in memory (DatasetProducts).
double profile_objective(const std::vector<Dataset>& data, const Eigen::Ref<const Matrix>& D,
                         const Penalty& rho, const GlassoOptions& glasso_options,
                         std::vector<DatasetState>& states, Matrix* riemannian_grad,
                         int n_threads = 0);

}  // namespace metaglasso
