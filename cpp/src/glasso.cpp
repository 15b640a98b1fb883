// Graphical lasso by primal block coordinate descent (P-GLASSO, Mazumder & Hastie, EJS 2012), with
// exact covariance thresholding (Witten, Friedman & Simon 2011; Mazumder & Hastie, JMLR 2012), a
// Newton finish on the settled sign pattern, and a duality-gap stopping rule.
//
// Column j of Θ = [Θ₁₁ θ₁₂; θ₁₂ᵀ θ₂₂] is updated with Θ₁₁ fixed. Minimising the objective over θ₂₂
// gives the Schur complement θ₂₂ − θ₁₂ᵀΘ₁₁⁻¹θ₁₂ = 1/w₂₂ (w₂₂ = s₂₂, plus ρ when the diagonal is
// penalised); substituting it leaves the lasso
//   minimise_β  ½ w₂₂ βᵀ Θ₁₁⁻¹ β + s₁₂ᵀ β + ρ ‖β‖₁,     θ₁₂ = β,  θ₂₂ = 1/w₂₂ + βᵀ Θ₁₁⁻¹ β.
// Whatever β is, the Schur complement stays 1/w₂₂ > 0, so Θ stays positive definite at every step.
// Θ₁₁⁻¹ = W₁₁ − w₁₂w₁₂ᵀ/W₂₂ is read off the current W = Θ⁻¹, which is kept up to date by a rank-two
// update per column (O(p²)) and recomputed from a Cholesky factor of Θ after every sweep. The column lasso is
// solved exactly by an active-set method: the linear system on the support with the current signs
// is solved directly, entries whose sign would flip are dropped, and a coordinate-descent pass brings
// in the KKT violators, until the column's KKT conditions hold. Columns whose support exceeds the
// direct-solve cap fall back to coordinate descent with the same exact finish.
//
// Block coordinate descent converges only linearly, slowly on ill-conditioned S. Once a sweep leaves
// the sign pattern of Θ (nearly) unchanged, Newton's method is run on the objective restricted to
// that pattern — smooth and self-concordant there — with damped, sign-preserving steps, each checked
// positive definite by Cholesky; it converges quadratically when the pattern is right, and the sweeps
// correct the pattern when it is not.
#include "metaglasso/glasso.hpp"

#include <Eigen/Cholesky>
#include <algorithm>
#include <cmath>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

