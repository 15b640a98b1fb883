// Tests of the fit loop: L-BFGS and Adam on small synthetic problems, the profile gradient
// against finite differences, thread-count independence and argument checks.
#include <doctest/doctest.h>

#include <Eigen/Cholesky>
#include <Eigen/Dense>
#include <cmath>
#include <limits>
#include <vector>

#include "metaglasso/metaglasso.hpp"

using metaglasso::Dataset;
using metaglasso::FitOptions;
using metaglasso::FitResult;
using metaglasso::Index;
using metaglasso::Matrix;
using metaglasso::Solver;
using metaglasso::Vector;

namespace {

// Standard normal draws by Box–Muller from SplitMix64.
struct Normal {
  explicit Normal(std::uint64_t seed) : rng(seed) {}
  double operator()() {
    const double u = 1.0 - rng.uniform(), v = rng.uniform();
    return std::sqrt(-2.0 * std::log(u)) * std::cos(6.283185307179586 * v);
  }
  Matrix matrix(Index rows, Index cols) {
    Matrix A(rows, cols);
    for (Index j = 0; j < cols; ++j)
      for (Index i = 0; i < rows; ++i) A(i, j) = (*this)();
    return A;
  }
  metaglasso::SplitMix64 rng;
};

// The paper's generative model (eq. 5): x = D L u + √ε (I − D Dᵀ) w, with L Lᵀ = Σ_k the
// covariance of 20 standard normal M-vectors and ε_k = 0.02 + |N(0, 0.1²)|.
std::vector<Dataset> synthetic(Index V, Index M, Index K, Index N, std::uint64_t seed) {
  Normal normal(seed);
  const Matrix D = metaglasso::random_initial_projection(V, M, seed + 1);
  std::vector<Dataset> data;
  for (Index k = 0; k < K; ++k) {
    const Matrix U = normal.matrix(M, 20);
    const Matrix Uc = U.colwise() - U.rowwise().mean();
    const Matrix Sigma = Uc * Uc.transpose() / 20.0;
    const Matrix L = Eigen::LLT<Matrix>(Sigma).matrixL();
    const double eps = 0.02 + std::abs(0.1 * normal());
    const Matrix W = normal.matrix(V, N);
    const Matrix X = D * (L * normal.matrix(M, N)) + std::sqrt(eps) * (W - D * (D.transpose() * W));
    data.push_back(Dataset::from_data(X));
  }
  return data;
}

double profile(const std::vector<Dataset>& data, const Matrix& D, double rho, const metaglasso::GlassoOptions& go,
               Matrix* grad = nullptr) {
  std::vector<metaglasso::DatasetState> states;
  return metaglasso::profile_objective(data, D, rho, go, states, grad, 1);
}

// canonicalize applied to the profile at D: the components a fit that stopped at D returns.
Matrix canonical_at(const std::vector<Dataset>& data, const Matrix& D, const metaglasso::Penalty& rho,
                    const metaglasso::GlassoOptions& go) {
  std::vector<metaglasso::DatasetState> states;
  metaglasso::profile_objective(data, D, rho, go, states, nullptr, 1);
  FitResult r;
  r.components = D;
  for (const auto& s : states) {
    r.precisions.push_back(s.glasso.precision);
    r.covariances.push_back(s.glasso.covariance);
  }
  metaglasso::canonicalize(r);
  return r.components;
}

void check_lbfgs_result(const std::vector<Dataset>& data, const Matrix& D0, const FitOptions& o) {
  const FitResult r = metaglasso::fit(data, D0, o);
  const Index M = D0.cols();
  CHECK(r.converged);
  REQUIRE(r.objective_history.size() == static_cast<std::size_t>(r.n_iter) + 1);
  for (std::size_t i = 1; i < r.objective_history.size(); ++i)
    CHECK(r.objective_history[i] <= r.objective_history[i - 1]);
  CHECK(r.objective == r.objective_history.back());
  CHECK(r.objective < r.objective_history.front());
  CHECK((r.components.transpose() * r.components - Matrix::Identity(M, M)).norm() < 1e-12);

  // The returned state is the profile at the returned D.
  Matrix g;
  const double f = profile(data, r.components, o.alpha, o.glasso, &g);
  CHECK(std::abs(f - r.objective) <= 1e-9 * std::abs(f));
  CHECK(std::abs(g.norm() - r.gradient_norm) <= 1e-6 * std::max(1.0, r.gradient_norm));
  Matrix g0;
  profile(data, D0, o.alpha, o.glasso, &g0);
  CHECK(r.gradient_norm <= std::sqrt(o.tol) * g0.norm());

  REQUIRE(r.precisions.size() == data.size());
  REQUIRE(r.covariances.size() == data.size());
  REQUIRE(r.noise_variances.size() == static_cast<Index>(data.size()));
  for (std::size_t k = 0; k < data.size(); ++k) {
    Matrix SD, A;
    data[k].project(r.components, SD, A);
    CHECK(r.noise_variances(static_cast<Index>(k)) ==
          doctest::Approx(metaglasso::noise_variance(data[k].trace(), A, data[k].n_features())).epsilon(1e-12));
    CHECK((r.precisions[k] * r.covariances[k] - Matrix::Identity(M, M)).norm() < 1e-8);
    if (o.alpha == 0.0) CHECK((r.precisions[k] * A - Matrix::Identity(M, M)).norm() < 1e-8);
  }
}

}  // namespace

