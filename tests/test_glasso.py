"""Tests of metaglasso's graphical lasso against scikit-learn, R glasso and the optimality conditions."""

import time
import warnings

import numpy as np
import pytest
from numpy.testing import assert_allclose

from metaglasso import _core
from metaglasso import GraphicalLasso, graphical_lasso
from metaglasso.exceptions import ConvergenceWarning, NumericalError

sklearn_covariance = pytest.importorskip("sklearn.covariance")
sklearn_datasets = pytest.importorskip("sklearn.datasets")

# Tolerances used below, in one place.
RTOL_VS_SKLEARN = 1e-5  # max |ΔΘ| / max |Θ| against scikit-learn run at tol=enet_tol=1e-12
KKT_TOL = 1e-8  # absolute KKT residual at tol=1e-12 (S has unit-order entries or larger)
KKT_TOL_LARGE = 1e-6  # absolute KKT residual at the default tol=1e-8, p = 500 and 1000
INVERSE_RTOL = 1e-10  # rho = 0 against np.linalg.inv, relative to max |inv|


def factor_covariance(rng, p, *, k=3, n=80, strength=3.0, noise=1.0):
    """Sample covariance (1/n) of n draws of F z + noise ε with k strong factors F (p, k)."""
    F = strength * rng.standard_normal((p, k))
    X = rng.standard_normal((n, k)) @ F.T + noise * rng.standard_normal((n, p))
    Xc = X - X.mean(axis=0)
    return Xc.T @ Xc / n


def kkt_violation(S, rho, P, W, penalize_diagonal=False):
    """Largest violation of W_ij − S_ij = ρ sign(Θ_ij) (Θ_ij ≠ 0), |W_ij − S_ij| ≤ ρ (Θ_ij = 0),
    W_ii = S_ii (+ρ) at a precision P with W = P⁻¹."""
    p = S.shape[0]
    R = W - S
    off = ~np.eye(p, dtype=bool)
    nonzero = off & (P != 0)
    zero = off & (P == 0)
    v_nonzero = np.abs(R - rho * np.sign(P))[nonzero].max(initial=0.0)
    v_zero = (np.abs(R[zero]) - rho).max(initial=0.0)
    v_diag = np.abs(np.diag(R) - (rho if penalize_diagonal else 0.0)).max()
    return max(v_nonzero, v_zero, v_diag)


