// Tests of the graphical lasso against its optimality conditions and dense brute-force answers.
#include <doctest/doctest.h>

#include <Eigen/Cholesky>
#include <Eigen/Dense>
#include <atomic>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <new>
#include <stdexcept>
#include <string>
#include <vector>

#include "metaglasso/metaglasso.hpp"

using metaglasso::GlassoOptions;
using metaglasso::GlassoResult;
using metaglasso::GlassoSolver;
using metaglasso::Index;
using metaglasso::Matrix;

// Counting replacements of the global allocation functions: the count of the calls made while
// `g_count_allocations` is set (used to check that repeated solves allocate nothing).
namespace {
std::atomic<bool> g_count_allocations{false};
std::atomic<long> g_allocations{0};
void* counted_malloc(std::size_t n) {
  if (g_count_allocations.load(std::memory_order_relaxed)) g_allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* ptr = std::malloc(n == 0 ? 1 : n)) return ptr;
  throw std::bad_alloc();
}
void* counted_aligned(std::size_t n, std::size_t align) {
  if (g_count_allocations.load(std::memory_order_relaxed)) g_allocations.fetch_add(1, std::memory_order_relaxed);
  const std::size_t size = ((n == 0 ? 1 : n) + align - 1) / align * align;
  if (void* ptr = std::aligned_alloc(align, size)) return ptr;
  throw std::bad_alloc();
}
}  // namespace

void* operator new(std::size_t n) { return counted_malloc(n); }
void* operator new[](std::size_t n) { return counted_malloc(n); }
void* operator new(std::size_t n, const std::nothrow_t&) noexcept {
  try {
    return counted_malloc(n);
  } catch (...) {
    return nullptr;
  }
}
void* operator new[](std::size_t n, const std::nothrow_t&) noexcept {
  try {
    return counted_malloc(n);
  } catch (...) {
    return nullptr;
  }
}
void* operator new(std::size_t n, std::align_val_t a) { return counted_aligned(n, static_cast<std::size_t>(a)); }
void* operator new[](std::size_t n, std::align_val_t a) { return counted_aligned(n, static_cast<std::size_t>(a)); }
void operator delete(void* ptr) noexcept { std::free(ptr); }
void operator delete[](void* ptr) noexcept { std::free(ptr); }
void operator delete(void* ptr, std::size_t) noexcept { std::free(ptr); }
void operator delete[](void* ptr, std::size_t) noexcept { std::free(ptr); }
void operator delete(void* ptr, std::align_val_t) noexcept { std::free(ptr); }
void operator delete[](void* ptr, std::align_val_t) noexcept { std::free(ptr); }
void operator delete(void* ptr, std::size_t, std::align_val_t) noexcept { std::free(ptr); }
void operator delete[](void* ptr, std::size_t, std::align_val_t) noexcept { std::free(ptr); }

