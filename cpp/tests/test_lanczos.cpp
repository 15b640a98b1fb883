// Tests of the (block) Lanczos eigensolver and the PCA start against a dense eigendecomposition.
#include <doctest/doctest.h>

#include <Eigen/Dense>
#include <algorithm>
#include <cmath>
#include <functional>
#include <vector>

#include "metaglasso/metaglasso.hpp"

using metaglasso::Index;
using metaglasso::Matrix;
using metaglasso::Vector;

namespace {

Matrix uniform_matrix(Index rows, Index cols, std::uint64_t seed) {
  metaglasso::SplitMix64 rng(seed);
  Matrix A(rows, cols);
  for (Index j = 0; j < cols; ++j)
    for (Index i = 0; i < rows; ++i) A(i, j) = rng.uniform() - 0.5;
  return A;
}

// Q diag(values) Qᵀ with a seeded random orthogonal Q.
Matrix with_spectrum(const Vector& values, std::uint64_t seed) {
  const Index n = values.size();
  const Matrix Q = Eigen::HouseholderQR<Matrix>(uniform_matrix(n, n, seed)).householderQ();
  Matrix A = Q * values.asDiagonal() * Q.transpose();
  return 0.5 * (A + A.transpose());
}

metaglasso::SymmetricOperator dense_operator(const Matrix& A) {
  return [&A](const Eigen::Ref<const Vector>& x, Eigen::Ref<Vector> y) { y.noalias() = A * x; };
}

struct DenseTop {
  Vector values;
  Matrix vectors;
};

DenseTop dense_top(const Matrix& A, Index m) {
  const Eigen::SelfAdjointEigenSolver<Matrix> es(A);
  return {es.eigenvalues().reverse().head(m), es.eigenvectors().rowwise().reverse().leftCols(m)};
}

// Eigenvalues to 1e-10 relative to the largest, orthonormal vectors with small residuals.
void check_pairs(const Matrix& A, const metaglasso::LanczosResult& r, const DenseTop& ref) {
  const Index m = ref.values.size();
  REQUIRE(r.values.size() == m);
  REQUIRE(r.vectors.rows() == A.rows());
  REQUIRE(r.vectors.cols() == m);
  CHECK(r.converged);
  const double scale = std::abs(ref.values(0));
  for (Index j = 0; j < m; ++j) CHECK(std::abs(r.values(j) - ref.values(j)) <= 1e-10 * scale);
  for (Index j = 1; j < m; ++j) CHECK(r.values(j) <= r.values(j - 1));
  CHECK((r.vectors.transpose() * r.vectors - Matrix::Identity(m, m)).norm() < 1e-12);
  const Matrix R = A * r.vectors - r.vectors * r.values.asDiagonal();
  CHECK(R.colwise().norm().maxCoeff() <= 1e-9 * scale);
}

}  // namespace

TEST_CASE("Lanczos matches the dense eigendecomposition for distinct eigenvalues") {
  const Index n = 200, m = 5;
  Vector values(n);
  for (Index i = 0; i < n; ++i) values(i) = std::exp(-0.05 * static_cast<double>(i));  // 1 … 5e-5
  const Matrix A = with_spectrum(values, 11);
  const auto r = metaglasso::lanczos_top_eigenvectors(dense_operator(A), n, m);
  const DenseTop ref = dense_top(A, m);
  check_pairs(A, r, ref);
  for (Index j = 0; j < m; ++j) CHECK(std::abs(r.vectors.col(j).dot(ref.vectors.col(j))) >= 1.0 - 1e-10);
  CHECK(r.n_iter < 200);  // cheaper than building the dense matrix
}

