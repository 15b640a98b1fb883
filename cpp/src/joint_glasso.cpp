// Joint graphical lasso (fused and group penalties) for the K latent covariances of a fit.
#include "metaglasso/joint_glasso.hpp"

#include <Eigen/Cholesky>
#include <Eigen/Eigenvalues>
#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <string>

#include "kernels.hpp"

namespace metaglasso {

namespace {

using detail::format_number;
constexpr double kInf = std::numeric_limits<double>::infinity();

double soft(double x, double t) { return x > t ? x - t : (x < -t ? x + t : 0.0); }
double sign(double x) { return x > 0.0 ? 1.0 : (x < 0.0 ? -1.0 : 0.0); }

// The taut string: x of the chain's denoiser from the string X (X_i = x_0 + … + x_{i−1}) that is
// pinned at X_0 = 0 and X_n = y_0 + … + y_{n−1} and runs through the tube |X_i − Y_i| ≤ b, Y the
// cumulative sums of y. Optimality: x − y + Dᵀt = 0 with t_i = X_i − Y_i ∈ b ∂|x_i − x_{i−1}|, so
// the string touches the tube's top where x steps up and its bottom where x steps down. From each
// anchor the string goes straight for as long as one slope fits every tube window; when none does,
// it bends at the window that bounded the slope on the side that failed.
void tv_chain(const double* y, Index n, double b, double* x) {
  std::vector<double> Y(static_cast<std::size_t>(n + 1), 0.0);
  for (Index i = 0; i < n; ++i) Y[static_cast<std::size_t>(i + 1)] = Y[static_cast<std::size_t>(i)] + y[i];
  Index a = 0;
  double Xa = 0.0;
  while (a < n) {
    double lo = -kInf, hi = kInf;
    Index m_lo = a, m_hi = a;
    for (Index j = a + 1;; ++j) {
      const auto len = static_cast<double>(j - a);
      const double Yj = Y[static_cast<std::size_t>(j)];
      bool cut_low = false;  // else the string bends at the top
      if (j == n) {
        const double s = (Yj - Xa) / len;
        if (s < lo) cut_low = true;
        else if (s <= hi) {
          std::fill(x + a, x + n, s);
          a = n;
          break;
        }
      } else {
        const double l = (Yj - b - Xa) / len, h = (Yj + b - Xa) / len;
        if (h < lo) cut_low = true;
        else if (l <= hi) {
          // On a tie the later window binds: the segment runs as far as it can.
          if (l >= lo) lo = l, m_lo = j;
          if (h <= hi) hi = h, m_hi = j;
          continue;
        }
      }
      const Index m = cut_low ? m_lo : m_hi;  // the string bends at this window
      std::fill(x + a, x + m, cut_low ? lo : hi);
      Xa = Y[static_cast<std::size_t>(m)] + (cut_low ? -b : b);
      a = m;
      break;
    }
  }
}

// All pairs: the solution keeps the order of y (swapping two values that it reversed would lower
// ½‖x − y‖² and keep the symmetric penalty), and on ordered x the penalty Σ_{k<l} |x_k − x_l| is the
// linear Σ_r (2r − n + 1) x_(r) (0-based ranks). So x is the isotonic regression of
// y_(r) − b (2r − n + 1), by pool-adjacent-violators.
void tv_complete(const double* y, Index n, double b, double* x, std::vector<Index>& order,
                 std::vector<double>& sums, std::vector<Index>& counts) {
  order.resize(static_cast<std::size_t>(n));
  std::iota(order.begin(), order.end(), Index{0});
  std::stable_sort(order.begin(), order.end(), [y](Index p, Index q) { return y[p] < y[q]; });
  sums.clear();
  counts.clear();
  for (Index r = 0; r < n; ++r) {
    sums.push_back(y[order[static_cast<std::size_t>(r)]] - b * static_cast<double>(2 * r - n + 1));
    counts.push_back(1);
    while (sums.size() > 1) {
      const std::size_t last = sums.size() - 1;
      if (sums[last - 1] * static_cast<double>(counts[last]) <= sums[last] * static_cast<double>(counts[last - 1]))
        break;
      sums[last - 1] += sums[last];
      counts[last - 1] += counts[last];
      sums.pop_back();
      counts.pop_back();
    }
  }
  Index r = 0;
  for (std::size_t blk = 0; blk < sums.size(); ++blk) {
    const double mean = sums[blk] / static_cast<double>(counts[blk]);
    for (Index c = 0; c < counts[blk]; ++c, ++r) x[order[static_cast<std::size_t>(r)]] = mean;
  }
}

// Everything the solver works with, in units where the S_k have unit mean diagonal (A_k = S_k / c,
// Θ_k = c Λ_k, ρ_k / c, β / c): one scale for tolerances and the ADMM parameter.
struct Problem {
  Index K = 0, M = 0;
  std::vector<Matrix> A;
  std::vector<double> rho;  // ρ_k / c
  double beta = 0.0;        // β / c
  Coupling coupling;
  bool penalize_diagonal = true;
  double scale = 1.0;  // c
};

// Scratch of the proximal operator.
struct ProxWork {
  std::vector<double> y, x, sums;
  std::vector<Index> order, counts;
};

// Z = prox of t·(penalties) at Y (K symmetric matrices): the diagonal soft-thresholded by t ρ_k when
// penalised; each off-diagonal entry's K values by the group shrinkage of the soft-thresholded
// values, or (fused, one ρ) by soft thresholding of the total-variation denoiser (Friedman et al.
// 2007: soft thresholding commutes with the fused part for a common threshold).
void prox(const Problem& P, double t, const std::vector<Matrix>& Y, std::vector<Matrix>& Z, ProxWork& w) {
  const Index K = P.K, M = P.M;
  Z.resize(static_cast<std::size_t>(K));
  w.y.resize(static_cast<std::size_t>(K));
  w.x.resize(static_cast<std::size_t>(K));
  for (Index k = 0; k < K; ++k) {
    auto& z = Z[static_cast<std::size_t>(k)];
    z.resize(M, M);
    const auto& yk = Y[static_cast<std::size_t>(k)];
    const double a = t * P.rho[static_cast<std::size_t>(k)];
    for (Index i = 0; i < M; ++i) z(i, i) = P.penalize_diagonal ? soft(yk(i, i), a) : yk(i, i);
  }
  const double b = t * P.beta;
  for (Index j = 0; j < M; ++j)
    for (Index i = j + 1; i < M; ++i) {
      for (Index k = 0; k < K; ++k) w.y[static_cast<std::size_t>(k)] = Y[static_cast<std::size_t>(k)](i, j);
      if (P.coupling.type == CouplingType::Group) {
        double norm2 = 0.0;
        for (Index k = 0; k < K; ++k) {
          const double u = soft(w.y[static_cast<std::size_t>(k)], t * P.rho[static_cast<std::size_t>(k)]);
          w.x[static_cast<std::size_t>(k)] = u;
          norm2 += u * u;
        }
        const double norm = std::sqrt(norm2);
        const double shrink = norm > b ? 1.0 - b / norm : 0.0;
        for (auto& v : w.x) v *= shrink;
      } else {
        if (P.coupling.pairs == FusedPairs::Chain) tv_chain(w.y.data(), K, b, w.x.data());
        else tv_complete(w.y.data(), K, b, w.x.data(), w.order, w.sums, w.counts);
        const double a = t * P.rho.front();
        for (auto& v : w.x) v = soft(v, a);
      }
      for (Index k = 0; k < K; ++k) {
        const double v = w.x[static_cast<std::size_t>(k)];
        Z[static_cast<std::size_t>(k)](i, j) = v;
        Z[static_cast<std::size_t>(k)](j, i) = v;
      }
    }
}

// The coupling sum Σ_{i≠j} (fused pairs or group norms) of K matrices, without β.
double coupling_sum(const std::vector<Matrix>& X, const Coupling& c) {
  if (c.type == CouplingType::None || X.empty()) return 0.0;
  const auto K = static_cast<Index>(X.size());
  const Index M = X.front().rows();
  double total = 0.0;
  for (Index j = 0; j < M; ++j)
    for (Index i = j + 1; i < M; ++i) {
      if (c.type == CouplingType::Group) {
        double s = 0.0;
        for (const auto& x : X) s += x(i, j) * x(i, j);
        total += std::sqrt(s);
      } else if (c.pairs == FusedPairs::Chain) {
        for (Index k = 0; k + 1 < K; ++k)
          total += std::abs(X[static_cast<std::size_t>(k)](i, j) - X[static_cast<std::size_t>(k + 1)](i, j));
      } else {
        for (Index k = 0; k < K; ++k)
          for (Index l = k + 1; l < K; ++l)
            total += std::abs(X[static_cast<std::size_t>(k)](i, j) - X[static_cast<std::size_t>(l)](i, j));
      }
    }
  return 2.0 * total;  // (i, j) and (j, i)
}

double l1(const Matrix& X, bool penalize_diagonal) {
  double s = X.cwiseAbs().sum();
  if (!penalize_diagonal) s -= X.diagonal().cwiseAbs().sum();
  return s;
}

// Objective of the scaled problem at Θ; fills W_k = Θ_k⁻¹ when `W` is given. +inf when some Θ_k is
// not positive definite.
double objective(const Problem& P, const std::vector<Matrix>& theta, std::vector<Matrix>* W) {
  double f = 0.0;
  for (Index k = 0; k < P.K; ++k) {
    const auto& t = theta[static_cast<std::size_t>(k)];
    const Eigen::LLT<Matrix> llt(t);
    if (llt.info() != Eigen::Success) return kInf;
    const auto d = llt.matrixLLT().diagonal();
    if (!(d.minCoeff() > 0.0)) return kInf;
    f += P.A[static_cast<std::size_t>(k)].cwiseProduct(t).sum() - 2.0 * d.array().log().sum() +
         P.rho[static_cast<std::size_t>(k)] * l1(t, P.penalize_diagonal);
    if (W != nullptr) {
      auto& w = (*W)[static_cast<std::size_t>(k)];
      w.setIdentity(P.M, P.M);
      llt.solveInPlace(w);
      w = 0.5 * (w + w.transpose()).eval();
    }
  }
  f += P.beta * coupling_sum(theta, P.coupling);
  return std::isfinite(f) ? f : kInf;
}

// Optimality residual of the scaled problem at Θ (W = Θ⁻¹): max |Θ − prox(Θ − (A − W))|.
double residual(const Problem& P, const std::vector<Matrix>& theta, const std::vector<Matrix>& W,
                std::vector<Matrix>& Y, std::vector<Matrix>& Z, ProxWork& pw) {
  Y.resize(static_cast<std::size_t>(P.K));
  for (std::size_t k = 0; k < Y.size(); ++k) Y[k] = theta[k] - (P.A[k] - W[k]);
  prox(P, 1.0, Y, Z, pw);
  double r = 0.0;
  for (std::size_t k = 0; k < Y.size(); ++k) r = std::max(r, (theta[k] - Z[k]).cwiseAbs().maxCoeff());
  return r;
}

// One free value of the polish: the entries (i, j) and (j, i) of Θ_k for k in ks (one dataset for
// the diagonal and the group penalty; a fused block of datasets for the fused one).
struct Param {
  Index i = 0, j = 0;
  std::size_t first = 0, count = 0;  // into Pattern::ks
};

struct Pattern {
  std::vector<Param> params;
  std::vector<Index> ks;
  // Group penalty: params [entry_first[e], entry_first[e + 1]) belong to the e-th free entry.
  std::vector<std::size_t> entry_first;
};

// The pattern of Θ: zeros stay zero, fused values stay fused (blocks of equal values — consecutive
// runs along a chain, every equal value for all pairs), and the rest is free.
void build_pattern(const Problem& P, const std::vector<Matrix>& theta, Pattern& pat, std::vector<Index>& order) {
  pat.params.clear();
  pat.ks.clear();
  pat.entry_first.clear();
  const Index K = P.K, M = P.M;
  auto add = [&](Index i, Index j, const Index* ks, std::size_t count) {
    pat.params.push_back(Param{i, j, pat.ks.size(), count});
    pat.ks.insert(pat.ks.end(), ks, ks + count);
  };
  for (Index k = 0; k < K; ++k)
    for (Index i = 0; i < M; ++i) add(i, i, &k, 1);
  order.resize(static_cast<std::size_t>(K));
  for (Index j = 0; j < M; ++j)
    for (Index i = j + 1; i < M; ++i) {
      auto value = [&](Index k) { return theta[static_cast<std::size_t>(k)](i, j); };
      if (P.coupling.type == CouplingType::Group) {
        const std::size_t before = pat.params.size();
        for (Index k = 0; k < K; ++k)
          if (value(k) != 0.0) add(i, j, &k, 1);
        if (pat.params.size() > before) pat.entry_first.push_back(before);
      } else if (P.coupling.pairs == FusedPairs::Chain) {
        for (Index k = 0; k < K;) {
          Index e = k + 1;
          while (e < K && value(e) == value(k)) ++e;
          if (value(k) != 0.0) {
            for (Index m = k; m < e; ++m) order[static_cast<std::size_t>(m - k)] = m;
            add(i, j, order.data(), static_cast<std::size_t>(e - k));
          }
          k = e;
        }
      } else {
        std::iota(order.begin(), order.end(), Index{0});
        std::stable_sort(order.begin(), order.end(), [&](Index p, Index q) { return value(p) < value(q); });
        for (Index r = 0; r < K;) {
          Index e = r + 1;
          while (e < K && value(order[static_cast<std::size_t>(e)]) == value(order[static_cast<std::size_t>(r)])) ++e;
          if (value(order[static_cast<std::size_t>(r)]) != 0.0)
            add(i, j, order.data() + r, static_cast<std::size_t>(e - r));
          r = e;
        }
      }
    }
  pat.entry_first.push_back(pat.params.size());
}

// Newton's method with conjugate gradients on the pattern of Θ: the objective restricted to the
// pattern is smooth wherever the signs of the free values and of the fused differences stay as they
// are, and the Armijo search is on the true objective, so every step decreases it.
class Polish {
 public:
  // Polishes theta in place; returns the number of Newton steps. W holds Θ⁻¹ on return. Stops after
  // max_steps, or after two damped steps in a row: Newton's full steps are taken near the minimum of
  // the right pattern, so damping means that the pattern's region is too small (a value wants to
  // change sign or a fused block to split) and only the outer method can change it.
  int run(const Problem& P, std::vector<Matrix>& theta, std::vector<Matrix>& W, std::vector<Index>& order,
          int max_steps) {
    build_pattern(P, theta, pat_, order);
    const std::size_t n = pat_.params.size();
    g_.resize(static_cast<Index>(n));
    p_.resize(static_cast<Index>(n));
    member_.assign(static_cast<std::size_t>(P.K), 0);
    trial_.resize(static_cast<std::size_t>(P.K));
    delta_.resize(static_cast<std::size_t>(P.K));
    tmp_.resize(static_cast<std::size_t>(P.K));
    W.resize(static_cast<std::size_t>(P.K));
    double f = objective(P, theta, &W);
    if (!std::isfinite(f)) return 0;
    int steps = 0, damped = 0;
    for (; steps < max_steps; ++steps) {
      gradient(P, theta, W);
      // Stationary on the pattern to working precision (scaled units: A has unit mean diagonal).
      if (g_.size() == 0 || g_.cwiseAbs().maxCoeff() <= 1e-14) break;
      if (!conjugate_gradients(P, theta, W)) break;
      const double slope = g_.dot(p_);
      if (!(slope < 0.0)) break;
      // Armijo backtracking on the true objective.
      double step = 1.0, f_new = kInf;
      bool accepted = false;
      // Near the minimum the predicted decrease falls below the rounding of f: the full step is then
      // taken if f does not rise beyond its rounding, and the gradient (not f) says when to stop.
      const double rounding = 1e-14 * std::max(1.0, std::abs(f));
      for (int trial = 0; trial < 40; ++trial, step *= 0.5) {
        for (std::size_t k = 0; k < trial_.size(); ++k) trial_[k] = theta[k];
        add_direction(step, trial_);
        f_new = objective(P, trial_, nullptr);
        if (f_new <= f + 1e-4 * step * slope || (-slope <= rounding && f_new <= f + rounding)) {
          accepted = true;
          break;
        }
      }
      if (!accepted) break;
      damped = step < 1.0 ? damped + 1 : 0;
      theta.swap(trial_);
      f = objective(P, theta, &W);
      double size = 0.0;
      for (const auto& t : theta) size = std::max(size, t.cwiseAbs().maxCoeff());
      // Stop after two damped steps, or once a step no longer moves Θ beyond rounding.
      if (damped >= 2 || step * p_.cwiseAbs().maxCoeff() <= 1e-15 * size) {
        ++steps;
        break;
      }
    }
    return steps;
  }

