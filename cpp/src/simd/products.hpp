// GEMM-shaped tile products compiled once per x86 instruction set and chosen at run time.
//
// A portable build targets baseline x86-64 (SSE2): two doubles per instruction. products.cpp is
// therefore compiled three times — baseline, AVX2 and AVX-512 — and `products()` picks the widest
// variant the CPU and the operating system support, once per process. The variants are written so
// that they compute every output with the same operations in the same order (products.cpp): their
// results are bit-identical, and so is every fit, whatever the CPU. This header uses no Eigen type:
// pointers, sizes and column strides (column-major, leading dimensions ≥ rows) only.
#pragma once

#include <cstddef>

namespace metaglasso::detail::simd {

using Idx = std::ptrdiff_t;

/// One instruction set's products. Every matrix is column-major with the given leading dimension.
struct Products {
  const char* name;  ///< "baseline", "avx2" or "avx512"
  /// Y (w, m) = Aᵀ X with A (n, w), X (n, m).
  void (*tn)(Idx n, Idx w, Idx m, const double* A, Idx lda, const double* X, Idx ldx, double* Y, Idx ldy);
  /// Y (h, m) = A X with A (h, n), X (n, m); `work` holds m·h doubles.
  void (*nn)(Idx h, Idx n, Idx m, const double* A, Idx lda, const double* X, Idx ldx, double* Y, Idx ldy,
             double* work);
  /// G (r, w) += Bᵀ C with B (n, r), C (n, w).
  void (*tn_add)(Idx n, Idx r, Idx w, const double* B, Idx ldb, const double* C, Idx ldc, double* G, Idx ldg);
  /// G (r, w) += B Cᵀ with B (r, n), C (w, n).
  void (*nt_add)(Idx n, Idx r, Idx w, const double* B, Idx ldb, const double* C, Idx ldc, double* G, Idx ldg);
  /// C (m, n) = α op(A) B + β C with op(A) = A (m, k) or, when `trans_a`, Aᵀ for A (k, m); B (k, n).
  /// β = 0 ignores the previous contents of C.
  void (*gemm)(bool trans_a, Idx m, Idx n, Idx k, double alpha, const double* A, Idx lda, const double* B, Idx ldb,
               double beta, double* C, Idx ldc);
};

Products products_baseline();
#ifdef METAGLASSO_SIMD_X86
Products products_avx2();
Products products_avx512();
#endif

/// The variant used by this process: the widest one the CPU supports, or a narrower one named by
/// the environment variable METAGLASSO_SIMD ("baseline", "avx2", "avx512"; a wider one than the
/// CPU supports is not taken). Chosen at the first call.
const Products& products();

}  // namespace metaglasso::detail::simd
