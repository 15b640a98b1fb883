// The tile products of products.hpp for one instruction set: METAGLASSO_SIMD_VARIANT names it
// (baseline when undefined); the build compiles this file once per variant with that variant's
// target flags.
//
// Every variant computes every output with the same operations in the same order, so the three
// give bit-identical results (and so does the whole fit, which is compiled once): a variant only
// decides how many of the independent operations one instruction carries and which outputs are
// computed together. The arithmetic is written on groups of eight doubles (Lanes), whose
// operations are element-wise; the rules are:
//   * an output that sums along a contiguous dimension (Aᵀ X) keeps eight partial sums, sum q
//     taking the terms l ≡ q (mod 8) in order, adds them in one fixed tree and then the remaining
//     n mod 8 terms in order;
//   * an output that sums along a strided dimension (A X, B Cᵀ, and Bᵀ C of the Gram passes after
//     packing) is accumulated term by term in order, in chunks of kRankChunk terms, each chunk's sum
//     added to the output in order;
//   * no multiply-add is fused (-ffp-contract=off): baseline x86-64 has no FMA instruction.
#include "products.hpp"

#include <algorithm>
#include <cstring>
#include <vector>

#ifndef METAGLASSO_SIMD_VARIANT
#define METAGLASSO_SIMD_VARIANT baseline
#endif
#define METAGLASSO_SIMD_CAT2(a, b) a##b
#define METAGLASSO_SIMD_CAT(a, b) METAGLASSO_SIMD_CAT2(a, b)
#define METAGLASSO_SIMD_STR2(a) #a
#define METAGLASSO_SIMD_STR(a) METAGLASSO_SIMD_STR2(a)

