// Placeholder (replaced by the Lanczos implementation): dense eigen-decomposition.
#include "metaglasso/lanczos.hpp"

#include <Eigen/Eigenvalues>

namespace metaglasso {

LanczosResult lanczos_top_eigenvectors(const SymmetricOperator& op, Index n, Index m, double, int, std::uint64_t) {
  Matrix A(n, n);
  Vector e = Vector::Zero(n), y(n);
  for (Index i = 0; i < n; ++i) {
    e.setZero();
    e(i) = 1.0;
    op(e, y);
    A.col(i) = y;
  }
  Eigen::SelfAdjointEigenSolver<Matrix> es(A);
  LanczosResult r;
  r.values = es.eigenvalues().reverse().head(m);
  r.vectors = es.eigenvectors().rowwise().reverse().leftCols(m);
  r.converged = true;
  return r;
}

Matrix pca_initial_projection(const std::vector<Dataset>& data, Index m, int) {
  const Index n = data.front().n_features();
  auto op = [&](const Eigen::Ref<const Vector>& x, Eigen::Ref<Vector> y) {
    y.setZero();
    Vector t(n);
    for (const auto& d : data) {
      d.apply(x, t);
      y += t;
    }
  };
  Matrix D = lanczos_top_eigenvectors(op, n, m).vectors;
  for (Index j = 0; j < m; ++j) {
    Index i;
    D.col(j).cwiseAbs().maxCoeff(&i);
    if (D(i, j) < 0) D.col(j) *= -1.0;
  }
  return D;
}

}  // namespace metaglasso
