// Graphical lasso (Friedman, Hastie & Tibshirani 2008) with exact covariance thresholding (Witten,
// Friedman & Simon 2011; Mazumder & Hastie, JMLR 2012): the problem splits into the connected
// components of |S_ij| > ρ, each solved by block coordinate descent over the columns — on the dual
// first, on the primal (P-GLASSO, Mazumder & Hastie, EJS 2012) with a Newton finish when needed —
// and stopped on a duality gap.
//
// Dual sweeps (dual_phase). The dual maximises log|W| over the box |W_ij − S_ij| ≤ ρ; maximising
// over one column of W is the dual of a lasso in W₁₁, which is solved exactly, and w₁₂ follows from
// the lasso's gradient. No inverse and no O(p²) update is involved, so a sweep costs O(p² k + p k³)
// for supports of size k, and on the ill-conditioned, densely correlated S of factor models these
// sweeps converge in a few dozen iterations where the primal ones need hundreds. The primal iterate
// Θ is read off the column lassos and certified by its own duality gap.
//
// Primal sweeps (primal_sweeps), the fallback, and the refinement of a warm start that does not
// map to a positive definite dual point. Column j of Θ = [Θ₁₁ θ₁₂; θ₁₂ᵀ θ₂₂] is updated with Θ₁₁
// fixed. Minimising the objective over θ₂₂ gives the Schur complement θ₂₂ − θ₁₂ᵀΘ₁₁⁻¹θ₁₂ = 1/w₂₂
// (w₂₂ = s₂₂, plus ρ when the diagonal is penalised); substituting it leaves the lasso
//   minimise_β  ½ w₂₂ βᵀ Θ₁₁⁻¹ β + s₁₂ᵀ β + ρ ‖β‖₁,     θ₁₂ = β,  θ₂₂ = 1/w₂₂ + βᵀ Θ₁₁⁻¹ β.
// Whatever β is, the Schur complement stays 1/w₂₂ > 0, so Θ stays positive definite at every step.
// Θ₁₁⁻¹ = W₁₁ − w₁₂w₁₂ᵀ/W₂₂ is read off the current W = Θ⁻¹, which is kept up to date by a rank-two
// update per column (O(p²)) and recomputed from a Cholesky factor of Θ whenever it is used for more
// than the sweeps. Both kinds of sweep solve their column lassos exactly by an active-set method:
// the linear system on the support with the current signs is solved directly, entries whose sign
// would flip are dropped, and a coordinate-descent pass brings in the KKT violators, until the
// column's KKT conditions hold. Columns whose support exceeds the direct-solve cap fall back to
// coordinate descent with the same exact finish.
//
// Newton (newton_phase). Once a primal sweep leaves the sign pattern of Θ (nearly) unchanged,
// Newton's method is run on the objective restricted to that pattern — smooth and self-concordant
// there (Nesterov & Nemirovski 1994) — with damped steps, each checked positive definite by
// Cholesky. Entries that the Newton step carries through zero are dropped (the step is projected
// onto the orthant of Θ, with backtracking on the objective, as in orthant-wise and two-metric
// projection methods: Andrew & Gao 2007, Bertsekas 1982; Olsen et al. 2012 for this problem);
// entries missing from the pattern are brought in by the sweeps. The Newton system
// P_E(W D W) = −G_E on a pattern E is solved through the dense Hessian when E is small and otherwise
// by conjugate gradients preconditioned by P_E(Θ R Θ) — the exact inverse of the Hessian W ⊗ W on
// the full space — whose products cost only O(|E| · degree) as Θ is supported on E.
//
// Stopping. The gap is computed without cancellation (gap_from_factor) on the iterate and its exact
// inverse, only when a prediction says it may be within tol·p (it costs a few p³ flops). As the
// gap bounds some errors of Θ only through their squares, a converged Θ must also satisfy the KKT
// conditions to tol (kkt_residual); a Newton polish provides that when the sweeps have not.
//
// All buffers live in a GlassoSolver, so repeated solves of one size allocate nothing.
#include "metaglasso/glasso.hpp"

#include <Eigen/Cholesky>
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <sstream>
#include <string>
#include <utility>
#include <vector>


