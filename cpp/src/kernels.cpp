#include "kernels.hpp"

#include <algorithm>
#include <stdexcept>
#include <vector>

#include "simd/products.hpp"

namespace metaglasso::detail {

namespace {

// Tile height for a row-split product with n output rows: about eight tiles (enough to balance
// a few threads), at least `min_rows`, rounded up to a multiple of 8. Depends only on the shape.
Index tile_rows(Index n, Index min_rows) {
  Index t = (n + 7) / 8;
  t = std::max(t, min_rows);
  return std::min(n, (t + 7) / 8 * 8);
}

constexpr Index kGramTile = 128;  // columns of G per tile in the Gram kernels

// Per-thread scratch of at least n doubles, grown on demand and reused across calls (the thread
// pool's threads persist, so the iterations of a fit allocate nothing here after the first).
double* scratch(Index n) {
  thread_local std::vector<double> buffer;
  if (static_cast<Index>(buffer.size()) < n) buffer.resize(static_cast<std::size_t>(n));
  return buffer.data();
}

}  // namespace

void product_tn(const Eigen::Ref<const Matrix>& A, const Eigen::Ref<const Matrix>& X, Eigen::Ref<Matrix> Y,
                int n_threads) {
  const Index n = A.rows(), p = A.cols(), m = X.cols();
  if (p == 0 || m == 0) return;
  if (n == 0) {
    Y.setZero();
    return;
  }
  const double macs = static_cast<double>(n) * p * m;
  const Index tile = macs >= kParallelMacs ? tile_rows(p, 32) : p;  // small: one product
  const Index n_tiles = (p + tile - 1) / tile;
  const int nt = static_cast<int>(std::min<Index>(threads_for(macs, n_threads), n_tiles));
#ifdef METAGLASSO_HAVE_OPENMP
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
#endif
  for (Index t = 0; t < n_tiles; ++t) {
    const Index j0 = t * tile, w = std::min(tile, p - j0);
    simd::products().tn(n, w, m, A.data() + j0 * A.outerStride(), A.outerStride(), X.data(), X.outerStride(),
                        Y.data() + j0, Y.outerStride());
  }
  (void)nt;
}

void product_nn(const Eigen::Ref<const Matrix>& A, const Eigen::Ref<const Matrix>& X, Eigen::Ref<Matrix> Y,
                int n_threads) {
  const Index p = A.rows(), n = A.cols(), m = X.cols();
  if (p == 0 || m == 0) return;
  if (n == 0) {
    Y.setZero();
    return;
  }
  const double macs = static_cast<double>(n) * p * m;
  const Index tile = macs >= kParallelMacs ? tile_rows(p, 64) : p;  // small: one product
  const Index n_tiles = (p + tile - 1) / tile;
  const int nt = static_cast<int>(std::min<Index>(threads_for(macs, n_threads), n_tiles));
#ifdef METAGLASSO_HAVE_OPENMP
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
#endif
  for (Index t = 0; t < n_tiles; ++t) {
    const Index i0 = t * tile, h = std::min(tile, p - i0);
    simd::products().nn(h, n, m, A.data() + i0, A.outerStride(), X.data(), X.outerStride(), Y.data() + i0,
                        Y.outerStride(), scratch(m * h));
  }
  (void)nt;
}

void gram_tn_lower(const Eigen::Ref<const Matrix>& A, Eigen::Ref<Matrix> G, int n_threads) {
  const Index n = A.rows(), p = A.cols();
  if (n == 0 || p == 0) return;
  const Index n_tiles = (p + kGramTile - 1) / kGramTile;
  const int nt = static_cast<int>(std::min<Index>(threads_for(0.5 * static_cast<double>(n) * p * p, n_threads), n_tiles));
#ifdef METAGLASSO_HAVE_OPENMP
#pragma omp parallel for num_threads(nt) schedule(dynamic, 1) if (nt > 1)
#endif
  for (Index t = 0; t < n_tiles; ++t) {
    const Index j0 = t * kGramTile, w = std::min(kGramTile, p - j0);
    const double* a = A.data() + j0 * A.outerStride();
    simd::products().tn_add(n, p - j0, w, a, A.outerStride(), a, A.outerStride(), G.data() + j0 + j0 * G.outerStride(),
                            G.outerStride());
  }
  (void)nt;
}

void gram_nt_lower(const Eigen::Ref<const Matrix>& A, Eigen::Ref<Matrix> G, int n_threads) {
  const Index p = A.rows(), n = A.cols();
  if (n == 0 || p == 0) return;
  const Index n_tiles = (p + kGramTile - 1) / kGramTile;
  const int nt = static_cast<int>(std::min<Index>(threads_for(0.5 * static_cast<double>(n) * p * p, n_threads), n_tiles));
#ifdef METAGLASSO_HAVE_OPENMP
#pragma omp parallel for num_threads(nt) schedule(dynamic, 1) if (nt > 1)
#endif
  for (Index t = 0; t < n_tiles; ++t) {
    const Index j0 = t * kGramTile, w = std::min(kGramTile, p - j0);
    const double* a = A.data() + j0;
    simd::products().nt_add(n, p - j0, w, a, A.outerStride(), a, A.outerStride(), G.data() + j0 + j0 * G.outerStride(),
                            G.outerStride());
  }
  (void)nt;
}

void gemm(bool trans_a, double alpha, const Eigen::Ref<const Matrix>& A, const Eigen::Ref<const Matrix>& B,
          double beta, Eigen::Ref<Matrix> C) {
  const Index m = trans_a ? A.cols() : A.rows(), k = trans_a ? A.rows() : A.cols(), n = B.cols();
  if (B.rows() != k || C.rows() != m || C.cols() != n)
    throw std::invalid_argument("gemm: incompatible shapes");
  if (m == 0 || n == 0) return;
  if (k == 0) {
    if (beta == 0.0)
      C.setZero();
    else
      C *= beta;
    return;
  }
  simd::products().gemm(trans_a, m, n, k, alpha, A.data(), A.outerStride(), B.data(), B.outerStride(), beta,
                        C.data(), C.outerStride());
}

void symmetrize_from_lower(Eigen::Ref<Matrix> G) {
  const Index p = G.rows();
  for (Index j = 1; j < p; ++j)
    for (Index i = 0; i < j; ++i) G(i, j) = G(j, i);
}

void symmetrize_average(Eigen::Ref<Matrix> G) {
  const Index p = G.rows();
  for (Index j = 1; j < p; ++j)
    for (Index i = 0; i < j; ++i) G(i, j) = G(j, i) = 0.5 * (G(i, j) + G(j, i));
}

}  // namespace metaglasso::detail
