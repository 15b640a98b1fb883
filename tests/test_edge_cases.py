"""Numerical edge cases of the fit and the graphical lasso, each with its documented outcome
(README, "Edge cases")."""

import warnings

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from metaglasso import ConvergenceWarning, MetaGraphicalLasso, NumericalError, graphical_lasso
from metaglasso.datasets import make_synthetic
from test_glasso import is_spd, kkt_violation

# Tolerances used below, in one place.
KKT_TOL = 1e-8  # absolute KKT residual of each Λ_k against Dᵀ S_k D, relative to max |Dᵀ S_k D|
SCALE_RTOL = 1e-9  # fits of c·X against c² × the fit of X (rounding only; observed ~1e-12)
LAYOUT_EXACT = 0.0  # other memory layouts of the same float64 values give bit-identical fits


@pytest.fixture(scope="module")
def data():
    Xs, _ = make_synthetic(30, 50, 3, 3, random_state=0)
    return Xs


def sample_covariance(X):
    Xc = X - X.mean(axis=0)
    return Xc.T @ Xc / X.shape[0]


def check_valid_fit(model, Xs, alpha, *, penalize_diagonal=True, assume_centered=False):
    """Every Λ_k is SPD and solves the graphical lasso of Dᵀ S_k D (KKT), ε_k > 0, D orthonormal."""
    D = model.components_.T
    assert_allclose(D.T @ D, np.eye(D.shape[1]), atol=1e-12)
    assert np.all(np.isfinite(model.precisions_)) and np.all(model.noise_variances_ > 0)
    for X, P, W in zip(Xs, model.precisions_, model.covariances_):
        S = X.T @ X / X.shape[0] if assume_centered else sample_covariance(X)
        A = D.T @ S @ D
        assert is_spd(P)
        assert kkt_violation(A, alpha, P, W, penalize_diagonal) <= KKT_TOL * max(1.0, np.abs(A).max())


# ---------------------------------------------------------------------------------------------
# too few samples, rank deficiency, no variance


@pytest.mark.parametrize("n_samples, n_components", [(2, 1), (3, 2), (4, 5)])
def test_too_few_samples_is_a_value_error(data, n_samples, n_components):
    # N_k centred samples span at most N_k - 1 directions; when that is <= M, D can take in all of
    # a dataset's variance and the likelihood is unbounded (ε_k → 0).
    Xs = [X[:n_samples] for X in data]
    with pytest.raises(ValueError, match=rf"Xs\[0\] has n_samples={n_samples}: .* rank <= {n_samples - 1} "
                                         rf"<= n_components={n_components}.* at least {n_components + 2} samples"):
        MetaGraphicalLasso(n_components=n_components, alpha=0.05).fit(Xs)


def test_two_samples_with_assume_centered(data):
    # Uncentred, two samples span two directions: M = 1 is well posed.
    Xs = [X[:2] for X in data]
    model = MetaGraphicalLasso(n_components=1, alpha=0.05, assume_centered=True).fit(Xs)
    check_valid_fit(model, Xs, 0.05, assume_centered=True)
    with pytest.raises(ValueError, match=r"at least 3 samples"):
        MetaGraphicalLasso(n_components=2, alpha=0.05, assume_centered=True).fit(Xs)


def test_rank_deficient_dataset_raises_numerical_error_naming_it(data):
    # 40 samples but only 3 distinct ones: rank 2 <= M = 3, so ε_1 would be 0.
    Xs = [data[0], np.repeat(data[1][:3], [14, 13, 13], axis=0), data[2]]
    with pytest.raises(NumericalError, match=r"dataset 1: the data has no variance outside the span of D"):
        MetaGraphicalLasso(n_components=3, alpha=0.05).fit(Xs)