namespace metaglasso {

namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();
// With ρ = 0, S is inverted only when every Cholesky pivot L_jj² exceeds this share of S_jj.
constexpr double kMinPivotShareRho0 = 1e-12;

using MatMap = Eigen::Map<Matrix>;
using VecMap = Eigen::Map<Vector>;
using ConstMatMap = Eigen::Map<const Matrix>;

std::string fmt(double x) {
  std::ostringstream os;
  os.precision(17);
  os << x;
  return os.str();
}

std::string shape(const Eigen::Ref<const Matrix>& A) {
  return "(" + std::to_string(A.rows()) + ", " + std::to_string(A.cols()) + ")";
}

double soft_threshold(double z, double t) {
  if (z > t) return z - t;
  if (z < -t) return z + t;
  return 0.0;
}

int sign_of(double x) { return (x > 0.0) - (x < 0.0); }

/// Grow-only storage: returns a buffer of at least n doubles (contents unspecified).
struct Buffer {
  std::vector<double> data;
  double* get(Index n) {
    if (data.size() < static_cast<std::size_t>(n)) data.resize(static_cast<std::size_t>(n));
    return data.data();
  }
};

template <class T>
void reserve_at_least(std::vector<T>& v, Index n) {
  if (v.capacity() < static_cast<std::size_t>(n)) v.reserve(static_cast<std::size_t>(n));
}

/// Matrices up to this order are factored and multiplied by plain loops, where the blocked library
/// routines' overhead would dominate.
constexpr Index kSmall = 48;

/// Right-looking Cholesky of the lower triangle of the (k, k) matrix at A (leading dimension ld),
/// in place. Returns false when it is not positive definite.
bool cholesky_small(double* A, Index k, Index ld) {
  for (Index j = 0; j < k; ++j) {
    double* cj = A + j * ld;
    const double d = cj[j];
    if (!(d > 0.0) || !std::isfinite(d)) return false;
    const double l = std::sqrt(d);
    cj[j] = l;
    const double inv = 1.0 / l;
    for (Index i = j + 1; i < k; ++i) cj[i] *= inv;
    for (Index c = j + 1; c < k; ++c) {
      double* cc = A + c * ld;
      const double f = cj[c];
      for (Index i = c; i < k; ++i) cc[i] -= cj[i] * f;
    }
  }
  return true;
}

/// Lower Cholesky factor of a symmetric matrix in place (only the lower triangle is read).
/// Returns false when the matrix is not positive definite to working precision.
bool cholesky_in_place(Eigen::Ref<Matrix> A) {
  if (A.rows() <= kSmall) return cholesky_small(A.data(), A.rows(), A.outerStride());
  Eigen::LLT<Eigen::Ref<Matrix>> llt(A);
  return llt.info() == Eigen::Success && A.diagonal().allFinite() && (A.diagonal().array() > 0.0).all();
}

/// Solves A x = b in place (x holds b) for the symmetric (k, k) A stored column-major with leading
/// dimension k, of which the lower triangle is read and overwritten by its Cholesky factor. Returns
/// false when A is not positive definite. Small systems (the column lassos') use plain loops, where
/// the blocked library routine's overhead would dominate.
bool solve_spd(double* A, Index k, double* x) {
  if (k > kSmall) {
    Eigen::Map<Matrix> M(A, k, k);
    Eigen::LLT<Eigen::Ref<Matrix>> llt(M);
    if (llt.info() != Eigen::Success) return false;
    Eigen::Map<Vector> v(x, k);
    llt.solveInPlace(v);
    return v.allFinite();
  }
  if (!cholesky_small(A, k, k)) return false;
  // L y = b, then Lᵀ x = y, multiplying by the reciprocals of the diagonal (divisions inside the
  // substitutions would form a chain of their latencies).
  double inv_diag[kSmall];
  for (Index j = 0; j < k; ++j) inv_diag[j] = 1.0 / A[j * k + j];
  for (Index j = 0; j < k; ++j) {
    const double* cj = A + j * k;
    const double y = x[j] * inv_diag[j];
    x[j] = y;
    for (Index i = j + 1; i < k; ++i) x[i] -= cj[i] * y;
  }
  for (Index j = k - 1; j >= 0; --j) {
    const double* cj = A + j * k;
    double acc = x[j];
    for (Index i = j + 1; i < k; ++i) acc -= cj[i] * x[i];
    x[j] = acc * inv_diag[j];
  }
  for (Index j = 0; j < k; ++j)
    if (!std::isfinite(x[j])) return false;
  return true;
}

/// W = Θ⁻¹ = L⁻ᵀ L⁻¹ from the lower Cholesky factor L of Θ (exactly symmetric). X is a work matrix.
/// Blocked so that both triangular structures are used: X = L⁻¹ block column by block column
/// (column block k solves only rows k: of L), then the lower triangle of W = Xᵀ X block column by
/// block column (rows c: of a block column only involve rows c: of X); p³ flops in all.
void inverse_from_factor(const Eigen::Ref<const Matrix>& L, Eigen::Ref<Matrix> W, Eigen::Ref<Matrix> X) {
  const Index p = L.rows();
  constexpr Index kBlock = 64;
  if (p <= kSmall) {
    // Column c of X = L⁻¹ by forward substitution (rows c:), then W_ij = Σ_{k ≥ i} X_ki X_kj, i ≥ j.
    const double* Lp = L.data();
    const Index ldl = L.outerStride();
    double* Xp = X.data();
    const Index ldx = X.outerStride();
    double inv_diag[kSmall];  // 1 / L_kk, so that the substitutions multiply
    for (Index k = 0; k < p; ++k) inv_diag[k] = 1.0 / Lp[k * ldl + k];
    for (Index c = 0; c < p; ++c) {
      double* __restrict xc = Xp + c * ldx;
      for (Index i = 0; i < p; ++i) xc[i] = 0.0;
      xc[c] = 1.0;
      for (Index k = c; k < p; ++k) {
        const double* __restrict lk = Lp + k * ldl;
        const double xk = xc[k] * inv_diag[k];
        xc[k] = xk;
        for (Index i = k + 1; i < p; ++i) xc[i] -= lk[i] * xk;
      }
    }
    // W = Σ_k x_k x_kᵀ over the rows x_k = X_{k,0:k}, accumulated column by column.
    double* Wp = W.data();
    const Index ldw = W.outerStride();
    for (Index j = 0; j < p; ++j)
      for (Index i = j; i < p; ++i) Wp[j * ldw + i] = 0.0;
    double row[kSmall];
    for (Index k = 0; k < p; ++k) {
      for (Index j = 0; j <= k; ++j) row[j] = Xp[j * ldx + k];
      for (Index j = 0; j <= k; ++j) {
        double* __restrict wj = Wp + j * ldw;
        const double f = row[j];
        for (Index i = j; i <= k; ++i) wj[i] += f * row[i];
      }
    }
  } else {
    X.setZero();
    for (Index k = 0; k < p; k += kBlock) {
      const Index b = std::min(kBlock, p - k);
      X.block(k, k, b, b).setIdentity();
      L.block(k, k, p - k, p - k).triangularView<Eigen::Lower>().solveInPlace(X.block(k, k, p - k, b));
    }
    for (Index c = 0; c < p; c += kBlock) {
      const Index b = std::min(kBlock, p - c);
      W.block(c, c, p - c, b).noalias() =
          X.block(c, c, p - c, p - c).transpose().triangularView<Eigen::Upper>() * X.block(c, c, p - c, b);
    }
  }
  for (Index c = 1; c < p; ++c)
    for (Index r = 0; r < c; ++r) W(r, c) = W(c, r);
}

/// Duality gap primal(Θ) − dual(W̃) given the lower Cholesky factor L of Θ and W = Θ⁻¹.
///
/// With W̃ = W + Δ (Δ_ij = −soft(W_ij − S_ij, ρ) off the diagonal, Δ_ii = S_ii (+ρ) − W_ii) the gap
/// splits exactly into two sums of non-negative terms,
///   [tr(W̃Θ) − p − log|W̃Θ|] + Σ_ij [(S_ij − W̃_ij) Θ_ij + ρ_ij |Θ_ij|],
/// and W̃Θ is similar to I + B with B = Lᵀ Δ L. Writing the first bracket through the Cholesky
/// factor C of I + B as Σ_i [Σ_{k<i} C_ik² + c_i − log(1 + c_i)], c_i = B_ii − Σ_{k<i} C_ik²,
/// avoids the cancellation between primal and dual, so the gap is accurate far below 1e-12.
/// `Delta`, `T` and `B` are (p, p) work matrices.
double gap_from_factor(const Eigen::Ref<const Matrix>& S, double rho, bool penalize_diagonal,
                       const Eigen::Ref<const Matrix>& Theta, const Eigen::Ref<const Matrix>& L,
                       const Eigen::Ref<const Matrix>& W, Eigen::Ref<Matrix> Delta, Eigen::Ref<Matrix> T,
                       Eigen::Ref<Matrix> B, Eigen::Ref<Vector> bdiag) {
  const Index p = S.rows();
  const double rho_d = penalize_diagonal ? rho : 0.0;
  double linear = 0.0;
  for (Index c = 0; c < p; ++c) {
    for (Index r = 0; r < p; ++r) {
      if (r == c) {
        Delta(r, c) = (S(r, c) + rho_d) - W(r, c);
      } else {
        const double excess = soft_threshold(W(r, c) - S(r, c), rho);
        Delta(r, c) = -excess;
        // (S − W̃)_rc = −clip(W_rc − S_rc, ±ρ)
        const double clip = (W(r, c) - S(r, c)) - excess;
        linear += rho * std::abs(Theta(r, c)) - clip * Theta(r, c);
      }
    }
  }
  if (p <= kSmall) {
    // T = Δ L, with Δ its diagonal (T_ij = Δ_ii L_ij) plus the few box violations off it (each
    // Δ_ik adds Δ_ik L_kj to T_ij, j ≤ k); then the lower triangle of B = Lᵀ T.
    for (Index j = 0; j < p; ++j)
      for (Index i = 0; i < p; ++i) T(i, j) = i >= j ? Delta(i, i) * L(i, j) : 0.0;
    for (Index k = 0; k < p; ++k)
      for (Index i = 0; i < p; ++i) {
        const double e = Delta(i, k);
        if (i == k || e == 0.0) continue;
        for (Index j = 0; j <= k; ++j) T(i, j) += e * L(k, j);
      }
    // B_ij = Σ_{k ≥ i} L_ki T_kj (i ≥ j), accumulated over k: row k of L times row k of T.
    const double* Lp = L.data();
    const Index ldl = L.outerStride();
    const double* Tp = T.data();
    const Index ldt = T.outerStride();
    double* Bp = B.data();
    const Index ldb = B.outerStride();
    for (Index j = 0; j < p; ++j)
      for (Index i = j; i < p; ++i) Bp[j * ldb + i] = 0.0;
    double lrow[kSmall], trow[kSmall];
    for (Index k = 0; k < p; ++k) {
      for (Index i = 0; i <= k; ++i) lrow[i] = Lp[i * ldl + k];
      for (Index j = 0; j < p; ++j) trow[j] = Tp[j * ldt + k];
      for (Index j = 0; j <= k; ++j) {
        double* __restrict bj = Bp + j * ldb;
        const double f = trow[j];
        for (Index i = j; i <= k; ++i) bj[i] += lrow[i] * f;
      }
    }
  } else {
    T.noalias() = Delta * L.triangularView<Eigen::Lower>();
    B.noalias() = L.transpose().triangularView<Eigen::Upper>() * T;
    for (Index c = 0; c < p; ++c) {
      for (Index r = c; r < p; ++r) B(r, c) = 0.5 * (B(r, c) + B(c, r));
    }
  }
  // C = chol(I + B), lower triangle in place.
  bdiag = B.diagonal();
  B.diagonal().array() += 1.0;
  if (!cholesky_in_place(B)) return kInf;
  // off_i = Σ_{k<i} C_ik², accumulated column by column (into T's first column, free by now).
  double* off = T.data();
  for (Index i = 0; i < p; ++i) off[i] = 0.0;
  for (Index k = 0; k < p; ++k) {
    const double* ck = B.data() + k * B.outerStride();
    for (Index i = k + 1; i < p; ++i) off[i] += ck[i] * ck[i];
  }
  double quad = 0.0;
  for (Index i = 0; i < p; ++i) {
    const double ci = bdiag(i) - off[i];
    if (!(ci > -1.0)) return kInf;
    quad += off[i] + (ci - std::log1p(ci));
  }
  const double gap = quad + linear;
  if (!std::isfinite(gap)) return kInf;
  return std::max(gap, 0.0);
}

/// The buffers of one component solve (and of the top-level driver), kept between solves.
struct Workspace {
  Buffer S, Theta, W, Theta_prev, L, work1, work2, work3, best, beta_all, theta22, Qaa, H;
  Buffer wtarget, scale, inv_scale, w, beta, g, v, rhs, bdiag;
  Buffer hg, hd, hw, cg_r, cg_z, cg_p, cg_q, tvec, zproj, zcur;
  std::vector<Index> support, rows, cols, colptr, adj_ptr, adj_idx, adj_e, adj_pos;
  std::vector<int> signs;
  // Driver: symmetrised S, warm start, components.
  Buffer S_full, init_full, Sc, Ic;
  std::vector<Index> label, stack, order, comp_start;
};

/// Solver of one connected component (all nodes linked through |S_ij| > ρ), on workspace buffers.
class ComponentSolver {
 public:
  ComponentSolver(Workspace& ws, const double* S, Index p, double rho, bool penalize_diagonal)
      : ws_(ws),
        S_(S, p, p),
        p_(p),
        rho_(rho),
        penalize_diagonal_(penalize_diagonal),
        Theta_(ws.Theta.get(p * p), p, p),
        W_(ws.W.get(p * p), p, p),
        Theta_prev_(ws.Theta_prev.get(p * p), p, p),
        L_(ws.L.get(p * p), p, p),
        work1_(ws.work1.get(p * p), p, p),
        work2_(ws.work2.get(p * p), p, p),
        work3_(ws.work3.get(p * p), p, p),
        wtarget_(ws.wtarget.get(p), p),
        scale_(ws.scale.get(p), p),
        inv_scale_(ws.inv_scale.get(p), p),
        w_(ws.w.get(p), p),
        beta_(ws.beta.get(p), p),
        g_(ws.g.get(p), p),
        v_(ws.v.get(p), p),
        rhs_(ws.rhs.get(p), p),
        bdiag_(ws.bdiag.get(p), p),
        support_(ws.support),
        signs_(ws.signs),
        rows_(ws.rows),
        cols_(ws.cols) {
    const double rho_d = penalize_diagonal ? rho : 0.0;
    wtarget_ = S_.diagonal().array() + rho_d;
    scale_ = wtarget_.array().sqrt();
    inv_scale_ = scale_.cwiseInverse();
    reserve_at_least(support_, p_);
    reserve_at_least(signs_, p_);
    // Largest support solved directly: its Cholesky (cap³/3 flops) stays within about ten times the
    // O(p²) cost of a primal column update (coordinate descent, the alternative, can take far longer
    // on an ill-conditioned column).
    cap_ = std::max<Index>(200, static_cast<Index>(4.0 * std::cbrt(static_cast<double>(p_) * p_)));
    cap_ = std::min(cap_, p_ - 1);
    qaa_ = ws.Qaa.get(cap_ * cap_);
    // Largest pattern (lower triangle with diagonal) whose Newton system is solved through its
    // dense Hessian (|E|³/3 flops); larger ones use conjugate gradients (~4|E|p flops a product).
    direct_cap_ = std::min<Index>(1500, std::max<Index>(300, static_cast<Index>(std::sqrt(3000.0 * p_))));
  }

  /// Solves from `init` (SPD, or nullptr for the cold start).
  void solve(const double* init, double tol, int max_iter) {
    const double target = tol * static_cast<double>(p_);
    n_iter_ = 0;
    converged_ = false;
    gap_ = kInf;
    bool have_factor = false;
    if (init != nullptr) {
      Theta_ = ConstMatMap(init, p_, p_);
      L_ = Theta_;
      have_factor = cholesky_in_place(L_);
    }
    if (have_factor) {
      refresh_from_factor();
      if (gap_ <= target) {
        converged_ = true;
        polish(target, false);
        return;
      }
      // Warm start: the dual sweeps from it when it projects to a positive definite dual point.
      // (When it does not, nothing has changed and the primal path starts from it.)
      if (dual_phase(target, max_iter, true)) return;
      if (n_iter_ >= max_iter) return;
    } else {
      // Cold start: the dual sweeps, which hand over a positive definite Θ (with W = Θ⁻¹ and its gap)
      // when they have not converged.
      if (max_iter == 0) {
        cold_primal_start();
        refresh();
        converged_ = gap_ <= target;
        return;
      }
      if (dual_phase(target, max_iter, false)) return;
      if (n_iter_ >= max_iter) return;
    }
    primal_sweeps(target, max_iter);
  }

  const MatMap& precision() const { return Theta_; }
  const MatMap& covariance() const { return W_; }
  int n_iter() const { return n_iter_; }
  bool converged() const { return converged_; }
  double gap() const { return gap_; }