 private:
  double mult(const Param& q) const { return q.i == q.j ? 1.0 : 2.0; }

  // Gradient of the objective restricted to the pattern, at Θ (W = Θ⁻¹).
  void gradient(const Problem& P, const std::vector<Matrix>& theta, const std::vector<Matrix>& W) {
    const Index K = P.K;
    for (std::size_t q = 0; q < pat_.params.size(); ++q) {
      const Param& prm = pat_.params[q];
      const double c = theta[static_cast<std::size_t>(pat_.ks[prm.first])](prm.i, prm.j);
      double gq = 0.0;
      for (std::size_t m = 0; m < prm.count; ++m) {
        const auto k = static_cast<std::size_t>(pat_.ks[prm.first + m]);
        double gk = P.A[k](prm.i, prm.j) - W[k](prm.i, prm.j);
        if (prm.i != prm.j || P.penalize_diagonal) gk += P.rho[k] * sign(c);
        gq += mult(prm) * gk;
      }
      if (prm.i != prm.j && P.coupling.type == CouplingType::Fused) {
        for (std::size_t m = 0; m < prm.count; ++m) member_[static_cast<std::size_t>(pat_.ks[prm.first + m])] = 1;
        for (std::size_t m = 0; m < prm.count; ++m) {
          const Index k = pat_.ks[prm.first + m];
          auto link = [&](Index l) {
            if (l < 0 || l >= K || member_[static_cast<std::size_t>(l)]) return;
            gq += 2.0 * P.beta * sign(c - theta[static_cast<std::size_t>(l)](prm.i, prm.j));
          };
          if (P.coupling.pairs == FusedPairs::Chain) {
            link(k - 1);
            link(k + 1);
          } else {
            for (Index l = 0; l < K; ++l) link(l);
          }
        }
        for (std::size_t m = 0; m < prm.count; ++m) member_[static_cast<std::size_t>(pat_.ks[prm.first + m])] = 0;
      }
      g_(static_cast<Index>(q)) = gq;
    }
    if (P.coupling.type == CouplingType::Group) {
      for (std::size_t e = 0; e + 1 < pat_.entry_first.size(); ++e) {
        const double norm = entry_norm(theta, e);
        for (std::size_t q = pat_.entry_first[e]; q < pat_.entry_first[e + 1]; ++q)
          g_(static_cast<Index>(q)) += 2.0 * P.beta * value(theta, q) / norm;
      }
    }
  }

