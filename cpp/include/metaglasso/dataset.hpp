// One dataset X_k of the model and the covariance projections the fit needs (paper eqs. 10, 13, 16).
#pragma once

#include "metaglasso/common.hpp"

namespace metaglasso {

/// A dataset k, held either as a Gram factor F (V, N) with S = F Fᵀ (data mode) or as a
/// covariance S (V, V) (covariance mode). The V × V covariance is never formed in data mode.
class Dataset {
 public:
  /// Data mode. @param X (V, N): one sample per column (a C-ordered NumPy array of shape
  /// (N, V) is exactly this matrix). Stores F = (X − mean) / √N (or X / √N when
  /// `assume_centered`), so S = F Fᵀ is the centred covariance divided by N. X is not modified.
  /// @throws std::invalid_argument when N < 2, V < 1 or X has non-finite entries.
  static Dataset from_data(const Eigen::Ref<const Matrix>& X, bool assume_centered = false);

  /// Covariance mode. @param S (V, V) symmetric positive semi-definite covariance computed from
  /// `n_samples` samples. @throws std::invalid_argument for a non-square, asymmetric or
  /// non-finite S or n_samples < 1.
  static Dataset from_covariance(const Eigen::Ref<const Matrix>& S, Index n_samples);

  Index n_features() const { return n_features_; }
  Index n_samples() const { return n_samples_; }
  bool is_covariance() const { return covariance_mode_; }
  /// tr S_k (cached).
  double trace() const { return trace_; }
  /// Centred-sample mean (V), zero when assume_centered or covariance mode.
  const Vector& mean() const { return mean_; }
  /// The stored matrix: F (V, N) in data mode, S (V, V) in covariance mode.
  const Matrix& matrix() const { return matrix_; }

  /// Covariance projections for a projection D (V, M):
  ///   SD = S_k D (V, M) and DtSD = Dᵀ S_k D (M, M), computed as F (Fᵀ D) in data mode.
  void project(const Eigen::Ref<const Matrix>& D, Matrix& SD, Matrix& DtSD) const;

  /// y = S_k x for a vector x (V) (used by the Lanczos operator).
  void apply(const Eigen::Ref<const Vector>& x, Eigen::Ref<Vector> y) const;

 private:
  Matrix matrix_;
  Vector mean_;
  Index n_features_ = 0;
  Index n_samples_ = 0;
  double trace_ = 0.0;
  bool covariance_mode_ = false;
};

}  // namespace metaglasso
