// The MGLASSO fit loop (paper Algorithm 1): for the current D, refit ε_k (eq. 16) and
// Λ_k (eq. 13) and move D on the Stiefel manifold along the Riemannian gradient (eq. 9),
// pulling back with the polar retraction (eqs. 7–8). Two solvers move D: Adam over mini-batches
// of datasets (the paper's stochastic gradient descent) and Riemannian L-BFGS on the profile
// objective f(D) = min_{Λ,ε} E.
#include "metaglasso/fit.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <exception>
#include <string>
#include <utility>

#include <Eigen/SVD>

#include "metaglasso/lanczos.hpp"
#include "metaglasso/random.hpp"
#include "kernels.hpp"

namespace metaglasso {

namespace {

// Parallel refits switch on above this V · M · (datasets) size (as profile_objective).
constexpr Index kParallelWork = 20000;

using detail::format_number;

void validate_options(const FitOptions& o) {
  if (!(o.alpha >= 0.0) || !std::isfinite(o.alpha))
    throw std::invalid_argument("alpha must be finite and >= 0; got " + format_number(o.alpha));
  if (o.max_iter < 1) throw std::invalid_argument("max_iter must be >= 1; got " + std::to_string(o.max_iter));
  if (!(o.tol >= 0.0) || !std::isfinite(o.tol))
    throw std::invalid_argument("tol must be finite and >= 0; got " + format_number(o.tol));
  if (!(o.learning_rate > 0.0) || !std::isfinite(o.learning_rate))
    throw std::invalid_argument("learning_rate must be finite and > 0; got " + format_number(o.learning_rate));
  if (!(o.beta1 >= 0.0 && o.beta1 < 1.0))
    throw std::invalid_argument("beta1 must be in [0, 1); got " + format_number(o.beta1));
  if (!(o.beta2 >= 0.0 && o.beta2 < 1.0))
    throw std::invalid_argument("beta2 must be in [0, 1); got " + format_number(o.beta2));
  if (!(o.adam_eps > 0.0) || !std::isfinite(o.adam_eps))
    throw std::invalid_argument("adam_eps must be finite and > 0; got " + format_number(o.adam_eps));
  if (o.batch_size < 0) throw std::invalid_argument("batch_size must be >= 0; got " + std::to_string(o.batch_size));
  o.coupling.validate();
  if (o.lbfgs_memory < 1)
    throw std::invalid_argument("lbfgs_memory must be >= 1; got " + std::to_string(o.lbfgs_memory));
  if (!(o.glasso.tol >= 0.0) || !std::isfinite(o.glasso.tol))
    throw std::invalid_argument("glasso tol must be finite and >= 0; got " + format_number(o.glasso.tol));
  if (o.glasso.max_iter < 1)
    throw std::invalid_argument("glasso max_iter must be >= 1; got " + std::to_string(o.glasso.max_iter));
}

void check_n_components(Index M, Index V) {
  if (M < 1 || M >= V)
    throw std::invalid_argument("n_components must satisfy 1 <= n_components < n_features; got n_components=" +
                                std::to_string(M) + ", n_features=" + std::to_string(V));
}

void validate(const CovarianceProducts& data, const Eigen::Ref<const Matrix>& D0, const FitOptions& o) {
  validate_products(data);
  o.penalty().validate(data.n_datasets());
  if (o.coupling.active() && o.solver == Solver::Adam && o.batch_size > 0 && o.batch_size < data.n_datasets())
    throw std::invalid_argument("batch_size must be 0 or at least the number of datasets (" +
                                std::to_string(data.n_datasets()) + ") with a fused or group penalty: it couples "
                                "the datasets, so every step refits all of them; got batch_size=" +
                                std::to_string(o.batch_size));
  const Index V = data.n_features(), d = data.dimension();
  if (D0.rows() != d)
    throw std::invalid_argument("D0 must have " + std::to_string(d) + " rows (the datasets' dimension); got shape (" +
                                std::to_string(D0.rows()) + ", " + std::to_string(D0.cols()) + ")");
  const Index M = D0.cols();
  check_n_components(M, V);
  if (M > d)
    throw std::invalid_argument("n_components must not exceed the datasets' dimension " + std::to_string(d) +
                                "; got " + std::to_string(M));
  const double orth = (D0.transpose() * D0 - Matrix::Identity(M, M)).norm();
  if (!(orth <= 1e-8))
    throw std::invalid_argument("D0 must have orthonormal columns; ||D0^T D0 - I||_F = " + format_number(orth));
  validate_options(o);
}

void check_given(const Matrix& D0, Index V) {
  if (D0.rows() != V)
    throw std::invalid_argument("the given start must have n_features=" + std::to_string(V) + " rows; got shape (" +
                                std::to_string(D0.rows()) + ", " + std::to_string(D0.cols()) + ")");
  check_n_components(D0.cols(), V);
  if (!D0.allFinite()) throw std::invalid_argument("the given start contains NaN or infinite values");
}

std::vector<Index> iota(Index K) {
  std::vector<Index> v(static_cast<std::size_t>(K));
  for (Index k = 0; k < K; ++k) v[static_cast<std::size_t>(k)] = k;
  return v;
}

// f(D) and its Riemannian gradient into preallocated storage (G, work: scratch).
double evaluate(const CovarianceProducts& data, const Matrix& D, const Penalty& rho, const FitOptions& o,
                const std::vector<Index>& all, std::vector<DatasetState>& states, Matrix& grad, Matrix& G,
                Matrix& work) {
  double f = refit_datasets(data, D, rho, o.glasso, all.data(), static_cast<Index>(all.size()), states, o.n_threads);
  for (const auto& s : states) f += s.objective;
  G.setZero();
  for (const auto& s : states) add_euclidean_gradient(s, G);
  riemannian_gradient(D, G, grad, work);
  return f;
}

// v ← P_D(v) = v − D sym(Dᵀ v): projection onto the tangent space at D (eq. 9 applied to v).
void project_tangent(const Matrix& D, Matrix& v, Matrix& work) {
  detail::gemm(true, 1.0, D, v, 0.0, work);
  detail::symmetrize_average(work);
  detail::gemm(false, -1.0, D, work, 1.0, v);
}

double inner(const Matrix& a, const Matrix& b) { return a.cwiseProduct(b).sum(); }

// f_units = Σ_k V log(tr S_k / V): E shifts by this much when a dataset's units change (X → cX with
// ρ → c²ρ adds V log c² to L_k and changes nothing else). Read once per fit (an operator's traces
// may be costly to ask for).
double objective_units(const CovarianceProducts& data) {
  double units = 0.0;
  const auto V = static_cast<double>(data.n_features());
  for (Index k = 0; k < data.n_datasets(); ++k) units += V * std::log(data.trace(k) / V);
  return units;
}

// The scale against which the stopping rules measure E: |f − f_units|, at least 1, so that the fit
// stops at the same iterate whatever the units.
double objective_scale(double units, double f) {
  const double scale = std::abs(f - units);
  return std::isfinite(scale) ? std::max(1.0, scale) : std::max(1.0, std::abs(f));
}

// Fills the result's per-dataset fields from the states at the final D.
void collect(const CovarianceProducts& data, const std::vector<DatasetState>& states, FitResult& r) {
  const std::size_t K = states.size();
  r.representations.clear();
  for (Index k = 0; k < data.n_datasets(); ++k) r.representations.push_back(data.representation(k));
  r.precisions.resize(K);
  r.covariances.resize(K);
  r.noise_variances.resize(static_cast<Index>(K));
  for (std::size_t k = 0; k < K; ++k) {
    // The returned Λ_k must be the graphical lasso's solution at D; its solver stops short only when
    // Dᵀ S_k D is too ill-conditioned for ρ (nearly singular with a tiny ρ).
    if (!states[k].glasso.converged)
      throw NumericalError("dataset " + std::to_string(k) + ": the graphical lasso of D^T S D did not converge at " +
                           "the final D (duality gap " + format_number(states[k].glasso.gap) +
                           "): D^T S D is too ill-conditioned for this alpha; use a larger alpha, "
                           "penalize_diagonal=True or fewer components");
    r.precisions[k] = states[k].glasso.precision;
    r.covariances[k] = states[k].glasso.covariance;
    r.noise_variances(static_cast<Index>(k)) = states[k].noise;
  }
}

// Adam (Kingma & Ba 2015) on the tangent space: the paper's SGD with adaptive step sizes. One
// step per mini-batch of datasets; each epoch visits the datasets in a fresh random order.
FitResult fit_adam(const CovarianceProducts& data, const Matrix& D0, const FitOptions& o) {
  const Index K = data.n_datasets();
  const Index V = D0.rows(), M = D0.cols();
  const Index B = (o.batch_size == 0 || o.batch_size >= K) ? K : o.batch_size;

  FitResult r;
  Matrix D = D0;
  Matrix m1 = Matrix::Zero(V, M), v2 = Matrix::Zero(V, M), G(V, M), g(V, M), Z(V, M), work(M, M);
  PolarRetraction retract;
  std::vector<DatasetState> states(static_cast<std::size_t>(K));
  SplitMix64 rng(o.seed);
  long long t = 0;
  const Penalty rho = o.penalty();
  const double units = objective_units(data);

  for (int epoch = 1; epoch <= o.max_iter; ++epoch) {
    const std::vector<Index> order = rng.permutation(K);  // drawn every epoch, even when B == K
    double epoch_loss = 0.0;
    for (Index begin = 0; begin < K; begin += B) {
      const Index end = std::min(begin + B, K);
      epoch_loss += refit_datasets(data, D, rho, o.glasso, order.data() + begin, end - begin, states, o.n_threads);
      G.setZero();
      for (Index i = begin; i < end; ++i) {  // sums in batch order
        const auto& s = states[static_cast<std::size_t>(order[static_cast<std::size_t>(i)])];
        epoch_loss += s.objective;
        add_euclidean_gradient(s, G);
      }
      riemannian_gradient(D, G, g, work);
      ++t;
      m1 = o.beta1 * m1 + (1.0 - o.beta1) * g;
      v2 = o.beta2 * v2 + (1.0 - o.beta2) * g.cwiseProduct(g);
      const double c1 = 1.0 - std::pow(o.beta1, static_cast<double>(t));
      const double c2 = 1.0 - std::pow(o.beta2, static_cast<double>(t));
      Z = D.array() - o.learning_rate * ((m1.array() / c1) / ((v2.array() / c2).sqrt() + o.adam_eps));
      retract(Z, D);
      if (o.interrupt_check) o.interrupt_check();
    }
    r.objective_history.push_back(epoch_loss);
    r.n_iter = epoch;
    if (o.callback) o.callback(FitProgress{epoch, epoch_loss, g.norm()});
    const auto n = r.objective_history.size();
    if (o.tol > 0.0 && epoch >= 2 &&
        std::abs(r.objective_history[n - 1] - r.objective_history[n - 2]) <=
            o.tol * objective_scale(units, r.objective_history[n - 1])) {
      r.converged = true;
      break;
    }
  }

  r.objective = evaluate(data, D, rho, o, iota(K), states, g, G, work);
  r.gradient_norm = g.norm();
  r.components = std::move(D);
  collect(data, states, r);
  return r;
}

// One stored L-BFGS pair: step s, gradient change y, ρ = 1 / sᵀy.
struct Pair {
  Matrix s, y;
  double rho = 0.0;
};

// Curvature of f along moves of each factor out of span D: moving column j of D by t·u, u a unit
// vector orthogonal to span D, changes f by t² h_j / 2 with
//   h_j ≈ 2 Σ_k [ (Dᵀ S_k D)_jj / ε_k + ε_k (Λ_k)_jj − 2 ]
// for a direction u of noise variance (uᵀ S_k u ≈ ε_k) — the second-order terms of eq. 6 through
// A_k = Dᵀ S_k D (the response of Λ_k and ε_k to first order is negligible there). Factors differ in
// it by orders of magnitude (a strong factor against a weak one), which one scalar step cannot
// follow; the out-of-span part of H₀ is therefore diag(1 / h_j), scaled as a whole by the newest pair.
// Values are floored at 1e-6 of the largest, so that a factor of no curvature does not get an
// unbounded step.
void out_of_span_curvature(const std::vector<DatasetState>& states, Vector& h) {
  const Index M = states.front().DtSD.rows();
  h.setZero(M);
  for (const auto& s : states)
    for (Index j = 0; j < M; ++j)
      h(j) += 2.0 * (s.DtSD(j, j) / s.noise + s.noise * s.glasso.precision(j, j) - 2.0);
  const double floor = 1e-6 * std::max(h.maxCoeff(), 0.0);
  for (Index j = 0; j < M; ++j) h(j) = std::isfinite(h(j)) && h(j) > floor ? h(j) : floor;
  if (!(floor > 0.0)) h.setOnes();  // no usable curvature: the identity
}

// q ← H₀ q for the initial inverse Hessian of the two-loop recursion. A tangent vector at D
// splits into a rotation inside span D, D Dᵀq (Dᵀq is skew), and a move out of it,
// (I − D Dᵀ) q. The two have very different curvatures: rotations inside the span change E
// only through the ℓ1 penalty (not at all when ρ = 0), moves out of it through the data. H₀ is
// therefore γ_in on the first and γ_out · diag(1 / h_j) on the second (h: out_of_span_curvature),
// γ_in the Barzilai–Borwein ratio sᵀy / yᵀy of the first component of the newest pair and γ_out
// its preconditioned ratio sᵀy / yᵀ diag(1/h) y for the second; a component that is negligible or
// of non-positive curvature uses the ratio of the whole pair.
// s_out, y_out (d, M) and w (M): scratch kept by the caller between iterations.
void apply_initial_hessian(const Matrix& D, const Pair& last, const Vector& h, Matrix& q, Matrix& work,
                           Matrix& s_out, Matrix& y_out, Vector& w) {
  const double gamma = 1.0 / (last.rho * last.y.squaredNorm());
  auto ratio = [gamma](double sy, double yy, double s_norm, double y_norm, double s_part, double y_part) {
    if (s_part <= 1e-8 * s_norm || y_part <= 1e-8 * y_norm) return gamma;
    const double g = sy / yy;
    return g > 0.0 && std::isfinite(g) ? g : gamma;
  };
  const Index M = D.cols();
  w = h.cwiseInverse();
  // Components of s and y inside the span (D Dᵀ·), out of it, and their inner products.
  Matrix Ds(M, M), Dy(M, M);
  detail::gemm(true, 1.0, D, last.s, 0.0, Ds);
  detail::gemm(true, 1.0, D, last.y, 0.0, Dy);
  s_out = last.s;
  y_out = last.y;
  detail::gemm(false, -1.0, D, Ds, 1.0, s_out);
  detail::gemm(false, -1.0, D, Dy, 1.0, y_out);
  const double s2 = last.s.squaredNorm(), y2 = last.y.squaredNorm();
  const double s2_in = Ds.squaredNorm(), y2_in = Dy.squaredNorm(), sy_in = Ds.cwiseProduct(Dy).sum();
  double ywy_out = 0.0;
  for (Index j = 0; j < M; ++j) ywy_out += w(j) * y_out.col(j).squaredNorm();
  const double gamma_in =
      ratio(sy_in, y2_in, std::sqrt(s2), std::sqrt(y2), std::sqrt(s2_in), std::sqrt(y2_in));
  const double gamma_out = ratio(s_out.cwiseProduct(y_out).sum(), ywy_out, std::sqrt(s2), std::sqrt(y2),
                                 s_out.norm(), y_out.norm());
  // q ← γ_in D Dᵀ q + γ_out (I − D Dᵀ) q diag(w).
  detail::gemm(true, 1.0, D, q, 0.0, work);
  detail::gemm(false, -1.0, D, work, 1.0, q);  // q is now its out-of-span part
  for (Index j = 0; j < M; ++j) q.col(j) *= gamma_out * w(j);
  detail::gemm(false, gamma_in, D, work, 1.0, q);
}

// Riemannian L-BFGS (Huang, Gallivan & Absil 2015, with projection as vector transport) on
// the profile objective f(D), with an Armijo line search along the polar retraction.
FitResult fit_lbfgs(const CovarianceProducts& data, const Matrix& D0, const FitOptions& o) {
  constexpr double kArmijo = 1e-4;      // sufficient-decrease constant c1
  constexpr int kMaxTrials = 40;        // line-search evaluations per iteration
  constexpr double kCurvature = 1e-10;  // pairs with sᵀy ≤ kCurvature ‖s‖‖y‖ are skipped
  constexpr double kStationary = 1e-10;  // ‖grad f‖ ≤ kStationary · max(1, |f|) is stationary
  constexpr double kStationaryRelative = 1e-7;  // … or ‖grad f‖ ≤ this · ‖Euclidean gradient‖ once no step helps
  const Index V = D0.rows(), M = D0.cols();
  const auto memory = static_cast<std::size_t>(o.lbfgs_memory);

  const std::vector<Index> all = iota(data.n_datasets());
  const Penalty rho = o.penalty();

  FitResult r;
  Matrix D = D0, g(V, M), D_trial(V, M), g_trial(V, M), p(V, M), q(V, M), Z(V, M), work(M, M), G(V, M);
  PolarRetraction retract;
  std::vector<DatasetState> states(all.size()), trial_states(all.size());
  std::vector<Pair> pairs;
  pairs.reserve(memory);
  std::vector<double> alphas(memory);
  Pair spare;
  Vector curvature, weights;
  Matrix s_out, y_out;  // scratch of apply_initial_hessian

  double f = evaluate(data, D, rho, o, all, states, g, G, work);
  double G_norm = G.norm(), G_norm_trial = G_norm;  // ‖Euclidean gradient‖ at D and at the trial
  if (!std::isfinite(f)) throw NumericalError("objective is not finite at D0");
  r.objective_history.push_back(f);
  const double g0_norm = g.norm();
  // The gradient must drop by sqrt(tol), or to where a unit step in D changes f by a relative
  // kStationary — below the accuracy of f itself (the inner glassos are solved to about 1e-12), so
  // a start that is already stationary to working precision is recognised as such.
  const double units = objective_units(data);
  const double stationary = kStationary * objective_scale(units, f);
  const double g_target = std::max(std::sqrt(o.tol) * g0_norm, stationary);
  double g_norm = g0_norm;
  r.converged = g0_norm <= stationary;

  bool steepest = true;  // first iteration or after a reset: p = −g, τ₀ = min(1, 1/‖g‖)
  while (!r.converged && r.n_iter < o.max_iter) {
    // Search direction by the two-loop recursion with the block-scaled H₀ above.
    if (!steepest && !pairs.empty()) {
      q = g;
      for (std::size_t i = pairs.size(); i-- > 0;) {
        alphas[i] = pairs[i].rho * inner(pairs[i].s, q);
        q -= alphas[i] * pairs[i].y;
      }
      out_of_span_curvature(states, curvature);
      apply_initial_hessian(D, pairs.back(), curvature, q, work, s_out, y_out, weights);
      for (std::size_t i = 0; i < pairs.size(); ++i) {
        const double beta = pairs[i].rho * inner(pairs[i].y, q);
        q += (alphas[i] - beta) * pairs[i].s;
      }
      p = -q;
      project_tangent(D, p, work);
      const double slope = inner(g, p);
      if (!(slope < 0.0) || !p.allFinite()) steepest = true;  // not a descent direction: reset
    } else {
      steepest = true;
    }
    if (steepest) {
      pairs.clear();
      p = -g;
    }

    // Armijo backtracking along τ ↦ polar(D + τ p) with safeguarded quadratic interpolation.
    // Trials warm-start the glasso from the accepted precisions.
    const double slope = inner(g, p);
    const double p_norm = p.norm();
    double tau = steepest ? std::min(1.0, 1.0 / g_norm) : 1.0;
    bool accepted = false;
    double f_trial = f;
    for (int trial = 0; trial < kMaxTrials && tau * p_norm > 1e-15; ++trial) {
      Z = D + tau * p;
      retract(Z, D_trial);
      for (std::size_t k = 0; k < states.size(); ++k)  // warm starts of the trial's glassos
        trial_states[k].glasso.precision = states[k].glasso.precision;
      f_trial = evaluate(data, D_trial, rho, o, all, trial_states, g_trial, G, work);
      G_norm_trial = G.norm();
      if (o.interrupt_check) o.interrupt_check();
      if (std::isfinite(f_trial) && f_trial <= f + kArmijo * tau * slope) {
        accepted = true;
        break;
      }
      double next = 0.1 * tau;
      if (std::isfinite(f_trial)) {
        const double curvature = 2.0 * (f_trial - f - slope * tau);
        if (curvature > 0.0) next = -slope * tau * tau / curvature;
      }
      tau = std::clamp(next, 0.1 * tau, 0.5 * tau);
    }

    if (!accepted) {
      if (!steepest) {  // retry once from steepest descent with an empty memory
        steepest = true;
        continue;
      }
      // No step decreases f at working precision. Converged if the gradient test holds, or if the
      // gradient is stationary to working precision relative to its size before the projection onto
      // the tangent space (a start that was already converged, e.g. a warm start, cannot reduce its
      // gradient by √tol again).
      r.converged = g_norm <= g_target || g_norm <= kStationaryRelative * G_norm;
      break;
    }

    // New pair at D_trial: s = P(τ p), y = g_new − P(g_old); older pairs are transported by
    // projection onto the new tangent space.
    Pair pair = std::move(spare);
    pair.s = tau * p;
    project_tangent(D_trial, pair.s, work);
    pair.y = g;
    project_tangent(D_trial, pair.y, work);
    pair.y = g_trial - pair.y;
    for (auto& old : pairs) {
      project_tangent(D_trial, old.s, work);
      project_tangent(D_trial, old.y, work);
    }
    std::size_t n_kept = 0;  // pairs whose transported curvature is still positive
    for (std::size_t i = 0; i < pairs.size(); ++i) {
      const double sy = inner(pairs[i].s, pairs[i].y);
      if (sy > kCurvature * pairs[i].s.norm() * pairs[i].y.norm()) {
        pairs[i].rho = 1.0 / sy;
        if (i != n_kept) std::swap(pairs[i], pairs[n_kept]);
        ++n_kept;
      }
    }
    pairs.resize(n_kept);
    const double sy = inner(pair.s, pair.y);
    if (sy > kCurvature * pair.s.norm() * pair.y.norm()) {
      pair.rho = 1.0 / sy;
      if (pairs.size() == memory) {
        spare = std::move(pairs.front());
        pairs.erase(pairs.begin());
      }
      pairs.push_back(std::move(pair));
    } else {
      spare = std::move(pair);
    }

    const double f_prev = f;
    std::swap(D, D_trial);
    std::swap(g, g_trial);
    G_norm = G_norm_trial;
    std::swap(states, trial_states);
    f = f_trial;
    g_norm = g.norm();
    steepest = false;
    ++r.n_iter;
    r.objective_history.push_back(f);
    if (o.callback) o.callback(FitProgress{r.n_iter, f, g_norm});
    if (f_prev - f <= o.tol * objective_scale(units, f) && g_norm <= g_target) r.converged = true;
  }

  r.objective = f;
  r.gradient_norm = g_norm;
  r.components = std::move(D);
  collect(data, states, r);
  return r;
}

}  // namespace

FitResult fit(const CovarianceProducts& data, const Eigen::Ref<const Matrix>& D0, const FitOptions& options) {
  validate(data, D0, options);
  const Matrix D = D0;
  FitResult r = options.solver == Solver::Adam ? fit_adam(data, D, options) : fit_lbfgs(data, D, options);
  canonicalize(r);
  return r;
}

void canonicalize(FitResult& r) {
  Matrix& D = r.components;
  const Index M = D.cols();
  Vector v = Vector::Zero(M);
  for (const auto& C : r.covariances) {
    if (C.rows() != M || C.cols() != M)
      throw std::invalid_argument("canonicalize: covariances must be (M, M) with M = components.cols() = " +
                                  std::to_string(M));
    v += C.diagonal();
  }
  for (const auto& P : r.precisions)
    if (P.rows() != M || P.cols() != M)
      throw std::invalid_argument("canonicalize: precisions must be (M, M) with M = components.cols() = " +
                                  std::to_string(M));
  std::vector<Index> order = iota(M);
  std::stable_sort(order.begin(), order.end(), [&v](Index a, Index b) { return v(a) > v(b); });
  Vector signs(M);
  for (Index j = 0; j < M; ++j) {
    const auto column = D.col(order[static_cast<std::size_t>(j)]);
    Index top = 0;
    for (Index i = 1; i < column.size(); ++i)
      if (std::abs(column(i)) > std::abs(column(top))) top = i;
    signs(j) = column(top) < 0.0 ? -1.0 : 1.0;
  }
  Matrix out(D.rows(), M);
  for (Index j = 0; j < M; ++j) out.col(j) = signs(j) * D.col(order[static_cast<std::size_t>(j)]);
  D = std::move(out);
  auto permute = [&](std::vector<Matrix>& mats) {
    for (auto& A : mats) {
      Matrix B(M, M);
      for (Index b = 0; b < M; ++b)
        for (Index a = 0; a < M; ++a)
          B(a, b) = signs(a) * signs(b) * A(order[static_cast<std::size_t>(a)], order[static_cast<std::size_t>(b)]);
      A = std::move(B);
    }
  };
  permute(r.precisions);
  permute(r.covariances);
}

FitResult fit(const std::vector<Dataset>& data, const Eigen::Ref<const Matrix>& D0, const FitOptions& options) {
  return fit(DatasetProducts(data), D0, options);
}

Start Start::pca(Index m) {
  Start s;
  s.method = Method::PCA;
  s.n_components = m;
  return s;
}

Start Start::random(Index m, std::uint64_t seed) {
  Start s;
  s.method = Method::Random;
  s.n_components = m;
  s.seed = seed;
  return s;
}

Start Start::given(Matrix D0) {
  Start s;
  s.method = Method::Given;
  s.n_components = D0.cols();
  s.components = std::move(D0);
  return s;
}

Matrix initial_projection(const CovarianceProducts& data, const Start& start, int n_threads) {
  validate_products(data);
  const Index V = data.n_features(), d = data.dimension();
  switch (start.method) {
    case Start::Method::PCA:
      check_n_components(start.n_components, V);
      return data.pca_start(start.n_components, n_threads);
    case Start::Method::Random:
      if (d != V)
        throw std::invalid_argument("a random start needs datasets in feature coordinates (dimension " +
                                    std::to_string(d) + " != n_features " + std::to_string(V) + ")");
      return random_initial_projection(V, start.n_components, start.seed);
    case Start::Method::Given:
      break;
  }
  if (start.components.rows() != d)
    throw std::invalid_argument("the given start must have " + std::to_string(d) + " rows; got shape (" +
                                std::to_string(start.components.rows()) + ", " +
                                std::to_string(start.components.cols()) + ")");
  const Index M = start.components.cols();
  check_n_components(M, V);
  if (M > d)
    throw std::invalid_argument("n_components must not exceed the datasets' dimension " + std::to_string(d) +
                                "; got " + std::to_string(M));
  if (!start.components.allFinite()) throw std::invalid_argument("the given start contains NaN or infinite values");
  const Eigen::JacobiSVD<Matrix> svd(start.components);
  const Vector sv = svd.singularValues();
  if (!(sv(M - 1) > 1e-12 * sv(0)))
    throw std::invalid_argument("the given start must have linearly independent columns; singular values " +
                                format_number(sv(0)) + " ... " + format_number(sv(M - 1)));
  return polar_retraction(start.components);
}

Matrix initial_projection(const std::vector<Dataset>& data, const Start& start, int n_threads) {
  return initial_projection(DatasetProducts(data), start, n_threads);
}

FitResult fit(const CovarianceProducts& data, const Start& start, const FitOptions& options) {
  validate_options(options);
  return fit(data, initial_projection(data, start, options.n_threads), options);
}

FitResult fit(const std::vector<Dataset>& data, const Start& start, const FitOptions& options) {
  return fit(DatasetProducts(data), start, options);
}

namespace {

Index total_samples(const DataList& Xs) {
  Index total = 0;
  for (const auto& X : Xs) total += X.cols();
  return total;
}

std::vector<Dataset> make_datasets(const DataList& Xs, bool assume_centered, Representation representation,
                                   int n_threads) {
  std::vector<Dataset> data;
  data.reserve(Xs.size());
  for (const auto& X : Xs) data.push_back(Dataset::from_data(X, assume_centered, representation, n_threads));
  return data;
}

}  // namespace

FitResult fit_data(const DataList& Xs, const Start& start, const FitOptions& options, const DataOptions& data_options) {
  validate_data(Xs);
  validate_options(options);
  const Index V = Xs.front().rows(), M = start.size();
  check_n_components(M, V);
  if (start.method == Start::Method::Given) check_given(start.components, V);
  const Index total = total_samples(Xs);
  bool all_data = true;
  for (const auto& X : Xs)
    all_data = all_data && (data_options.representation == Representation::Data ||
                            (data_options.representation == Representation::Auto && X.cols() <= V));
  if (data_options.compress && options.solver == Solver::LBFGS && all_data && total < V) {
    const DataSpan span(Xs, data_options.assume_centered, data_options.rank_tolerance, options.n_threads,
                        options.interrupt_check);
    if (M < span.rank()) {
      Matrix E0;
      switch (start.method) {
        case Start::Method::PCA:
          E0 = span.pca_start(Xs, M, options.n_threads);
          break;
        case Start::Method::Random:
          E0 = span.project_start(Xs, random_initial_projection(V, M, start.seed), options.n_threads);
          break;
        case Start::Method::Given:
          E0 = span.project_start(Xs, start.components, options.n_threads);
          break;
      }
      FitResult r = fit(span.datasets(), E0, options);
      // D = B E, re-orthonormalised (B is orthonormal to rounding; the polar factor makes DᵀD = I
      // to working precision).
      r.components = polar_retraction(span.to_features(Xs, r.components, options.n_threads));
      r.compression_rank = span.rank();
      canonicalize(r);  // the signs in the V features, not in span coordinates
      return r;
    }
  }
  const std::vector<Dataset> data = make_datasets(Xs, data_options.assume_centered, data_options.representation,
                                                  options.n_threads);
  return fit(data, start, options);
}

FitResult fit_covariances(const DataList& covariances, const std::vector<Index>& n_samples, const Start& start,
                          const FitOptions& options) {
  if (covariances.size() != n_samples.size())
    throw std::invalid_argument("n_samples must have one entry per covariance; got " +
                                std::to_string(n_samples.size()) + " for " + std::to_string(covariances.size()) +
                                " covariances");
  validate_options(options);
  std::vector<Dataset> data;
  data.reserve(covariances.size());
  for (std::size_t k = 0; k < covariances.size(); ++k) data.push_back(Dataset::from_covariance(covariances[k], n_samples[k]));
  return fit(data, start, options);
}

Matrix pca_initial_projection_data(const DataList& Xs, Index m, bool assume_centered, bool compress, int n_threads) {
  validate_data(Xs);
  const Index V = Xs.front().rows();
  check_n_components(m, V);
  if (compress && total_samples(Xs) < V) {
    const DataSpan span(Xs, assume_centered, 1e-12, n_threads);
    if (m < span.rank()) return polar_retraction(span.to_features(Xs, span.pca_start(Xs, m, n_threads), n_threads));
  }
  return pca_initial_projection(make_datasets(Xs, assume_centered, Representation::Auto, n_threads), m, n_threads);
}

}  // namespace metaglasso