namespace metaglasso {

namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

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

/// Lower Cholesky factor of a symmetric matrix in place (only the lower triangle is read).
/// Returns false when the matrix is not positive definite to working precision.
bool cholesky_in_place(Matrix& A) {
  Eigen::LLT<Eigen::Ref<Matrix>> llt(A);
  return llt.info() == Eigen::Success && A.diagonal().allFinite() && (A.diagonal().array() > 0.0).all();
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
double gap_from_factor(const Matrix& S, double rho, bool penalize_diagonal, const Matrix& Theta, const Matrix& L,
                       const Matrix& W, Matrix& Delta, Matrix& T, Matrix& B) {
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
  T.noalias() = Delta * L.triangularView<Eigen::Lower>();
  B.noalias() = L.transpose().triangularView<Eigen::Upper>() * T;
  // C = chol(I + B), lower triangle in place.
  for (Index c = 0; c < p; ++c) {
    for (Index r = c; r < p; ++r) B(r, c) = 0.5 * (B(r, c) + B(c, r));
  }
  Vector bdiag = B.diagonal();
  B.diagonal().array() += 1.0;
  if (!cholesky_in_place(B)) return kInf;
  double quad = 0.0;
  for (Index i = 0; i < p; ++i) {
    const double off = B.row(i).head(i).squaredNorm();
    const double ci = bdiag(i) - off;
    if (!(ci > -1.0)) return kInf;
    quad += off + (ci - std::log1p(ci));
  }
  const double gap = quad + linear;
  if (!std::isfinite(gap)) return kInf;
  return std::max(gap, 0.0);
}

/// W = Θ⁻¹ from the lower Cholesky factor L of Θ (exactly symmetric). `T` is a work matrix.
void inverse_from_factor(const Matrix& L, Matrix& W, Matrix& T) {
  const Index p = L.rows();
  T.setIdentity(p, p);
  L.triangularView<Eigen::Lower>().solveInPlace(T);  // T = L⁻¹ (lower triangular)
  W.setZero(p, p);
  W.selfadjointView<Eigen::Lower>().rankUpdate(T.transpose());  // W = L⁻ᵀ L⁻¹
  W.triangularView<Eigen::StrictlyUpper>() = W.transpose();
}

/// Solver of one connected component (all nodes linked through |S_ij| > ρ).
class ComponentSolver {
 public:
  ComponentSolver(const Matrix& S, double rho, bool penalize_diagonal)
      : S_(S),
        p_(S.rows()),
        rho_(rho),
        penalize_diagonal_(penalize_diagonal),
        Theta_(p_, p_),
        W_(p_, p_),
        Theta_prev_(p_, p_),
        L_(p_, p_),
        work1_(p_, p_),
        work2_(p_, p_),
        work3_(p_, p_),
        wtarget_(p_),
        scale_(p_),
        w_(p_),
        beta_(p_),
        g_(p_),
        qdiag_(p_),
        v_(p_),
        rhs_(p_) {
    const double rho_d = penalize_diagonal ? rho : 0.0;
    wtarget_ = S_.diagonal().array() + rho_d;
    scale_ = wtarget_.array().sqrt();
    support_.reserve(static_cast<std::size_t>(p_));
    signs_.reserve(static_cast<std::size_t>(p_));
    // Largest support solved directly: its Cholesky (cap³/3 flops) stays within a few times the
    // O(p²) cost of a column update.
    cap_ = std::max<Index>(100, static_cast<Index>(2.0 * std::cbrt(static_cast<double>(p_) * p_)));
    cap_ = std::min(cap_, p_ - 1);
    Qaa_.resize(cap_, cap_);
    // Largest pattern (lower triangle with diagonal) whose Newton system is solved through its
    // dense Hessian (|E|³/3 flops); larger ones use conjugate gradients (~3|E|p flops a product).
    direct_cap_ = std::min<Index>(1500, std::max<Index>(300, static_cast<Index>(std::sqrt(3000.0 * p_))));
  }

  /// Runs the sweeps from `init` (SPD, or nullptr for the diagonal cold start).
  void solve(const Matrix* init, double tol, int max_iter) {
    const double target = tol * static_cast<double>(p_);
    n_iter_ = 0;
    converged_ = false;
    gap_ = kInf;
    bool have_factor = false;
    if (init != nullptr) {
      Theta_ = *init;
      L_ = Theta_;
      have_factor = cholesky_in_place(L_);
    }
    if (have_factor) {
      inverse_from_factor(L_, W_, work1_);
      gap_ = gap_from_factor(S_, rho_, penalize_diagonal_, Theta_, L_, W_, work1_, work2_, work3_);
      if (gap_ <= target) {
        converged_ = true;
        polish(target, false);
        return;
      }
    } else {
      Theta_.setZero();
      W_.setZero();
      Theta_.diagonal() = wtarget_.cwiseInverse();
      W_.diagonal() = wtarget_;
    }
    // Relative accuracy of coordinate descent in a column (normalised KKT residual); tightened as
    // the gap falls, and further when the sweeps stall.
    eps_cd_ = 1e-3;
    if (std::isfinite(gap_)) eps_cd_ = std::min(eps_cd_, 0.01 * std::sqrt(gap_ / static_cast<double>(p_)));
    eps_cd_ = std::max(eps_cd_, 1e-15);
    int next_newton = 1, newton_wait = 1, floor_hits = 0;
    double floor_gap = kInf;
    for (int sweep = 1; sweep <= max_iter; ++sweep) {
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
      inverse_from_factor(L_, W_, work1_);
      // The gap (a few p³ flops) is evaluated once the sign pattern has nearly settled (before that
      // the iterate cannot be optimal), and every tenth sweep.
      const Index changes = pattern_changes();
      const Index support = support_size();
      if (changes > 2 && 50 * changes > support && sweep % 10 != 0 && sweep < max_iter) {
        gap_ = kInf;
        continue;
      }
      const double previous = gap_;
      gap_ = gap_from_factor(S_, rho_, penalize_diagonal_, Theta_, L_, W_, work1_, work2_, work3_);
      if (gap_ <= target) {
        converged_ = true;
        polish(target, false);
        return;
      }
      // Second-order finish on the current sign pattern once the sweeps have nearly settled it;
      // after a phase that found the pattern far from settled, wait 1, 2, 4, then 8 sweeps.
      if (50 * changes <= support && sweep >= next_newton) {
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
        // Newton has solved the settled pattern to rounding level three times running without
        // lowering the gap: `tol` is below the precision attainable for this S.
        if (newton_at_floor_ && changes == 0) {
          floor_hits = gap_ >= 0.5 * floor_gap ? floor_hits + 1 : 0;
          floor_gap = std::min(floor_gap, gap_);
          if (floor_hits >= 3) break;
        }
      }
      if (std::isfinite(gap_)) {
        eps_cd_ = std::min(eps_cd_, 0.01 * std::sqrt(gap_ / static_cast<double>(p_)));
        if (std::isfinite(previous) && gap_ >= previous) eps_cd_ *= 0.01;
        eps_cd_ = std::max(eps_cd_, 1e-15);
      }
    }
  }

  const Matrix& precision() const { return Theta_; }
  const Matrix& covariance() const { return W_; }
  int n_iter() const { return n_iter_; }
  bool converged() const { return converged_; }
  double gap() const { return gap_; }

 private:
  // Runs once the gap is within `target`. The gap bounds some errors of Θ only through their
  // squares: those of W's diagonal and of the KKT conditions |W_ij − S_ij| ≤ ρ at zeros of Θ. So
  // an entry missing from the pattern is brought in by one more sweep (counted in n_iter) when
  // such a condition is violated, and Newton's method on the pattern then makes Θ accurate to
  // working precision (skipped when it has just run). The converged iterate is kept if this ends
  // with a larger gap than `target`.
  void polish(double target, bool newton_done) {
    const bool missing = off_pattern_violation() > 1e-10;
    if (!missing && newton_done) return;
    Matrix best = Theta_;
    if (missing) {
      Theta_prev_ = Theta_;
      for (Index j = 0; j < p_; ++j) update_column(j);
      ++n_iter_;
      L_ = Theta_;
      if (Theta_.allFinite() && cholesky_in_place(L_)) {
        inverse_from_factor(L_, W_, work1_);
        gap_ = gap_from_factor(S_, rho_, penalize_diagonal_, Theta_, L_, W_, work1_, work2_, work3_);
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

  // Largest violation of |W_ij − S_ij| ≤ ρ where Θ_ij = 0 (i ≠ j), relative to √(w_ii w_jj).
  double off_pattern_violation() const {
    double v = 0.0;
    for (Index c = 0; c < p_; ++c)
      for (Index r = c + 1; r < p_; ++r)
        if (Theta_(r, c) == 0.0) v = std::max(v, (std::abs(W_(r, c) - S_(r, c)) - rho_) / (scale_(r) * scale_(c)));
    return v;
  }

  // L, W and the gap for the current Θ (which must be positive definite).
  void refresh() {
    L_ = Theta_;
    if (!cholesky_in_place(L_)) throw NumericalError("graphical_lasso: lost positive definiteness");
    inverse_from_factor(L_, W_, work1_);
    gap_ = gap_from_factor(S_, rho_, penalize_diagonal_, Theta_, L_, W_, work1_, work2_, work3_);
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

  // Newton's method for the objective restricted to the current sign pattern of Θ (the support E
  // with signs Z): minimise tr((S + ρZ)Θ) − log|Θ| over Θ supported on E, which is smooth and
  // self-concordant. Damped steps t = 1/(1 + λ) (λ the Newton decrement) while λ ≥ 1/4, full steps
  // after. A step that would flip signs is projected (flipped entries set to zero, leaving E) with
  // backtracking on the objective, falling back to the step cut at the first zero crossing, which
  // cannot increase it. Every iterate is checked positive definite by Cholesky. The Newton system is
  // solved through the dense Hessian for small patterns and by preconditioned conjugate gradients
  // otherwise. Returns whether the gap is within `target`; it stops early, with a valid iterate,
  // when the pattern proves wrong (the sweeps then correct it). It continues past the target until
  // λ² ≤ target² (and λ² ≤ 1e-24 on patterns solved directly): the gap bounds only the square of
  // some errors in Θ (the diagonal of W enters it quadratically), and a few more steps make Θ
  // accurate to working precision.
  bool newton_phase(double target) {
    const double rho_d = penalize_diagonal_ ? rho_ : 0.0;
    constexpr int kMaxSteps = 30;
    double previous_lambda2 = kInf;
    double first_gnorm = -1.0;
    Index factored_m = -1;  // size of the pattern whose Hessian factor is held in H_
    int cuts = 0;           // steps on which entries reached zero
    int stalls = 0;         // consecutive full steps after which the gap barely fell
    newton_cut_short_ = false;
    newton_at_floor_ = false;
    for (int step = 0; step < kMaxSteps; ++step) {
      rows_.clear();
      cols_.clear();
      for (Index c = 0; c < p_; ++c)
        for (Index r = c; r < p_; ++r)
          if (r == c || Theta_(r, c) != 0.0) {
            rows_.push_back(r);
            cols_.push_back(c);
          }
      const Index m = static_cast<Index>(rows_.size());
      if (hg_.size() < m) {
        hg_.resize(m);
        hd_.resize(m);
        hw_.resize(m);
      }
      auto g = hg_.head(m);
      auto d = hd_.head(m);
      auto s = hw_.head(m);
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
        if (H_.rows() < m) H_.resize(m, m);
        auto H = H_.topLeftCorner(m, m);
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
        // Inexact Newton: preconditioned conjugate gradients with the forcing term
        // η = min(0.1, (‖G‖/‖G₀‖)^½, (gap/p)^½) and preconditioner P_E(Θ R Θ).
        double eta = std::min(0.1, std::sqrt(gnorm / first_gnorm));
        if (std::isfinite(gap_)) eta = std::min(eta, std::sqrt(gap_ / static_cast<double>(p_)));
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
        if (!accepted) t = t_cross;
      }
      if (t >= t_cross) ++cuts;
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
      inverse_from_factor(L_, W_, work1_);
      const double gap_before = gap_;
      gap_ = gap_from_factor(S_, rho_, penalize_diagonal_, Theta_, L_, W_, work1_, work2_, work3_);
      // Converged once the decrement is also small: λ² ≤ target² (and ≤ 1e-24 on patterns solved
      // directly, where the extra, mostly chord, steps cost little), which leaves Θ accurate far
      // beyond √gap.
      if (gap_ <= target && lambda2 <= (m <= direct_cap_ ? std::min(target * target, 1e-24) : target * target))
        return true;
      // The pattern is still far from settled: leave it to the sweeps.
      if (cuts >= 3) {
        newton_cut_short_ = true;
        return gap_ <= target;
      }
      // The gap no longer follows the decrement (twice running): it comes from outside the pattern.
      stalls = (gap_ > target && t == 1.0 && lambda2 < 1e-6 && gap_ > 0.7 * gap_before) ? stalls + 1 : 0;
      if (stalls >= 2) return false;
    }
    return gap_ <= target;
  }

  // out_e = (M V M)_e for the symmetric V supported on E with entries v (M symmetric (p, p)).
  void sandwich(const Matrix& M, const Eigen::Ref<const Vector>& v, Eigen::Ref<Vector> out) {
    const Index m = static_cast<Index>(rows_.size());
    Matrix& T = work1_;
    Matrix& Tt = work2_;
    T.setZero();
    for (Index e = 0; e < m; ++e) {
      const Index i = rows_[static_cast<std::size_t>(e)], j = cols_[static_cast<std::size_t>(e)];
      const double x = v(e);
      if (x == 0.0) continue;
      T.col(j).noalias() += x * M.col(i);
      if (i != j) T.col(i).noalias() += x * M.col(j);
    }
    Tt = T.transpose();  // T = M V, so (M V M)_ij = T.row(i) · M.col(j)
    for (Index e = 0; e < m; ++e) {
      const Index i = rows_[static_cast<std::size_t>(e)], j = cols_[static_cast<std::size_t>(e)];
      out(e) = Tt.col(i).dot(M.col(j));
    }
  }

  // Preconditioned conjugate gradients for P_E(W D W) = −G (G in hg_, D into hd_) in the inner
  // product with weights hw_, to relative residual `eta`. The iterates are descent directions.
  bool newton_cg(Index m, double eta) {
    if (cg_r_.size() < m) {
      cg_r_.resize(m);
      cg_z_.resize(m);
      cg_p_.resize(m);
      cg_q_.resize(m);
    }
    auto g = hg_.head(m);
    auto d = hd_.head(m);
    auto s = hw_.head(m);
    auto r = cg_r_.head(m);
    auto z = cg_z_.head(m);
    auto pdir = cg_p_.head(m);
    auto q = cg_q_.head(m);
    d.setZero();
    r = -g;
    const double bnorm = std::sqrt(s.dot(r.cwiseAbs2()));
    if (!(bnorm > 0.0)) return false;
    sandwich(Theta_, r, z);
    pdir = z;
    double rz = s.dot(r.cwiseProduct(z));
    const int max_iter = 1000;
    for (int k = 0; k < max_iter; ++k) {
      sandwich(W_, pdir, q);
      const double pq = s.dot(pdir.cwiseProduct(q));
      if (!(pq > 0.0) || !std::isfinite(pq)) break;
      const double a = rz / pq;
      d.noalias() += a * pdir;
      r.noalias() -= a * q;
      if (std::sqrt(s.dot(r.cwiseAbs2())) <= eta * bnorm) break;
      sandwich(Theta_, r, z);
      const double rz_next = s.dot(r.cwiseProduct(z));
      pdir = z + (rz_next / rz) * pdir;
      rz = rz_next;
    }
    return d.allFinite() && d.squaredNorm() > 0.0;
  }

  // Θ = Θ_prev + t Δ on the pattern (Δ in hd_), with entries that change sign set to zero.
  void projected_step(Index m, double t) {
    Theta_ = Theta_prev_;
    for (Index e = 0; e < m; ++e) {
      const Index i = rows_[static_cast<std::size_t>(e)], jj = cols_[static_cast<std::size_t>(e)];
      const double old = Theta_prev_(i, jj);
      double x = old + t * hd_(e);
      if (i != jj && sign_of(x) != sign_of(old)) x = 0.0;
      Theta_(i, jj) = x;
      Theta_(jj, i) = x;
    }
  }

  // Objective tr(SΘ) − log|Θ| + ρ‖Θ‖₁ from the Cholesky factor L of Θ.
  double objective_from_factor(const Matrix& Theta, const Matrix& L) const {
    double l1 = Theta.cwiseAbs().sum() - Theta.diagonal().cwiseAbs().sum();
    if (penalize_diagonal_) l1 += Theta.diagonal().sum();
    return S_.cwiseProduct(Theta).sum() - 2.0 * L.diagonal().array().log().sum() + rho_ * l1;
  }

  // Column j of Q = w₂₂ Θ₁₁⁻¹ (entry k), from W and the saved old column w of W.
  double q_entry(Index r, Index k) const { return wnew_ * (W_(r, k) - w_(r) * w_(k) / wold_); }

  // g = Qβ + s₁₂ from scratch (entries other than j), over the support.
  void compute_gradient(Index j) {
    g_ = S_.col(j);
    double wb = 0.0;
    for (Index k : support_) {
      g_.noalias() += (wnew_ * beta_(k)) * W_.col(k);
      wb += w_(k) * beta_(k);
    }
    g_.noalias() -= (wnew_ * wb / wold_) * w_;
    g_(j) = 0.0;
  }

  void rebuild_support(Index j) {
    support_.clear();
    for (Index i = 0; i < p_; ++i)
      if (i != j && beta_(i) != 0.0) support_.push_back(i);
  }

  // One coordinate step on β_i; returns its normalised KKT residual.
  double coordinate_step(Index i, Index j, bool& pattern_changed) {
    const double q = qdiag_(i);
    if (!(q > 0.0)) return 0.0;
    const double old = beta_(i);
    const double updated = soft_threshold(q * old - g_(i), rho_) / q;
    if (updated == old) return 0.0;
    const double delta = updated - old;
    beta_(i) = updated;
    if (sign_of(updated) != sign_of(old)) {
      pattern_changed = true;
      if (old == 0.0) support_.push_back(i);
    }
    g_.noalias() += (wnew_ * delta) * W_.col(i) - (wnew_ * delta * w_(i) / wold_) * w_;
    g_(j) = 0.0;
    return std::abs(delta) * q / (scale_(i) * scale_(j));
  }

  // Coordinate passes over the support until the largest normalised step is below eps_cd_.
  // Returns whether the sign pattern changed.
  bool active_passes(Index j) {
    constexpr int kMaxActivePasses = 1000;
    rebuild_support(j);
    bool changed = false;
    for (int pass = 0; pass < kMaxActivePasses; ++pass) {
      double vmax = 0.0;
      const std::size_t n = support_.size();
      for (std::size_t t = 0; t < n; ++t) vmax = std::max(vmax, coordinate_step(support_[t], j, changed));
      if (vmax <= eps_cd_) break;
    }
    return changed;
  }

  // Direct solve of Q_AA β_A = −(s_A + ρ sign_A) on the current support A. Keeps the result when its
  // signs agree with the pattern (it is then the lasso optimum restricted to A, no worse than the
  // current iterate); returns true when it also satisfies the KKT conditions off A.
  bool try_exact(Index j) {
    rebuild_support(j);
    const Index k = static_cast<Index>(support_.size());
    if (k == 0 || k > cap_) return false;
    auto Q = Qaa_.topLeftCorner(k, k);
    for (Index b = 0; b < k; ++b) {
      const Index ib = support_[static_cast<std::size_t>(b)];
      for (Index a = b; a < k; ++a) Q(a, b) = q_entry(support_[static_cast<std::size_t>(a)], ib);
    }
    signs_.clear();
    for (Index a = 0; a < k; ++a) {
      const Index ia = support_[static_cast<std::size_t>(a)];
      signs_.push_back(sign_of(beta_(ia)));
      rhs_(a) = -(S_(ia, j) + rho_ * signs_.back());
    }
    Eigen::LLT<Eigen::Ref<Matrix>> llt(Q);
    if (llt.info() != Eigen::Success) return false;
    auto x = rhs_.head(k);
    llt.solveInPlace(x);
    for (Index a = 0; a < k; ++a)
      if (sign_of(x(a)) != signs_[static_cast<std::size_t>(a)] || !std::isfinite(x(a))) return false;
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
    wold_ = W_(j, j);
    wnew_ = wtarget_(j);
    w_ = W_.col(j);
    beta_ = Theta_.col(j);
    beta_(j) = 0.0;
    qdiag_ = wnew_ * (W_.diagonal().array() - w_.array().square() / wold_);
    qdiag_(j) = 0.0;
    rebuild_support(j);
    compute_gradient(j);
    if (!active_set_column(j)) cd_column(j);
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
  // constrained quadratic), stepping back to the first sign change and dropping that entry while
  // the solution disagrees with the signs. Ends with β the restricted optimum and g = Qβ + s fresh.
  bool restricted_solve(Index j) {
    for (;;) {
      rebuild_support(j);
      const Index k = static_cast<Index>(support_.size());
      if (k > cap_) return false;
      if (k == 0) {
        compute_gradient(j);
        return true;
      }
      auto Q = Qaa_.topLeftCorner(k, k);
      for (Index b = 0; b < k; ++b) {
        const Index ib = support_[static_cast<std::size_t>(b)];
        for (Index a = b; a < k; ++a) Q(a, b) = q_entry(support_[static_cast<std::size_t>(a)], ib);
      }
      for (Index a = 0; a < k; ++a) {
        const Index ia = support_[static_cast<std::size_t>(a)];
        rhs_(a) = -(S_(ia, j) + rho_ * sign_of(beta_(ia)));
      }
      Eigen::LLT<Eigen::Ref<Matrix>> llt(Q);
      if (llt.info() != Eigen::Success) return false;
      auto x = rhs_.head(k);
      llt.solveInPlace(x);
      if (!x.allFinite()) return false;
      double t = 1.0;
      Index hit = -1;
      for (Index a = 0; a < k; ++a) {
        const Index ia = support_[static_cast<std::size_t>(a)];
        const double b0 = beta_(ia);
        if (sign_of(x(a)) != sign_of(b0)) {
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
      for (Index a = 0; a < k; ++a) {
        const Index ia = support_[static_cast<std::size_t>(a)];
        const double b0 = beta_(ia);
        const double b1 = b0 + t * (x(a) - b0);
        beta_(ia) = (ia == hit || sign_of(b1) != sign_of(b0)) ? 0.0 : b1;
      }
    }
  }

  // Coordinate descent with an exact finish whenever the sign pattern is stable: `dirty` marks a
  // pattern not yet solved directly, `stable` one that survived a full pass (the warm start's
  // pattern is tried at once).
  void cd_column(Index j) {
    bool dirty = true;
    bool stable = true;
    constexpr int kMaxRounds = 1000;
    for (int round = 0; round < kMaxRounds; ++round) {
      if (dirty && stable) {
        dirty = false;
        if (try_exact(j)) break;
      }
      bool changed = false;
      double vmax = 0.0;
      for (Index i = 0; i < p_; ++i)
        if (i != j) vmax = std::max(vmax, coordinate_step(i, j, changed));
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
    for (Index c = 0; c < p_; ++c) {
      const double a = -w_(c) / wold_;
      const double b = wnew_ * v_(c);
      W_.col(c).noalias() += a * w_ + b * v_;
    }
    W_.col(j) = -wnew_ * v_;
    W_.row(j) = W_.col(j).transpose();
    W_(j, j) = wnew_;
    Theta_.col(j) = beta_;
    Theta_.row(j) = beta_.transpose();
    Theta_(j, j) = theta22;
  }

  const Matrix& S_;
  Index p_;
  double rho_;
  bool penalize_diagonal_;
  Matrix Theta_, W_, Theta_prev_, L_, work1_, work2_, work3_, Qaa_;
  Vector wtarget_, scale_, w_, beta_, g_, qdiag_, v_, rhs_;
  std::vector<Index> support_, rows_, cols_;
  std::vector<int> signs_;
  Matrix H_;
  Vector hg_, hd_, hw_, cg_r_, cg_z_, cg_p_, cg_q_;
  Index direct_cap_ = 0;
  bool newton_cut_short_ = false;  // the last Newton phase stopped on sign changes
  bool newton_at_floor_ = false;   // the last Newton phase stopped with λ at rounding level
  Index cap_ = 0;
  double wold_ = 1.0, wnew_ = 1.0, eps_cd_ = 1e-3;
  int n_iter_ = 0;
  bool converged_ = false;
  double gap_ = kInf;
};

/// Symmetrised copy of S after validation of shape, finiteness and symmetry.
Matrix validated_covariance(const Eigen::Ref<const Matrix>& S, const char* who) {
  if (S.rows() != S.cols() || S.rows() == 0)
    throw std::invalid_argument(std::string(who) + ": S must be a non-empty square matrix; got shape " + shape(S));
  if (!S.allFinite()) throw std::invalid_argument(std::string(who) + ": S contains NaN or infinite values");
  const double amax = S.cwiseAbs().maxCoeff();
  const double asym = (S - S.transpose()).cwiseAbs().maxCoeff();
  if (asym > 1e-10 * amax)
    throw std::invalid_argument(std::string(who) + ": S must be symmetric; max |S - S^T| = " + fmt(asym) +
                                " exceeds 1e-10 * max |S| = " + fmt(1e-10 * amax));
  return 0.5 * (S + S.transpose());
}

void check_rho(double rho, const char* who) {
  if (!std::isfinite(rho) || rho < 0.0)
    throw std::invalid_argument(std::string(who) + ": rho must be a finite number >= 0; got " + fmt(rho));
}

}  // namespace

GlassoResult graphical_lasso(const Eigen::Ref<const Matrix>& S_in, double rho, const GlassoOptions& options,
                             const Matrix* precision_init) {
  const char* who = "graphical_lasso";
  const Matrix S = validated_covariance(S_in, who);
  check_rho(rho, who);
  if (!(options.tol >= 0.0) || !std::isfinite(options.tol))
    throw std::invalid_argument("graphical_lasso: tol must be a finite number >= 0; got " + fmt(options.tol));
  if (options.max_iter < 0)
    throw std::invalid_argument("graphical_lasso: max_iter must be >= 0; got " + std::to_string(options.max_iter));
  const Index p = S.rows();
  const bool pd = options.penalize_diagonal;
  const double rho_d = pd ? rho : 0.0;
  for (Index i = 0; i < p; ++i) {
    if (S(i, i) < 0.0)
      throw std::invalid_argument("graphical_lasso: S must be positive semi-definite; got S[" + std::to_string(i) +
                                  ", " + std::to_string(i) + "] = " + fmt(S(i, i)));
    if (!(S(i, i) + rho_d > 0.0))
      throw NumericalError("graphical_lasso: S[" + std::to_string(i) + ", " + std::to_string(i) +
                           "] = 0 makes the problem unbounded (a constant feature); penalise the diagonal "
                           "or remove the feature");
  }

  Matrix init;
  bool warm = false;
  if (precision_init != nullptr) {
    const Matrix& P0 = *precision_init;
    if (P0.rows() != p || P0.cols() != p)
      throw std::invalid_argument("graphical_lasso: precision_init must have the shape of S (" + std::to_string(p) +
                                  ", " + std::to_string(p) + "); got " + shape(P0));
    if (!P0.allFinite())
      throw std::invalid_argument("graphical_lasso: precision_init contains NaN or infinite values");
    init = 0.5 * (P0 + P0.transpose());
    Matrix L = init;
    warm = cholesky_in_place(L);  // not positive definite: cold start
  }

  GlassoResult r;
  if (rho == 0.0) {
    Matrix L = S;
    if (!cholesky_in_place(L))
      throw NumericalError(
          "graphical_lasso: S is not positive definite, so with rho = 0 the precision S^-1 does not exist; "
          "use rho > 0");
    Matrix P;
    Matrix T(p, p);
    inverse_from_factor(L, P, T);
    r.precision = P;
    r.covariance = S;
    Matrix LP = P;
    if (!cholesky_in_place(LP)) throw NumericalError("graphical_lasso: S is numerically singular (rho = 0)");
    Matrix W, D(p, p), B(p, p);
    inverse_from_factor(LP, W, T);
    r.gap = gap_from_factor(S, rho, pd, P, LP, W, D, T, B);
    r.n_iter = 0;
    r.converged = true;
    return r;
  }

  // Exact covariance thresholding: connected components of the graph |S_ij| > ρ.
  std::vector<Index> label(static_cast<std::size_t>(p), -1);
  std::vector<Index> stack;
  stack.reserve(static_cast<std::size_t>(p));
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
  std::vector<std::vector<Index>> members(static_cast<std::size_t>(n_comp));
  for (Index i = 0; i < p; ++i) members[static_cast<std::size_t>(label[static_cast<std::size_t>(i)])].push_back(i);

  r.precision.setZero(p, p);
  r.covariance.setZero(p, p);
  r.n_iter = 0;
  r.converged = true;
  r.gap = 0.0;
  for (const auto& idx : members) {
    const Index m = static_cast<Index>(idx.size());
    if (m == 1) {
      const Index i = idx[0];
      r.covariance(i, i) = S(i, i) + rho_d;
      r.precision(i, i) = 1.0 / (S(i, i) + rho_d);
      continue;
    }
    Matrix Sc(m, m);
    for (Index b = 0; b < m; ++b)
      for (Index a = 0; a < m; ++a) Sc(a, b) = S(idx[static_cast<std::size_t>(a)], idx[static_cast<std::size_t>(b)]);
    Matrix Ic;
    if (warm) {
      Ic.resize(m, m);
      for (Index b = 0; b < m; ++b)
        for (Index a = 0; a < m; ++a)
          Ic(a, b) = init(idx[static_cast<std::size_t>(a)], idx[static_cast<std::size_t>(b)]);
    }
    ComponentSolver solver(Sc, rho, pd);
    solver.solve(warm ? &Ic : nullptr, options.tol, options.max_iter);
    const Matrix& Pc = solver.precision();
    const Matrix& Wc = solver.covariance();
    for (Index b = 0; b < m; ++b)
      for (Index a = 0; a < m; ++a) {
        r.precision(idx[static_cast<std::size_t>(a)], idx[static_cast<std::size_t>(b)]) = Pc(a, b);
        r.covariance(idx[static_cast<std::size_t>(a)], idx[static_cast<std::size_t>(b)]) = Wc(a, b);
      }
    r.n_iter = std::max(r.n_iter, solver.n_iter());
    r.converged = r.converged && solver.converged();
    r.gap += solver.gap();
  }
  return r;
}

double glasso_duality_gap(const Eigen::Ref<const Matrix>& S_in, double rho, const Eigen::Ref<const Matrix>& precision,
                          bool penalize_diagonal) {
  const char* who = "glasso_duality_gap";
  const Matrix S = validated_covariance(S_in, who);
  check_rho(rho, who);
  const Index p = S.rows();
  if (precision.rows() != p || precision.cols() != p)
    throw std::invalid_argument("glasso_duality_gap: precision must have the shape of S (" + std::to_string(p) +
                                ", " + std::to_string(p) + "); got " + shape(precision));
  if (!precision.allFinite())
    throw std::invalid_argument("glasso_duality_gap: precision contains NaN or infinite values");
  const Matrix Theta = 0.5 * (precision + precision.transpose());
  Matrix L = Theta;
  if (!cholesky_in_place(L)) return kInf;
  Matrix W, T(p, p), D(p, p), B(p, p);
  inverse_from_factor(L, W, T);
  return gap_from_factor(S, rho, penalize_diagonal, Theta, L, W, D, T, B);
}

double glasso_objective(const Eigen::Ref<const Matrix>& S_in, double rho, const Eigen::Ref<const Matrix>& precision,
                        bool penalize_diagonal) {
  const char* who = "glasso_objective";
  const Matrix S = validated_covariance(S_in, who);
  check_rho(rho, who);
  const Index p = S.rows();
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