TEST_CASE("L-BFGS at rho = 0 descends monotonically to a stationary point") {
  const auto data = synthetic(20, 3, 3, 60, 1);
  FitOptions o;
  o.alpha = 0.0;
  o.tol = 1e-10;
  check_lbfgs_result(data, metaglasso::random_initial_projection(20, 3, 5), o);
  check_lbfgs_result(data, metaglasso::pca_initial_projection(data, 3), o);
}

TEST_CASE("L-BFGS at rho > 0 descends monotonically to a stationary point") {
  const auto data = synthetic(20, 4, 4, 60, 2);
  FitOptions o;
  o.tol = 1e-10;
  o.glasso.tol = 1e-12;
  o.glasso.penalize_diagonal = false;
  for (const double rho : {0.02, 0.1}) {
    o.alpha = rho;
    check_lbfgs_result(data, metaglasso::pca_initial_projection(data, 4), o);
  }
  o.alpha = 0.05;
  o.glasso.penalize_diagonal = true;
  check_lbfgs_result(data, metaglasso::random_initial_projection(20, 4, 9), o);
}

TEST_CASE("the Riemannian gradient of the profile objective matches central finite differences") {
  const auto data = synthetic(15, 3, 3, 40, 3);
  const Matrix D = metaglasso::random_initial_projection(15, 3, 11);
  metaglasso::GlassoOptions go;
  go.tol = 1e-14;
  go.max_iter = 100000;
  Normal normal(4);
  for (const double rho : {0.0, 0.05, 0.2}) {
    CAPTURE(rho);
    Matrix g;
    profile(data, D, rho, go, &g);
    CHECK((D.transpose() * g + g.transpose() * D).norm() < 1e-10 * g.norm());  // tangent
    for (int trial = 0; trial < 3; ++trial) {
      Matrix xi = metaglasso::riemannian_gradient(D, normal.matrix(15, 3));  // a tangent direction
      xi = xi / xi.norm() + g / g.norm();
      const double h = 1e-5;
      const double fp = profile(data, metaglasso::polar_retraction(D + h * xi), rho, go);
      const double fm = profile(data, metaglasso::polar_retraction(D - h * xi), rho, go);
      const double fd = (fp - fm) / (2.0 * h);
      const double exact = g.cwiseProduct(xi).sum();
      CHECK(std::abs(fd - exact) <= 1e-5 * std::abs(exact));
    }
  }
}

