// The MGLASSO fit loop (paper Algorithm 1) with Adam and Riemannian L-BFGS solvers.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "metaglasso/compression.hpp"
#include "metaglasso/covariance_products.hpp"
#include "metaglasso/dataset.hpp"
#include "metaglasso/glasso.hpp"
#include "metaglasso/model.hpp"

namespace metaglasso {

enum class Solver { Adam, LBFGS };

/// What FitOptions::callback receives after each iteration (lbfgs) or epoch (adam).
struct FitProgress {
  int iteration = 0;           ///< iterations (lbfgs) or epochs (adam) completed
  double objective = 0.0;      ///< E after it (adam: the epoch's sum of per-dataset terms)
  double gradient_norm = 0.0;  ///< ‖Riemannian gradient‖_F at the new D (adam: of the epoch's last step)
};

struct FitOptions {
  double alpha = 0.01;          ///< ρ ≥ 0 of every dataset (unless dataset_alphas is given)
  /// ρ_k ≥ 0 of each dataset (K values), replacing alpha; empty: alpha for every dataset. A
  /// dataset's ρ_k enters its graphical lasso, its term of E and the gradient (see Penalty).
  std::vector<double> dataset_alphas;
  /// A fused or group penalty that ties the K latent networks together (see Coupling); the default
  /// leaves them independent. Adam then needs batch_size 0 (or ≥ K): each step refits all datasets.
  Coupling coupling;
  Solver solver = Solver::LBFGS;
  int max_iter = 2000;          ///< epochs (adam) or iterations (lbfgs)
  double tol = 1e-8;            ///< relative change of E (adam); relative decrease and
                                ///< gradient norm (lbfgs)
  double learning_rate = 1e-3;  ///< Adam step size
  double beta1 = 0.9, beta2 = 0.999, adam_eps = 1e-8;
  Index batch_size = 0;         ///< datasets per Adam mini-batch; 0 = all K
  int lbfgs_memory = 10;
  std::uint64_t seed = 0;       ///< mini-batch shuffles
  int n_threads = 0;            ///< 0 = OpenMP default
  /// Inner graphical lasso. penalize_diagonal is on by default: the paper's ‖Λ_k‖₁ sums all
  /// entries (Notations), which keeps E bounded below when some N_k ≤ V; off (scikit-learn's and
  /// the authors' code's convention) E is unbounded below when a factor can turn towards a
  /// direction without variance in some dataset (see update_dataset_state). The tolerance is tight
  /// (the Python estimator's): the gradient (eq. 10) is exact only as far as Λ_k is, and the
  /// L-BFGS line search needs it to working precision.
  GlassoOptions glasso = {1e-12, 10000, true};
  /// Called after every iteration / epoch on the calling thread, outside parallel regions. An
  /// exception it throws ends the fit and propagates to the caller.
  std::function<void(const FitProgress&)> callback;
  /// Called on the calling thread, outside parallel regions, after every evaluation of the
  /// objective (line-search trials, Adam mini-batches) and between the row blocks of the Gram pass
  /// of a compressed fit: the place to check for an interrupt request. An exception it throws ends
  /// the fit and propagates to the caller.
  std::function<void()> interrupt_check;