 private:
  // Block coordinate descent on the dual (the glasso of Friedman, Hastie & Tibshirani 2008): W is
  // the dual variable, maximising log|W| over the box |W_ij − S_ij| ≤ ρ (W_ii = S_ii + ρ_d), one
  // column at a time. Column j's maximisation is the dual of the lasso
  //   minimise_β  ½ βᵀ W₁₁ β + s₁₂ᵀ β + ρ ‖β‖₁,     w₁₂ = −W₁₁ β = s₁₂ − g   (g the gradient),
  // solved exactly by the same active-set method as the primal columns (an inexact solution would
  // leave the box, which is how looser implementations fail). From a feasible positive definite
  // start every step raises log|W|, so W stays positive definite. Each column costs O(p k + k³) for
  // a support of k — no O(p²) update — and on ill-conditioned S these sweeps converge in far fewer
  // iterations than the primal ones. The primal iterate is read off the last lasso of each column,
  // θ₁₂ = β θ₂₂, θ₂₂ = 1/(w₂₂ − βᵀ W₁₁ β), and symmetrised; the gap is evaluated on it (with its own
  // inverse) when the sign pattern has settled and the change of W over a sweep predicts success:
  // near the solution the gap and the KKT residual are proportional to that change, with factors
  // measured at each evaluation. Converged when the gap is within `target` and the KKT residual
  // (kkt_residual) within tol = target / p, the accuracy the primal polish would otherwise provide.
  //
  // `warm` (a positive definite Θ₀ in Theta_, with L_ and W_ = Θ₀⁻¹ exact) starts the sweeps from
  // W₀ projected onto the box and β from Θ₀'s columns; without it, from a shrunk S. Returns true
  // when converged; otherwise hands over a positive definite Θ with exact W, L and gap to the primal
  // path (at the latest when the changes of W reach rounding level, or when a warm start does not
  // project to a positive definite W₀).
  bool dual_phase(double target, int max_iter, bool warm) {
    if (n_iter_ >= max_iter) return false;
    const double rho_d = penalize_diagonal_ ? rho_ : 0.0;
    const double tol = target / static_cast<double>(p_);
    MatMap B(ws_.beta_all.get(p_ * p_), p_, p_);  // column j: β of column j's lasso
    VecMap theta22(ws_.theta22.get(p_), p_);
    MatMap Wx(ws_.Theta_prev.get(p_ * p_), p_, p_);  // exact inverse of the primal iterate
    if (warm) {
      // W₀: Θ₀⁻¹ moved into the box, which must stay positive definite; β from θ₁₂ = β θ₂₂.
      for (Index c = 0; c < p_; ++c) {
        for (Index r = 0; r < p_; ++r) {
          Wx(r, c) = r == c ? S_(c, c) + rho_d : S_(r, c) + std::max(-rho_, std::min(rho_, W_(r, c) - S_(r, c)));
          B(r, c) = r == c ? 0.0 : Theta_(r, c) / Theta_(c, c);
        }
      }
      work1_ = Wx;
      if (!cholesky_in_place(work1_)) return false;  // the primal path takes the warm start
      W_ = Wx;
    } else {
      // Feasible positive definite start: off-diagonal entries of S shrunk towards zero by the
      // factor 1 − c, c = min(1, ρ / max|S_ij|), which stays within the box; S is positive
      // semi-definite with a positive diagonal, so (1 − c) S + c diag(S) is positive definite for
      // c > 0.
      B.setZero();
      double smax = 0.0;
      for (Index c = 0; c < p_; ++c)
        for (Index r = c + 1; r < p_; ++r) smax = std::max(smax, std::abs(S_(r, c)));
      const double shrink = smax > rho_ ? 1.0 - rho_ / smax : 0.0;
      for (Index c = 0; c < p_; ++c) {
        for (Index r = 0; r < p_; ++r) W_(r, c) = shrink * S_(r, c);
        W_(c, c) = S_(c, c) + rho_d;
      }
    }
    const double wscale = wtarget_.maxCoeff();  // bounds |W_ij| (W is positive definite)
    // The column machinery solves ½ βᵀ Q β + s₁₂ᵀ β + ρ‖β‖₁ with Q = w_new (W₁₁ − w wᵀ / w_old); the
    // dual's Q = W₁₁ is the case w = 0, w_new = w_old = 1.
    w_.setZero();
    wold_ = 1.0;
    wnew_ = 1.0;
    dual_ = true;
    // Accuracy of coordinate descent in the (rare) columns whose support exceeds the direct-solve
    // cap, tightened with the change of W.
    eps_cd_ = 1e-3;
    // Factors predicting the gap and the KKT residual from the change of W. Before the first
    // evaluation, an evaluation (p³ flops) is made at the first sweep that leaves the sign pattern
    // nearly unchanged when p is small or the start warm; for p ≥ 100, where it costs as much as
    // several sweeps, only once p²/10 (a safe guess: about p²/40 on dense factor-structured
    // problems, far smaller on sparse ones) times the change predicts success.
    double ratio = (p_ >= 100 && !warm) ? 0.1 * static_cast<double>(p_) * static_cast<double>(p_) : 0.0;
    double kkt_ratio = 0.0;
    int last_evaluation = 0;
    for (int sweep = n_iter_ + 1; sweep <= max_iter; ++sweep) {
      double change = 0.0;
      Index changes = 0, support = 0;
      for (Index j = 0; j < p_; ++j) {
        if (!dual_update_column(j, B, theta22, change, changes, support)) {
          // W lost definiteness to rounding: start the primal sweeps afresh.
          n_iter_ = sweep;
          cold_primal_start();
          return false;
        }
      }
      n_iter_ = sweep;
      if (!std::isfinite(change))
        throw NumericalError("graphical_lasso: the iterates diverged (is S positive semi-definite?)");
      const bool settled = 10 * changes <= support;
      const bool stagnated = change <= 1e-14 * wscale;
      const bool last = sweep == max_iter;
      eps_cd_ = std::max(1e-15, std::min(eps_cd_, 0.01 * change / wscale));
      const bool predicted = ratio * change <= 0.5 * target && kkt_ratio * change <= 0.5 * tol;
      // (Every 25 sweeps after an evaluation the factors are measured again.)
      const bool evaluate = last || stagnated ||
                            (settled && (predicted || (last_evaluation > 0 && sweep - last_evaluation >= 25)));
      if (!evaluate) continue;
      last_evaluation = sweep;
      // The primal iterate, symmetrised, and its gap.
      for (Index c = 0; c < p_; ++c) {
        Theta_(c, c) = theta22(c);
        for (Index r = c + 1; r < p_; ++r) {
          const double m = 0.5 * (B(r, c) * theta22(c) + B(c, r) * theta22(r));
          Theta_(r, c) = m;
          Theta_(c, r) = m;
        }
      }
      L_ = Theta_;
      if (Theta_.allFinite() && cholesky_in_place(L_)) {
        inverse_from_factor(L_, Wx, work1_);
        const double gap = gap_from_factor(S_, rho_, penalize_diagonal_, Theta_, L_, Wx, work1_, work2_, work3_, bdiag_);
        const double kkt = kkt_residual(Wx);
        if ((gap <= target && kkt <= tol) || stagnated || last) {
          W_ = Wx;
          gap_ = gap;
          if (gap <= target) {
            converged_ = true;
            polish(target, false);
            return true;
          }
          return false;
        }
        if (change > 0.0) {
          if (std::isfinite(gap)) ratio = gap / change;
          kkt_ratio = kkt / change;
        }
      } else if (stagnated || last) {
        // No positive definite primal iterate to hand over: Θ = W⁻¹ is one.
        L_ = W_;
        if (!cholesky_in_place(L_)) {
          cold_primal_start();
          return false;
        }
        inverse_from_factor(L_, Theta_, work1_);
        refresh();
        return false;
      }
    }
    return false;
  }

  // One dual column update (see dual_phase); accumulates the largest change of W, the number of
  // sign changes of β and the size of its support. Returns false when the Schur complement
  // w₂₂ − βᵀ W₁₁ β is not positive.
  bool dual_update_column(Index j, MatMap& B, VecMap& theta22, double& change, Index& changes, Index& support) {
    beta_ = B.col(j);
    beta_(j) = 0.0;
    if (!dual_lasso_kept_pattern(j) && !active_set_column(j)) {
      rebuild_support(j);
      compute_gradient(j);
      cd_column(j);
      // Keep g = W₁₁ β + s₁₂ exact for the new column of W.
      rebuild_support(j);
      compute_gradient(j);
    }
    double quad = 0.0;  // βᵀ W₁₁ β = βᵀ (g − s₁₂)
    for (Index i = 0; i < p_; ++i) {
      if (i == j) continue;
      const double updated = S_(i, j) - g_(i);
      change = std::max(change, std::abs(updated - W_(i, j)));
      W_(i, j) = updated;
      W_(j, i) = updated;
      quad += beta_(i) * (g_(i) - S_(i, j));
      changes += sign_of(beta_(i)) != sign_of(B(i, j));
      support += beta_(i) != 0.0;
    }
    const double schur = W_(j, j) - quad;
    if (!(schur > 0.0) || !std::isfinite(schur)) return false;
    theta22(j) = 1.0 / schur;
    B.col(j) = beta_;
    return true;
  }

  // The common case of a dual column once the sign pattern has settled, without the bookkeeping of
  // the general active-set method (and with the same arithmetic): the lasso restricted to the
  // support A of β with its signs, Q_AA β_A = −(s_A + ρ sign_A), solved directly; accepted (with
  // g = W₁₁ β + s₁₂) when the solution keeps the signs and satisfies the KKT conditions off A.
  // Returns false, with β unchanged, otherwise (or for supports beyond kSmall).
  bool dual_lasso_kept_pattern(Index j) {
    Index idx[kSmall];
    double Q[kSmall * kSmall], x[kSmall];
    Index k = 0;
    const double* beta = beta_.data();
    for (Index i = 0; i < p_; ++i) {
      if (i == j || beta[i] == 0.0) continue;
      if (k == kSmall) return false;
      idx[k++] = i;
    }
    if (k == 0) return false;
    for (Index b = 0; b < k; ++b) {
      const double* wb = W_.data() + idx[b] * p_;
      for (Index a = b; a < k; ++a) Q[b * k + a] = wb[idx[a]];
    }
    for (Index a = 0; a < k; ++a) x[a] = -(S_(idx[a], j) + rho_ * sign_of(beta[idx[a]]));
    if (!solve_spd(Q, k, x)) return false;
    for (Index a = 0; a < k; ++a)
      if (sign_of(x[a]) != sign_of(beta[idx[a]])) return false;
    double* g = g_.data();
    const double* sj = S_.data() + j * p_;
    for (Index i = 0; i < p_; ++i) g[i] = sj[i];
    for (Index a = 0; a < k; ++a) {
      const double xa = x[a];
      const double* wa = W_.data() + idx[a] * p_;
      for (Index i = 0; i < p_; ++i) g[i] += xa * wa[i];
    }
    g[j] = 0.0;
    constexpr double slack = 1e-13;
    const double sj_scale = slack * scale_(j);
    for (Index i = 0; i < p_; ++i)
      if (i != j && beta[i] == 0.0 && std::abs(g[i]) > rho_ + sj_scale * scale_(i)) return false;
    for (Index a = 0; a < k; ++a) beta_(idx[a]) = x[a];
    return true;
  }

  // The diagonal start of the primal sweeps, Θ = diag(1 / w), W = diag(w).
  void cold_primal_start() {
    Theta_.setZero();
    W_.setZero();
    Theta_.diagonal() = wtarget_.cwiseInverse();
    W_.diagonal() = wtarget_;
    gap_ = kInf;
  }

