// Block Lanczos with full reorthogonalisation and thick restarts for the top eigenpairs of a
// symmetric positive semi-definite operator, and the PCA start of D built on it (paper,
// "Convergence and initialization" and "Computational complexity").
//
// The method (Golub & Underwood 1977; Golub & Van Loan, "Matrix Computations", ch. 10;
// Saad, "Numerical Methods for Large Eigenvalue Problems", ch. 6): from an orthonormal block Q_0 (n, b), each step applies the
// operator to the newest block, orthogonalises the result against the whole basis and
// orthonormalises it into the next block, so that span V = K_s(A, Q_0) = span[Q_0, A Q_0, …,
// A^{s−1} Q_0]. The basis V (n, j) is stored together with W = A V, so the Rayleigh quotient
// H = Vᵀ W and the residual A y − θ y = W s − θ V s of every Ritz pair (θ, y = V s) are computed
// explicitly rather than from the block tridiagonal recurrence. The recurrence only chooses the
// next block; correctness does not depend on it, which makes breakdowns (invariant subspaces,
// rank-deficient blocks) and the injection of random vectors harmless.
//
// Cost. For an operator backed by matrices (the data), a block of b vectors costs the same
// number of multiply-adds as b single-vector steps but reads the matrices once instead of b
// times: the products are GEMMs, compute-bound, instead of memory-bound matrix–vector products.
// A block method needs more vectors than single-vector Lanczos on the same spectrum (its
// polynomials have degree s = j/b instead of j; for the top 20 eigenvectors of the PCA benchmark
// data, 140–180 vectors in blocks of 20 against about 75 for ARPACK), but with b ≥ m its
// convergence for the m-th eigenvalue is governed by the gap between λ_m and λ_{b+1} (Saad 1980,
// "On the rates of convergence of the Lanczos and the block-Lanczos methods") rather than by the
// gap to λ_{m+1}, and each vector costs a fraction of a memory-bound matrix–vector product.
#include "metaglasso/lanczos.hpp"

#include <Eigen/Eigenvalues>
#include <algorithm>
#include <cmath>
#include <exception>
#include <functional>
#include <limits>
#include <string>
#include <utility>

#include "kernels.hpp"
#include "metaglasso/random.hpp"