TEST_CASE("Lanczos resolves a tight cluster at the top of the spectrum") {
  const Index n = 200, m = 6;
  Vector values = Vector::LinSpaced(n, 1.0, 0.0);
  for (Index i = 0; i < 4; ++i) values(i) = 10.0 * (1.0 - 1e-3 * static_cast<double>(i));  // gaps 1e-3
  values(4) = 5.0;
  values(5) = 4.9;
  const Matrix A = with_spectrum(values, 12);
  const auto r = metaglasso::lanczos_top_eigenvectors(dense_operator(A), n, m);
  const DenseTop ref = dense_top(A, m);
  check_pairs(A, r, ref);
  for (Index j = 0; j < m; ++j) CHECK(std::abs(r.vectors.col(j).dot(ref.vectors.col(j))) >= 1.0 - 1e-10);
}

TEST_CASE("Lanczos finds every copy of a repeated eigenvalue") {
  const Index n = 150, m = 5;
  Vector values = Vector::LinSpaced(n, 2.0, 0.0);
  values.head(3).setConstant(10.0);  // triple top eigenvalue
  values(3) = 7.0;
  values(4) = 6.0;
  const Matrix A = with_spectrum(values, 13);
  const auto r = metaglasso::lanczos_top_eigenvectors(dense_operator(A), n, m);
  const DenseTop ref = dense_top(A, m);
  check_pairs(A, r, ref);
  // The eigenspace of the triple eigenvalue is unique, its basis is not: compare projectors.
  const Matrix P = r.vectors.leftCols(3) * r.vectors.leftCols(3).transpose();
  const Matrix Pref = ref.vectors.leftCols(3) * ref.vectors.leftCols(3).transpose();
  CHECK((P - Pref).norm() < 1e-9);
  for (Index j = 3; j < m; ++j) CHECK(std::abs(r.vectors.col(j).dot(ref.vectors.col(j))) >= 1.0 - 1e-10);

  SUBCASE("m inside the repeated eigenvalue") {
    const auto r2 = metaglasso::lanczos_top_eigenvectors(dense_operator(A), n, 2);
    CHECK(r2.converged);
    CHECK((r2.values.array() - 10.0).abs().maxCoeff() < 1e-9);
    CHECK(((Matrix::Identity(n, n) - Pref) * r2.vectors).norm() < 1e-9);
  }
}

TEST_CASE("Lanczos handles a low-rank operator (invariant subspace, zero eigenvalues)") {
  const Index n = 120, rank = 3, m = 5;
  const Matrix F = uniform_matrix(n, rank, 21);
  const Matrix A = F * F.transpose();
  const auto r = metaglasso::lanczos_top_eigenvectors(dense_operator(A), n, m);
  const DenseTop ref = dense_top(A, m);
  check_pairs(A, r, ref);
  for (Index j = 0; j < rank; ++j) CHECK(std::abs(r.vectors.col(j).dot(ref.vectors.col(j))) >= 1.0 - 1e-10);
  CHECK((F.transpose() * r.vectors.rightCols(m - rank)).norm() < 1e-10 * F.norm());
}

TEST_CASE("Lanczos with n at or below the Krylov dimension uses the dense path") {
  // m = 3: block size 3, basis p = max(9m, m + 20) = 27.
  for (const Index n : {2, 15, 27}) {
    const Index m = n == 2 ? 1 : 3;
    const Matrix A = with_spectrum(Vector::LinSpaced(n, 3.0, 0.5), 30 + static_cast<std::uint64_t>(n));
    const auto r = metaglasso::lanczos_top_eigenvectors(dense_operator(A), n, m);
    const DenseTop ref = dense_top(A, m);
    check_pairs(A, r, ref);
    CHECK(r.n_iter == n);
    for (Index j = 0; j < m; ++j) CHECK(std::abs(r.vectors.col(j).dot(ref.vectors.col(j))) >= 1.0 - 1e-10);
  }
  // Just above the basis size: iterative path, whole blocks of 3.
  const Index n = 28, m = 3;
  const Matrix A = with_spectrum(Vector::LinSpaced(n, 3.0, 0.5), 40);
  const auto r = metaglasso::lanczos_top_eigenvectors(dense_operator(A), n, m);
  check_pairs(A, r, dense_top(A, m));
  CHECK(r.n_iter % 3 == 0);
}