  /// The penalties of the datasets: Penalty(dataset_alphas) when given, else Penalty(alpha), with
  /// the coupling.
  Penalty penalty() const {
    return (dataset_alphas.empty() ? Penalty(alpha) : Penalty(dataset_alphas)).coupled(coupling);
  }
};

struct FitResult {
  Matrix components;                 ///< D (d, M), DᵀD = I, in the datasets' coordinates
                                     ///< (fit_data: always (V, M))
  std::vector<Matrix> precisions;    ///< Λ_k (M, M)
  std::vector<Matrix> covariances;   ///< Σ_k (M, M)
  Vector noise_variances;            ///< ε_k (K)
  double objective = 0.0;            ///< final E at D
  std::vector<double> objective_history;  ///< E after each epoch / iteration (index 0: start)
  double gradient_norm = 0.0;        ///< ‖Riemannian gradient‖_F at D
  int n_iter = 0;
  bool converged = false;
  /// How the solver held each S_k (in span coordinates when compression_rank > 0).
  std::vector<Representation> representations;
  /// r when the fit ran in the span of the centred data (fit_data), 0 otherwise.
  Index compression_rank = 0;
};

/// Puts a fit in its canonical form. The model is unchanged by permuting the factors and flipping
/// their signs (D → D P S, Λ_k → (P S)ᵀ Λ_k (P S)); the canonical form fixes both:
///   * order: decreasing v_j = Σ_k Σ_k[j, j], the latent variance of factor j summed over the
///     datasets (= Σ_k (Dᵀ S_k D)[j, j], plus Σ_k ρ_k — the same for every factor — when the
///     diagonal is penalised); ties keep the lower index first;
///   * signs: each column of D has its entry of largest absolute value positive (the first such
///     row on exact ties).
/// Λ_k and Σ_k are permuted and signed with D; everything else (objective, ε_k, history) is
/// invariant. Every fit returns its result in this form, in the coordinates of its datasets
/// (fit_data: in the V features), so that results do not depend on the order or signs a solver
/// happened to reach.
void canonicalize(FitResult& result);

/// Start of D (paper, "Convergence and initialization").
struct Start {
  enum class Method {
    PCA,     ///< top-M eigenvectors of Σ_k S_k (pca_initial_projection)
    Random,  ///< random_initial_projection(V, M, seed)
    Given,   ///< the polar factor of `components`
  };
  Method method = Method::PCA;
  Index n_components = 0;   ///< M (PCA, Random; Given takes it from `components`)
  std::uint64_t seed = 0;   ///< Random
  Matrix components;        ///< Given: (V, M) of full column rank

