// Tests of the data-span compression, the dataset representations and the threaded kernels
// against dense brute-force answers.
#include <doctest/doctest.h>

#include <Eigen/Dense>
#include <cmath>
#include <vector>

#include "metaglasso/metaglasso.hpp"

using metaglasso::DataList;
using metaglasso::Dataset;
using metaglasso::DataSpan;
using metaglasso::FitOptions;
using metaglasso::FitResult;
using metaglasso::Index;
using metaglasso::Matrix;
using metaglasso::Representation;
using metaglasso::Vector;

namespace {

// Uniform entries in [−½, ½) from SplitMix64, plus a per-feature offset so that centring matters.
Matrix sample_matrix(Index rows, Index cols, std::uint64_t seed, double offset = 3.0) {
  metaglasso::SplitMix64 rng(seed);
  Matrix A(rows, cols);
  for (Index j = 0; j < cols; ++j)
    for (Index i = 0; i < rows; ++i) A(i, j) = rng.uniform() - 0.5;
  for (Index i = 0; i < rows; ++i) A.row(i).array() += offset * std::sin(static_cast<double>(i));
  return A;
}

// Standard normal draws by Box–Muller from SplitMix64.
Matrix normal_matrix(Index rows, Index cols, metaglasso::SplitMix64& rng) {
  Matrix A(rows, cols);
  for (Index j = 0; j < cols; ++j)
    for (Index i = 0; i < rows; ++i) {
      const double u = 1.0 - rng.uniform(), v = rng.uniform();
      A(i, j) = std::sqrt(-2.0 * std::log(u)) * std::cos(6.283185307179586 * v);
    }
  return A;
}

// K datasets from the paper's generative model (eq. 5) with M = 3 factors, Σ_k the covariance of
// 20 standard normal 3-vectors and ε_k ≈ 0.05, each with a per-feature offset and its own scale.
std::vector<Matrix> wide_data(Index V, const std::vector<Index>& Ns, std::uint64_t seed) {
  metaglasso::SplitMix64 rng(seed);
  const Matrix D = metaglasso::random_initial_projection(V, 3, seed + 1);
  std::vector<Matrix> Xs;
  for (std::size_t k = 0; k < Ns.size(); ++k) {
    const Index N = Ns[k];
    const Matrix U = normal_matrix(3, 20, rng);
    const Matrix Uc = U.colwise() - U.rowwise().mean();
    const Matrix L = Eigen::LLT<Matrix>(Uc * Uc.transpose() / 20.0).matrixL();
    const Matrix W = normal_matrix(V, N, rng);
    Matrix X = D * (L * normal_matrix(3, N, rng)) + std::sqrt(0.05) * (W - D * (D.transpose() * W));
    X *= 1.0 + static_cast<double>(k);  // datasets of different scales
    for (Index i = 0; i < V; ++i) X.row(i).array() += 3.0 * std::sin(static_cast<double>(i));
    Xs.push_back(X);
  }
  return Xs;
}

DataList as_list(const std::vector<Matrix>& Xs) { return DataList(Xs.begin(), Xs.end()); }

Matrix centred_factor(const Matrix& X) {
  return (X.colwise() - X.rowwise().mean()) / std::sqrt(static_cast<double>(X.cols()));
}

double max_abs(const Matrix& A) { return A.cwiseAbs().maxCoeff(); }

}  // namespace

TEST_CASE("DataSpan: orthonormal basis of the centred data, exact factors, rank and maps") {
  const Index V = 80;
  const auto mats = wide_data(V, {10, 15, 12}, 1);
  const DataList Xs = as_list(mats);
  const DataSpan span(Xs);
  CHECK(span.n_features() == V);
  CHECK(span.rank() == 37 - 3);  // centring removes one direction per dataset
  CHECK(span.pivots().size() == span.rank());
  for (Index i = 1; i < span.rank(); ++i) CHECK(span.pivots()(i) <= span.pivots()(i - 1) * (1.0 + 1e-12));
  CHECK(span.pivots().minCoeff() > 0.0);

  const Matrix B = span.basis(Xs);
  REQUIRE(B.rows() == V);
  REQUIRE(B.cols() == span.rank());
  CHECK(max_abs(B.transpose() * B - Matrix::Identity(span.rank(), span.rank())) < 1e-12);
  for (std::size_t k = 0; k < mats.size(); ++k) {
    const Matrix F = centred_factor(mats[k]);
    const Dataset& c = span.datasets()[k];
    CHECK(c.n_features() == V);
    CHECK(c.dimension() == span.rank());
    CHECK(c.n_samples() == mats[k].cols());
    CHECK(c.representation() == Representation::Data);
    CHECK(c.trace() == doctest::Approx(F.squaredNorm()).epsilon(1e-13));
    CHECK(max_abs(B * c.matrix() - F) < 1e-12 * max_abs(F));  // F_k = B C_k
    CHECK(span.means().col(static_cast<Index>(k)).isApprox(mats[k].rowwise().mean(), 1e-14));
  }
  const Matrix Z = sample_matrix(V, 3, 7);
  CHECK(max_abs(span.to_span(Xs, Z) - B.transpose() * Z) < 1e-12 * max_abs(Z));
  const Matrix Y = sample_matrix(span.rank(), 3, 8);
  CHECK(max_abs(span.to_features(Xs, Y) - B * Y) < 1e-12 * max_abs(Y));

  // The data must be the ones the span was built from.
  const std::vector<Matrix> other{mats[0], mats[1]};
  CHECK_THROWS_AS(span.to_features(as_list(other), Y), std::invalid_argument);
  CHECK_THROWS_AS(span.to_features(Xs, Matrix(span.rank() + 1, 2)), std::invalid_argument);
  CHECK_THROWS_AS(DataSpan(Xs, false, 1.5), std::invalid_argument);
}

