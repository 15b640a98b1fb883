// pybind11 module metaglasso._core: converts arrays, releases the GIL, calls the C++ core.
#include <pybind11/eigen.h>
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <tuple>
#include <variant>
#include <vector>

#include "metaglasso/metaglasso.hpp"

namespace py = pybind11;
namespace mg = metaglasso;

using CArray = py::array_t<double, py::array::c_style | py::array::forcecast>;
using RowMatrix = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

namespace {

// A C-ordered (n_samples, n_features) array is, byte for byte, a column-major
// (n_features, n_samples) matrix: map it without copying.
Eigen::Map<const mg::Matrix> as_features_by_samples(const CArray& X) {
  if (X.ndim() != 2) throw std::invalid_argument("each dataset must be 2-D; got ndim=" + std::to_string(X.ndim()));
  return {X.data(), static_cast<mg::Index>(X.shape(1)), static_cast<mg::Index>(X.shape(0))};
}

std::vector<mg::Dataset> make_datasets(const std::vector<CArray>& Xs, bool assume_centered) {
  std::vector<mg::Dataset> data;
  data.reserve(Xs.size());
  for (const auto& X : Xs) data.push_back(mg::Dataset::from_data(as_features_by_samples(X), assume_centered));
  return data;
}

// The arrays as (V, N_k) matrices read in place (covariances: (V, V), symmetric, so the transposed
// view is the matrix itself).
mg::DataList as_data_list(const std::vector<CArray>& Xs) {
  mg::DataList list;
  list.reserve(Xs.size());
  for (const auto& X : Xs) list.emplace_back(as_features_by_samples(X));
  return list;
}

mg::Start make_start(const std::string& init, const std::optional<mg::Matrix>& components, mg::Index n_components,
                     std::uint64_t seed) {
  if (init == "pca") return mg::Start::pca(n_components);
  if (init == "random") return mg::Start::random(n_components, seed);
  if (init != "given") throw std::invalid_argument("init must be 'pca', 'random' or 'given'; got '" + init + "'");
  if (!components) throw std::invalid_argument("init='given' needs components");
  return mg::Start::given(*components);
}

mg::GlassoOptions glasso_options(double tol, int max_iter, bool penalize_diagonal) {
  mg::GlassoOptions o;
  o.tol = tol;
  o.max_iter = max_iter;
  o.penalize_diagonal = penalize_diagonal;
  return o;
}

// Graphical lasso through one solver per thread for small problems, so that repeated calls reuse
// its buffers (the per-call cost matters there); larger ones, whose buffers would stay allocated
// for the life of the thread, get a solver of their own.
void solve_glasso(const Eigen::Ref<const mg::Matrix>& S, double alpha, const mg::GlassoOptions& options,
                  const mg::Matrix* precision_init, mg::GlassoResult& result) {
  if (S.rows() <= 128) {
    static thread_local mg::GlassoSolver solver;
    solver.solve(S, alpha, options, precision_init, result);
  } else {
    mg::GlassoSolver solver;
    solver.solve(S, alpha, options, precision_init, result);
  }
}

// Finite and symmetric to 1e-10 relative, or std::invalid_argument (ValueError) naming `name`.
void check_covariance(const Eigen::Ref<const mg::Matrix>& S, const char* name) {
  const mg::Index p = S.rows();
  double amax = 0.0, asym = 0.0;
  bool finite = true;
  for (mg::Index j = 0; j < p; ++j)
    for (mg::Index i = j; i < p; ++i) {
      const double a = S(i, j), b = S(j, i);
      finite = finite && std::isfinite(a) && std::isfinite(b);
      amax = std::max(amax, std::max(std::abs(a), std::abs(b)));
      asym = std::max(asym, std::abs(a - b));
    }
  if (!finite) throw std::invalid_argument(std::string(name) + " contains NaN or infinite values");
  if (asym > 1e-10 * amax) {
    char msg[160];
    std::snprintf(msg, sizeof msg, "%s must be symmetric; got max |%s - %s.T| = %.3e > 1e-10 * max |%s|", name,
                  name, name, asym, name);
    throw std::invalid_argument(msg);
  }
}

py::dict glasso_dict(const mg::GlassoResult& r) {
  py::dict d;
  d["precision"] = r.precision;
  d["covariance"] = r.covariance;
  d["n_iter"] = r.n_iter;
  d["converged"] = r.converged;
  d["gap"] = r.gap;
  return d;
}

// The fit's hooks into Python. Ctrl-C: the core calls interrupt_check after every objective
// evaluation; at most every 50 ms it takes the GIL and runs the signal handlers, and a
// KeyboardInterrupt (or any exception of a handler) ends the fit and reaches the caller.
// callback(iteration, objective, gradient_norm) runs after every iteration with the GIL held. The
// Python objects are held through shared_ptrs, so copies of the options made without the GIL do
// not touch reference counts.
void install_hooks(mg::FitOptions& o, const py::object& callback, bool check_interrupts) {
  using clock = std::chrono::steady_clock;
  auto check = [last = std::make_shared<clock::time_point>(clock::now())] {
    const auto now = clock::now();
    if (now - *last < std::chrono::milliseconds(50)) return;
    *last = now;
    py::gil_scoped_acquire gil;
    if (PyErr_CheckSignals() != 0) throw py::error_already_set();
  };
  if (check_interrupts) o.interrupt_check = check;
  if (!callback.is_none()) {
    std::shared_ptr<py::object> fn(new py::object(callback), [](py::object* p) {
      py::gil_scoped_acquire gil;
      delete p;
    });
    o.callback = [fn](const mg::FitProgress& p) {
      py::gil_scoped_acquire gil;
      (*fn)(p.iteration, p.objective, p.gradient_norm);
    };
  }
}

// ρ for every dataset, or one ρ_k per dataset.
using Alpha = std::variant<double, std::vector<double>>;

mg::Penalty make_penalty(const Alpha& alpha) {
  if (const auto* rho = std::get_if<double>(&alpha)) return *rho;
  return mg::Penalty(std::get<std::vector<double>>(alpha));
}

// The coupling of the K networks as the Python layer passes it: (penalty, beta, fused_pairs), penalty one
// of "lasso", "fused", "group" and fused_pairs "all" or "chain".
using CouplingArgs = std::tuple<std::string, double, std::string>;

mg::Coupling make_coupling(const CouplingArgs& args) {
  const auto& [penalty, beta, pairs] = args;
  mg::Coupling c;
  if (penalty == "lasso") c.type = mg::CouplingType::None;
  else if (penalty == "fused") c.type = mg::CouplingType::Fused;
  else if (penalty == "group") c.type = mg::CouplingType::Group;
  else throw std::invalid_argument("penalty must be 'lasso', 'fused' or 'group'; got '" + penalty + "'");
  if (pairs == "all") c.pairs = mg::FusedPairs::All;
  else if (pairs == "chain") c.pairs = mg::FusedPairs::Chain;
  else throw std::invalid_argument("fused_pairs must be 'all' or 'chain'; got '" + pairs + "'");
  c.beta = beta;
  c.validate();
  return c;
}

mg::FitOptions fit_options(const Alpha& alpha, const CouplingArgs& coupling, const std::string& solver, int max_iter, double tol, double learning_rate,
                           mg::Index batch_size, std::uint64_t seed, const mg::GlassoOptions& glasso, int n_threads,
                           const py::object& callback, bool check_interrupts) {
  mg::FitOptions o;
  if (const auto* rho = std::get_if<double>(&alpha)) o.alpha = *rho;
  else o.dataset_alphas = std::get<std::vector<double>>(alpha);
  o.coupling = make_coupling(coupling);
  if (solver == "adam") o.solver = mg::Solver::Adam;
  else if (solver == "lbfgs") o.solver = mg::Solver::LBFGS;
  else throw std::invalid_argument("solver must be 'adam' or 'lbfgs'; got '" + solver + "'");
  o.max_iter = max_iter;
  o.tol = tol;
  o.learning_rate = learning_rate;
  o.batch_size = batch_size;
  o.seed = seed;
  o.n_threads = n_threads;
  o.glasso = glasso;
  install_hooks(o, callback, check_interrupts);
  return o;
}

py::dict fit_dict(const mg::FitResult& r) {
  py::dict d;
  d["components"] = r.components;
  d["precisions"] = r.precisions;
  d["covariances"] = r.covariances;
  d["noise_variances"] = r.noise_variances;
  d["objective"] = r.objective;
  d["objective_history"] = r.objective_history;
  d["gradient_norm"] = r.gradient_norm;
  d["n_iter"] = r.n_iter;
  d["converged"] = r.converged;
  py::list representations;
  for (const auto rep : r.representations) representations.append(mg::representation_name(rep));
  d["representations"] = representations;
  d["compression_rank"] = r.compression_rank;
  return d;
}

// The part every fit entry point shares: options and start from its arguments, then `fit(start, options)`
// without the GIL, and the result as a dict.
template <class Fit>
py::dict run_fit(const Alpha& alpha, const CouplingArgs& coupling, const std::string& init, const std::optional<mg::Matrix>& components,
                 mg::Index n_components, const std::string& solver, int max_iter, double tol, double learning_rate,
                 mg::Index batch_size, std::uint64_t seed, double glasso_tol, int glasso_max_iter,
                 bool penalize_diagonal, int n_threads, const py::object& callback, bool check_interrupts,
                 const Fit& fit) {
  const mg::FitOptions o = fit_options(alpha, coupling, solver, max_iter, tol, learning_rate, batch_size, seed,
                                       glasso_options(glasso_tol, glasso_max_iter, penalize_diagonal), n_threads,
                                       callback, check_interrupts);
  const mg::Start start = make_start(init, components, n_components, seed);
  mg::FitResult r;
  {
    py::gil_scoped_release release;
    r = fit(start, o);
  }
  return fit_dict(r);
}

// Python subclasses of CovarianceProducts. The core calls them from the thread that runs the fit, with
// the GIL released; each method takes it. project receives D as a (d, M) array and the list of dataset
// indices and returns one (S_k D, Dᵀ S_k D) pair per index.
class PyCovarianceProducts : public mg::CovarianceProducts {
 public:
  mg::Index n_datasets() const override {
    PYBIND11_OVERRIDE_PURE(mg::Index, mg::CovarianceProducts, n_datasets, );
  }
  mg::Index n_features() const override {
    PYBIND11_OVERRIDE_PURE(mg::Index, mg::CovarianceProducts, n_features, );
  }
  mg::Index dimension() const override { PYBIND11_OVERRIDE_PURE(mg::Index, mg::CovarianceProducts, dimension, ); }
  mg::Index n_samples(mg::Index k) const override {
    PYBIND11_OVERRIDE_PURE(mg::Index, mg::CovarianceProducts, n_samples, k);
  }
  double trace(mg::Index k) const override { PYBIND11_OVERRIDE_PURE(double, mg::CovarianceProducts, trace, k); }
  void project(const Eigen::Ref<const mg::Matrix>& D, const mg::Index* ks, mg::Index count, mg::Projection* const* out,
               int) const override {
    py::gil_scoped_acquire gil;
    const py::function override = py::get_override(static_cast<const mg::CovarianceProducts*>(this), "project");
    if (!override) throw std::runtime_error("CovarianceProducts.project is not implemented");
    const py::object result = override(mg::Matrix(D), std::vector<mg::Index>(ks, ks + count));
    const auto pairs = result.cast<std::vector<std::pair<mg::Matrix, mg::Matrix>>>();
    if (static_cast<mg::Index>(pairs.size()) != count)
      throw std::invalid_argument("CovarianceProducts.project must return one (S D, D^T S D) pair per dataset; got " +
                                  std::to_string(pairs.size()) + " for " + std::to_string(count));
    for (mg::Index i = 0; i < count; ++i) {
      out[i]->SD = pairs[static_cast<std::size_t>(i)].first;
      out[i]->DtSD = pairs[static_cast<std::size_t>(i)].second;
    }
  }
};

}  // namespace

