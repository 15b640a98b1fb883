// Tests of the joint graphical lasso: the exact denoisers against their optimality conditions, the
// joint solution against its own, and the reduction to K graphical lassos.
#include <doctest/doctest.h>

#include <Eigen/Dense>
#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>
#include <vector>

#include "metaglasso/metaglasso.hpp"

using metaglasso::Coupling;
using metaglasso::CouplingType;
using metaglasso::FusedPairs;
using metaglasso::GlassoOptions;
using metaglasso::Index;
using metaglasso::Matrix;

namespace {

std::vector<double> random_values(std::mt19937& gen, Index n, bool ties) {
  std::normal_distribution<double> normal;
  std::vector<double> y(static_cast<std::size_t>(n));
  for (auto& v : y) v = ties ? std::round(2.0 * normal(gen)) / 2.0 : normal(gen);
  return y;
}

// Chain: x − y + Dᵀt = 0 with t_i = X_i − Y_i (cumulative sums) must have |t_i| ≤ b, t_n = 0 and
// t_i = b sign(x_i − x_{i−1}) at every jump.
double chain_violation(const std::vector<double>& y, const std::vector<double>& x, double b) {
  double t = 0.0, worst = 0.0;
  const std::size_t n = y.size();
  for (std::size_t i = 0; i + 1 < n; ++i) {
    t += x[i] - y[i];
    worst = std::max(worst, std::abs(t) - b);
    const double jump = x[i + 1] - x[i];
    if (jump != 0.0) worst = std::max(worst, std::abs(t - b * (jump > 0 ? 1.0 : -1.0)));
  }
  t += x[n - 1] - y[n - 1];
  return std::max(worst, std::abs(t));
}

// Complete graph: y_k − x_k = b Σ_l s_kl, s antisymmetric, s_kl = sign(x_k − x_l) across blocks of
// equal values and |s_kl| ≤ 1 inside them. Inside a block B the row sums r_k = (y_k − x_k)/b −
// Σ_{l∉B} sign(x_k − x_l) are attainable iff they sum to zero and the largest j of them sum to at
// most j(|B| − j) (a fractional tournament's scores).
double complete_violation(const std::vector<double>& y, const std::vector<double>& x, double b) {
  const std::size_t n = y.size();
  std::vector<std::size_t> idx(n);
  std::iota(idx.begin(), idx.end(), 0);
  std::sort(idx.begin(), idx.end(), [&](std::size_t p, std::size_t q) { return x[p] < x[q]; });
  double worst = 0.0;
  for (std::size_t r = 0; r < n;) {
    std::size_t e = r + 1;
    while (e < n && x[idx[e]] == x[idx[r]]) ++e;
    std::vector<double> rows;
    for (std::size_t m = r; m < e; ++m) {
      const std::size_t k = idx[m];
      double outside = 0.0;
      for (std::size_t l = 0; l < n; ++l)
        if (x[l] != x[k]) outside += x[k] > x[l] ? 1.0 : -1.0;
      rows.push_back((y[k] - x[k]) / b - outside);
    }
    std::sort(rows.rbegin(), rows.rend());
    double sum = 0.0;
    const double size = static_cast<double>(rows.size());
    for (std::size_t j = 0; j < rows.size(); ++j) {
      sum += rows[j];
      const double J = static_cast<double>(j + 1);
      worst = std::max(worst, b * (sum - J * (size - J)));
    }
    worst = std::max(worst, b * std::abs(sum));
    r = e;
  }
  return worst;
}

// K latent covariances of a factor model seen through N samples: a shared sparse precision with a
// few entries changed per dataset.
std::vector<Matrix> latent_covariances(std::mt19937& gen, Index K, Index M, Index N) {
  std::normal_distribution<double> normal;
  std::uniform_real_distribution<double> unif(0.0, 1.0);
  Matrix base = Matrix::Identity(M, M) * 2.0;
  for (Index i = 0; i < M; ++i)
    for (Index j = 0; j < i; ++j)
      if (unif(gen) < 0.3) base(i, j) = base(j, i) = 0.6 * (unif(gen) - 0.5);
  std::vector<Matrix> S;
  for (Index k = 0; k < K; ++k) {
    Matrix prec = base;
    const Index i = static_cast<Index>(unif(gen) * static_cast<double>(M)) % M, j = (i + 1) % M;
    prec(i, j) = prec(j, i) = 0.5;
    prec.diagonal().array() += 0.5 + std::abs(Eigen::SelfAdjointEigenSolver<Matrix>(prec).eigenvalues().minCoeff());
    const Matrix L = Eigen::LLT<Matrix>(prec.inverse()).matrixL();
    Matrix X(M, N);
    for (Index c = 0; c < N; ++c)
      for (Index r = 0; r < M; ++r) X(r, c) = normal(gen);
    X = L * X * (1.0 + static_cast<double>(k));  // datasets of different scales
    S.push_back(X * X.transpose() / static_cast<double>(N));
  }
  return S;
}

}  // namespace

TEST_CASE("total-variation denoisers meet their optimality conditions exactly") {
  std::mt19937 gen(3);
  for (int trial = 0; trial < 400; ++trial) {
    const Index n = 1 + trial % 12;
    const bool ties = trial % 3 == 0;
    const std::vector<double> y = random_values(gen, n, ties);
    for (double b : {0.0, 0.01, 0.3, 1.0, 10.0}) {
      std::vector<double> x(static_cast<std::size_t>(n));
      metaglasso::detail::tv_denoise(y.data(), n, b, FusedPairs::Chain, x.data());
      CHECK(chain_violation(y, x, b) <= 1e-12);
      if (b > 0.0) {
        metaglasso::detail::tv_denoise(y.data(), n, b, FusedPairs::All, x.data());
        CHECK(complete_violation(y, x, b) <= 1e-12);
      }
    }
  }
  // A large b fuses everything to the mean.
  const std::vector<double> y = {3.0, -1.0, 2.0, 0.5};
  std::vector<double> x(4);
  for (auto pairs : {FusedPairs::Chain, FusedPairs::All}) {
    metaglasso::detail::tv_denoise(y.data(), 4, 100.0, pairs, x.data());
    for (double v : x) CHECK(v == doctest::Approx(1.125).epsilon(1e-14));
  }
}

