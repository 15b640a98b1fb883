"""PCA and ICA baselines (metaglasso.baselines) and the paper's comparison with MGLASSO."""

import sys
import warnings

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from metaglasso import ConvergenceWarning, MetaGraphicalLasso
from metaglasso.baselines import BaselineResult, fit_baseline, principal_components, standardize_datasets
from metaglasso.datasets import make_synthetic
from metaglasso.metrics import evaluate, space_alignment
from test_glasso import kkt_violation

# Tolerances used below, in one place.
SVD_ATOL = 1e-10  # PCA components against numpy's SVD, up to sign
ORTHO_ATOL = 1e-12  # orthonormality of components
KKT_TOL = 1e-8  # absolute KKT residual of the per-dataset graphical lasso at glasso_tol=1e-10
CLOSED_FORM_RTOL = 1e-12  # ε_k and the projected covariances against direct formulas
DECORRELATION_ATOL = 1e-8  # off-diagonal correlation of ICA sources on the standardized data


def standardized_stack(Xs):
    """Independent standardization: per dataset, centre and divide by the (1/N) standard deviation."""
    return np.vstack([(X - X.mean(axis=0)) / X.std(axis=0) for X in Xs])


def same_up_to_sign(A, B, atol):
    signs = np.sign(np.sum(A * B, axis=1))
    return np.max(np.abs(A - signs[:, None] * B)) <= atol


@pytest.fixture(scope="module")
def data():
    # FastICA converges on these (Gaussian) data for seeds 0-3; on some draws it does not.
    Xs, truth = make_synthetic(30, [60, 80, 70], 3, 4, random_state=5)
    return Xs, truth


# ---------------------------------------------------------------------------------------------
# standardization and PCA


def test_standardize_datasets_matches_direct_formula_and_handles_constant_columns():
    rng = np.random.default_rng(0)
    Xs = [rng.standard_normal((20, 5)) * [1, 2, 3, 4, 5] + 7, rng.standard_normal((30, 5))]
    Xs[1][:, 2] = 4.0  # constant within dataset 1
    Z, means, scales = standardize_datasets(Xs)
    assert Z.shape == (50, 5)
    assert_allclose(Z[:20], (Xs[0] - Xs[0].mean(0)) / Xs[0].std(0), atol=1e-14)
    assert_array_equal(Z[20:, 2], 0.0)
    assert scales[1, 2] == 1.0
    assert_allclose(Z.std(axis=0)[[0, 1, 3, 4]], 1.0, atol=1e-13)


@pytest.mark.parametrize("shape", [(200, 30), (40, 120)])  # both Gram branches: n > V and n < V
def test_principal_components_match_numpy_svd(shape):
    rng = np.random.default_rng(1)
    n, V = shape
    Z = rng.standard_normal((n, V)) * np.linspace(3.0, 0.5, V)  # distinct variances: a clear spectrum
    Z -= Z.mean(axis=0)
    components, singular_values = principal_components(Z, 6)
    _, s, Vt = np.linalg.svd(Z, full_matrices=False)
    assert same_up_to_sign(components, Vt[:6], SVD_ATOL)
    assert_allclose(singular_values, s[:6], rtol=1e-12)
    assert_allclose(components @ components.T, np.eye(6), atol=ORTHO_ATOL)
    # sign convention: the largest-magnitude entry of each component is positive
    idx = np.argmax(np.abs(components), axis=1)
    assert np.all(components[np.arange(6), idx] > 0)


@pytest.mark.parametrize("shape", [(200, 30), (40, 120)])
def test_principal_components_without_scipy_match(shape, monkeypatch):
    # Without SciPy the full NumPy eigendecomposition is used; the result is the same.
    rng = np.random.default_rng(2)
    Z = rng.standard_normal(shape) * np.linspace(3.0, 0.5, shape[1])
    Z -= Z.mean(axis=0)
    with_scipy, s1 = principal_components(Z, 5)
    monkeypatch.setitem(sys.modules, "scipy.linalg", None)
    without_scipy, s2 = principal_components(Z, 5)
    assert np.max(np.abs(with_scipy - without_scipy)) <= SVD_ATOL  # same sign convention, no flips
    assert_allclose(s1, s2, rtol=1e-12)


def test_pca_baseline_components_are_svd_of_standardized_concatenation(data):
    Xs, _ = data
    result = fit_baseline(Xs, 4, "pca", alpha=0.05)
    Z = standardized_stack(Xs)
    _, _, Vt = np.linalg.svd(Z, full_matrices=False)
    assert isinstance(result, BaselineResult) and result.method == "pca"
    assert result.components_.shape == (4, 30)
    assert same_up_to_sign(result.components_, Vt[:4], SVD_ATOL)
    assert_allclose(result.components_ @ result.components_.T, np.eye(4), atol=ORTHO_ATOL)


def test_pca_matches_scikit_learn_pca(data):
    decomposition = pytest.importorskip("sklearn.decomposition")
    Xs, _ = data
    result = fit_baseline(Xs, 4, "pca")
    sk = decomposition.PCA(n_components=4, svd_solver="full").fit(standardized_stack(Xs))
    assert same_up_to_sign(result.components_, sk.components_, 1e-8)


