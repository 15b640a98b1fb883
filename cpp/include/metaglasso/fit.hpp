// The MGLASSO fit loop (paper Algorithm 1) with Adam and Riemannian L-BFGS solvers.
#pragma once

#include <cstdint>
#include <vector>

#include "metaglasso/dataset.hpp"
#include "metaglasso/glasso.hpp"
#include "metaglasso/model.hpp"

namespace metaglasso {

enum class Solver { Adam, LBFGS };

struct FitOptions {
  double alpha = 0.01;          ///< ρ ≥ 0
  Solver solver = Solver::LBFGS;
  int max_iter = 500;           ///< epochs (adam) or iterations (lbfgs)
  double tol = 1e-8;            ///< relative change of E (adam); relative decrease and
                                ///< gradient norm (lbfgs)
  double learning_rate = 1e-3;  ///< Adam step size
  double beta1 = 0.9, beta2 = 0.999, adam_eps = 1e-8;
  Index batch_size = 0;         ///< datasets per Adam mini-batch; 0 = all K
  int lbfgs_memory = 10;
  std::uint64_t seed = 0;       ///< mini-batch shuffles
  int n_threads = 0;            ///< 0 = OpenMP default
  GlassoOptions glasso;         ///< inner graphical lasso (penalize_diagonal lives here)
};

struct FitResult {
  Matrix components;                 ///< D (V, M), DᵀD = I
  std::vector<Matrix> precisions;    ///< Λ_k (M, M)
  std::vector<Matrix> covariances;   ///< Σ_k (M, M)
  Vector noise_variances;            ///< ε_k (K)
  double objective = 0.0;            ///< final E at D
  std::vector<double> objective_history;  ///< E after each epoch / iteration (index 0: start)
  double gradient_norm = 0.0;        ///< ‖Riemannian gradient‖_F at D
  int n_iter = 0;
  bool converged = false;
};

/// Fit MGLASSO from the start D0 (V, M) with DᵀD = I.
///
/// Solver::Adam: per epoch a SplitMix64(seed) permutation of the datasets, walked in batches of
/// `batch_size`; each batch refits ε_k, Λ_k at the current D (warm-started glasso), sums its
/// terms of eq. 10 in batch order and takes one Adam step on the Riemannian gradient (eq. 9),
/// pulled back by the polar retraction. objective_history holds the epoch losses (the sum of
/// the L_k met during the epoch); stops when two successive ones differ by at most
/// tol · max(1, |latest|) (tol > 0).
///
/// Solver::LBFGS: Riemannian L-BFGS on the profile objective f(D), memory pairs transported by
/// projection, an initial inverse Hessian scaled separately (Barzilai–Borwein) on rotations
/// inside span D and on moves out of it, and Armijo backtracking along the retraction.
/// objective_history holds f(D0) and f after every accepted step; converged when the last
/// decrease is at most tol · max(1, |f|) and ‖grad f‖_F ≤ √tol · ‖grad f(D0)‖_F.
///
/// In both, the final objective, Λ_k, Σ_k, ε_k and gradient norm are those of the profile at
/// the returned D. Results do not depend on n_threads.
/// @throws std::invalid_argument on inconsistent sizes, M ≥ V, non-orthonormal D0, ρ < 0,
///         empty data or out-of-range options; NumericalError from the model (e.g. ε_k ≤ 0).
FitResult fit(const std::vector<Dataset>& data, const Eigen::Ref<const Matrix>& D0,
              const FitOptions& options);

}  // namespace metaglasso