TEST_CASE("fits do not depend on the number of threads") {
  // V·M·K = 20000 switches the parallel refits on.
  const Index V = 50, M = 10, K = 40;
  const auto data = synthetic(V, M, K, 25, 5);
  const Matrix D0 = metaglasso::pca_initial_projection(data, M);
  FitOptions o;
  o.alpha = 0.05;
  o.max_iter = 8;
  o.tol = 0.0;
  for (const Solver solver : {Solver::LBFGS, Solver::Adam}) {
    o.solver = solver;
    o.n_threads = 1;
    const FitResult a = metaglasso::fit(data, D0, o);
    o.n_threads = 2;
    const FitResult b = metaglasso::fit(data, D0, o);
    CHECK(a.n_iter == b.n_iter);
    CHECK((a.components - b.components).cwiseAbs().maxCoeff() <= 1e-10);
    CHECK(std::abs(a.objective - b.objective) <= 1e-10 * std::abs(a.objective));
    for (std::size_t i = 0; i < a.objective_history.size(); ++i)
      CHECK(std::abs(a.objective_history[i] - b.objective_history[i]) <= 1e-10 * std::abs(a.objective));
  }
}

TEST_CASE("Adam: first step, epoch losses, mini-batches and the stopping rule") {
  const Index V = 20, M = 3;
  const auto data = synthetic(V, M, 4, 50, 6);
  const Matrix D0 = metaglasso::random_initial_projection(V, M, 8);
  FitOptions o;
  o.solver = Solver::Adam;
  o.alpha = 0.05;
  o.learning_rate = 1e-2;
  o.tol = 0.0;

  SUBCASE("one full-batch epoch is one bias-corrected step: D1 = polar(D0 - lr g / (|g| + eps))") {
    o.max_iter = 1;
    const FitResult r = metaglasso::fit(data, D0, o);
    Matrix g;
    const double f0 = profile(data, D0, o.alpha, o.glasso, &g);
    const Matrix step = (g.array() / (g.array().abs() + o.adam_eps)).matrix();
    const Matrix D1 = metaglasso::polar_retraction(D0 - o.learning_rate * step);
    CHECK((r.components - canonical_at(data, D1, o.alpha, o.glasso)).cwiseAbs().maxCoeff() < 1e-12);
    REQUIRE(r.objective_history.size() == 1);
    CHECK(r.objective_history[0] == doctest::Approx(f0).epsilon(1e-12));  // E at D0
    CHECK(r.n_iter == 1);
    CHECK_FALSE(r.converged);
  }

  SUBCASE("full batch and mini-batches decrease the objective and are reproducible") {
    o.max_iter = 60;
    for (const Index batch : {Index{0}, Index{1}, Index{3}, Index{4}, Index{10}}) {
      o.batch_size = batch;
      const FitResult a = metaglasso::fit(data, D0, o);
      const FitResult b = metaglasso::fit(data, D0, o);
      CHECK(a.n_iter == 60);
      CHECK(a.objective_history.size() == 60);
      CHECK((a.components - b.components).norm() == 0.0);
      CHECK(a.objective_history.back() < a.objective_history.front());
      CHECK((a.components.transpose() * a.components - Matrix::Identity(M, M)).norm() < 1e-12);
      Matrix g;
      CHECK(a.objective == doctest::Approx(profile(data, a.components, o.alpha, o.glasso, &g)).epsilon(1e-9));
      CHECK(a.gradient_norm == doctest::Approx(g.norm()).epsilon(1e-6));
    }
    // batch_size >= K is the full batch.
    o.batch_size = 0;
    const FitResult full = metaglasso::fit(data, D0, o);
    o.batch_size = 4;
    CHECK((metaglasso::fit(data, D0, o).components - full.components).norm() == 0.0);
    // The shuffle seed matters only for mini-batches (for the full batch it only reorders sums).
    // Adam divides by the root of the second moment, which magnifies rounding in small gradient
    // entries: reordered sums have been seen to move D by up to 2e-11 over 60 epochs.
    o.seed = 3;
    CHECK((metaglasso::fit(data, D0, o).components - full.components).norm() < 1e-9);
    o.batch_size = 2;
    const FitResult s3 = metaglasso::fit(data, D0, o);
    o.seed = 4;
    CHECK((metaglasso::fit(data, D0, o).components - s3.components).norm() > 0.0);
  }

  SUBCASE("stops when two successive epoch losses agree to tol") {
    o.max_iter = 5000;
    o.tol = 1e-6;
    const FitResult r = metaglasso::fit(data, D0, o);
    CHECK(r.converged);
    CHECK(r.n_iter < 5000);
    const auto n = r.objective_history.size();
    REQUIRE(n >= 2);
    CHECK(std::abs(r.objective_history[n - 1] - r.objective_history[n - 2]) <=
          1e-6 * std::max(1.0, std::abs(r.objective_history[n - 1])));
  }
}

