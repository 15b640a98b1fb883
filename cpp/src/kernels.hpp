// Internal product kernels of the core: GEMM-shaped passes split into fixed tiles of output
// rows or columns, run on OpenMP threads above a size threshold, with the widest instruction set
// the CPU supports (simd/products.hpp).
//
// A tile's result is computed by the same product whatever the number of threads (whether and how
// a product is tiled depends only on the shapes), and no tile is split along the summation
// dimension, so every kernel gives bit-identical results for every thread count — and, the
// products of every instruction set agreeing bit for bit, for every instruction set.
#pragma once

#include <cstdio>
#include <exception>
#include <string>

#include "metaglasso/common.hpp"

namespace metaglasso::detail {

/// Products with fewer multiply-adds (about 4 ms of serial work) run serially. Small products
/// lose to the cost of a parallel region (on two cores a 500 × 50 × 10 product is 20× slower
/// threaded), and where the two cores share one core's floating-point units, as on some virtual
/// machines, waiting threads that spin between regions slow even 2·10⁷ multiply-add products
/// down several times.
constexpr double kParallelMacs = 5.0e7;

/// `n_threads` when a product of `macs` multiply-adds is worth threading, else 1.
inline int threads_for(double macs, int n_threads) { return macs >= kParallelMacs ? n_threads : 1; }

/// Y = Aᵀ X.  @param A (n, p), @param X (n, m), @param Y (p, m), sized by the caller.
/// Tiles of rows of Y (columns of A) from kParallelMacs multiply-adds on: each tile sums over all n.
void product_tn(const Eigen::Ref<const Matrix>& A, const Eigen::Ref<const Matrix>& X, Eigen::Ref<Matrix> Y,
                int n_threads);

/// Y = A X.  @param A (p, n), @param X (n, m), @param Y (p, m), sized by the caller.
/// Tiles of rows of Y (rows of A) from kParallelMacs multiply-adds on.
void product_nn(const Eigen::Ref<const Matrix>& A, const Eigen::Ref<const Matrix>& X, Eigen::Ref<Matrix> Y,
                int n_threads);

/// Lower triangle of G += Aᵀ A.  @param A (n, p), @param G (p, p). Tiles of columns of G.
void gram_tn_lower(const Eigen::Ref<const Matrix>& A, Eigen::Ref<Matrix> G, int n_threads);

/// Lower triangle of G += A Aᵀ.  @param A (p, n), @param G (p, p). Tiles of columns of G.
void gram_nt_lower(const Eigen::Ref<const Matrix>& A, Eigen::Ref<Matrix> G, int n_threads);

/// C = α op(A) B + β C, serial, with op(A) = A, or Aᵀ when `trans_a`; C sized by the caller (β = 0
/// ignores its contents). For the (d, M) × (M, M) and (M, d) × (d, M) products of the solvers,
/// which run with the same instruction set as the large products.
void gemm(bool trans_a, double alpha, const Eigen::Ref<const Matrix>& A, const Eigen::Ref<const Matrix>& B,
          double beta, Eigen::Ref<Matrix> C);

/// Relative threshold below which a variance counts as zero: a factor or the noise with less than
/// kDegenerateVariance × tr(S)/V of a dataset's variance makes the objective unbounded below.
constexpr double kDegenerateVariance = 1e-10;

/// `x` with six significant digits, for error messages.
inline std::string format_number(double x) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.6g", x);
  return buf;
}

/// body(i) for i = 0 … n − 1, on `n_threads` threads when `parallel` (dynamic schedule), else in
/// order. An exception thrown by a body is rethrown after the loop: the one of the smallest i, so
/// that the error does not depend on the threads (the remaining iterations still run in parallel,
/// and are skipped in the serial loop).
template <class Body>
void for_each_index(Index n, int n_threads, bool parallel, const Body& body) {
  std::exception_ptr error;
  Index error_index = n;
  auto guarded = [&](Index i) {
    try {
      body(i);
    } catch (...) {
#ifdef METAGLASSO_HAVE_OPENMP
#pragma omp critical(metaglasso_for_each_error)
#endif
      if (i < error_index) {
        error_index = i;
        error = std::current_exception();
      }
    }
  };
  if (parallel && n_threads > 1 && n > 1) {
#ifdef METAGLASSO_HAVE_OPENMP
#pragma omp parallel for num_threads(n_threads) schedule(dynamic, 1)
#endif
    for (Index i = 0; i < n; ++i) guarded(i);
  } else {
    for (Index i = 0; i < n && !error; ++i) guarded(i);
  }
  if (error) std::rethrow_exception(error);
}

/// Copies the strict lower triangle of G onto its upper triangle.
void symmetrize_from_lower(Eigen::Ref<Matrix> G);

/// G ← (G + Gᵀ) / 2 in place, without a temporary.
void symmetrize_average(Eigen::Ref<Matrix> G);

}  // namespace metaglasso::detail