  // Primal block coordinate descent from the current Θ (positive definite, with W = Θ⁻¹), with
  // Newton phases on the settled pattern, until the gap is within `target` or max_iter sweeps in
  // all have run.
  void primal_sweeps(double target, int max_iter) {
    // Relative accuracy of coordinate descent in a column (normalised KKT residual); tightened as
    // the gap falls, and further when the sweeps stall.
    eps_cd_ = 1e-3;
    if (std::isfinite(gap_)) eps_cd_ = std::min(eps_cd_, 0.01 * std::sqrt(gap_ / static_cast<double>(p_)));
    eps_cd_ = std::max(eps_cd_, 1e-15);
    int next_newton = n_iter_ + 1, newton_wait = 1, floor_hits = 0;
    double floor_gap = kInf;
    for (int sweep = n_iter_ + 1; sweep <= max_iter; ++sweep) {
      Theta_prev_ = Theta_;
      for (Index j = 0; j < p_; ++j) update_column(j);
      n_iter_ = sweep;
      if (!Theta_.allFinite())
        throw NumericalError("graphical_lasso: the iterates diverged (is S positive semi-definite?)");
      L_ = Theta_;
      if (!cholesky_in_place(L_)) {
        // Rounding in W made the last sweep lose definiteness: return the previous iterate.
        Theta_ = Theta_prev_;
        refresh();
        converged_ = gap_ <= target;
        return;
      }
      const Index changes = pattern_changes();
      const Index support = support_size();
      const bool settled = 50 * changes <= support;
      // The gap (a few p³ flops with the exact W) is evaluated only when it may be within reach: when
      // the sign pattern has nearly settled (before that the iterate cannot be optimal) and a
      // first-order estimate from the maintained W is within a factor of the target, before a
      // Newton phase, every tenth sweep, and at the last sweep.
      const bool newton_due = settled && sweep >= next_newton;
      const bool evaluate = newton_due || sweep % 10 == 0 || sweep == max_iter ||
                            (settled && gap_estimate() <= 10.0 * target);
      if (!evaluate) {
        gap_ = kInf;
        continue;
      }
      const double previous = gap_;
      refresh_from_factor();
      if (gap_ <= target) {
        converged_ = true;
        polish(target, false);
        return;
      }
      // Second-order finish on the current sign pattern once the sweeps have nearly settled it;
      // after a phase that found the pattern far from settled, wait 1, 2, 4, then 8 sweeps.
      if (newton_due) {
        if (newton_phase(target)) {
          converged_ = true;
          polish(target, true);
          return;
        }
        if (newton_cut_short_) {
          next_newton = sweep + 1 + newton_wait;
          newton_wait = std::min(2 * newton_wait, 8);
        } else {
          newton_wait = 1;
        }
        // Newton has solved the settled pattern to rounding level five times running without
        // lowering the gap by a fifth: `tol` is below the precision attainable for this S (at that
        // level the gap moves with the rounding of W, so a slowly falling gap is given its chance).
        if (newton_at_floor_ && changes == 0) {
          floor_hits = gap_ >= 0.8 * floor_gap ? floor_hits + 1 : 0;
          floor_gap = std::min(floor_gap, gap_);
          if (floor_hits >= 5) break;
        }
      }
      if (std::isfinite(gap_)) {
        eps_cd_ = std::min(eps_cd_, 0.01 * std::sqrt(gap_ / static_cast<double>(p_)));
        if (std::isfinite(previous) && gap_ >= previous) eps_cd_ *= 0.01;
        eps_cd_ = std::max(eps_cd_, 1e-15);
      }
    }
    // The sweeps ran out: make W and the gap exact for the iterate returned.
    if (!std::isfinite(gap_)) refresh();
  }

  // Runs once the gap is within `target`. The gap bounds some errors of Θ only through their
  // squares: those of W's diagonal and of the KKT conditions |W_ij − S_ij| ≤ ρ at zeros of Θ. So
  // when the largest KKT residual (relative to √(w_ii w_jj)) exceeds tol = target / p, an entry
  // missing from the pattern is brought in by one more sweep (counted in n_iter) if such a
  // condition is violated, and Newton's method on the pattern then brings the decrement to
  // λ² ≤ target² (skipped when it has just run), which leaves the residuals of order target².
  // Θ is not refined further. The converged iterate is kept if this ends with a larger gap than
  // `target`.
  void polish(double target, bool newton_done) {
    const double tol = target / static_cast<double>(p_);
    if (newton_done || kkt_residual() <= tol) return;
    const bool missing = off_pattern_violation() > std::max(tol, 1e-10);
    MatMap best(ws_.best.get(p_ * p_), p_, p_);
    best = Theta_;
    if (missing) {
      Theta_prev_ = Theta_;
      for (Index j = 0; j < p_; ++j) update_column(j);
      ++n_iter_;
      L_ = Theta_;
      if (Theta_.allFinite() && cholesky_in_place(L_)) {
        refresh_from_factor();
      } else {
        gap_ = kInf;
      }
    }
    if (std::isfinite(gap_)) newton_phase(target);
    if (!(gap_ <= target)) {
      Theta_ = best;
      refresh();
    }
  }

  // Largest violation of the KKT conditions at (Θ, W): W_ij − S_ij = ρ sign(Θ_ij) where Θ_ij ≠ 0,
  // |W_ij − S_ij| ≤ ρ where Θ_ij = 0 (i ≠ j), W_ii = S_ii (+ρ); relative to √(w_ii w_jj).
  double kkt_residual() const { return kkt_residual(W_); }
  double kkt_residual(const MatMap& W) const {
    const double rho_d = penalize_diagonal_ ? rho_ : 0.0;
    double v = 0.0;
    for (Index c = 0; c < p_; ++c) {
      v = std::max(v, std::abs(W(c, c) - S_(c, c) - rho_d) / wtarget_(c));
      double vc = 0.0;  // largest residual in column c, each over √w_rr
      for (Index r = c + 1; r < p_; ++r) {
        const double d = W(r, c) - S_(r, c), x = Theta_(r, c);
        const double res = x != 0.0 ? std::abs(d - rho_ * sign_of(x)) : std::abs(d) - rho_;
        vc = std::max(vc, res * inv_scale_(r));
      }
      v = std::max(v, vc * inv_scale_(c));
    }
    return v;
  }

  // W = Θ⁻¹ and the gap from the Cholesky factor in L_.
  void refresh_from_factor() {
    inverse_from_factor(L_, W_, work1_);
    gap_ = gap_from_factor(S_, rho_, penalize_diagonal_, Theta_, L_, W_, work1_, work2_, work3_, bdiag_);
  }

  // L, W and the gap for the current Θ (which must be positive definite).
  void refresh() {
    L_ = Theta_;
    if (!cholesky_in_place(L_)) throw NumericalError("graphical_lasso: lost positive definiteness");
    refresh_from_factor();
  }

  // First-order estimate of the gap from the current W: Σ_ij |Θ_ij| |ρ sign(Θ_ij) − (W − S)_ij| over
  // the support plus ½ Σ_ij Θ_ii Θ_jj Δ_ij² for the box violations Δ (the two sums of
  // gap_from_factor to first and second order). Used only to decide when the exact gap is worth
  // computing. `off` receives the part owed to violations where Θ_ij = 0 (i ≠ j), which Newton's
  // method on the pattern cannot remove.
  double gap_estimate(double* off = nullptr) const {
    const double rho_d = penalize_diagonal_ ? rho_ : 0.0;
    double lin = 0.0, quad = 0.0, quad_off = 0.0;
    for (Index c = 0; c < p_; ++c) {
      const double dc = W_(c, c) - S_(c, c) - rho_d;
      quad += 0.5 * Theta_(c, c) * Theta_(c, c) * dc * dc;
      for (Index r = c + 1; r < p_; ++r) {
        const double x = Theta_(r, c), d = W_(r, c) - S_(r, c);
        if (x != 0.0) {
          lin += 2.0 * std::abs(x) * std::abs(rho_ * sign_of(x) - d);
        } else {
          const double e = soft_threshold(d, rho_);
          quad_off += Theta_(r, r) * Theta_(c, c) * e * e;
        }
      }
    }
    if (off != nullptr) *off = quad_off;
    return lin + quad + quad_off;
  }

  // Largest violation of |W_ij − S_ij| ≤ ρ where Θ_ij = 0 (i ≠ j), relative to √(w_ii w_jj).
  double off_pattern_violation() const {
    double v = 0.0;
    for (Index c = 0; c < p_; ++c)
      for (Index r = c + 1; r < p_; ++r)
        if (Theta_(r, c) == 0.0) v = std::max(v, (std::abs(W_(r, c) - S_(r, c)) - rho_) / (scale_(r) * scale_(c)));
    return v;
  }

  // Number of off-diagonal entries whose sign differs between Θ and the iterate before the sweep.
  Index pattern_changes() const {
    Index n = 0;
    for (Index c = 0; c < p_; ++c)
      for (Index r = c + 1; r < p_; ++r) n += sign_of(Theta_(r, c)) != sign_of(Theta_prev_(r, c));
    return n;
  }

  // Number of non-zero off-diagonal entries of Θ in its lower triangle.
  Index support_size() const {
    Index n = 0;
    for (Index c = 0; c < p_; ++c)
      for (Index r = c + 1; r < p_; ++r) n += Theta_(r, c) != 0.0;
    return n;
  }

  // The lower triangle (with the diagonal) of Θ's support in column order: rows_, cols_, and the
  // start of each column in colptr.
  void build_pattern() {
    std::vector<Index>& colptr = ws_.colptr;
    reserve_at_least(rows_, p_ * (p_ + 1) / 2);
    reserve_at_least(cols_, p_ * (p_ + 1) / 2);
    colptr.resize(static_cast<std::size_t>(p_ + 1));
    rows_.clear();
    cols_.clear();
    for (Index c = 0; c < p_; ++c) {
      colptr[static_cast<std::size_t>(c)] = static_cast<Index>(rows_.size());
      for (Index r = c; r < p_; ++r)
        if (r == c || Theta_(r, c) != 0.0) {
          rows_.push_back(r);
          cols_.push_back(c);
        }
    }
    colptr[static_cast<std::size_t>(p_)] = static_cast<Index>(rows_.size());
  }

  // Full adjacency of the pattern (both triangles, with the diagonal): for column c, the rows
  // adj_idx[adj_ptr[c] .. adj_ptr[c + 1]) and the pattern entry adj_e of each, rows ascending.
  void build_adjacency() {
    const Index m = static_cast<Index>(rows_.size());
    std::vector<Index>& ptr = ws_.adj_ptr;
    std::vector<Index>& idx = ws_.adj_idx;
    std::vector<Index>& ent = ws_.adj_e;
    std::vector<Index>& pos = ws_.adj_pos;
    ptr.assign(static_cast<std::size_t>(p_ + 1), 0);
    for (Index e = 0; e < m; ++e) {
      const Index i = rows_[static_cast<std::size_t>(e)], j = cols_[static_cast<std::size_t>(e)];
      ++ptr[static_cast<std::size_t>(j + 1)];
      if (i != j) ++ptr[static_cast<std::size_t>(i + 1)];
    }
    for (Index c = 0; c < p_; ++c) ptr[static_cast<std::size_t>(c + 1)] += ptr[static_cast<std::size_t>(c)];
    const Index nnz = ptr[static_cast<std::size_t>(p_)];
    reserve_at_least(idx, p_ * p_);
    reserve_at_least(ent, p_ * p_);
    idx.resize(static_cast<std::size_t>(nnz));
    ent.resize(static_cast<std::size_t>(nnz));
    pos.assign(ptr.begin(), ptr.end() - 1);
    // Column order of the pattern lists the entries (i, j), i ≥ j, by increasing j, then i: the
    // upper-triangle copies (j, i) arrive in column i by increasing j before its own (i', i), i' ≥ i.
    for (Index e = 0; e < m; ++e) {
      const Index i = rows_[static_cast<std::size_t>(e)], j = cols_[static_cast<std::size_t>(e)];
      if (i != j) {
        idx[static_cast<std::size_t>(pos[static_cast<std::size_t>(i)])] = j;
        ent[static_cast<std::size_t>(pos[static_cast<std::size_t>(i)]++)] = e;
      }
    }
    for (Index e = 0; e < m; ++e) {
      const Index i = rows_[static_cast<std::size_t>(e)], j = cols_[static_cast<std::size_t>(e)];
      idx[static_cast<std::size_t>(pos[static_cast<std::size_t>(j)])] = i;
      ent[static_cast<std::size_t>(pos[static_cast<std::size_t>(j)]++)] = e;
    }
  }

