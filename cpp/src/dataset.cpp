#include "metaglasso/dataset.hpp"

#include <cmath>
#include <string>

#ifdef METAGLASSO_HAVE_OPENMP
#include <omp.h>
#endif

namespace metaglasso {

int resolve_threads(int n_threads) {
  if (n_threads > 0) return n_threads;
#ifdef METAGLASSO_HAVE_OPENMP
  return omp_get_max_threads();
#else
  return 1;
#endif
}

Dataset Dataset::from_data(const Eigen::Ref<const Matrix>& X, bool assume_centered) {
  const Index V = X.rows(), N = X.cols();
  if (V < 1) throw std::invalid_argument("X must have at least one feature; got n_features=" + std::to_string(V));
  if (N < 2) throw std::invalid_argument("X must have at least 2 samples; got n_samples=" + std::to_string(N));
  if (!X.allFinite()) throw std::invalid_argument("X contains NaN or infinite values");
  Dataset d;
  d.n_features_ = V;
  d.n_samples_ = N;
  d.covariance_mode_ = false;
  if (assume_centered) {
    d.mean_ = Vector::Zero(V);
    d.matrix_ = X / std::sqrt(static_cast<double>(N));
  } else {
    d.mean_ = X.rowwise().mean();
    d.matrix_ = (X.colwise() - d.mean_) / std::sqrt(static_cast<double>(N));
  }
  d.trace_ = d.matrix_.squaredNorm();
  return d;
}

Dataset Dataset::from_covariance(const Eigen::Ref<const Matrix>& S, Index n_samples) {
  if (S.rows() != S.cols() || S.rows() < 1)
    throw std::invalid_argument("covariance must be square and non-empty; got shape (" + std::to_string(S.rows()) +
                                ", " + std::to_string(S.cols()) + ")");
  if (n_samples < 1) throw std::invalid_argument("n_samples must be >= 1; got " + std::to_string(n_samples));
  if (!S.allFinite()) throw std::invalid_argument("covariance contains NaN or infinite values");
  const double asym = (S - S.transpose()).cwiseAbs().maxCoeff();
  if (asym > 1e-10 * std::max(1.0, S.cwiseAbs().maxCoeff()))
    throw std::invalid_argument("covariance must be symmetric; max |S - S^T| = " + std::to_string(asym));
  Dataset d;
  d.n_features_ = S.rows();
  d.n_samples_ = n_samples;
  d.covariance_mode_ = true;
  d.mean_ = Vector::Zero(S.rows());
  d.matrix_ = 0.5 * (S + S.transpose());
  d.trace_ = d.matrix_.trace();
  return d;
}

void Dataset::project(const Eigen::Ref<const Matrix>& D, Matrix& SD, Matrix& DtSD) const {
  if (D.rows() != n_features_)
    throw std::invalid_argument("D must have n_features rows; got " + std::to_string(D.rows()) + ", expected " +
                                std::to_string(n_features_));
  if (covariance_mode_) {
    SD.noalias() = matrix_ * D;
  } else {
    const Matrix FtD = matrix_.transpose() * D;  // (N, M)
    SD.noalias() = matrix_ * FtD;
  }
  DtSD.noalias() = D.transpose() * SD;
  DtSD = 0.5 * (DtSD + DtSD.transpose()).eval();
}

void Dataset::apply(const Eigen::Ref<const Vector>& x, Eigen::Ref<Vector> y) const {
  if (covariance_mode_) {
    y.noalias() = matrix_ * x;
  } else {
    const Vector t = matrix_.transpose() * x;
    y.noalias() = matrix_ * t;
  }
}

}  // namespace metaglasso
