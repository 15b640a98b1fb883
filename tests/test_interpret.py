"""Tidy tables of a fitted model: shapes, names from the input, values from the fitted attributes."""

from types import SimpleNamespace

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


def _hand_built():
    """A fitted-looking model of 3 datasets and 4 factors whose edges are known:
    (0, 1) in all three with one value, (0, 2) in all three with two values, (1, 3) in datasets
    0 and 2 with one value, (2, 3) in dataset 1 only; (0, 3) and (1, 2) nowhere."""
    P = np.stack([2.0 * np.eye(4) for _ in range(3)])
    for (i, j), vals in {(0, 1): [-0.5, -0.5, -0.5], (0, 2): [-0.2, -0.2, -0.3], (1, 3): [0.3, 0.0, 0.3],
                         (2, 3): [0.0, -0.4, 0.0]}.items():
        P[:, i, j] = P[:, j, i] = vals
    return SimpleNamespace(components_=np.eye(4, 6), precisions_=P)


def test_edge_differences_table_of_a_hand_built_model():
    model = _hand_built()
    t = interpret.edge_differences_table(model, dataset_names=["a", "b", "c"])
    assert list(t.columns) == ["factor_i", "factor_j", "n_datasets", "status", "n_values", "equal", "max_difference",
                               "a", "b", "c"]
    # differs first, by max_difference descending; then the shared edges
    assert list(zip(t["factor_i"], t["factor_j"])) == [(2, 3), (1, 3), (0, 2), (0, 1)]
    assert list(t["n_datasets"]) == [1, 2, 3, 3]
    assert list(t["status"]) == ["differs", "differs", "shared", "shared"]
    assert list(t["n_values"]) == [1, 1, 2, 1]
    assert list(t["equal"]) == [False, False, False, True]
    assert t["factor_i"].dtype == np.int64 and t["n_values"].dtype == np.int64 and t["equal"].dtype == bool
    # partial correlations -Λ_ij / sqrt(Λ_ii Λ_jj) = -Λ_ij / 2, 0 where absent
    np.testing.assert_allclose(t[["a", "b", "c"]].to_numpy(),
                               [[0, 0.2, 0], [-0.15, 0, -0.15], [0.1, 0.1, 0.15], [0.25, 0.25, 0.25]], rtol=1e-15)
    np.testing.assert_allclose(t["max_difference"], [0.2, 0.15, 0.05, 0.0], rtol=1e-12, atol=1e-15)
    assert t["max_difference"].iloc[-1] == 0.0  # equal values and diagonals: equal partial correlations

    # tol: the weaker entries of (0, 2) drop out, so it differs
    strong = interpret.edge_differences_table(model, tol=0.12)
    assert list(strong.columns[-3:]) == [0, 1, 2]
    rows = {(r.factor_i, r.factor_j): r for r in strong.itertuples()}
    assert set(rows) == {(0, 1), (0, 2), (1, 3), (2, 3)}
    assert rows[(0, 2)].n_datasets == 1 and rows[(0, 2)].status == "differs" and rows[(0, 2)].n_values == 1
    assert rows[(0, 1)].equal
    assert list(interpret.edge_differences_table(model, tol=0.3)["n_datasets"]) == []


def test_edge_differences_between_two_datasets():
    model = _hand_built()
    d = interpret.edge_differences(model, 0, 1)
    assert list(d.columns) == ["factor_i", "factor_j", "change", 0, 1, "difference"]
    assert list(zip(d["factor_i"], d["factor_j"], d["change"])) == [(2, 3, "added"), (1, 3, "removed")]
    np.testing.assert_allclose(d["difference"], [0.2, 0.15], rtol=1e-15)
    np.testing.assert_allclose(d[[0, 1]].to_numpy(), [[0, 0.2], [-0.15, 0]], rtol=1e-15)
    # by name; (1, 3) has one value in both, (0, 1) too: only (0, 2) changes
    d = interpret.edge_differences(model, "a", "c", dataset_names=["a", "b", "c"])
    assert list(d.columns) == ["factor_i", "factor_j", "change", "a", "c", "difference"]
    assert list(zip(d["factor_i"], d["factor_j"], d["change"])) == [(0, 2, "changed")]
    np.testing.assert_allclose(d["difference"], [0.05], rtol=1e-12)
    # names win over positions: dataset "2" is the first one here
    d = interpret.edge_differences(model, 2, 1, dataset_names=[2, 0, 1])
    assert list(d.columns[3:5]) == [2, 1] and list(d["change"]) == ["changed"]
    with pytest.raises(ValueError, match="two different datasets"):
        interpret.edge_differences(model, 1, 1)
    with pytest.raises(ValueError, match=r"l must be a dataset name \(\[0, 1, 2\]\) or a position in \[0, 3\)"):
        interpret.edge_differences(model, 0, 3)
    with pytest.raises(ValueError, match="are column names of the table"):
        interpret.edge_differences(model, 0, 1, dataset_names=["change", "b", "c"])
    with pytest.raises(ValueError, match="are column names of the table"):
        interpret.edge_differences_table(model, dataset_names=["a", "status", "c"])
    with pytest.raises(ValueError, match="tol must be a finite number >= 0"):
        interpret.edge_differences_table(model, tol=-1)


@pytest.fixture(scope="module")
def coupled():
    Xs, _ = make_synthetic(100, 40, 6, 10, random_state=0)
    return Xs, {penalty: MetaGraphicalLasso(n_components=10, alpha=0.05, penalty=penalty, beta=beta).fit(Xs)
                for penalty, beta in (("fused", 5.0), ("group", 0.2))}


def _diagonal_values(model):
    return sum(len(set(model.precisions_[:, m, m])) for m in range(model.precisions_.shape[1]))


def test_a_strongly_fused_fit_shares_every_edge(coupled):
    _, models = coupled
    model = models["fused"]
    t = interpret.edge_differences_table(model)
    assert len(t) > 0
    assert set(t["status"]) == {"shared"}
    assert t["equal"].all() and set(t["n_values"]) == {1} and set(t["n_datasets"]) == {6}
    # one parameter per fused edge: the table counts what the BIC counts
    assert model.n_network_parameters() == 2 * int(t["n_values"].sum()) + _diagonal_values(model)
    for k in range(5):
        assert len(interpret.edge_differences(model, k, k + 1)) == 0


def test_edge_differences_count_the_bic_parameters(coupled, data):
    _, models = coupled
    group = models["group"]
    t = interpret.edge_differences_table(group)
    assert group.n_network_parameters() == 2 * int(t["n_values"].sum()) + _diagonal_values(group)
    assert (t["n_values"] <= t["n_datasets"]).all()
    # an independent fit: as many (edge, dataset) pairs as the edge list
    _, _, _, model = data
    t = interpret.edge_differences_table(model)
    assert int(t["n_datasets"].sum()) == len(interpret.edges_table(model))
    assert ((t["status"] == "shared") == (t["n_datasets"] == 3)).all()


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
    d = interpret.edge_differences_table(model)
    assert list(d) == ["factor_i", "factor_j", "n_datasets", "status", "n_values", "equal", "max_difference", 0, 1, 2]
    assert d["status"].dtype == object and d["equal"].dtype == bool


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
