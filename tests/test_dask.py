"""Dask input: the statistics pass, the path choice and both paths on a 2-worker LocalCluster.

Ground truth: the in-memory fit of the same data from the same start (the fit is deterministic, so
the paths must agree to the rounding of their covariance products), and NumPy's covariance for the
statistics pass.
"""

import logging
import re
import threading
import warnings

import numpy as np
import pytest

da = pytest.importorskip("dask.array")
dask = pytest.importorskip("dask")
distributed = pytest.importorskip("distributed")

from metaglasso import MetaGraphicalLasso, _core, _dask  # noqa: E402
from metaglasso.datasets import make_synthetic  # noqa: E402

V, N, K, M = 30, 400, 3, 3
ALPHA = 0.05


@pytest.fixture(scope="module")
def client():
    """A LocalCluster of 2 worker processes with 1 thread each: tasks and arrays cross process boundaries."""
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0",
                                  silence_logs=logging.ERROR) as cluster, distributed.Client(cluster) as c:
        yield c


@pytest.fixture(scope="module")
def data():
    Xs, _ = make_synthetic(V, N, K, M, random_state=0)
    # Unequal sizes and a large common offset: the shift keeps the covariance exact.
    Xs = [X[: N - 50 * k] + 100.0 for k, X in enumerate(Xs)]
    D0 = np.linalg.qr(np.random.default_rng(1).standard_normal((V, M)))[0].T
    return Xs, D0


def as_dask(Xs, rows=64):
    return [da.from_array(X, chunks=(rows, -1)) for X in Xs]


BUDGETS = {"covariance": "auto", "distributed": 1}


def assert_same_fit(a, b, atol_components=1e-8):
    assert a.n_iter_ == b.n_iter_
    np.testing.assert_allclose(a.components_, b.components_, rtol=0, atol=atol_components)
    np.testing.assert_allclose(a.precisions_, b.precisions_, rtol=1e-7, atol=1e-8)
    np.testing.assert_allclose(a.noise_variances_, b.noise_variances_, rtol=1e-10)
    assert a.objective_ == pytest.approx(b.objective_, rel=1e-11)
    np.testing.assert_array_equal(a.n_samples_, b.n_samples_)
    np.testing.assert_allclose(a.means_, b.means_, rtol=1e-13)


@pytest.mark.parametrize("path", ["covariance", "distributed"])
def test_both_paths_equal_the_in_memory_fit_on_a_local_cluster(client, data, path):
    Xs, D0 = data
    ref = MetaGraphicalLasso(M, ALPHA, init=D0).fit(Xs)
    assert ref.converged_
    # Several row blocks per covariance on the distributed path: 4 rows of 30 float64 per block.
    with dask.config.set({"array.chunk-size": "1KiB"}):
        model = MetaGraphicalLasso(M, ALPHA, init=D0, memory_budget=BUDGETS[path]).fit(as_dask(Xs))
    assert model.dask_info_["path"] == path
    assert model.representations_ == [path] * K
    assert_same_fit(model, ref)
    if path == "distributed":
        info = model.dask_info_
        assert info["n_blocks"] == 8  # ceil(30 / 4)
        assert info["n_evaluations"] >= model.n_iter_ + 1
        # Per evaluation D (V × M) goes out once and S_k D (V × M) comes back for each dataset.
        assert info["bytes_to_cluster"] == info["n_evaluations"] * V * M * 8
        assert info["bytes_from_cluster"] == info["n_evaluations"] * K * V * M * 8