TEST_CASE("Lanczos is reproducible for a seed and rejects invalid arguments") {
  const Index n = 80;
  const Matrix A = with_spectrum(Vector::LinSpaced(n, 1.0, 0.01), 50);
  const auto op = dense_operator(A);
  const auto a = metaglasso::lanczos_top_eigenvectors(op, n, 4, 1e-10, 50, 9);
  const auto b = metaglasso::lanczos_top_eigenvectors(op, n, 4, 1e-10, 50, 9);
  CHECK((a.vectors - b.vectors).norm() == 0.0);
  CHECK_THROWS_AS(metaglasso::lanczos_top_eigenvectors(op, n, 0), std::invalid_argument);
  CHECK_THROWS_AS(metaglasso::lanczos_top_eigenvectors(op, n, n), std::invalid_argument);
  CHECK_THROWS_AS(metaglasso::lanczos_top_eigenvectors(op, n, 2, -1.0), std::invalid_argument);
  CHECK_THROWS_AS(metaglasso::lanczos_top_eigenvectors(op, n, 2, 1e-10, -1), std::invalid_argument);
  // A zero restart budget returns the first cycle's pairs with converged = false.
  const auto c = metaglasso::lanczos_top_eigenvectors(op, n, 4, 1e-14, 0);
  CHECK_FALSE(c.converged);
  CHECK((c.vectors.transpose() * c.vectors - Matrix::Identity(4, 4)).norm() < 1e-12);
}

TEST_CASE("PCA start equals the dense top eigenvectors of the summed covariances") {
  const Index V = 60, M = 4;
  std::vector<metaglasso::Dataset> data;
  Matrix S_sum = Matrix::Zero(V, V);
  for (int k = 0; k < 3; ++k) {
    const Matrix X = uniform_matrix(V, 40 + 10 * k, 100 + static_cast<std::uint64_t>(k)) *
                     (1.0 + static_cast<double>(k));
    data.push_back(metaglasso::Dataset::from_data(X));
    const Matrix Xc = X.colwise() - X.rowwise().mean();
    S_sum += Xc * Xc.transpose() / static_cast<double>(X.cols());
  }
  const Matrix C = with_spectrum(Vector::LinSpaced(V, 4.0, 0.1), 7);
  data.push_back(metaglasso::Dataset::from_covariance(C, 20));
  S_sum += C;

  const Matrix D = metaglasso::pca_initial_projection(data, M, 1);
  const DenseTop ref = dense_top(S_sum, M);
  CHECK((D.transpose() * D - Matrix::Identity(M, M)).norm() < 1e-12);
  for (Index j = 0; j < M; ++j) {
    Vector u = ref.vectors.col(j);
    Index i = 0;
    u.cwiseAbs().maxCoeff(&i);
    if (u(i) < 0) u = -u;
    CHECK((D.col(j) - u).norm() < 1e-8);
    Index imax = 0;
    D.col(j).cwiseAbs().maxCoeff(&imax);
    CHECK(D(imax, j) > 0.0);
  }
  const Matrix D2 = metaglasso::pca_initial_projection(data, M, 2);
  CHECK((D2 - D).norm() == 0.0);

  CHECK_THROWS_AS(metaglasso::pca_initial_projection({}, 2), std::invalid_argument);
  CHECK_THROWS_AS(metaglasso::pca_initial_projection(data, V), std::invalid_argument);
  CHECK_THROWS_AS(metaglasso::pca_initial_projection(data, 0), std::invalid_argument);
  std::vector<metaglasso::Dataset> mixed = data;
  mixed.push_back(metaglasso::Dataset::from_data(uniform_matrix(V + 1, 10, 3)));
  CHECK_THROWS_AS(metaglasso::pca_initial_projection(mixed, 2), std::invalid_argument);
}

// ---------------------------------------------------------------------------------------------
// Block Lanczos
// ---------------------------------------------------------------------------------------------

