// Exact compression of the fit onto the column span of the centred data (paper eqs. 9, 10, 13, 16
// depend on D only through S_k D and Dᵀ S_k D).
#pragma once

#include <functional>
#include <vector>

#include "metaglasso/dataset.hpp"

namespace metaglasso {

/// The column span of the centred data of K datasets and the datasets in its coordinates.
///
/// With F_k = (X_k − μ_k 1ᵀ)/√N_k and S_k = F_k F_kᵀ, the fit needs D only through S_k D (eqs. 10,
/// 13) and Dᵀ S_k D (eqs. 13, 16). Let B (V, r) be an orthonormal basis of span[F_1 … F_K] and
/// C_k = Bᵀ F_k (r, N_k), so F_k = B C_k. For D = B E, E (r, M):
///   Dᵀ S_k D = Eᵀ C_k C_kᵀ E,   S_k D = B (C_k C_kᵀ E),   tr S_k = ‖F_k‖²_F unchanged,
/// so the Euclidean gradient (eq. 10) is B times its r-dimensional counterpart, the Riemannian
/// gradient (eq. 9) and the polar retraction (eqs. 7–8) commute with B, and inner products of
/// tangent vectors are preserved. A gradient method started inside the span (the PCA start, or
/// any start projected into the span) therefore produces D_t = B E_t with E_t the iterates of the
/// same method on the datasets C_k in r ≤ ΣN_k dimensions. ε_k (eq. 16) and the (V − M) log ε_k
/// term keep n_features = V. Methods that are not invariant under rotations of the coordinates
/// (Adam's element-wise step scaling) are different algorithms in the compressed coordinates.
///
/// B comes from the ΣN × ΣN Gram matrix G = F̂ᵀ F̂ of the stacked data
/// F̂ = [F_1/√t_1 … F_K/√t_K] (each dataset scaled to unit trace t_k = tr S_k; the span is the same,
/// and a dataset of small variance is not mistaken for rounding noise). Its pivoted Cholesky
/// factorisation P G Pᵀ = L D Lᵀ (diagonal pivoting on the Schur complement, stopped when the
/// largest remaining pivot is at or below rank_tolerance times the first, and after at most V
/// pivots) keeps r ≤ min(V, ΣN) pivot samples; with L11 the leading r × r block,
/// B = F̂ P₁ L11⁻ᵀ D^{-1/2} (P₁ selects the pivot samples) has BᵀB = I and C = Bᵀ F̂ = D^{1/2} Lᵀ P,
/// so the factors C_k = √t_k C(:, dataset k) come from the factorisation itself. The variance left
/// out is the trace of the last Schur complement, at most ΣN · rank_tolerance · max diag G. Cost:
/// one pass over the data (V ΣN²/2 multiply-adds, read in blocks of rows, never copied) and ΣN³/3
/// for the factorisation (an eigendecomposition of G would give the same span at many times the
/// cost for ΣN in the thousands). B is not stored:
/// B Y = F̂ (W Y), W = P₁ L11⁻ᵀ D^{-1/2}, is a single V ΣN m pass over the data for any Y (r, m),
/// so the data are passed again to to_features and to_span. Storage: O(ΣN² + V K).
class DataSpan {
 public:
  /// @param Xs K matrices (V, N_k), one sample per column; read, not kept.
  /// @param assume_centered take μ_k = 0.
  /// @param rank_tolerance the factorisation of G stops when the largest remaining pivot is at or
  ///        below rank_tolerance times the first: numerically null directions (e.g. the K
  ///        directions removed by centring) are dropped.
  /// @throws std::invalid_argument for invalid data (validate_data), data whose covariance overflows
  ///         or a tolerance outside [0, 1).
  /// @param interrupt_check if set, called between the row blocks of the Gram pass (on the
  ///        calling thread); an exception it throws propagates.
  explicit DataSpan(const DataList& Xs, bool assume_centered = false, double rank_tolerance = 1e-12,
                    int n_threads = 0, const std::function<void()>& interrupt_check = {});

  Index n_features() const { return n_features_; }
  /// r, the number of directions kept.
  Index rank() const { return pivots_.size(); }
  /// The r pivots of the factorisation of G, non-increasing.
  const Vector& pivots() const { return pivots_; }
  /// The datasets in span coordinates: Gram factors C_k (r, N_k) (stored as C_k C_kᵀ when N_k > r),
  /// with n_features() = V and the traces of the uncompressed datasets.
  const std::vector<Dataset>& datasets() const { return datasets_; }
  /// (V, K) the means removed from the datasets (zero when assume_centered).
  const Matrix& means() const { return means_; }

  /// B Y (V, m) for Y (r, m). @param Xs the matrices this span was built from.
  Matrix to_features(const DataList& Xs, const Eigen::Ref<const Matrix>& Y, int n_threads = 0) const;
  /// Bᵀ Z (r, m) for Z (V, m). @param Xs the matrices this span was built from.
  Matrix to_span(const DataList& Xs, const Eigen::Ref<const Matrix>& Z, int n_threads = 0) const;
  /// B (V, r) explicitly (V ΣN r multiply-adds).
  Matrix basis(const DataList& Xs, int n_threads = 0) const;

  /// The PCA start in span coordinates: E (r, m) with B E the top-m eigenvectors of Σ_k S_k (the
  /// top-m eigenvectors of the r × r matrix Σ_k C_k C_kᵀ, by Lanczos, mapped by B), signs fixed so
  /// that the entry of largest magnitude of each column of B E is positive — the same start as
  /// pca_initial_projection on the uncompressed datasets. @throws std::invalid_argument unless
  /// 1 ≤ m < rank().
  Matrix pca_start(const DataList& Xs, Index m, int n_threads = 0) const;
  /// A start D0 (V, m) projected into the span and re-orthonormalised: polar(Bᵀ D0) (r, m).
  /// @throws std::invalid_argument when Bᵀ D0 is rank deficient (D0 has a direction orthogonal
  ///         to the span of the data) or m ≥ rank().
  Matrix project_start(const DataList& Xs, const Eigen::Ref<const Matrix>& D0, int n_threads = 0) const;

 private:
  void check_same_data(const DataList& Xs) const;
  // Rows v0 … v0 + rows − 1 of F̂ into block.topRows(rows) (block has ΣN columns).
  void fill_rows(const DataList& Xs, Index v0, Index rows, Matrix& block) const;

  Index n_features_ = 0;
  std::vector<Index> offsets_;  // column of dataset k in the stack; offsets_[K] = ΣN
  Vector scales_;               // F̂_k = (X_k − μ_k 1ᵀ) · scales_(k)
  Matrix means_;                // (V, K)
  // W Y (ΣN, m) and Wᵀ T (r, m) for W = P₁ L11⁻ᵀ D^{-1/2}: triangular solves, O(r² m).
  Matrix apply_w(const Eigen::Ref<const Matrix>& Y) const;
  Matrix apply_wt(const Eigen::Ref<const Matrix>& T) const;

  Matrix L11_;                      // (r, r) unit lower triangular (strict lower part stored)
  std::vector<Index> pivot_cols_;   // (r) the pivot samples: columns of F̂ in pivot order
  Vector pivots_;               // (r)
  std::vector<Dataset> datasets_;
};

}  // namespace metaglasso