  // Newton's method for the objective restricted to the current sign pattern of Θ (the support E
  // with signs Z): minimise tr((S + ρZ)Θ) − log|Θ| over Θ supported on E, which is smooth and
  // self-concordant. Damped steps t = 1/(1 + λ) (λ the Newton decrement) while λ ≥ 1/4, full steps
  // after. A step that would flip signs is projected (flipped entries set to zero, leaving E) with
  // backtracking on the objective, falling back to the step cut at the first zero crossing, which
  // cannot increase it. Every iterate is checked positive definite by Cholesky. Returns whether
  // the gap is within `target`; it stops early, with a valid iterate, when the pattern proves
  // wrong (the sweeps then correct it). It continues past the target until λ² ≤ target²: the gap
  // bounds only the square of some errors in Θ (the diagonal of W enters it quadratically), and
  // the last step then leaves them of order target².
  bool newton_phase(double target) {
    const double rho_d = penalize_diagonal_ ? rho_ : 0.0;
    constexpr int kMaxSteps = 40;
    double previous_lambda2 = kInf;
    double first_gnorm = -1.0;
    Index factored_m = -1;  // size of the pattern whose Hessian factor is held in H
    int cuts = 0;           // steps cut at the first zero crossing
    int stalls = 0;         // consecutive full steps after which the gap barely fell
    newton_cut_short_ = false;
    newton_at_floor_ = false;
    for (int step = 0; step < kMaxSteps; ++step) {
      build_pattern();
      const Index m = static_cast<Index>(rows_.size());
      VecMap g(ws_.hg.get(m), m), d(ws_.hd.get(m), m), s(ws_.hw.get(m), m);
      // Θ = Σ x_e E_e with E_e = e_i e_jᵀ + e_j e_iᵀ (i ≠ j) or e_i e_iᵀ; G = S + ρZ − W is the
      // gradient in matrix form, ⟨X, Y⟩ = Σ_e s_e X_e Y_e (s_e = 2 off the diagonal, 1 on it) the
      // trace inner product of matrices supported on E, and the Newton system is P_E(W D W) = −G.
      for (Index e = 0; e < m; ++e) {
        const Index i = rows_[static_cast<std::size_t>(e)], jj = cols_[static_cast<std::size_t>(e)];
        if (i == jj) {
          g(e) = S_(i, i) + rho_d - W_(i, i);
          s(e) = 1.0;
        } else {
          g(e) = S_(i, jj) + rho_ * sign_of(Theta_(i, jj)) - W_(i, jj);
          s(e) = 2.0;
        }
      }
      const double gnorm = std::sqrt(s.dot(g.cwiseAbs2()));
      if (first_gnorm < 0.0) first_gnorm = gnorm;
      if (m <= direct_cap_) {
        MatMap H(ws_.H.get(m * m), m, m);
        // Near the solution the factor of an earlier Hessian on the same pattern is reused
        // (chord steps) while it still shrinks the decrement tenfold per step.
        bool chord = factored_m == m && previous_lambda2 < 0.0625;
        if (chord) {
          d = -s.cwiseProduct(g);
          H.triangularView<Eigen::Lower>().solveInPlace(d);
          H.triangularView<Eigen::Lower>().adjoint().solveInPlace(d);
          chord = d.allFinite() && -s.dot(g.cwiseProduct(d)) <= 0.1 * previous_lambda2;
        }
        if (!chord) {
          // Hessian in x: ⟨E_e, W E_f W⟩ = s_e s_f (W_ik W_jl + W_il W_jk) / 2.
          for (Index f = 0; f < m; ++f) {
            const Index k = rows_[static_cast<std::size_t>(f)], l = cols_[static_cast<std::size_t>(f)];
            const double sf = 0.5 * s(f);
            for (Index e = f; e < m; ++e) {
              const Index i = rows_[static_cast<std::size_t>(e)], jj = cols_[static_cast<std::size_t>(e)];
              H(e, f) = s(e) * sf * (W_(i, k) * W_(jj, l) + W_(i, l) * W_(jj, k));
            }
          }
          Eigen::LLT<Eigen::Ref<Matrix>> llt(H);
          if (llt.info() != Eigen::Success) return gap_ <= target;
          factored_m = m;
          d = -s.cwiseProduct(g);
          llt.solveInPlace(d);
        }
      } else {
        // Inexact Newton (Dembo, Eisenstat & Steihaug 1982): preconditioned conjugate gradients to
        // the relative residual η = min(0.1, λ_prev, (‖G‖/‖G₀‖)^½), λ_prev the last decrement, for
        // superlinear convergence; but no smaller than needed for the next decrement to reach the
        // target, λ ≈ η λ_prev ≤ target.
        factored_m = -1;
        double eta = std::min(0.1, std::sqrt(gnorm / first_gnorm));
        if (std::isfinite(previous_lambda2)) {
          const double lambda_prev = std::sqrt(previous_lambda2);
          eta = std::min(eta, lambda_prev);
          eta = std::max(eta, std::min(0.1, 0.3 * target / lambda_prev));
        }
        eta = std::max(eta, 1e-12);
        if (!newton_cg(m, eta)) return gap_ <= target;
      }
      const double lambda2 = -s.dot(g.cwiseProduct(d));
      if (!(lambda2 >= 0.0) || !std::isfinite(lambda2)) return gap_ <= target;
      // Restricted problem solved to working precision (or no longer converging quadratically):
      // what remains is up to the sweeps.
      if (lambda2 <= 1e-32 * static_cast<double>(m) || (lambda2 < 1e-2 && lambda2 > 0.5 * previous_lambda2)) {
        newton_at_floor_ = lambda2 < 1e-16;
        return gap_ <= target;
      }
      previous_lambda2 = lambda2;
      const double lambda = std::sqrt(lambda2);
      double t = lambda >= 0.25 ? 1.0 / (1.0 + lambda) : 1.0;
      double t_cross = kInf;
      Index e_cross = -1;
      for (Index e = 0; e < m; ++e) {
        const Index i = rows_[static_cast<std::size_t>(e)], jj = cols_[static_cast<std::size_t>(e)];
        const double x = Theta_(i, jj);
        if (i != jj && x * d(e) < 0.0 && std::abs(x) < t_cross * std::abs(d(e))) {
          t_cross = std::abs(x) / std::abs(d(e));
          e_cross = e;
        }
      }
      Theta_prev_ = Theta_;
      bool accepted = false;
      if (t_cross < t) {
        // Projected steps (entries crossing zero are set to zero) with backtracking on the true
        // objective; the step cut at the first crossing, which cannot increase it, is the fallback.
        const double f0 = objective_from_factor(Theta_prev_, L_);
        for (int k = 0; k < 30 && t > t_cross; ++k, t *= 0.5) {
          projected_step(m, t);
          L_ = Theta_;
          if (Theta_.allFinite() && cholesky_in_place(L_) &&
              objective_from_factor(Theta_, L_) <= f0 - 1e-4 * t * lambda2) {
            accepted = true;
            break;
          }
        }
        if (!accepted) {
          t = t_cross;
          ++cuts;
        }
      }
      if (!accepted) {
        projected_step(m, t);
        if (t == t_cross) {
          const Index i = rows_[static_cast<std::size_t>(e_cross)], jj = cols_[static_cast<std::size_t>(e_cross)];
          Theta_(i, jj) = 0.0;
          Theta_(jj, i) = 0.0;
        }
        L_ = Theta_;
        if (!Theta_.allFinite() || !cholesky_in_place(L_)) {
          Theta_ = Theta_prev_;
          refresh();
          return gap_ <= target;
        }
      }
      const double gap_before = gap_;
      inverse_from_factor(L_, W_, work1_);
      // The exact gap (a few p³ flops) only when the first-order estimate puts it within reach, or
      // when the decrement says the restricted problem is solved.
      double off = 0.0;
      const double estimate = gap_estimate(&off);
      gap_ = (estimate <= 10.0 * target || lambda2 <= target * target)
                 ? gap_from_factor(S_, rho_, penalize_diagonal_, Theta_, L_, W_, work1_, work2_, work3_, bdiag_)
                 : kInf;
      // Converged once the decrement is also small: λ² ≤ target², which leaves Θ accurate far
      // beyond √gap.
      if (gap_ <= target && lambda2 <= target * target) return true;
      // The pattern is still far from settled: leave it to the sweeps.
      if (cuts >= 3) {
        newton_cut_short_ = true;
        return gap_ <= target;
      }
      // Box violations outside the pattern dominate what is left of the gap: the sweeps must
      // extend the pattern.
      if (off > target && lambda2 < 0.1 * off) return false;
      // The gap no longer follows the decrement (twice running): it comes from outside the pattern.
      stalls = (gap_ > target && std::isfinite(gap_before) && t == 1.0 && lambda2 < 1e-6 && gap_ > 0.7 * gap_before)
                   ? stalls + 1
                   : 0;
      if (stalls >= 2) return false;
    }
    return gap_ <= target;
  }

  // out_e = (W V W)_e for the symmetric V supported on the pattern with entries v: T = W V column by
  // column (each column a combination of the columns of W on its adjacency), then
  // (W V W)_ij = T_{i,:} · W_{:,j} through Tᵀ.
  void product_w(const double* v, double* out) {
    const Index n = p_;
    const std::vector<Index>& ptr = ws_.adj_ptr;
    const std::vector<Index>& idx = ws_.adj_idx;
    const std::vector<Index>& ent = ws_.adj_e;
    const double* W = W_.data();
    double* T = work1_.data();
    for (Index j = 0; j < n; ++j) {
      double* tj = T + j * n;
      std::fill(tj, tj + n, 0.0);
      Index a = ptr[static_cast<std::size_t>(j)];
      const Index end = ptr[static_cast<std::size_t>(j + 1)];
      for (; a + 3 < end; a += 4) {
        const double x0 = v[ent[static_cast<std::size_t>(a)]], x1 = v[ent[static_cast<std::size_t>(a + 1)]];
        const double x2 = v[ent[static_cast<std::size_t>(a + 2)]], x3 = v[ent[static_cast<std::size_t>(a + 3)]];
        const double* w0 = W + idx[static_cast<std::size_t>(a)] * n;
        const double* w1 = W + idx[static_cast<std::size_t>(a + 1)] * n;
        const double* w2 = W + idx[static_cast<std::size_t>(a + 2)] * n;
        const double* w3 = W + idx[static_cast<std::size_t>(a + 3)] * n;
        for (Index i = 0; i < n; ++i) tj[i] += (x0 * w0[i] + x1 * w1[i]) + (x2 * w2[i] + x3 * w3[i]);
      }
      for (; a < end; ++a) {
        const double x = v[ent[static_cast<std::size_t>(a)]];
        const double* w0 = W + idx[static_cast<std::size_t>(a)] * n;
        for (Index i = 0; i < n; ++i) tj[i] += x * w0[i];
      }
    }
    MatMap Tt(work2_.data(), n, n);
    Tt.noalias() = work1_.transpose();
    const double* Ttp = Tt.data();
    const std::vector<Index>& colptr = ws_.colptr;
    for (Index j = 0; j < n; ++j) {
      const double* wj = W + j * n;
      Index e = colptr[static_cast<std::size_t>(j)];
      const Index end = colptr[static_cast<std::size_t>(j + 1)];
      for (; e + 1 < end; e += 2) {
        const double* t0 = Ttp + rows_[static_cast<std::size_t>(e)] * n;
        const double* t1 = Ttp + rows_[static_cast<std::size_t>(e + 1)] * n;
        double s0 = 0.0, s1 = 0.0;
        for (Index i = 0; i < n; ++i) {
          s0 += t0[i] * wj[i];
          s1 += t1[i] * wj[i];
        }
        out[e] = s0;
        out[e + 1] = s1;
      }
      for (; e < end; ++e) {
        const double* t0 = Ttp + rows_[static_cast<std::size_t>(e)] * n;
        double s0 = 0.0;
        for (Index i = 0; i < n; ++i) s0 += t0[i] * wj[i];
        out[e] = s0;
      }
    }
  }