TEST_CASE("L-BFGS respects max_iter and reaches a lower objective than Adam in fewer iterations") {
  const auto data = synthetic(30, 4, 5, 80, 7);
  const Matrix D0 = metaglasso::pca_initial_projection(data, 4);
  FitOptions o;
  o.alpha = 0.05;
  o.max_iter = 2;
  FitResult r = metaglasso::fit(data, D0, o);
  CHECK(r.n_iter == 2);
  CHECK_FALSE(r.converged);
  CHECK(r.objective_history.size() == 3);

  o.max_iter = 500;
  r = metaglasso::fit(data, D0, o);
  CHECK(r.converged);
  o.solver = Solver::Adam;
  o.max_iter = 1000;
  o.tol = 0.0;
  const FitResult adam = metaglasso::fit(data, D0, o);
  CHECK(r.objective <= adam.objective);
  CHECK(r.n_iter * 10 <= adam.n_iter);
}

TEST_CASE("fit rejects invalid arguments") {
  const auto data = synthetic(10, 2, 2, 20, 8);
  const Matrix D0 = metaglasso::random_initial_projection(10, 2, 1);
  const FitOptions ok;
  CHECK_NOTHROW(metaglasso::fit(data, D0, ok));
  CHECK_THROWS_AS(metaglasso::fit({}, D0, ok), std::invalid_argument);

  std::vector<Dataset> mixed = data;
  mixed.push_back(Dataset::from_data(Matrix::Random(11, 20)));
  CHECK_THROWS_AS(metaglasso::fit(mixed, D0, ok), std::invalid_argument);

  CHECK_THROWS_AS(metaglasso::fit(data, metaglasso::random_initial_projection(9, 2, 1), ok), std::invalid_argument);
  CHECK_THROWS_AS(metaglasso::fit(data, Matrix::Identity(10, 10), ok), std::invalid_argument);  // M = V
  CHECK_THROWS_AS(metaglasso::fit(data, Matrix(10, 0), ok), std::invalid_argument);            // M = 0
  CHECK_THROWS_AS(metaglasso::fit(data, 1.1 * D0, ok), std::invalid_argument);                 // not orthonormal
  Matrix D_nan = D0;
  D_nan(0, 0) = std::nan("");
  CHECK_THROWS_AS(metaglasso::fit(data, D_nan, ok), std::invalid_argument);

  auto bad = [&](auto&& modify) {
    FitOptions o;
    modify(o);
    CHECK_THROWS_AS(metaglasso::fit(data, D0, o), std::invalid_argument);
  };
  bad([](FitOptions& o) { o.alpha = -0.1; });
  bad([](FitOptions& o) { o.alpha = std::numeric_limits<double>::infinity(); });
  bad([](FitOptions& o) { o.alpha = std::nan(""); });
  bad([](FitOptions& o) { o.max_iter = 0; });
  bad([](FitOptions& o) { o.tol = -1e-8; });
  bad([](FitOptions& o) { o.learning_rate = 0.0; });
  bad([](FitOptions& o) { o.batch_size = -1; });
  bad([](FitOptions& o) { o.beta1 = 1.0; });
  bad([](FitOptions& o) { o.beta2 = -0.1; });
  bad([](FitOptions& o) { o.adam_eps = 0.0; });
  bad([](FitOptions& o) { o.lbfgs_memory = 0; });
  bad([](FitOptions& o) { o.glasso.tol = -1.0; });
  bad([](FitOptions& o) { o.glasso.max_iter = 0; });
}

