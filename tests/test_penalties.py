"""Per-dataset penalties ρ_k, the paper's penalty as the default, the canonical form and n_init starts
of the estimator, against the NumPy reference and the graphical lasso's optimality conditions."""

import warnings

import numpy as np
import pytest

from metaglasso import ConvergenceWarning, MetaGraphicalLasso, MetaGraphicalLassoBIC, _core
from metaglasso import reference as ref
from metaglasso.datasets import make_synthetic
from metaglasso.io import load_model, save_model
from test_glasso import kkt_violation

pytestmark = pytest.mark.filterwarnings("ignore::metaglasso.exceptions.GridEdgeWarning")  # grids chosen for speed

V, M = 30, 3
SIZES = [40, 120, 400]
RHOS = [0.02, 0.1, 0.3]
KKT_TOL = 1e-8  # largest subgradient residual of each Λ_k at its own ρ_k, relative to max(1, max |A_k|)
REF_OBJECTIVE_RTOL = 1e-9  # core and reference L-BFGS from the same start reach the same optimum
REF_COMPONENTS_ATOL = 1e-5  # ... with D agreeing to the accuracy of the stopping rule (tol = 1e-12)


@pytest.fixture(scope="module")
def data():
    Xs, _ = make_synthetic(V, SIZES, 3, M, random_state=11)
    return Xs


def projected_covariances(model, Xs):
    D = model.components_.T
    return [D.T @ np.cov(X, rowvar=False, bias=True) @ D for X in Xs]


@pytest.mark.parametrize("penalize_diagonal", [True, False])
def test_each_dataset_solves_its_own_graphical_lasso(data, penalize_diagonal):
    model = MetaGraphicalLasso(n_components=M, alpha=RHOS, tol=1e-12, penalize_diagonal=penalize_diagonal).fit(data)
    assert model.converged_
    np.testing.assert_array_equal(model.alphas_, RHOS)
    A = projected_covariances(model, data)
    for k in range(3):
        scale = max(1.0, np.abs(A[k]).max())
        assert kkt_violation(A[k], RHOS[k], model.precisions_[k], model.covariances_[k], penalize_diagonal) \
            <= KKT_TOL * scale
    # The conditions tell the penalties apart: with the datasets' penalties swapped they fail.
    swapped = max(kkt_violation(A[k], RHOS[(k + 1) % 3], model.precisions_[k], model.covariances_[k],
                                penalize_diagonal) for k in range(3))
    assert swapped > 1e-3


def test_per_dataset_penalties_match_the_reference(data):
    D0 = _core.random_initial_projection(V, M, 5)
    model = MetaGraphicalLasso(n_components=M, alpha=RHOS, init=D0.T, tol=1e-12).fit(data)
    r = ref.fit_lbfgs(data, D0, RHOS, tol=1e-12)
    assert r.converged
    assert model.objective_ == pytest.approx(r.objective, rel=REF_OBJECTIVE_RTOL)
    np.testing.assert_allclose(model.components_.T, r.components, atol=REF_COMPONENTS_ATOL)
    np.testing.assert_allclose(model.noise_variances_, r.noise_variances, rtol=1e-8)
    # The objective is the dense formula's with each dataset's own ρ_k.
    dense = ref.objective_dense(data, model.components_.T, model.precisions_, model.noise_variances_, RHOS)
    assert model.objective_ == pytest.approx(dense, rel=1e-10)


@pytest.mark.parametrize("solver", ["lbfgs", "adam"])
def test_equal_penalties_are_the_scalar_fit_bit_for_bit(data, solver):
    params = dict(n_components=M, solver=solver, max_iter=40 if solver == "adam" else 2000)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        scalar = MetaGraphicalLasso(alpha=0.07, **params).fit(data)
        vector = MetaGraphicalLasso(alpha=[0.07] * 3, **params).fit(data)
        scaled = MetaGraphicalLasso(alpha=0.07, alpha_scaling="n_samples", **params).fit([X[:40] for X in data])
        plain = MetaGraphicalLasso(alpha=0.07, **params).fit([X[:40] for X in data])
    for name in ("components_", "precisions_", "covariances_", "noise_variances_", "objective_history_"):
        np.testing.assert_array_equal(getattr(vector, name), getattr(scalar, name))
        # Equal sizes: the sample-size scaling is the identity.
        np.testing.assert_array_equal(getattr(scaled, name), getattr(plain, name))
    np.testing.assert_array_equal(scaled.alphas_, [0.07] * 3)