@pytest.mark.parametrize("path", ["covariance", "distributed"])
def test_pca_start_and_repeat_runs(client, data, path):
    Xs, _ = data
    ref = MetaGraphicalLasso(M, ALPHA).fit(Xs)
    a = MetaGraphicalLasso(M, ALPHA, memory_budget=BUDGETS[path]).fit(as_dask(Xs))
    b = MetaGraphicalLasso(M, ALPHA, memory_budget=BUDGETS[path]).fit(as_dask(Xs, rows=64))
    # The PCA start by block Lanczos through the operator (distributed) or on the gathered
    # covariances agrees with the in-memory start to the Lanczos tolerance (residual 1e-10).
    assert_same_fit(a, ref, atol_components=1e-8)
    # Deterministic: the reduction tree and the fit do not depend on scheduling.
    np.testing.assert_array_equal(a.components_, b.components_)
    np.testing.assert_array_equal(a.precisions_, b.precisions_)


def test_statistics_pass_against_numpy(data):
    Xs, _ = data
    dXs, labels = _dask.check_dask_datasets(as_dask(Xs, rows=37))
    for budget in (None, 1):
        with dask.config.set({"array.chunk-size": "2KiB"}):
            path, n, means, traces, cov, info = _dask.statistics(dXs, labels, False, budget)
        if path == "covariance":
            mats = cov
        else:
            assert info["n_blocks"] == 4  # 2 KiB: 8 rows of 30 float64 per strip, 4 strips
            mats = [cov.matrix(k) for k in range(K)]
        for k, X in enumerate(Xs):
            S = np.cov(X, rowvar=False, bias=True)
            assert n[k] == X.shape[0]
            np.testing.assert_allclose(means[k], X.mean(axis=0), rtol=1e-14)
            np.testing.assert_allclose(mats[k], S, rtol=0, atol=1e-13 * np.abs(S).max())
            assert mats[k].shape == (V, V) and np.array_equal(mats[k], mats[k].T)
            assert traces[k] == pytest.approx(np.trace(S), rel=1e-13)
    # assume_centered: the raw second moment, no mean removed.
    path, n, means, traces, cov, info = _dask.statistics(dXs, labels, True, None)
    np.testing.assert_allclose(cov[0], Xs[0].T @ Xs[0] / Xs[0].shape[0], rtol=1e-13)
    assert np.all(means == 0)


def test_path_choice_is_logged_at_the_budget_boundary(data, caplog):
    Xs, D0 = data
    need = 8 * K * V * V
    with caplog.at_level(logging.INFO, logger="metaglasso"):
        at = MetaGraphicalLasso(M, ALPHA, init=D0, memory_budget=need).fit(as_dask(Xs))
        below = MetaGraphicalLasso(M, ALPHA, init=D0, memory_budget=need - 1).fit(as_dask(Xs))
    assert at.dask_info_["path"] == "covariance" and below.dask_info_["path"] == "distributed"
    assert at.dask_info_["covariance_bytes"] == need and below.dask_info_["memory_budget"] == need - 1
    messages = [r.getMessage() for r in caplog.records if r.name == "metaglasso"]
    assert len(messages) == 2
    assert "the covariance path" in messages[0] and "fit in memory_budget=21.6 kB" in messages[0]
    assert "the distributed path" in messages[1] and "exceed memory_budget=21.6 kB" in messages[1]
    # A string budget goes through dask's parser.
    assert MetaGraphicalLasso(M, ALPHA, init=D0, memory_budget="1kB").fit(as_dask(Xs)).dask_info_["path"] == \
        "distributed"


@pytest.mark.parametrize("budget", [0, -5, float("nan"), "lots", "-1GB", "4 XB", True, [1]])
def test_invalid_memory_budget(data, budget):
    Xs, _ = data
    for inputs in (as_dask(Xs), Xs):  # checked for arrays in memory too, where it does not apply
        with pytest.raises(ValueError, match=f"memory_budget must .*; got {re.escape(repr(budget))}"):
            MetaGraphicalLasso(M, ALPHA, memory_budget=budget).fit(inputs)


@pytest.mark.parametrize("text, expected", [("4GB", 4 * 10**9), ("512 MiB", 512 * 2**20), ("1e9", 10**9),
                                            ("10 b", 10), (2**20, 2**20), ("auto", None)])