  double value(const std::vector<Matrix>& theta, std::size_t q) const {
    const Param& prm = pat_.params[q];
    return theta[static_cast<std::size_t>(pat_.ks[prm.first])](prm.i, prm.j);
  }

  double entry_norm(const std::vector<Matrix>& theta, std::size_t e) const {
    double s = 0.0;
    for (std::size_t q = pat_.entry_first[e]; q < pat_.entry_first[e + 1]; ++q) s += value(theta, q) * value(theta, q);
    return std::sqrt(s);
  }

  // The preconditioner of the conjugate gradients: z = E⁺ (Θ_k ⊗ Θ_k) E⁺ᵀ r, E the map from the
  // parameters to the symmetric matrices Δ_k and E⁺ = (EᵀE)⁻¹Eᵀ. On a full pattern without fusion
  // this is the inverse of the Hessian of −log|Θ| restricted to the pattern, (E*(W ⊗ W)E)⁻¹, so the
  // iterations depend on how far the pattern is from full, not on the conditioning of Θ.
  void precondition(const Problem& P, const std::vector<Matrix>& theta, const Vector& r, Vector& z) {
    weighted_.resize(r.size());
    for (std::size_t q = 0; q < pat_.params.size(); ++q) {
      const Param& prm = pat_.params[q];
      weighted_(static_cast<Index>(q)) = r(static_cast<Index>(q)) / (mult(prm) * static_cast<double>(prm.count));
    }
    for (Index k = 0; k < P.K; ++k) delta_[static_cast<std::size_t>(k)].setZero(P.M, P.M);
    scatter(weighted_, delta_);
    for (Index k = 0; k < P.K; ++k) {
      const auto kk = static_cast<std::size_t>(k);
      tmp_[kk].noalias() = delta_[kk] * theta[kk];
      delta_[kk].noalias() = theta[kk] * tmp_[kk];
    }
    z.resize(r.size());
    for (std::size_t q = 0; q < pat_.params.size(); ++q) {
      const Param& prm = pat_.params[q];
      double sum = 0.0;
      for (std::size_t m = 0; m < prm.count; ++m) sum += delta_[static_cast<std::size_t>(pat_.ks[prm.first + m])](prm.i, prm.j);
      z(static_cast<Index>(q)) = sum / static_cast<double>(prm.count);
    }
  }