namespace {

// Standard normal matrix from SplitMix64 (Box–Muller), reproducible on every platform.
Matrix normal_matrix(Index rows, Index cols, std::uint64_t seed) {
  metaglasso::SplitMix64 rng(seed);
  Matrix Z(rows, cols);
  const double two_pi = 6.283185307179586;
  for (Index j = 0; j < cols; ++j)
    for (Index i = 0; i < rows; ++i) {
      const double u = 1.0 - rng.uniform();
      Z(i, j) = std::sqrt(-2.0 * std::log(u)) * std::cos(two_pi * rng.uniform());
    }
  return Z;
}

// Sample covariance (1/n) of n draws of x = F z + noise ε, with F (p, k) of scale `strength`:
// a few strong factors, an ill-conditioned S.
Matrix factor_covariance(Index p, Index k, Index n, double strength, double noise, std::uint64_t seed) {
  const Matrix F = strength * normal_matrix(p, k, seed);
  const Matrix X = F * normal_matrix(k, n, seed + 1) + noise * normal_matrix(p, n, seed + 2);
  const Matrix Xc = X.colwise() - X.rowwise().mean();
  return Xc * Xc.transpose() / static_cast<double>(n);
}

// Correlation matrix of the population covariance F Fᵀ + I of a k-factor model, F (p, k) standard
// normal: dense, strongly correlated and ill-conditioned (the matrices on which scikit-learn's
// graphical lasso stops with "Non SPD result").
Matrix factor_correlation(Index p, Index k, std::uint64_t seed) {
  const Matrix F = normal_matrix(p, k, seed);
  Matrix S = F * F.transpose() + Matrix::Identity(p, p);
  const Eigen::VectorXd d = S.diagonal().cwiseSqrt().cwiseInverse();
  S = d.asDiagonal() * S * d.asDiagonal();
  return 0.5 * (S + S.transpose());
}

// Largest violation of the KKT conditions of the graphical lasso at (Θ, W = Θ⁻¹):
// W_ij − S_ij = ρ sign(Θ_ij) where Θ_ij ≠ 0, |W_ij − S_ij| ≤ ρ where Θ_ij = 0, W_ii = S_ii (+ρ).
double kkt_violation(const Matrix& S, double rho, const Matrix& P, const Matrix& W, bool penalize_diagonal) {
  double v = 0.0;
  for (Index j = 0; j < S.cols(); ++j)
    for (Index i = 0; i < S.rows(); ++i) {
      const double r = W(i, j) - S(i, j);
      if (i == j) {
        v = std::max(v, std::abs(r - (penalize_diagonal ? rho : 0.0)));
      } else if (P(i, j) != 0.0) {
        v = std::max(v, std::abs(r - rho * (P(i, j) > 0 ? 1.0 : -1.0)));
      } else {
        v = std::max(v, std::abs(r) - rho);
      }
    }
  return v;
}

bool is_spd(const Matrix& A) {
  if ((A - A.transpose()).cwiseAbs().maxCoeff() != 0.0) return false;
  Eigen::LLT<Matrix> llt(A);
  return llt.info() == Eigen::Success;
}

Matrix dense_inverse(const Matrix& A) { return Eigen::LLT<Matrix>(A).solve(Matrix::Identity(A.rows(), A.cols())); }

double max_offdiag_abs(const Matrix& S) {
  Matrix T = S.cwiseAbs();
  T.diagonal().setZero();
  return T.maxCoeff();
}

}  // namespace

TEST_CASE("graphical lasso satisfies the KKT conditions on ill-conditioned factor covariances") {
  GlassoOptions o;
  o.tol = 1e-12;
  for (const Index p : {5, 20, 30}) {
    for (std::uint64_t seed = 1; seed <= 3; ++seed) {
      const Matrix S = factor_covariance(p, 3, 2 * p + 20, 3.0, 1.0, 100 * seed + static_cast<std::uint64_t>(p));
      const double mean_var = S.diagonal().mean();
      for (const double frac : {0.02, 0.1, 0.3}) {
        const double rho = frac * mean_var;
        CAPTURE(p);
        CAPTURE(seed);
        CAPTURE(frac);
        const GlassoResult r = metaglasso::graphical_lasso(S, rho, o);
        CHECK(r.converged);
        CHECK(r.gap <= o.tol * static_cast<double>(p));
        CHECK(is_spd(r.precision));
        CHECK(is_spd(r.covariance));
        CHECK((r.covariance * r.precision - Matrix::Identity(p, p)).cwiseAbs().maxCoeff() < 1e-9);
        CHECK(kkt_violation(S, rho, r.precision, dense_inverse(r.precision), false) < 1e-8);
        // The public gap agrees with the solver's and certifies the objective.
        CHECK(std::abs(metaglasso::glasso_duality_gap(S, rho, r.precision, false) - r.gap) <= 1e-3 * r.gap + 1e-13);
      }
    }
  }
}

