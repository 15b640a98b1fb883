#include "metaglasso/model.hpp"

#include <Eigen/Cholesky>
#include <Eigen/QR>
#include <Eigen/SVD>
#include <cmath>
#include <exception>
#include <string>

namespace metaglasso {

double noise_variance(double trace_S, const Eigen::Ref<const Matrix>& DtSD, Index n_features) {
  const Index M = DtSD.rows();
  if (n_features <= M)
    throw std::invalid_argument("n_features must exceed n_components; got n_features=" + std::to_string(n_features) +
                                ", n_components=" + std::to_string(M));
  const double eps = (trace_S - DtSD.trace()) / static_cast<double>(n_features - M);
  if (!(eps > 0.0) || !std::isfinite(eps))
    throw NumericalError("noise variance (eq. 16) is not positive (" + std::to_string(eps) +
                         "): the data has no variance outside the span of D");
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
                          const GlassoOptions& glasso_options, DatasetState& state) {
  data.project(D, state.SD, state.DtSD);
  state.noise = noise_variance(data.trace(), state.DtSD, data.n_features());
  const Index M = D.cols();
  const bool warm = state.glasso.precision.rows() == M && state.glasso.precision.cols() == M;
  state.glasso = graphical_lasso(state.DtSD, rho, glasso_options, warm ? &state.glasso.precision : nullptr);
  state.objective = dataset_objective(data.trace(), state.DtSD, state.glasso.precision, state.noise,
                                      data.n_features(), rho, glasso_options.penalize_diagonal);
}

void add_euclidean_gradient(const DatasetState& state, Eigen::Ref<Matrix> G) {
  G.noalias() += 2.0 * state.SD * state.glasso.precision;
  G -= (2.0 / state.noise) * state.SD;
}

Matrix riemannian_gradient(const Eigen::Ref<const Matrix>& D, const Eigen::Ref<const Matrix>& G) {
  const Matrix DtG = D.transpose() * G;
  Matrix R = G;
  R.noalias() -= 0.5 * D * (DtG + DtG.transpose());
  return R;
}

Matrix polar_retraction(const Eigen::Ref<const Matrix>& Z) {
  const Index V = Z.rows(), M = Z.cols();
  if (M > V) throw std::invalid_argument("polar_retraction needs rows >= cols");
  if (!Z.allFinite()) throw NumericalError("polar_retraction: non-finite input");
  Eigen::HouseholderQR<Matrix> qr(Z);
  const Matrix R = qr.matrixQR().topRows(M).triangularView<Eigen::Upper>();
  Eigen::JacobiSVD<Matrix> svd(R, Eigen::ComputeFullU | Eigen::ComputeFullV);
  if (svd.singularValues()(M - 1) <= 1e-14 * svd.singularValues()(0))
    throw NumericalError("polar_retraction: the matrix is rank deficient");
  Matrix UVt = svd.matrixU() * svd.matrixV().transpose();
  Matrix out = Matrix::Zero(V, M);
  out.topRows(M) = UVt;
  return qr.householderQ() * out;
}

double profile_objective(const std::vector<Dataset>& data, const Eigen::Ref<const Matrix>& D, double rho,
                         const GlassoOptions& glasso_options, std::vector<DatasetState>& states,
                         Matrix* riemannian_grad, int n_threads) {
  const auto K = static_cast<Index>(data.size());
  states.resize(data.size());
  const int nt = resolve_threads(n_threads);
  const bool parallel = nt > 1 && K > 1 && D.rows() * D.cols() * K >= 20000;
  std::exception_ptr error;
#ifdef METAGLASSO_HAVE_OPENMP
#pragma omp parallel for num_threads(nt) schedule(static) if (parallel)
#endif
  for (Index k = 0; k < K; ++k) {
    try {
      update_dataset_state(data[static_cast<std::size_t>(k)], D, rho, glasso_options,
                           states[static_cast<std::size_t>(k)]);
    } catch (...) {
#ifdef METAGLASSO_HAVE_OPENMP
#pragma omp critical(metaglasso_error)
#endif
      if (!error) error = std::current_exception();
    }
  }
  (void)parallel;
  if (error) std::rethrow_exception(error);
  double f = 0.0;
  for (const auto& s : states) f += s.objective;
  if (riemannian_grad != nullptr) {
    Matrix G = Matrix::Zero(D.rows(), D.cols());
    for (const auto& s : states) add_euclidean_gradient(s, G);
    *riemannian_grad = riemannian_gradient(D, G);
  }
  return f;
}

}  // namespace metaglasso