TEST_CASE("DataSpan with assume_centered spans the raw data") {
  const auto mats = wide_data(50, {8, 9}, 2);
  const DataList Xs = as_list(mats);
  const DataSpan span(Xs, true);
  CHECK(span.rank() == 17);
  CHECK(span.means().norm() == 0.0);
  const Matrix B = span.basis(Xs);
  for (std::size_t k = 0; k < mats.size(); ++k) {
    const Matrix F = mats[k] / std::sqrt(static_cast<double>(mats[k].cols()));
    CHECK(max_abs(B * span.datasets()[k].matrix() - F) < 1e-12 * max_abs(F));
  }
}

TEST_CASE("datasets in span coordinates give the projections, objective and gradient of the full ones") {
  const Index V = 60, M = 3;
  const auto mats = wide_data(V, {9, 14, 11}, 3);
  const DataList Xs = as_list(mats);
  const DataSpan span(Xs);
  const Matrix B = span.basis(Xs);
  std::vector<Dataset> full;
  for (const auto& X : mats) full.push_back(Dataset::from_data(X));
  const Matrix E = metaglasso::polar_retraction(sample_matrix(span.rank(), M, 4, 0.0));
  const Matrix D = B * E;

  for (std::size_t k = 0; k < full.size(); ++k) {
    Matrix SD, A, SDr, Ar;
    full[k].project(D, SD, A);
    span.datasets()[k].project(E, SDr, Ar);
    CHECK(max_abs(B * SDr - SD) < 1e-12 * max_abs(SD));
    CHECK(max_abs(Ar - A) < 1e-12 * max_abs(A));
  }
  metaglasso::GlassoOptions go;
  go.tol = 1e-14;
  go.max_iter = 100000;
  for (const double rho : {0.0, 0.1}) {
    std::vector<metaglasso::DatasetState> s_full, s_span;
    Matrix g_full, g_span;
    const double f_full = metaglasso::profile_objective(full, D, rho, go, s_full, &g_full, 1);
    const double f_span = metaglasso::profile_objective(span.datasets(), E, rho, go, s_span, &g_span, 1);
    CHECK(f_span == doctest::Approx(f_full).epsilon(1e-12));
    CHECK(max_abs(B * g_span - g_full) < 1e-9 * max_abs(g_full));
    for (std::size_t k = 0; k < full.size(); ++k)
      CHECK(s_span[k].noise == doctest::Approx(s_full[k].noise).epsilon(1e-12));
  }
}

TEST_CASE("the PCA start in the span equals the PCA start of the full datasets") {
  const Index V = 70, M = 4;
  const auto mats = wide_data(V, {12, 10, 13}, 5);
  const DataList Xs = as_list(mats);
  std::vector<Dataset> full;
  for (const auto& X : mats) full.push_back(Dataset::from_data(X));
  const Matrix D_full = metaglasso::pca_initial_projection(full, M, 1);
  const DataSpan span(Xs);
  const Matrix D_span = span.basis(Xs) * span.pca_start(Xs, M);
  CHECK(max_abs(D_span - D_full) < 1e-9);
  CHECK(max_abs(metaglasso::pca_initial_projection_data(Xs, M, false, true) - D_full) < 1e-9);
  CHECK(max_abs(metaglasso::pca_initial_projection_data(Xs, M, false, false) - D_full) == 0.0);
  CHECK_THROWS_AS(span.pca_start(Xs, span.rank()), std::invalid_argument);
}