  // out = H v: Σ over the parameter's entries of (W_k Δ_k W_k), Δ_k the symmetric matrices of v,
  // plus the Hessian of the group norms.
  void hessian_vector(const Problem& P, const std::vector<Matrix>& theta, const std::vector<Matrix>& W,
                      const Vector& v, Vector& out) {
    for (Index k = 0; k < P.K; ++k) delta_[static_cast<std::size_t>(k)].setZero(P.M, P.M);
    scatter(v, delta_);
    for (Index k = 0; k < P.K; ++k) {
      const auto kk = static_cast<std::size_t>(k);
      tmp_[kk].noalias() = delta_[kk] * W[kk];
      delta_[kk].noalias() = W[kk] * tmp_[kk];
    }
    out.resize(v.size());
    for (std::size_t q = 0; q < pat_.params.size(); ++q) {
      const Param& prm = pat_.params[q];
      double s = 0.0;
      for (std::size_t m = 0; m < prm.count; ++m) s += delta_[static_cast<std::size_t>(pat_.ks[prm.first + m])](prm.i, prm.j);
      out(static_cast<Index>(q)) = mult(prm) * s;
    }
    if (P.coupling.type == CouplingType::Group) {
      for (std::size_t e = 0; e + 1 < pat_.entry_first.size(); ++e) {
        const double norm = entry_norm(theta, e);
        double xv = 0.0;
        for (std::size_t q = pat_.entry_first[e]; q < pat_.entry_first[e + 1]; ++q)
          xv += value(theta, q) * v(static_cast<Index>(q));
        for (std::size_t q = pat_.entry_first[e]; q < pat_.entry_first[e + 1]; ++q)
          out(static_cast<Index>(q)) +=
              2.0 * P.beta * (v(static_cast<Index>(q)) / norm - value(theta, q) * xv / (norm * norm * norm));
      }
    }
  }