namespace metaglasso {

namespace {

// A column whose norm falls below kLost times its norm on entry to the orthogonalisation is
// numerically inside span V (an invariant subspace was found, or the block was rank deficient).
constexpr double kLost = 1e-10;
// SVQB: directions whose eigenvalue of the column-scaled Gram matrix is at most kSvqbDrop times
// the largest are numerically linear combinations of the others.
constexpr double kSvqbDrop = 1e-13;
// SVQB leaves ‖QᵀQ − I‖ ≈ ε · cond(D G D): a round is final when cond ≤ 1 / kSvqbClean.
constexpr double kSvqbClean = 1e-2;
// After a projection pass the components of a column along V are about ε times its norm before
// the pass; SVQB scales column i by 1/‖c_i‖ and by at most λ_min^{-1/2}. A new projection pass is
// needed when that amplification exceeds kAmplification.
constexpr double kAmplification = 1e2;

void fill_random(SplitMix64& rng, Eigen::Ref<Matrix> X) {
  for (Index j = 0; j < X.cols(); ++j)
    for (Index i = 0; i < X.rows(); ++i) X(i, j) = rng.uniform() - 0.5;
}

struct Work {
  Matrix coef, tmp;
};

// C ← C − V (Vᵀ C): one pass of block classical Gram–Schmidt.
void project_out(const Eigen::Ref<const Matrix>& V, Matrix& C, Work& w, int nt) {
  if (V.cols() == 0) return;
  w.coef.resize(V.cols(), C.cols());
  detail::product_tn(V, C, w.coef, nt);
  w.tmp.resize(C.rows(), C.cols());
  detail::product_nn(V, w.coef, w.tmp, nt);
  C -= w.tmp;
}

// Makes the columns of C (n, b) orthonormal and orthogonal to span V (V orthonormal).
//
// Block classical Gram–Schmidt against V, repeated ("twice is enough": Giraud, Langou, Rozložník
// & van den Eshof 2005; Barlow & Smoktunowicz 2013 for the block version), and SVQB inside the
// block (Stathopoulos & Wu 2002): with G = CᵀC, D = diag(G)^{-1/2} and D G D = U Λ Uᵀ, the
// columns of C D U Λ^{-1/2} are orthonormal up to about ε · cond(D G D). A projection pass leaves
// components along V of about ε times the column norms before it; SVQB scales column i by 1/‖c_i‖
// and by at most λ_min^{-1/2}. Rounds of (projection, SVQB) are repeated until the SVQB was well
// conditioned and that amplification is small; a round whose projection is not needed is an SVQB
// alone (as in CholQR2). Columns reduced below kLost times their norm on entry, and SVQB
// directions with negligible eigenvalues, are numerically inside span[V, C]: they are replaced by
// random vectors, which the next round orthogonalises.
// @param entry (b) the column norms of C on entry (reset for the columns replaced).
// @param shrink 0 when C has not been projected against V; otherwise C was projected once by
//        the caller and `shrink` is max_i (‖c_i‖ before) / (‖c_i‖ after) of that pass.
void orthonormalize(const Eigen::Ref<const Matrix>& V, Matrix& C, Vector& entry, double shrink, SplitMix64& rng,
                    int nt, Work& w) {
  const Index n = C.rows(), b = C.cols();
  const bool has_basis = V.cols() > 0;
  Matrix G(b, b), M;
  bool project = has_basis && shrink == 0.0;
  if (!has_basis) shrink = 1.0;
  for (int round = 0; round < 12; ++round) {
    if (project) {
      const Vector before = C.colwise().norm();
      project_out(V, C, w, nt);
      shrink = (before.array() / C.colwise().norm().transpose().array()).maxCoeff();
    }
    bool replaced = false;
    for (Index i = 0; i < b; ++i) {
      if (!(C.col(i).norm() > kLost * entry(i))) {  // also NaN
        fill_random(rng, C.col(i));
        entry(i) = C.col(i).norm();
        replaced = true;
      }
    }
    if (replaced) {
      project = has_basis;
      continue;
    }
    G.setZero();
    detail::gram_tn_lower(C, G, nt);
    detail::symmetrize_from_lower(G);
    const Vector dinv = G.diagonal().cwiseSqrt().cwiseInverse();
    const Eigen::SelfAdjointEigenSolver<Matrix> es(dinv.asDiagonal() * G * dinv.asDiagonal());
    if (es.info() != Eigen::Success) throw NumericalError("block Lanczos: the block orthonormalisation failed");
    const Vector& lambda = es.eigenvalues();  // ascending
    const double lmax = lambda(b - 1);
    Index drop = 0;
    while (drop < b && !(lambda(drop) > kSvqbDrop * lmax)) ++drop;
    const Index keep = b - drop;
    M = dinv.asDiagonal() * es.eigenvectors().rightCols(keep) *
        lambda.tail(keep).cwiseSqrt().cwiseInverse().asDiagonal();
    w.tmp.resize(n, keep);
    detail::product_nn(C, M, w.tmp, nt);
    C.leftCols(keep) = w.tmp;
    entry.head(keep).setOnes();
    if (drop > 0) {
      fill_random(rng, C.rightCols(drop));
      for (Index i = keep; i < b; ++i) entry(i) = C.col(i).norm();
      project = has_basis;
      continue;
    }
    const bool well_conditioned = lambda(0) >= kSvqbClean * lmax;
    project = has_basis && shrink / std::sqrt(lambda(0)) > kAmplification;
    shrink = 1.0;  // an SVQB alone does not move C towards V
    if (well_conditioned && !project) return;
  }
  throw NumericalError("block Lanczos: cannot orthonormalise a block");
}

// Dense path for small n: the operator's matrix, built b columns at a time.
LanczosResult dense_top_eigenvectors(const BlockOperator& op, Index n, Index m, Index b) {
  Matrix A(n, n);
  const Matrix I = Matrix::Identity(n, n);
  for (Index c0 = 0; c0 < n; c0 += b) {
    const Index w = std::min(b, n - c0);
    op(I.middleCols(c0, w), A.middleCols(c0, w));
  }
  if (!A.allFinite()) throw NumericalError("block Lanczos: the operator returned non-finite values");
  const Matrix As = 0.5 * (A + A.transpose());
  const Eigen::SelfAdjointEigenSolver<Matrix> es(As);
  if (es.info() != Eigen::Success) throw NumericalError("block Lanczos: dense eigensolver failed");
  LanczosResult r;
  r.values = es.eigenvalues().reverse().head(m);
  r.vectors = es.eigenvectors().rowwise().reverse().leftCols(m);
  r.n_iter = static_cast<int>(n);
  r.converged = true;
  return r;
}

void check_common(Index n, Index m, double tol, int max_restarts, const char* who) {
  if (n < 2 || m < 1 || m >= n)
    throw std::invalid_argument(std::string(who) + " needs 1 <= m < n; got n=" + std::to_string(n) +
                                ", m=" + std::to_string(m));
  if (!(tol >= 0.0) || !std::isfinite(tol))
    throw std::invalid_argument("tol must be finite and >= 0; got " + std::to_string(tol));
  if (max_restarts < 0)
    throw std::invalid_argument("max_restarts must be >= 0; got " + std::to_string(max_restarts));
}

}  // namespace

Index default_block_size(Index m) { return std::max<Index>(m, 8); }

Index default_max_basis(Index m, Index b) { return m + 8 * b; }

LanczosResult block_lanczos_top_eigenvectors(const BlockOperator& op, Index n, Index m,
                                             const BlockLanczosOptions& options) {
  if (!op) throw std::invalid_argument("block_lanczos_top_eigenvectors: op is empty");
  check_common(n, m, options.tol, options.max_restarts, "block_lanczos_top_eigenvectors");
  if (options.block_size < 0)
    throw std::invalid_argument("block_size must be >= 0; got " + std::to_string(options.block_size));
  if (options.max_basis < 0)
    throw std::invalid_argument("max_basis must be >= 0; got " + std::to_string(options.max_basis));
  if (options.start.size() > 0 && (options.start.rows() != n || !options.start.allFinite()))
    throw std::invalid_argument("start must be a finite matrix with n=" + std::to_string(n) + " rows; got " +
                                std::to_string(options.start.rows()));
  const double tol = options.tol;
  const int nt = resolve_threads(options.n_threads);

  // Block size b ≥ m: a block Krylov space from b random vectors contains min(b, q) vectors of an
  // eigenspace of multiplicity q (exact arithmetic), so all copies of a repeated wanted
  // eigenvalue are reachable. Basis p ≥ m + 2b; a thick restart keeps k = m + (p − m)/2 Ritz
  // vectors (Wu & Simon 2000), rounded so that whole blocks fill the rest.
  const Index b = std::min(n, std::max(m, options.block_size > 0 ? options.block_size : default_block_size(m)));
  const Index p = std::max(options.max_basis > 0 ? options.max_basis : default_max_basis(m, b), m + 2 * b);
  if (p >= n) return dense_top_eigenvectors(op, n, m, b);
  const Index k = std::max(m, p - b * std::max<Index>(1, (p - m) / (2 * b)));

  SplitMix64 rng(options.seed);
  Matrix V(n, p), W(n, p), H = Matrix::Zero(p, p), C(n, b), Hl, Hc, Y, R, E;
  Work w;
  const Index c0 = std::min<Index>(options.start.cols(), b);
  if (c0 > 0) C.leftCols(c0) = options.start.leftCols(c0);
  fill_random(rng, C.rightCols(b - c0));
  Vector entry = C.colwise().norm();
  double shrink = 0.0;  // C has not been projected against V

  LanczosResult result;
  Index j = 0;     // current basis size
  Index near = 0;  // first basis column that A couples to the newest block in exact arithmetic
  int n_ops = 0, restarts = 0;

  // Y = V s_i for the m wanted pairs and their explicit residuals W s_i − θ_i V s_i, relative to θ_max.
  auto ritz_residuals = [&](const Vector& theta, const Matrix& S, double theta_max) {
    Y.resize(n, m);
    R.resize(n, m);
    detail::product_nn(V.leftCols(j), S.leftCols(m), Y, nt);
    detail::product_nn(W.leftCols(j), S.leftCols(m), R, nt);
    R -= Y * theta.head(m).asDiagonal();
    const double largest = R.colwise().norm().maxCoeff();
    return theta_max > 0.0 ? largest / theta_max : largest;
  };

  for (;;) {
    // Expand the basis by one block: orthonormalise the candidate and apply the operator.
    orthonormalize(V.leftCols(j), C, entry, shrink, rng, nt, w);
    V.middleCols(j, b) = C;
    op(V.middleCols(j, b), W.middleCols(j, b));
    n_ops += static_cast<int>(b);
    if (!W.middleCols(j, b).allFinite())
      throw NumericalError("block_lanczos_top_eigenvectors: the operator returned non-finite values");
    const Index jn = j + b, width = jn - near;

    // Next candidate block C = (I − V Vᵀ) A V_new, in two passes of block Gram–Schmidt (complete
    // reorthogonalisation, Golub & Van Loan ch. 10). In exact arithmetic A V_new is orthogonal to
    // every block but the previous one, itself and, after a thick restart, the kept Ritz vectors
    // (columns near … jn − 1): the first pass projects against those only. The second pass
    // projects against the whole basis and also yields the rest of H = Vᵀ A V exactly:
    // Vᵀ A V_new = Vᵀ C₁ + (0; Hl) for C₁ = A V_new − V_near Hl.
    Hl.resize(width, b);
    detail::product_tn(V.middleCols(near, width), W.middleCols(j, b), Hl, nt);
    C = W.middleCols(j, b);
    entry = C.colwise().norm();
    w.tmp.resize(n, b);
    detail::product_nn(V.middleCols(near, width), Hl, w.tmp, nt);
    C -= w.tmp;
    const Vector before = C.colwise().norm();
    Hc.resize(jn, b);
    detail::product_tn(V.leftCols(jn), C, Hc, nt);
    detail::product_nn(V.leftCols(jn), Hc, w.tmp, nt);
    C -= w.tmp;
    shrink = (before.array() / C.colwise().norm().transpose().array()).maxCoeff();
    Hc.middleRows(near, width) += Hl;
    H.block(0, j, j, b) = Hc.topRows(j);
    H.block(j, 0, b, j) = Hc.topRows(j).transpose();
    H.block(j, j, b, b) = 0.5 * (Hc.bottomRows(b) + Hc.bottomRows(b).transpose());
    near = j;
    j = jn;

    // Rayleigh–Ritz on span V, eigenvalues descending.
    const Eigen::SelfAdjointEigenSolver<Matrix> es(H.topLeftCorner(j, j));
    if (es.info() != Eigen::Success) throw NumericalError("block_lanczos_top_eigenvectors: projected eigensolver failed");
    const Vector theta = es.eigenvalues().reverse();
    const Matrix S = es.eigenvectors().rowwise().reverse();
    const double theta_max = std::max(std::abs(theta(0)), std::abs(theta(j - 1)));

    // In exact arithmetic A V − V H vanishes but in its last block, which is C, so the residual of
    // a Ritz pair (θ, V s) is C s_last (s_last: the last b entries of s). These estimates decide
    // when the explicit residuals are worth computing.
    E.resize(n, m);
    detail::product_nn(C, S.block(j - b, 0, b, m), E, nt);
    if ((E.colwise().norm().array() <= tol * theta_max).all()) {
      const double residual = ritz_residuals(theta, S, theta_max);
      if (residual <= tol) {
        result.values = theta.head(m);
        result.vectors = Y;
        result.n_iter = n_ops;
        result.converged = true;
        result.residual = residual;
        return result;
      }
    }

    if (j + b > p) {
      if (restarts >= options.max_restarts) {
        result.residual = ritz_residuals(theta, S, theta_max);
        result.values = theta.head(m);
        result.vectors = Y;
        result.n_iter = n_ops;
        result.converged = result.residual <= tol;
        return result;
      }
      // Thick restart (Wu & Simon 2000; for blocks Zhou & Saad 2008): keep the k leading Ritz
      // vectors, for which Vᵀ A V = diag(θ); the candidate C, orthogonal to the old basis, continues
      // the Krylov sequence and is coupled by A to all kept vectors.
      w.tmp.resize(n, k);
      detail::product_nn(V.leftCols(j), S.leftCols(k), w.tmp, nt);
      V.leftCols(k) = w.tmp;
      detail::product_nn(W.leftCols(j), S.leftCols(k), w.tmp, nt);
      W.leftCols(k) = w.tmp;
      H.setZero();
      H.diagonal().head(k) = theta.head(k);
      j = k;
      near = 0;
      ++restarts;
    }
  }
}

LanczosResult lanczos_top_eigenvectors(const SymmetricOperator& op, Index n, Index m, double tol, int max_restarts,
                                       std::uint64_t seed) {
  if (!op) throw std::invalid_argument("lanczos_top_eigenvectors: op is empty");
  check_common(n, m, tol, max_restarts, "lanczos_top_eigenvectors");
  const BlockOperator block = [&op](const Eigen::Ref<const Matrix>& X, Eigen::Ref<Matrix> Y) {
    for (Index i = 0; i < X.cols(); ++i) op(X.col(i), Y.col(i));
  };
  BlockLanczosOptions o;
  o.block_size = m;
  o.max_basis = std::max(default_max_basis(m, m), m + 20);
  o.tol = tol;
  o.max_restarts = max_restarts;
  o.seed = seed;
  o.n_threads = 1;
  return block_lanczos_top_eigenvectors(block, n, m, o);
}

namespace {

// One summand of Σ_k S_k: a Gram factor F (d, N) with S_k = w F Fᵀ, or a covariance S (d, d)
// with S_k = w S. Factors are read in place (a Dataset's matrix, or a centred data matrix with
// w = 1/N).
struct Term {
  Eigen::Ref<const Matrix> matrix;
  double weight;
  bool covariance;

