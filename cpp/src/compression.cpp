// DataSpan: the orthonormal basis of the span of the centred data from the pivoted Cholesky
// factorisation of the Gram matrix of the stacked data, and the datasets in its coordinates.
#include "metaglasso/compression.hpp"

#include <Eigen/SVD>
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>
#include <utility>
#include <vector>

#include "kernels.hpp"
#include "metaglasso/lanczos.hpp"
#include "metaglasso/model.hpp"

namespace metaglasso {

namespace {

constexpr Index kRowBlock = 256;       // rows of F̂ per block in the passes of to_features and to_span
constexpr Index kGramRowBlock = 1024;  // rows of F̂ per block of the Gram pass (one parallel region each)

using detail::format_number;

// Pivoted LDLᵀ of the symmetric positive semi-definite G (n, n), in place in its lower triangle:
// at step k the largest remaining diagonal of the Schur complement becomes the pivot (diagonal
// pivoting, which reveals the rank of a semi-definite matrix), and the factorisation stops when
// it is at or below tol times the first pivot, or after max_rank pivots (G = F̂ᵀ F̂ has rank at
// most the V rows of F̂: further pivots are rounding noise, which a small tolerance would keep).
// Left-looking: column k is one product with the columns already computed. On return, for the r = (return value) pivots, column c < r of the
// strict lower triangle of G holds column c of L (unit diagonal), d (r) the pivots and perm[i]
// the original index at position i.
Index pivoted_ldlt(Matrix& G, double tol, Index max_rank, std::vector<Index>& perm, Vector& d) {
  const Index n = G.rows();
  perm.resize(static_cast<std::size_t>(n));
  for (Index i = 0; i < n; ++i) perm[static_cast<std::size_t>(i)] = i;
  Vector diag = G.diagonal(), work(n);
  d.resize(n);
  double first = 0.0;
  Index k = 0;
  for (; k < std::min(n, max_rank); ++k) {
    Index j = 0;
    const double biggest = diag.tail(n - k).maxCoeff(&j);
    j += k;
    if (k == 0) first = biggest;
    if (!(biggest > tol * first) || !(biggest > 0.0)) break;
    if (j != k) {  // symmetric swap of k and j in the lower triangle (as Eigen's LDLT)
      G.row(k).head(k).swap(G.row(j).head(k));
      G.col(k).tail(n - j - 1).swap(G.col(j).tail(n - j - 1));
      std::swap(G(k, k), G(j, j));
      for (Index i = k + 1; i < j; ++i) std::swap(G(i, k), G(j, i));
      std::swap(diag(k), diag(j));
      std::swap(perm[static_cast<std::size_t>(k)], perm[static_cast<std::size_t>(j)]);
    }
    const Index rest = n - k - 1;
    if (k > 0 && rest > 0) {
      work.head(k) = d.head(k).cwiseProduct(G.row(k).head(k).transpose());
      G.col(k).tail(rest).noalias() -= G.bottomLeftCorner(rest, k) * work.head(k);
    }
    d(k) = diag(k);
    G(k, k) = d(k);
    if (rest > 0) {
      G.col(k).tail(rest) /= d(k);
      diag.tail(rest) -= d(k) * G.col(k).tail(rest).cwiseAbs2();
    }
  }
  d.conservativeResize(k);
  return k;
}

}  // namespace

DataSpan::DataSpan(const DataList& Xs, bool assume_centered, double rank_tolerance, int n_threads,
                   const std::function<void()>& interrupt_check) {
  validate_data(Xs);
  if (!(rank_tolerance >= 0.0 && rank_tolerance < 1.0))
    throw std::invalid_argument("rank_tolerance must be in [0, 1); got " + format_number(rank_tolerance));
  const int nt = resolve_threads(n_threads);
  const auto K = static_cast<Index>(Xs.size());
  const Index V = Xs.front().rows();
  n_features_ = V;
  offsets_.assign(Xs.size() + 1, 0);
  for (std::size_t k = 0; k < Xs.size(); ++k) offsets_[k + 1] = offsets_[k] + Xs[k].cols();
  const Index total = offsets_.back();

  // Means and traces t_k = tr S_k = ‖X_k − μ_k 1ᵀ‖²_F / N_k (two passes: no cancellation).
  means_ = Matrix::Zero(V, K);
  scales_.resize(K);
  Vector traces(K);
  for (Index k = 0; k < K; ++k) {
    const auto& X = Xs[static_cast<std::size_t>(k)];
    if (!assume_centered) means_.col(k) = X.rowwise().mean();
    double t = 0.0;
    for (Index j = 0; j < X.cols(); ++j) t += (X.col(j) - means_.col(k)).squaredNorm();
    traces(k) = t / static_cast<double>(X.cols());
    if (!std::isfinite(traces(k)))
      throw std::invalid_argument("dataset " + std::to_string(k) +
                                  " is too large in magnitude: its covariance overflows double precision");
    scales_(k) = traces(k) > 0.0 ? 1.0 / std::sqrt(t) : 0.0;  // 1/√(N_k t_k)
  }

  // G = F̂ᵀ F̂, accumulated over blocks of rows (lower triangle, tiles of columns in parallel).
  Matrix G = Matrix::Zero(total, total);
  {
    Matrix block(std::min(kGramRowBlock, V), total);
    for (Index v0 = 0; v0 < V; v0 += kGramRowBlock) {
      const Index rows = std::min(kGramRowBlock, V - v0);
      fill_rows(Xs, v0, rows, block);
      detail::gram_tn_lower(block.topRows(rows), G, nt);
      if (interrupt_check) interrupt_check();
    }
  }
  detail::symmetrize_from_lower(G);

  // G(perm, perm) ≈ L D Lᵀ over the first r pivots; B = F̂(:, perm[0..r)) L11⁻ᵀ D^{-1/2} is an
  // orthonormal basis of the span and C = Bᵀ F̂ = D^{1/2} L(perm⁻¹ order)ᵀ.
  std::vector<Index> perm;
  const Index r = pivoted_ldlt(G, rank_tolerance, V, perm, pivots_);
  L11_ = G.topLeftCorner(r, r).triangularView<Eigen::StrictlyLower>();
  pivot_cols_.assign(perm.begin(), perm.begin() + r);
  Matrix C(r, total);
  for (Index i = 0; i < total; ++i) {
    Vector row = G.row(i).head(std::min(i, r)).transpose();  // row i of L (pivot order)
    auto c = C.col(perm[static_cast<std::size_t>(i)]);
    c.head(row.size()) = row;
    if (i < r) c(i) = 1.0;
    c.tail(r - std::min(i + 1, r)).setZero();
    c.array() *= pivots_.array().sqrt();
  }
  G.resize(0, 0);

  // C_k = Bᵀ F_k = √t_k Bᵀ F̂_k.
  datasets_.clear();
  datasets_.reserve(Xs.size());
  for (Index k = 0; k < K; ++k) {
    const Index n = Xs[static_cast<std::size_t>(k)].cols();
    Matrix Ck = r > 0 ? Matrix(std::sqrt(traces(k)) * C.middleCols(offsets_[static_cast<std::size_t>(k)], n))
                      : Matrix::Zero(1, n);  // no variance at all: a zero factor keeps the sizes valid
    datasets_.push_back(Dataset::from_factor(std::move(Ck), n, V, traces(k)));
  }
}

Matrix DataSpan::apply_w(const Eigen::Ref<const Matrix>& Y) const {
  const Index r = rank();
  Matrix X = pivots_.cwiseSqrt().cwiseInverse().asDiagonal() * Y;
  L11_.transpose().triangularView<Eigen::UnitUpper>().solveInPlace(X);
  Matrix out = Matrix::Zero(offsets_.back(), Y.cols());
  for (Index i = 0; i < r; ++i) out.row(pivot_cols_[static_cast<std::size_t>(i)]) = X.row(i);
  return out;
}

Matrix DataSpan::apply_wt(const Eigen::Ref<const Matrix>& T) const {
  const Index r = rank();
  Matrix X(r, T.cols());
  for (Index i = 0; i < r; ++i) X.row(i) = T.row(pivot_cols_[static_cast<std::size_t>(i)]);
  L11_.triangularView<Eigen::UnitLower>().solveInPlace(X);
  return pivots_.cwiseSqrt().cwiseInverse().asDiagonal() * X;
}

void DataSpan::fill_rows(const DataList& Xs, Index v0, Index rows, Matrix& block) const {
  for (std::size_t k = 0; k < Xs.size(); ++k) {
    const auto& X = Xs[k];
    block.block(0, offsets_[k], rows, X.cols()) =
        (X.middleRows(v0, rows).colwise() - means_.col(static_cast<Index>(k)).segment(v0, rows)) *
        scales_(static_cast<Index>(k));
  }
}

void DataSpan::check_same_data(const DataList& Xs) const {
  bool same = Xs.size() + 1 == offsets_.size();
  for (std::size_t k = 0; same && k < Xs.size(); ++k)
    same = Xs[k].rows() == n_features_ && Xs[k].cols() == offsets_[k + 1] - offsets_[k];
  if (!same)
    throw std::invalid_argument("Xs must be the " + std::to_string(offsets_.size() - 1) +
                                " matrices this DataSpan was built from (V=" + std::to_string(n_features_) + ")");
}

Matrix DataSpan::to_features(const DataList& Xs, const Eigen::Ref<const Matrix>& Y, int n_threads) const {
  check_same_data(Xs);
  if (Y.rows() != rank())
    throw std::invalid_argument("Y must have rank()=" + std::to_string(rank()) + " rows; got " +
                                std::to_string(Y.rows()));
  const Index V = n_features_, total = offsets_.back(), m = Y.cols();
  const Matrix Z = apply_w(Y);  // (ΣN, m)
  Matrix out(V, m);
  const Index n_blocks = (V + kRowBlock - 1) / kRowBlock;
  const int nt = static_cast<int>(std::min<Index>(
      detail::threads_for(static_cast<double>(V) * static_cast<double>(total) * static_cast<double>(m),
                          resolve_threads(n_threads)),
      n_blocks));
#ifdef METAGLASSO_HAVE_OPENMP
#pragma omp parallel num_threads(nt) if (nt > 1)
#endif
  {
    Matrix block(std::min(kRowBlock, V), total);
#ifdef METAGLASSO_HAVE_OPENMP
#pragma omp for schedule(static)
#endif
    for (Index b = 0; b < n_blocks; ++b) {
      const Index v0 = b * kRowBlock, rows = std::min(kRowBlock, V - v0);
      fill_rows(Xs, v0, rows, block);
      detail::product_nn(block.topRows(rows), Z, out.middleRows(v0, rows), 1);
    }
  }
  (void)nt;
  return out;
}

Matrix DataSpan::to_span(const DataList& Xs, const Eigen::Ref<const Matrix>& Z, int n_threads) const {
  check_same_data(Xs);
  if (Z.rows() != n_features_)
    throw std::invalid_argument("Z must have n_features=" + std::to_string(n_features_) + " rows; got " +
                                std::to_string(Z.rows()));
  const Index V = n_features_, total = offsets_.back(), m = Z.cols();
  const int nt = resolve_threads(n_threads);
  // F̂ᵀ Z summed over blocks of rows in a fixed order; each block's product split by output rows.
  Matrix T = Matrix::Zero(total, m), part(total, m), block(std::min(kRowBlock, V), total);
  for (Index v0 = 0; v0 < V; v0 += kRowBlock) {
    const Index rows = std::min(kRowBlock, V - v0);
    fill_rows(Xs, v0, rows, block);
    detail::product_tn(block.topRows(rows), Z.middleRows(v0, rows), part, nt);
    T += part;
  }
  return apply_wt(T);
}

Matrix DataSpan::basis(const DataList& Xs, int n_threads) const {
  return to_features(Xs, Matrix::Identity(rank(), rank()), n_threads);
}

Matrix DataSpan::pca_start(const DataList& Xs, Index m, int n_threads) const {
  if (m < 1 || m >= rank())
    throw std::invalid_argument("n_components must satisfy 1 <= n_components < rank of the data span; got "
                                "n_components=" + std::to_string(m) + ", rank=" + std::to_string(rank()));
  Matrix E = pca_initial_projection(datasets_, m, n_threads);
  fix_column_signs(to_features(Xs, E, n_threads), E);
  return E;
}

Matrix DataSpan::project_start(const DataList& Xs, const Eigen::Ref<const Matrix>& D0, int n_threads) const {
  const Index m = D0.cols();
  if (m < 1 || m >= rank())
    throw std::invalid_argument("n_components must satisfy 1 <= n_components < rank of the data span; got "
                                "n_components=" + std::to_string(m) + ", rank=" + std::to_string(rank()));
  if (!D0.allFinite()) throw std::invalid_argument("the start D0 contains NaN or infinite values");
  const Matrix E = to_span(Xs, D0, n_threads);
  const Eigen::JacobiSVD<Matrix> svd(E);
  const Vector s = svd.singularValues();
  const double scale = D0.colwise().norm().maxCoeff();
  if (!(s(m - 1) > 1e-8 * scale))
    throw std::invalid_argument(
        "the start D0 is (nearly) orthogonal to the span of the centred data in some direction: smallest "
        "singular value of B^T D0 is " + format_number(s(m - 1)) + " (largest column norm of D0 " + format_number(scale) + ")");
  return polar_retraction(E);
}

}  // namespace metaglasso