  // Adds the parameters v into the matrices X (both triangles).
  void scatter(const Vector& v, std::vector<Matrix>& X) const {
    for (std::size_t q = 0; q < pat_.params.size(); ++q) {
      const Param& prm = pat_.params[q];
      for (std::size_t m = 0; m < prm.count; ++m) {
        auto& x = X[static_cast<std::size_t>(pat_.ks[prm.first + m])];
        x(prm.i, prm.j) += v(static_cast<Index>(q));
        if (prm.i != prm.j) x(prm.j, prm.i) += v(static_cast<Index>(q));
      }
    }
  }

  void add_direction(double step, std::vector<Matrix>& X) const { scatter(step * p_, X); }

  // p ≈ −H⁻¹ g by preconditioned conjugate gradients.
  bool conjugate_gradients(const Problem& P, const std::vector<Matrix>& theta, const std::vector<Matrix>& W) {
    const Index n = g_.size();
    if (n == 0) return false;
    p_.setZero(n);
    Vector r = -g_, z, Hd;
    precondition(P, theta, r, z);
    Vector d = z;
    double rz = r.dot(z);
    // Inexact Newton (Eisenstat & Walker): the relative residual min(0.1, √‖g‖) keeps the
    // convergence superlinear at a fraction of the iterations of an exact solve.
    const double eta = std::min(0.1, std::sqrt(g_.cwiseAbs().maxCoeff()));
    const double stop = std::max(eta * eta, 1e-20) * g_.squaredNorm();
    for (Index it = 0; it < 2 * n + 10; ++it) {
      if (r.squaredNorm() <= stop) break;
      hessian_vector(P, theta, W, d, Hd);
      const double dHd = d.dot(Hd);
      if (!(dHd > 0.0)) return it > 0;
      const double alpha = rz / dHd;
      p_ += alpha * d;
      r -= alpha * Hd;
      precondition(P, theta, r, z);
      const double rz_new = r.dot(z);
      d = z + (rz_new / rz) * d;
      rz = rz_new;
    }
    return p_.allFinite();
  }

