// A downstream program using the installed metaglasso C++ package: three datasets sharing two
// latent factors, fitted with the default L-BFGS solver; then covariances given only through their
// products (the CovarianceProducts operator interface), here in factored form L Lᵀ + σ² I.
#include <cmath>
#include <cstdio>
#include <vector>

#include <Eigen/Cholesky>
#include <Eigen/SVD>
#include <metaglasso/metaglasso.hpp>

// S_k = L_k L_kᵀ + σ_k² I, never formed: S_k D = L_k (L_kᵀ D) + σ_k² D.
class FactoredCovariances final : public metaglasso::CovarianceProducts {
 public:
  FactoredCovariances(std::vector<metaglasso::Matrix> L, std::vector<double> sigma2, Eigen::Index n)
      : L_(std::move(L)), sigma2_(std::move(sigma2)), n_(n) {}
  Eigen::Index n_datasets() const override { return static_cast<Eigen::Index>(L_.size()); }
  Eigen::Index n_features() const override { return L_.front().rows(); }
  Eigen::Index dimension() const override { return L_.front().rows(); }
  Eigen::Index n_samples(Eigen::Index) const override { return n_; }
  double trace(Eigen::Index k) const override {
    return L_[k].squaredNorm() + sigma2_[k] * static_cast<double>(n_features());
  }
  void project(const Eigen::Ref<const metaglasso::Matrix>& D, const Eigen::Index* ks, Eigen::Index count,
               metaglasso::Projection* const* out, int) const override {
    for (Eigen::Index i = 0; i < count; ++i) {
      const metaglasso::Matrix T = L_[ks[i]].transpose() * D;
      out[i]->SD = L_[ks[i]] * T + sigma2_[ks[i]] * D;
      out[i]->DtSD = T.transpose() * T + sigma2_[ks[i]] * metaglasso::Matrix::Identity(D.cols(), D.cols());
    }
  }

 private:
  std::vector<metaglasso::Matrix> L_;
  std::vector<double> sigma2_;
  Eigen::Index n_;
};

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

  // The same model for covariances known in factored form, against their dense matrices.
  std::vector<Matrix> factors;
  std::vector<double> sigma2;
  std::vector<metaglasso::Dataset> dense;
  for (Eigen::Index k = 0; k < K; ++k) {
    factors.push_back(D_true * Matrix::Identity(M, M) * (2.0 + k) + 0.05 * Matrix::Random(V, M));
    sigma2.push_back(0.01 * (k + 1));
    const Matrix S = factors.back() * factors.back().transpose() + sigma2.back() * Matrix::Identity(V, V);
    dense.push_back(metaglasso::Dataset::from_covariance(S, N));
  }
  const FactoredCovariances factored(factors, sigma2, N);
  const metaglasso::FitResult a = metaglasso::fit(factored, metaglasso::Start::pca(M), options);
  const metaglasso::FitResult b = metaglasso::fit(dense, metaglasso::Start::pca(M), options);
  const double difference = (a.components - b.components).cwiseAbs().maxCoeff();
  std::printf("factored covariances: objective %.6f, max |D - D_dense| = %.1e\n", a.objective, difference);
  return fit.converged && a.converged && difference < 1e-6 ? 0 : 1;
}