def sklearn_glasso(S, alpha):
    """scikit-learn's solution at tight tolerances, or None when it raises or warns (1000 sweeps
    suffice where it converges at all; the rare problems it needs more for would dominate the
    runtime of this file)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            _, precision = sklearn_covariance.graphical_lasso(S, alpha, tol=1e-12, enet_tol=1e-12, max_iter=1000)
    except (FloatingPointError, ValueError, Warning):
        return None
    return precision


def is_spd(A):
    if not np.array_equal(A, A.T):
        return False
    try:
        np.linalg.cholesky(A)
    except np.linalg.LinAlgError:
        return False
    return True


# ---------------------------------------------------------------------------------------------
# a) agreement with scikit-learn


def test_matches_sklearn_on_random_problems():
    rng = np.random.default_rng(20240501)
    compared, worst = 0, 0.0
    for _ in range(60):
        p = int(rng.integers(2, 51))
        n = int(rng.integers(p + 10, 3 * p + 30))
        A = rng.standard_normal((p, p)) * (rng.random((p, p)) < 0.2)
        X = rng.standard_normal((n, p)) @ (np.eye(p) + 0.5 * A)
        S = np.cov(X.T, bias=True)
        alpha = float(rng.choice([0.01, 0.05, 0.1, 0.3])) * float(np.mean(np.diag(S)))
        expected = sklearn_glasso(S, alpha)
        if expected is None:
            continue
        _, precision = graphical_lasso(S, alpha, tol=1e-12)
        worst = max(worst, np.abs(precision - expected).max() / np.abs(expected).max())
        compared += 1
    assert compared >= 50
    assert worst <= RTOL_VS_SKLEARN


# ---------------------------------------------------------------------------------------------
# b) R glasso's values from scikit-learn's test suite


def test_iris_matches_r_glasso():
    # R: glasso(emp_cov, 1.0, penalize.diagonal = FALSE) on the iris data (1/n covariance).
    cov_R = np.array(
        [
            [0.68112222, 0.0000000, 0.265820, 0.02464314],
            [0.00000000, 0.1887129, 0.000000, 0.00000000],
            [0.26582000, 0.0000000, 3.095503, 0.28697200],
            [0.02464314, 0.0000000, 0.286972, 0.57713289],
        ]
    )
    icov_R = np.array(
        [
            [1.5190747, 0.000000, -0.1304475, 0.0000000],
            [0.0000000, 5.299055, 0.0000000, 0.0000000],
            [-0.1304475, 0.000000, 0.3498624, -0.1683946],
            [0.0000000, 0.000000, -0.1683946, 1.8164353],
        ]
    )
    S = sklearn_covariance.empirical_covariance(sklearn_datasets.load_iris().data)
    cov, icov = graphical_lasso(S, alpha=1.0, tol=1e-12)
    # R prints 7-8 significant digits; scikit-learn checks 6 decimals.
    assert_allclose(cov, cov_R, atol=1e-6)
    assert_allclose(icov, icov_R, atol=1e-6)
    # The zero pattern is exact.
    np.testing.assert_array_equal(icov == 0, icov_R == 0)


def test_iris_2d_matches_skggm_and_closed_form():
    # skggm: quic(emp_cov, lam=.1, tol=1e-8) on the last two iris features.
    cov_skggm = np.array([[3.09550269, 1.186972], [1.186972, 0.57713289]])
    icov_skggm = np.array([[1.52836773, -3.14334831], [-3.14334831, 8.19753385]])
    S = sklearn_covariance.empirical_covariance(sklearn_datasets.load_iris().data[:, 2:])
    cov, icov = graphical_lasso(S, alpha=0.1, tol=1e-12)
    assert_allclose(cov, cov_skggm, rtol=1e-6)
    assert_allclose(icov, icov_skggm, rtol=1e-6)
    # For p = 2 the solution is W = S with S_12 moved towards 0 by alpha.
    W = S.copy()
    W[0, 1] = W[1, 0] = S[0, 1] - 0.1 * np.sign(S[0, 1])
    assert_allclose(cov, W, rtol=1e-12)
    assert_allclose(icov, np.linalg.inv(W), rtol=1e-10)


def test_iris_singular_matches_r_glasso():
    # R: glasso(emp_cov, 0.01, penalize.diagonal = FALSE) on 3 iris samples: S has rank 2.
    cov_R = np.array(
        [
            [0.08, 0.056666662595, 0.00229729713223, 0.00153153142149],
            [0.056666662595, 0.082222222222, 0.00333333333333, 0.00222222222222],
            [0.002297297132, 0.003333333333, 0.00666666666667, 0.00009009009009],
            [0.001531531421, 0.002222222222, 0.00009009009009, 0.00222222222222],
        ]
    )
    icov_R = np.array(
        [
            [24.42244057, -16.831679593, 0.0, 0.0],
            [-16.83168201, 24.351841681, -6.206896552, -12.5],
            [0.0, -6.206896171, 153.103448276, 0.0],
            [0.0, -12.499999143, 0.0, 462.5],
        ]
    )
    S = sklearn_covariance.empirical_covariance(sklearn_datasets.load_iris().data[10:13])
    assert np.linalg.matrix_rank(S) == 2
    cov, icov = graphical_lasso(S, alpha=0.01, tol=1e-12)
    # R's own answer is asymmetric at the 1e-7 relative level (its tolerance).
    assert_allclose(cov, cov_R, atol=1e-7)
    assert_allclose(icov, icov_R, rtol=1e-6, atol=1e-6)
    assert kkt_violation(S, 0.01, icov, np.linalg.inv(icov)) < 1e-12


# ---------------------------------------------------------------------------------------------
# c) ill-conditioned factor covariances, where scikit-learn breaks down


def test_factor_covariances_where_sklearn_fails():
    rng = np.random.default_rng(7)
    sklearn_failures = 0
    for trial in range(10):
        S = factor_covariance(rng, 30, n=int(rng.integers(60, 101)))
        alpha = 0.05 * float(np.mean(np.diag(S)))
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                sklearn_covariance.graphical_lasso(S, alpha, max_iter=200)
        except FloatingPointError:
            sklearn_failures += 1
        cov, precision = graphical_lasso(S, alpha, tol=1e-12)
        W = np.linalg.inv(precision)
        assert is_spd(precision), trial
        assert np.abs(cov - W).max() <= 1e-10 * np.abs(W).max(), trial
        assert kkt_violation(S, alpha, precision, W) <= KKT_TOL, trial
        assert np.linalg.cond(S) > 500
    # These problems are hard for the dual block coordinate descent of scikit-learn.
    assert sklearn_failures >= 3


# ---------------------------------------------------------------------------------------------
# d) warm starts


def test_warm_start_from_nearby_alpha_is_exact_and_faster():
    rng = np.random.default_rng(11)
    S = factor_covariance(rng, 30, n=80)
    alpha = 0.05 * float(np.mean(np.diag(S)))
    _, cold, n_cold = graphical_lasso(S, alpha, tol=1e-12, return_n_iter=True)
    _, near = graphical_lasso(S, 1.05 * alpha, tol=1e-12)
    _, warm, n_warm = graphical_lasso(S, alpha, tol=1e-12, precision_init=near, return_n_iter=True)
    assert np.abs(warm - cold).max() <= 1e-8 * np.abs(cold).max()
    assert n_warm < n_cold


def test_warm_start_from_perturbed_covariance():
    rng = np.random.default_rng(12)
    S = factor_covariance(rng, 20, n=80)
    E = 1e-3 * rng.standard_normal(S.shape)
    S2 = S + (E + E.T) / 2
    alpha = 0.1 * float(np.mean(np.diag(S)))
    _, P1 = graphical_lasso(S, alpha, tol=1e-12)
    _, cold, n_cold = graphical_lasso(S2, alpha, tol=1e-12, return_n_iter=True)
    _, warm, n_warm = graphical_lasso(S2, alpha, tol=1e-12, precision_init=P1, return_n_iter=True)
    assert np.abs(warm - cold).max() <= 1e-8 * np.abs(cold).max()
    assert n_warm < n_cold
    # Not positive definite: ignored (cold start).
    _, P_bad, n_bad = graphical_lasso(S2, alpha, tol=1e-12, precision_init=-np.eye(20), return_n_iter=True)
    assert n_bad == n_cold
    np.testing.assert_array_equal(P_bad, cold)


# ---------------------------------------------------------------------------------------------
# e) large problems


@pytest.mark.parametrize("p, n, frac", [(500, 2000, 0.25), (1000, 4000, 0.6)])
def test_large_factor_covariance_converges(p, n, frac):
    rng = np.random.default_rng(p)
    S = factor_covariance(rng, p, n=n, strength=0.7, noise=1.0)
    alpha = frac * float(np.mean(np.diag(S)))
    start = time.perf_counter()
    cov, precision, n_iter = graphical_lasso(S, alpha, return_n_iter=True)
    elapsed = time.perf_counter() - start
    assert is_spd(precision)
    W = np.linalg.inv(precision)
    assert kkt_violation(S, alpha, precision, W) <= KKT_TOL_LARGE
    assert 0 < np.count_nonzero(precision) < p * p / 2  # a sparse, non-trivial answer
    assert n_iter < 100
    assert elapsed < 60


def factor_correlation(rng, p, k=5):
    """Correlation matrix of the population covariance L Lᵀ + I of a k-factor model (L standard
    normal): dense, strongly correlated and ill-conditioned, the structure of the speed benchmark."""
    L = rng.standard_normal((p, k))
    S = L @ L.T + np.eye(p)
    d = np.sqrt(np.diag(S))
    S = S / np.outer(d, d)
    return 0.5 * (S + S.T)


def test_factor_correlation_converges_to_tight_kkt():
    rng = np.random.default_rng(300)
    p, alpha, tol = 300, 0.1, 1e-10
    S = factor_correlation(rng, p)
    cov, precision, n_iter = graphical_lasso(S, alpha, tol=tol, return_n_iter=True)
    assert is_spd(precision)
    W = np.linalg.inv(precision)
    assert kkt_violation(S, alpha, precision, W) <= KKT_TOL
    assert _core.glasso_duality_gap(S, alpha, precision, False) <= tol * p
    assert np.abs(cov - W).max() <= 1e-10 * np.abs(W).max()
    assert n_iter < 60
    assert 0 < np.count_nonzero(precision) < p * p / 4


@pytest.mark.parametrize("kind", ["sparse", "factor"])
def test_loose_tolerance_is_certified(kind):
    # The 20×20 benchmark setting: a duality gap of 1e-4, i.e. tol = 1e-4 / p. The answer is not
    # refined beyond what the gap and the KKT tolerance ask, but the gap holds.
    rng = np.random.default_rng(20)
    p, n = 20, 200
    if kind == "sparse":
        A = np.triu(rng.uniform(-1.0, 1.0, (p, p)) * (rng.random((p, p)) < 0.1), 1)
        P = A + A.T
        P += np.eye(p) * (np.abs(P).sum(axis=1).max() + 0.5)
        X = rng.standard_normal((n, p)) @ np.linalg.cholesky(np.linalg.inv(P)).T
    else:
        X = rng.standard_normal((n, 5)) @ rng.standard_normal((5, p)) + rng.standard_normal((n, p))
    S = np.cov(X.T, bias=True)
    d = np.sqrt(np.diag(S))
    S = 0.5 * (S / np.outer(d, d) + (S / np.outer(d, d)).T)
    _, precision = graphical_lasso(S, 0.1, tol=1e-4 / p)
    assert is_spd(precision)
    assert _core.glasso_duality_gap(S, 0.1, precision, False) <= 1e-4
    _, exact = graphical_lasso(S, 0.1, tol=1e-12)
    assert np.abs(precision - exact).max() <= 1e-2 * np.abs(exact).max()


def test_input_layouts_give_identical_results():
    rng = np.random.default_rng(14)
    S = factor_covariance(rng, 12, n=60)
    _, expected = graphical_lasso(S, 0.1, tol=1e-10)
    big = np.zeros((24, 24))
    big[::2, ::2] = S
    for variant in (np.asfortranarray(S), S.tolist(), big[::2, ::2]):  # F order, a list, a strided view
        _, precision = graphical_lasso(variant, 0.1, tol=1e-10)
        np.testing.assert_array_equal(precision, expected)


def test_repeated_calls_are_identical():
    # The solver's buffers are reused from call to call (and across sizes): results do not depend
    # on what was solved before.
    rng = np.random.default_rng(15)
    problems = [factor_covariance(rng, p, n=4 * p) for p in (6, 25, 6, 40, 25)]
    first = [graphical_lasso(S, 0.1, tol=1e-11, return_n_iter=True) for S in problems]
    second = [graphical_lasso(S, 0.1, tol=1e-11, return_n_iter=True) for S in reversed(problems)][::-1]
    for (c1, p1, n1), (c2, p2, n2) in zip(first, second):
        np.testing.assert_array_equal(p1, p2)
        np.testing.assert_array_equal(c1, c2)
        assert n1 == n2


# ---------------------------------------------------------------------------------------------
# f) special cases


def test_alpha_zero_is_the_inverse():
    rng = np.random.default_rng(3)
    S = factor_covariance(rng, 15, n=60)
    cov, precision = graphical_lasso(S, 0.0)
    expected = np.linalg.inv(S)
    assert np.abs(precision - expected).max() <= INVERSE_RTOL * np.abs(expected).max()
    np.testing.assert_array_equal(cov, S)
    with pytest.raises(NumericalError, match="not positive definite"):
        graphical_lasso(factor_covariance(rng, 15, n=5), 0.0)


def test_large_alpha_gives_diagonal_precision():
    rng = np.random.default_rng(4)
    S = factor_covariance(rng, 12, n=50)
    alpha = 1.01 * np.abs(S - np.diag(np.diag(S))).max()
    cov, precision = graphical_lasso(S, alpha)
    np.testing.assert_array_equal(precision, np.diag(1.0 / np.diag(S)))
    np.testing.assert_array_equal(cov, np.diag(np.diag(S)))
    cov, precision = graphical_lasso(S, alpha, penalize_diagonal=True)
    assert_allclose(precision, np.diag(1.0 / (np.diag(S) + alpha)), rtol=1e-15)


def test_penalize_diagonal_matches_kkt_and_sklearn_shift():
    rng = np.random.default_rng(5)
    S = factor_covariance(rng, 20, n=80)
    alpha = 0.05 * float(np.mean(np.diag(S)))
    cov, precision = graphical_lasso(S, alpha, tol=1e-12, penalize_diagonal=True)
    W = np.linalg.inv(precision)
    assert_allclose(np.diag(W), np.diag(S) + alpha, rtol=0, atol=1e-10)
    assert kkt_violation(S, alpha, precision, W, penalize_diagonal=True) <= KKT_TOL
    # Penalising the diagonal equals the unpenalised problem on S + alpha I.
    _, shifted = graphical_lasso(S + alpha * np.eye(20), alpha, tol=1e-12)
    assert np.abs(precision - shifted).max() <= 1e-8 * np.abs(shifted).max()


def test_screening_block_diagonal_equals_separate_blocks():
    rng = np.random.default_rng(6)
    A = factor_covariance(rng, 8, k=2, n=40, strength=2.0)
    B = factor_covariance(rng, 6, k=1, n=40, strength=2.0)
    alpha = 0.1
    perm = rng.permutation(14)
    S = np.zeros((14, 14))
    S[np.ix_(perm[:8], perm[:8])] = A
    S[np.ix_(perm[8:], perm[8:])] = B
    _, P = graphical_lasso(S, alpha, tol=1e-12)
    _, PA = graphical_lasso(A, alpha, tol=1e-12)
    _, PB = graphical_lasso(B, alpha, tol=1e-12)
    expected = np.zeros((14, 14))
    expected[np.ix_(perm[:8], perm[:8])] = PA
    expected[np.ix_(perm[8:], perm[8:])] = PB
    assert_allclose(P, expected, rtol=1e-9, atol=1e-12)
    assert np.count_nonzero(P[np.ix_(perm[:8], perm[8:])]) == 0


def test_duality_gap_certifies_the_objective():
    rng = np.random.default_rng(8)
    S = factor_covariance(rng, 10, n=50)
    alpha = 0.1 * float(np.mean(np.diag(S)))
    _, P = graphical_lasso(S, alpha, tol=1e-12)
    gap = _core.glasso_duality_gap(S, alpha, P, False)
    assert 0 <= gap <= 1e-12 * 10
    f_opt = _core.glasso_objective(S, alpha, P, False)
    # Any other positive definite point has a larger objective, by at most the gap below it.
    for _ in range(5):
        E = 1e-3 * rng.standard_normal(S.shape)
        Q = P + (E + E.T) / 2
        assert _core.glasso_objective(S, alpha, Q, False) >= f_opt - gap
    # Naive primal − dual at the solution agrees with the gap.
    W = np.linalg.inv(P)
    Wt = S + np.clip(W - S, -alpha, alpha)
    np.fill_diagonal(Wt, np.diag(S))
    naive = f_opt - (np.linalg.slogdet(Wt)[1] + 10)
    assert abs(naive - gap) < 1e-10


def test_convergence_warning_when_capped():
    rng = np.random.default_rng(9)
    S = factor_covariance(rng, 30, n=80)
    with pytest.warns(ConvergenceWarning, match="did not converge"):
        cov, precision = graphical_lasso(S, 0.02 * float(np.mean(np.diag(S))), tol=1e-14, max_iter=1)
    assert is_spd(precision)


# ---------------------------------------------------------------------------------------------
# g) validation, inputs left alone, the estimator


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"emp_cov": np.ones((3, 4))}, "emp_cov"),
        ({"emp_cov": np.array([[1.0, np.nan], [np.nan, 1.0]])}, "emp_cov"),
        ({"emp_cov": np.array([[1.0, 0.5], [0.4, 1.0]])}, "emp_cov must be symmetric"),
        ({"alpha": -0.1}, "alpha.*-0.1"),
        ({"alpha": np.inf}, "alpha"),
        ({"alpha": np.nan}, "alpha"),
        ({"tol": -1.0}, "tol"),
        ({"max_iter": 0}, "max_iter"),
        ({"precision_init": np.eye(2)}, "precision_init"),
        ({"precision_init": np.full((3, 3), np.nan)}, "precision_init"),
    ],
)
def test_bad_input_raises_value_error_naming_the_argument(kwargs, match):
    args = {"emp_cov": np.eye(3) + 0.1, "alpha": 0.1}
    args.update(kwargs)
    emp_cov, alpha = args.pop("emp_cov"), args.pop("alpha")
    with pytest.raises(ValueError, match=match):
        graphical_lasso(emp_cov, alpha, **args)


def test_inputs_are_not_modified():
    rng = np.random.default_rng(10)
    S = factor_covariance(rng, 10, n=40)
    P0 = np.linalg.inv(S + np.eye(10))
    S_copy, P0_copy = S.copy(), P0.copy()
    graphical_lasso(S, 0.1, precision_init=P0)
    np.testing.assert_array_equal(S, S_copy)
    np.testing.assert_array_equal(P0, P0_copy)
    X = rng.standard_normal((30, 5))
    X_copy = X.copy()
    GraphicalLasso(alpha=0.1).fit(X)
    np.testing.assert_array_equal(X, X_copy)


def test_estimator_matches_the_function():
    rng = np.random.default_rng(13)
    X = rng.standard_normal((120, 3)) @ rng.standard_normal((3, 8)) + 0.5 * rng.standard_normal((120, 8)) + 3.0
    model = GraphicalLasso(alpha=0.05, tol=1e-12)
    assert model.fit(X) is model
    S = sklearn_covariance.empirical_covariance(X)
    cov, precision, n_iter = graphical_lasso(S, 0.05, tol=1e-12, return_n_iter=True)
    assert_allclose(model.location_, X.mean(axis=0), rtol=1e-14)
    assert_allclose(model.covariance_, cov, rtol=1e-10, atol=1e-12)
    assert_allclose(model.precision_, precision, rtol=1e-10, atol=1e-12)
    assert model.n_iter_ == n_iter
    assert model.converged_ is True
    assert 0 <= model.gap_ <= 1e-12 * 8
    assert model.n_features_in_ == 8
    # The same as scikit-learn's estimator where that one converges.
    sk = sklearn_covariance.GraphicalLasso(alpha=0.05, tol=1e-12, enet_tol=1e-12, max_iter=10000).fit(X)
    assert np.abs(model.precision_ - sk.precision_).max() <= RTOL_VS_SKLEARN * np.abs(sk.precision_).max()
    # assume_centered uses X as given.
    centered = GraphicalLasso(alpha=0.05, tol=1e-12, assume_centered=True).fit(X - X.mean(axis=0))
    assert_allclose(centered.precision_, model.precision_, rtol=1e-8, atol=1e-10)
    np.testing.assert_array_equal(centered.location_, np.zeros(8))


def test_estimator_validates_x():
    with pytest.raises(ValueError, match="X"):
        GraphicalLasso().fit(np.ones(5))
    with pytest.raises(ValueError, match="X"):
        GraphicalLasso().fit(np.ones((1, 3)))
    with pytest.raises(ValueError, match="alpha"):
        GraphicalLasso(alpha=-1.0).fit(np.random.default_rng(0).standard_normal((10, 3)))