namespace {

metaglasso::BlockOperator dense_block_operator(const Matrix& A) {
  return [&A](const Eigen::Ref<const Matrix>& X, Eigen::Ref<Matrix> Y) { Y.noalias() = A * X; };
}

metaglasso::BlockLanczosOptions block_options(Index block_size, double tol = 1e-10) {
  metaglasso::BlockLanczosOptions o;
  o.block_size = block_size;
  o.tol = tol;
  return o;
}

// The m wanted pairs: eigenvalues to 1e-10 relative, orthonormal vectors, explicit residuals within
// the tolerance (the reported one and a recomputed one), and each vector inside the span of the
// reference eigenvectors of eigenvalues within 1e-8 of its own (so repeated eigenvalues compare
// as eigenspaces).
void check_block_pairs(const Matrix& A, const metaglasso::LanczosResult& r, Index m, double tol = 1e-10) {
  const Eigen::SelfAdjointEigenSolver<Matrix> es(A);
  const Vector all = es.eigenvalues().reverse();
  const Matrix U = es.eigenvectors().rowwise().reverse();
  REQUIRE(r.values.size() == m);
  REQUIRE(r.vectors.rows() == A.rows());
  REQUIRE(r.vectors.cols() == m);
  CHECK(r.converged);
  const double scale = std::abs(all(0));
  for (Index j = 0; j < m; ++j) CHECK(std::abs(r.values(j) - all(j)) <= 1e-10 * scale);
  CHECK((r.vectors.transpose() * r.vectors - Matrix::Identity(m, m)).norm() < 1e-12);
  const Matrix R = A * r.vectors - r.vectors * r.values.asDiagonal();
  const double residual = R.colwise().norm().maxCoeff() / scale;
  CHECK(residual <= tol);
  CHECK(r.residual <= tol);
  CHECK(std::abs(r.residual - residual) <= 1e-3 * tol + 1e-14);
  for (Index j = 0; j < m; ++j) {
    Matrix near(A.rows(), 0);
    for (Index i = 0; i < A.rows(); ++i)
      if (std::abs(all(i) - r.values(j)) <= 1e-8 * scale) {
        near.conservativeResize(Eigen::NoChange, near.cols() + 1);
        near.rightCols(1) = U.col(i);
      }
    REQUIRE(near.cols() >= 1);
    const Vector outside = r.vectors.col(j) - near * (near.transpose() * r.vectors.col(j));
    CHECK(outside.norm() < 1e-8);
  }
}

}  // namespace

TEST_CASE("block Lanczos matches the dense eigendecomposition on clustered spectra") {
  const Index n = 300;
  Vector values(n);
  for (Index i = 0; i < n; ++i) values(i) = 1.0 / (1.0 + 0.2 * static_cast<double>(i));  // slowly decaying
  // Clusters at the top: gaps 1e-3 (relative) and a pair 1e-6 apart straddling the m-th value.
  values.head(4) << 3.0, 3.0 - 3e-3, 3.0 - 6e-3, 3.0 - 9e-3;
  values(7) = 2.0;
  values(8) = 2.0 - 2e-6;
  std::sort(values.data(), values.data() + n, std::greater<double>());
  const Matrix A = with_spectrum(values, 61);
  for (const Index b : {0, 8, 13}) {
    for (const Index m : {1, 5, 8, 9}) {
      CAPTURE(b);
      CAPTURE(m);
      const auto r = metaglasso::block_lanczos_top_eigenvectors(dense_block_operator(A), n, m, block_options(b));
      check_block_pairs(A, r, m);
    }
  }
}