TEST_CASE("duality gap and objective match their definitions") {
  const Matrix S = factor_covariance(8, 2, 40, 1.0, 1.0, 7);
  const double rho = 0.1;
  // An arbitrary SPD point, far from optimal.
  Matrix P = dense_inverse(S + 0.5 * Matrix::Identity(8, 8));
  P = 0.5 * (P + P.transpose()).eval();
  const double logdetP = 2.0 * Eigen::LLT<Matrix>(P).matrixL().toDenseMatrix().diagonal().array().log().sum();
  double l1 = P.cwiseAbs().sum() - P.diagonal().cwiseAbs().sum();
  const double primal = (S * P).trace() - logdetP + rho * l1;
  CHECK(metaglasso::glasso_objective(S, rho, P, false) == doctest::Approx(primal).epsilon(1e-13));
  CHECK(metaglasso::glasso_objective(S, rho, P, true) ==
        doctest::Approx(primal + rho * P.diagonal().sum()).epsilon(1e-13));
  // Dual point: S + clip(P⁻¹ − S, ±ρ) off the diagonal, S_ii on it.
  const Matrix W = dense_inverse(P);
  Matrix Wt = S + (W - S).cwiseMax(-rho).cwiseMin(rho);
  Wt.diagonal() = S.diagonal();
  const double logdetWt = 2.0 * Eigen::LLT<Matrix>(Wt).matrixL().toDenseMatrix().diagonal().array().log().sum();
  const double gap = primal - (logdetWt + 8.0);
  CHECK(gap > 0.0);
  CHECK(metaglasso::glasso_duality_gap(S, rho, P, false) == doctest::Approx(gap).epsilon(1e-10));
  // Not positive definite: objective and gap are +inf.
  CHECK(std::isinf(metaglasso::glasso_objective(S, rho, -P, false)));
  CHECK(std::isinf(metaglasso::glasso_duality_gap(S, rho, -P, false)));
}

TEST_CASE("rho = 0 gives the exact inverse; singular S throws NumericalError") {
  const Matrix S = factor_covariance(12, 3, 60, 3.0, 1.0, 11);
  const GlassoResult r = metaglasso::graphical_lasso(S, 0.0);
  const Matrix inv = dense_inverse(S);
  CHECK((r.precision - inv).cwiseAbs().maxCoeff() <= 1e-10 * inv.cwiseAbs().maxCoeff());
  CHECK(r.converged);
  CHECK(is_spd(r.precision));
  // Rank-deficient: 5 samples of 12 features.
  const Matrix Ssing = factor_covariance(12, 3, 5, 1.0, 1.0, 12);
  CHECK_THROWS_AS(metaglasso::graphical_lasso(Ssing, 0.0), metaglasso::NumericalError);
  // With rho > 0 the same singular S has a solution.
  const GlassoResult rs = metaglasso::graphical_lasso(Ssing, 0.05);
  CHECK(rs.converged);
  CHECK(is_spd(rs.precision));
}

TEST_CASE("large rho gives the diagonal precision; penalize_diagonal adds rho to W_ii") {
  const Matrix S = factor_covariance(10, 2, 50, 1.0, 1.0, 21);
  const double big = 1.01 * max_offdiag_abs(S);
  for (const bool pd : {false, true}) {
    GlassoOptions o;
    o.penalize_diagonal = pd;
    const GlassoResult r = metaglasso::graphical_lasso(S, big, o);
    Matrix expected = Matrix::Zero(10, 10);
    for (Index i = 0; i < 10; ++i) expected(i, i) = 1.0 / (S(i, i) + (pd ? big : 0.0));
    CHECK((r.precision - expected).cwiseAbs().maxCoeff() == 0.0);
    CHECK(r.converged);
  }
  GlassoOptions o;
  o.penalize_diagonal = true;
  o.tol = 1e-12;
  const double rho = 0.05 * S.diagonal().mean();
  const GlassoResult r = metaglasso::graphical_lasso(S, rho, o);
  CHECK(r.converged);
  const Matrix W = dense_inverse(r.precision);
  CHECK((W.diagonal() - S.diagonal() - Matrix::Constant(10, 1, rho)).cwiseAbs().maxCoeff() < 1e-10);
  CHECK(kkt_violation(S, rho, r.precision, W, true) < 1e-8);
}

