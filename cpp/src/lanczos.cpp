// Thick-restart Lanczos with full reorthogonalisation for the top eigenpairs of a symmetric
// operator, and the PCA start of D built on it (paper, "Convergence and initialization" and
// "Computational complexity").
//
// The basis V (n, p) is stored together with W = A V, so the Rayleigh quotient T = Vᵀ A V and
// every Ritz residual ‖A y − θ y‖ are computed explicitly rather than from the three-term
// recurrence. The Krylov recurrence only chooses the next basis vector; correctness does not
// depend on it, which makes breakdowns (invariant subspaces) and the injection of fresh random
// vectors harmless.
#include "metaglasso/lanczos.hpp"

#include <Eigen/Eigenvalues>
#include <algorithm>
#include <cmath>
#include <exception>
#include <string>

#include "metaglasso/random.hpp"

namespace metaglasso {

namespace {

constexpr double kDgks = 0.7071067811865476;  // 1/√2

// Orthogonalises x against the first j columns of V by classical Gram–Schmidt, repeated while
// a pass removes more than 1 − 1/√2 of the norm (Daniel–Gragg–Kaufman–Stewart criterion, at
// most three passes: "twice is enough" in all but pathological cases).
// @param V (n, ≥ j) orthonormal columns; @param x (n) modified in place; @param h (≥ j) work.
// @return ‖x‖ after orthogonalisation, or 0 when x lies in span V to working precision.
double orthogonalize(const Matrix& V, Index j, Vector& x, Vector& h) {
  double norm = x.norm();
  if (!std::isfinite(norm)) return 0.0;
  if (j == 0 || norm == 0.0) return norm;
  for (int pass = 0; pass < 3; ++pass) {
    h.head(j).noalias() = V.leftCols(j).transpose() * x;
    x.noalias() -= V.leftCols(j) * h.head(j);
    const double reduced = x.norm();
    if (reduced >= kDgks * norm) return reduced;
    norm = reduced;
    if (norm == 0.0) return 0.0;
  }
  return 0.0;  // still cancelling after three passes: numerically inside span V
}

void fill_random(SplitMix64& rng, Vector& x) {
  for (Index i = 0; i < x.size(); ++i) x(i) = rng.uniform() - 0.5;
}

// Dense fallback for small n: the operator's matrix, built column by column.
LanczosResult dense_top_eigenvectors(const SymmetricOperator& op, Index n, Index m) {
  Matrix A(n, n);
  Vector e = Vector::Zero(n), y(n);
  for (Index i = 0; i < n; ++i) {
    e(i) = 1.0;
    op(e, y);
    A.col(i) = y;
    e(i) = 0.0;
  }
  if (!A.allFinite()) throw NumericalError("lanczos_top_eigenvectors: the operator returned non-finite values");
  const Matrix As = 0.5 * (A + A.transpose());
  const Eigen::SelfAdjointEigenSolver<Matrix> es(As);
  if (es.info() != Eigen::Success) throw NumericalError("lanczos_top_eigenvectors: dense eigensolver failed");
  LanczosResult r;
  r.values = es.eigenvalues().reverse().head(m);
  r.vectors = es.eigenvectors().rowwise().reverse().leftCols(m);
  r.n_iter = static_cast<int>(n);
  r.converged = true;
  return r;
}

}  // namespace

LanczosResult lanczos_top_eigenvectors(const SymmetricOperator& op, Index n, Index m, double tol, int max_restarts,
                                       std::uint64_t seed) {
  if (!op) throw std::invalid_argument("lanczos_top_eigenvectors: op is empty");
  if (n < 2 || m < 1 || m >= n)
    throw std::invalid_argument("lanczos_top_eigenvectors needs 1 <= m < n; got n=" + std::to_string(n) +
                                ", m=" + std::to_string(m));
  if (!(tol >= 0.0) || !std::isfinite(tol))
    throw std::invalid_argument("tol must be finite and >= 0; got " + std::to_string(tol));
  if (max_restarts < 0)
    throw std::invalid_argument("max_restarts must be >= 0; got " + std::to_string(max_restarts));

  // Krylov dimension p and the number k of Ritz vectors kept at a thick restart (m ≤ k < p).
  const Index p = std::min(n, std::max<Index>(2 * m + 1, m + 20));
  if (p >= n) return dense_top_eigenvectors(op, n, m);
  const Index k = m + (p - m) / 2;

  SplitMix64 rng(seed);
  Matrix V(n, p), W(n, p), T = Matrix::Zero(p, p), tmp(n, k);
  Vector c(n), h(p);
  fill_random(rng, c);  // start vector: entries uniform in [−½, ½)

  LanczosResult result;
  Index j = 0;  // current basis size
  int n_ops = 0;
  bool verifying = false;  // the current cycle was started from a fresh random vector
  Vector verified_values;  // wanted Ritz values before that cycle

  for (int cycle = 0;; ++cycle) {
    // Expand the basis to p vectors: next candidate = A v_{j−1} (Lanczos); when it lies in span V
    // (an invariant subspace was found) a fresh random vector is used instead.
    while (j < p) {
      double norm = orthogonalize(V, j, c, h);
      for (int attempt = 0; !(norm > 0.0); ++attempt) {
        if (attempt == 100) throw NumericalError("lanczos_top_eigenvectors: cannot extend the Krylov basis");
        fill_random(rng, c);
        norm = orthogonalize(V, j, c, h);
      }
      V.col(j) = c / norm;
      op(V.col(j), W.col(j));
      ++n_ops;
      if (!W.col(j).allFinite())
        throw NumericalError("lanczos_top_eigenvectors: the operator returned non-finite values");
      T.col(j).head(j + 1).noalias() = V.leftCols(j + 1).transpose() * W.col(j);
      T.row(j).head(j) = T.col(j).head(j).transpose();
      c = W.col(j);
      ++j;
    }

    // Rayleigh–Ritz on span V, eigenvalues descending.
    const Eigen::SelfAdjointEigenSolver<Matrix> es(T);
    if (es.info() != Eigen::Success) throw NumericalError("lanczos_top_eigenvectors: projected eigensolver failed");
    const Vector theta = es.eigenvalues().reverse();
    const Matrix S = es.eigenvectors().rowwise().reverse();
    const double theta_max = std::max(std::abs(theta(0)), std::abs(theta(p - 1)));

    // Explicit residuals of the m wanted Ritz pairs: A y − θ y = W s − θ V s.
    const Matrix Y = V * S.leftCols(m);
    Matrix R = W * S.leftCols(m);
    R -= Y * theta.head(m).asDiagonal();
    const bool converged = (R.colwise().norm().array() <= tol * theta_max).all();

    // Lanczos from one start vector sees one vector per distinct eigenvalue (in exact
    // arithmetic), so a converged set is confirmed by one more cycle from a fresh random vector:
    // a missed copy of a repeated eigenvalue shows up as a larger wanted Ritz value.
    const bool confirmed =
        converged && verifying && ((theta.head(m) - verified_values).cwiseAbs().array() <= tol * theta_max).all();
    if (confirmed || cycle >= max_restarts) {
      result.values = theta.head(m);
      result.vectors = Y;
      result.n_iter = n_ops;
      result.converged = converged;
      return result;
    }

    if (converged) {
      verifying = true;
      verified_values = theta.head(m);
      fill_random(rng, c);
    } else {
      verifying = false;
      c = W.col(p - 1);  // thick restart continues with the residual direction of the last vector
      if (!(orthogonalize(V, p, c, h) > 0.0)) fill_random(rng, c);
    }

    // Thick restart: keep the k leading Ritz vectors; T restricted to them is diag(θ).
    tmp.noalias() = V * S.leftCols(k);
    V.leftCols(k) = tmp;
    tmp.noalias() = W * S.leftCols(k);
    W.leftCols(k) = tmp;
    T.setZero();
    T.diagonal().head(k) = theta.head(k);
    j = k;
  }
}

Matrix pca_initial_projection(const std::vector<Dataset>& data, Index m, int n_threads) {
  if (data.empty()) throw std::invalid_argument("pca_initial_projection: data must contain at least one dataset");
  const Index n = data.front().dimension();
  for (std::size_t k = 0; k < data.size(); ++k)
    if (data[k].dimension() != n || data[k].n_features() != data.front().n_features())
      throw std::invalid_argument("all datasets must have the same number of features; dataset 0 has " +
                                  std::to_string(n) + ", dataset " + std::to_string(k) + " has " +
                                  std::to_string(data[k].dimension()));
  if (m < 1 || m >= n)
    throw std::invalid_argument("n_components must satisfy 1 <= n_components < n_features; got n_components=" +
                                std::to_string(m) + ", n_features=" + std::to_string(n));

  // y = Σ_k S_k x. Each product goes to its own column and the columns are summed in dataset
  // order, so the result does not depend on the number of threads.
  const auto K = static_cast<Index>(data.size());
  // One operator application costs about Σ_k size(stored matrix) multiply-adds (twice that for a
  // factor). Lanczos applies it a few hundred times with serial orthogonalisation in between, so
  // only applications of several milliseconds are worth a parallel region.
  Index work = 0;
  for (const auto& d : data) work += d.matrix().size();
  const int nt = resolve_threads(n_threads);
  const bool parallel = nt > 1 && K > 1 && work >= 20000000;
  Matrix parts(n, K);
  auto op = [&](const Eigen::Ref<const Vector>& x, Eigen::Ref<Vector> y) {
    std::exception_ptr error;
#ifdef METAGLASSO_HAVE_OPENMP
#pragma omp parallel for num_threads(nt) schedule(static) if (parallel)
#endif
    for (Index k = 0; k < K; ++k) {
      try {
        data[static_cast<std::size_t>(k)].apply(x, parts.col(k));
      } catch (...) {
#ifdef METAGLASSO_HAVE_OPENMP
#pragma omp critical(metaglasso_lanczos_error)
#endif
        if (!error) error = std::current_exception();
      }
    }
    if (error) std::rethrow_exception(error);
    y = parts.col(0);
    for (Index k = 1; k < K; ++k) y += parts.col(k);
  };
  (void)parallel;

  // Any orthonormal D is a valid start, so a Lanczos run that is not fully converged after the
  // restart budget is still used.
  Matrix D = lanczos_top_eigenvectors(op, n, m, 1e-10, 100).vectors;
  fix_column_signs(D, D);
  return D;
}

void fix_column_signs(const Eigen::Ref<const Matrix>& reference, Eigen::Ref<Matrix> D) {
  if (reference.cols() != D.cols())
    throw std::invalid_argument("fix_column_signs: reference has " + std::to_string(reference.cols()) +
                                " columns, D has " + std::to_string(D.cols()));
  for (Index j = 0; j < D.cols(); ++j) {
    Index i = 0;
    reference.col(j).cwiseAbs().maxCoeff(&i);
    if (reference(i, j) < 0) D.col(j) *= -1.0;
  }
}

}  // namespace metaglasso