TEST_CASE("a numerical failure inside the fit propagates as NumericalError") {
  // All variance inside span D0: ε (eq. 16) is exactly zero at the start.
  const Index V = 6, M = 2;
  Matrix S = Matrix::Zero(V, V);
  S(0, 0) = 2.0;
  S(1, 1) = 1.0;
  const std::vector<Dataset> data{Dataset::from_covariance(S, 10)};
  const Matrix D0 = Matrix::Identity(V, M);
  for (const Solver solver : {Solver::LBFGS, Solver::Adam}) {
    FitOptions o;
    o.solver = solver;
    CHECK_THROWS_AS(metaglasso::fit(data, D0, o), metaglasso::NumericalError);
  }
}

TEST_CASE("the progress callback sees every iteration; exceptions from the hooks end the fit") {
  const auto data = synthetic(30, 4, 5, 80, 7);
  const Matrix D0 = metaglasso::pca_initial_projection(data, 4);
  for (const Solver solver : {Solver::LBFGS, Solver::Adam}) {
    FitOptions o;
    o.alpha = 0.05;
    o.solver = solver;
    o.max_iter = solver == Solver::Adam ? 30 : 500;
    o.batch_size = 2;
    std::vector<metaglasso::FitProgress> seen;
    int checks = 0;
    o.callback = [&](const metaglasso::FitProgress& p) { seen.push_back(p); };
    o.interrupt_check = [&] { ++checks; };
    const FitResult r = metaglasso::fit(data, D0, o);
    REQUIRE(static_cast<int>(seen.size()) == r.n_iter);
    for (std::size_t i = 0; i < seen.size(); ++i) {
      CHECK(seen[i].iteration == static_cast<int>(i) + 1);
      // The same number as the history (lbfgs: index 0 is the start; adam: the epochs only).
      CHECK(seen[i].objective == r.objective_history[solver == Solver::LBFGS ? i + 1 : i]);
      CHECK(seen[i].gradient_norm > 0.0);
    }
    if (solver == Solver::LBFGS) CHECK(seen.back().gradient_norm == r.gradient_norm);
    // At least one objective evaluation per iteration (lbfgs) or per mini-batch of 2 of 5 (adam: 3).
    CHECK(checks >= (solver == Solver::Adam ? 3 : 1) * r.n_iter);

    struct Stop {};
    o.callback = [](const metaglasso::FitProgress& p) {
      if (p.iteration == 2) throw Stop{};
    };
    CHECK_THROWS_AS(metaglasso::fit(data, D0, o), Stop);
    o.callback = nullptr;
    int calls = 0;
    o.interrupt_check = [&] {
      if (++calls == 3) throw Stop{};
    };
    CHECK_THROWS_AS(metaglasso::fit(data, D0, o), Stop);
    CHECK(calls == 3);
  }
}

namespace {

// Covariances S_k held as dense matrices, products by plain Eigen expressions, one call of project
// counted per evaluation: an operator written independently of Dataset.
class DenseCovariances final : public metaglasso::CovarianceProducts {
 public:
  explicit DenseCovariances(std::vector<Matrix> S, std::vector<Index> n) : S_(std::move(S)), n_(std::move(n)) {}
  Index n_datasets() const override { return static_cast<Index>(S_.size()); }
  Index n_features() const override { return S_.front().rows(); }
  Index dimension() const override { return S_.front().rows(); }
  Index n_samples(Index k) const override { return n_[static_cast<std::size_t>(k)]; }
  double trace(Index k) const override { return S_[static_cast<std::size_t>(k)].trace(); }
  void project(const Eigen::Ref<const Matrix>& D, const Index* ks, Index count, metaglasso::Projection* const* out,
               int) const override {
    ++calls;
    requested += count;
    for (Index i = 0; i < count; ++i) {
      out[i]->SD = S_[static_cast<std::size_t>(ks[i])] * D;
      out[i]->DtSD = D.transpose() * out[i]->SD;
      out[i]->DtSD = 0.5 * (out[i]->DtSD + out[i]->DtSD.transpose()).eval();
      if (corrupt) out[i]->SD(0, 0) = std::numeric_limits<double>::quiet_NaN();
      if (wrong_shape) out[i]->DtSD.resize(1, 1);
    }
  }
  mutable int calls = 0;
  mutable Index requested = 0;
  bool corrupt = false, wrong_shape = false;