def test_memory_budget_strings(text, expected):
    assert _dask.check_memory_budget(text) == expected


def test_bad_dask_input_is_named(data):
    Xs, _ = data
    bad = [X.copy() for X in Xs]
    bad[1][123, 4] = np.nan
    with pytest.raises(ValueError, match=r"Xs\[1\] contains NaN or infinite values"):
        MetaGraphicalLasso(M, ALPHA).fit(as_dask(bad))
    with pytest.raises(ValueError, match=r"Xs\[2\] has n_samples=4"):
        MetaGraphicalLasso(M, ALPHA).fit(as_dask([Xs[0], Xs[1], Xs[2][:4]]))
    with pytest.raises(ValueError, match="same number of features"):
        MetaGraphicalLasso(M, ALPHA).fit(as_dask([Xs[0], Xs[1][:, :-1]]))
    with pytest.raises(ValueError, match="must be 2-D"):
        MetaGraphicalLasso(M, ALPHA).fit([da.zeros(5)])
    sparse = pytest.importorskip("scipy.sparse")
    lazy_sparse = as_dask(Xs)[0].map_blocks(sparse.csr_matrix, meta=sparse.csr_matrix((0, 0)))
    with pytest.raises(ValueError, match=r"Xs\[0\] must have dense NumPy chunks; got chunks of type csr_matrix"):
        MetaGraphicalLasso(M, ALPHA).fit([lazy_sparse] + as_dask(Xs)[1:])
    with pytest.raises(ValueError, match="n_components must be smaller"):
        MetaGraphicalLasso(V, ALPHA).fit(as_dask(Xs))


def test_unknown_row_counts_column_chunks_and_no_materialisation(data, monkeypatch):
    """Boolean row selections (unknown chunk sizes) and column chunks work, and the client never
    converts a whole dask array to NumPy."""
    Xs, D0 = data
    ref = MetaGraphicalLasso(M, ALPHA, init=D0).fit(Xs)
    stacked = da.from_array(np.concatenate(Xs), chunks=(50, 10))
    labels = np.repeat(np.arange(K), [X.shape[0] for X in Xs])
    parts = [stacked[da.from_array(labels == k, chunks=50)] for k in range(K)]
    assert np.isnan(parts[0].shape[0])

    def refuse(self, *args, **kwargs):
        raise AssertionError("a dask array was converted to NumPy in the client")

    monkeypatch.setattr(da.Array, "__array__", refuse)
    model = MetaGraphicalLasso(M, ALPHA, init=D0).fit(parts)
    monkeypatch.undo()
    assert_same_fit(model, ref)


def test_zarr_and_hdf5_inputs(client, data, tmp_path):
    zarr = pytest.importorskip("zarr")
    h5py = pytest.importorskip("h5py")
    Xs, D0 = data
    ref = MetaGraphicalLasso(M, ALPHA, init=D0).fit(Xs)
    for k, X in enumerate(Xs):
        da.from_array(X, chunks=(100, -1)).to_zarr(str(tmp_path / f"x{k}.zarr"))
        with h5py.File(tmp_path / "x.h5", "a") as f:
            f.create_dataset(f"x{k}", data=X, chunks=(100, V))
    from_zarr = [da.from_zarr(str(tmp_path / f"x{k}.zarr")) for k in range(K)]
    assert isinstance(zarr.open(str(tmp_path / "x0.zarr"), mode="r").shape, tuple)
    for path in ("covariance", "distributed"):
        assert_same_fit(MetaGraphicalLasso(M, ALPHA, init=D0, memory_budget=BUDGETS[path]).fit(from_zarr), ref)
    with h5py.File(tmp_path / "x.h5", "r") as f:
        from_hdf5 = [da.from_array(f[f"x{k}"], chunks=(100, V)) for k in range(K)]
        assert_same_fit(MetaGraphicalLasso(M, ALPHA, init=D0, memory_budget=1).fit(from_hdf5), ref)