PYBIND11_MODULE(_core, m) {
  m.doc() = "C++ core of metaglasso (Meta Graphical Lasso). Internal: use the metaglasso package.";
  m.attr("__version__") = METAGLASSO_VERSION_STRING;
  py::register_exception<mg::NumericalError>(m, "NumericalError", PyExc_ArithmeticError);

  m.def(
      "graphical_lasso",
      [](const mg::Matrix& S, double alpha, double tol, int max_iter, bool penalize_diagonal,
         std::optional<mg::Matrix> precision_init) {
        mg::GlassoResult r;
        {
          py::gil_scoped_release release;
          solve_glasso(S, alpha, glasso_options(tol, max_iter, penalize_diagonal),
                       precision_init ? &*precision_init : nullptr, r);
        }
        return glasso_dict(r);
      },
      py::arg("S"), py::arg("alpha"), py::arg("tol") = 1e-8, py::arg("max_iter") = 1000,
      py::arg("penalize_diagonal") = false, py::arg("precision_init") = py::none(),
      "Graphical lasso of a (p, p) covariance S. Returns a dict with precision, covariance, n_iter, converged, gap.");

  // The entry point of metaglasso.graphical_lasso: reads a C-ordered float64 array in place (S is
  // symmetric, so its C-ordered buffer is the matrix itself), checks it under the name the Python
  // function gives it, and returns a tuple without copying the results.
  m.def(
      "_graphical_lasso",
      [](const CArray& S_arr, double alpha, double tol, int max_iter, bool penalize_diagonal,
         std::optional<mg::Matrix> precision_init) {
        if (S_arr.ndim() != 2 || S_arr.shape(0) != S_arr.shape(1) || S_arr.shape(0) == 0)
          throw std::invalid_argument("emp_cov must be a non-empty square 2-D array");
        const auto p = static_cast<mg::Index>(S_arr.shape(0));
        const Eigen::Map<const mg::Matrix> S(S_arr.data(), p, p);
        check_covariance(S, "emp_cov");
        mg::GlassoResult r;
        {
          py::gil_scoped_release release;
          solve_glasso(S, alpha, glasso_options(tol, max_iter, penalize_diagonal),
                       precision_init ? &*precision_init : nullptr, r);
        }
        return py::make_tuple(py::cast(std::move(r.covariance)), py::cast(std::move(r.precision)), r.n_iter,
                              r.converged, r.gap);
      },
      py::arg("S"), py::arg("alpha"), py::arg("tol"), py::arg("max_iter"), py::arg("penalize_diagonal"),
      py::arg("precision_init"),
      "Internal: graphical lasso of a (p, p) float64 emp_cov. Returns (covariance, precision, n_iter, converged, "
      "gap).");

  m.def("glasso_duality_gap", &mg::glasso_duality_gap, py::arg("S"), py::arg("alpha"), py::arg("precision"),
        py::arg("penalize_diagonal") = false, "Duality gap of the graphical lasso at a (p, p) SPD precision.");
  m.def("glasso_objective", &mg::glasso_objective, py::arg("S"), py::arg("alpha"), py::arg("precision"),
        py::arg("penalize_diagonal") = false, "tr(S P) - log|P| + alpha * ||P||_1 for a (p, p) precision P.");

  m.def("polar_retraction", &mg::polar_retraction, py::arg("Z"), "Polar factor P Q^T of a (V, M) matrix Z = P S Q^T.");
  m.def("riemannian_gradient",
        static_cast<mg::Matrix (*)(const Eigen::Ref<const mg::Matrix>&, const Eigen::Ref<const mg::Matrix>&)>(
            &mg::riemannian_gradient),
        py::arg("D"), py::arg("G"),
        "Projection G - D sym(D^T G) of a (V, M) Euclidean gradient onto the tangent space at D.");
  m.def("random_initial_projection", &mg::random_initial_projection, py::arg("n_features"),
        py::arg("n_components"), py::arg("seed"), "Polar factor of a seeded uniform (V, M) matrix.");
  m.def(
      "splitmix64",
      [](std::uint64_t seed, std::size_t n) {
        mg::SplitMix64 rng(seed);
        std::vector<std::uint64_t> out(n);
        for (auto& v : out) v = rng.next();
        return out;
      },
      py::arg("seed"), py::arg("n"), "First n outputs of SplitMix64(seed).");

  m.def(
      "pca_initial_projection",
      [](const std::vector<CArray>& Xs, mg::Index n_components, bool assume_centered, int n_threads, bool compress) {
        mg::Matrix D;
        {
          py::gil_scoped_release release;
          const mg::DataList list = as_data_list(Xs);
          D = compress ? mg::pca_initial_projection_data(list, n_components, assume_centered, true, n_threads)
                       : mg::pca_initial_projection(list, n_components, assume_centered, n_threads);
        }
        return D;
      },
      py::arg("Xs"), py::arg("n_components"), py::arg("assume_centered") = false, py::arg("n_threads") = 0,
      py::arg("compress") = false,
      "Top-M eigenvectors (V, M) of the summed covariances of datasets given as (N_k, V) arrays: block Lanczos on "
      "the data operator or the sum N_k x sum N_k Gram matrix, whichever is estimated to be cheaper (centred "
      "arrays with N_k <= V are read in place), or with compress (and sum N_k < V) Lanczos in the span of the "
      "data after one Gram pass.");

  m.def(
      "profile_objective",
      [](const std::vector<CArray>& Xs, const mg::Matrix& D, const Alpha& alpha, bool assume_centered,
         double glasso_tol, int glasso_max_iter, bool penalize_diagonal, int n_threads, const CouplingArgs& coupling) {
        std::vector<mg::DatasetState> states;
        mg::Matrix grad;
        double f = 0.0;
        const mg::Penalty rho = make_penalty(alpha).coupled(make_coupling(coupling));
        {
          py::gil_scoped_release release;
          f = mg::profile_objective(make_datasets(Xs, assume_centered), D, rho,
                                    glasso_options(glasso_tol, glasso_max_iter, penalize_diagonal), states, &grad,
                                    n_threads);
        }
        return py::make_tuple(f, grad);
      },
      py::arg("Xs"), py::arg("D"), py::arg("alpha"), py::arg("assume_centered") = false,
      py::arg("glasso_tol") = 1e-12, py::arg("glasso_max_iter") = 10000, py::arg("penalize_diagonal") = true,
      py::arg("n_threads") = 0, py::arg("coupling") = CouplingArgs{"lasso", 0.0, "all"},
      "Profile objective f(D) and its (V, M) Riemannian gradient; alpha is one rho or one per dataset, coupling "
      "(penalty, beta, fused_pairs) the penalty that ties the K networks together.");

  m.def(
      "joint_graphical_lasso",
      [](const std::vector<mg::Matrix>& S, const std::vector<double>& alpha, const CouplingArgs& coupling,
         double tol, int max_iter, bool penalize_diagonal, std::optional<std::vector<mg::Matrix>> precisions_init) {
        std::vector<mg::GlassoResult> r;
        const mg::Coupling c = make_coupling(coupling);
        {
          py::gil_scoped_release release;
          r = mg::joint_graphical_lasso(S, alpha, c, glasso_options(tol, max_iter, penalize_diagonal),
                                        precisions_init ? &*precisions_init : nullptr);
        }
        std::vector<mg::Matrix> precisions, covariances;
        for (auto& x : r) {
          precisions.push_back(std::move(x.precision));
          covariances.push_back(std::move(x.covariance));
        }
        const bool converged = r.empty() || r.front().converged;
        return py::make_tuple(covariances, precisions, r.empty() ? 0 : r.front().n_iter, converged,
                              r.empty() ? 0.0 : r.front().gap);
      },
      py::arg("S"), py::arg("alpha"), py::arg("coupling"), py::arg("tol") = 1e-12, py::arg("max_iter") = 10000,
      py::arg("penalize_diagonal") = true, py::arg("precisions_init") = py::none(),
      "Joint graphical lasso of K (M, M) covariances, alpha one rho per matrix, coupling (penalty, beta, "
      "fused_pairs). Returns (covariances, precisions, n_iter, converged, residual).");
  m.def(
      "joint_glasso_objective",
      [](const std::vector<mg::Matrix>& S, const std::vector<double>& alpha, const std::vector<mg::Matrix>& P,
         const CouplingArgs& coupling, bool penalize_diagonal) {
        return mg::joint_glasso_objective(S, alpha, P, make_coupling(coupling), penalize_diagonal);
      },
      py::arg("S"), py::arg("alpha"), py::arg("precisions"), py::arg("coupling"), py::arg("penalize_diagonal") = true,
      "Objective of the joint graphical lasso at K (M, M) precisions.");
  m.def(
      "joint_glasso_residual",
      [](const std::vector<mg::Matrix>& S, const std::vector<double>& alpha, const std::vector<mg::Matrix>& P,
         const CouplingArgs& coupling, bool penalize_diagonal) {
        return mg::joint_glasso_residual(S, alpha, P, make_coupling(coupling), penalize_diagonal);
      },
      py::arg("S"), py::arg("alpha"), py::arg("precisions"), py::arg("coupling"), py::arg("penalize_diagonal") = true,
      "Optimality residual of the joint graphical lasso at K (M, M) precisions (0 at the solution).");

  m.def(
      "fit",
      [](const std::vector<CArray>& Xs, const Alpha& alpha, const CouplingArgs& coupling, const std::string& init,
         std::optional<mg::Matrix> components,
         mg::Index n_components, const std::string& solver, int max_iter, double tol, double learning_rate,
         mg::Index batch_size, std::uint64_t seed, bool assume_centered, const std::string& representation,
         bool compress, double glasso_tol, int glasso_max_iter, bool penalize_diagonal, int n_threads,
         const py::object& callback, bool check_interrupts) {
        mg::DataOptions data_options;
        data_options.assume_centered = assume_centered;
        data_options.representation = mg::parse_representation(representation);
        data_options.compress = compress;
        return run_fit(alpha, coupling, init, components, n_components, solver, max_iter, tol, learning_rate, batch_size, seed,
                       glasso_tol, glasso_max_iter, penalize_diagonal, n_threads, callback, check_interrupts,
                       [&](const mg::Start& start, const mg::FitOptions& o) {
                         return mg::fit_data(as_data_list(Xs), start, o, data_options);
                       });
      },
      py::arg("Xs"), py::arg("alpha"), py::arg("coupling") = CouplingArgs{"lasso", 0.0, "all"}, py::arg("init") = "pca", py::arg("components") = py::none(),
      py::arg("n_components") = 0, py::arg("solver") = "lbfgs", py::arg("max_iter") = 2000, py::arg("tol") = 1e-8,
      py::arg("learning_rate") = 1e-3, py::arg("batch_size") = 0, py::arg("seed") = 0,
      py::arg("assume_centered") = false, py::arg("representation") = "auto", py::arg("compress") = true,
      py::arg("glasso_tol") = 1e-12, py::arg("glasso_max_iter") = 10000, py::arg("penalize_diagonal") = true,
      py::arg("n_threads") = 0, py::arg("callback") = py::none(), py::arg("check_interrupts") = true,
      "Fit MGLASSO to datasets given as (N_k, V) arrays, alpha one rho or one per dataset, from init 'pca', "
      "'random' (n_components, seed) or 'given' (components (V, M)). callback(iteration, objective, gradient_norm) is called after every "
      "iteration; with check_interrupts, Ctrl-C ends the fit with KeyboardInterrupt. Returns a dict.");

  py::class_<mg::CovarianceProducts, PyCovarianceProducts>(
      m, "CovarianceProducts",
      "K covariances S_k seen only through the products the fit needs. Subclass it and implement n_datasets(), "
      "n_features(), dimension() (= n_features), n_samples(k), trace(k) and project(D, datasets), which returns a "
      "list with one (S_k D (d, M), D^T S_k D (M, M)) pair of float64 arrays per index k in datasets. The fit calls "
      "project once per evaluation of the objective, for every dataset it needs.")
      .def(py::init<>())
      .def("pca_start", &mg::CovarianceProducts::pca_start, py::arg("n_components"), py::arg("n_threads") = 0,
           py::call_guard<py::gil_scoped_release>(),
           "Top eigenvectors (d, n_components) of sum_k S_k by block Lanczos through project.");

  m.def(
      "fit_products",
      [](const mg::CovarianceProducts& products, const Alpha& alpha, const CouplingArgs& coupling,
         const std::string& init,
         std::optional<mg::Matrix> components, mg::Index n_components, const std::string& solver, int max_iter,
         double tol, double learning_rate, mg::Index batch_size, std::uint64_t seed, double glasso_tol,
         int glasso_max_iter, bool penalize_diagonal, int n_threads, const py::object& callback,
         bool check_interrupts) {
        return run_fit(alpha, coupling, init, components, n_components, solver, max_iter, tol, learning_rate, batch_size, seed,
                       glasso_tol, glasso_max_iter, penalize_diagonal, n_threads, callback, check_interrupts,
                       [&](const mg::Start& start, const mg::FitOptions& o) { return mg::fit(products, start, o); });
      },
      py::arg("products"), py::arg("alpha"), py::arg("coupling") = CouplingArgs{"lasso", 0.0, "all"}, py::arg("init") = "pca", py::arg("components") = py::none(),
      py::arg("n_components") = 0, py::arg("solver") = "lbfgs", py::arg("max_iter") = 2000, py::arg("tol") = 1e-8,
      py::arg("learning_rate") = 1e-3, py::arg("batch_size") = 0, py::arg("seed") = 0, py::arg("glasso_tol") = 1e-12,
      py::arg("glasso_max_iter") = 10000, py::arg("penalize_diagonal") = true, py::arg("n_threads") = 0,
      py::arg("callback") = py::none(), py::arg("check_interrupts") = true,
      "Fit MGLASSO to covariances given through a CovarianceProducts operator (callback and check_interrupts as "
      "for fit). Returns a dict.");

  m.def(
      "fit_covariances",
      [](const std::vector<CArray>& covariances, const std::vector<mg::Index>& n_samples, const Alpha& alpha,
         const CouplingArgs& coupling, const std::string& init, std::optional<mg::Matrix> components, mg::Index n_components,
         const std::string& solver, int max_iter, double tol, double learning_rate, mg::Index batch_size,
         std::uint64_t seed, double glasso_tol, int glasso_max_iter, bool penalize_diagonal, int n_threads,
         const py::object& callback, bool check_interrupts) {
        return run_fit(alpha, coupling, init, components, n_components, solver, max_iter, tol, learning_rate, batch_size, seed,
                       glasso_tol, glasso_max_iter, penalize_diagonal, n_threads, callback, check_interrupts,
                       [&](const mg::Start& start, const mg::FitOptions& o) {
                         return mg::fit_covariances(as_data_list(covariances), n_samples, start, o);
                       });
      },
      py::arg("covariances"), py::arg("n_samples"), py::arg("alpha"), py::arg("coupling") = CouplingArgs{"lasso", 0.0, "all"}, py::arg("init") = "pca",
      py::arg("components") = py::none(), py::arg("n_components") = 0, py::arg("solver") = "lbfgs",
      py::arg("max_iter") = 2000, py::arg("tol") = 1e-8, py::arg("learning_rate") = 1e-3, py::arg("batch_size") = 0,
      py::arg("seed") = 0, py::arg("glasso_tol") = 1e-12, py::arg("glasso_max_iter") = 10000,
      py::arg("penalize_diagonal") = true, py::arg("n_threads") = 0, py::arg("callback") = py::none(),
      py::arg("check_interrupts") = true,
      "Fit MGLASSO to (V, V) covariance matrices computed from n_samples samples each (callback and "
      "check_interrupts as for fit). Returns a dict.");

  m.def("default_n_threads", [] { return mg::resolve_threads(0); },
        "Threads a parallel region of the core uses when n_threads is not given: OpenMP's default for the "
        "calling thread (omp_get_max_threads(), which threadpoolctl's limits set), or 1 without OpenMP.");
  m.def("simd_instruction_set", &mg::simd_instruction_set,
        "Instruction set of the large products in this process: 'avx512', 'avx2' or 'baseline' (the widest the CPU "
        "supports unless the environment variable METAGLASSO_SIMD names a narrower one).");
}