TEST_CASE("screening: a block-diagonal S is solved as its blocks") {
  const Matrix A = factor_covariance(7, 2, 40, 2.0, 1.0, 31);
  const Matrix B = factor_covariance(5, 1, 40, 2.0, 1.0, 32);
  const double rho = 0.1;
  // Interleave the two blocks: features 0, 2, 4, ... belong to A, the rest to B (plus one isolated
  // feature at the end).
  const Index p = 13;
  const std::vector<Index> ia = {0, 2, 4, 6, 8, 10, 11}, ib = {1, 3, 5, 7, 9};
  Matrix S = Matrix::Zero(p, p);
  for (Index a = 0; a < 7; ++a)
    for (Index b = 0; b < 7; ++b) S(ia[a], ia[b]) = A(a, b);
  for (Index a = 0; a < 5; ++a)
    for (Index b = 0; b < 5; ++b) S(ib[a], ib[b]) = B(a, b);
  S(12, 12) = 2.5;
  S(12, 0) = S(0, 12) = 0.5 * rho;  // below the threshold: feature 12 stays isolated
  GlassoOptions o;
  o.tol = 1e-12;
  const GlassoResult r = metaglasso::graphical_lasso(S, rho, o);
  const GlassoResult ra = metaglasso::graphical_lasso(A, rho, o);
  const GlassoResult rb = metaglasso::graphical_lasso(B, rho, o);
  CHECK(r.converged);
  const auto close = [](double x, double y) { return std::abs(x - y) <= 1e-9 * std::abs(y) + 1e-12; };
  for (Index a = 0; a < 7; ++a)
    for (Index b = 0; b < 7; ++b) CHECK(close(r.precision(ia[a], ia[b]), ra.precision(a, b)));
  for (Index a = 0; a < 5; ++a)
    for (Index b = 0; b < 5; ++b) CHECK(close(r.precision(ib[a], ib[b]), rb.precision(a, b)));
  for (Index a = 0; a < 7; ++a)
    for (Index b = 0; b < 5; ++b) CHECK(r.precision(ia[a], ib[b]) == 0.0);
  CHECK(r.precision(12, 12) == 1.0 / 2.5);
  CHECK(r.precision.row(12).cwiseAbs().sum() == 1.0 / 2.5);
  CHECK(kkt_violation(S, rho, r.precision, dense_inverse(r.precision), false) < 1e-9);
}

TEST_CASE("a warm start near the solution needs fewer sweeps and gives the same answer") {
  const Matrix S = factor_covariance(30, 3, 80, 3.0, 1.0, 41);
  const double rho = 0.05 * S.diagonal().mean();
  GlassoOptions o;
  o.tol = 1e-12;
  const GlassoResult cold = metaglasso::graphical_lasso(S, rho, o);
  const GlassoResult near = metaglasso::graphical_lasso(S, 1.05 * rho, o);
  const GlassoResult warm = metaglasso::graphical_lasso(S, rho, o, &near.precision);
  CHECK(cold.converged);
  CHECK(warm.converged);
  CHECK(warm.n_iter < cold.n_iter);
  CHECK((warm.precision - cold.precision).cwiseAbs().maxCoeff() <= 1e-8 * cold.precision.cwiseAbs().maxCoeff());
  // Starting at the solution: no sweep is needed.
  const GlassoResult again = metaglasso::graphical_lasso(S, rho, o, &cold.precision);
  CHECK(again.n_iter == 0);
  CHECK(again.converged);
  // A warm start that is not positive definite falls back to the cold start.
  const Matrix bad = -Matrix::Identity(30, 30);
  const GlassoResult fallback = metaglasso::graphical_lasso(S, rho, o, &bad);
  CHECK(fallback.n_iter == cold.n_iter);
  CHECK((fallback.precision - cold.precision).cwiseAbs().maxCoeff() == 0.0);
}