  // out_e = (Θ V Θ)_e for the symmetric V supported on the pattern, Θ's own support: column j of
  // V Θ is accumulated sparsely, then each entry (i, j) is Θ's column i against it.
  // O(Σ_j Σ_{l ∈ N(j)} |N(l)|) flops.
  void product_theta(const double* v, double* out) {
    const std::vector<Index>& ptr = ws_.adj_ptr;
    const std::vector<Index>& idx = ws_.adj_idx;
    const std::vector<Index>& ent = ws_.adj_e;
    const std::vector<Index>& colptr = ws_.colptr;
    double* t = ws_.tvec.get(p_);
    std::fill(t, t + p_, 0.0);
    for (Index j = 0; j < p_; ++j) {
      for (Index a = ptr[static_cast<std::size_t>(j)]; a < ptr[static_cast<std::size_t>(j + 1)]; ++a) {
        const Index l = idx[static_cast<std::size_t>(a)];
        const double th = Theta_(l, j);
        for (Index b = ptr[static_cast<std::size_t>(l)]; b < ptr[static_cast<std::size_t>(l + 1)]; ++b)
          t[idx[static_cast<std::size_t>(b)]] += v[ent[static_cast<std::size_t>(b)]] * th;
      }
      for (Index e = colptr[static_cast<std::size_t>(j)]; e < colptr[static_cast<std::size_t>(j + 1)]; ++e) {
        const Index i = rows_[static_cast<std::size_t>(e)];
        double acc = 0.0;
        for (Index b = ptr[static_cast<std::size_t>(i)]; b < ptr[static_cast<std::size_t>(i + 1)]; ++b) {
          const Index k = idx[static_cast<std::size_t>(b)];
          acc += Theta_(k, i) * t[k];
        }
        out[e] = acc;
      }
      for (Index a = ptr[static_cast<std::size_t>(j)]; a < ptr[static_cast<std::size_t>(j + 1)]; ++a) {
        const Index l = idx[static_cast<std::size_t>(a)];
        for (Index b = ptr[static_cast<std::size_t>(l)]; b < ptr[static_cast<std::size_t>(l + 1)]; ++b)
          t[idx[static_cast<std::size_t>(b)]] = 0.0;
      }
    }
  }

  // Preconditioned conjugate gradients for P_E(W D W) = −G (G in hg, D into hd) in the inner
  // product with weights hw, to relative residual `eta`, preconditioned by P_E(Θ R Θ). The iterates
  // are descent directions.
  bool newton_cg(Index m, double eta) {
    build_adjacency();
    VecMap g(ws_.hg.get(m), m), d(ws_.hd.get(m), m), s(ws_.hw.get(m), m);
    VecMap r(ws_.cg_r.get(m), m), z(ws_.cg_z.get(m), m), pdir(ws_.cg_p.get(m), m), q(ws_.cg_q.get(m), m);
    d.setZero();
    r = -g;
    const double bnorm = std::sqrt(s.dot(r.cwiseAbs2()));
    if (!(bnorm > 0.0)) return false;
    product_theta(r.data(), z.data());
    pdir = z;
    double rz = s.dot(r.cwiseProduct(z));
    const int max_iter = 1000;
    for (int k = 0; k < max_iter; ++k) {
      product_w(pdir.data(), q.data());
      const double pq = s.dot(pdir.cwiseProduct(q));
      if (!(pq > 0.0) || !std::isfinite(pq)) break;
      const double a = rz / pq;
      d.noalias() += a * pdir;
      r.noalias() -= a * q;
      if (std::sqrt(s.dot(r.cwiseAbs2())) <= eta * bnorm) break;
      product_theta(r.data(), z.data());
      const double rz_next = s.dot(r.cwiseProduct(z));
      pdir = z + (rz_next / rz) * pdir;
      rz = rz_next;
    }
    return d.allFinite() && d.squaredNorm() > 0.0;
  }

  // Θ = Θ_prev + t Δ on the pattern (Δ in hd), with entries that change sign set to zero.
  void projected_step(Index m, double t) {
    const double* dd = ws_.hd.data.data();
    Theta_ = Theta_prev_;
    for (Index e = 0; e < m; ++e) {
      const Index i = rows_[static_cast<std::size_t>(e)], jj = cols_[static_cast<std::size_t>(e)];
      const double old = Theta_prev_(i, jj);
      double x = old + t * dd[e];
      if (i != jj && sign_of(x) != sign_of(old)) x = 0.0;
      Theta_(i, jj) = x;
      Theta_(jj, i) = x;
    }
  }

  // Objective tr(SΘ) − log|Θ| + ρ‖Θ‖₁ from the Cholesky factor L of Θ.
  double objective_from_factor(const MatMap& Theta, const MatMap& L) const {
    double l1 = Theta.cwiseAbs().sum() - Theta.diagonal().cwiseAbs().sum();
    if (penalize_diagonal_) l1 += Theta.diagonal().sum();
    return S_.cwiseProduct(Theta).sum() - 2.0 * L.diagonal().array().log().sum() + rho_ * l1;
  }

  // Column j of Q = w₂₂ Θ₁₁⁻¹ (entry k), from W and the saved old column w of W.
  double q_entry(Index r, Index k) const { return dual_ ? W_(r, k) : wnew_ * (W_(r, k) - w_(r) * w_(k) / wold_); }

  // g = Qβ + s₁₂ from scratch (entries other than j), over the support.
  void compute_gradient(Index j) {
    g_ = S_.col(j);
    double wb = 0.0;
    for (Index k : support_) {
      g_.noalias() += (wnew_ * beta_(k)) * W_.col(k);
      wb += w_(k) * beta_(k);
    }
    if (!dual_) g_.noalias() -= (wnew_ * wb / wold_) * w_;
    g_(j) = 0.0;
  }

  void rebuild_support(Index j) {
    support_.clear();
    for (Index i = 0; i < p_; ++i)
      if (i != j && beta_(i) != 0.0) support_.push_back(i);
  }

  // One coordinate step on β_i; returns its normalised KKT residual.
  double coordinate_step(Index i, Index j, bool& pattern_changed) {
    const double q = dual_ ? W_(i, i) : wnew_ * (W_(i, i) - w_(i) * w_(i) / wold_);
    if (!(q > 0.0)) return 0.0;
    const double old = beta_(i);
    const double z = soft_threshold(q * old - g_(i), rho_);
    const double updated = z == 0.0 ? 0.0 : z / q;
    if (updated == old) return 0.0;
    const double delta = updated - old;
    beta_(i) = updated;
    if (sign_of(updated) != sign_of(old)) {
      pattern_changed = true;
      if (old == 0.0) support_.push_back(i);
    }
    if (dual_) {
      g_.noalias() += delta * W_.col(i);
    } else {
      g_.noalias() += (wnew_ * delta) * W_.col(i) - (wnew_ * delta * w_(i) / wold_) * w_;
    }
    g_(j) = 0.0;
    return std::abs(delta) * q / (scale_(i) * scale_(j));
  }

  // Coordinate passes over the support until the largest normalised step is below eps_cd_.
  // Returns whether the sign pattern changed.
  bool active_passes(Index j) {
    constexpr int kMaxActivePasses = 1000;
    rebuild_support(j);
    bool changed = false;
    for (int pass = 0; pass < kMaxActivePasses && cd_steps_left_ > 0; ++pass) {
      double vmax = 0.0;
      const std::size_t n = support_.size();
      for (std::size_t t = 0; t < n; ++t) vmax = std::max(vmax, coordinate_step(support_[t], j, changed));
      cd_steps_left_ -= static_cast<long long>(n);
      if (vmax <= eps_cd_) break;
    }
    return changed;
  }

  // Q_AA (lower triangle) for the current support A, into the direct-solve buffer.
  Eigen::Map<Matrix> support_matrix(Index k) {
    Eigen::Map<Matrix> Q(qaa_, k, k);
    for (Index b = 0; b < k; ++b) {
      const Index ib = support_[static_cast<std::size_t>(b)];
      for (Index a = b; a < k; ++a) Q(a, b) = q_entry(support_[static_cast<std::size_t>(a)], ib);
    }
    return Q;
  }

  // Direct solve of Q_AA β_A = −(s_A + ρ sign_A) on the current support A. Keeps the result when its
  // signs agree with the pattern (it is then the lasso optimum restricted to A, no worse than the
  // current iterate); returns true when it also satisfies the KKT conditions off A.
  bool try_exact(Index j) {
    rebuild_support(j);
    const Index k = static_cast<Index>(support_.size());
    if (k == 0 || k > cap_) return false;
    auto Q = support_matrix(k);
    signs_.clear();
    for (Index a = 0; a < k; ++a) {
      const Index ia = support_[static_cast<std::size_t>(a)];
      signs_.push_back(sign_of(beta_(ia)));
      rhs_(a) = -(S_(ia, j) + rho_ * signs_.back());
    }
    if (!solve_spd(Q.data(), k, rhs_.data())) return false;
    auto x = rhs_.head(k);
    for (Index a = 0; a < k; ++a)
      if (sign_of(x(a)) != signs_[static_cast<std::size_t>(a)]) return false;
    for (Index a = 0; a < k; ++a) beta_(support_[static_cast<std::size_t>(a)]) = x(a);
    compute_gradient(j);
    constexpr double slack = 1e-13;
    for (Index i = 0; i < p_; ++i) {
      if (i == j || beta_(i) != 0.0) continue;
      if (std::abs(g_(i)) > rho_ + slack * scale_(i) * scale_(j)) return false;
    }
    return true;
  }

  void update_column(Index j) {
    dual_ = false;
    wold_ = W_(j, j);
    wnew_ = wtarget_(j);
    w_ = W_.col(j);
    beta_ = Theta_.col(j);
    beta_(j) = 0.0;
    if (!active_set_column(j)) {
      rebuild_support(j);
      compute_gradient(j);
      cd_column(j);
    }
    store_column(j);
  }