def test_lazy_anndata_groups_from_an_obs_column(client, data, tmp_path):
    ad = pytest.importorskip("anndata")
    pytest.importorskip("zarr")
    import pandas as pd
    from anndata.experimental import read_elem_lazy
    from anndata.io import read_elem

    Xs, D0 = data
    groups = np.repeat(["b", "a", "c"], [X.shape[0] for X in Xs])
    order = np.random.default_rng(3).permutation(groups.size)  # groups interleaved in the rows
    X = np.concatenate(Xs)[order]
    obs = pd.DataFrame({"cell_type": pd.Categorical(groups[order], categories=["b", "a", "c"])},
                       index=[f"cell{i}" for i in range(X.shape[0])])
    adata = ad.AnnData(X=X, obs=obs, var=pd.DataFrame(index=[f"g{j}" for j in range(V)]))
    ref = MetaGraphicalLasso(M, ALPHA, init=D0).fit(adata, groupby="cell_type")
    with warnings.catch_warnings():  # anndata's and zarr's notices about future defaults of the format
        warnings.simplefilter("ignore")
        adata.write_zarr(tmp_path / "cells.zarr")

    import zarr

    store = zarr.open_group(str(tmp_path / "cells.zarr"), mode="r")
    lazy = ad.AnnData(X=read_elem_lazy(store["X"]), obs=read_elem(store["obs"]), var=read_elem(store["var"]))
    assert _dask.is_dask_array(lazy.X)
    model = MetaGraphicalLasso(M, ALPHA, init=D0, memory_budget=1).fit(lazy, groupby="cell_type")
    assert model.dataset_names_ == ["b", "a", "c"]
    assert list(model.feature_names_in_) == [f"g{j}" for j in range(V)]
    assert model.dask_info_["path"] == "distributed"
    assert_same_fit(model, ref)
    with pytest.raises(ValueError, match=r"group 'a' of adata.obs\['cell_type'\] has 3 cells"):
        small = lazy[np.r_[np.flatnonzero(groups[order] != "a"), np.flatnonzero(groups[order] == "a")[:3]]]
        MetaGraphicalLasso(M, ALPHA).fit(small, groupby="cell_type")


def test_a_fit_on_numpy_after_dask_drops_the_dask_summary(data):
    Xs, D0 = data
    model = MetaGraphicalLasso(M, ALPHA, init=D0).fit(as_dask(Xs))
    assert hasattr(model, "dask_info_")
    model.fit(Xs)
    assert not hasattr(model, "dask_info_")


class _Covariances(_core.CovarianceProducts):
    """Covariances in NumPy behind the operator interface, with ways to misbehave."""

    def __init__(self, S, n, mode=None):
        super().__init__()
        self.S, self.n, self.mode = S, n, mode
        self.threads = set()  # the threads that called a method

    def _called(self):
        self.threads.add(threading.get_ident())

    def n_datasets(self):
        self._called()
        return len(self.S)

    def n_features(self):
        self._called()
        return self.S[0].shape[0]

    def dimension(self):
        self._called()
        return self.S[0].shape[0]

    def n_samples(self, k):
        self._called()
        return self.n[k]

    def trace(self, k):
        self._called()
        return float(np.trace(self.S[k]))

    def project(self, D, datasets):
        self._called()
        if self.mode == "raise":
            raise KeyError("the cluster went away")
        out = [(self.S[k] @ D, D.T @ self.S[k] @ D) for k in datasets]
        return out[:-1] if self.mode == "short" else out