TEST_CASE("fit_data: compressed and uncompressed L-BFGS give the same fit") {
  const Index V = 90, M = 3;
  const auto mats = wide_data(V, {15, 20, 18}, 6);
  const DataList Xs = as_list(mats);
  FitOptions o;
  o.alpha = 0.1;
  o.tol = 1e-12;
  o.max_iter = 2000;
  o.glasso.tol = 1e-12;
  o.glasso.max_iter = 10000;
  metaglasso::DataOptions compressed, plain;
  plain.compress = false;
  for (const auto& start : {metaglasso::Start::pca(M), metaglasso::Start::random(M, 3)}) {
    const FitResult a = metaglasso::fit_data(Xs, start, o, compressed);
    // The uncompressed fit from the same start: the PCA start of the span (equal to the V-dimensional
    // one to the Lanczos tolerance), or the random start projected into the span.
    const DataSpan span(Xs);
    const Matrix B = span.basis(Xs);
    const Matrix D0 = start.method == metaglasso::Start::Method::PCA
                          ? metaglasso::polar_retraction(B * span.pca_start(Xs, M))
                          : metaglasso::polar_retraction(B * (B.transpose() * metaglasso::random_initial_projection(V, M, 3)));
    const FitResult b = metaglasso::fit_data(Xs, metaglasso::Start::given(D0), o, plain);
    CHECK(a.compression_rank == 53 - 3);
    CHECK(b.compression_rank == 0);
    CHECK(a.converged);
    CHECK(b.converged);
    CHECK(max_abs(a.components - b.components) < 1e-8);
    CHECK(a.objective == doctest::Approx(b.objective).epsilon(1e-10));
    CHECK(max_abs(a.components.transpose() * a.components - Matrix::Identity(M, M)) < 1e-13);
    for (Index j = 0; j < M; ++j) {  // canonical signs in the V features, not in span coordinates
      Index top = 0;
      a.components.col(j).cwiseAbs().maxCoeff(&top);
      CHECK(a.components(top, j) > 0.0);
    }
    REQUIRE(a.representations.size() == 3);
    for (std::size_t k = 0; k < 3; ++k) {
      CHECK(a.representations[k] == Representation::Data);
      CHECK(b.representations[k] == Representation::Data);
      CHECK(a.noise_variances(static_cast<Index>(k)) ==
            doctest::Approx(b.noise_variances(static_cast<Index>(k))).epsilon(1e-10));
    }
  }

  // Adam is never compressed; neither are datasets forced into covariance representation.
  o.solver = metaglasso::Solver::Adam;
  o.max_iter = 2;
  CHECK(metaglasso::fit_data(Xs, metaglasso::Start::pca(M), o, compressed).compression_rank == 0);
  o.solver = metaglasso::Solver::LBFGS;
  metaglasso::DataOptions cov;
  cov.representation = Representation::Covariance;
  const FitResult c = metaglasso::fit_data(Xs, metaglasso::Start::pca(M), o, cov);
  CHECK(c.compression_rank == 0);
  CHECK(c.representations[0] == Representation::Covariance);
}

TEST_CASE("a start orthogonal to the span of the data is rejected") {
  const Index V = 40, M = 2;
  const auto mats = wide_data(V, {6, 7}, 7);
  const DataList Xs = as_list(mats);
  const DataSpan span(Xs);
  const Matrix B = span.basis(Xs);
  const Matrix Z = sample_matrix(V, M, 9, 0.0);
  const Matrix D0 = metaglasso::polar_retraction(Z - B * (B.transpose() * Z));
  CHECK_THROWS_AS(span.project_start(Xs, D0), std::invalid_argument);
  CHECK_THROWS_AS(metaglasso::fit_data(Xs, metaglasso::Start::given(D0), FitOptions{}), std::invalid_argument);
  CHECK_NOTHROW(span.project_start(Xs, metaglasso::random_initial_projection(V, M, 1)));
}

