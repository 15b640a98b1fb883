// Tests of the Lanczos eigensolver and the PCA start against a dense eigendecomposition.
#include <doctest/doctest.h>

#include <Eigen/Dense>
#include <cmath>
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
  for (const Index n : {2, 15, 23}) {
    const Index m = n == 2 ? 1 : 3;
    const Matrix A = with_spectrum(Vector::LinSpaced(n, 3.0, 0.5), 30 + static_cast<std::uint64_t>(n));
    const auto r = metaglasso::lanczos_top_eigenvectors(dense_operator(A), n, m);
    const DenseTop ref = dense_top(A, m);
    check_pairs(A, r, ref);
    for (Index j = 0; j < m; ++j) CHECK(std::abs(r.vectors.col(j).dot(ref.vectors.col(j))) >= 1.0 - 1e-10);
  }
  // Just above the Krylov dimension (n = 24, p = 23): iterative path.
  const Index n = 24, m = 3;
  const Matrix A = with_spectrum(Vector::LinSpaced(n, 3.0, 0.5), 40);
  const auto r = metaglasso::lanczos_top_eigenvectors(dense_operator(A), n, m);
  check_pairs(A, r, dense_top(A, m));
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