TEST_CASE("an iteration cap returns a positive definite iterate flagged as not converged") {
  const Matrix S = factor_covariance(30, 3, 80, 3.0, 1.0, 51);
  GlassoOptions o;
  o.tol = 1e-14;
  o.max_iter = 1;
  const GlassoResult r = metaglasso::graphical_lasso(S, 0.02 * S.diagonal().mean(), o);
  CHECK_FALSE(r.converged);
  CHECK(r.n_iter == 1);
  CHECK(is_spd(r.precision));
  CHECK((r.covariance - dense_inverse(r.precision)).cwiseAbs().maxCoeff() < 1e-8 * r.covariance.cwiseAbs().maxCoeff());
}

TEST_CASE("max_iter = 0 returns the start, positive definite, with its exact inverse") {
  const Matrix S = factor_covariance(15, 3, 60, 2.0, 1.0, 52);
  GlassoOptions o;
  o.max_iter = 0;
  const double rho = 0.05 * S.diagonal().mean();
  const GlassoResult cold = metaglasso::graphical_lasso(S, rho, o);
  CHECK_FALSE(cold.converged);
  CHECK(cold.n_iter == 0);
  CHECK(is_spd(cold.precision));
  CHECK((cold.covariance - dense_inverse(cold.precision)).cwiseAbs().maxCoeff() < 1e-12);
  const Matrix start = dense_inverse(S + Matrix::Identity(15, 15));
  const Matrix start_sym = 0.5 * (start + start.transpose());
  const GlassoResult warm = metaglasso::graphical_lasso(S, rho, o, &start_sym);
  CHECK_FALSE(warm.converged);
  CHECK(warm.n_iter == 0);
  CHECK((warm.precision - start_sym).cwiseAbs().maxCoeff() == 0.0);
  CHECK((warm.covariance - dense_inverse(start_sym)).cwiseAbs().maxCoeff() < 1e-12);
}

TEST_CASE("a p = 200 factor covariance converges with the KKT conditions") {
  const Index p = 200;
  const Matrix S = factor_covariance(p, 3, 800, 0.7, 1.0, 61);
  const double rho = 0.2 * S.diagonal().mean();
  const GlassoResult r = metaglasso::graphical_lasso(S, rho);
  CHECK(r.converged);
  CHECK(is_spd(r.precision));
  CHECK(kkt_violation(S, rho, r.precision, dense_inverse(r.precision), false) < 1e-6);
}