 private:
  std::vector<Matrix> S_;
  std::vector<Index> n_;
};

}  // namespace

TEST_CASE("the fit through an independent CovarianceProducts operator equals the fit on datasets") {
  const Index V = 14, M = 3, K = 4;
  const auto data = synthetic(V, M, K, 40, 21);
  std::vector<Matrix> S;
  std::vector<Index> n;
  std::vector<Dataset> covs;
  for (const auto& d : data) {
    S.push_back(d.matrix());  // N = 40 > V: stored as the covariance
    n.push_back(d.n_samples());
    covs.push_back(Dataset::from_covariance(d.matrix(), d.n_samples()));
  }
  REQUIRE(data.front().is_covariance());
  DenseCovariances op(S, n);
  metaglasso::DatasetProducts in_memory(covs);

  // The default PCA start (block Lanczos through project) against the in-memory path and the dense
  // eigenvectors of Σ_k S_k.
  const Matrix P_op = op.pca_start(M, 1), P_mem = in_memory.pca_start(M, 1);
  Matrix sum = Matrix::Zero(V, V);
  for (const auto& s : S) sum += s;
  const Eigen::SelfAdjointEigenSolver<Matrix> es(sum);
  for (Index j = 0; j < M; ++j) {
    const double c = std::abs(P_op.col(j).dot(es.eigenvectors().col(V - 1 - j)));
    CHECK(c == doctest::Approx(1.0).epsilon(1e-10));
  }
  CHECK((P_op - P_mem).cwiseAbs().maxCoeff() < 1e-8);
  CHECK(op.calls >= 1);

  for (const Solver solver : {Solver::LBFGS, Solver::Adam}) {
    FitOptions o;
    o.alpha = 0.05;
    o.solver = solver;
    o.max_iter = solver == Solver::LBFGS ? 200 : 30;
    o.batch_size = 2;
    o.learning_rate = 1e-2;
    o.glasso.tol = 1e-12;
    o.n_threads = 1;
    op.calls = 0;
    op.requested = 0;
    const FitResult a = metaglasso::fit(op, P_mem, o);
    const FitResult b = metaglasso::fit(in_memory, P_mem, o);
    CHECK(a.n_iter == b.n_iter);
    CHECK((a.components - b.components).cwiseAbs().maxCoeff() < 1e-10);
    CHECK(std::abs(a.objective - b.objective) <= 1e-10 * std::abs(b.objective));
    for (Index k = 0; k < K; ++k)
      CHECK((a.precisions[static_cast<std::size_t>(k)] - b.precisions[static_cast<std::size_t>(k)])
                .cwiseAbs()
                .maxCoeff() < 1e-8);
    CHECK(a.representations == std::vector<metaglasso::Representation>(K, metaglasso::Representation::Operator));
    // L-BFGS asks for all K datasets at once; Adam for its mini-batches of 2, plus the final evaluation.
    if (solver == Solver::LBFGS) CHECK(op.requested == static_cast<Index>(op.calls) * K);
    else CHECK(op.calls == a.n_iter * 2 + 1);
  }

  FitOptions o;
  o.alpha = 0.05;
  o.max_iter = 3;
  op.corrupt = true;
  CHECK_THROWS_WITH_AS(metaglasso::fit(op, P_mem, o), doctest::Contains("NaN or infinite"), std::invalid_argument);
  op.corrupt = false;
  op.wrong_shape = true;
  CHECK_THROWS_WITH_AS(metaglasso::fit(op, P_mem, o), doctest::Contains("covariance products have shapes"),
                       std::invalid_argument);
  DenseCovariances bad({Matrix::Zero(V, V)}, {0});
  CHECK_THROWS_WITH_AS(metaglasso::fit(bad, P_mem, o), doctest::Contains("n_samples >= 1"), std::invalid_argument);
}