TEST_CASE("block Lanczos finds a repeated top eigenvalue of multiplicity above the block size") {
  const Index n = 200;
  Vector values = Vector::LinSpaced(n, 1.0, 0.0);
  values.head(12).setConstant(5.0);  // multiplicity 12
  values(12) = 4.0;
  values(13) = 3.5;
  const Matrix A = with_spectrum(values, 62);
  // m ≤ b < 12: every wanted pair is a copy of the top eigenvalue.
  for (const Index m : {3, 6}) {
    CAPTURE(m);
    const auto r = metaglasso::block_lanczos_top_eigenvectors(dense_block_operator(A), n, m, block_options(m));
    check_block_pairs(A, r, m);
    CHECK((r.values.array() - 5.0).abs().maxCoeff() < 1e-9);
  }
  // m past the repeated eigenvalue: all 12 copies, then 4 and 3.5.
  const auto r = metaglasso::block_lanczos_top_eigenvectors(dense_block_operator(A), n, 14, block_options(0));
  check_block_pairs(A, r, 14);
  CHECK(r.values(11) == doctest::Approx(5.0).epsilon(1e-12));
  CHECK(r.values(12) == doctest::Approx(4.0).epsilon(1e-12));
  // A block size below m is raised to m, so the copies cannot be missed.
  const auto small = metaglasso::block_lanczos_top_eigenvectors(dense_block_operator(A), n, 14, block_options(2));
  check_block_pairs(A, small, 14);
}

TEST_CASE("block Lanczos on rank-deficient operators (invariant subspaces, zero eigenvalues)") {
  const Index n = 250;
  for (const Index rank : {1, 3, 10}) {
    const Matrix F = uniform_matrix(n, rank, 70 + static_cast<std::uint64_t>(rank));
    const Matrix A = F * F.transpose();
    for (const Index m : {rank, rank + 4}) {
      CAPTURE(rank);
      CAPTURE(m);
      const auto r = metaglasso::block_lanczos_top_eigenvectors(dense_block_operator(A), n, m, block_options(0));
      check_block_pairs(A, r, m);
      // Beyond the rank the vectors are null vectors of A.
      if (m > rank) CHECK((F.transpose() * r.vectors.rightCols(m - rank)).norm() < 1e-10 * F.norm());
    }
  }
  // The zero operator: any orthonormal vectors, eigenvalues 0.
  const Matrix Z = Matrix::Zero(n, n);
  const auto r = metaglasso::block_lanczos_top_eigenvectors(dense_block_operator(Z), n, 4, block_options(0));
  CHECK(r.converged);
  CHECK(r.values.cwiseAbs().maxCoeff() == 0.0);
  CHECK((r.vectors.transpose() * r.vectors - Matrix::Identity(4, 4)).norm() < 1e-12);
}

TEST_CASE("block Lanczos with m close to n, on the iterative and the dense path") {
  const Vector values = Vector::LinSpaced(160, 10.0, 0.1);
  const Matrix A = with_spectrum(values, 80);
  metaglasso::BlockLanczosOptions o = block_options(0);
  // m = 50, b = 50: p = m + 2b = 150 < n, iterative with restarts.
  o.max_basis = 150;
  auto r = metaglasso::block_lanczos_top_eigenvectors(dense_block_operator(A), 160, 50, o);
  check_block_pairs(A, r, 50);
  CHECK(r.n_iter < 160 * 10);
  // m = 150: the basis would cover the space, so the matrix is built and decomposed densely.
  r = metaglasso::block_lanczos_top_eigenvectors(dense_block_operator(A), 160, 150, block_options(0));
  check_block_pairs(A, r, 150);
  CHECK(r.n_iter == 160);
}

