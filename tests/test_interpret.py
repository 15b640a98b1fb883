"""Tidy tables of a fitted model: shapes, names from the input, values from the fitted attributes."""

import numpy as np
import pytest

from metaglasso import MetaGraphicalLasso, MetaGraphicalLassoBIC, interpret
from metaglasso.datasets import make_synthetic

pd = pytest.importorskip("pandas")

pytestmark = pytest.mark.filterwarnings("ignore::metaglasso.exceptions.GridEdgeWarning")  # grids chosen for speed

V, M, SIZES = 30, 4, [60, 80, 70]


@pytest.fixture(scope="module")
def data():
    Xs, truth = make_synthetic(V, SIZES, 3, M, random_state=3)
    cols = [f"gene{i}" for i in range(V)]
    frames = [pd.DataFrame(X, columns=cols, index=[f"s{k}_{i}" for i in range(len(X))]) for k, X in enumerate(Xs)]
    model = MetaGraphicalLasso(n_components=M, alpha=0.02).fit(frames)
    return Xs, frames, truth, model


def test_loadings_follow_feature_names(data):
    _, frames, _, model = data
    t = interpret.loadings_table(model)
    assert t.shape == (V, M)
    assert t.index.name == "variable"
    assert list(t.index) == list(frames[0].columns)
    assert list(t.columns) == [f"factor_{m}" for m in range(M)]
    np.testing.assert_array_equal(t.to_numpy(), model.components_.T)


def test_loadings_without_names(data):
    Xs, _, _, _ = data
    model = MetaGraphicalLasso(n_components=M, alpha=0.02).fit(Xs)
    t = interpret.loadings_table(model)
    assert list(t.index) == [f"x{i}" for i in range(V)]


def test_scores_table(data):
    _, frames, _, model = data
    t = interpret.scores_table(model, frames, dataset_names=["a", "b", "c"])
    assert t.shape == (sum(SIZES), 2 + M)
    assert list(t.columns) == ["dataset", "sample"] + [f"factor_{m}" for m in range(M)]
    assert list(t["dataset"].unique()) == ["a", "b", "c"]
    assert list(t["sample"][: SIZES[0]]) == list(frames[0].index)
    for k, name in enumerate("abc"):
        block = t[t["dataset"] == name][[f"factor_{m}" for m in range(M)]].to_numpy()
        np.testing.assert_allclose(block, model.transform(frames[k], dataset=k), rtol=1e-12, atol=1e-12)


def test_scores_need_the_training_datasets(data):
    _, frames, _, model = data
    with pytest.raises(ValueError, match="Xs must hold the 3 datasets"):
        interpret.scores_table(model, frames[:2])


def test_variances_and_explained(data):
    Xs, frames, _, model = data
    t = interpret.variances_table(model, dataset_names=[2015, 2016, 2017])
    assert t.shape == (3, M + 1)
    assert list(t.index) == [2015, 2016, 2017] and t.index.name == "dataset"
    assert list(t.columns) == [f"factor_{m}" for m in range(M)] + ["noise"]
    np.testing.assert_array_equal(t.iloc[:, :M].to_numpy(), np.diagonal(model.covariances_, axis1=1, axis2=2))
    np.testing.assert_array_equal(t["noise"].to_numpy(), model.noise_variances_)

    model_based = interpret.variance_explained_table(model)
    empirical = interpret.variance_explained_table(model, frames)
    assert model_based.shape == (3, M + 1)
    np.testing.assert_allclose(model_based.to_numpy().sum(axis=1), 1.0, rtol=1e-12)
    # With the paper's penalty (all of Λ_k) the model's factor variances are the data's plus ρ_k
    # (the graphical lasso's KKT condition on the diagonal): Σ_k[m, m] = (Dᵀ S_k D)[m, m] + ρ_k.
    S_tot = np.array([np.sum((X - X.mean(axis=0)) ** 2) / len(X) for X in Xs])
    empirical_var = empirical.to_numpy()[:, :M] * S_tot[:, None]
    np.testing.assert_allclose(np.diagonal(model.covariances_, axis1=1, axis2=2), empirical_var + 0.02,
                               rtol=1e-9, atol=1e-12)
    # With the diagonal unpenalised the model's shares are the empirical ones.
    plain = MetaGraphicalLasso(n_components=M, alpha=0.02, penalize_diagonal=False).fit(frames)
    np.testing.assert_allclose(interpret.variance_explained_table(plain).to_numpy(),
                               interpret.variance_explained_table(plain, frames).to_numpy(), rtol=1e-9, atol=1e-12)


def test_edges_table(data):
    _, _, _, model = data
    t = interpret.edges_table(model)
    assert list(t.columns) == ["dataset", "factor_i", "factor_j", "partial_correlation"]
    n_edges = sum(int(np.count_nonzero(np.triu(p, 1))) for p in model.precisions_)
    assert len(t) == n_edges > 0
    for row in t.itertuples():
        assert row.factor_i < row.factor_j
        assert row.partial_correlation == model.partial_correlations_[row.dataset, row.factor_i, row.factor_j]
    strong = interpret.edges_table(model, tol=0.1)
    assert len(strong) == int((np.abs(t["partial_correlation"]) > 0.1).sum())


def test_dataset_names_from_model_and_errors(data):
    _, _, _, model = data
    model.dataset_names_ = ["x", "y", "z"]
    try:
        assert list(interpret.variances_table(model).index) == ["x", "y", "z"]
    finally:
        del model.dataset_names_
    with pytest.raises(ValueError, match=r"dataset_names must hold one name per dataset \(3\); got 2"):
        interpret.variances_table(model, dataset_names=["a", "b"])
    with pytest.raises(ValueError, match="dataset_names must be distinct"):
        interpret.edges_table(model, dataset_names=["a", "a", "b"])
    with pytest.raises(ValueError, match="model must be a fitted MetaGraphicalLasso"):
        interpret.loadings_table(MetaGraphicalLasso())


def test_search_keeps_feature_names(data):
    _, frames, _, _ = data
    search = MetaGraphicalLassoBIC([M], [0.02, 0.05]).fit(frames)
    assert list(interpret.loadings_table(search.best_estimator_).index) == list(frames[0].columns)


def test_tables_without_pandas(data, monkeypatch):
    import metaglasso._tables as tables

    _, _, _, model = data
    monkeypatch.setattr(tables, "pandas_or_none", lambda: None)
    t = interpret.loadings_table(model)
    assert isinstance(t, dict)
    assert list(t) == ["variable"] + [f"factor_{m}" for m in range(M)]
    assert list(t["variable"]) == [f"gene{i}" for i in range(V)]
    np.testing.assert_array_equal(t["factor_1"], model.components_[1])
    e = interpret.edges_table(model)
    assert list(e) == ["dataset", "factor_i", "factor_j", "partial_correlation"]


def test_align_factors():
    rng = np.random.default_rng(0)
    Q, _ = np.linalg.qr(rng.standard_normal((20, 5)))
    ref = Q.T
    perm = np.array([3, 0, 4, 1, 2])
    signs = np.array([1.0, -1.0, 1.0, -1.0, -1.0])
    comps = signs[:, None] * ref[perm] + 1e-3 * rng.standard_normal((5, 20))
    order, s = interpret.align_factors(comps, ref)
    np.testing.assert_array_equal(order, perm)
    np.testing.assert_array_equal(s, signs)
    with pytest.raises(ValueError, match="same shape"):
        interpret.align_factors(comps, ref[:4])
