"""MetaGraphicalLasso: validation, fitted attributes, likelihood, threads, CLI."""

import numpy as np
import pytest
from scipy.stats import multivariate_normal

from metaglasso import ConvergenceWarning, MetaGraphicalLasso, partial_correlations
from metaglasso.__main__ import main
from metaglasso.datasets import make_synthetic


@pytest.fixture(scope="module")
def small():
    Xs, truth = make_synthetic(30, [60, 80, 70], 3, 3, random_state=1)
    return Xs, truth


def _rng_datasets(shapes, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(s) for s in shapes]


@pytest.mark.parametrize(
    "Xs, params, match",
    [
        (_rng_datasets([(10, 5), (10, 6)]), {}, r"Xs\[1\] has 6 features; expected 5"),
        ([np.array([[1.0, np.nan], [0.0, 1.0], [2.0, 3.0]])], {"n_components": 1}, r"Xs\[0\] contains NaN"),
        ([np.array([[1.0, np.inf], [0.0, 1.0], [2.0, 3.0]])], {"n_components": 1}, r"Xs\[0\] contains NaN or inf"),
        (_rng_datasets([(10, 5)]), {"n_components": 5}, r"n_components must be smaller than n_features=5; got n_components=5"),
        (_rng_datasets([(10, 5)]), {"n_components": 0}, r"n_components must be an integer >= 1; got 0"),
        (_rng_datasets([(10, 5), (1, 5)]), {"n_components": 2}, r"Xs\[1\] must have at least 2 samples; got n_samples=1"),
        (_rng_datasets([(10, 5)]), {"n_components": 2, "alpha": -0.1}, r"alpha must be a finite number >= 0; got -0.1"),
        (_rng_datasets([(10, 5)]), {"n_components": 2, "alpha": np.nan}, r"alpha must be a finite number >= 0; got nan"),
        ([np.zeros(5)], {"n_components": 2}, r"Xs\[0\] must be 2-D .*ndim=1"),
        (np.zeros((2, 10, 5, 1)), {"n_components": 2}, r"Xs must be a sequence of 2-D arrays .*ndim=4"),
        ([], {"n_components": 2}, r"Xs must contain at least one dataset"),
        (_rng_datasets([(10, 5)]), {"n_components": 2, "solver": "sgd"}, r"solver must be one of .*'sgd'"),
        (_rng_datasets([(10, 5)]), {"n_components": 2, "init": "svd"}, r"init must be 'pca', 'random' or an array; got 'svd'"),
        (_rng_datasets([(10, 5)]), {"n_components": 2, "init": np.ones((3, 5))}, r"init must have shape .*\(2, 5\); got \(3, 5\)"),
        (_rng_datasets([(10, 5)]), {"n_components": 2, "max_iter": 0}, r"max_iter must be an integer >= 1; got 0"),
        (_rng_datasets([(10, 5)]), {"n_components": 2, "n_threads": 0}, r"n_threads must be an integer >= 1; got 0"),
        (_rng_datasets([(10, 5)]), {"n_components": 2, "batch_size": 0}, r"batch_size must be an integer >= 1; got 0"),
        (_rng_datasets([(10, 5)]), {"n_components": 2, "random_state": -3}, r"random_state must be in \[0, 2\*\*64\); got -3"),
        (_rng_datasets([(10, 5)]), {"n_components": 2, "learning_rate": 0.0}, r"learning_rate must be > 0; got 0.0"),
        ([[[1.0, 2.0], [3.0]]], {"n_components": 1}, r"Xs\[0\] could not be converted"),
    ],
)
def test_bad_input_raises_value_error_naming_argument(Xs, params, match):
    with pytest.raises(ValueError, match=match):
        MetaGraphicalLasso(**params).fit(Xs)


