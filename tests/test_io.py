"""Saving and loading fitted models: .npz + JSON metadata, no pickle, identical predictions."""

import json

import numpy as np
import pytest

from metaglasso import MetaGraphicalLasso, MetaGraphicalLassoBIC, interpret
from metaglasso.datasets import make_synthetic
from metaglasso.io import FORMAT_VERSION, load_model, read_metadata, save_model

pytestmark = pytest.mark.filterwarnings("ignore::metaglasso.exceptions.GridEdgeWarning")  # grids chosen for speed

V, M = 25, 3


@pytest.fixture(scope="module")
def data():
    Xs, _ = make_synthetic(V, [50, 70], 2, M, random_state=5)
    return Xs


def _same_model(a, b, Xs):
    for name in ("components_", "precisions_", "covariances_", "noise_variances_", "partial_correlations_",
                 "objective_history_", "n_samples_"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)
    for name in ("objective_", "n_iter_", "converged_", "gradient_norm_", "representations_", "compression_rank_",
                 "n_features_in_"):
        assert getattr(a, name) == getattr(b, name), name
    pa, pb = a.get_params(), b.get_params()
    assert pa.keys() == pb.keys()
    for key in pa:
        if isinstance(pa[key], np.ndarray):
            np.testing.assert_array_equal(pa[key], pb[key])
        else:
            assert pa[key] == pb[key], key
    for k, X in enumerate(Xs):
        np.testing.assert_array_equal(a.transform(X), b.transform(X))
        if a.means_ is not None:
            np.testing.assert_array_equal(a.transform(X, dataset=k), b.transform(X, dataset=k))
    assert a.score(Xs) == b.score(Xs)
    assert a.bic(Xs) == b.bic(Xs)


def test_roundtrip_same_predictions(data, tmp_path):
    model = MetaGraphicalLasso(n_components=M, alpha=0.03, tol=1e-9).fit(data)
    path = save_model(model, tmp_path / "model.npz", dataset_names=["first", "second"], metadata={"note": "x"})
    assert path.endswith("model.npz")
    loaded = load_model(path)
    assert isinstance(loaded, MetaGraphicalLasso)
    _same_model(model, loaded, data)
    np.testing.assert_array_equal(model.means_, loaded.means_)
    assert loaded.dataset_names_ == ["first", "second"]
    assert not hasattr(loaded, "feature_names_in_")
    assert list(interpret.variances_table(loaded).index) == ["first", "second"]


def test_file_is_plain_npz_with_json(data, tmp_path):
    model = MetaGraphicalLasso(n_components=M, alpha=0.03).fit(data)
    path = save_model(model, tmp_path / "m")  # suffix appended
    assert path.endswith("m.npz")
    with np.load(path, allow_pickle=False) as z:  # no pickle anywhere
        files = set(z.files)
        meta = json.loads(str(z["metadata"][()]))
        assert all(z[f].dtype != object for f in z.files)
    assert {"components", "precisions", "covariances", "noise_variances", "means", "objective_history",
            "n_samples", "metadata"} <= files
    assert meta["format"] == "metaglasso-model" and meta["format_version"] == FORMAT_VERSION
    assert meta["params"]["n_components"] == M and meta["params"]["alpha"] == 0.03
    assert read_metadata(path) == meta


def test_feature_names_and_array_init(data, tmp_path):
    pd = pytest.importorskip("pandas")
    cols = [f"v{i}" for i in range(V)]
    frames = [pd.DataFrame(X, columns=cols) for X in data]
    start = MetaGraphicalLasso(n_components=M, alpha=0.1).fit(frames).components_
    model = MetaGraphicalLasso(n_components=M, alpha=0.03, init=start).fit(frames)
    loaded = load_model(save_model(model, tmp_path / "named.npz"))
    assert list(loaded.feature_names_in_) == cols
    np.testing.assert_array_equal(loaded.init, start)
    _same_model(model, loaded, frames)
    assert list(interpret.loadings_table(loaded).index) == cols


def test_covariance_fit_roundtrip(data, tmp_path):
    covs = [np.cov(X, rowvar=False, bias=True) for X in data]
    model = MetaGraphicalLasso(n_components=M, alpha=0.03).fit_covariances(covs, [len(X) for X in data])
    loaded = load_model(save_model(model, tmp_path / "cov.npz"))
    assert loaded.means_ is None
    _same_model(model, loaded, data)


