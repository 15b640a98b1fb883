// A downstream program using the installed metaglasso C++ package:
// three datasets sharing two latent factors, fitted with the default L-BFGS solver.
#include <cmath>
#include <cstdio>
#include <vector>

#include <Eigen/Cholesky>
#include <Eigen/SVD>
#include <metaglasso/metaglasso.hpp>

int main() {
  using metaglasso::Matrix;
  const Eigen::Index V = 30, M = 2, N = 400, K = 3;
  const Matrix D_true = metaglasso::random_initial_projection(V, M, 42);

  metaglasso::SplitMix64 rng(7);
  auto normal = [&rng]() {  // Box-Muller from the library's portable generator
    const double u1 = 1.0 - rng.uniform(), u2 = rng.uniform();
    return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
  };
  std::vector<metaglasso::Dataset> data;
  for (Eigen::Index k = 0; k < K; ++k) {
    Matrix Sigma(M, M);
    Sigma << 4.0, 1.5 * (k == 1 ? -1.0 : 1.0), 1.5 * (k == 1 ? -1.0 : 1.0), 2.0 + k;
    const Matrix L = Sigma.llt().matrixL();
    Matrix X(V, N);  // one sample per column
    for (Eigen::Index j = 0; j < N; ++j) {
      Eigen::VectorXd u(M), w(V);
      for (auto& x : u) x = normal();
      for (auto& x : w) x = normal();
      w -= D_true * (D_true.transpose() * w);
      X.col(j) = D_true * (L * u) + 0.1 * w;
    }
    data.push_back(metaglasso::Dataset::from_data(X));
  }

  metaglasso::FitOptions options;
  options.alpha = 0.05;
  const Matrix D0 = metaglasso::pca_initial_projection(data, M);
  const metaglasso::FitResult fit = metaglasso::fit(data, D0, options);

  const Eigen::JacobiSVD<Matrix> svd(D_true.transpose() * fit.components);
  std::printf("metaglasso %s\n", METAGLASSO_VERSION_STRING);
  std::printf("objective %.6f after %d iterations (converged: %s)\n", fit.objective, fit.n_iter,
              fit.converged ? "yes" : "no");
  std::printf("subspace alignment %.6f of %d\n", svd.singularValues().sum(), static_cast<int>(M));
  for (Eigen::Index k = 0; k < K; ++k)
    std::printf("dataset %d: noise variance %.5f, partial correlation %.3f\n", static_cast<int>(k),
                fit.noise_variances(k),
                -fit.precisions[k](0, 1) / std::sqrt(fit.precisions[k](0, 0) * fit.precisions[k](1, 1)));
  return fit.converged ? 0 : 1;
}