namespace metaglasso::detail::simd {

namespace {

// The machine vector of this variant and the tile sizes that keep its accumulators in registers.
// Tiles choose which outputs are computed together, never the order of an output's operations.
#if defined(__AVX512F__)
typedef double Native __attribute__((vector_size(64)));
constexpr int kDotI = 4, kDotJ = 4;  // Aᵀ X: outputs per tile (one vector each)
constexpr int kPanelQ = 8;           // B Cᵀ: 8 × kPanelQ outputs per tile
#elif defined(__AVX__)
typedef double Native __attribute__((vector_size(32)));
constexpr int kDotI = 2, kDotJ = 3;
constexpr int kPanelQ = 6;
#elif defined(__SSE2__) || defined(__aarch64__) || defined(__ARM_NEON)
typedef double Native __attribute__((vector_size(16)));
constexpr int kDotI = 2, kDotJ = 2;
constexpr int kPanelQ = 3;
#else
typedef double Native __attribute__((vector_size(8)));
constexpr int kDotI = 1, kDotJ = 2;
constexpr int kPanelQ = 2;
#endif

constexpr int kLanes = 8;
constexpr int kParts = kLanes * static_cast<int>(sizeof(double)) / static_cast<int>(sizeof(Native));
constexpr int kWidth = kLanes / kParts;

// Eight doubles as kParts machine vectors; every operation is element-wise.
struct Lanes {
  Native p[kParts];
};

inline Lanes zero() {
  Lanes v;
  for (int i = 0; i < kParts; ++i) v.p[i] = Native{};
  return v;
}

inline Lanes load(const double* x) {
  Lanes v;
  for (int i = 0; i < kParts; ++i) std::memcpy(&v.p[i], x + i * kWidth, sizeof(Native));
  return v;
}

inline void store(double* x, const Lanes& v) {
  for (int i = 0; i < kParts; ++i) std::memcpy(x + i * kWidth, &v.p[i], sizeof(Native));
}

// acc += a ⊙ b (products rounded, then sums rounded: no fused multiply-add).
inline void add_product(Lanes& acc, const Lanes& a, const Lanes& b) {
  for (int i = 0; i < kParts; ++i) acc.p[i] += a.p[i] * b.p[i];
}

// acc += a · s.
inline void add_scaled(Lanes& acc, const Lanes& a, double s) {
  for (int i = 0; i < kParts; ++i) acc.p[i] += a.p[i] * s;
}

// The fixed tree over the eight partial sums, then the tail terms a[l] x[l], l = n8 … n − 1, in order.
inline double finish_dot(const Lanes& acc, const double* a, const double* x, Idx n8, Idx n) {
  double s[kLanes];
  store(s, acc);
  double total = ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
  for (Idx l = n8; l < n; ++l) total += a[l] * x[l];
  return total;
}

constexpr Idx kDotChunk = 512;   // rows of Aᵀ X per pass over a block of outputs
constexpr Idx kDotBlock = 64;    // columns of A per block (their partial sums wait in a buffer)

// Aᵀ X for A (n, w), X (n, m): store(i, j, s) receives output (i, j) = Σ_l A(l, i) X(l, j) in the order of
// the file comment. The rows are taken in chunks of kDotChunk (a multiple of 8), for a block of columns of
// A at a time, with each output's eight partial sums kept in a buffer between chunks — the same operations
// in the same order as one pass, with the chunk of X read from cache for the whole block.
template <class Store>
void dots(Idx n, Idx w, Idx m, const double* A, Idx lda, const double* X, Idx ldx, const Store& out) {
  const Idx n8 = n - n % kLanes;
  thread_local std::vector<Lanes> buffer;
  for (Idx i0 = 0; i0 < w; i0 += kDotBlock) {
    const Idx bw = std::min(kDotBlock, w - i0);
    buffer.assign(static_cast<std::size_t>(bw * m), zero());
    Lanes* acc = buffer.data();  // output (i0 + i, j) at acc[i + j · bw]
    for (Idx l0 = 0; l0 < n8; l0 += kDotChunk) {
      const Idx l1 = std::min(n8, l0 + kDotChunk);
      for (Idx j0 = 0; j0 < m; j0 += kDotJ) {
        const Idx nj = std::min<Idx>(kDotJ, m - j0);
        for (Idx ii = 0; ii < bw; ii += kDotI) {
          const Idx ni = std::min<Idx>(kDotI, bw - ii);
          if (ni == kDotI && nj == kDotJ) {
            Lanes r[kDotI][kDotJ];
            for (int u = 0; u < kDotI; ++u)
              for (int v = 0; v < kDotJ; ++v) r[u][v] = acc[(ii + u) + (j0 + v) * bw];
            const double* a[kDotI];
            const double* x[kDotJ];
            for (int u = 0; u < kDotI; ++u) a[u] = A + (i0 + ii + u) * lda;
            for (int v = 0; v < kDotJ; ++v) x[v] = X + (j0 + v) * ldx;
            for (Idx l = l0; l < l1; l += kLanes) {
              Lanes xv[kDotJ];
              for (int v = 0; v < kDotJ; ++v) xv[v] = load(x[v] + l);
              for (int u = 0; u < kDotI; ++u) {
                const Lanes av = load(a[u] + l);
                for (int v = 0; v < kDotJ; ++v) add_product(r[u][v], av, xv[v]);
              }
            }
            for (int u = 0; u < kDotI; ++u)
              for (int v = 0; v < kDotJ; ++v) acc[(ii + u) + (j0 + v) * bw] = r[u][v];
          } else {
            for (Idx u = 0; u < ni; ++u)
              for (Idx v = 0; v < nj; ++v) {
                Lanes r = acc[(ii + u) + (j0 + v) * bw];
                const double* a = A + (i0 + ii + u) * lda;
                const double* x = X + (j0 + v) * ldx;
                for (Idx l = l0; l < l1; l += kLanes) add_product(r, load(a + l), load(x + l));
                acc[(ii + u) + (j0 + v) * bw] = r;
              }
          }
        }
      }
    }
    for (Idx j = 0; j < m; ++j)
      for (Idx i = 0; i < bw; ++i)
        out(i0 + i, j, finish_dot(acc[i + j * bw], A + (i0 + i) * lda, X + j * ldx, n8, n));
  }
}

// An operand of rank_update: a matrix (rows, n) whose element (i, l) is data[i + l · ld] when
// `by_columns` (its columns are contiguous) and data[l + i · ld] otherwise (its rows are).
struct Operand {
  const double* data;
  Idx ld;
  bool by_columns;
};

// Copies rows [i0, i0 + P) × terms [l0, l0 + len) of `a` into dst as dst[l · P + u] = a(i0 + u, l0 + l),
// with zeros for rows at or beyond `rows`.
template <int P>
void pack(const Operand& a, Idx rows, Idx i0, Idx l0, Idx len, double* dst) {
  const Idx nu = std::min<Idx>(P, rows - i0);
  if (a.by_columns && nu == P) {
    for (Idx l = 0; l < len; ++l) std::copy(a.data + i0 + (l0 + l) * a.ld, a.data + i0 + (l0 + l) * a.ld + P, dst + l * P);
  } else if (a.by_columns) {
    for (Idx l = 0; l < len; ++l) {
      const double* src = a.data + i0 + (l0 + l) * a.ld;
      for (Idx u = 0; u < P; ++u) dst[l * P + u] = u < nu ? src[u] : 0.0;
    }
  } else {
    for (Idx u = 0; u < P; ++u) {
      if (u < nu) {
        const double* src = a.data + l0 + (i0 + u) * a.ld;
        for (Idx l = 0; l < len; ++l) dst[l * P + u] = src[l];
      } else {
        for (Idx l = 0; l < len; ++l) dst[l * P + u] = 0.0;
      }
    }
  }
}

// G (r, w) += P Qᵀ for P (r, n) and Q (w, n): every output sums its terms in order, in chunks of
// kRankChunk terms whose sums are added to G in order. Per chunk, Q is packed into panels of kPanelQ rows
// and P, a block of kRankRows rows at a time, into panels of kPanelP rows (term by term), so that the
// micro-kernel reads both contiguously and the block stays in cache for every panel of Q.
constexpr Idx kRankChunk = 256;
constexpr Idx kRankRows = 128;
constexpr int kPanelP = kLanes;  // rows of P per panel: one Lanes

void rank_update(Idx r, Idx w, Idx n, const Operand& P, const Operand& Q, double* G, Idx ldg) {
  const Idx panels_q = (w + kPanelQ - 1) / kPanelQ;
  thread_local std::vector<double> packed_p, packed_q;
  packed_p.resize(static_cast<std::size_t>(kRankRows * kRankChunk));
  packed_q.resize(static_cast<std::size_t>(panels_q * kPanelQ * kRankChunk));
  for (Idx l0 = 0; l0 < n; l0 += kRankChunk) {
    const Idx len = std::min(kRankChunk, n - l0);
    for (Idx b = 0; b < panels_q; ++b)
      pack<kPanelQ>(Q, w, b * kPanelQ, l0, len, packed_q.data() + b * kPanelQ * len);
    for (Idx r0 = 0; r0 < r; r0 += kRankRows) {
      const Idx panels_p = (std::min(kRankRows, r - r0) + kPanelP - 1) / kPanelP;
      for (Idx b = 0; b < panels_p; ++b)
        pack<kPanelP>(P, r, r0 + b * kPanelP, l0, len, packed_p.data() + b * kPanelP * len);
      for (Idx bq = 0; bq < panels_q; ++bq) {
        const double* pq = packed_q.data() + bq * kPanelQ * len;
        const Idx j0 = bq * kPanelQ, nj = std::min<Idx>(kPanelQ, w - j0);
        for (Idx bp = 0; bp < panels_p; ++bp) {
          const double* pp = packed_p.data() + bp * kPanelP * len;
          Lanes acc[kPanelQ];
          for (int v = 0; v < kPanelQ; ++v) acc[v] = zero();
          for (Idx l = 0; l < len; ++l) {
            const Lanes a = load(pp + l * kPanelP);
            const double* c = pq + l * kPanelQ;
            for (int v = 0; v < kPanelQ; ++v) add_scaled(acc[v], a, c[v]);
          }
          const Idx i0 = r0 + bp * kPanelP, ni = std::min<Idx>(kPanelP, r - i0);
          for (Idx v = 0; v < nj; ++v) {
            double sums[kPanelP];
            store(sums, acc[v]);
            for (Idx u = 0; u < ni; ++u) G[(i0 + u) + (j0 + v) * ldg] += sums[u];
          }
        }
      }
    }
  }
}

void tn(Idx n, Idx w, Idx m, const double* A, Idx lda, const double* X, Idx ldx, double* Y, Idx ldy) {
  dots(n, w, m, A, lda, X, ldx, [&](Idx i, Idx j, double s) { Y[i + j * ldy] = s; });
}

// Y (h, m) = A X: rank_update of a zero Y with P = A, Q = Xᵀ.
void nn(Idx h, Idx n, Idx m, const double* A, Idx lda, const double* X, Idx ldx, double* Y, Idx ldy, double*) {
  for (Idx j = 0; j < m; ++j) std::fill(Y + j * ldy, Y + j * ldy + h, 0.0);
  rank_update(h, m, n, Operand{A, lda, true}, Operand{X, ldx, false}, Y, ldy);
}

void tn_add(Idx n, Idx r, Idx w, const double* B, Idx ldb, const double* C, Idx ldc, double* G, Idx ldg) {
  rank_update(r, w, n, Operand{B, ldb, false}, Operand{C, ldc, false}, G, ldg);  // P = Bᵀ, Q = Cᵀ
}

void nt_add(Idx n, Idx r, Idx w, const double* B, Idx ldb, const double* C, Idx ldc, double* G, Idx ldg) {
  rank_update(r, w, n, Operand{B, ldb, true}, Operand{C, ldc, true}, G, ldg);  // P = B, Q = C
}

void gemm(bool trans_a, Idx m, Idx n, Idx k, double alpha, const double* A, Idx lda, const double* B, Idx ldb,
          double beta, double* C, Idx ldc) {
  // C = α op(A) B + β C, each output as α·s + β·c (β = 0: α·s), s summed as tn (trans_a) or nn does.
  auto out = [&](Idx i, Idx j, double s) {
    double& c = C[i + j * ldc];
    c = beta == 0.0 ? alpha * s : alpha * s + beta * c;
  };
  if (trans_a) {
    dots(k, m, n, A, lda, B, ldb, out);
    return;
  }
  thread_local std::vector<double> sums;
  sums.assign(static_cast<std::size_t>(m * n), 0.0);
  rank_update(m, n, k, Operand{A, lda, true}, Operand{B, ldb, false}, sums.data(), m);
  for (Idx j = 0; j < n; ++j)
    for (Idx i = 0; i < m; ++i) out(i, j, sums[static_cast<std::size_t>(i + j * m)]);
}

}  // namespace

Products METAGLASSO_SIMD_CAT(products_, METAGLASSO_SIMD_VARIANT)() {
  return Products{METAGLASSO_SIMD_STR(METAGLASSO_SIMD_VARIANT), &tn, &nn, &tn_add, &nt_add, &gemm};
}

}  // namespace metaglasso::detail::simd
