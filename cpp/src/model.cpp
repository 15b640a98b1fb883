#include "metaglasso/model.hpp"

#include <Eigen/Cholesky>
#include <Eigen/QR>
#include <Eigen/SVD>
#include <cmath>
#include <string>

#include "kernels.hpp"

namespace metaglasso {

namespace {
// Refits run in parallel over datasets from this d · M · (datasets) size on (the glasso of each
// dataset is part of the work, so the threshold is lower than for a single product).
constexpr Index kParallelRefitWork = 20000;

// Throws NumericalError when a diagonal entry of Dᵀ S D is zero relative to the data's variance:
// with the diagonal of Λ unpenalised the objective is then unbounded below.
void check_latent_variances(double trace_S, const Eigen::Ref<const Matrix>& DtSD, Index n_features) {
  const double mean_variance = trace_S / static_cast<double>(n_features);
  Index j = 0;
  const double smallest = DtSD.diagonal().minCoeff(&j);
  if (!(smallest > detail::kDegenerateVariance * mean_variance))
    throw NumericalError("factor " + std::to_string(j) + " carries no variance of the data ((D^T S D)[" +
                         std::to_string(j) + ", " + std::to_string(j) + "] = " + detail::format_number(smallest) +
                         ", mean variance tr(S)/V = " + detail::format_number(mean_variance) +
                         "): with the diagonal of the precision unpenalised the objective is unbounded below "
                         "there (a dataset with n_samples <= n_features has such directions); use "
                         "penalize_diagonal=True or fewer components");
}

}  // namespace

void Penalty::validate(Index n_datasets) const {
  coupling_.validate();
  if (values_.empty()) {
    if (!(common_ >= 0.0) || !std::isfinite(common_))
      throw std::invalid_argument("alpha must be finite and >= 0; got " + detail::format_number(common_));
    return;
  }
  if (static_cast<Index>(values_.size()) != n_datasets)
    throw std::invalid_argument("alpha must hold one value per dataset (" + std::to_string(n_datasets) + "); got " +
                                std::to_string(values_.size()));
  for (std::size_t k = 0; k < values_.size(); ++k)
    if (!(values_[k] >= 0.0) || !std::isfinite(values_[k]))
      throw std::invalid_argument("alpha[" + std::to_string(k) + "] must be finite and >= 0; got " +
                                  detail::format_number(values_[k]));
}

double noise_variance(double trace_S, const Eigen::Ref<const Matrix>& DtSD, Index n_features) {
  const Index M = DtSD.rows();
  if (n_features <= M)
    throw std::invalid_argument("n_features must exceed n_components; got n_features=" + std::to_string(n_features) +
                                ", n_components=" + std::to_string(M));
  const double eps = (trace_S - DtSD.trace()) / static_cast<double>(n_features - M);
  const double mean_variance = trace_S / static_cast<double>(n_features);
  if (!(mean_variance > 0.0) || !std::isfinite(mean_variance))
    throw NumericalError("the data has no variance (tr S = " + detail::format_number(trace_S) + ")");
  if (!(eps > detail::kDegenerateVariance * mean_variance) || !std::isfinite(eps))
    throw NumericalError("the data has no variance outside the span of D (noise variance eq. 16: " +
                         detail::format_number(eps) + ", mean variance tr(S)/V = " +
                         detail::format_number(mean_variance) +
                         "), so the likelihood is unbounded; each dataset needs more than n_components linearly "
                         "independent centred samples");
  return eps;
}

double dataset_objective(double trace_S, const Eigen::Ref<const Matrix>& DtSD,
                         const Eigen::Ref<const Matrix>& precision, double noise, Index n_features, double rho,
                         bool penalize_diagonal) {
  const Index M = DtSD.rows();
  const Eigen::LLT<Matrix> llt(precision);
  if (llt.info() != Eigen::Success) throw NumericalError("precision is not positive definite");
  const double logdet = 2.0 * llt.matrixLLT().diagonal().array().log().sum();
  double l1 = precision.cwiseAbs().sum();
  if (!penalize_diagonal) l1 -= precision.diagonal().cwiseAbs().sum();
  const double tr_lambda_a = precision.cwiseProduct(DtSD).sum();
  return tr_lambda_a + (trace_S - DtSD.trace()) / noise - logdet +
         static_cast<double>(n_features - M) * std::log(noise) + rho * l1;
}

void update_dataset_state(const Dataset& data, const Eigen::Ref<const Matrix>& D, double rho,
                          const GlassoOptions& glasso_options, DatasetState& state, int n_threads) {
  data.project(D, state.SD, state.DtSD, state.work, n_threads);
  refit_from_projection(data.trace(), data.n_features(), rho, glasso_options, state);
}

namespace {
// ε_k (eq. 16) and the check of the latent variances: the part of a refit before the glasso.
void refit_noise(double trace_S, Index n_features, double rho, const GlassoOptions& glasso_options,
                 DatasetState& state) {
  state.noise = noise_variance(trace_S, state.DtSD, n_features);
  if (!(glasso_options.penalize_diagonal && rho > 0.0)) check_latent_variances(trace_S, state.DtSD, n_features);
}
}  // namespace

void refit_from_projection(double trace_S, Index n_features, double rho, const GlassoOptions& glasso_options,
                           DatasetState& state) {
  refit_noise(trace_S, n_features, rho, glasso_options, state);
  const Index M = state.DtSD.rows();
  const bool warm = state.glasso.precision.rows() == M && state.glasso.precision.cols() == M;
  state.glasso_solver.solve(state.DtSD, rho, glasso_options, warm ? &state.glasso.precision : nullptr, state.glasso);
  state.objective =
      dataset_objective(trace_S, state.DtSD, state.glasso.precision, state.noise, n_features, rho,
                        glasso_options.penalize_diagonal);
}

double refit_datasets(const CovarianceProducts& products, const Eigen::Ref<const Matrix>& D, const Penalty& rho,
                      const GlassoOptions& glasso_options, const Index* ks, Index count,
                      std::vector<DatasetState>& states, int n_threads) {
  const auto K = static_cast<std::size_t>(products.n_datasets());
  rho.validate(static_cast<Index>(K));
  const bool coupled = rho.coupling().active();
  if (coupled && count != static_cast<Index>(K))
    throw std::invalid_argument("a fused or group penalty couples the datasets: every refit needs all " +
                                std::to_string(K) + " of them; got " + std::to_string(count));
  if (states.size() != K) states.resize(K);
  const Index d = D.rows(), M = D.cols();
  std::vector<Projection*> out(static_cast<std::size_t>(count));
  for (Index i = 0; i < count; ++i) out[static_cast<std::size_t>(i)] = &states[static_cast<std::size_t>(ks[i])];
  products.project(D, ks, count, out.data(), n_threads);
  for (Index i = 0; i < count; ++i) {  // an operator's results are checked before they are used
    const auto& p = *out[static_cast<std::size_t>(i)];
    check_projection_shapes(p, ks[i], d, M);
    if (!p.SD.allFinite() || !p.DtSD.allFinite())
      throw std::invalid_argument("dataset " + std::to_string(ks[i]) +
                                  ": the covariance products contain NaN or infinite values");
  }
  // The operator is asked for its sizes here, on the calling thread, not inside the parallel loop.
  const Index V = products.n_features();
  std::vector<double> traces(static_cast<std::size_t>(count));
  for (Index i = 0; i < count; ++i) traces[static_cast<std::size_t>(i)] = products.trace(ks[i]);
  const int nt = resolve_threads(n_threads);
  const bool outer = nt > 1 && count > 1 && count >= nt && d * M * count >= kParallelRefitWork;
  detail::for_each_index(count, nt, outer, [&](Index i) {
    const Index k = ks[i];
    const double trace = traces[static_cast<std::size_t>(i)];
    try {
      if (coupled) refit_noise(trace, V, rho[k], glasso_options, states[static_cast<std::size_t>(k)]);
      else refit_from_projection(trace, V, rho[k], glasso_options, states[static_cast<std::size_t>(k)]);
    } catch (const NumericalError& e) {
      throw NumericalError("dataset " + std::to_string(k) + ": " + e.what());
    }
  });
  if (!coupled) return 0.0;
  // The joint problem of the K latent covariances, in the datasets' order.
  std::vector<const Matrix*> S(K);
  std::vector<GlassoResult*> results(K);
  std::vector<double> rhos(K), trace_of(K);
  for (Index i = 0; i < count; ++i) trace_of[static_cast<std::size_t>(ks[i])] = traces[static_cast<std::size_t>(i)];
  bool warm = true;
  for (std::size_t k = 0; k < K; ++k) {
    S[k] = &states[k].DtSD;
    results[k] = &states[k].glasso;
    rhos[k] = rho[static_cast<Index>(k)];
    warm = warm && states[k].glasso.precision.rows() == M && states[k].glasso.precision.cols() == M;
  }
  JointGlassoSolver solver;
  solver.solve(S, rhos, rho.coupling(), glasso_options, warm, results);
  std::vector<Matrix> precisions(K);
  for (std::size_t k = 0; k < K; ++k) {
    auto& s = states[k];
    s.objective = dataset_objective(trace_of[k], s.DtSD, s.glasso.precision, s.noise, V, rhos[k],
                                    glasso_options.penalize_diagonal);
    precisions[k] = s.glasso.precision;
  }
  return coupling_penalty(precisions, rho.coupling());
}

double refit_datasets(const std::vector<Dataset>& data, const Eigen::Ref<const Matrix>& D, const Penalty& rho,
                      const GlassoOptions& glasso_options, const Index* ks, Index count,
                      std::vector<DatasetState>& states, int n_threads) {
  return refit_datasets(DatasetProducts(data), D, rho, glasso_options, ks, count, states, n_threads);
}

void add_euclidean_gradient(const DatasetState& state, Eigen::Ref<Matrix> G) {
  detail::gemm(false, 2.0, state.SD, state.glasso.precision, 1.0, G);
  G -= (2.0 / state.noise) * state.SD;
}

Matrix riemannian_gradient(const Eigen::Ref<const Matrix>& D, const Eigen::Ref<const Matrix>& G) {
  Matrix R, work;
  riemannian_gradient(D, G, R, work);
  return R;
}

void riemannian_gradient(const Eigen::Ref<const Matrix>& D, const Eigen::Ref<const Matrix>& G, Matrix& R,
                         Matrix& work) {
  work.resize(D.cols(), D.cols());
  detail::gemm(true, 1.0, D, G, 0.0, work);
  detail::symmetrize_average(work);
  R = G;
  detail::gemm(false, -1.0, D, work, 1.0, R);
}

Matrix polar_retraction(const Eigen::Ref<const Matrix>& Z) {
  Matrix out;
  PolarRetraction()(Z, out);
  return out;
}

void PolarRetraction::operator()(const Eigen::Ref<const Matrix>& Z, Matrix& out) {
  const Index V = Z.rows(), M = Z.cols();
  if (M > V) throw std::invalid_argument("polar_retraction needs rows >= cols");
  if (!Z.allFinite()) throw NumericalError("polar_retraction: non-finite input");
  qr_.compute(Z);
  R_ = qr_.matrixQR().topRows(M).triangularView<Eigen::Upper>();
  svd_.compute(R_, Eigen::ComputeFullU | Eigen::ComputeFullV);
  if (svd_.singularValues()(M - 1) <= 1e-14 * svd_.singularValues()(0))
    throw NumericalError("polar_retraction: the matrix is rank deficient");
  UVt_.resize(M, M);
  UVt_.noalias() = svd_.matrixU() * svd_.matrixV().transpose();
  out.setZero(V, M);
  out.topRows(M) = UVt_;
  work_.resize(M);
  qr_.householderQ().applyThisOnTheLeft(out, work_);
}

double profile_objective(const CovarianceProducts& products, const Eigen::Ref<const Matrix>& D, const Penalty& rho,
                         const GlassoOptions& glasso_options, std::vector<DatasetState>& states,
                         Matrix* riemannian_grad, int n_threads) {
  const Index K = products.n_datasets();
  std::vector<Index> all(static_cast<std::size_t>(K));
  for (Index k = 0; k < K; ++k) all[static_cast<std::size_t>(k)] = k;
  double f = refit_datasets(products, D, rho, glasso_options, all.data(), K, states, n_threads);
  for (const auto& s : states) f += s.objective;
  if (riemannian_grad != nullptr) {
    Matrix G = Matrix::Zero(D.rows(), D.cols()), work;
    for (const auto& s : states) add_euclidean_gradient(s, G);
    riemannian_gradient(D, G, *riemannian_grad, work);
  }
  return f;
}

double profile_objective(const std::vector<Dataset>& data, const Eigen::Ref<const Matrix>& D, const Penalty& rho,
                         const GlassoOptions& glasso_options, std::vector<DatasetState>& states,
                         Matrix* riemannian_grad, int n_threads) {
  return profile_objective(DatasetProducts(data), D, rho, glasso_options, states, riemannian_grad, n_threads);
}

}  // namespace metaglasso
