// The operator interface of the fit: K covariances S_k seen only through the products the fit needs.
#pragma once

#include <vector>

#include "metaglasso/dataset.hpp"

namespace metaglasso {

/// S_k D and Dᵀ S_k D of one dataset at a projection D, written by CovarianceProducts::project.
/// The matrices keep their sizes between calls, so an implementation can write into them without
/// allocating.
struct Projection {
  Matrix SD;    ///< (d, M) S_k D
  Matrix DtSD;  ///< (M, M) Dᵀ S_k D, symmetric
  Matrix work;  ///< scratch of the implementation (Dataset::project: F_kᵀ D, (N_k, M))
};

/// K covariances S_k (V × V, or d × d in the coordinates of an orthonormal basis of their span), seen
/// only through what the fit needs: N_k, tr S_k and, for a projection D (d, M), the products S_k D and
/// Dᵀ S_k D (paper eqs. 9, 10, 13 and 16 use S_k in no other way). The fit loop (fit), the PCA start
/// (pca_start) and the profile objective take this interface, in the manner of Spectra's product
/// operators, so the same loop serves data and covariances in memory (DatasetProducts) and operators
/// whose matrices live elsewhere — e.g. covariance blocks kept on the workers of a cluster, each call
/// of project one round trip.
///
/// The fit calls every method on the thread that called it, never from inside a parallel region, and
/// asks for all the datasets it needs at a D in one call of project. An exception thrown by a method
/// ends the fit and reaches its caller.
class CovarianceProducts {
 public:
  virtual ~CovarianceProducts() = default;

  /// K ≥ 1.
  virtual Index n_datasets() const = 0;
  /// V: enters ε_k (eq. 16) and the (V − M) log ε_k term of the objective.
  virtual Index n_features() const = 0;
  /// d ≤ V: rows of the projections D the products take (V, or r in span coordinates).
  virtual Index dimension() const = 0;
  /// N_k ≥ 1.
  virtual Index n_samples(Index k) const = 0;
  /// tr S_k ≥ 0.
  virtual double trace(Index k) const = 0;
  /// How S_k is held (reported in FitResult::representations). Default Representation::Operator.
  virtual Representation representation(Index k) const;

  /// For i < count and k = ks[i]: out[i]->SD = S_k D (d, M) and out[i]->DtSD = Dᵀ S_k D (M, M),
  /// symmetric. @param D (d, M); @param n_threads the threads the fit may use (0 = OpenMP default).
  /// The results must not depend on which datasets are asked for together or on n_threads.
  virtual void project(const Eigen::Ref<const Matrix>& D, const Index* ks, Index count, Projection* const* out,
                       int n_threads) const = 0;

  /// The PCA start (d, m): the top-m eigenvectors of Σ_k S_k, each column's sign fixed so that its
  /// entry of largest magnitude is positive. The default runs block Lanczos
  /// (block_lanczos_top_eigenvectors, residuals ≤ 1e-10 · θ_max) on X ↦ Σ_k S_k X through project,
  /// one call per block of vectors; an implementation with a cheaper path overrides it.
  /// @throws std::invalid_argument unless 1 ≤ m < min(n_features(), dimension() + 1).
  virtual Matrix pca_start(Index m, int n_threads) const;
};

/// K Dataset objects in memory as CovarianceProducts (the fit's own representation). Holds a reference:
/// the datasets must outlive it.
class DatasetProducts final : public CovarianceProducts {
 public:
  /// @throws std::invalid_argument when `data` is empty or the datasets differ in n_features or
  ///         dimension.
  explicit DatasetProducts(const std::vector<Dataset>& data);

  Index n_datasets() const override { return static_cast<Index>(data_->size()); }
  Index n_features() const override { return data_->front().n_features(); }
  Index dimension() const override { return data_->front().dimension(); }
  Index n_samples(Index k) const override { return at(k).n_samples(); }
  double trace(Index k) const override { return at(k).trace(); }
  Representation representation(Index k) const override { return at(k).representation(); }

  /// Dataset::project for each requested dataset: in parallel over the datasets (serial products)
  /// when every thread gets one and the work is large enough, otherwise one after the other with
  /// threaded products. Bit-identical for every n_threads.
  void project(const Eigen::Ref<const Matrix>& D, const Index* ks, Index count, Projection* const* out,
               int n_threads) const override;

  /// pca_initial_projection(data) (block Lanczos on the stored matrices or the samples' Gram matrix).
  Matrix pca_start(Index m, int n_threads) const override;

  const std::vector<Dataset>& datasets() const { return *data_; }

 private:
  const Dataset& at(Index k) const { return (*data_)[static_cast<std::size_t>(k)]; }
  const std::vector<Dataset>* data_;
};

/// Checks that products of dataset k at a D (d, M) have the shapes of S_k D (d, M) and Dᵀ S_k D (M, M).
/// @throws std::invalid_argument naming the dataset and both shapes.
void check_projection_shapes(const Projection& p, Index k, Index d, Index M);

/// Checks the sizes an operator reports: K ≥ 1, 1 ≤ d ≤ V, N_k ≥ 1 and finite tr S_k ≥ 0.
/// @throws std::invalid_argument naming the dataset and the value.
void validate_products(const CovarianceProducts& products);

}  // namespace metaglasso
