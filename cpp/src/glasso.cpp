// Placeholder: exact inverse for rho = 0 only (replaced by the coordinate-descent solver).
#include "metaglasso/glasso.hpp"

#include <Eigen/Cholesky>
#include <limits>

namespace metaglasso {

GlassoResult graphical_lasso(const Eigen::Ref<const Matrix>& S, double rho, const GlassoOptions& options,
                             const Matrix* precision_init) {
  (void)options;
  (void)precision_init;
  if (rho != 0.0) throw std::logic_error("graphical_lasso: rho > 0 not implemented yet");
  GlassoResult r;
  Eigen::LLT<Matrix> llt(S);
  if (llt.info() != Eigen::Success) throw NumericalError("S is singular");
  r.covariance = S;
  r.precision = llt.solve(Matrix::Identity(S.rows(), S.cols()));
  r.precision = 0.5 * (r.precision + r.precision.transpose()).eval();
  r.converged = true;
  return r;
}

double glasso_duality_gap(const Eigen::Ref<const Matrix>&, double, const Eigen::Ref<const Matrix>&, bool) {
  return std::numeric_limits<double>::quiet_NaN();
}

double glasso_objective(const Eigen::Ref<const Matrix>&, double, const Eigen::Ref<const Matrix>&, bool) {
  return std::numeric_limits<double>::quiet_NaN();
}

}  // namespace metaglasso
