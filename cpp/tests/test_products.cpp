// The tile products of every instruction set compute each output with the documented operations in
// the documented order (cpp/src/simd/products.cpp), so the variants agree bit for bit.
#include <doctest/doctest.h>

#include <Eigen/Core>
#include <cmath>
#include <array>
#include <functional>
#include <string>
#include <vector>

#include "metaglasso/metaglasso.hpp"
#include "simd/products.hpp"

using metaglasso::Index;
using metaglasso::Matrix;
namespace simd = metaglasso::detail::simd;

namespace {

// The variants this machine runs.
std::vector<simd::Products> variants() {
  std::vector<simd::Products> out = {simd::products_baseline()};
#ifdef METAGLASSO_SIMD_X86
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx2")) out.push_back(simd::products_avx2());
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
      __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl"))
    out.push_back(simd::products_avx512());
#endif
  return out;
}

Matrix random_matrix(Index rows, Index cols, std::uint64_t seed) {
  metaglasso::SplitMix64 rng(seed);
  Matrix A(rows, cols);
  for (Index j = 0; j < cols; ++j)
    for (Index i = 0; i < rows; ++i) A(i, j) = rng.uniform() - 0.5;
  return A;
}

// Σ_l a[l] x[l] as the file comment of products.cpp states it: eight partial sums (sum q over
// l ≡ q mod 8, in order), the tree ((s0 + s1) + (s2 + s3)) + ((s4 + s5) + (s6 + s7)), then the tail.
double dot_in_order(const double* a, const double* x, Index n) {
  double s[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  const Index n8 = n - n % 8;
  for (Index l = 0; l < n8; ++l) {
    const volatile double product = a[l] * x[l];  // rounded on its own, as without fused multiply-adds
    s[l % 8] += product;
  }
  double total = ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
  for (Index l = n8; l < n; ++l) {
    const volatile double product = a[l] * x[l];
    total += product;
  }
  return total;
}

// Σ_l p(l) q(l) term by term in chunks of 256, each chunk's sum added to `start` in order.
double sum_in_chunks(double start, Index n, const std::function<double(Index)>& term) {
  double total = start;
  for (Index l0 = 0; l0 < n; l0 += 256) {
    double chunk = 0.0;
    for (Index l = l0; l < std::min<Index>(n, l0 + 256); ++l) {
      const volatile double t = term(l);
      chunk += t;
    }
    total += chunk;
  }
  return total;
}

bool same(const Matrix& a, const Matrix& b) { return a.rows() == b.rows() && a.cols() == b.cols() && a == b; }

}  // namespace

TEST_CASE("every instruction set computes the products in the documented order, bit for bit") {
  const auto all = variants();
  MESSAGE("instruction sets compared: " << all.size());
  // Sizes with tails of every kind: fewer rows than a vector, remainders mod 8 and mod the tiles, more
  // than one chunk of the summation (512 for Aᵀ X, 256 for the others) and of the row blocks (128).
  const std::vector<std::array<Index, 3>> shapes = {{1, 1, 1}, {7, 3, 2}, {9, 5, 7}, {37, 17, 11},
                                                     {600, 13, 20}, {1100, 70, 9}, {300, 141, 23}};
  for (const auto& shape : shapes) {
    const Index n = shape[0], w = shape[1], m = shape[2];
    CAPTURE(n);
    CAPTURE(w);
    CAPTURE(m);
    // Leading dimensions larger than the rows, as for the blocks of a larger matrix.
    const Matrix A = random_matrix(n + 3, w, 1), X = random_matrix(n + 2, m, 2);
    const Matrix H = random_matrix(w + 5, n, 3), Y0 = random_matrix(w, m, 4);
    for (const auto& p : all) {
      CAPTURE(std::string(p.name));
      // tn: Y = Aᵀ X, each output dot_in_order.
      Matrix Y(w + 1, m);
      p.tn(n, w, m, A.data(), A.outerStride(), X.data(), X.outerStride(), Y.data(), Y.outerStride());
      Matrix expect(w, m);
      for (Index j = 0; j < m; ++j)
        for (Index i = 0; i < w; ++i) expect(i, j) = dot_in_order(A.col(i).data(), X.col(j).data(), n);
      CHECK(same(Y.topRows(w), expect));
      CHECK((Y.topRows(w) - A.topRows(n).transpose() * X.topRows(n)).cwiseAbs().maxCoeff() <= 1e-12 * n);

      // nn: Y (w, m) = H (w, n) X (n, m), each output summed in order in chunks.
      Matrix Z(w + 2, m);
      std::vector<double> work(static_cast<std::size_t>(w * m));
      p.nn(w, n, m, H.data(), H.outerStride(), X.data(), X.outerStride(), Z.data(), Z.outerStride(), work.data());
      for (Index j = 0; j < m; ++j)
        for (Index i = 0; i < w; ++i)
          expect(i, j) = sum_in_chunks(0.0, n, [&](Index l) { return H(i, l) * X(l, j); });
      CHECK(same(Z.topRows(w), expect));

      // tn_add: G (w, m) += Aᵀ X by the packed rank update: in order, in chunks.
      Matrix G = Y0;
      p.tn_add(n, w, m, A.data(), A.outerStride(), X.data(), X.outerStride(), G.data(), G.outerStride());
      for (Index j = 0; j < m; ++j)
        for (Index i = 0; i < w; ++i)
          expect(i, j) = sum_in_chunks(Y0(i, j), n, [&](Index l) { return A(l, i) * X(l, j); });
      CHECK(same(G, expect));

      // nt_add: G (w, m) += H Kᵀ with K (m, n).
      const Matrix K = random_matrix(m + 1, n, 5);
      G = Y0;
      p.nt_add(n, w, m, H.data(), H.outerStride(), K.data(), K.outerStride(), G.data(), G.outerStride());
      for (Index j = 0; j < m; ++j)
        for (Index i = 0; i < w; ++i)
          expect(i, j) = sum_in_chunks(Y0(i, j), n, [&](Index l) { return H(i, l) * K(j, l); });
      CHECK(same(G, expect));

      // gemm: C = α op(A) B + β C as α·s + β·c.
      for (const bool trans : {true, false}) {
        Matrix C = Y0;
        const double alpha = -0.75, beta = 0.5;
        if (trans) {
          p.gemm(true, w, m, n, alpha, A.data(), A.outerStride(), X.data(), X.outerStride(), beta, C.data(),
                 C.outerStride());
          for (Index j = 0; j < m; ++j)
            for (Index i = 0; i < w; ++i)
              expect(i, j) = alpha * dot_in_order(A.col(i).data(), X.col(j).data(), n) + beta * Y0(i, j);
        } else {
          p.gemm(false, w, m, n, alpha, H.data(), H.outerStride(), X.data(), X.outerStride(), beta, C.data(),
                 C.outerStride());
          for (Index j = 0; j < m; ++j)
            for (Index i = 0; i < w; ++i)
              expect(i, j) =
                  alpha * sum_in_chunks(0.0, n, [&](Index l) { return H(i, l) * X(l, j); }) + beta * Y0(i, j);
        }
        CHECK(same(C, expect));
      }
    }
  }
}