  // Active-set method for the column lasso: solve the linear system on the support with the
  // current signs; step towards its solution up to the first sign change while it is inconsistent
  // (dropping the entry that reaches zero); when consistent, check the KKT conditions off the
  // support and let one coordinate-descent pass bring in the violators. Returns false (leaving a
  // valid iterate) when the support outgrows the direct-solve cap or the rounds run out.
  bool active_set_column(Index j) {
    constexpr int kMaxRounds = 50;
    for (int round = 0; round < kMaxRounds; ++round) {
      if (!restricted_solve(j)) return false;
      constexpr double slack = 1e-13;
      bool optimal = true;
      for (Index i = 0; i < p_ && optimal; ++i)
        if (i != j && beta_(i) == 0.0 && std::abs(g_(i)) > rho_ + slack * scale_(i) * scale_(j)) optimal = false;
      if (optimal) return true;
      bool changed = false;
      for (Index i = 0; i < p_; ++i)
        if (i != j) coordinate_step(i, j, changed);
    }
    return false;
  }

  // Minimises the column lasso over the current support with its signs held (an equality-
  // constrained quadratic). While the solution x disagrees with the signs, the entries that flip are
  // dropped: all at once when x with those entries set to zero lowers the lasso objective (the step
  // of a projected Newton method), otherwise only the first to reach zero on the way from β to x
  // (the objective falls along that segment). Ends with β the restricted optimum and g = Qβ + s
  // fresh.
  bool restricted_solve(Index j) {
    for (;;) {
      rebuild_support(j);
      const Index k = static_cast<Index>(support_.size());
      if (k > cap_) return false;
      if (k == 0) {
        compute_gradient(j);
        return true;
      }
      auto Q = support_matrix(k);
      for (Index a = 0; a < k; ++a) {
        const Index ia = support_[static_cast<std::size_t>(a)];
        rhs_(a) = -(S_(ia, j) + rho_ * sign_of(beta_(ia)));
      }
      if (!solve_spd(Q.data(), k, rhs_.data())) return false;
      auto x = rhs_.head(k);
      double t = 1.0;
      Index hit = -1, flips = 0;
      for (Index a = 0; a < k; ++a) {
        const Index ia = support_[static_cast<std::size_t>(a)];
        const double b0 = beta_(ia);
        if (sign_of(x(a)) != sign_of(b0)) {
          ++flips;
          const double ta = b0 / (b0 - x(a));  // in (0, 1]
          if (ta < t || hit < 0) {
            t = std::min(t, ta);
            hit = ia;
          }
        }
      }
      if (hit < 0) {
        for (Index a = 0; a < k; ++a) beta_(support_[static_cast<std::size_t>(a)]) = x(a);
        compute_gradient(j);
        return true;
      }
      if (flips > 1) {
        // The projected solution against the current β, through the Cholesky factor L of Q_AA
        // (held in Q): ½ vᵀQv = ½ ‖Lᵀv‖².
        VecMap z(ws_.zproj.get(p_), k), bcur(ws_.zcur.get(p_), k);
        for (Index a = 0; a < k; ++a) {
          const double b0 = beta_(support_[static_cast<std::size_t>(a)]);
          z(a) = sign_of(x(a)) == sign_of(b0) ? x(a) : 0.0;
          bcur(a) = b0;
        }
        if (lasso_value(Q, j, z) < lasso_value(Q, j, bcur)) {
          for (Index a = 0; a < k; ++a) beta_(support_[static_cast<std::size_t>(a)]) = z(a);
          continue;
        }
      }
      for (Index a = 0; a < k; ++a) {
        const Index ia = support_[static_cast<std::size_t>(a)];
        const double b0 = beta_(ia);
        const double b1 = b0 + t * (x(a) - b0);
        beta_(ia) = (ia == hit || sign_of(b1) != sign_of(b0)) ? 0.0 : b1;
      }
    }
  }

  // ½ vᵀ Q_AA v + s_Aᵀ v + ρ ‖v‖₁ on the support A, given the Cholesky factor L of Q_AA (lower
  // triangle of `L`).
  double lasso_value(const Eigen::Map<Matrix>& L, Index j, const VecMap& v) const {
    const Index k = v.size();
    double quad = 0.0, lin = 0.0;
    for (Index c = 0; c < k; ++c) {
      double acc = 0.0;
      for (Index i = c; i < k; ++i) acc += L(i, c) * v(i);
      quad += acc * acc;
      lin += S_(support_[static_cast<std::size_t>(c)], j) * v(c) + rho_ * std::abs(v(c));
    }
    return 0.5 * quad + lin;
  }

  // Coordinate descent with an exact finish whenever the sign pattern is stable: `dirty` marks a
  // pattern not yet solved directly, `stable` one that survived a full pass (the warm start's
  // pattern is tried at once).
  void cd_column(Index j) {
    bool dirty = true;
    bool stable = true;
    constexpr int kMaxRounds = 1000;
    // A budget of coordinate steps per column: on a nearly singular Θ₁₁⁻¹ with a tiny ρ coordinate
    // descent crawls, and the rounds and passes could otherwise multiply to 10⁶ sweeps of the
    // column. An inexact column is safe — convergence is decided by the duality gap — and the
    // next sweep continues from it.
    cd_steps_left_ = std::max<long long>(100000, 100LL * p_ * p_);
    for (int round = 0; round < kMaxRounds && cd_steps_left_ > 0; ++round) {
      if (dirty && stable) {
        dirty = false;
        if (try_exact(j)) break;
      }
      bool changed = false;
      double vmax = 0.0;
      for (Index i = 0; i < p_; ++i)
        if (i != j) vmax = std::max(vmax, coordinate_step(i, j, changed));
      cd_steps_left_ -= p_;
      if (changed) {
        dirty = true;
        stable = false;
        active_passes(j);
        continue;
      }
      stable = true;
      if (dirty) continue;
      if (vmax <= eps_cd_) break;
      if (active_passes(j)) {
        dirty = true;
        stable = false;
      }
    }
  }

  // θ₁₂ = β, θ₂₂ = 1/w₂₂ + βᵀ Θ₁₁⁻¹ β with v = Θ₁₁⁻¹ β recomputed from W; rank-two update of W.
  void store_column(Index j) {
    rebuild_support(j);
    v_.setZero();
    double wb = 0.0;
    for (Index k : support_) {
      v_.noalias() += beta_(k) * W_.col(k);
      wb += w_(k) * beta_(k);
    }
    v_.noalias() -= (wb / wold_) * w_;
    v_(j) = 0.0;
    const double theta22 = 1.0 / wnew_ + std::max(0.0, beta_.dot(v_));
    // W₁₁ ← Θ₁₁⁻¹ + w₂₂ v vᵀ = W₁₁ − w wᵀ/w_old + w₂₂ v vᵀ;  w₁₂ ← −w₂₂ v;  W₂₂ ← w₂₂.
    const Index n = p_;
    const double* wp = w_.data();
    const double* vp = v_.data();
    double* Wp = W_.data();
    for (Index c = 0; c < n; ++c) {
      const double a = -wp[c] / wold_;
      const double b = wnew_ * vp[c];
      double* col = Wp + c * n;
      for (Index r = 0; r < n; ++r) col[r] += a * wp[r] + b * vp[r];
    }
    W_.col(j) = -wnew_ * v_;
    W_.row(j) = W_.col(j).transpose();
    W_(j, j) = wnew_;
    Theta_.col(j) = beta_;
    Theta_.row(j) = beta_.transpose();
    Theta_(j, j) = theta22;
  }

  Workspace& ws_;
  ConstMatMap S_;
  Index p_;
  double rho_;
  bool penalize_diagonal_;
  MatMap Theta_, W_, Theta_prev_, L_, work1_, work2_, work3_;
  VecMap wtarget_, scale_, inv_scale_, w_, beta_, g_, v_, rhs_, bdiag_;
  std::vector<Index>& support_;
  std::vector<int>& signs_;
  std::vector<Index>& rows_;
  std::vector<Index>& cols_;
  double* qaa_ = nullptr;
  Index direct_cap_ = 0;
  bool newton_cut_short_ = false;  // the last Newton phase stopped on sign changes
  bool newton_at_floor_ = false;   // the last Newton phase stopped with λ at rounding level
  Index cap_ = 0;
  double wold_ = 1.0, wnew_ = 1.0, eps_cd_ = 1e-3;
  bool dual_ = false;  // the column machinery serves the dual sweeps (Q = W₁₁)
  int n_iter_ = 0;
  bool converged_ = false;
  long long cd_steps_left_ = 0;  // coordinate steps left to the current cd_column
  double gap_ = kInf;
};

/// Symmetrised copy of S into `out` after validation of shape, finiteness and symmetry (one pass).
void validated_covariance(const Eigen::Ref<const Matrix>& S, const char* who, double* out) {
  if (S.rows() != S.cols() || S.rows() == 0)
    throw std::invalid_argument(std::string(who) + ": S must be a non-empty square matrix; got shape " + shape(S));
  const Index p = S.rows();
  MatMap O(out, p, p);
  double amax = 0.0, asym = 0.0;
  bool finite = true;
  for (Index j = 0; j < p; ++j) {
    for (Index i = j; i < p; ++i) {
      const double a = S(i, j), b = S(j, i);
      finite = finite && std::isfinite(a) && std::isfinite(b);
      amax = std::max(amax, std::max(std::abs(a), std::abs(b)));
      asym = std::max(asym, std::abs(a - b));
      const double m = 0.5 * (a + b);
      O(i, j) = m;
      O(j, i) = m;
    }
  }
  if (!finite) throw std::invalid_argument(std::string(who) + ": S contains NaN or infinite values");
  if (asym > 1e-10 * amax)
    throw std::invalid_argument(std::string(who) + ": S must be symmetric; max |S - S^T| = " + fmt(asym) +
                                " exceeds 1e-10 * max |S| = " + fmt(1e-10 * amax));
}

void check_rho(double rho, const char* who) {
  if (!std::isfinite(rho) || rho < 0.0)
    throw std::invalid_argument(std::string(who) + ": rho must be a finite number >= 0; got " + fmt(rho));
}

}  // namespace

struct GlassoSolver::Impl {
  Workspace ws;