TEST_CASE("block Lanczos uses start vectors and is reproducible for a seed") {
  const Index n = 400, m = 6;
  Vector values(n);
  for (Index i = 0; i < n; ++i) values(i) = std::exp(-0.02 * static_cast<double>(i));
  const Matrix A = with_spectrum(values, 90);
  const auto op = dense_block_operator(A);
  const auto a = metaglasso::block_lanczos_top_eigenvectors(op, n, m, block_options(0));
  check_block_pairs(A, a, m);
  metaglasso::BlockLanczosOptions o = block_options(0);
  const auto b = metaglasso::block_lanczos_top_eigenvectors(op, n, m, o);
  CHECK((a.vectors - b.vectors).norm() == 0.0);
  o.seed = 5;
  const auto c = metaglasso::block_lanczos_top_eigenvectors(op, n, m, o);
  check_block_pairs(A, c, m);
  CHECK((a.vectors - c.vectors).norm() > 0.0);
  // Exact eigenvectors as start: converged after the first block.
  o.start = dense_top(A, m).vectors;
  const auto d = metaglasso::block_lanczos_top_eigenvectors(op, n, m, o);
  check_block_pairs(A, d, m);
  CHECK(d.n_iter == metaglasso::default_block_size(m));
  // A zero start column is replaced by a random vector.
  o.start = Matrix::Zero(n, 2);
  check_block_pairs(A, metaglasso::block_lanczos_top_eigenvectors(op, n, m, o), m);

  CHECK_THROWS_AS(metaglasso::block_lanczos_top_eigenvectors(op, n, 0), std::invalid_argument);
  CHECK_THROWS_AS(metaglasso::block_lanczos_top_eigenvectors(op, n, n), std::invalid_argument);
  CHECK_THROWS_AS(metaglasso::block_lanczos_top_eigenvectors(op, n, 2, block_options(-1)), std::invalid_argument);
  CHECK_THROWS_AS(metaglasso::block_lanczos_top_eigenvectors(op, n, 2, block_options(0, -1.0)), std::invalid_argument);
  o = block_options(0);
  o.max_basis = -1;
  CHECK_THROWS_AS(metaglasso::block_lanczos_top_eigenvectors(op, n, 2, o), std::invalid_argument);
  o = block_options(0);
  o.start = Matrix::Zero(n + 1, 2);
  CHECK_THROWS_AS(metaglasso::block_lanczos_top_eigenvectors(op, n, 2, o), std::invalid_argument);
  o = block_options(0);
  o.max_restarts = -1;
  CHECK_THROWS_AS(metaglasso::block_lanczos_top_eigenvectors(op, n, 2, o), std::invalid_argument);
  const metaglasso::BlockOperator nan_op = [](const Eigen::Ref<const Matrix>& X, Eigen::Ref<Matrix> Y) {
    Y = X;
    Y(0, 0) = std::nan("");
  };
  CHECK_THROWS_AS(metaglasso::block_lanczos_top_eigenvectors(nan_op, n, 2), metaglasso::NumericalError);
  // An unreachable tolerance with no restarts returns the first cycle's pairs, not converged.
  o = block_options(0, 1e-17);
  o.max_restarts = 0;
  const auto e = metaglasso::block_lanczos_top_eigenvectors(op, n, m, o);
  CHECK_FALSE(e.converged);
  CHECK(e.residual > 1e-17);
  CHECK((e.vectors.transpose() * e.vectors - Matrix::Identity(m, m)).norm() < 1e-12);
}

TEST_CASE("block Lanczos does not depend on the number of threads") {
  // Large enough for the orthogonalisation products to run on several threads.
  const Index n = 20000, m = 12, rank = 60;
  const Matrix F = uniform_matrix(n, rank, 95);
  Vector diag(n);
  for (Index i = 0; i < n; ++i) diag(i) = 0.01 * (1.0 + std::sin(static_cast<double>(i)));
  const metaglasso::BlockOperator op = [&](const Eigen::Ref<const Matrix>& X, Eigen::Ref<Matrix> Y) {
    Y.noalias() = F * (F.transpose() * X);
    Y += diag.asDiagonal() * X;
  };
  metaglasso::BlockLanczosOptions o = block_options(0);
  o.n_threads = 1;
  const auto one = metaglasso::block_lanczos_top_eigenvectors(op, n, m, o);
  o.n_threads = 2;
  const auto two = metaglasso::block_lanczos_top_eigenvectors(op, n, m, o);
  CHECK(one.converged);
  CHECK((one.vectors - two.vectors).norm() == 0.0);
  CHECK((one.values - two.values).norm() == 0.0);
  Matrix AY(n, m);
  op(one.vectors, AY);
  CHECK((AY - one.vectors * one.values.asDiagonal()).colwise().norm().maxCoeff() <= 1e-10 * one.values(0));
}

// ---------------------------------------------------------------------------------------------
// PCA start: both paths
// ---------------------------------------------------------------------------------------------