  static Start pca(Index m);
  static Start random(Index m, std::uint64_t seed);
  static Start given(Matrix D0);
  /// M of this start.
  Index size() const { return method == Method::Given ? components.cols() : n_components; }
};

/// How fit_data holds the datasets.
struct DataOptions {
  bool assume_centered = false;
  /// Per dataset (Dataset::from_data): Auto keeps the centred data when N_k ≤ V and the
  /// covariance otherwise.
  Representation representation = Representation::Auto;
  /// Solve in the span of the centred data (DataSpan) when that is exact and smaller: solver
  /// L-BFGS, every dataset in data representation, ΣN_k < V and M < r. Adam always runs in the V
  /// features (its element-wise step scaling is not invariant under the change of coordinates).
  bool compress = true;
  double rank_tolerance = 1e-12;  ///< DataSpan
};

/// Fit MGLASSO from the start D0 (d, M) with DᵀD = I, d = the datasets' dimension() (V, or r for
/// datasets in span coordinates; 1 ≤ M < V and M ≤ d).
///
/// Solver::Adam: per epoch a SplitMix64(seed) permutation of the datasets, walked in batches of
/// `batch_size`; each batch refits ε_k, Λ_k at the current D (warm-started glasso), sums its
/// terms of eq. 10 in batch order and takes one Adam step on the Riemannian gradient (eq. 9),
/// pulled back by the polar retraction. objective_history holds the epoch losses (the sum of
/// the L_k met during the epoch); stops when two successive ones differ by at most
/// tol · max(1, |latest − f_units|) (tol > 0), f_units = Σ_k V log(tr S_k / V): E shifts by that much
/// when the units of the data change, so the rule does not depend on them.
///
/// Solver::LBFGS: Riemannian L-BFGS on the profile objective f(D), memory pairs transported by
/// projection, an initial inverse Hessian scaled separately (Barzilai–Borwein) on rotations
/// inside span D and on moves out of it — there per factor, by the curvature of moving it out of the
/// span — and Armijo backtracking along the retraction. objective_history holds f(D0) and f after
/// every accepted step; converged when the last decrease is at most tol · max(1, |f − f_units|) and
/// ‖grad f‖_F ≤ max(√tol · ‖grad f(D0)‖_F, 1e-10 · max(1, |f(D0) − f_units|)) (f_units as for Adam) —
/// the second bound recognises a start that is stationary to working precision. When no step of the
/// line search decreases f (twice, the second time from steepest descent) the fit stops, converged if
/// that test holds or ‖grad f‖_F ≤ 1e-7 ‖G‖_F, G the Euclidean gradient (eq. 10): stationary to
/// working precision, as a warm start from a converged fit is (its gradient cannot drop by √tol again).
///
/// In both, the final objective, Λ_k, Σ_k, ε_k and gradient norm are those of the profile at
/// the returned D, which is put in canonical form (canonicalize). Dataset k is penalised by
/// options.penalty()[k]. Results do not depend on n_threads.
/// @throws std::invalid_argument on inconsistent sizes, M ≥ V, non-orthonormal D0, ρ < 0 or
///         dataset_alphas without one value per dataset,
///         empty data or out-of-range options; NumericalError, prefixed by "dataset k: ", when
///         the objective is unbounded below at an iterate (ε_k or a diagonal entry of Dᵀ S_k D at
///         most 1e-10 · tr(S_k)/V; see update_dataset_state) or the graphical lasso of a dataset
///         has not converged at the returned D.
///
/// The datasets are seen only through `data` (CovarianceProducts): one call of data.project per
/// evaluation of the objective, for all the datasets it needs, from the calling thread. An operator's
/// products of the wrong shape or with non-finite entries raise std::invalid_argument.
FitResult fit(const CovarianceProducts& data, const Eigen::Ref<const Matrix>& D0, const FitOptions& options);

/// fit(DatasetProducts(data), D0, options).
FitResult fit(const std::vector<Dataset>& data, const Eigen::Ref<const Matrix>& D0,
              const FitOptions& options);

/// The start D0 (d, M) of `start` for datasets in their own coordinates: PCA by data.pca_start
/// (Lanczos on Σ_k S_k), Random by random_initial_projection (d = V only), Given by
/// polar(components).
/// @throws std::invalid_argument for M out of range, a Given matrix of the wrong shape, non-finite
///         or rank deficient.
Matrix initial_projection(const CovarianceProducts& data, const Start& start, int n_threads = 0);

/// initial_projection(DatasetProducts(data), start, n_threads).
Matrix initial_projection(const std::vector<Dataset>& data, const Start& start, int n_threads = 0);

/// fit(data, initial_projection(data, start), options).
FitResult fit(const CovarianceProducts& data, const Start& start, const FitOptions& options);

/// fit(DatasetProducts(data), start, options).
FitResult fit(const std::vector<Dataset>& data, const Start& start, const FitOptions& options);

/// Fit MGLASSO to K data matrices (paper Algorithm 1), choosing how to hold them:
///   * compressed (DataOptions::compress): L-BFGS in the r ≤ ΣN_k dimensional span of the centred
///     data (DataSpan) from the start projected into the span — the PCA start computed there, a
///     Random or Given start as polar(Bᵀ D0) — then D = B E re-orthonormalised. Per evaluation
///     O(r M ΣN) instead of O(V M ΣN); memory: the data (read in place) plus O(ΣN² + (V + ΣN) M);
///   * otherwise each dataset as Dataset::from_data(X_k, assume_centered, representation).
/// result.compression_rank and result.representations say which.
/// @param Xs K matrices (V, N_k), one sample per column; read, not copied in the compressed case.
/// @throws std::invalid_argument as fit and validate_data.
FitResult fit_data(const DataList& Xs, const Start& start, const FitOptions& options,
                   const DataOptions& data_options = {});

/// Fit MGLASSO to K covariance matrices: fit(Dataset::from_covariance(S_k, N_k) …, start, options).
/// @param covariances K matrices (V, V); @param n_samples N_k (K).
FitResult fit_covariances(const DataList& covariances, const std::vector<Index>& n_samples, const Start& start,
                          const FitOptions& options);

/// PCA start (V, m) of K data matrices: through DataSpan::pca_start (block Lanczos on the r × r
/// matrix Σ_k C_k C_kᵀ, then mapped by B) when `compress` and ΣN_k < V, else pca_initial_projection
/// of Dataset::from_data (block Lanczos on the data or on the samples' Gram matrix, whichever costs
/// fewer multiply-adds). The two agree to the Lanczos tolerance; fit_data uses the span because a
/// compressed fit needs its Gram pass anyway.
Matrix pca_initial_projection_data(const DataList& Xs, Index m, bool assume_centered, bool compress,
                                   int n_threads = 0);

}  // namespace metaglasso