  void solve(const Eigen::Ref<const Matrix>& S_in, double rho, const GlassoOptions& options,
             const Matrix* precision_init, GlassoResult& r) {
    const char* who = "graphical_lasso";
    const Index p = S_in.rows();
    if (S_in.rows() != S_in.cols() || p == 0)
      throw std::invalid_argument(std::string(who) + ": S must be a non-empty square matrix; got shape " +
                                  shape(S_in));
    double* Sbuf = ws.S_full.get(p * p);
    validated_covariance(S_in, who, Sbuf);
    const MatMap S(Sbuf, p, p);
    check_rho(rho, who);
    if (!(options.tol >= 0.0) || !std::isfinite(options.tol))
      throw std::invalid_argument("graphical_lasso: tol must be a finite number >= 0; got " + fmt(options.tol));
    if (options.max_iter < 0)
      throw std::invalid_argument("graphical_lasso: max_iter must be >= 0; got " + std::to_string(options.max_iter));
    const bool pd = options.penalize_diagonal;
    const double rho_d = pd ? rho : 0.0;
    // Every invalid argument is reported before the unbounded problem of a zero diagonal entry.
    for (Index i = 0; i < p; ++i)
      if (S(i, i) < 0.0)
        throw std::invalid_argument("graphical_lasso: S must be positive semi-definite; got S[" + std::to_string(i) +
                                    ", " + std::to_string(i) + "] = " + fmt(S(i, i)));
    for (Index i = 0; i < p; ++i) {
      if (!(S(i, i) + rho_d > 0.0))
        throw NumericalError("graphical_lasso: S[" + std::to_string(i) + ", " + std::to_string(i) +
                             "] = 0 makes the problem unbounded (a constant feature); penalise the diagonal "
                             "or remove the feature");
    }

    // The warm start, symmetrised into the workspace (it may alias the result).
    bool warm = false;
    double* init = nullptr;
    if (precision_init != nullptr) {
      const Matrix& P0 = *precision_init;
      if (P0.rows() != p || P0.cols() != p)
        throw std::invalid_argument("graphical_lasso: precision_init must have the shape of S (" + std::to_string(p) +
                                    ", " + std::to_string(p) + "); got " + shape(P0));
      if (!P0.allFinite())
        throw std::invalid_argument("graphical_lasso: precision_init contains NaN or infinite values");
      init = ws.init_full.get(p * p);
      MatMap I(init, p, p);
      for (Index j = 0; j < p; ++j)
        for (Index i = j; i < p; ++i) {
          const double m = 0.5 * (P0(i, j) + P0(j, i));
          I(i, j) = m;
          I(j, i) = m;
        }
      warm = true;
    }

    r.precision.resize(p, p);
    r.covariance.resize(p, p);
    if (rho == 0.0) {
      MatMap L(ws.L.get(p * p), p, p), T(ws.work1.get(p * p), p, p);
      L = S;
      if (!cholesky_in_place(L))
        throw NumericalError(
            "graphical_lasso: S is not positive definite, so with rho = 0 the precision S^-1 does not exist; "
            "use rho > 0");
      // L_jj² / S_jj is the share of variable j's variance not explained by the variables before
      // it (scale-free: a badly scaled but well-conditioned S passes). Below kMinPivotShareRho0 the
      // inverse has no correct digit left.
      double share = 1.0;
      for (Index j = 0; j < p; ++j) share = std::min(share, L(j, j) * L(j, j) / S(j, j));
      if (!(share > kMinPivotShareRho0))
        throw NumericalError("graphical_lasso: S is numerically singular (a variable has a share " + fmt(share) +
                             " of its variance not explained by the others), so with rho = 0 the precision "
                             "S^-1 is not determined; use rho > 0");
      inverse_from_factor(L, r.precision, T);
      r.covariance = S;
      MatMap LP(ws.Theta_prev.get(p * p), p, p), W(ws.W.get(p * p), p, p);
      MatMap D(ws.work2.get(p * p), p, p), B(ws.work3.get(p * p), p, p);
      LP = r.precision;
      if (!cholesky_in_place(LP))
        throw NumericalError("graphical_lasso: S is numerically singular, so with rho = 0 the precision S^-1 is "
                             "not determined; use rho > 0");
      inverse_from_factor(LP, W, T);
      r.gap = gap_from_factor(S, rho, pd, r.precision, LP, W, D, T, B, VecMap(ws.bdiag.get(p), p));
      r.n_iter = 0;
      r.converged = true;
      return;
    }

    // Exact covariance thresholding: connected components of the graph |S_ij| > ρ, each listed by
    // increasing index (order[comp_start[c] .. comp_start[c + 1])).
    std::vector<Index>& label = ws.label;
    std::vector<Index>& stack = ws.stack;
    label.assign(static_cast<std::size_t>(p), -1);
    reserve_at_least(stack, p);
    stack.clear();
    Index n_comp = 0;
    for (Index s = 0; s < p; ++s) {
      if (label[static_cast<std::size_t>(s)] >= 0) continue;
      label[static_cast<std::size_t>(s)] = n_comp;
      stack.push_back(s);
      while (!stack.empty()) {
        const Index u = stack.back();
        stack.pop_back();
        for (Index t = 0; t < p; ++t) {
          if (label[static_cast<std::size_t>(t)] < 0 && t != u && std::abs(S(t, u)) > rho) {
            label[static_cast<std::size_t>(t)] = n_comp;
            stack.push_back(t);
          }
        }
      }
      ++n_comp;
    }
    std::vector<Index>& start = ws.comp_start;
    std::vector<Index>& order = ws.order;
    start.assign(static_cast<std::size_t>(n_comp + 1), 0);
    for (Index i = 0; i < p; ++i) ++start[static_cast<std::size_t>(label[static_cast<std::size_t>(i)] + 1)];
    for (Index c = 0; c < n_comp; ++c) start[static_cast<std::size_t>(c + 1)] += start[static_cast<std::size_t>(c)];
    order.resize(static_cast<std::size_t>(p));
    {
      // Stable placement through the stack buffer as the insertion cursor of each component.
      stack.assign(start.begin(), start.end() - 1);
      for (Index i = 0; i < p; ++i) {
        const auto c = static_cast<std::size_t>(label[static_cast<std::size_t>(i)]);
        order[static_cast<std::size_t>(stack[c]++)] = i;
      }
    }

    // A warm start that is not positive definite gives way to the cold start (for a single
    // component the component solver makes the same check).
    if (warm && n_comp > 1) {
      MatMap L(ws.L.get(p * p), p, p);
      L = MatMap(init, p, p);
      warm = cholesky_in_place(L);
    }

    r.n_iter = 0;
    r.converged = true;
    r.gap = 0.0;
    if (n_comp == 1) {
      ComponentSolver solver(ws, Sbuf, p, rho, pd);
      solver.solve(warm ? init : nullptr, options.tol, options.max_iter);
      r.precision = solver.precision();
      r.covariance = solver.covariance();
      r.n_iter = solver.n_iter();
      r.converged = solver.converged();
      r.gap = solver.gap();
      return;
    }
    r.precision.setZero();
    r.covariance.setZero();
    for (Index c = 0; c < n_comp; ++c) {
      const Index b0 = start[static_cast<std::size_t>(c)];
      const Index m = start[static_cast<std::size_t>(c + 1)] - b0;
      const Index* idx = order.data() + b0;
      if (m == 1) {
        const Index i = idx[0];
        r.covariance(i, i) = S(i, i) + rho_d;
        r.precision(i, i) = 1.0 / (S(i, i) + rho_d);
        continue;
      }
      MatMap Sc(ws.Sc.get(m * m), m, m);
      for (Index b = 0; b < m; ++b)
        for (Index a = 0; a < m; ++a) Sc(a, b) = S(idx[a], idx[b]);
      double* Ic = nullptr;
      if (warm) {
        Ic = ws.Ic.get(m * m);
        const MatMap I(init, p, p);
        MatMap Icm(Ic, m, m);
        for (Index b = 0; b < m; ++b)
          for (Index a = 0; a < m; ++a) Icm(a, b) = I(idx[a], idx[b]);
      }
      ComponentSolver solver(ws, Sc.data(), m, rho, pd);
      solver.solve(Ic, options.tol, options.max_iter);
      const MatMap& Pc = solver.precision();
      const MatMap& Wc = solver.covariance();
      for (Index b = 0; b < m; ++b)
        for (Index a = 0; a < m; ++a) {
          r.precision(idx[a], idx[b]) = Pc(a, b);
          r.covariance(idx[a], idx[b]) = Wc(a, b);
        }
      r.n_iter = std::max(r.n_iter, solver.n_iter());
      r.converged = r.converged && solver.converged();
      r.gap += solver.gap();
    }
  }
};

GlassoSolver::GlassoSolver() : impl_(new Impl) {}
GlassoSolver::~GlassoSolver() = default;
GlassoSolver::GlassoSolver(const GlassoSolver&) : impl_(new Impl) {}
GlassoSolver& GlassoSolver::operator=(const GlassoSolver&) { return *this; }
GlassoSolver::GlassoSolver(GlassoSolver&& other) noexcept = default;
GlassoSolver& GlassoSolver::operator=(GlassoSolver&& other) noexcept = default;

void GlassoSolver::solve(const Eigen::Ref<const Matrix>& S, double rho, const GlassoOptions& options,
                         const Matrix* precision_init, GlassoResult& result) {
  if (!impl_) impl_.reset(new Impl);
  impl_->solve(S, rho, options, precision_init, result);
  // A diagonal of S (+ρ) near the smallest doubles has a precision beyond the largest.
  if (!result.precision.allFinite() || !result.covariance.allFinite())
    throw NumericalError("graphical_lasso: the precision overflows (S is too close to zero for double precision)");
}

GlassoResult GlassoSolver::solve(const Eigen::Ref<const Matrix>& S, double rho, const GlassoOptions& options,
                                 const Matrix* precision_init) {
  GlassoResult r;
  solve(S, rho, options, precision_init, r);
  return r;
}

GlassoResult graphical_lasso(const Eigen::Ref<const Matrix>& S, double rho, const GlassoOptions& options,
                             const Matrix* precision_init) {
  GlassoSolver solver;
  return solver.solve(S, rho, options, precision_init);
}

double glasso_duality_gap(const Eigen::Ref<const Matrix>& S_in, double rho, const Eigen::Ref<const Matrix>& precision,
                          bool penalize_diagonal) {
  const char* who = "glasso_duality_gap";
  if (S_in.rows() != S_in.cols() || S_in.rows() == 0)
    throw std::invalid_argument(std::string(who) + ": S must be a non-empty square matrix; got shape " + shape(S_in));
  const Index p = S_in.rows();
  Matrix S(p, p);
  validated_covariance(S_in, who, S.data());
  check_rho(rho, who);
  if (precision.rows() != p || precision.cols() != p)
    throw std::invalid_argument("glasso_duality_gap: precision must have the shape of S (" + std::to_string(p) +
                                ", " + std::to_string(p) + "); got " + shape(precision));
  if (!precision.allFinite())
    throw std::invalid_argument("glasso_duality_gap: precision contains NaN or infinite values");
  const Matrix Theta = 0.5 * (precision + precision.transpose());
  Matrix L = Theta;
  if (!cholesky_in_place(L)) return kInf;
  Matrix W(p, p), T(p, p), D(p, p), B(p, p);
  Vector bdiag(p);
  inverse_from_factor(L, W, T);
  return gap_from_factor(S, rho, penalize_diagonal, Theta, L, W, D, T, B, bdiag);
}

double glasso_objective(const Eigen::Ref<const Matrix>& S_in, double rho, const Eigen::Ref<const Matrix>& precision,
                        bool penalize_diagonal) {
  const char* who = "glasso_objective";
  if (S_in.rows() != S_in.cols() || S_in.rows() == 0)
    throw std::invalid_argument(std::string(who) + ": S must be a non-empty square matrix; got shape " + shape(S_in));
  const Index p = S_in.rows();
  Matrix S(p, p);
  validated_covariance(S_in, who, S.data());
  check_rho(rho, who);
  if (precision.rows() != p || precision.cols() != p)
    throw std::invalid_argument("glasso_objective: precision must have the shape of S (" + std::to_string(p) + ", " +
                                std::to_string(p) + "); got " + shape(precision));
  if (!precision.allFinite())
    throw std::invalid_argument("glasso_objective: precision contains NaN or infinite values");
  const Matrix Theta = 0.5 * (precision + precision.transpose());
  Matrix L = Theta;
  if (!cholesky_in_place(L)) return kInf;
  const double logdet = 2.0 * L.diagonal().array().log().sum();
  double l1 = Theta.cwiseAbs().sum();
  if (!penalize_diagonal) l1 -= Theta.diagonal().cwiseAbs().sum();
  return S.cwiseProduct(Theta).sum() - logdet + rho * l1;
}

}  // namespace metaglasso
