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

// Calls body(first, size) for the tiles [first, first + size) of [0, n), `tile` wide, on up to
// `n_threads` threads. Which tile computes what depends only on n and tile.
template <class Body>
void for_tiles(Index n, Index tile, int n_threads, const Body& body) {
  const Index n_tiles = (n + tile - 1) / tile;
  const int nt = static_cast<int>(std::min<Index>(n_threads, n_tiles));
#ifdef METAGLASSO_HAVE_OPENMP
#pragma omp parallel for num_threads(nt) schedule(dynamic, 1) if (nt > 1)
#endif
  for (Index t = 0; t < n_tiles; ++t) body(t * tile, std::min(tile, n - t * tile));
  (void)nt;
}

// Tile height of a product of `macs` multiply-adds with n output rows: the whole when it runs
// serially, else tile_rows(n, min_rows).
Index product_tile(double macs, Index n, Index min_rows) { return macs >= kParallelMacs ? tile_rows(n, min_rows) : n; }

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
  for_tiles(p, product_tile(macs, p, 32), threads_for(macs, n_threads), [&](Index j0, Index w) {
    simd::products().tn(n, w, m, A.data() + j0 * A.outerStride(), A.outerStride(), X.data(), X.outerStride(),
                        Y.data() + j0, Y.outerStride());
  });
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
  for_tiles(p, product_tile(macs, p, 64), threads_for(macs, n_threads), [&](Index i0, Index h) {
    simd::products().nn(h, n, m, A.data() + i0, A.outerStride(), X.data(), X.outerStride(), Y.data() + i0,
                        Y.outerStride(), scratch(m * h));
  });
}

void gram_tn_lower(const Eigen::Ref<const Matrix>& A, Eigen::Ref<Matrix> G, int n_threads) {
  const Index n = A.rows(), p = A.cols();
  if (n == 0 || p == 0) return;
  const double macs = 0.5 * static_cast<double>(n) * p * p;
  for_tiles(p, kGramTile, threads_for(macs, n_threads), [&](Index j0, Index w) {
    const double* a = A.data() + j0 * A.outerStride();
    simd::products().tn_add(n, p - j0, w, a, A.outerStride(), a, A.outerStride(),
                            G.data() + j0 + j0 * G.outerStride(), G.outerStride());
  });
}

void gram_nt_lower(const Eigen::Ref<const Matrix>& A, Eigen::Ref<Matrix> G, int n_threads) {
  const Index p = A.rows(), n = A.cols();
  if (n == 0 || p == 0) return;
  const double macs = 0.5 * static_cast<double>(n) * p * p;
  for_tiles(p, kGramTile, threads_for(macs, n_threads), [&](Index j0, Index w) {
    const double* a = A.data() + j0;
    simd::products().nt_add(n, p - j0, w, a, A.outerStride(), a, A.outerStride(),
                            G.data() + j0 + j0 * G.outerStride(), G.outerStride());
  });
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
