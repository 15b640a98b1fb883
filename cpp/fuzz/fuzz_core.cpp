// Fuzz target of the metaglasso core: decodes the input bytes into a small problem for one entry
// point (the graphical lasso, the reusable solver, the gap and objective, the datasets and their
// projections, the data span, a short fit) and checks the contracts of the headers, not only the
// absence of crashes:
//   * invalid input (non-finite or asymmetric matrices, negative or non-finite penalties and
//     tolerances, wrong shapes) must throw std::invalid_argument;
//   * valid input may throw metaglasso::NumericalError where the headers allow it, and otherwise
//     must give finite results with the documented properties (a symmetric positive definite
//     precision, the KKT conditions when converged, orthonormal components, ...);
//   * any other exception, or a violated property, aborts with a message.
// Sizes are bounded (at most 24 variables, 32 samples per dataset), so that one input runs in
// milliseconds. The same function is run by libFuzzer (run.sh) and by replay_main.cpp, which
// replays the regression inputs and the seed corpus in the unit tests.
#include <Eigen/Cholesky>
#include <Eigen/Eigenvalues>
#include <Eigen/QR>
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <limits>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "metaglasso/metaglasso.hpp"

namespace {

using namespace metaglasso;

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kInf = std::numeric_limits<double>::infinity();

std::string last_exception;  // message of the last exception caught by guarded()
std::string context;         // the problem under test, printed with a violation

std::string num(double x);

[[noreturn]] void fail(const char* target, const std::string& what) {
  std::fprintf(stderr, "contract violated [%s]: %s\n", target, what.c_str());
  if (!last_exception.empty()) std::fprintf(stderr, "last exception: %s\n", last_exception.c_str());
  if (!context.empty()) std::fprintf(stderr, "problem:\n%s\n", context.c_str());
  std::fflush(stderr);
  std::abort();
}

std::string num(double x) {
  char buf[40];
  std::snprintf(buf, sizeof buf, "%.17g", x);
  return buf;
}

/// Reads the input front to back; past its end every read gives zero.
class Bytes {
 public:
  Bytes(const std::uint8_t* data, std::size_t size) : p_(data), n_(size) {}
  std::uint8_t u8() { return i_ < n_ ? p_[i_++] : 0; }
  std::uint16_t u16() { return static_cast<std::uint16_t>(u8() | (u8() << 8)); }
  std::uint64_t u64() {
    std::uint64_t v = 0;
    for (int b = 0; b < 8; ++b) v |= static_cast<std::uint64_t>(u8()) << (8 * b);
    return v;
  }
  double raw() {
    const std::uint64_t bits = u64();
    double x;
    std::memcpy(&x, &bits, sizeof x);
    return x;
  }
  /// An integer in [lo, hi].
  int range(int lo, int hi) { return lo + static_cast<int>(u8() % static_cast<unsigned>(hi - lo + 1)); }
  bool flag() { return (u8() & 1) != 0; }