TEST_CASE("joint graphical lasso: optimal, coupled, and the K graphical lassos at beta -> 0") {
  std::mt19937 gen(11);
  GlassoOptions opts{1e-12, 10000, true};
  for (Index K : {2, 3, 6}) {
    for (Index M : {2, 5, 12}) {
      const auto S = latent_covariances(gen, K, M, 40);
      double mean_diag = 0.0;
      for (const auto& s : S) mean_diag += s.trace();
      mean_diag /= static_cast<double>(K * M);
      const std::vector<double> rho(static_cast<std::size_t>(K), 0.05 * mean_diag);
      for (auto type : {CouplingType::Fused, CouplingType::Group}) {
        for (auto pairs : {FusedPairs::All, FusedPairs::Chain}) {
          for (bool pd : {true, false}) {
            CAPTURE(K);
            CAPTURE(M);
            CAPTURE(static_cast<int>(type));
            CAPTURE(static_cast<int>(pairs));
            CAPTURE(pd);
            opts.penalize_diagonal = pd;
            const Coupling c{type, 0.1 * mean_diag, pairs};
            const auto res = metaglasso::joint_graphical_lasso(S, rho, c, opts);
            std::vector<Matrix> P;
            for (const auto& r : res) {
              CHECK(r.converged);
              P.push_back(r.precision);
            }
            const double resid = metaglasso::joint_glasso_residual(S, rho, P, c, pd);
            CHECK(resid <= 1e-12);
            // Optimal: no random perturbation lowers the objective.
            const double f = metaglasso::joint_glasso_objective(S, rho, P, c, pd);
            std::normal_distribution<double> normal;
            for (int t = 0; t < 5; ++t) {
              std::vector<Matrix> Q = P;
              for (auto& q : Q) {
                Matrix E(M, M);
                for (Index i = 0; i < M; ++i)
                  for (Index j = 0; j < M; ++j) E(i, j) = normal(gen);
                q += 1e-4 * q.norm() * (E + E.transpose()) / E.norm();
              }
              CHECK(metaglasso::joint_glasso_objective(S, rho, Q, c, pd) >= f - 1e-12 * std::abs(f));
            }
            // A warm start from the answer is certified without ADMM.
            const auto again = metaglasso::joint_graphical_lasso(S, rho, c, opts, &P);
            for (std::size_t k = 0; k < P.size(); ++k)
              CHECK((again[k].precision - P[k]).cwiseAbs().maxCoeff() <= 1e-10 * P[k].cwiseAbs().maxCoeff());
            // beta -> 0: the K graphical lassos.
            const Coupling tiny{type, 1e-300, pairs};
            const auto sep = metaglasso::joint_graphical_lasso(S, rho, tiny, opts);
            for (std::size_t k = 0; k < S.size(); ++k) {
              const auto g = metaglasso::graphical_lasso(S[k], rho[k], opts);
              CHECK((sep[k].precision - g.precision).cwiseAbs().maxCoeff() <=
                    1e-10 * g.precision.cwiseAbs().maxCoeff());
            }
          }
        }
      }
    }
  }
}

TEST_CASE("joint graphical lasso: a large beta makes the networks equal (fused) or empty (group)") {
  std::mt19937 gen(5);
  const auto S = latent_covariances(gen, 4, 6, 40);
  const std::vector<double> rho(4, 0.01);
  const GlassoOptions opts{1e-12, 10000, true};
  const auto fused = metaglasso::joint_graphical_lasso(S, rho, Coupling{CouplingType::Fused, 1e3, FusedPairs::Chain}, opts);
  for (std::size_t k = 1; k < fused.size(); ++k) {
    Matrix d = fused[k].precision - fused[0].precision;
    d.diagonal().setZero();
    CHECK(d.cwiseAbs().maxCoeff() == 0.0);
  }
  const auto group = metaglasso::joint_graphical_lasso(S, rho, Coupling{CouplingType::Group, 1e3, FusedPairs::All}, opts);
  for (const auto& r : group) {
    Matrix off = r.precision;
    off.diagonal().setZero();
    CHECK(off.cwiseAbs().maxCoeff() == 0.0);
  }
}

TEST_CASE("joint graphical lasso: invalid input") {
  const std::vector<Matrix> S = {Matrix::Identity(3, 3), Matrix::Identity(3, 3)};
  CHECK_THROWS_WITH_AS(metaglasso::joint_graphical_lasso(S, {0.1, 0.2}, Coupling{CouplingType::Fused, 0.1}),
                       doctest::Contains("a fused penalty needs one alpha"), std::invalid_argument);
  CHECK_THROWS_WITH_AS(metaglasso::joint_graphical_lasso(S, {0.1, 0.1}, Coupling{CouplingType::Group, -1.0}),
                       doctest::Contains("beta must be finite and >= 0"), std::invalid_argument);
  CHECK_THROWS_AS(metaglasso::joint_graphical_lasso(S, {0.1}, Coupling{CouplingType::Group, 0.1}),
                  std::invalid_argument);
  // Unequal alphas are fine for the group penalty.
  const auto r = metaglasso::joint_graphical_lasso(S, {0.1, 0.2}, Coupling{CouplingType::Group, 0.1});
  CHECK(r[0].converged);
}