TEST_CASE("data and covariance representations give the same projections") {
  const Index V = 25, M = 4;
  const Matrix X = sample_matrix(V, 40, 11);
  const Dataset autod = Dataset::from_data(X);  // N > V: covariance
  const Dataset data = Dataset::from_data(X, false, Representation::Data);
  const Dataset cov = Dataset::from_data(X, false, Representation::Covariance, 2);
  CHECK(autod.representation() == Representation::Covariance);
  CHECK(data.representation() == Representation::Data);
  CHECK(Dataset::from_data(X.leftCols(20)).representation() == Representation::Data);  // N ≤ V
  const Matrix F = centred_factor(X);
  CHECK(max_abs(cov.matrix() - F * F.transpose()) < 1e-14 * max_abs(F * F.transpose()));
  CHECK(max_abs(cov.matrix() - cov.matrix().transpose()) == 0.0);
  CHECK(cov.trace() == doctest::Approx(data.trace()).epsilon(1e-14));
  const Matrix D = metaglasso::random_initial_projection(V, M, 2);
  Matrix SD1, A1, SD2, A2;
  data.project(D, SD1, A1);
  cov.project(D, SD2, A2);
  CHECK(max_abs(SD1 - SD2) < 1e-13 * max_abs(SD1));
  CHECK(max_abs(A1 - A2) < 1e-13 * max_abs(A1));
  CHECK(max_abs(A1 - A1.transpose()) == 0.0);
  CHECK(A1.trace() == doctest::Approx((F.transpose() * D).squaredNorm()).epsilon(1e-14));  // fused trace

  // from_factor: factor kept when N ≤ d, covariance otherwise.
  const Dataset f1 = Dataset::from_factor(F.leftCols(10), 10, 100, 1.0);
  CHECK(f1.representation() == Representation::Data);
  CHECK(f1.n_features() == 100);
  CHECK(f1.dimension() == V);
  CHECK(Dataset::from_factor(F, 40, 100, 1.0).representation() == Representation::Covariance);
  CHECK_THROWS_AS(Dataset::from_factor(F, 40, 10, 1.0), std::invalid_argument);  // n_features < rows
  CHECK_THROWS_AS(Dataset::from_factor(F, 40, 100, -1.0), std::invalid_argument);
  CHECK(metaglasso::parse_representation("covariance") == Representation::Covariance);
  CHECK_THROWS_AS(metaglasso::parse_representation("gram"), std::invalid_argument);
}

TEST_CASE("threaded kernels give bit-identical results for every thread count") {
  const Index V = 10000, N = 600, M = 10;  // 6·10⁷ multiply-adds per product: threaded
  const Matrix X = sample_matrix(V, N, 21);
  const Dataset data = Dataset::from_data(X, false, Representation::Data);
  const Matrix D = metaglasso::random_initial_projection(V, M, 3);
  Matrix SD1, A1, W1, SD2, A2, W2, SD3, A3, W3;
  data.project(D, SD1, A1, W1, 1);
  data.project(D, SD2, A2, W2, 2);
  data.project(D, SD3, A3, W3, 3);
  CHECK((SD1 - SD2).norm() == 0.0);
  CHECK((SD1 - SD3).norm() == 0.0);
  CHECK((A1 - A2).norm() == 0.0);
  CHECK((A1 - A3).norm() == 0.0);
  const Matrix F = data.matrix();
  CHECK(max_abs(SD1 - F * (F.transpose() * D)) < 1e-12 * max_abs(SD1));

  const Matrix Xc = sample_matrix(700, 800, 22);  // blocks of 256 samples: 6·10⁷ multiply-adds
  CHECK((Dataset::from_data(Xc, false, Representation::Covariance, 1).matrix() -
         Dataset::from_data(Xc, false, Representation::Covariance, 2).matrix())
            .norm() == 0.0);

  const auto mats = wide_data(3000, {200, 260, 240}, 23);  // Gram blocks: 256 · 700² / 2 multiply-adds
  const DataList Xs = as_list(mats);
  const DataSpan s1(Xs, false, 1e-12, 1), s2(Xs, false, 1e-12, 2);
  REQUIRE(s1.rank() == s2.rank());
  for (std::size_t k = 0; k < mats.size(); ++k)
    CHECK((s1.datasets()[k].matrix() - s2.datasets()[k].matrix()).norm() == 0.0);
  CHECK((s1.basis(Xs, 1) - s1.basis(Xs, 2)).norm() == 0.0);
}

TEST_CASE("validate_data and fit_covariances reject invalid input") {
  const Matrix X = sample_matrix(10, 5, 31);
  CHECK_THROWS_AS(metaglasso::validate_data({}), std::invalid_argument);
  const Matrix one = sample_matrix(10, 1, 32);
  CHECK_THROWS_AS(metaglasso::validate_data({X, one}), std::invalid_argument);
  const Matrix other = sample_matrix(11, 5, 33);
  CHECK_THROWS_AS(metaglasso::validate_data({X, other}), std::invalid_argument);
  Matrix nan = X;
  nan(2, 3) = std::nan("");
  CHECK_THROWS_AS(metaglasso::validate_data({X, nan}), std::invalid_argument);
  CHECK_NOTHROW(metaglasso::validate_data({X, X}));

  const Matrix S = centred_factor(sample_matrix(6, 30, 34)) * centred_factor(sample_matrix(6, 30, 34)).transpose();
  CHECK_THROWS_AS(metaglasso::fit_covariances({S, S}, {30}, metaglasso::Start::pca(2), FitOptions{}),
                  std::invalid_argument);
  const FitResult r = metaglasso::fit_covariances({S}, {30}, metaglasso::Start::pca(2), FitOptions{});
  CHECK(r.representations.at(0) == Representation::Covariance);
  CHECK(r.compression_rank == 0);
}