@pytest.mark.parametrize("method", ["pca", "ica"])
def test_per_dataset_fit_is_glasso_of_projected_original_covariance(data, method):
    if method == "ica":
        pytest.importorskip("sklearn")
    Xs, _ = data
    alpha = 0.05
    result = fit_baseline(Xs, 4, method, alpha=alpha)
    D = result.components_.T
    U = np.linalg.svd(D, full_matrices=False)[0]  # orthonormal basis of span D
    V, M = D.shape
    assert result.precisions_.shape == result.covariances_.shape == (3, 4, 4)
    for k, X in enumerate(Xs):
        Xc = X - X.mean(axis=0)
        S = Xc.T @ Xc / X.shape[0]  # original scale, biased, centred
        S_latent = D.T @ S @ D
        P, W = result.precisions_[k], result.covariances_[k]
        assert_allclose(P, P.T, atol=0)
        assert np.linalg.eigvalsh(P).min() > 0
        assert_allclose(W @ P, np.eye(M), atol=1e-10)
        assert kkt_violation(S_latent, alpha, P, W, penalize_diagonal=True) <= KKT_TOL
        eps = (np.trace(S) - np.trace(U.T @ S @ U)) / (V - M)
        assert_allclose(result.noise_variances_[k], eps, rtol=CLOSED_FORM_RTOL)
    assert np.count_nonzero(result.precisions_ * (1 - np.eye(4))) < 3 * 12  # the penalty zeroes some entries


def test_inputs_not_modified(data):
    Xs, _ = data
    Xs = [X.copy() for X in Xs]
    Xs[1] = np.asfortranarray(Xs[1])
    before = [X.copy() for X in Xs]
    fit_baseline(Xs, 3, "pca")
    for a, b in zip(before, Xs):
        assert_array_equal(a, b)


@pytest.mark.parametrize(
    "args, kwargs, match",
    [
        ((3, "nmf"), {}, r"method must be one of \('pca', 'ica'\); got 'nmf'"),
        ((30, "pca"), {}, r"n_components must be smaller than n_features=30; got n_components=30"),
        ((0, "pca"), {}, r"n_components must be an integer >= 1; got 0"),
        ((3, "pca"), {"alpha": -1.0}, r"alpha must be a finite number >= 0; got -1.0"),
        ((3, "pca"), {"random_state": -1}, r"random_state must be in \[0, 2\*\*64\); got -1"),
        ((3, "pca"), {"glasso_max_iter": 0}, r"glasso_max_iter must be an integer >= 1; got 0"),
    ],
)
def test_bad_arguments_raise_value_error(data, args, kwargs, match):
    Xs, _ = data
    with pytest.raises(ValueError, match=match):
        fit_baseline(Xs, *args, **kwargs)


def test_rank_deficient_data_raise_value_error():
    rng = np.random.default_rng(3)
    Xs = [rng.standard_normal((3, 10))]  # centred: rank 2
    with pytest.raises(ValueError, match=r"rank < n_components=3"):
        fit_baseline(Xs, 3, "pca")
    with pytest.raises(ValueError, match=r"n_components must be <= the total number of samples 3; got 4"):
        fit_baseline(Xs, 4, "pca")


# ---------------------------------------------------------------------------------------------
# ICA


def test_ica_components_span_the_principal_subspace_and_decorrelate(data):
    pytest.importorskip("sklearn")
    Xs, _ = data
    pca = fit_baseline(Xs, 4, "pca", alpha=0.05)
    ica = fit_baseline(Xs, 4, "ica", alpha=0.05, random_state=0)
    assert ica.method == "ica"
    assert_allclose(np.linalg.norm(ica.components_, axis=1), 1.0, atol=ORTHO_ATOL)
    # FastICA whitens with the top principal directions: the same subspace, hence the same ε_k
    assert abs(space_alignment(pca.components_, ica.components_) - 4.0) <= 1e-10
    assert_allclose(ica.noise_variances_, pca.noise_variances_, rtol=CLOSED_FORM_RTOL)
    # the sources are uncorrelated on the standardized data (and the factors are not orthogonal)
    sources = standardized_stack(Xs) @ ica.components_.T
    C = np.corrcoef(sources, rowvar=False)
    assert np.max(np.abs(C - np.eye(4))) <= DECORRELATION_ATOL
    assert np.max(np.abs(ica.components_ @ ica.components_.T - np.eye(4))) > 1e-3
    # deterministic for a given seed
    again = fit_baseline(Xs, 4, "ica", alpha=0.05, random_state=0)
    assert_array_equal(again.components_, ica.components_)


def test_ica_convergence_warning(data):
    pytest.importorskip("sklearn")
    Xs, _ = data
    with pytest.warns(ConvergenceWarning, match=r"FastICA did not converge in ica_max_iter=1"):
        fit_baseline(Xs, 4, "ica", ica_max_iter=1, ica_tol=1e-12)


def test_ica_without_scikit_learn_raises_import_error(data, monkeypatch):
    Xs, _ = data
    monkeypatch.setitem(sys.modules, "sklearn.decomposition", None)
    with pytest.raises(ImportError, match=r"method='ica' requires scikit-learn"):
        fit_baseline(Xs, 4, "ica")
    fit_baseline(Xs, 4, "pca")  # PCA needs no scikit-learn


# ---------------------------------------------------------------------------------------------
# the paper's comparison (Table 1, V = 100, N = 200, K = M = 10, ρ = 0.09)


def test_mglasso_beats_pca_and_ica_on_dist_and_kld():
    pytest.importorskip("sklearn")
    Xs, truth = make_synthetic(100, 200, 10, 10, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        mglasso = evaluate(truth, MetaGraphicalLasso(n_components=10, alpha=0.09).fit(Xs))
        pca = evaluate(truth, fit_baseline(Xs, 10, "pca", alpha=0.09))
        ica = evaluate(truth, fit_baseline(Xs, 10, "ica", alpha=0.09, random_state=0))
    assert mglasso["dist"] > max(pca["dist"], ica["dist"])
    assert mglasso["kld"] < min(pca["kld"], ica["kld"])
    # The subspace itself is found by all three (Space close to M = 10); PCA and ICA share it.
    assert min(mglasso["space"], pca["space"], ica["space"]) > 9.5
    assert abs(pca["space"] - ica["space"]) <= 1e-10