TEST_CASE("invalid arguments throw std::invalid_argument") {
  const Matrix S = factor_covariance(4, 1, 20, 1.0, 1.0, 71);
  CHECK_THROWS_AS(metaglasso::graphical_lasso(Matrix::Identity(3, 4), 0.1), std::invalid_argument);
  CHECK_THROWS_AS(metaglasso::graphical_lasso(Matrix(0, 0), 0.1), std::invalid_argument);
  Matrix Snan = S;
  Snan(1, 2) = Snan(2, 1) = std::numeric_limits<double>::quiet_NaN();
  CHECK_THROWS_AS(metaglasso::graphical_lasso(Snan, 0.1), std::invalid_argument);
  Matrix Sasym = S;
  Sasym(0, 1) += 1e-3;
  CHECK_THROWS_AS(metaglasso::graphical_lasso(Sasym, 0.1), std::invalid_argument);
  CHECK_THROWS_AS(metaglasso::graphical_lasso(S, -0.1), std::invalid_argument);
  CHECK_THROWS_AS(metaglasso::graphical_lasso(S, std::numeric_limits<double>::quiet_NaN()), std::invalid_argument);
  CHECK_THROWS_AS(metaglasso::graphical_lasso(S, std::numeric_limits<double>::infinity()), std::invalid_argument);
  const Matrix wrong = Matrix::Identity(3, 3);
  CHECK_THROWS_AS(metaglasso::graphical_lasso(S, 0.1, {}, &wrong), std::invalid_argument);
  Matrix init_nan = Matrix::Identity(4, 4);
  init_nan(0, 0) = std::numeric_limits<double>::infinity();
  CHECK_THROWS_AS(metaglasso::graphical_lasso(S, 0.1, {}, &init_nan), std::invalid_argument);
  GlassoOptions o;
  o.tol = -1.0;
  CHECK_THROWS_AS(metaglasso::graphical_lasso(S, 0.1, o), std::invalid_argument);
  o = GlassoOptions{};
  o.max_iter = -1;
  CHECK_THROWS_AS(metaglasso::graphical_lasso(S, 0.1, o), std::invalid_argument);
  Matrix Sneg = S;
  Sneg(2, 2) = -1.0;
  CHECK_THROWS_AS(metaglasso::graphical_lasso(Sneg, 0.1), std::invalid_argument);
  // A constant feature (zero variance) makes the problem unbounded unless the diagonal is penalised.
  Matrix Szero = S;
  Szero.row(3).setZero();
  Szero.col(3).setZero();
  CHECK_THROWS_AS(metaglasso::graphical_lasso(Szero, 0.1), metaglasso::NumericalError);
  o = GlassoOptions{};
  o.penalize_diagonal = true;
  CHECK(metaglasso::graphical_lasso(Szero, 0.1, o).precision(3, 3) == doctest::Approx(10.0));
  CHECK_THROWS_AS(metaglasso::glasso_duality_gap(S, 0.1, wrong, false), std::invalid_argument);
  CHECK_THROWS_AS(metaglasso::glasso_objective(S, -1.0, Matrix::Identity(4, 4), false), std::invalid_argument);
  // The message names the argument and the value.
  try {
    metaglasso::graphical_lasso(S, -0.25);
    FAIL("no exception");
  } catch (const std::invalid_argument& e) {
    const std::string msg = e.what();
    CHECK(msg.find("rho") != std::string::npos);
    CHECK(msg.find("-0.25") != std::string::npos);
  }
}

TEST_CASE("a p = 300 factor-structured correlation converges with the KKT conditions and the gap") {
  // The structure of the speed benchmark (a 5-factor population correlation, ρ = 0.1): the dual
  // sweeps converge in a few dozen sweeps where the primal ones need hundreds.
  const Index p = 300;
  const Matrix S = factor_correlation(p, 5, 81);
  const double rho = 0.1;
  GlassoOptions o;
  o.tol = 1e-10;
  const GlassoResult r = metaglasso::graphical_lasso(S, rho, o);
  CHECK(r.converged);
  CHECK(r.gap <= o.tol * static_cast<double>(p));
  CHECK(r.n_iter < 60);
  CHECK(is_spd(r.precision));
  const Matrix W = dense_inverse(r.precision);
  CHECK(kkt_violation(S, rho, r.precision, W, false) <= 1e-8);
  CHECK((r.covariance - W).cwiseAbs().maxCoeff() <= 1e-10 * W.cwiseAbs().maxCoeff());
  CHECK(metaglasso::glasso_duality_gap(S, rho, r.precision, false) <= o.tol * static_cast<double>(p));
  // A sparse answer: most of the dense S is screened out.
  Index nnz = 0;
  for (Index j = 0; j < p; ++j)
    for (Index i = j + 1; i < p; ++i) nnz += r.precision(i, j) != 0.0;
  CHECK(nnz > p);
  CHECK(nnz < p * (p - 1) / 8);
  // At the loose tolerance of the benchmark the certified gap still holds.
  o.tol = 1e-4 / static_cast<double>(p);
  const GlassoResult loose = metaglasso::graphical_lasso(S, rho, o);
  CHECK(loose.converged);
  CHECK(metaglasso::glasso_duality_gap(S, rho, loose.precision, false) <= 1e-4);
  CHECK(is_spd(loose.precision));
}