  // Multiply-adds of S_k X for a block of b vectors (both products for a factor).
  double macs(Index b) const {
    const auto rows = static_cast<double>(matrix.rows()), cols = static_cast<double>(matrix.cols());
    return (covariance ? rows * rows : 2.0 * rows * cols) * static_cast<double>(b);
  }
};

// Y = Σ_k S_k X for a block X (d, b) through the GEMM kernels (F (w Fᵀ X) for a factor, w S X for
// a covariance), summed in term order. The kernels give the same bits for every thread count, so
// the sum does too. The terms are visited in turn, each product threaded by the kernels; when no
// product is large enough for that but their sum is, up to n_threads terms are multiplied at once
// (each serially) and their products added in term order.
class SummedCovariances {
 public:
  SummedCovariances(const std::vector<Term>& terms, int n_threads) : terms_(terms), nt_(n_threads) {}

  void operator()(const Eigen::Ref<const Matrix>& X, Eigen::Ref<Matrix> Y) {
    const std::size_t K = terms_.size();
    const Index b = X.cols();
    double largest = 0.0, total = 0.0;
    for (const Term& t : terms_) {
      largest = std::max(largest, t.macs(b) / (t.covariance ? 1.0 : 2.0));  // per product
      total += t.macs(b);
    }
    const bool by_term = nt_ > 1 && K > 1 && largest < detail::kParallelMacs && total >= detail::kParallelMacs;
    if (!by_term) {
      apply(terms_[0], X, Y, small_[0], nt_);
      for (std::size_t k = 1; k < K; ++k) {
        part_[0].resize(X.rows(), b);
        apply(terms_[k], X, part_[0], small_[0], nt_);
        Y += part_[0];
      }
      return;
    }
    const std::size_t lanes = std::min<std::size_t>(K, static_cast<std::size_t>(nt_));
    if (part_.size() < lanes) {
      part_.resize(lanes);
      small_.resize(lanes);
    }
    for (std::size_t k0 = 0; k0 < K; k0 += lanes) {
      const int count = static_cast<int>(std::min(lanes, K - k0));
      std::exception_ptr error;
#ifdef METAGLASSO_HAVE_OPENMP
#pragma omp parallel for num_threads(count) schedule(static)
#endif
      for (int t = 0; t < count; ++t) {
        try {
          const auto u = static_cast<std::size_t>(t);
          part_[u].resize(X.rows(), b);
          apply(terms_[k0 + u], X, part_[u], small_[u], 1);
        } catch (...) {
#ifdef METAGLASSO_HAVE_OPENMP
#pragma omp critical(metaglasso_lanczos_error)
#endif
          if (!error) error = std::current_exception();
        }
      }
      if (error) std::rethrow_exception(error);
      for (int t = 0; t < count; ++t) {
        if (k0 == 0 && t == 0) Y = part_[0];
        else Y += part_[static_cast<std::size_t>(t)];
      }
    }
  }