  Pattern pat_;
  Vector g_, p_, weighted_;
  std::vector<char> member_;
  std::vector<Matrix> trial_, delta_, tmp_;
};

// Θ from B = ρ (Z − U) − A: the minimiser of tr(AΘ) − log|Θ| + (ρ/2)‖Θ − (Z − U)‖² is
// Q diag((d + √(d² + 4ρ)) / 2ρ) Qᵀ for B = Q diag(d) Qᵀ (Danaher et al., eq. 11).
void theta_step(const Matrix& B, double rho_admm, Eigen::SelfAdjointEigenSolver<Matrix>& eig, Matrix& theta) {
  eig.compute(B);
  const Vector& d = eig.eigenvalues();
  const Vector t = (d.array() + (d.array().square() + 4.0 * rho_admm).sqrt()) / (2.0 * rho_admm);
  theta.noalias() = eig.eigenvectors() * t.asDiagonal() * eig.eigenvectors().transpose();
  theta = 0.5 * (theta + theta.transpose()).eval();
}

double squared_sum(const std::vector<Matrix>& X) {
  double s = 0.0;
  for (const auto& x : X) s += x.squaredNorm();
  return s;
}

}  // namespace

void Coupling::validate() const {
  if (!(beta >= 0.0) || !std::isfinite(beta))
    throw std::invalid_argument("beta must be finite and >= 0; got " + format_number(beta));
}

double coupling_penalty(const std::vector<Matrix>& precisions, const Coupling& coupling) {
  if (coupling.type == CouplingType::None || coupling.beta == 0.0) return 0.0;
  return coupling.beta * coupling_sum(precisions, coupling);
}

namespace {

Problem make_problem(const std::vector<const Matrix*>& S, const std::vector<double>& rho, const Coupling& coupling,
                     bool penalize_diagonal) {
  coupling.validate();
  Problem P;
  P.K = static_cast<Index>(S.size());
  if (P.K == 0) throw std::invalid_argument("joint graphical lasso: no covariance matrices");
  P.M = S.front()->rows();
  if (static_cast<Index>(rho.size()) != P.K)
    throw std::invalid_argument("alpha must hold one value per dataset (" + std::to_string(P.K) + "); got " +
                                std::to_string(rho.size()));
  double trace = 0.0;
  for (Index k = 0; k < P.K; ++k) {
    const Matrix& s = *S[static_cast<std::size_t>(k)];
    if (s.rows() != P.M || s.cols() != P.M)
      throw std::invalid_argument("joint graphical lasso: S[" + std::to_string(k) + "] must have shape (" +
                                  std::to_string(P.M) + ", " + std::to_string(P.M) + ")");
    if (!s.allFinite())
      throw std::invalid_argument("joint graphical lasso: S[" + std::to_string(k) + "] contains NaN or infinite values");
    const double r = rho[static_cast<std::size_t>(k)];
    if (!(r >= 0.0) || !std::isfinite(r))
      throw std::invalid_argument("alpha[" + std::to_string(k) + "] must be finite and >= 0; got " + format_number(r));
    if (coupling.type == CouplingType::Fused && coupling.beta > 0.0 && r != rho.front())
      throw std::invalid_argument("a fused penalty needs one alpha for every dataset; got alpha[0] = " +
                                  format_number(rho.front()) + " and alpha[" + std::to_string(k) +
                                  "] = " + format_number(r));
    trace += s.trace();
  }
  P.scale = trace / static_cast<double>(P.K * P.M);
  if (!(P.scale > 0.0) || !std::isfinite(P.scale))
    throw NumericalError("joint graphical lasso: the covariances have no variance (mean diagonal " +
                         format_number(P.scale) + ")");
  P.A.resize(static_cast<std::size_t>(P.K));
  P.rho.resize(static_cast<std::size_t>(P.K));
  for (Index k = 0; k < P.K; ++k) {
    const Matrix& s = *S[static_cast<std::size_t>(k)];
    P.A[static_cast<std::size_t>(k)] = (0.5 / P.scale) * (s + s.transpose());
    P.rho[static_cast<std::size_t>(k)] = rho[static_cast<std::size_t>(k)] / P.scale;
  }
  P.beta = coupling.beta / P.scale;
  P.coupling = coupling;
  P.penalize_diagonal = penalize_diagonal;
  return P;
}

std::vector<const Matrix*> pointers(const std::vector<Matrix>& X) {
  std::vector<const Matrix*> p;
  for (const auto& x : X) p.push_back(&x);
  return p;
}

}  // namespace

double joint_glasso_objective(const std::vector<Matrix>& S, const std::vector<double>& rho,
                              const std::vector<Matrix>& precisions, const Coupling& coupling,
                              bool penalize_diagonal) {
  const Problem P = make_problem(pointers(S), rho, coupling, penalize_diagonal);
  if (precisions.size() != S.size()) throw std::invalid_argument("precisions must hold one matrix per dataset");
  std::vector<Matrix> theta;
  for (const auto& x : precisions) theta.push_back(P.scale * x);
  // F(Λ) = F'(cΛ) + K M log c: the scaled objective differs by the log-determinant of the scale.
  return objective(P, theta, nullptr) + static_cast<double>(P.K * P.M) * std::log(P.scale);
}

double joint_glasso_residual(const std::vector<Matrix>& S, const std::vector<double>& rho,
                             const std::vector<Matrix>& precisions, const Coupling& coupling,
                             bool penalize_diagonal) {
  const Problem P = make_problem(pointers(S), rho, coupling, penalize_diagonal);
  if (precisions.size() != S.size()) throw std::invalid_argument("precisions must hold one matrix per dataset");
  std::vector<Matrix> theta, W(S.size()), Y, Z;
  for (const auto& x : precisions) theta.push_back(P.scale * x);
  if (!std::isfinite(objective(P, theta, &W))) return kInf;
  ProxWork pw;
  return residual(P, theta, W, Y, Z, pw);
}

void JointGlassoSolver::solve(const std::vector<const Matrix*>& S, const std::vector<double>& rho,
                              const Coupling& coupling, const GlassoOptions& options, bool warm,
                              const std::vector<GlassoResult*>& results) {
  if (results.size() != S.size()) throw std::invalid_argument("joint graphical lasso: one result per dataset needed");
  if (!coupling.active()) {
    coupling.validate();
    for (std::size_t k = 0; k < S.size(); ++k) {
      const Matrix* init = warm ? &results[k]->precision : nullptr;
      glasso_.solve(*S[k], rho.at(k), options, init, *results[k]);
    }
    return;
  }
  const Problem P = make_problem(S, rho, coupling, options.penalize_diagonal);
  const auto K = static_cast<std::size_t>(P.K);
  const Index M = P.M;
  const double tol = std::max(options.tol, 1e-13);
  theta_.resize(K);
  z_.resize(K);
  u_.resize(K);
  w_.resize(K);
  work_.resize(K);
  ProxWork pw;
  Polish polish;
  std::vector<Index> order;
  std::vector<Matrix> Y, Zr, best;
  int n_iter = 0;
  double best_residual = kInf;

  // Polishes candidate (in theta_) and keeps it if it passes the test or is the best seen so far.
  auto try_polish = [&](int max_steps) {
    n_iter += polish.run(P, theta_, w_, order, max_steps);
    if (!std::isfinite(objective(P, theta_, &w_))) return false;
    const double r = residual(P, theta_, w_, Y, Zr, pw);
    if (r < best_residual) {
      best_residual = r;
      best = theta_;
    }
    return r <= tol;
  };

  bool done = false;
  if (warm) {
    for (std::size_t k = 0; k < K; ++k) {
      if (results[k]->precision.rows() != M || results[k]->precision.cols() != M)
        throw std::invalid_argument("joint graphical lasso: the warm start " + std::to_string(k) +
                                    " must have shape (" + std::to_string(M) + ", " + std::to_string(M) + ")");
      theta_[k] = P.scale * results[k]->precision;
    }
    done = std::isfinite(objective(P, theta_, &w_)) && try_polish(10);
    // A changed pattern: the proximal gradient step from the polished point (Zr, computed by the
    // residual) has the new zeros and fusions when the change is small; polish that once.
    if (!done && best_residual < kInf) {
      std::vector<Matrix> keep = theta_;
      theta_ = Zr;
      done = std::isfinite(objective(P, theta_, &w_)) && try_polish(10);
      if (!done) {
        theta_.swap(keep);
        objective(P, theta_, &w_);
      }
    }
  }
  if (!done) {
    // ADMM from the warm start (or the diagonal start), with the scaled dual that makes it a fixed point
    // when it is optimal: U = (Θ⁻¹ − A) / ρ.
    // (A warm start that failed its polish goes on from the polished point, w_ = its inverse.)
    double rho_admm = 1.0;
    if (!warm || !std::isfinite(objective(P, theta_, &w_))) {
      for (std::size_t k = 0; k < K; ++k) {
        const double pen = options.penalize_diagonal ? P.rho[k] : 0.0;
        theta_[k] = (P.A[k].diagonal().array() + pen).max(1e-12).inverse().matrix().asDiagonal();
        w_[k] = theta_[k].diagonal().cwiseInverse().asDiagonal();
      }
    }
    for (std::size_t k = 0; k < K; ++k) {
      z_[k] = theta_[k];
      u_[k] = (w_[k] - P.A[k]) / rho_admm;
    }
    Eigen::SelfAdjointEigenSolver<Matrix> eig(M);
    std::vector<Matrix> z_old(K);
    double round_tol = 1e-3;  // the first polish comes early: the pattern settles long before the iterates
    int admm_iter = 0;
    while (!done && admm_iter < options.max_iter) {
      for (; admm_iter < options.max_iter; ++admm_iter) {
        for (std::size_t k = 0; k < K; ++k) {
          work_[k] = rho_admm * (z_[k] - u_[k]) - P.A[k];
          theta_step(work_[k], rho_admm, eig, theta_[k]);
          work_[k] = theta_[k] + u_[k];
        }
        z_old.swap(z_);
        prox(P, 1.0 / rho_admm, work_, z_, pw);
        double r2 = 0.0, s2 = 0.0;
        for (std::size_t k = 0; k < K; ++k) {
          u_[k] += theta_[k] - z_[k];
          r2 += (theta_[k] - z_[k]).squaredNorm();
          s2 += (z_[k] - z_old[k]).squaredNorm();
        }
        const double r = std::sqrt(r2), s = rho_admm * std::sqrt(s2);
        const double eps_pri = round_tol * std::max(std::sqrt(squared_sum(theta_)), std::sqrt(squared_sum(z_)));
        const double eps_dual = round_tol * rho_admm * std::sqrt(squared_sum(u_));
        if (r <= eps_pri && s <= eps_dual) {
          ++admm_iter;
          break;
        }
        // Residual balancing (Boyd et al. 2011, §3.4.1).
        if (r > 10.0 * s) {
          rho_admm *= 2.0;
          for (auto& u : u_) u *= 0.5;
        } else if (s > 10.0 * r) {
          rho_admm *= 0.5;
          for (auto& u : u_) u *= 2.0;
        }
      }
      // Polish the sparse iterate Z (its zeros and fusions are exact); ADMM goes on from its own
      // iterates if the polish does not pass.
      std::vector<Matrix> keep_theta = theta_;
      theta_ = z_;
      done = try_polish(50);
      if (!done) theta_.swap(keep_theta);
      round_tol = std::max(round_tol * 1e-2, 1e-14);
    }
    n_iter += admm_iter;
    if (!done) {
      // Not certified: the best polished point, or ADMM's positive definite iterate.
      if (!best.empty()) theta_ = best;
      else best_residual = objective(P, theta_, &w_) < kInf ? residual(P, theta_, w_, Y, Zr, pw) : kInf;
    }
  }
  if (done) best_residual = residual(P, theta_, w_, Y, Zr, pw);
  for (std::size_t k = 0; k < K; ++k) {
    GlassoResult& res = *results[k];
    res.precision = theta_[k] / P.scale;
    const Eigen::LLT<Matrix> llt(res.precision);
    res.covariance.setIdentity(M, M);
    llt.solveInPlace(res.covariance);
    res.covariance = 0.5 * (res.covariance + res.covariance.transpose()).eval();
    res.n_iter = n_iter;
    res.converged = done;
    res.gap = best_residual;
  }
}

std::vector<GlassoResult> joint_graphical_lasso(const std::vector<Matrix>& S, const std::vector<double>& rho,
                                                const Coupling& coupling, const GlassoOptions& options,
                                                const std::vector<Matrix>* precisions_init) {
  std::vector<GlassoResult> out(S.size());
  std::vector<GlassoResult*> ptrs;
  for (auto& r : out) ptrs.push_back(&r);
  if (precisions_init != nullptr) {
    if (precisions_init->size() != S.size())
      throw std::invalid_argument("precisions_init must hold one matrix per dataset");
    for (std::size_t k = 0; k < S.size(); ++k) out[k].precision = (*precisions_init)[k];
  }
  JointGlassoSolver solver;
  solver.solve(pointers(S), rho, coupling, options, precisions_init != nullptr, ptrs);
  return out;
}

namespace detail {
void tv_denoise(const double* y, Index n, double b, FusedPairs pairs, double* x) {
  if (pairs == FusedPairs::Chain) {
    tv_chain(y, n, b, x);
  } else {
    std::vector<Index> order, counts;
    std::vector<double> sums;
    tv_complete(y, n, b, x, order, sums, counts);
  }
}
}  // namespace detail

}  // namespace metaglasso