namespace {

// Datasets (d, N_k) with a decaying spectrum: a rank-r signal plus small noise.
std::vector<Matrix> spectrum_datasets(Index d, const std::vector<Index>& N, Index r, std::uint64_t seed) {
  const Matrix L = uniform_matrix(d, r, seed);
  std::vector<Matrix> out;
  for (std::size_t k = 0; k < N.size(); ++k) {
    Matrix Z = uniform_matrix(r, N[k], seed + 1 + k);
    for (Index i = 0; i < r; ++i) Z.row(i) *= 10.0 / (1.0 + static_cast<double>(i));
    out.push_back(L * Z + 0.05 * uniform_matrix(d, N[k], seed + 100 + k));
  }
  return out;
}

Matrix summed_covariance(const std::vector<Matrix>& Xs, bool centre) {
  Matrix S = Matrix::Zero(Xs.front().rows(), Xs.front().rows());
  for (const Matrix& X : Xs) {
    const Matrix Xc = centre ? Matrix(X.colwise() - X.rowwise().mean()) : X;
    S += Xc * Xc.transpose() / static_cast<double>(X.cols());
  }
  return S;
}

// D equals the dense top eigenvectors with the sign convention, and S D = D Θ to the tolerance.
void check_pca(const Matrix& S, const Matrix& D, Index m) {
  const DenseTop ref = dense_top(S, m);
  REQUIRE(D.cols() == m);
  CHECK((D.transpose() * D - Matrix::Identity(m, m)).norm() < 1e-12);
  const Matrix SD = S * D;
  for (Index j = 0; j < m; ++j) {
    CHECK((SD.col(j) - ref.values(j) * D.col(j)).norm() <= 1e-9 * ref.values(0));
    Vector u = ref.vectors.col(j);
    Index i = 0;
    u.cwiseAbs().maxCoeff(&i);
    if (u(i) < 0) u = -u;
    CHECK((D.col(j) - u).norm() < 1e-7);
  }
}

metaglasso::DataList as_list(const std::vector<Matrix>& Xs) {
  metaglasso::DataList list;
  for (const Matrix& X : Xs) list.emplace_back(X);
  return list;
}

}  // namespace

TEST_CASE("PCA start through the Gram matrix (few samples) and through block Lanczos (many)") {
  const Index d = 600, m = 5;
  // ΣN = 70 ≪ d: the Gram path. ΣN = 500: block Lanczos on the factors.
  for (const auto& N : {std::vector<Index>{30, 40}, std::vector<Index>{200, 300}}) {
    const auto Xs = spectrum_datasets(d, N, 12, 300 + static_cast<std::uint64_t>(N[0]));
    std::vector<metaglasso::Dataset> data;
    for (const Matrix& X : Xs) data.push_back(metaglasso::Dataset::from_data(X));
    const Matrix S = summed_covariance(Xs, true);
    const Matrix D = metaglasso::pca_initial_projection(data, m, 1);
    check_pca(S, D, m);
    CHECK((metaglasso::pca_initial_projection(data, m, 2) - D).norm() == 0.0);
    // From the data matrices: a centred copy, identical to the datasets' result.
    CHECK((metaglasso::pca_initial_projection(as_list(Xs), m, false, 1) - D).norm() == 0.0);
    // Centred data read in place (S_k = X_k X_kᵀ / N_k).
    std::vector<Matrix> centred;
    for (const Matrix& X : Xs) centred.push_back(X.colwise() - X.rowwise().mean());
    const Matrix Dc = metaglasso::pca_initial_projection(as_list(centred), m, true, 1);
    check_pca(S, Dc, m);
    CHECK((metaglasso::pca_initial_projection(as_list(centred), m, true, 2) - Dc).norm() == 0.0);
  }
}