def test_sample_size_scaling_follows_the_stated_rule(data):
    model = MetaGraphicalLasso(n_components=M, alpha=0.1, alpha_scaling="n_samples").fit(data)
    expected = 0.1 * np.sqrt(np.mean(SIZES) / np.asarray(SIZES, dtype=float))
    np.testing.assert_allclose(model.alphas_, expected, rtol=1e-15)
    np.testing.assert_allclose(model.alphas_, ref.scaled_penalties(0.1, SIZES), rtol=1e-15)
    assert model.alphas_[0] > model.alphas_[1] > model.alphas_[2]  # the smallest dataset, the largest ρ_k
    A = projected_covariances(model, data)
    for k in range(3):
        assert kkt_violation(A[k], model.alphas_[k], model.precisions_[k], model.covariances_[k], True) \
            <= KKT_TOL * max(1.0, np.abs(A[k]).max())
    # K values times the scaling.
    model = MetaGraphicalLasso(n_components=M, alpha=[0.1, 0.2, 0.3], alpha_scaling="n_samples").fit(data)
    np.testing.assert_allclose(model.alphas_, ref.scaled_penalties([0.1, 0.2, 0.3], SIZES), rtol=1e-15)


def test_covariance_input_takes_the_same_penalties(data):
    covs = [np.cov(X, rowvar=False, bias=True) for X in data]
    a = MetaGraphicalLasso(n_components=M, alpha=0.05, alpha_scaling="n_samples").fit(data)
    b = MetaGraphicalLasso(n_components=M, alpha=0.05, alpha_scaling="n_samples").fit_covariances(covs, SIZES)
    np.testing.assert_array_equal(a.alphas_, b.alphas_)
    assert a.objective_ == pytest.approx(b.objective_, rel=1e-10)


def test_bic_searches_the_common_multiplier(data):
    search = MetaGraphicalLassoBIC([M], [0.05, 0.2], alpha_scaling="n_samples").fit(data)
    for r in search.results_:
        np.testing.assert_allclose(r["alphas"], ref.scaled_penalties(r["alpha"], SIZES), rtol=1e-15)
    np.testing.assert_allclose(search.best_estimator_.alphas_, ref.scaled_penalties(search.alpha_, SIZES),
                               rtol=1e-15)
    # BIC's parameter count is that of the fitted Λ_k, fitted with the ρ_k.
    best = search.best_estimator_
    assert best.n_parameters() == int(np.count_nonzero(best.precisions_)) + 3 + V * M - M * (M + 1) // 2


@pytest.mark.parametrize("alpha, message", [
    ([0.1, 0.1], r"alpha must be a number or hold one value per dataset \(3\); got shape \(2,\)"),
    ([[0.1, 0.1, 0.1]], r"alpha must be a number or hold one value per dataset \(3\); got shape \(1, 3\)"),
    ([0.1, -0.1, 0.1], r"alpha\[1\] must be a finite number >= 0; got -0.1"),
    ([0.1, 0.1, np.nan], r"alpha\[2\] must be a finite number >= 0; got nan"),
    ([0.1, "a", 0.1], r"alpha\[1\] must be a real number >= 0; got"),
    (-1.0, r"alpha must be a finite number >= 0; got -1.0"),
])
def test_bad_penalties_name_the_entry(data, alpha, message):
    with pytest.raises(ValueError, match=message):
        MetaGraphicalLasso(n_components=M, alpha=alpha).fit(data)


