// Tests of the model pieces against dense brute-force formulas.
#include <doctest/doctest.h>

#include <Eigen/Cholesky>
#include <Eigen/Dense>
#include <cmath>

#include "metaglasso/metaglasso.hpp"

using metaglasso::Index;
using metaglasso::Matrix;

TEST_CASE("polar retraction returns an orthonormal matrix and fixes orthonormal input") {
  const Matrix Z = metaglasso::random_initial_projection(50, 6, 3) + 0.1 * Matrix::Random(50, 6);
  const Matrix D = metaglasso::polar_retraction(Z);
  CHECK((D.transpose() * D - Matrix::Identity(6, 6)).norm() < 1e-13);
  CHECK((metaglasso::polar_retraction(D) - D).norm() < 1e-12);
  // Polar factor is the closest orthonormal matrix: D^T Z is symmetric positive definite.
  const Matrix H = D.transpose() * Z;
  CHECK((H - H.transpose()).norm() < 1e-12);
}

TEST_CASE("SplitMix64 reproduces the published reference outputs") {
  // Reference values of SplitMix64 with seed 1234567 (Vigna's splitmix64.c).
  metaglasso::SplitMix64 rng(1234567);
  CHECK(rng.next() == 6457827717110365317ULL);
  CHECK(rng.next() == 3203168211198807973ULL);
}

TEST_CASE("objective of a dataset equals the dense Gaussian negative log-likelihood") {
  const Index V = 12, M = 3, N = 40;
  const Matrix X = Matrix::Random(V, N);
  const auto data = metaglasso::Dataset::from_data(X);
  const Matrix D = metaglasso::random_initial_projection(V, M, 7);
  Matrix SD, A;
  data.project(D, SD, A);
  const Matrix Xc = X.colwise() - X.rowwise().mean();
  const Matrix S = Xc * Xc.transpose() / static_cast<double>(N);
  CHECK((SD - S * D).norm() < 1e-12);
  CHECK(std::abs(data.trace() - S.trace()) < 1e-12);
  const double eps = metaglasso::noise_variance(data.trace(), A, V);
  const Matrix Lambda = A.inverse();
  const Matrix Phi = D * A * D.transpose() + eps * (Matrix::Identity(V, V) - D * D.transpose());
  const Eigen::LLT<Matrix> llt(Phi);
  const double dense = (llt.solve(S)).trace() + 2.0 * llt.matrixLLT().diagonal().array().log().sum();
  const double ours = metaglasso::dataset_objective(data.trace(), A, Lambda, eps, V, 0.0, false);
  CHECK(std::abs(dense - ours) < 1e-10 * std::abs(dense));
}