def test_constant_dataset_raises_numerical_error(data):
    Xs = [data[0], np.full_like(data[1], 3.0)]
    with pytest.raises(NumericalError, match=r"dataset 1: the data has no variance \(tr S = 0\)"):
        MetaGraphicalLasso(n_components=3, alpha=0.05).fit(Xs)


def test_factor_without_variance_is_unbounded_unless_the_diagonal_is_penalised():
    # Dataset 0 has no variance in feature 5. With D = e_5 its latent variance is 0 and, with the
    # diagonal of Λ unpenalised, the objective is unbounded below: a NumericalError naming it.
    rng = np.random.default_rng(1)
    Xs = [rng.standard_normal((40, 6)), rng.standard_normal((40, 6))]
    Xs[0][:, 5] = 1.0
    init = np.eye(6)[[5]]
    with pytest.raises(NumericalError, match=r"dataset 0: factor 0 carries no variance .*penalize_diagonal=True"):
        MetaGraphicalLasso(n_components=1, alpha=0.1, init=init, max_iter=5, penalize_diagonal=False).fit(Xs)
    # Penalising the diagonal (the default) bounds it: Σ_0 = (Dᵀ S_0 D) + ρ = ρ at that D.
    model = MetaGraphicalLasso(n_components=1, alpha=0.1, init=init, max_iter=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(Xs)
    check_valid_fit(model, Xs, 0.1, penalize_diagonal=True)


def test_constant_and_duplicated_variables(data):
    # A constant feature has a zero row in every S_k, hence zero rows in the gradient: its loadings
    # stay exactly 0. Two identical features get identical loadings.
    Xs = [np.hstack([X, np.full((X.shape[0], 1), 2.5), X[:, [4]]]) for X in data]
    model = MetaGraphicalLasso(n_components=3, alpha=0.05).fit(Xs)
    check_valid_fit(model, Xs, 0.05)
    assert np.abs(model.components_[:, 30]).max() <= 1e-12
    assert_allclose(model.components_[:, 31], model.components_[:, 4], rtol=0, atol=1e-10)


# ---------------------------------------------------------------------------------------------
# penalty extremes


def test_alpha_zero_gives_the_inverse_projected_covariance(data):
    model = MetaGraphicalLasso(n_components=3, alpha=0.0).fit(data)
    D = model.components_.T
    for X, P in zip(data, model.precisions_):
        expected = np.linalg.inv(D.T @ sample_covariance(X) @ D)
        assert np.abs(P - expected).max() <= 1e-10 * np.abs(expected).max()


def test_alpha_zero_on_singular_input_is_a_numerical_error():
    # No ridge is added: with ρ = 0 a singular covariance has no inverse, and that is an error.
    rng = np.random.default_rng(2)
    X = rng.standard_normal((3, 6))
    with pytest.raises(NumericalError, match=r"not positive definite, so with rho = 0 .* use rho > 0"):
        graphical_lasso(sample_covariance(X), 0.0)


def test_zero_diagonal_in_the_glasso():
    S = np.diag([1.0, 0.0, 2.0])
    with pytest.raises(NumericalError, match=r"S\[1, 1\] = 0 makes the problem unbounded"):
        graphical_lasso(S, 0.1)
    _, precision = graphical_lasso(S, 0.1, penalize_diagonal=True)
    assert_allclose(precision, np.diag([1 / 1.1, 1 / 0.1, 1 / 2.1]), rtol=1e-15)


def test_huge_alpha_gives_diagonal_latent_precisions(data):
    model = MetaGraphicalLasso(n_components=3, alpha=1e6, penalize_diagonal=False).fit(data)
    D = model.components_.T
    for X, P in zip(data, model.precisions_):
        assert_array_equal(P, np.diag(np.diag(P)))
        assert_allclose(np.diag(P), 1.0 / np.diag(D.T @ sample_covariance(X) @ D), rtol=1e-12)
    model = MetaGraphicalLasso(n_components=3, alpha=1e6).fit(data)
    D = model.components_.T
    for X, P in zip(data, model.precisions_):
        assert_allclose(np.diag(P), 1.0 / (np.diag(D.T @ sample_covariance(X) @ D) + 1e6), rtol=1e-12)


# ---------------------------------------------------------------------------------------------
# scales, sizes and layouts


@pytest.mark.parametrize("c", [1e-8, 1e8])
def test_data_scale_scales_the_fit_exactly(data, c):
    # E(c²S, c²ρ) at (D, Λ/c², c²ε) equals E(S, ρ) at (D, Λ, ε) plus 2 K V log c, so the fit of c X
    # with ρ c² is the fit of X with Σ_k, ε_k times c² and the same D.
    base = MetaGraphicalLasso(n_components=3, alpha=0.05).fit(data)
    scaled = MetaGraphicalLasso(n_components=3, alpha=0.05 * c**2).fit([c * X for X in data])
    assert_allclose(scaled.noise_variances_ / c**2, base.noise_variances_, rtol=SCALE_RTOL)
    assert_allclose(scaled.covariances_ / c**2, base.covariances_, rtol=0,
                    atol=SCALE_RTOL * np.abs(base.covariances_).max())
    assert_allclose(scaled.components_, base.components_, rtol=0, atol=SCALE_RTOL)
    assert scaled.objective_ == pytest.approx(base.objective_ + 2 * 3 * 30 * np.log(c), rel=1e-12)


def test_one_dataset(data):
    # K = 1: the PCA start is already stationary (to working precision) and is reported converged.
    model = MetaGraphicalLasso(n_components=3, alpha=0.05).fit(data[:1])
    assert model.converged_
    check_valid_fit(model, data[:1], 0.05)


def test_one_component(data):
    model = MetaGraphicalLasso(n_components=1, alpha=0.05).fit(data)
    assert model.converged_ and model.precisions_.shape == (3, 1, 1)
    check_valid_fit(model, data, 0.05)


def test_n_components_one_less_than_n_features():
    Xs, _ = make_synthetic(6, 60, 2, 2, random_state=3)
    model = MetaGraphicalLasso(n_components=5, alpha=0.05, max_iter=2000).fit(Xs)
    assert model.converged_
    check_valid_fit(model, Xs, 0.05)
    # One direction is left for the noise: ε_k is the variance of S_k outside span D.
    D = model.components_.T
    for X, eps in zip(Xs, model.noise_variances_):
        S = sample_covariance(X)
        assert eps == pytest.approx(np.trace(S) - np.trace(D.T @ S @ D), rel=1e-10)


def test_float32_fortran_and_strided_inputs_give_the_same_fit(data):
    # Each layout holds the same values as a C-ordered float64 array and must give its fit bit
    # for bit; the caller's arrays are not modified.
    as32 = [X.astype(np.float32) for X in data]
    strided = []
    for X in data:
        wide = np.zeros((X.shape[0], 2 * X.shape[1]))
        wide[:, ::2] = X
        strided.append(wide[:, ::2])
    assert not strided[0].flags.c_contiguous
    cases = {
        "float32": (as32, [X.astype(np.float64) for X in as32]),
        "float32, Fortran order": ([np.asfortranarray(X) for X in as32], [X.astype(np.float64) for X in as32]),
        "Fortran order": ([np.asfortranarray(X) for X in data], data),
        "strided view": (strided, data),
    }
    for name, (Xs, plain) in cases.items():
        before = [X.copy() for X in Xs]
        model = MetaGraphicalLasso(n_components=3, alpha=0.05).fit(Xs)
        expected = MetaGraphicalLasso(n_components=3, alpha=0.05).fit(plain)
        assert np.abs(model.components_ - expected.components_).max() <= LAYOUT_EXACT, name
        assert np.abs(model.precisions_ - expected.precisions_).max() <= LAYOUT_EXACT, name
        for X, B in zip(Xs, before):
            assert_array_equal(X, B)