def test_inputs_not_modified_and_fit_deterministic(small):
    Xs, _ = small
    Xs = [X.copy() for X in Xs]
    Xs[1] = np.asfortranarray(Xs[1])
    Xs[2] = Xs[2].astype(np.float32)
    before = [np.array(X, order="K", copy=True) for X in Xs]
    a = MetaGraphicalLasso(n_components=3, alpha=0.05).fit(Xs)
    b = MetaGraphicalLasso(n_components=3, alpha=0.05).fit(Xs)
    for X, X0 in zip(Xs, before):
        assert X.dtype == X0.dtype and X.flags.f_contiguous == X0.flags.f_contiguous
        np.testing.assert_array_equal(X, X0)
    np.testing.assert_array_equal(a.components_, b.components_)
    np.testing.assert_array_equal(a.precisions_, b.precisions_)


def test_fitted_attributes(small):
    Xs, truth = small
    model = MetaGraphicalLasso(n_components=3, alpha=0.05).fit(Xs)
    K, M, V = 3, 3, 30
    assert model.converged_
    assert model.components_.shape == (M, V)
    assert model.precisions_.shape == model.covariances_.shape == (K, M, M)
    assert model.noise_variances_.shape == (K,)
    assert model.n_features_in_ == V
    np.testing.assert_allclose(model.components_ @ model.components_.T, np.eye(M), atol=1e-12)
    for P, C in zip(model.precisions_, model.covariances_):
        assert np.all(np.linalg.eigvalsh(P) > 0)
        np.testing.assert_allclose(P @ C, np.eye(M), atol=1e-9)
    P = model.precisions_
    pc = -P / np.sqrt(np.einsum("kii->ki", P)[:, :, None] * np.einsum("kii->ki", P)[:, None, :])
    pc[:, np.arange(M), np.arange(M)] = 1.0
    np.testing.assert_allclose(model.partial_correlations_, pc, rtol=1e-14)
    np.testing.assert_allclose(partial_correlations(P), pc, rtol=1e-14)
    # eq. 16 at the returned D, computed directly
    D = model.components_.T
    for k, X in enumerate(Xs):
        Xc = X - X.mean(axis=0)
        S = Xc.T @ Xc / X.shape[0]
        eps = (np.trace(S) - np.trace(D.T @ S @ D)) / (V - M)
        assert model.noise_variances_[k] == pytest.approx(eps, rel=1e-10)
    # the history of the L-BFGS objective never increases and ends at objective_
    hist = model.objective_history_
    assert np.all(np.diff(hist) <= 1e-10 * np.abs(hist[1:]))
    assert hist[-1] == pytest.approx(model.objective_, rel=1e-12)
    # the truth is recovered: subspace alignment close to M
    assert np.linalg.svd(truth.components @ D, compute_uv=False).sum() > M - 0.1


def test_score_and_bic_match_dense_gaussian_likelihood(small):
    Xs, _ = small
    model = MetaGraphicalLasso(n_components=3, alpha=0.05).fit(Xs)
    D = model.components_.T
    V = D.shape[0]
    total, n = 0.0, 0
    for k, X in enumerate(Xs):
        Phi = D @ model.covariances_[k] @ D.T + model.noise_variances_[k] * (np.eye(V) - D @ D.T)
        total += multivariate_normal(mean=X.mean(axis=0), cov=Phi).logpdf(X).sum()
        n += X.shape[0]
    assert model.score(Xs) == pytest.approx(total / n, rel=1e-10)
    k_params = np.count_nonzero(model.precisions_) + 3 + V * 3 - 3 * 4 // 2
    assert model.n_parameters() == k_params
    assert model.bic(Xs) == pytest.approx(-2 * total + k_params * np.log(n), rel=1e-10)


def test_transform_is_centred_projection(small):
    Xs, _ = small
    model = MetaGraphicalLasso(n_components=3, alpha=0.05).fit(Xs)
    D = model.components_.T
    np.testing.assert_allclose(model.transform(Xs[0]), (Xs[0] - Xs[0].mean(0)) @ D, atol=1e-12)
    np.testing.assert_allclose(model.transform(Xs[1][:5], dataset=1), (Xs[1][:5] - Xs[1].mean(0)) @ D, atol=1e-12)
    with pytest.raises(ValueError, match=r"X has 4 features, but MetaGraphicalLasso is expecting 30 features as input"):
        model.transform(np.zeros((3, 4)))
    with pytest.raises(ValueError, match=r"dataset must be an integer in \[0, 3\); got 7"):
        model.transform(Xs[0], dataset=7)