namespace {

// Whether r is in canonical form: Σ_k Σ_k[j, j] non-increasing in j, each column's entry of largest
// absolute value positive.
bool is_canonical(const FitResult& r) {
  const Index M = r.components.cols();
  Vector v = Vector::Zero(M);
  for (const auto& C : r.covariances) v += C.diagonal();
  for (Index j = 1; j < M; ++j)
    if (v(j) > v(j - 1)) return false;
  for (Index j = 0; j < M; ++j) {
    Index top = 0;
    r.components.col(j).cwiseAbs().maxCoeff(&top);
    if (r.components(top, j) < 0.0) return false;
  }
  return true;
}

}  // namespace

TEST_CASE("per-dataset penalties: each dataset meets its own KKT conditions; equal rho_k is the scalar fit") {
  const Index V = 20, M = 3;
  const auto data = synthetic(V, M, 3, 60, 21);
  FitOptions o;
  o.tol = 1e-10;
  o.glasso.tol = 1e-12;
  o.glasso.max_iter = 10000;
  const std::vector<double> rhos = {0.02, 0.1, 0.3};
  o.dataset_alphas = rhos;
  for (const bool diagonal : {true, false}) {
    CAPTURE(diagonal);
    o.glasso.penalize_diagonal = diagonal;
    const FitResult r = metaglasso::fit(data, metaglasso::pca_initial_projection(data, M), o);
    CHECK(r.converged);
    // Largest violation of the graphical lasso's subgradient conditions of dataset k at penalty rho:
    //   Λ_ij ≠ 0: Σ_ij − A_ij = rho sign(Λ_ij);  Λ_ij = 0: |Σ_ij − A_ij| ≤ rho  (diagonal: rho or 0).
    auto violation = [&](std::size_t k, double rho) {
      Matrix SD, A;
      data[k].project(r.components, SD, A);
      const Matrix& P = r.precisions[k];
      const Matrix R = r.covariances[k] - A;
      double worst = 0.0;
      for (Index j = 0; j < M; ++j)
        for (Index i = 0; i < M; ++i) {
          const double penalty = (i == j && !diagonal) ? 0.0 : rho;
          const double v = P(i, j) != 0.0 ? std::abs(R(i, j) - penalty * (P(i, j) > 0 ? 1.0 : -1.0))
                                          : std::max(0.0, std::abs(R(i, j)) - penalty);
          worst = std::max(worst, v);
        }
      return worst;
    };
    double swapped = 0.0;  // the conditions with the penalties of other datasets
    for (std::size_t k = 0; k < 3; ++k) {
      CAPTURE(k);
      CHECK(violation(k, rhos[k]) < 1e-8);
      swapped = std::max(swapped, violation(k, rhos[(k + 1) % 3]));
      if (diagonal) CHECK(violation(k, rhos[(k + 1) % 3]) > 1e-3);
    }
    CHECK(swapped > 1e-3);
    Matrix g;
    std::vector<metaglasso::DatasetState> states;
    const double f = metaglasso::profile_objective(data, r.components, metaglasso::Penalty(rhos), o.glasso, states,
                                                   &g, 1);
    CHECK(f == doctest::Approx(r.objective).epsilon(1e-12));
  }

  // ρ_k = ρ for every k is the scalar fit, bit for bit, for both solvers.
  o.glasso.penalize_diagonal = true;
  o.max_iter = 30;
  for (const Solver solver : {Solver::LBFGS, Solver::Adam}) {
    o.solver = solver;
    FitOptions scalar = o;
    scalar.dataset_alphas.clear();
    scalar.alpha = 0.07;
    o.dataset_alphas = {0.07, 0.07, 0.07};
    const Matrix D0 = metaglasso::random_initial_projection(V, M, 4);
    const FitResult a = metaglasso::fit(data, D0, scalar), b = metaglasso::fit(data, D0, o);
    CHECK(a.components == b.components);
    CHECK(a.objective_history == b.objective_history);
    for (std::size_t k = 0; k < 3; ++k) CHECK(a.precisions[k] == b.precisions[k]);
  }

  const Matrix D0 = metaglasso::random_initial_projection(V, M, 4);
  auto bad = [&](std::vector<double> alphas) {
    FitOptions f;
    f.dataset_alphas = std::move(alphas);
    CHECK_THROWS_AS(metaglasso::fit(data, D0, f), std::invalid_argument);
  };
  bad({0.1, 0.1});                  // K = 3
  bad({0.1, -0.1, 0.1});
  bad({0.1, 0.1, std::nan("")});
  bad({0.1, 0.1, std::numeric_limits<double>::infinity()});
}

