"""Property-based tests (hypothesis) of the graphical lasso and the fit.

Thousands of small generated inputs — random, factor-structured and adversarial: tiny and huge
scales, constant and duplicated variables, repeated samples, too few samples, NaN and infinite
entries, asymmetric matrices, negative penalties — go through ``graphical_lasso`` and
``MetaGraphicalLasso.fit``. Every call must either raise ValueError or
``metaglasso.NumericalError`` with a message naming the problem, or return a result that is
finite, symmetric positive definite and optimal (KKT conditions). The runs are derandomized, so
CI sees the same inputs every time.
"""

import re
import warnings

import numpy as np
import pytest
from numpy.testing import assert_allclose

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, event, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from metaglasso import ConvergenceWarning, MetaGraphicalLasso, NumericalError, graphical_lasso  # noqa: E402
from metaglasso.datasets import make_synthetic  # noqa: E402
from test_glasso import is_spd, kkt_violation  # noqa: E402

# Tolerances used below, in one place.
GLASSO_KKT_RTOL = 1e-7  # KKT residual / max(max|S|, ρ) at graphical_lasso's default tol = 1e-8
FIT_KKT_RTOL = 1e-9  # KKT residual of Λ_k / max(max|Dᵀ S_k D|, ρ) (the fit solves its glassos to 1e-12)
ROUNDING = 100 * np.finfo(float).eps  # times cond(Θ)² max|W|: what W = Θ⁻¹ can be known to
MONOTONE_RTOL = 1e-12  # accepted L-BFGS steps decrease E (Armijo); allowance for rounding of E
INVARIANCE_ATOL = 1e-6  # fits of permuted or rescaled problems (stopped at tol = 1e-12)

MANY = settings(max_examples=2000, derandomize=True, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow])
FEW = settings(max_examples=60, derandomize=True, deadline=None, database=None,
               suppress_health_check=[HealthCheck.too_slow])

# What an error may say: each names the argument or the property of the input that is at fault.
VALUE_ERRORS = re.compile(
    r"NaN or infinite|must be symmetric|positive semi-definite|must be a finite number >= 0|"
    r"n_samples=\d+: .*at least \d+ samples|must be smaller than n_features|must have at least 2 samples")
NUMERICAL_ERRORS = re.compile(
    r"unbounded|no variance|not positive definite|singular|did not converge")


def sample_covariance(X, assume_centered=False):
    Xc = X if assume_centered else X - X.mean(axis=0)
    return Xc.T @ Xc / X.shape[0]


def kkt_allowance(S, alpha, precision, covariance, rtol, S_full=None):
    """rtol relative to the scale of the problem, plus rounding: of W = Θ⁻¹ when Θ is
    ill-conditioned (Θ itself is determined to about cond(Θ) ε relative, so W to cond(Θ)² ε), and
    of S = Dᵀ S_full D as this test computes it (cancellation when a factor carries little of
    S_full's variance)."""
    scale = max(float(np.abs(S).max()), alpha, np.finfo(float).tiny)
    allowance = rtol * scale + ROUNDING * np.linalg.cond(precision) ** 2 * float(np.abs(covariance).max())
    if S_full is not None:
        allowance += ROUNDING * S_full.shape[0] * float(np.abs(S_full).max())
    return allowance


@st.composite
def data_matrices(draw, n_features, min_samples=1, max_samples=12):
    """(n, p) data: Gaussian, factor-structured or exactly low-rank, at a scale 10^-8 … 10^8, with
    (drawn from a seeded generator, so with fixed probabilities) constant and duplicated columns
    and repeated rows."""
    n = draw(st.integers(min_samples, max_samples))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    kind = rng.choice(["gaussian", "factor", "lowrank"], p=[0.4, 0.4, 0.2])
    if kind == "gaussian":
        X = rng.standard_normal((n, n_features))
    else:
        r = int(rng.integers(1, max(2, n_features)))
        loadings = rng.standard_normal((r, n_features)) * (10.0 if kind == "factor" else 1.0)
        noise = 1.0 if kind == "factor" else 0.0
        X = rng.standard_normal((n, r)) @ loadings + noise * rng.standard_normal((n, n_features))
    X *= 10.0 ** draw(st.integers(-8, 8))
    if n_features > 1 and rng.random() < 0.25:
        X[:, rng.integers(n_features)] = rng.choice([0.0, 1.5, -1e3])
    if n_features > 1 and rng.random() < 0.25:
        X[:, rng.integers(n_features)] = X[:, rng.integers(n_features)]
    if n > 2 and rng.random() < 0.1:
        X[1:] = X[rng.integers(0, 2, n - 1)]
    return X