def test_bad_scaling_and_starts_are_named(data):
    with pytest.raises(ValueError, match=r"alpha_scaling must be one of \('none', 'n_samples'\); got 'sqrt'"):
        MetaGraphicalLasso(n_components=M, alpha_scaling="sqrt").fit(data)
    with pytest.raises(ValueError, match=r"n_init must be an integer >= 1; got 0"):
        MetaGraphicalLasso(n_components=M, n_init=0).fit(data)


def test_the_default_is_the_papers_penalty(data):
    # |Λ_k|_1 over all entries (paper, Notations): the default fit's objective is the dense formula with
    # the diagonal included, and the diagonal condition Σ_jj = A_jj + ρ holds.
    model = MetaGraphicalLasso(n_components=M, alpha=0.1).fit(data)
    assert model.penalize_diagonal is True
    dense = ref.objective_dense(data, model.components_.T, model.precisions_, model.noise_variances_, 0.1,
                                penalize_diagonal=True)
    assert model.objective_ == pytest.approx(dense, rel=1e-10)
    for A, C in zip(projected_covariances(model, data), model.covariances_):
        np.testing.assert_allclose(np.diag(C), np.diag(A) + 0.1, rtol=1e-9)


@pytest.mark.parametrize("solver", ["lbfgs", "adam"])
def test_fits_are_in_the_canonical_form(data, solver):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model = MetaGraphicalLasso(n_components=M, alpha=0.05, solver=solver, max_iter=30 if solver == "adam"
                                   else 2000, init="random", random_state=3).fit(data)
    D, P, C, order, signs = ref.canonical_form(model.components_.T, model.precisions_, model.covariances_)
    np.testing.assert_array_equal(order, np.arange(M))
    np.testing.assert_array_equal(signs, np.ones(M))
    v = np.diagonal(model.covariances_, axis1=1, axis2=2).sum(axis=0)
    assert np.all(np.diff(v) <= 0)
    for j in range(M):
        assert model.components_[j, np.argmax(np.abs(model.components_[j]))] > 0


def test_n_init_keeps_the_best_start_and_reports_all(data):
    single = MetaGraphicalLasso(n_components=M, alpha=0.05).fit(data)
    np.testing.assert_array_equal(single.init_objectives_, [single.objective_])
    assert single.best_init_ == 0
    many = MetaGraphicalLasso(n_components=M, alpha=0.05, n_init=4, random_state=2).fit(data)
    assert many.init_objectives_.shape == (4,)
    assert many.init_objectives_[0] == single.objective_  # the first start is init (PCA)
    assert many.best_init_ == int(np.argmin(many.init_objectives_))
    assert many.objective_ == many.init_objectives_.min()
    # The kept fit is the fit from its start: a random start seeded from random_state.
    if many.best_init_ == 0:
        np.testing.assert_array_equal(many.components_, single.components_)
    else:
        seed = _core.splitmix64(2, 3)[many.best_init_ - 1]
        start = _core.random_initial_projection(V, M, seed)
        alone = MetaGraphicalLasso(n_components=M, alpha=0.05, init=start.T, random_state=seed).fit(data)
        np.testing.assert_allclose(many.components_, alone.components_, atol=1e-10)
    again = MetaGraphicalLasso(n_components=M, alpha=0.05, n_init=4, random_state=2).fit(data)
    np.testing.assert_array_equal(again.init_objectives_, many.init_objectives_)
    np.testing.assert_array_equal(again.components_, many.components_)


def test_save_and_load_keep_penalties_and_starts(data, tmp_path):
    model = MetaGraphicalLasso(n_components=M, alpha=[0.02, 0.1, 0.3], alpha_scaling="n_samples", n_init=2).fit(data)
    path = save_model(model, tmp_path / "model")
    loaded = load_model(path)
    assert loaded.alpha == [0.02, 0.1, 0.3] and loaded.alpha_scaling == "n_samples" and loaded.n_init == 2
    np.testing.assert_array_equal(loaded.alphas_, model.alphas_)
    np.testing.assert_array_equal(loaded.init_objectives_, model.init_objectives_)
    assert loaded.best_init_ == model.best_init_
    assert loaded.bic(data) == model.bic(data)
