#include "metaglasso/covariance_products.hpp"

#include <cmath>
#include <string>

#include "metaglasso/lanczos.hpp"
#include "kernels.hpp"

namespace metaglasso {

namespace {

// Products run in parallel over datasets from this d · M · (datasets) size on.
constexpr Index kParallelProductWork = 20000;
constexpr double kPcaTol = 1e-10;  // residual tolerance of the PCA start, relative to θ_max

}  // namespace

Representation CovarianceProducts::representation(Index) const { return Representation::Operator; }

Matrix CovarianceProducts::pca_start(Index m, int n_threads) const {
  const Index d = dimension(), K = n_datasets();
  if (m < 1 || m >= n_features() || m >= d)
    throw std::invalid_argument("n_components must satisfy 1 <= n_components < n_features; got n_components=" +
                                std::to_string(m) + ", n_features=" + std::to_string(n_features()) +
                                (d < n_features() ? ", dimension=" + std::to_string(d) : std::string()));
  std::vector<Index> all(static_cast<std::size_t>(K));
  std::vector<Projection> products(static_cast<std::size_t>(K));
  std::vector<Projection*> out(static_cast<std::size_t>(K));
  for (Index k = 0; k < K; ++k) {
    all[static_cast<std::size_t>(k)] = k;
    out[static_cast<std::size_t>(k)] = &products[static_cast<std::size_t>(k)];
  }
  // Σ_k S_k X: one call of project per block, summed in dataset order.
  const BlockOperator sum = [&](const Eigen::Ref<const Matrix>& X, Eigen::Ref<Matrix> Y) {
    project(X, all.data(), K, out.data(), n_threads);
    Y.setZero();
    for (Index k = 0; k < K; ++k) {
      const Projection& p = products[static_cast<std::size_t>(k)];
      check_projection_shapes(p, k, d, X.cols());
      Y += p.SD;
    }
  };
  BlockLanczosOptions options;
  options.tol = kPcaTol;
  options.n_threads = n_threads;
  Matrix D = block_lanczos_top_eigenvectors(sum, d, m, options).vectors;
  fix_column_signs(D, D);
  return D;
}

DatasetProducts::DatasetProducts(const std::vector<Dataset>& data) : data_(&data) {
  if (data.empty()) throw std::invalid_argument("data must contain at least one dataset");
  const Index V = data.front().n_features(), d = data.front().dimension();
  for (std::size_t k = 1; k < data.size(); ++k)
    if (data[k].n_features() != V || data[k].dimension() != d)
      throw std::invalid_argument("all datasets must have the same number of features; dataset 0 has " +
                                  std::to_string(V) + " (dimension " + std::to_string(d) + "), dataset " +
                                  std::to_string(k) + " has " + std::to_string(data[k].n_features()) +
                                  " (dimension " + std::to_string(data[k].dimension()) + ")");
}

void DatasetProducts::project(const Eigen::Ref<const Matrix>& D, const Index* ks, Index count, Projection* const* out,
                              int n_threads) const {
  const int nt = resolve_threads(n_threads);
  // Parallel over datasets (serial products) when every thread gets a dataset and the products are
  // not trivially small; otherwise one dataset after the other with threaded products.
  const bool outer = nt > 1 && count > 1 && count >= nt && D.rows() * D.cols() * count >= kParallelProductWork;
  detail::for_each_index(count, nt, outer, [&](Index i) {
    Projection& p = *out[i];
    at(ks[i]).project(D, p.SD, p.DtSD, p.work, outer ? 1 : nt);
  });
}

Matrix DatasetProducts::pca_start(Index m, int n_threads) const {
  return pca_initial_projection(*data_, m, n_threads);
}

void check_projection_shapes(const Projection& p, Index k, Index d, Index M) {
  if (p.SD.rows() != d || p.SD.cols() != M || p.DtSD.rows() != M || p.DtSD.cols() != M)
    throw std::invalid_argument("dataset " + std::to_string(k) + ": the covariance products have shapes (" +
                                std::to_string(p.SD.rows()) + ", " + std::to_string(p.SD.cols()) + ") and (" +
                                std::to_string(p.DtSD.rows()) + ", " + std::to_string(p.DtSD.cols()) +
                                "); expected (" + std::to_string(d) + ", " + std::to_string(M) + ") and (" +
                                std::to_string(M) + ", " + std::to_string(M) + ")");
}

void validate_products(const CovarianceProducts& products) {
  const Index K = products.n_datasets(), V = products.n_features(), d = products.dimension();
  if (K < 1) throw std::invalid_argument("data must contain at least one dataset; got " + std::to_string(K));
  if (V < 1 || d < 1 || d > V)
    throw std::invalid_argument("the covariances must have 1 <= dimension <= n_features; got dimension=" +
                                std::to_string(d) + ", n_features=" + std::to_string(V));
  for (Index k = 0; k < K; ++k) {
    const std::string name = "dataset " + std::to_string(k);
    if (products.n_samples(k) < 1)
      throw std::invalid_argument(name + " must have n_samples >= 1; got " + std::to_string(products.n_samples(k)));
    const double t = products.trace(k);
    if (!(t >= 0.0) || !std::isfinite(t))
      throw std::invalid_argument(name + " must have a finite trace >= 0; got " + detail::format_number(t));
  }
}

}  // namespace metaglasso
