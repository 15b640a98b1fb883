#include "metaglasso/dataset.hpp"

#include <algorithm>
#include <cmath>
#include <string>
#include <utility>

#include "kernels.hpp"

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

const char* representation_name(Representation representation) {
  switch (representation) {
    case Representation::Data:
      return "data";
    case Representation::Covariance:
      return "covariance";
    case Representation::Operator:
      return "operator";
    case Representation::Auto:
      break;
  }
  return "auto";
}

Representation parse_representation(const std::string& representation) {
  if (representation == "auto") return Representation::Auto;
  if (representation == "data") return Representation::Data;
  if (representation == "covariance") return Representation::Covariance;
  throw std::invalid_argument("representation must be 'auto', 'data' or 'covariance'; got '" + representation + "'");
}

namespace {

// A Dataset holds its covariance as data or as a matrix; Auto is resolved by the caller.
void check_dataset_representation(Representation representation) {
  if (representation == Representation::Operator)
    throw std::invalid_argument("a Dataset's representation must be 'auto', 'data' or 'covariance'; got 'operator'");
}

}  // namespace

void validate_data(const DataList& Xs) {
  if (Xs.empty()) throw std::invalid_argument("data must contain at least one dataset; got 0");
  const Index V = Xs.front().rows();
  for (std::size_t k = 0; k < Xs.size(); ++k) {
    const auto& X = Xs[k];
    const std::string name = "dataset " + std::to_string(k);
    if (X.rows() < 1) throw std::invalid_argument(name + " must have at least one feature; got n_features=0");
    if (X.rows() != V)
      throw std::invalid_argument("all datasets must have the same number of features; dataset 0 has " +
                                  std::to_string(V) + ", " + name + " has " + std::to_string(X.rows()));
    if (X.cols() < 2)
      throw std::invalid_argument(name + " must have at least 2 samples; got n_samples=" + std::to_string(X.cols()));
    if (!X.allFinite()) throw std::invalid_argument(name + " contains NaN or infinite values");
  }
}

Dataset Dataset::from_data(const Eigen::Ref<const Matrix>& X, bool assume_centered, Representation representation,
                           int n_threads) {
  const Index V = X.rows(), N = X.cols();
  if (V < 1) throw std::invalid_argument("X must have at least one feature; got n_features=" + std::to_string(V));
  if (N < 2) throw std::invalid_argument("X must have at least 2 samples; got n_samples=" + std::to_string(N));
  if (!X.allFinite()) throw std::invalid_argument("X contains NaN or infinite values");
  check_dataset_representation(representation);
  if (representation == Representation::Auto)
    representation = N <= V ? Representation::Data : Representation::Covariance;
  Dataset d;
  d.n_features_ = V;
  d.n_samples_ = N;
  d.representation_ = representation;
  d.mean_ = assume_centered ? Vector::Zero(V) : Vector(X.rowwise().mean());
  const double scale = 1.0 / std::sqrt(static_cast<double>(N));
  // Finite data of magnitude beyond √(max double) can have a covariance that is not.
  const auto check_overflow = [](double trace) {
    if (!std::isfinite(trace))
      throw std::invalid_argument("X is too large in magnitude: its covariance overflows double precision");
  };
  if (representation == Representation::Data) {
    d.matrix_ = (X.colwise() - d.mean_) * scale;
    d.trace_ = d.matrix_.squaredNorm();
    check_overflow(d.trace_);
    return d;
  }
  // S = Σ_blocks F_b F_bᵀ over blocks of 256 centred, scaled samples: no V × N copy.
  constexpr Index kBlock = 256;
  const int nt = resolve_threads(n_threads);
  d.matrix_ = Matrix::Zero(V, V);
  Matrix block(V, std::min(kBlock, N));
  d.trace_ = 0.0;
  for (Index j0 = 0; j0 < N; j0 += kBlock) {
    const Index w = std::min(kBlock, N - j0);
    block.leftCols(w) = (X.middleCols(j0, w).colwise() - d.mean_) * scale;
    d.trace_ += block.leftCols(w).squaredNorm();
    detail::gram_nt_lower(block.leftCols(w), d.matrix_, nt);
  }
  check_overflow(d.trace_);
  detail::symmetrize_from_lower(d.matrix_);
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
  d.representation_ = Representation::Covariance;
  d.mean_ = Vector::Zero(S.rows());
  d.matrix_ = 0.5 * (S + S.transpose());
  d.trace_ = d.matrix_.trace();
  return d;
}

Dataset Dataset::from_factor(Matrix F, Index n_samples, Index n_features, double trace,
                             Representation representation) {
  const Index rows = F.rows(), cols = F.cols();
  if (rows < 1 || cols < 1)
    throw std::invalid_argument("factor must be non-empty; got shape (" + std::to_string(rows) + ", " +
                                std::to_string(cols) + ")");
  if (n_features < rows)
    throw std::invalid_argument("n_features must be >= the factor's rows; got n_features=" +
                                std::to_string(n_features) + ", rows=" + std::to_string(rows));
  if (n_samples < 1) throw std::invalid_argument("n_samples must be >= 1; got " + std::to_string(n_samples));
  if (!F.allFinite()) throw std::invalid_argument("factor contains NaN or infinite values");
  if (!(trace >= 0.0) || !std::isfinite(trace))
    throw std::invalid_argument("trace must be finite and >= 0; got " + std::to_string(trace));
  check_dataset_representation(representation);
  if (representation == Representation::Auto)
    representation = cols <= rows ? Representation::Data : Representation::Covariance;
  Dataset d;
  d.n_features_ = n_features;
  d.n_samples_ = n_samples;
  d.representation_ = representation;
  d.mean_ = Vector::Zero(rows);
  d.trace_ = trace;
  if (representation == Representation::Data) {
    d.matrix_ = std::move(F);
  } else {
    d.matrix_ = Matrix::Zero(rows, rows);
    detail::gram_nt_lower(F, d.matrix_, 1);
    detail::symmetrize_from_lower(d.matrix_);
  }
  return d;
}

void Dataset::project(const Eigen::Ref<const Matrix>& D, Matrix& SD, Matrix& DtSD, Matrix& work,
                      int n_threads) const {
  if (D.rows() != dimension())
    throw std::invalid_argument("D must have " + std::to_string(dimension()) + " rows; got " +
                                std::to_string(D.rows()));
  const Index d = dimension(), M = D.cols();
  SD.resize(d, M);
  DtSD.resize(M, M);
  if (is_covariance()) {
    detail::product_nn(matrix_, D, SD, n_threads);
    detail::gemm(true, 1.0, D, SD, 0.0, DtSD);
  } else {
    work.resize(matrix_.cols(), M);
    detail::product_tn(matrix_, D, work, n_threads);  // T = Fᵀ D
    detail::product_nn(matrix_, work, SD, n_threads);  // S D = F T
    detail::gemm(true, 1.0, work, work, 0.0, DtSD);    // Dᵀ S D = Tᵀ T
  }
  detail::symmetrize_average(DtSD);
}

void Dataset::project(const Eigen::Ref<const Matrix>& D, Matrix& SD, Matrix& DtSD) const {
  Matrix work;
  project(D, SD, DtSD, work, 1);
}

void Dataset::apply(const Eigen::Ref<const Vector>& x, Eigen::Ref<Vector> y) const {
  if (is_covariance()) {
    y.noalias() = matrix_ * x;
  } else {
    const Vector t = matrix_.transpose() * x;
    y.noalias() = matrix_ * t;
  }
}

}  // namespace metaglasso