TEST_CASE("PCA start through the Gram matrix when m reaches the rank of the data") {
  // Two datasets of 20 samples with 3 distinct samples each: rank ≤ 6 (uncentred) < m = 8.
  const Index d = 300, m = 8;
  std::vector<Matrix> Xs;
  for (std::uint64_t k = 0; k < 2; ++k) {
    const Matrix distinct = uniform_matrix(d, 3, 400 + k);
    Matrix X(d, 20);
    for (Index j = 0; j < 20; ++j) X.col(j) = distinct.col(j % 3);
    Xs.push_back(X);
  }
  const Matrix S = summed_covariance(Xs, false);
  const Matrix D = metaglasso::pca_initial_projection(as_list(Xs), m, true, 1);
  CHECK((D.transpose() * D - Matrix::Identity(m, m)).norm() < 1e-12);
  const DenseTop ref = dense_top(S, m);
  const Matrix SD = S * D;
  for (Index j = 0; j < m; ++j) {
    const double theta = D.col(j).dot(SD.col(j));
    CHECK(std::abs(theta - ref.values(j)) <= 1e-10 * ref.values(0));
    CHECK((SD.col(j) - theta * D.col(j)).norm() <= 1e-9 * ref.values(0));
  }
}

TEST_CASE("PCA start over many small datasets and covariances does not depend on the threads") {
  // Products below the kernels' threading threshold, enough work in total: datasets in parallel.
  const Index d = 3000, m = 4;
  const auto Xs = spectrum_datasets(d, {300, 250, 320, 280}, 10, 500);
  std::vector<metaglasso::Dataset> data;
  for (const Matrix& X : Xs) data.push_back(metaglasso::Dataset::from_data(X));
  const Matrix D1 = metaglasso::pca_initial_projection(data, m, 1);
  const Matrix D2 = metaglasso::pca_initial_projection(data, m, 2);
  CHECK((D1 - D2).norm() == 0.0);
  // Residuals against the operator itself (no dense d × d matrix).
  Matrix SD = Matrix::Zero(d, m);
  for (const Matrix& X : Xs) {
    const Matrix Xc = X.colwise() - X.rowwise().mean();
    SD += Xc * (Xc.transpose() * D1) / static_cast<double>(X.cols());
  }
  const Vector theta = (D1.transpose() * SD).diagonal();
  for (Index j = 0; j < m; ++j) CHECK((SD.col(j) - theta(j) * D1.col(j)).norm() <= 1e-10 * theta(0));
  for (Index j = 1; j < m; ++j) CHECK(theta(j) <= theta(j - 1));
}

TEST_CASE("PCA start through the Gram matrix with a tiny m-th eigenvalue") {
  // S = X Xᵀ / N with λ_6 ≈ 1e-13 λ_1: F u / √λ from the Gram matrix carries the rounding of G
  // amplified by √(λ_1/λ_6); the Rayleigh–Ritz step in feature space removes it.
  const Index d = 300, N = 40, m = 6;
  const Matrix U = Eigen::HouseholderQR<Matrix>(uniform_matrix(d, N, 600)).householderQ() * Matrix::Identity(d, N);
  const Matrix Wt = Eigen::HouseholderQR<Matrix>(uniform_matrix(N, N, 601)).householderQ();
  Vector s(N);
  for (Index i = 0; i < N; ++i) s(i) = i < 5 ? 1.0 / (1.0 + static_cast<double>(i)) : 3e-7 * std::pow(0.5, static_cast<double>(i - 5));
  const Matrix X = U * s.asDiagonal() * Wt.transpose() * std::sqrt(static_cast<double>(N));
  const Matrix S = X * X.transpose() / static_cast<double>(N);
  const Matrix D = metaglasso::pca_initial_projection(as_list({X}), m, true, 1);
  CHECK((D.transpose() * D - Matrix::Identity(m, m)).norm() < 1e-12);
  const Matrix SD = S * D;
  const Vector theta = (D.transpose() * SD).diagonal();
  const DenseTop ref = dense_top(S, m);
  for (Index j = 0; j < m; ++j) {
    CHECK(std::abs(theta(j) - ref.values(j)) <= 1e-10 * ref.values(0));
    CHECK((SD.col(j) - theta(j) * D.col(j)).norm() <= 1e-10 * ref.values(0));
  }
}