@st.composite
def glasso_problems(draw):
    p = draw(st.integers(1, 8))
    X = draw(data_matrices(p))
    S = sample_covariance(X, assume_centered=draw(st.booleans()))
    scale = float(np.abs(S).max()) or 1.0
    alpha = draw(st.sampled_from([0.0, 1e-3, 0.05, 0.3, 1.0, 100.0])) * scale
    damage = draw(st.sampled_from(["none"] * 12 + ["nan", "inf", "asymmetric", "negative_alpha", "negative_diag"]))
    if damage == "nan":
        S[draw(st.integers(0, p - 1)), draw(st.integers(0, p - 1))] = np.nan
    elif damage == "inf":
        S[0, 0] = np.inf
    elif damage == "asymmetric" and p > 1:
        S[0, p - 1] += 0.5 * scale + 1.0
    elif damage == "negative_alpha":
        alpha = -alpha - 0.1
    elif damage == "negative_diag":
        S[p - 1, p - 1] = -0.5 * scale - 1.0
    return S, alpha, draw(st.booleans())


@MANY
@given(glasso_problems())
def test_graphical_lasso_is_spd_and_optimal_or_raises(problem):
    S, alpha, penalize_diagonal = problem
    try:
        covariance, precision = graphical_lasso(S, alpha, penalize_diagonal=penalize_diagonal)
    except ValueError as exc:
        event("ValueError")
        assert VALUE_ERRORS.search(str(exc)), str(exc)
        return
    except NumericalError as exc:
        event("NumericalError")
        assert NUMERICAL_ERRORS.search(str(exc)), str(exc)
        return
    event("solved")
    assert np.all(np.isfinite(precision)) and np.all(np.isfinite(covariance))
    assert is_spd(precision)
    assert kkt_violation(S, alpha, precision, covariance, penalize_diagonal) <= kkt_allowance(
        S, alpha, precision, covariance, GLASSO_KKT_RTOL)


@st.composite
def fit_problems(draw):
    K = draw(st.integers(1, 3))
    V = draw(st.integers(2, 7))
    M = draw(st.integers(1, V - 1))
    n = draw(st.one_of(st.none(), st.integers(2, 20)))  # one N for all datasets, or one each
    Xs = [draw(data_matrices(V, min_samples=n or 2, max_samples=n or 20)) for _ in range(K)]
    scale = max(float(np.mean([np.var(X, axis=0).mean() for X in Xs])), 1e-300)
    alpha = draw(st.sampled_from([0.0, 0.01, 0.1, 1.0, 1e3])) * scale
    if np.random.default_rng(draw(st.integers(0, 2**32 - 1))).random() < 0.03:
        Xs[-1][0, 0] = draw(st.sampled_from([np.nan, np.inf]))
    params = dict(
        n_components=M, alpha=alpha, penalize_diagonal=draw(st.booleans()),
        assume_centered=draw(st.booleans()), solver=draw(st.sampled_from(["lbfgs"] * 4 + ["adam"])),
        representation=draw(st.sampled_from(["auto", "data", "covariance"])), max_iter=30,
    )
    return Xs, params