 private:
  const std::uint8_t* p_;
  std::size_t n_;
  std::size_t i_ = 0;
};

/// Value styles: kSane draws moderate numbers; kWild mixes in raw bit patterns, zeros, denormals,
/// huge and tiny magnitudes, NaN and infinities.
enum Style { kSane = 0, kWild = 1 };

double special(Bytes& in) {
  switch (in.u8() % 12) {
    case 0: return in.raw();
    case 1: return 0.0;
    case 2: return -0.0;
    case 3: return std::numeric_limits<double>::denorm_min() * (1 + in.u8());
    case 4: return std::numeric_limits<double>::max() / (1 + in.u8());
    case 5: return -1e300;
    case 6: return 1e-300;
    case 7: return 1e154;
    case 8: return kNaN;
    case 9: return kInf;
    case 10: return -kInf;
    default: return std::ldexp(1.0 + in.u8() / 256.0, static_cast<int>(static_cast<std::int8_t>(in.u8())) * 4);
  }
}

double value(Bytes& in, Style style) {
  if (style == kWild && in.u8() >= 224) return special(in);
  return static_cast<double>(static_cast<std::int16_t>(in.u16())) / 4096.0;
}

/// (rows, cols) matrix of values, then structural edits: duplicated columns and rows, constant
/// rows (variables), a zero matrix, a power-of-two scaling (exact unless it over- or underflows).
Matrix matrix(Bytes& in, Index rows, Index cols, Style style) {
  Matrix A(rows, cols);
  for (Index j = 0; j < cols; ++j)
    for (Index i = 0; i < rows; ++i) A(i, j) = value(in, style);
  const int edits = in.range(0, 3);
  for (int e = 0; e < edits; ++e) {
    const std::uint8_t op = in.u8();
    const Index a = in.u8(), b = in.u8();
    switch (op % 6) {
      case 0: A.col(a % cols) = A.col(b % cols); break;
      case 1: A.row(a % rows) = A.row(b % rows); break;
      case 2: A.row(a % rows).setConstant(value(in, style)); break;
      case 3: A.setZero(); break;
      case 4: A *= std::ldexp(1.0, static_cast<int>(static_cast<std::int8_t>(in.u8())) * (style == kWild ? 8 : 1)); break;
      default: break;  // none
    }
  }
  return A;
}

/// Exactly symmetric S = Xc Xcᵀ / N (+ ridge) from data X (p, N), Xc centred.
Matrix covariance_of(const Matrix& X, double ridge) {
  const Matrix Xc = X.colwise() - X.rowwise().mean();
  Matrix S = Xc * Xc.transpose() / static_cast<double>(X.cols());
  S = (0.5 * (S + S.transpose())).eval();
  S.diagonal().array() += ridge;
  return S;
}

double max_abs_offdiag(const Matrix& S) {
  double m = 0.0;
  for (Index j = 0; j < S.cols(); ++j)
    for (Index i = 0; i < S.rows(); ++i)
      if (i != j) m = std::max(m, std::abs(S(i, j)));
  return m;
}

double penalty(Bytes& in, const Matrix& S, bool& valid) {
  const double scale = std::max(max_abs_offdiag(S), S.cwiseAbs().maxCoeff() * 1e-3);
  double rho;
  switch (in.u8() % 12) {
    case 0: rho = 0.0; break;
    case 1: rho = -0.01 * (1 + in.u8()); break;
    case 2: rho = kNaN; break;
    case 3: rho = kInf; break;
    case 4: rho = std::numeric_limits<double>::denorm_min(); break;
    case 5: rho = 1e300; break;
    case 6: rho = scale * 1.5; break;  // above every |S_ij|: diagonal answer
    default: rho = scale * (1 + in.u8()) / 256.0; break;
  }
  valid = std::isfinite(rho) && rho >= 0.0;
  return rho;
}

bool symmetric_exactly(const Matrix& A) { return (A - A.transpose()).cwiseAbs().maxCoeff() == 0.0; }

bool all_finite(const Matrix& A) { return A.allFinite(); }

bool positive_definite(const Matrix& A) {
  Eigen::LLT<Matrix> llt(A);
  return llt.info() == Eigen::Success && llt.matrixLLT().diagonal().allFinite() &&
         (llt.matrixLLT().diagonal().array() > 0.0).all();
}

/// Condition number of a symmetric positive definite matrix (inf when it is not).
double condition(const Matrix& A) {
  Eigen::SelfAdjointEigenSolver<Matrix> es(A, Eigen::EigenvaluesOnly);
  if (es.info() != Eigen::Success) return kInf;
  const double lo = es.eigenvalues().minCoeff(), hi = es.eigenvalues().maxCoeff();
  return lo > 0.0 ? hi / lo : kInf;
}

/// Largest KKT violation at (Θ, W), relative to √(w_ii w_jj) as the solver measures it.
double kkt_relative(const Matrix& S, double rho, const Matrix& P, const Matrix& W, bool penalize_diagonal) {
  double v = 0.0;
  for (Index j = 0; j < S.cols(); ++j)
    for (Index i = 0; i < S.rows(); ++i) {
      const double r = W(i, j) - S(i, j);
      double res;
      if (i == j) res = std::abs(r - (penalize_diagonal ? rho : 0.0));
      else if (P(i, j) != 0.0) res = std::abs(r - rho * (P(i, j) > 0 ? 1.0 : -1.0));
      else res = std::abs(r) - rho;
      v = std::max(v, res / (std::sqrt(W(i, i)) * std::sqrt(W(j, j))));  // W_ii W_jj may underflow
    }
  return v;
}

/// Runs `f`; an exception of another type than the allowed ones is a violation. Returns the kind
/// caught: 0 none, 1 std::invalid_argument, 2 NumericalError.
template <class F>
int guarded(const char* target, F&& f) {
  last_exception.clear();
  try {
    f();
    return 0;
  } catch (const std::invalid_argument& e) {
    last_exception = e.what();
    return 1;
  } catch (const NumericalError& e) {
    last_exception = e.what();
    return 2;
  } catch (const std::exception& e) {
    fail(target, std::string("unexpected exception: ") + e.what());
  } catch (...) {
    fail(target, "unexpected non-standard exception");
  }
}

void expect_invalid(const char* target, int caught, const std::string& why) {
  if (caught != 1) fail(target, "expected std::invalid_argument for " + why + "; got " +
                                    (caught == 0 ? std::string("a result") : std::string("NumericalError")));
}

/// The checks every returned glasso result must pass; `strict` problems (well scaled, well
/// conditioned) must also converge.
void check_glasso_result(const char* target, const Matrix& S, double rho, const GlassoOptions& o,
                         const GlassoResult& r, bool strict) {
  const Index p = S.rows();
  if (r.precision.rows() != p || r.precision.cols() != p || r.covariance.rows() != p || r.covariance.cols() != p)
    fail(target, "result has the wrong shape");
  if (!all_finite(r.precision)) fail(target, "precision is not finite");
  if (!all_finite(r.covariance)) fail(target, "covariance is not finite");
  if (!symmetric_exactly(r.precision)) fail(target, "precision is not symmetric");
  if (!symmetric_exactly(r.covariance)) fail(target, "covariance is not symmetric");
  if (!positive_definite(r.precision)) {
    // A precision singular to working precision (S singular and ρ near 0) may pass one Cholesky
    // factorisation and fail another: it must pass the library's own, and be that singular.
    Eigen::SelfAdjointEigenSolver<Matrix> es(r.precision, Eigen::EigenvaluesOnly);
    const double hi = es.eigenvalues().cwiseAbs().maxCoeff(), lo = es.eigenvalues().minCoeff();
    const bool singular = lo <= 1e-14 * static_cast<double>(p) * hi;
    if (!singular || !std::isfinite(glasso_objective(S, rho, r.precision, o.penalize_diagonal)))
      fail(target, "precision is not positive definite");
  }
  if (r.n_iter < 0) fail(target, "negative n_iter");
  if (strict && !r.converged && o.tol >= 1e-10)
    fail(target, "a well-conditioned problem did not converge (n_iter " + std::to_string(r.n_iter) + ", gap " +
                     num(r.gap) + ")");
  if (!r.converged || rho == 0.0) return;  // ρ = 0: the exact inverse S⁻¹
  if (!(r.gap <= o.tol * static_cast<double>(p)))
    fail(target, "converged with gap " + num(r.gap) + " > tol * p = " + num(o.tol * static_cast<double>(p)));
  // W Θ = I to the accuracy of an inversion, then the KKT conditions on the returned W to the
  // solver's tolerance.
  const double cond = condition(r.precision);
  if (cond > 1e10) return;  // rounding alone may then exceed any sensible tolerance
  const double inv_err = (r.covariance * r.precision - Matrix::Identity(p, p)).cwiseAbs().maxCoeff();
  if (!(inv_err <= 1e-12 * cond * static_cast<double>(p) + 1e-12))
    fail(target, "covariance is not the inverse of the precision: max |W Θ - I| = " + num(inv_err) +
                     " (condition " + num(cond) + ")");
  // Converged means a gap within tol·p; the KKT conditions to tol are then sought by a Newton
  // polish, which the well-conditioned cold starts with enough sweeps must reach. Otherwise the gap
  // bounds the KKT residual only through its square root.
  const double kkt = kkt_relative(S, rho, r.precision, r.covariance, o.penalize_diagonal);
  const double rounding = 1e-13 * cond * static_cast<double>(p);
  const double allowed = strict ? 2.0 * o.tol + rounding
                                : std::max(2.0 * o.tol, 10.0 * std::sqrt(o.tol * static_cast<double>(p))) + rounding;
  if (!(kkt <= allowed))
    fail(target, "converged but the KKT conditions are violated by " + num(kkt) + " > " + num(allowed));
}

GlassoOptions glasso_options(Bytes& in, bool& valid) {
  GlassoOptions o;
  switch (in.u8() % 10) {
    case 0: o.tol = 0.0; break;
    case 1: o.tol = -1e-8; break;
    case 2: o.tol = kNaN; break;
    case 3: o.tol = 1e-4; break;
    case 4: o.tol = 1e-12; break;
    default: break;  // 1e-8
  }
  switch (in.u8() % 10) {
    case 0: o.max_iter = 0; break;
    case 1: o.max_iter = 1; break;
    case 2: o.max_iter = 3; break;
    case 3: o.max_iter = -1; break;
    default: break;  // 1000
  }
  o.penalize_diagonal = in.flag();
  valid = std::isfinite(o.tol) && o.tol >= 0.0 && o.max_iter >= 0;
  return o;
}

/// Problems that are not well posed may run every sweep, each with Newton phases on dense
/// Hessians: a few sweeps show their behaviour, and keep each input fast under the sanitizers.
void cap_sweeps(GlassoOptions& o, bool nice) {
  if (!nice) o.max_iter = std::min(o.max_iter, 8);
}

/// Sets the context printed with a violation (and prints it at once when the environment variable
/// METAGLASSO_FUZZ_VERBOSE is set).
void describe(const Matrix& S, double rho, const GlassoOptions& o, const std::string& extra) {
  const Index p = S.rows();
  context = "p = " + std::to_string(p) + ", rho = " + num(rho) + ", tol = " + num(o.tol) + ", max_iter = " +
            std::to_string(o.max_iter) + ", penalize_diagonal = " + std::to_string(o.penalize_diagonal) + ", " +
            extra + "\nS =";
  for (Index i = 0; i < p; ++i) {
    context += "\n";
    for (Index j = 0; j < p; ++j) context += " " + num(S(i, j));
  }
  static const bool verbose = std::getenv("METAGLASSO_FUZZ_VERBOSE") != nullptr;
  if (verbose) std::fprintf(stderr, "%s\n", context.c_str());
}

/// S for the glasso targets: from data (mostly), or a raw symmetric or asymmetric matrix.
/// `valid`: finite, symmetric, non-negative diagonal; `nice`: moderate scale, well conditioned.
Matrix glasso_problem(Bytes& in, bool& valid, bool& nice) {
  const std::uint8_t kind = in.u8();
  // Raw symmetric matrices are often indefinite, and with ρ near 0 their column lassos run
  // coordinate descent to its budget in every column: they stay smaller.
  const Index p = in.range(1, kind % 4 >= 2 ? 12 : 24);
  const Style style = (kind & 0x10) ? kWild : kSane;
  Matrix S;
  double ridge = 0.0;
  switch (kind % 4) {
    case 0:
    case 1: {
      const Index N = in.range(1, 32);
      const Matrix X = matrix(in, p, N, style);
      ridge = (kind % 4 == 1) ? 0.1 : 0.0;
      S = covariance_of(X, ridge);
      break;
    }
    case 2: {  // raw symmetric (possibly indefinite)
      const Matrix A = matrix(in, p, p, style);
      S = A.triangularView<Eigen::Lower>();
      S = S + S.transpose().eval();
      S.diagonal() = A.diagonal().cwiseAbs();
      break;
    }
    default: {  // raw, possibly asymmetric; a small asymmetry on a symmetric matrix
      S = matrix(in, p, p, style);
      if (in.flag()) {
        S = (0.5 * (S + S.transpose())).eval();
        if (p > 1) S(0, p - 1) += std::ldexp(1.0, -in.range(0, 60)) * std::max(1.0, S.cwiseAbs().maxCoeff());
      }
      break;
    }
  }
  // The library accepts (and symmetrises) an asymmetry up to 1e-10 · max |S_ij|.
  const double smax = S.allFinite() ? S.cwiseAbs().maxCoeff() : kInf;
  valid = S.allFinite() && (S - S.transpose()).cwiseAbs().maxCoeff() <= 1e-10 * smax &&
          (S.diagonal().array() >= 0.0).all();
  nice = valid && style == kSane && kind % 4 == 1 && smax > 1e-6 && smax < 1e6 && condition(S) < 1e8;
  return S;
}

bool ambiguous_symmetry(const Matrix& S) {
  if (!S.allFinite()) return false;
  const double asym = (S - S.transpose()).cwiseAbs().maxCoeff(), amax = S.cwiseAbs().maxCoeff();
  return asym > 1e-11 * amax && asym <= 1e-9 * amax;  // either side of the library's 1e-10
}

void run_glasso(Bytes& in) {
  const char* target = "graphical_lasso";
  bool valid_S = false, nice = false;
  const Matrix S = glasso_problem(in, valid_S, nice);
  if (ambiguous_symmetry(S)) return;
  const Index p = S.rows();
  bool valid_rho = false, valid_opts = false;
  const double rho = penalty(in, S, valid_rho);
  GlassoOptions o = glasso_options(in, valid_opts);
  cap_sweeps(o, nice);
  // Warm start: none, identity, random symmetric (maybe indefinite), non-finite, wrong shape.
  Matrix init;
  bool valid_init = true;
  const std::uint8_t w = in.u8() % 6;
  if (w == 1) init = Matrix::Identity(p, p);
  if (w == 2) {
    init = matrix(in, p, p, kSane);
    init = (init * init.transpose()).eval();
    init.diagonal().array() += 0.5;
  }
  if (w == 3) init = matrix(in, p, p, kSane);
  if (w == 4) {
    init = Matrix::Identity(p, p);
    init(0, 0) = kNaN;
    valid_init = false;
  }
  if (w == 5) {
    init = Matrix::Identity(p + 1, p + 1);
    valid_init = false;
  }
  describe(S, rho, o, "warm start " + std::to_string(w));
  const bool zero_diag = ((S.diagonal().array() + (o.penalize_diagonal ? rho : 0.0)) <= 0.0).any();
  const bool valid = valid_S && valid_rho && valid_opts && valid_init;
  GlassoResult r;
  const int caught = guarded(target, [&] { r = graphical_lasso(S, rho, o, w == 0 ? nullptr : &init); });
  if (!valid) {
    // S, ρ and the options are checked before the diagonal, the warm start after it.
    if (valid_S && valid_rho && valid_opts && zero_diag && caught == 2) return;
    expect_invalid(target, caught, "an invalid problem");
    return;
  }
  if (caught == 1) fail(target, "std::invalid_argument for a valid problem");
  if (caught == 2) {
    if (nice && rho > 0.0 && !zero_diag) fail(target, "NumericalError on a well-conditioned problem");
    return;
  }
  if (zero_diag) fail(target, "a zero diagonal entry (unbounded problem) gave a result");
  check_glasso_result(target, S, rho, o, r, nice && w == 0 && o.max_iter >= 1000);

  // The warm start from the answer itself (aliasing the result) must keep a valid answer.
  if (in.flag()) {
    const int again = guarded(target, [&] { GlassoSolver().solve(S, rho, o, &r.precision, r); });
    if (again == 1) fail(target, "std::invalid_argument on a warm start from the previous answer");
    if (again == 0) check_glasso_result(target, S, rho, o, r, false);
  }
}

/// A solver reused across problems of different sizes gives graphical_lasso's results bit for bit.
void run_solver_reuse(Bytes& in) {
  const char* target = "GlassoSolver";
  GlassoSolver solver;
  const int n = in.range(2, 3);
  for (int t = 0; t < n; ++t) {
    bool valid_S = false, nice = false, valid_rho = false, valid_opts = false;
    const Matrix S = glasso_problem(in, valid_S, nice);
    if (ambiguous_symmetry(S)) return;
    const double rho = penalty(in, S, valid_rho);
      GlassoOptions o = glasso_options(in, valid_opts);
    o.max_iter = std::min(o.max_iter, 4);
    describe(S, rho, o, "problem " + std::to_string(t) + " of a reused solver");
    GlassoResult a, b;
    const int ca = guarded(target, [&] { solver.solve(S, rho, o, nullptr, a); });
    const int cb = guarded(target, [&] { b = graphical_lasso(S, rho, o); });
    if (ca != cb) fail(target, "the reused solver and graphical_lasso disagree on throwing");
    if (ca != 0) continue;
    const bool same = a.precision.rows() == b.precision.rows() && a.precision.cols() == b.precision.cols() &&
                      std::memcmp(a.precision.data(), b.precision.data(), sizeof(double) * a.precision.size()) == 0 &&
                      std::memcmp(a.covariance.data(), b.covariance.data(), sizeof(double) * a.covariance.size()) == 0 &&
                      a.n_iter == b.n_iter && a.converged == b.converged &&
                      (a.gap == b.gap || (std::isnan(a.gap) && std::isnan(b.gap)));
    if (!same) fail(target, "the reused solver's result differs from graphical_lasso's (problem " + std::to_string(t) + ")");
  }
}

void run_gap_objective(Bytes& in) {
  const char* target = "glasso_duality_gap";
  bool valid_S = false, nice = false, valid_rho = false;
  const Matrix S = glasso_problem(in, valid_S, nice);
  if (ambiguous_symmetry(S)) return;
  const Index p = S.rows();
  const double rho = penalty(in, S, valid_rho);
  const bool pd = in.flag();
  Matrix P;
  switch (in.u8() % 4) {
    case 0: P = Matrix::Identity(p, p); break;
    case 1: P = matrix(in, p, p, kWild); break;
    case 2: P = Matrix::Identity(p + 1, p); break;
    default: {
      P = matrix(in, p, p, kSane);
      P = (P * P.transpose()).eval();
      P.diagonal().array() += 1.0;
      break;
    }
  }
  // Unlike graphical_lasso, the gap and the objective accept a negative diagonal of S.
  const double smax = S.allFinite() ? S.cwiseAbs().maxCoeff() : kInf;
  valid_S = S.allFinite() && (S - S.transpose()).cwiseAbs().maxCoeff() <= 1e-10 * smax;
  const bool valid = valid_S && valid_rho && P.rows() == p && P.cols() == p && P.allFinite();
  double gap = 0.0, obj = 0.0;
  const int cg = guarded(target, [&] { gap = glasso_duality_gap(S, rho, P, pd); });
  const int co = guarded(target, [&] { obj = glasso_objective(S, rho, P, pd); });
  if (!valid) {
    expect_invalid(target, cg, "an invalid gap argument");
    expect_invalid("glasso_objective", co, "an invalid objective argument");
    return;
  }
  if (cg != 0 || co != 0) fail(target, "exception on valid arguments");
  if (std::isnan(gap) || std::isnan(obj)) fail(target, "NaN gap or objective: " + num(gap) + ", " + num(obj));
}

Representation representation(Bytes& in) {
  switch (in.u8() % 3) {
    case 0: return Representation::Auto;
    case 1: return Representation::Data;
    default: return Representation::Covariance;
  }
}

/// Relative agreement of two matrices: ‖A − B‖_F ≤ tol · scale.
void close(const char* target, const std::string& what, const Matrix& A, const Matrix& B, double scale, double tol) {
  if (A.rows() != B.rows() || A.cols() != B.cols()) fail(target, what + ": wrong shape");
  const double err = (A - B).norm();
  if (!(err <= tol * scale)) fail(target, what + ": error " + num(err) + " > " + num(tol) + " * " + num(scale));
}

/// Norms in this range leave products clear of overflow and of the loss of relative precision
/// of subnormal numbers.
bool moderate(double x) { return x > 1e-100 && x < 1e100; }

/// `scale` bounds ‖S‖ in the products' rounding errors: tr S for a Gram factor (‖F‖²_F).
void check_projection(const char* target, const Dataset& d, const Matrix& S, double scale, Bytes& in) {
  const Index dim = d.dimension();
  const Index M = in.range(1, 6);
  Matrix D = matrix(in, dim, M, kSane);
  if (in.flag()) D = Eigen::HouseholderQR<Matrix>(D).householderQ() * Matrix::Identity(dim, M);
  Matrix SD, DtSD, work;
  const int c = guarded(target, [&] { d.project(D, SD, DtSD, work, 1); });
  if (c != 0) fail(target, "project threw on a valid D");
  const double dn = D.norm();
  // Products of huge data and a huge (non-orthonormal) D may overflow; then inf − inf makes the
  // entries NaN on both sides, which is no asymmetry. With moderate inputs they must be finite.
  if (DtSD.allFinite()) {
    if (!symmetric_exactly(DtSD)) fail(target, "DtSD is not symmetric");
  } else if (moderate(scale) && moderate(dn) && S.allFinite()) {
    fail(target, "DtSD is not finite for moderate S and D");
  }
  if (moderate(scale) && moderate(dn) && S.allFinite()) {
    const double tol = 1e-13 * static_cast<double>(dim + d.work_rows() + 4);
    close(target, "S D", SD, S * D, scale * dn, tol);
    close(target, "D^T S D", DtSD, D.transpose() * S * D, scale * dn * dn, tol);
  }
  // Wrong number of rows.
  const Matrix bad = Matrix::Zero(dim + 1, M);
  expect_invalid(target, guarded(target, [&] { d.project(bad, SD, DtSD, work, 1); }), "D with wrong rows");
}

void run_dataset(Bytes& in) {
  const char* target = "Dataset";
  const std::uint8_t kind = in.u8() % 3;
  const Style style = in.flag() ? kWild : kSane;
  const Index V = in.range(1, 24);
  if (kind == 0) {
    const Index N = in.range(1, 32);
    const Matrix X = matrix(in, V, N, style);
    const bool centred = in.flag();
    const Representation rep = representation(in);
    Dataset d;
    const int c = guarded(target, [&] { d = Dataset::from_data(X, centred, rep, 1); });
    if (N < 2 || !X.allFinite()) return expect_invalid(target, c, "N < 2 or non-finite data");
    if (c == 1) {
      // Finite data whose covariance overflows may be refused, nothing else.
      const Matrix Xc = centred ? X : Matrix(X.colwise() - X.rowwise().mean());
      if (Xc.allFinite() && std::isfinite(Xc.squaredNorm())) fail(target, "valid data refused");
      return;
    }
    if (c != 0) fail(target, "NumericalError from from_data");
    if (!all_finite(d.matrix()) || !std::isfinite(d.trace())) fail(target, "from_data stored non-finite values");
    if (d.n_features() != V || d.n_samples() != N) fail(target, "from_data sizes");
    const Matrix Xc = (centred ? X : Matrix(X.colwise() - X.rowwise().mean())) / std::sqrt(static_cast<double>(N));
    const Matrix S = Xc * Xc.transpose();
    if (d.trace() < 0.0) fail(target, "negative trace");
    const double t = Xc.squaredNorm();
    if (moderate(t))
      close(target, "stored covariance", d.is_covariance() ? d.matrix() : Matrix(d.matrix() * d.matrix().transpose()),
            S, t, 1e-13 * static_cast<double>(N + 4));
    check_projection(target, d, S, t, in);
  } else if (kind == 1) {
    Matrix S;
    const Index cols = in.flag() ? V : std::max<Index>(1, V - 1);
    Matrix A = matrix(in, V, cols, style);
    if (cols == V && in.u8() % 4 != 0) {
      S = A * A.transpose();
      S = (0.5 * (S + S.transpose())).eval();
    } else {
      S = A;
    }
    const Index n = in.range(-1, 8);
    const bool square = S.rows() == S.cols();
    const bool sym = square && S.allFinite() &&
                     (S - S.transpose()).cwiseAbs().maxCoeff() <= 1e-10 * std::max(1.0, S.cwiseAbs().maxCoeff());
    Dataset d;
    const int c = guarded(target, [&] { d = Dataset::from_covariance(S, n); });
    if (!square || n < 1 || !S.allFinite() || !sym) return expect_invalid(target, c, "an invalid covariance");
    if (c != 0) fail(target, "from_covariance refused a valid covariance");
    if (!symmetric_exactly(d.matrix()) || !d.is_covariance()) fail(target, "from_covariance storage");
    check_projection(target, d, d.matrix(), d.matrix().norm(), in);
  } else {
    const Index N = in.range(0, 12);
    const Index rows = in.range(0, 24);
    Matrix F = matrix(in, std::max<Index>(rows, 1), std::max<Index>(N, 1), style);
    if (rows == 0) F.resize(0, F.cols());
    if (N == 0) F.resize(F.rows(), 0);
    const Index nf = in.range(0, 30), ns = in.range(0, 4);
    const double trace = in.flag() ? (F.allFinite() ? F.squaredNorm() : kNaN) : value(in, kWild);
    const Representation rep = representation(in);
    Dataset d;
    const int c = guarded(target, [&] { d = Dataset::from_factor(F, ns, nf, trace, rep); });
    const bool valid = rows >= 1 && N >= 1 && nf >= rows && ns >= 1 && F.allFinite() && std::isfinite(trace) &&
                       trace >= 0.0;
    if (!valid) return expect_invalid(target, c, "an invalid factor");
    if (c != 0) fail(target, "from_factor refused a valid factor");
    const Matrix S = F * F.transpose();
    if (moderate(F.squaredNorm())) {
      if (!all_finite(d.matrix())) fail(target, "from_factor stored non-finite values");
      check_projection(target, d, S, F.squaredNorm(), in);
    }
  }
}

DataList as_list(const std::vector<Matrix>& Xs) {
  DataList list;
  for (const auto& X : Xs) list.emplace_back(X);
  return list;
}

void run_span(Bytes& in) {
  const char* target = "DataSpan";
  const Index V = in.range(1, 24);
  const int K = in.range(1, 3);
  const Style style = in.flag() ? kWild : kSane;
  std::vector<Matrix> Xs;
  bool valid = true;
  for (int k = 0; k < K; ++k) {
    const Index N = in.range(1, 10);
    Xs.push_back(matrix(in, V, N, style));
    valid = valid && N >= 2 && Xs.back().allFinite();
  }
  if (in.u8() % 4 == 0 && K > 1) Xs[1] = Xs[0];  // a duplicated dataset
  const DataList list = as_list(Xs);
  const bool centred = in.flag();
  double tol = 1e-12;
  const std::uint8_t tol_kind = in.u8() % 6;
  switch (tol_kind) {
    case 0: tol = 0.0; break;
    case 1: tol = 1.0; break;
    case 2: tol = kNaN; break;
    case 3: tol = 1e-6; break;
    default: break;
  }
  valid = tol_kind != 1 && tol_kind != 2;
  for (const auto& X : Xs) valid = valid && X.cols() >= 2 && X.allFinite();
  std::unique_ptr<DataSpan> span;
  const int c = guarded(target, [&] { span.reset(new DataSpan(list, centred, tol, 1)); });
  if (!valid) return expect_invalid(target, c, "invalid data or tolerance");
  if (c == 2) return;
  // Centred, scaled data whose norms overflow may be refused.
  bool overflow = false;
  std::vector<Matrix> Fs;
  for (const auto& X : Xs) {
    Matrix Xc = centred ? X : Matrix(X.colwise() - X.rowwise().mean());
    overflow = overflow || !std::isfinite(Xc.squaredNorm());
    Fs.push_back(Xc / std::sqrt(static_cast<double>(X.cols())));
  }
  if (c == 1) {
    if (!overflow) fail(target, "valid data refused");
    return;
  }
  const Index r = span->rank();
  Index total = 0;
  for (const auto& X : Xs) total += X.cols();
  if (r < 0 || r > std::min(total, V)) fail(target, "rank " + std::to_string(r) + " out of range");
  if (span->datasets().size() != Xs.size()) fail(target, "wrong number of datasets");
  for (const auto& d : span->datasets())
    if (!all_finite(d.matrix()) || !std::isfinite(d.trace())) fail(target, "non-finite dataset in span coordinates");
  if (overflow || r == 0) return;
  Matrix B;
  if (guarded(target, [&] { B = span->basis(list, 1); }) != 0) fail(target, "basis threw");
  if (!all_finite(B)) fail(target, "non-finite basis");
  const double orth = (B.transpose() * B - Matrix::Identity(r, r)).norm();
  // Orthonormality is lost in proportion to the spread of the kept pivots.
  const double spread = span->pivots()(0) / span->pivots()(r - 1);
  if (!(orth <= 1e-13 * spread * static_cast<double>(total) + 1e-10))
    fail(target, "basis not orthonormal: ||B^T B - I||_F = " + num(orth) + " (pivot spread " + num(spread) + ")");
  // Each covariance is reproduced from the span coordinates.
  for (std::size_t k = 0; k < Xs.size(); ++k) {
    const Dataset& d = span->datasets()[k];
    const Matrix Sk = Fs[k] * Fs[k].transpose();
    const Matrix Ck = d.is_covariance() ? d.matrix() : Matrix(d.matrix() * d.matrix().transpose());
    const double t = Sk.trace();
    if (!(std::abs(d.trace() - t) <= 1e-10 * t + 1e-300)) fail(target, "trace changed");
    if (moderate(t)) {
      // F_k = B C_k + R_k with ‖R_k‖²_F ≤ t_k ΣN tol (the variance left out), so S_k differs from
      // B C_k C_kᵀ Bᵀ by R_k R_kᵀ and the cross terms B C_k R_kᵀ + R_k C_kᵀ Bᵀ: O(t_k √(ΣN tol)).
      const double left = static_cast<double>(total) * std::max(tol, 1e-12);
      close(target, "B C_k C_k^T B^T = S_k", B * Ck * B.transpose(), Sk, t,
            2.0 * std::sqrt(left) + left + 1e-12 * spread * static_cast<double>(total));
    }
  }
  // Starts.
  const Index m = in.range(0, 4);
  Matrix E;
  const int cp = guarded(target, [&] { E = span->pca_start(list, m, 1); });
  if (m < 1 || m >= r) {
    expect_invalid(target, cp, "pca_start with m out of range");
  } else if (cp == 0) {
    if (E.rows() != r || E.cols() != m || !all_finite(E)) fail(target, "pca_start shape or values");
  } else if (cp == 1) {
    fail(target, "pca_start refused a valid m");
  }
  const Matrix D0 = matrix(in, V, std::max<Index>(m, 1), kSane);
  const int cs = guarded(target, [&] { E = span->project_start(list, D0, 1); });
  if (m >= 1 && m < r && cs == 0) {
    if (!all_finite(E) || (E.transpose() * E - Matrix::Identity(m, m)).norm() > 1e-10)
      fail(target, "project_start is not orthonormal");
  }
  if ((m < 1 || m >= r) && D0.cols() >= r) expect_invalid(target, cs, "project_start with m out of range");
}

void run_fit(Bytes& in) {
  const char* target = "fit";
  const Index V = in.range(2, 8);
  const int K = in.range(1, 3);
  const Style style = (in.u8() % 4 == 0) ? kWild : kSane;
  std::vector<Matrix> Xs;
  for (int k = 0; k < K; ++k) Xs.push_back(matrix(in, V, in.range(2, 12), style));
  bool valid = true;
  for (const auto& X : Xs) valid = valid && X.allFinite();
  const DataList list = as_list(Xs);
  FitOptions o;
  o.n_threads = 1;
  o.solver = in.flag() ? Solver::Adam : Solver::LBFGS;
  o.max_iter = in.range(0, 4);
  o.batch_size = in.range(0, 2);
  o.learning_rate = 1e-2;
  o.glasso.max_iter = in.range(0, 60);
  o.glasso.penalize_diagonal = in.flag();
  switch (in.u8() % 8) {
    case 0: o.alpha = 0.0; break;
    case 1: o.alpha = -0.1; break;
    case 2: o.alpha = kNaN; break;
    case 3: o.alpha = 1e300; break;
    default: o.alpha = (1 + in.u8()) / 512.0; break;
  }
  valid = valid && o.max_iter >= 1 && o.glasso.max_iter >= 1 && std::isfinite(o.alpha) && o.alpha >= 0.0;
  const Index M = in.range(0, 3);
  valid = valid && M >= 1 && M < V;
  DataOptions dopt;
  dopt.compress = in.flag();
  dopt.assume_centered = in.flag();
  dopt.representation = representation(in);
  Start start = Start::pca(M);
  if (in.u8() % 3 == 0) start = Start::random(M, in.u8());
  FitResult r;
  const int c = guarded(target, [&] { r = fit_data(list, start, o, dopt); });
  if (!valid) return expect_invalid(target, c, "invalid data or options");
  if (c != 0) return;  // NumericalError, or invalid_argument for degenerate data (e.g. rank < M)
  if (r.components.rows() != V || r.components.cols() != M || !all_finite(r.components))
    fail(target, "components shape or values");
  const double orth = (r.components.transpose() * r.components - Matrix::Identity(M, M)).norm();
  if (!(orth <= 1e-10)) fail(target, "components not orthonormal: " + num(orth));
  if (r.precisions.size() != Xs.size() || r.noise_variances.size() != K) fail(target, "per-dataset sizes");
  for (const auto& P : r.precisions)
    if (!all_finite(P) || !positive_definite(P)) fail(target, "a precision is not finite positive definite");
  if (!r.noise_variances.allFinite() || (r.noise_variances.array() <= 0.0).any()) fail(target, "noise variances");
  if (!std::isfinite(r.objective)) fail(target, "objective not finite");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  Bytes in(data, size);
  context.clear();
  switch (in.u8() % 7) {
    case 0: run_glasso(in); break;
    case 1: run_glasso(in); break;
    case 2: run_solver_reuse(in); break;
    case 3: run_gap_objective(in); break;
    case 4: run_dataset(in); break;
    case 5: run_span(in); break;
    default: run_fit(in); break;
  }
  return 0;
}
