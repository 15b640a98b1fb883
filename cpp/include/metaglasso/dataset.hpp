// One dataset X_k of the model and the covariance projections the fit needs (paper eqs. 10, 13, 16).
#pragma once

#include <string>
#include <vector>

#include "metaglasso/common.hpp"

namespace metaglasso {

/// K data matrices (V, N_k), one sample per column, read in place (a C-ordered NumPy array of
/// shape (N_k, V) is exactly such a matrix).
using DataList = std::vector<Eigen::Ref<const Matrix>>;

/// How a dataset's covariance S_k is stored.
enum class Representation {
  Auto,        ///< Data when N_k ≤ d, Covariance otherwise (only as a request)
  Data,        ///< a Gram factor F (d, N_k) with S_k = F Fᵀ: the centred data scaled by 1/√N_k
  Covariance,  ///< S_k itself (d, d)
  Operator,    ///< products supplied by a CovarianceProducts implementation (never a Dataset's)
};

/// "data", "covariance", "operator" or "auto".
const char* representation_name(Representation representation);

/// The Representation named "auto", "data" or "covariance" (what a Dataset can be asked for).
/// @throws std::invalid_argument naming `representation` for any other string.
Representation parse_representation(const std::string& representation);

/// A dataset k: its covariance S_k (centred, divided by N_k) stored as a Gram factor F with
/// S_k = F Fᵀ or as S_k itself, in d coordinates. d is the number of features V, or the rank r
/// of the data span when the dataset is held in the coordinates of an orthonormal basis B (V, r)
/// of that span (see DataSpan): then S_k = B F Fᵀ Bᵀ exactly. n_features() is V in both cases;
/// it enters ε_k (eq. 16) and the (V − M) log ε_k term of the objective.
///
/// The two products of a projection cost 2 d N_k M multiply-adds for a factor and d² M for a
/// covariance; a factor needs d N_k numbers, a covariance d². Representation::Auto therefore keeps
/// the factor when N_k ≤ d (no d × d matrix is formed) and the covariance otherwise.
class Dataset {
 public:
  /// From data. @param X (V, N): one sample per column. Stores F = (X − mean) / √N (or X / √N when
  /// `assume_centered`) for Representation::Data, S = F Fᵀ for Representation::Covariance (built
  /// from blocks of samples, without a centred copy of X); Auto picks Data when N ≤ V. X is not
  /// modified. @param n_threads for forming S (0 = OpenMP default).
  /// @throws std::invalid_argument when N < 2, V < 1, X has non-finite entries or is so large that
  ///         its covariance overflows.
  static Dataset from_data(const Eigen::Ref<const Matrix>& X, bool assume_centered = false,
                           Representation representation = Representation::Auto, int n_threads = 0);

  /// From a covariance. @param S (V, V) symmetric positive semi-definite covariance computed from
  /// `n_samples` samples; stored as given (symmetrised). @throws std::invalid_argument for a
  /// non-square, asymmetric or non-finite S or n_samples < 1.
  static Dataset from_covariance(const Eigen::Ref<const Matrix>& S, Index n_samples);

  /// From a Gram factor in span coordinates. @param F (d, N) with S = B F Fᵀ Bᵀ for an orthonormal
  /// B (V, d); @param n_features V ≥ d; @param trace tr S_k (tr F Fᵀ up to what B leaves out).
  /// Auto keeps F when N ≤ d and stores F Fᵀ (d, d) otherwise.
  /// @throws std::invalid_argument for inconsistent sizes, non-finite F or a negative trace.
  static Dataset from_factor(Matrix F, Index n_samples, Index n_features, double trace,
                             Representation representation = Representation::Auto);

  /// V.
  Index n_features() const { return n_features_; }
  /// d: rows of matrix() and of the projections D this dataset accepts.
  Index dimension() const { return matrix_.rows(); }
  Index n_samples() const { return n_samples_; }
  /// Data or Covariance.
  Representation representation() const { return representation_; }
  bool is_covariance() const { return representation_ == Representation::Covariance; }
  /// tr S_k (cached).
  double trace() const { return trace_; }
  /// Centred-sample mean (V) of from_data; zero for covariances and factors.
  const Vector& mean() const { return mean_; }
  /// The stored matrix: F (d, N) or S (d, d).
  const Matrix& matrix() const { return matrix_; }
  /// Rows of the work matrix project() needs: N for a factor, 0 for a covariance.
  Index work_rows() const { return is_covariance() ? 0 : matrix_.cols(); }

  /// Covariance projections for a projection D (d, M), in one pass over the stored matrix:
  ///   SD = S_k D (d, M) and DtSD = Dᵀ S_k D (M, M), symmetric.
  /// Factor: T = Fᵀ D (N, M), SD = F T, DtSD = Tᵀ T, so tr DᵀS_kD = ‖T‖²_F comes with the pass.
  /// Covariance: SD = S D, DtSD = Dᵀ SD symmetrised. The products are split into fixed tiles of
  /// output rows (never along a summation), run on `n_threads` threads above a size threshold, and
  /// give bit-identical results for every thread count. Nothing is allocated when SD, DtSD and
  /// `work` (work_rows(), M) already have their sizes.
  void project(const Eigen::Ref<const Matrix>& D, Matrix& SD, Matrix& DtSD, Matrix& work, int n_threads) const;

  /// Same, allocating its work matrix and running serially.
  void project(const Eigen::Ref<const Matrix>& D, Matrix& SD, Matrix& DtSD) const;

  /// y = S_k x for a vector x (d).
  void apply(const Eigen::Ref<const Vector>& x, Eigen::Ref<Vector> y) const;

 private:
  Matrix matrix_;
  Vector mean_;
  Index n_features_ = 0;
  Index n_samples_ = 0;
  double trace_ = 0.0;
  Representation representation_ = Representation::Data;
};

/// Checks K data matrices: at least one, the same number of features V ≥ 1, N_k ≥ 2, finite.
/// @throws std::invalid_argument naming the dataset and the value.
void validate_data(const DataList& Xs);

}  // namespace metaglasso