@MANY
@given(fit_problems())
def test_fit_is_spd_and_optimal_or_raises(problem):
    Xs, params = problem
    model = MetaGraphicalLasso(**params)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            model.fit(Xs)
    except ValueError as exc:
        event("ValueError")
        assert VALUE_ERRORS.search(str(exc)), str(exc)
        return
    except NumericalError as exc:
        event("NumericalError")
        assert re.match(r"dataset \d+: ", str(exc)) and NUMERICAL_ERRORS.search(str(exc)), str(exc)
        return
    event("fitted")
    D = model.components_.T
    assert np.all(np.isfinite(D))
    assert_allclose(D.T @ D, np.eye(D.shape[1]), atol=1e-10)
    assert np.all(np.isfinite(model.noise_variances_)) and np.all(model.noise_variances_ > 0)
    assert np.isfinite(model.objective_)
    for X, P, W in zip(Xs, model.precisions_, model.covariances_):
        assert np.all(np.isfinite(P)) and is_spd(P)
        S = sample_covariance(X, params["assume_centered"])
        A = D.T @ S @ D
        assert kkt_violation(A, params["alpha"], P, W, params["penalize_diagonal"]) <= kkt_allowance(
            A, params["alpha"], P, W, FIT_KKT_RTOL, S)
    if params["solver"] == "lbfgs":
        history = model.objective_history_
        assert np.all(np.diff(history) <= MONOTONE_RTOL * np.abs(history[:-1]).clip(1.0))


# ---------------------------------------------------------------------------------------------
# invariances, on well-posed problems (N_k > V, so that the minimiser is isolated)


@st.composite
def well_posed(draw):
    K = draw(st.integers(2, 4))
    V = draw(st.integers(4, 12))
    M = draw(st.integers(1, min(3, V - 1)))
    Xs, _ = make_synthetic(V, 4 * V, K, M, random_state=draw(st.integers(0, 2**31 - 1)))
    return Xs, M, draw(st.sampled_from([0.02, 0.1]))


def _fit(Xs, M, alpha):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return MetaGraphicalLasso(n_components=M, alpha=alpha, tol=1e-12, max_iter=2000).fit(Xs)


def _aligned(D, reference):
    """D with its columns' signs matched to those of reference (the objective is invariant under
    them: Λ_k → S Λ_k S with S = diag(±1))."""
    return D * np.sign(np.sum(D * reference, axis=0))


@FEW
@given(well_posed(), st.randoms(use_true_random=False))
def test_fit_is_invariant_to_permuting_datasets(problem, random):
    Xs, M, alpha = problem
    order = list(range(len(Xs)))
    random.shuffle(order)
    base = _fit(Xs, M, alpha)
    permuted = _fit([Xs[k] for k in order], M, alpha)
    assert_allclose(_aligned(permuted.components_.T, base.components_.T), base.components_.T, atol=INVARIANCE_ATOL)
    assert_allclose(permuted.noise_variances_, base.noise_variances_[order], rtol=INVARIANCE_ATOL)


@FEW
@given(well_posed(), st.randoms(use_true_random=False))
def test_fit_is_equivariant_to_permuting_variables(problem, random):
    Xs, M, alpha = problem
    perm = list(range(Xs[0].shape[1]))
    random.shuffle(perm)
    base = _fit(Xs, M, alpha)
    permuted = _fit([X[:, perm] for X in Xs], M, alpha)
    expected = base.components_.T[perm]
    assert_allclose(_aligned(permuted.components_.T, expected), expected, atol=INVARIANCE_ATOL)
    assert_allclose(permuted.noise_variances_, base.noise_variances_, rtol=INVARIANCE_ATOL)


@FEW
@given(well_posed(), st.integers(-8, 8), st.floats(1.0, 10.0))
def test_scaling_the_data_scales_noise_and_latent_covariances(problem, exponent, mantissa):
    Xs, M, alpha = problem
    c = mantissa * 10.0**exponent
    base = _fit(Xs, M, alpha)
    scaled = _fit([c * X for X in Xs], M, alpha * c**2)
    assert_allclose(scaled.noise_variances_ / c**2, base.noise_variances_, rtol=INVARIANCE_ATOL)
    assert_allclose(scaled.covariances_ / c**2, base.covariances_, rtol=0,
                    atol=INVARIANCE_ATOL * np.abs(base.covariances_).max())
    assert_allclose(_aligned(scaled.components_.T, base.components_.T), base.components_.T, atol=INVARIANCE_ATOL)