@pytest.mark.parametrize("solver", ["lbfgs", "adam"])
def test_one_and_two_threads_agree(small, solver):
    Xs, _ = small
    kw = dict(n_components=3, alpha=0.05, solver=solver, max_iter=30, batch_size=2)
    with pytest.warns(ConvergenceWarning) if solver == "adam" else _nullcontext():
        a = MetaGraphicalLasso(n_threads=1, **kw).fit(Xs)
    with pytest.warns(ConvergenceWarning) if solver == "adam" else _nullcontext():
        b = MetaGraphicalLasso(n_threads=2, **kw).fit(Xs)
    np.testing.assert_allclose(a.components_, b.components_, rtol=0, atol=1e-10)
    np.testing.assert_allclose(a.precisions_, b.precisions_, rtol=0, atol=1e-10 * np.abs(a.precisions_).max())
    assert a.objective_ == pytest.approx(b.objective_, rel=1e-12)


def _nullcontext():
    import contextlib

    return contextlib.nullcontext()


def test_non_convergence_warns_and_is_flagged(small):
    Xs, _ = small
    with pytest.warns(ConvergenceWarning, match="did not converge in 1 iterations"):
        model = MetaGraphicalLasso(n_components=3, alpha=0.05, max_iter=1).fit(Xs)
    assert not model.converged_ and model.n_iter_ == 1


def test_pandas_feature_names(small):
    pd = pytest.importorskip("pandas")
    Xs, _ = small
    cols = [f"g{i}" for i in range(30)]
    frames = [pd.DataFrame(X, columns=cols) for X in Xs]
    model = MetaGraphicalLasso(n_components=3, alpha=0.05).fit(frames)
    assert list(model.feature_names_in_) == cols
    ref = MetaGraphicalLasso(n_components=3, alpha=0.05).fit(Xs)
    np.testing.assert_array_equal(model.components_, ref.components_)
    # The same columns in another order are aligned by name.
    shuffled = MetaGraphicalLasso(n_components=3, alpha=0.05).fit([frames[0], frames[1][cols[::-1]], frames[2]])
    np.testing.assert_array_equal(shuffled.components_, model.components_)
    with pytest.raises(ValueError, match=r"Xs\[1\] does not have the same columns .* lacks 'g29'"):
        MetaGraphicalLasso(n_components=3).fit([frames[0], frames[1][cols[:-1]]])


def test_params_roundtrip_and_repr():
    model = MetaGraphicalLasso(n_components=4, alpha=0.2, solver="adam")
    assert model.get_params()["alpha"] == 0.2
    assert repr(model) == "MetaGraphicalLasso(alpha=0.2, n_components=4, solver='adam')"  # scikit-learn's order
    assert model.set_params(alpha=0.3).alpha == 0.3
    with pytest.raises(ValueError, match="Invalid parameter 'gamma' for estimator MetaGraphicalLasso"):
        model.set_params(gamma=1)


def test_demo_command_prints_the_numbers(capsys):
    assert main(["demo", "--n-features", "60", "--n-samples", "100", "--n-datasets", "3", "-M", "3"]) == 0
    out = capsys.readouterr().out
    for key in ("objective E", "iterations", "fit time", "subspace match"):
        assert key in out
    match = float(out.split("subspace match")[1].split()[0])
    assert 2.5 < match <= 3.0 + 1e-9


def test_a_converged_warm_start_says_it_converged():
    # Refitting a converged model from its own factors cannot reduce the gradient by √tol again; the
    # line search finds no better point, and the fit reports convergence without a warning.
    import warnings

    from metaglasso.datasets import make_synthetic

    Xs, _ = make_synthetic(200, 300, 4, 5, random_state=0)
    model = MetaGraphicalLasso(n_components=5, alpha=0.09, warm_start=True).fit(Xs)
    assert model.converged_
    first = model.components_.copy()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model.fit(Xs)
    assert model.converged_
    np.testing.assert_allclose(model.components_, first, atol=1e-3)  # the same optimum, refined