TEST_CASE("canonicalize: fits come in canonical form, which a signed permutation does not change") {
  const Index V = 20, M = 4;
  const auto data = synthetic(V, M, 3, 60, 31);
  FitOptions o;
  o.alpha = 0.05;
  for (const Solver solver : {Solver::LBFGS, Solver::Adam}) {
    o.solver = solver;
    o.max_iter = solver == Solver::Adam ? 20 : 500;
    const FitResult r = metaglasso::fit(data, metaglasso::random_initial_projection(V, M, 2), o);
    CHECK(is_canonical(r));
    FitResult again = r;
    metaglasso::canonicalize(again);  // idempotent, exactly
    CHECK(again.components == r.components);
    for (std::size_t k = 0; k < 3; ++k) CHECK(again.precisions[k] == r.precisions[k]);

    // Permute and flip by hand; canonicalize undoes it exactly.
    const std::vector<Index> perm = {2, 0, 3, 1};
    const std::vector<double> flip = {-1.0, 1.0, -1.0, -1.0};
    FitResult mixed = r;
    for (Index j = 0; j < M; ++j) mixed.components.col(j) = flip[j] * r.components.col(perm[j]);
    for (std::size_t k = 0; k < 3; ++k)
      for (Index b = 0; b < M; ++b)
        for (Index a = 0; a < M; ++a) {
          mixed.precisions[k](a, b) = flip[a] * flip[b] * r.precisions[k](perm[a], perm[b]);
          mixed.covariances[k](a, b) = flip[a] * flip[b] * r.covariances[k](perm[a], perm[b]);
        }
    CHECK_FALSE(is_canonical(mixed));
    metaglasso::canonicalize(mixed);
    CHECK(mixed.components == r.components);
    for (std::size_t k = 0; k < 3; ++k) {
      CHECK(mixed.precisions[k] == r.precisions[k]);
      CHECK(mixed.covariances[k] == r.covariances[k]);
    }
    // The model is the same: f at the permuted D equals the fit's objective.
    Matrix D_perm(V, M);
    for (Index j = 0; j < M; ++j) D_perm.col(j) = flip[j] * r.components.col(perm[j]);
    CHECK(profile(data, D_perm, o.alpha, o.glasso) == doctest::Approx(r.objective).epsilon(1e-10));
  }

  // Ties of the summed variance keep the original order; sizes are checked.
  FitResult tie;
  tie.components = Matrix::Identity(3, 2);
  tie.covariances = {Matrix::Identity(2, 2)};
  tie.precisions = {Matrix::Identity(2, 2)};
  metaglasso::canonicalize(tie);
  CHECK(tie.components == Matrix::Identity(3, 2));
  tie.covariances = {Matrix::Identity(3, 3)};
  CHECK_THROWS_AS(metaglasso::canonicalize(tie), std::invalid_argument);
}