def test_python_operator_reaches_the_core(data):
    Xs, D0 = data
    S = [np.cov(X, rowvar=False, bias=True) for X in Xs]
    n = [X.shape[0] for X in Xs]
    res = _core.fit_products(_Covariances(S, n), ALPHA, init="given", components=D0.T, glasso_tol=1e-12,
                             glasso_max_iter=10000)
    ref = _core.fit_covariances(S, n, ALPHA, init="given", components=D0.T, glasso_tol=1e-12,
                                glasso_max_iter=10000)
    np.testing.assert_allclose(res["components"], ref["components"], atol=1e-9)
    assert res["representations"] == ["operator"] * K
    with pytest.raises(KeyError, match="the cluster went away"):
        _core.fit_products(_Covariances(S, n, "raise"), ALPHA, n_components=M)
    with pytest.raises(ValueError, match="one .* pair per dataset"):
        _core.fit_products(_Covariances(S, n, "short"), ALPHA, n_components=M)


def test_score_and_bic_of_dask_arrays_equal_those_in_memory(client, data):
    Xs, D0 = data
    model = MetaGraphicalLasso(M, ALPHA, init=D0).fit(Xs)
    for parts in (as_dask(Xs), as_dask(Xs, rows=33)):
        assert model.score(parts) == pytest.approx(model.score(Xs), rel=1e-12)
        assert model.bic(parts) == pytest.approx(model.bic(Xs), rel=1e-12)
    # Centred at each dataset's own mean after a fit on covariances.
    covs = MetaGraphicalLasso(M, ALPHA, init=D0).fit_covariances(
        [np.cov(X, rowvar=False, bias=True) for X in Xs], [X.shape[0] for X in Xs])
    assert covs.bic(as_dask(Xs)) == pytest.approx(covs.bic(Xs), rel=1e-12)
    with pytest.raises(ValueError, match="the 3 datasets"):
        model.score(as_dask(Xs[:2]))


def test_functions_that_need_data_in_memory_say_so(data):
    from metaglasso import select_model

    Xs, _ = data
    model = MetaGraphicalLasso(M, ALPHA).fit(Xs)
    with pytest.raises(ValueError, match=r"Xs holds Dask arrays.*\.compute\(\)"):
        select_model(as_dask(Xs), n_components=[M], alphas=[ALPHA])
    with pytest.raises(ValueError, match=r"X holds Dask arrays"):
        model.transform(as_dask(Xs)[0])


def test_the_core_calls_a_python_operator_only_from_the_fitting_thread():
    # V·M·K = 20,000: the refits after the products run in parallel over the datasets with 2 threads.
    Xs, _ = make_synthetic(200, 300, 10, 10, random_state=2)
    op = _Covariances([np.cov(X, rowvar=False, bias=True) for X in Xs], [300] * 10)
    res = _core.fit_products(op, 0.09, n_components=10, max_iter=5, n_threads=2)
    assert res["n_iter"] == 5
    assert op.threads == {threading.get_ident()}


def test_strips_stay_on_their_workers(client):
    """The products on a strip run where it was persisted: no strip crosses between workers."""

    def strip_transfers(dask_worker):
        return sum(1 for e in dask_worker.transfer_outgoing_log for key in e.get("keys", {})
                   if "finish_block" in str(key))

    before = sum(client.run(strip_transfers).values())
    Xs, _ = make_synthetic(100, 600, 4, 4, random_state=5)
    with dask.config.set({"array.chunk-size": "20kB"}):  # 25 rows of 100 float64: 4 strips per S_k
        model = MetaGraphicalLasso(4, 0.05, memory_budget=1).fit(as_dask(Xs, rows=100))
    assert model.dask_info_["n_blocks"] == 4 and model.dask_info_["n_evaluations"] > 10
    assert sum(client.run(strip_transfers).values()) == before


def test_overflowing_covariance_is_named(data):
    Xs, _ = data
    huge = [X * 1e160 for X in Xs]
    for path in ("covariance", "distributed"):
        with pytest.raises(ValueError, match=r"Xs\[0\] is too large in magnitude: its covariance overflows"):
            MetaGraphicalLasso(M, ALPHA, memory_budget=BUDGETS[path]).fit(as_dask(huge))