TEST_CASE("a reused GlassoSolver gives bit-identical results to fresh calls") {
  GlassoSolver solver;
  GlassoResult reused;
  struct Case {
    Matrix S;
    double rho;
    bool penalize_diagonal;
    double tol;
  };
  std::vector<Case> cases;
  cases.push_back({factor_covariance(30, 3, 80, 3.0, 1.0, 91), 0.3, false, 1e-12});
  cases.push_back({factor_covariance(12, 2, 60, 1.0, 1.0, 92), 0.05, true, 1e-8});
  cases.push_back({factor_correlation(60, 4, 93), 0.1, false, 1e-6});
  cases.push_back({factor_covariance(30, 3, 80, 3.0, 1.0, 94), 0.3, false, 1e-12});  // same size again
  // Block diagonal: several components.
  Matrix blocks = Matrix::Zero(20, 20);
  blocks.topLeftCorner(8, 8) = factor_covariance(8, 2, 40, 2.0, 1.0, 95);
  blocks.bottomRightCorner(12, 12) = factor_covariance(12, 2, 40, 2.0, 1.0, 96);
  cases.push_back({blocks, 0.1, false, 1e-10});
  for (int round = 0; round < 2; ++round) {
    for (const Case& c : cases) {
      GlassoOptions o;
      o.tol = c.tol;
      o.penalize_diagonal = c.penalize_diagonal;
      const GlassoResult fresh = metaglasso::graphical_lasso(c.S, c.rho, o);
      solver.solve(c.S, c.rho, o, nullptr, reused);
      CHECK(reused.precision == fresh.precision);
      CHECK(reused.covariance == fresh.covariance);
      CHECK(reused.n_iter == fresh.n_iter);
      CHECK(reused.converged == fresh.converged);
      CHECK(reused.gap == fresh.gap);
      // Warm started from the answer itself, in place (the warm start aliases the result).
      const Matrix start = reused.precision;
      const GlassoResult fresh_warm = metaglasso::graphical_lasso(c.S, 1.1 * c.rho, o, &start);
      solver.solve(c.S, 1.1 * c.rho, o, &reused.precision, reused);
      CHECK(reused.precision == fresh_warm.precision);
      CHECK(reused.n_iter == fresh_warm.n_iter);
      CHECK(reused.gap == fresh_warm.gap);
    }
  }
}

TEST_CASE("repeated warm-started solves of one size allocate nothing") {
  // The M × M glasso of the fit: the same size every time, warm started from the previous answer.
  const Index M = 14;
  const Matrix A = factor_covariance(M, 3, 60, 2.0, 1.0, 101);
  const Matrix E = normal_matrix(M, M, 102);
  const double rho = 0.09;
  GlassoOptions o;
  o.tol = 1e-12;
  GlassoSolver solver;
  GlassoResult r;
  g_allocations = 0;
  g_count_allocations = true;
  solver.solve(A, rho, o, nullptr, r);
  g_count_allocations = false;
  CHECK(g_allocations.load() > 0);  // the count works: a first solve sizes the buffers
  Matrix S = A;
  for (int step = 0; step < 3; ++step) {  // first calls: buffers reach their sizes
    S = A + (1e-3 * (step + 1)) * (E + E.transpose());
    solver.solve(S, rho, o, &r.precision, r);
  }
  long allocations = 0;
  for (int step = 0; step < 20; ++step) {
    S = A + (1e-3 * (step % 4 + 1)) * (E + E.transpose());
    g_allocations = 0;
    g_count_allocations = true;
    solver.solve(S, rho, o, &r.precision, r);
    g_count_allocations = false;
    allocations += g_allocations.load();
    CHECK(r.converged);
  }
  CHECK(allocations == 0);
  CHECK(kkt_violation(S, rho, r.precision, dense_inverse(r.precision), false) < 1e-8);
}