 private:
  // out = S_k X (sized by the caller).
  static void apply(const Term& term, const Eigen::Ref<const Matrix>& X, Eigen::Ref<Matrix> out, Matrix& small,
                    int nt) {
    if (term.covariance) {
      detail::product_nn(term.matrix, X, out, nt);
      if (term.weight != 1.0) out *= term.weight;
      return;
    }
    small.resize(term.matrix.cols(), X.cols());
    detail::product_tn(term.matrix, X, small, nt);  // Fᵀ X
    if (term.weight != 1.0) small *= term.weight;
    detail::product_nn(term.matrix, small, out, nt);  // F (w Fᵀ X)
  }

  const std::vector<Term>& terms_;
  int nt_;
  std::vector<Matrix> part_ = std::vector<Matrix>(1), small_ = std::vector<Matrix>(1);
};

constexpr double kPcaTol = 1e-10;  // residual tolerance of the PCA start, relative to θ_max

// Expected number of vectors block Lanczos applies the data operator to for the PCA start: nine
// blocks of b = default_block_size(m) (for m = 20 on the benchmark spectra — a rank-40 signal
// with scales 10 … 1 over isotropic noise — the method stops after seven to nine blocks).
double expected_krylov_vectors(Index m) { return 9.0 * static_cast<double>(default_block_size(m)); }

// The top-m eigenvectors through the Gram matrix of the stacked factors F̂ = [√w_1 F_1 … √w_K F_K]
// (d, P), P = ΣN_k: Σ_k S_k = F̂ F̂ᵀ and G = F̂ᵀ F̂ (P, P) share their non-zero eigenvalues, and for
// G u = λ u, F̂ u / √λ is a unit eigenvector of F̂ F̂ᵀ (the SVD of F̂; Golub & Van Loan §8.6).
// Rounding in G (about ε‖G‖) moves the residual of F̂ u / √λ by about ε √(θ_max/λ) θ_max, so the
// result is finished in feature space: one block pass for S Q on the orthonormalised Q,
// Rayleigh–Ritz on span Q (which removes the errors along the other wanted eigenvectors; columns
// for λ = 0, when m exceeds the rank of the data, become null vectors) and the explicit residuals
// of its Ritz pairs. Should they miss the tolerance (the eigensolve on G not converged), block
// Lanczos on the data operator continues from them.
Matrix top_through_gram(const std::vector<Term>& terms, Index m, SummedCovariances& sum, int nt) {
  const Index d = terms.front().matrix.rows();
  std::vector<Index> offsets(terms.size() + 1, 0);
  for (std::size_t k = 0; k < terms.size(); ++k) offsets[k + 1] = offsets[k] + terms[k].matrix.cols();
  const Index P = offsets.back();

  // Lower triangle of G block by block: w_k F_kᵀ F_k on the diagonal, √(w_k w_l) F_kᵀ F_l below.
  Matrix G = Matrix::Zero(P, P);
  for (std::size_t k = 0; k < terms.size(); ++k) {
    const auto& Fk = terms[k].matrix;
    const Index ok = offsets[k], nk = Fk.cols();
    auto diagonal = G.block(ok, ok, nk, nk);
    detail::gram_tn_lower(Fk, diagonal, nt);
    diagonal *= terms[k].weight;
    for (std::size_t l = 0; l < k; ++l) {
      const auto& Fl = terms[l].matrix;
      auto below = G.block(ok, offsets[l], nk, Fl.cols());
      detail::product_tn(Fk, Fl, below, nt);
      below *= std::sqrt(terms[k].weight * terms[l].weight);
    }
  }
  detail::symmetrize_from_lower(G);

  BlockLanczosOptions o;
  o.tol = kPcaTol / 16.0;  // margin for the Rayleigh–Ritz step in feature space
  o.n_threads = nt;
  const LanczosResult eig = block_lanczos_top_eigenvectors(
      [&G, nt](const Eigen::Ref<const Matrix>& X, Eigen::Ref<Matrix> Y) { detail::product_nn(G, X, Y, nt); }, P, m,
      o);
  G.resize(0, 0);

  // Q = F̂ U Λ^{-1/2}, summed over terms in order; columns with λ ≤ 0 stay zero and are replaced
  // by random vectors in the orthonormalisation.
  Vector scale(m);
  for (Index i = 0; i < m; ++i) scale(i) = eig.values(i) > 0.0 ? 1.0 / std::sqrt(eig.values(i)) : 0.0;
  Matrix Q = Matrix::Zero(d, m), part(d, m);
  for (std::size_t k = 0; k < terms.size(); ++k) {
    const auto& Fk = terms[k].matrix;
    const Matrix Uk = std::sqrt(terms[k].weight) * eig.vectors.middleRows(offsets[k], Fk.cols()) * scale.asDiagonal();
    detail::product_nn(Fk, Uk, part, nt);
    Q += part;
  }

  // Rayleigh–Ritz on span Q with explicit residuals.
  SplitMix64 rng(1);
  Work w;
  Vector entry = Q.colwise().norm();
  orthonormalize(Matrix(d, 0), Q, entry, 0.0, rng, nt, w);
  Matrix SQ(d, m), Hq(m, m);
  sum(Q, SQ);
  detail::product_tn(Q, SQ, Hq, nt);
  const Eigen::SelfAdjointEigenSolver<Matrix> es(0.5 * (Hq + Hq.transpose()));
  if (es.info() != Eigen::Success) throw NumericalError("pca_initial_projection: projected eigensolver failed");
  const Vector theta = es.eigenvalues().reverse();
  const Matrix Z = es.eigenvectors().rowwise().reverse();
  Matrix Y(d, m), R(d, m);
  detail::product_nn(Q, Z, Y, nt);
  detail::product_nn(SQ, Z, R, nt);
  R -= Y * theta.asDiagonal();
  const double theta_max = std::max(std::abs(theta(0)), std::abs(theta(m - 1)));
  if ((R.colwise().norm().array() <= kPcaTol * theta_max).all()) return Y;

  BlockLanczosOptions refine;
  refine.tol = kPcaTol;
  refine.n_threads = nt;
  refine.start = std::move(Y);
  return block_lanczos_top_eigenvectors(std::ref(sum), d, m, refine).vectors;
}

// A start block in the range of Σ_k S_k = Σ_k w_k F_k F_kᵀ: Σ_k √w_k F_k Z_k with Z_k (N_k, b)
// uniform in [−½, ½) (SplitMix64, seed 0). When ΣN_k < d a random block of R^d lies mostly in the
// null space of the operator, and its first Krylov block is spent on directions the next product
// removes; F Z costs half a block product and is distributed as the data are (its components
// along the eigenvectors scale with √λ), which saves about one block of the iteration.
Matrix range_start(const std::vector<Term>& terms, Index b, int nt) {
  SplitMix64 rng(0);
  const Index d = terms.front().matrix.rows();
  Matrix X = Matrix::Zero(d, b), part(d, b), Z;
  for (const Term& t : terms) {
    Z.resize(t.matrix.cols(), b);
    fill_random(rng, Z);
    Z *= std::sqrt(t.weight);
    detail::product_nn(t.matrix, Z, part, nt);
    X += part;
  }
  return X;
}

// Top-m eigenvectors of Σ_k S_k, signs fixed, by the cheaper of block Lanczos on the terms and
// the Gram path.
//
// Path choice by an estimate of multiply-adds, weighted by how fast the kernels run them.
//   Block Lanczos: c ≈ expected_krylov_vectors(m) vectors, each costing 2 d N_k per factor and d²
//   per covariance on the data, plus about d c for block Gram–Schmidt against a basis of average
//   size c/2 (projection and back-substitution: 2 · d · c/2 per vector).
//   Gram path (every term a factor, P = ΣN_k < d): d P²/2 for the lower triangle of G, then
//   d P m to map the eigenvectors back and 2 d P m for the check pass; the eigensolve on the
//   P × P matrix G is comparatively free.
// The Gram kernel multiplies 128-column tiles with the data streamed once per tile; the products of
// block Lanczos have b ≈ m columns and sustain about half its rate (measured for m = 20: 35 against
// 12–18 GMAC/s on two AVX-512 cores; with SSE2-only code, 10 against 8). Thin products therefore
// count twice (kThinProduct). For factors alone the Gram path is taken when
// P/2 + 6m < 4c + 2c²/P, c ≈ 9m: for P up to about 1300 when m = 20.
Matrix top_eigenvectors(const std::vector<Term>& terms, Index m, int nt) {
  constexpr double kThinProduct = 2.0;
  const Index d = terms.front().matrix.rows();
  SummedCovariances sum(terms, nt);
  bool all_factors = true;
  double per_vector = 0.0, P = 0.0;
  for (const Term& t : terms) {
    all_factors = all_factors && !t.covariance;
    per_vector += t.macs(1);
    if (!t.covariance) P += static_cast<double>(t.matrix.cols());
  }
  const double dd = static_cast<double>(d), dm = static_cast<double>(m), c = expected_krylov_vectors(m);
  const double krylov = kThinProduct * c * (per_vector + dd * c);
  const double gram = dd * P * P / 2.0 + kThinProduct * 3.0 * dd * P * dm;
  const bool use_gram = all_factors && P < dd && P > 2.0 * dm && gram < krylov;

  Matrix D;
  if (use_gram) {
    D = top_through_gram(terms, m, sum, nt);
  } else {
    // Any orthonormal D is a valid start, so a run that is not fully converged after the restart
    // budget is still used.
    BlockLanczosOptions o;
    o.tol = kPcaTol;
    o.n_threads = nt;
    if (all_factors && P < dd) o.start = range_start(terms, default_block_size(m), nt);
    D = block_lanczos_top_eigenvectors(std::ref(sum), d, m, o).vectors;
  }
  fix_column_signs(D, D);
  return D;
}

void check_components(Index m, Index n) {
  if (m < 1 || m >= n)
    throw std::invalid_argument("n_components must satisfy 1 <= n_components < n_features; got n_components=" +
                                std::to_string(m) + ", n_features=" + std::to_string(n));
}

}  // namespace

Matrix pca_initial_projection(const std::vector<Dataset>& data, Index m, int n_threads) {
  if (data.empty()) throw std::invalid_argument("pca_initial_projection: data must contain at least one dataset");
  const Index n = data.front().dimension();
  for (std::size_t k = 0; k < data.size(); ++k)
    if (data[k].dimension() != n || data[k].n_features() != data.front().n_features())
      throw std::invalid_argument("all datasets must have the same number of features; dataset 0 has " +
                                  std::to_string(n) + ", dataset " + std::to_string(k) + " has " +
                                  std::to_string(data[k].dimension()));
  check_components(m, n);
  std::vector<Term> terms;
  terms.reserve(data.size());
  for (const Dataset& ds : data) terms.push_back(Term{ds.matrix(), 1.0, ds.is_covariance()});
  return top_eigenvectors(terms, m, resolve_threads(n_threads));
}

Matrix pca_initial_projection(const DataList& Xs, Index m, bool assume_centered, int n_threads) {
  validate_data(Xs);
  check_components(m, Xs.front().rows());
  const int nt = resolve_threads(n_threads);
  // Centred data with N_k ≤ V are used in place as factors (S_k = X_k X_kᵀ / N_k); other datasets
  // go through Dataset::from_data (a centred, scaled copy, or the V × V covariance when N_k > V).
  std::vector<Dataset> owned;
  owned.reserve(Xs.size());
  for (const auto& X : Xs)
    if (!(assume_centered && X.cols() <= X.rows()))
      owned.push_back(Dataset::from_data(X, assume_centered, Representation::Auto, nt));
  std::vector<Term> terms;
  terms.reserve(Xs.size());
  std::size_t next = 0;
  for (const auto& X : Xs) {
    if (assume_centered && X.cols() <= X.rows()) {
      terms.push_back(Term{X, 1.0 / static_cast<double>(X.cols()), false});
    } else {
      const Dataset& ds = owned[next++];
      terms.push_back(Term{ds.matrix(), 1.0, ds.is_covariance()});
    }
  }
  return top_eigenvectors(terms, m, nt);
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