def test_search_saves_best_and_grid(data, tmp_path):
    search = MetaGraphicalLassoBIC([2, 3], [0.03, 0.1]).fit(data)
    path = save_model(search, tmp_path / "search.npz")
    loaded = load_model(path)
    np.testing.assert_array_equal(loaded.components_, search.best_estimator_.components_)
    meta = read_metadata(path)
    assert [(r["n_components"], r["alpha"]) for r in meta["selection"]] == [
        (r["n_components"], r["alpha"]) for r in search.results_]


def test_load_errors(data, tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_model(tmp_path / "missing.npz")
    np.savez(tmp_path / "other.npz", a=np.zeros(3))
    with pytest.raises(ValueError, match="not a metaglasso model file: it has no 'metadata' entry"):
        load_model(tmp_path / "other.npz")
    model = MetaGraphicalLasso(n_components=M, alpha=0.03).fit(data)
    path = save_model(model, tmp_path / "model.npz")
    with np.load(path) as z:
        arrays = {f: z[f] for f in z.files}
    meta = json.loads(str(arrays["metadata"][()]))
    meta["format_version"] = FORMAT_VERSION + 1
    arrays["metadata"] = np.asarray(json.dumps(meta))
    np.savez(tmp_path / "future.npz", **arrays)
    with pytest.raises(ValueError, match=r"model format version 2; this metaglasso reads versions <= 1"):
        load_model(tmp_path / "future.npz")
    with pytest.raises(ValueError, match="dataset_names must hold one name per dataset"):
        save_model(model, tmp_path / "bad.npz", dataset_names=["a"])
    with pytest.raises(ValueError, match="model must be a fitted"):
        save_model(MetaGraphicalLasso(), tmp_path / "unfitted.npz")


def test_callback_is_not_stored(data, tmp_path):
    """A callback is code, not data: saving works and the loaded model has callback=None."""
    seen = []
    model = MetaGraphicalLasso(n_components=M, alpha=0.03, callback=seen.append, warm_start=True).fit(data)
    assert seen
    loaded = load_model(save_model(model, tmp_path / "model.npz"))
    assert loaded.callback is None and loaded.warm_start is True
    np.testing.assert_array_equal(model.components_, loaded.components_)


@pytest.mark.parametrize("penalty, beta, pairs", [("fused", 0.05, "chain"), ("group", 0.1, "all")])
def test_network_coupling_roundtrip(data, tmp_path, penalty, beta, pairs):
    """penalty, beta and fused_pairs come back: the BIC counts fused values as the saved model does."""
    model = MetaGraphicalLasso(n_components=M, alpha=0.03, penalty=penalty, beta=beta, fused_pairs=pairs).fit(data)
    path = save_model(model, tmp_path / "coupled.npz")
    meta = read_metadata(path)
    assert (meta["params"]["penalty"], meta["params"]["beta"], meta["params"]["fused_pairs"]) == (penalty, beta, pairs)
    loaded = load_model(path)
    assert (loaded.penalty, loaded.beta, loaded.fused_pairs) == (penalty, beta, pairs) and loaded._coupled()
    _same_model(model, loaded, data)
    assert loaded.n_parameters() == model.n_parameters()
    if penalty == "fused":
        assert model.n_network_parameters() < int(np.count_nonzero(model.precisions_))  # some entries fused
    a, b = interpret.edge_differences_table(model), interpret.edge_differences_table(loaded)
    assert a.equals(b)


def test_files_without_the_coupling_parameters_load_as_lasso(data, tmp_path):
    """Files written before the fused and group penalties hold no penalty, beta or fused_pairs."""
    model = MetaGraphicalLasso(n_components=M, alpha=0.03).fit(data)
    path = save_model(model, tmp_path / "model.npz")
    with np.load(path) as z:
        arrays = {f: z[f] for f in z.files}
    meta = json.loads(str(arrays["metadata"][()]))
    for name in ("penalty", "beta", "fused_pairs"):
        del meta["params"][name]
    arrays["metadata"] = np.asarray(json.dumps(meta))
    np.savez(tmp_path / "old.npz", **arrays)
    loaded = load_model(tmp_path / "old.npz")
    assert (loaded.penalty, loaded.beta, loaded.fused_pairs) == ("lasso", 0.0, "all") and not loaded._coupled()
    _same_model(model, loaded, data)
