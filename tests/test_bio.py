"""AnnData input and write-back: the fit of fit(adata, groupby=...) is the NumPy fit of the groups."""

import subprocess
import sys

import numpy as np
import pytest

ad = pytest.importorskip("anndata")
pd = pytest.importorskip("pandas")
sp = pytest.importorskip("scipy.sparse")

from metaglasso import MetaGraphicalLasso, interpret  # noqa: E402
from metaglasso.bio import datasets_from_anndata, is_anndata, write_anndata  # noqa: E402
from metaglasso.datasets import make_synthetic  # noqa: E402
from metaglasso.io import load_model, save_model  # noqa: E402

V, M, ALPHA = 40, 3, 0.05
# The penalised diagonal keeps the objective bounded for the 6-cell group (see README, Edge cases).
PARAMS = dict(n_components=M, alpha=ALPHA, penalize_diagonal=True)
# Group sizes in the order of the categorical's categories; "tiny" is below MIN_CELLS but large enough
# for M (M + 2 cells).
CATEGORIES = ["beta", "alpha", "tiny", "gamma", "unused"]
SIZES = {"beta": 60, "alpha": 45, "tiny": 6, "gamma": 50, "unused": 0}
MIN_CELLS = 10
# Scores of write_anndata are computed by model.transform on the same float64 values: exact.
SCORE_ATOL = 0.0


@pytest.fixture(scope="module")
def cells():
    """(X, labels): the groups' cells interleaved in a random order, as in a real object."""
    kept = [c for c in CATEGORIES if SIZES[c]]
    Xs, _ = make_synthetic(V, [SIZES[c] for c in kept], len(kept), M, random_state=3)
    X = np.vstack(Xs)
    labels = np.repeat(kept, [SIZES[c] for c in kept])
    order = np.random.default_rng(0).permutation(len(X))
    return X[order], labels[order]


def _adata(X, labels, *, categorical=True, layers=None):
    column = pd.Categorical(labels, categories=CATEGORIES) if categorical else labels
    obs = pd.DataFrame({"cell_type": column}, index=[f"cell{i}" for i in range(len(labels))])
    var = pd.DataFrame(index=[f"gene{j}" for j in range(X.shape[1])])
    return ad.AnnData(X=X, obs=obs, var=var, layers=layers)


def _groups(X, labels, names):
    dense = X.toarray() if sp.issparse(X) else np.asarray(X)
    return [np.ascontiguousarray(dense[labels == name], dtype=np.float64) for name in names]


def _fit_quietly(model, *args, **kwargs):
    import warnings

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="min_cells=", category=UserWarning)
        return model.fit(*args, **kwargs)


def _assert_same_fit(a, b):
    for name in ("components_", "precisions_", "covariances_", "noise_variances_", "means_", "n_samples_",
                 "objective_history_"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)
    assert a.n_iter_ == b.n_iter_ and a.objective_ == b.objective_


def test_importing_metaglasso_does_not_import_anndata():
    code = "import sys, metaglasso, metaglasso.bio; sys.exit('anndata' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


@pytest.mark.parametrize("fmt", ["dense", "float32", "fortran", "csr", "csc"])
def test_fit_equals_numpy_fit_of_the_groups(cells, fmt):
    X, labels = cells
    matrix = {"dense": X, "float32": X.astype(np.float32), "fortran": np.asfortranarray(X),
              "csr": sp.csr_matrix(X), "csc": sp.csc_matrix(X)}[fmt]
    adata = _adata(matrix, labels)
    model = _fit_quietly(MetaGraphicalLasso(**PARAMS), adata, groupby="cell_type",
                         min_cells=MIN_CELLS)
    names = ["beta", "alpha", "gamma"]  # category order, "tiny" dropped and "unused" empty
    assert model.dataset_names_ == names
    assert model.dropped_groups_ == {"tiny": SIZES["tiny"]}
    assert model.groupby_ == "cell_type" and model.layer_ is None
    reference = MetaGraphicalLasso(**PARAMS).fit(_groups(matrix, labels, names))
    _assert_same_fit(model, reference)
    assert list(model.feature_names_in_) == list(adata.var_names)


def test_datasets_from_anndata_order_and_rows(cells):
    X, labels = cells
    adata = _adata(sp.csr_matrix(X), labels, categorical=False)
    Xs, names, dropped = datasets_from_anndata(adata, "cell_type")
    assert names == sorted(c for c in CATEGORIES if SIZES[c])  # sorted values of a plain column
    assert dropped == {}
    for name, block in zip(names, Xs):
        assert block.dtype == np.float64 and block.flags.c_contiguous
        np.testing.assert_array_equal(block, X[labels == name])  # cells in the order of adata.obs


def test_contiguous_groups_of_a_float64_array_are_read_in_place(cells):
    X, labels = cells
    order = np.argsort(labels, kind="stable")
    adata = _adata(np.ascontiguousarray(X[order]), labels[order])
    Xs, names, _ = datasets_from_anndata(adata, "cell_type")
    for block in Xs:
        assert np.shares_memory(block, adata.X)
    model = MetaGraphicalLasso(**PARAMS).fit(adata, groupby="cell_type", min_cells=1)
    _assert_same_fit(model, MetaGraphicalLasso(**PARAMS).fit(
        _groups(X[order], labels[order], names)))


def test_layer(cells):
    X, labels = cells
    counts = np.round(np.exp(X)).astype(np.float32)  # a second matrix, different from X
    adata = _adata(X, labels, layers={"counts": sp.csr_matrix(counts)})
    model = MetaGraphicalLasso(**PARAMS).fit(adata, groupby="cell_type", layer="counts")
    assert model.layer_ == "counts"
    names = model.dataset_names_
    assert names == ["beta", "alpha", "tiny", "gamma"]
    reference = MetaGraphicalLasso(**PARAMS).fit(_groups(counts, labels, names))
    _assert_same_fit(model, reference)
    write_anndata(model, adata)  # scores from the layer the model was fitted on
    for k, name in enumerate(names):
        np.testing.assert_array_equal(adata.obsm["mglasso"][labels == name],
                                      model.transform(adata[labels == name], dataset=k))
    assert adata.uns["mglasso"]["layer"] == "counts"


def test_min_cells_warning_lists_dropped_groups(cells):
    X, labels = cells
    adata = _adata(X, labels)
    with pytest.warns(UserWarning, match=r"min_cells=10 dropped 1 of 4 groups of adata.obs\['cell_type'\]: "
                                         r"'tiny' \(6 cells\)$"):
        Xs, names, dropped = datasets_from_anndata(adata, "cell_type", min_cells=MIN_CELLS)
    assert names == ["beta", "alpha", "gamma"] and dropped == {"tiny": 6}
    assert [len(x) for x in Xs] == [60, 45, 50]
    with pytest.warns(UserWarning, match=r"dropped 2 of 4 groups .*'alpha' \(45 cells\), 'tiny' \(6 cells\)$"):
        model = MetaGraphicalLasso(**PARAMS).fit(adata, groupby="cell_type", min_cells=50)
    assert model.dataset_names_ == ["beta", "gamma"]
    assert model.dropped_groups_ == {"alpha": 45, "tiny": 6}


def test_write_back_slots_and_values(cells):
    X, labels = cells
    adata = _adata(sp.csc_matrix(X), labels)
    model = _fit_quietly(MetaGraphicalLasso(**PARAMS), adata, groupby="cell_type",
                         min_cells=MIN_CELLS)
    write_anndata(model, adata, key="mg")
    assert adata.varm["mg"].shape == (V, M)
    np.testing.assert_array_equal(adata.varm["mg"], model.components_.T)
    scores = adata.obsm["mg"]
    assert scores.shape == (adata.n_obs, M)
    for k, name in enumerate(model.dataset_names_):
        np.testing.assert_allclose(scores[labels == name], model.transform(adata[labels == name], dataset=k, layer=None),
                                   rtol=0, atol=SCORE_ATOL)
    assert np.all(np.isnan(scores[labels == "tiny"]))  # the dropped group has no scores
    assert not np.any(np.isnan(scores[labels != "tiny"]))
    uns = adata.uns["mg"]
    assert list(uns["dataset_names"]) == ["beta", "alpha", "gamma"]
    assert list(uns["factor_names"]) == [f"factor_{m}" for m in range(M)]
    for name in ("precisions", "partial_correlations", "covariances", "noise_variances"):
        np.testing.assert_array_equal(uns[name], getattr(model, name + "_"), err_msg=name)
    np.testing.assert_array_equal(uns["n_cells"], [60, 45, 50])
    assert list(uns["dropped_groups"]) == ["tiny"] and list(uns["dropped_sizes"]) == [6]
    assert uns["groupby"] == "cell_type" and uns["layer"] == "X"
    assert uns["params"]["alpha"] == ALPHA and uns["params"]["n_components"] == M
    assert "callback" not in uns["params"] and "random_state" not in uns["params"]  # None is not stored


@pytest.mark.parametrize("min_cells", [None, MIN_CELLS])
def test_h5ad_round_trip(cells, tmp_path, min_cells):
    X, labels = cells
    adata = _adata(sp.csr_matrix(X.astype(np.float32)), labels)
    model = _fit_quietly(MetaGraphicalLasso(**PARAMS), adata, groupby="cell_type",
                         min_cells=min_cells)
    write_anndata(model, adata)
    path = tmp_path / "cells.h5ad"
    adata.write_h5ad(path)
    back = ad.read_h5ad(path)
    np.testing.assert_array_equal(back.varm["mglasso"], adata.varm["mglasso"])
    np.testing.assert_array_equal(back.obsm["mglasso"], adata.obsm["mglasso"])  # NaN rows compare equal
    for key, value in adata.uns["mglasso"].items():
        if isinstance(value, dict):
            assert dict(back.uns["mglasso"][key]) == value, key
        else:
            np.testing.assert_array_equal(back.uns["mglasso"][key], value, err_msg=key)
    assert set(back.uns["mglasso"]) == set(adata.uns["mglasso"])


@pytest.mark.parametrize("sparse", [False, True])
def test_backed_h5ad_gives_the_same_fit(cells, tmp_path, sparse):
    X, labels = cells
    path = tmp_path / "cells.h5ad"
    _adata(sp.csr_matrix(X) if sparse else X, labels).write_h5ad(path)
    backed = ad.read_h5ad(path, backed="r")
    try:
        model = MetaGraphicalLasso(**PARAMS).fit(backed, groupby="cell_type")
    finally:
        backed.file.close()
    reference = MetaGraphicalLasso(**PARAMS).fit(_groups(X, labels, model.dataset_names_))
    _assert_same_fit(model, reference)


@pytest.mark.parametrize("fmt", ["csr", "csc"])
def test_sparse_matrix_is_densified_one_group_at_a_time(cells, monkeypatch, fmt):
    X, labels = cells
    adata = _adata(sp.csr_matrix(X) if fmt == "csr" else sp.csc_matrix(X), labels)
    requested = []

    def recording(original):
        def toarray(self, *args, **kwargs):
            requested.append(self.shape)
            return original(self, *args, **kwargs)
        return toarray

    def forbidden(self, *args, **kwargs):
        raise AssertionError("a sparse matrix was converted with todense/__array__")

    for cls in (sp.csr_matrix, sp.csc_matrix, sp.csr_array, sp.csc_array):
        monkeypatch.setattr(cls, "toarray", recording(cls.toarray))
        monkeypatch.setattr(cls, "todense", forbidden)
    model = _fit_quietly(MetaGraphicalLasso(**PARAMS), adata, groupby="cell_type",
                         min_cells=MIN_CELLS)
    fit_requests, requested[:] = list(requested), []
    write_anndata(model, adata)
    expected = [(SIZES[name], V) for name in model.dataset_names_]
    assert fit_requests == expected  # one toarray per kept group, of that group's rows only
    assert requested == expected
    assert all(shape[0] < adata.n_obs for shape in fit_requests)


def test_names_flow_into_tables_and_saved_models(cells, tmp_path):
    X, labels = cells
    adata = _adata(X, labels)
    model = MetaGraphicalLasso(**PARAMS).fit(adata, groupby="cell_type")
    genes = [f"gene{j}" for j in range(V)]
    groups = ["beta", "alpha", "tiny", "gamma"]
    assert list(pd.Index(interpret.loadings_table(model).index)) == genes
    assert list(interpret.variances_table(model).index) == groups
    assert set(interpret.edges_table(model)["dataset"]) <= set(groups)
    loaded = load_model(save_model(model, tmp_path / "model"))
    assert loaded.dataset_names_ == groups and list(loaded.feature_names_in_) == genes


def test_missing_group_labels_warn_and_get_nan_scores(cells):
    X, labels = cells
    labels = labels.astype(object)
    labels[:3] = None
    adata = _adata(X, labels)
    with pytest.warns(UserWarning, match=r"3 of 161 cells have no value in adata.obs\['cell_type'\]"):
        model = MetaGraphicalLasso(**PARAMS).fit(adata, groupby="cell_type", min_cells=4)
    write_anndata(model, adata)
    assert np.all(np.isnan(adata.obsm["mglasso"][:3])) and not np.any(np.isnan(adata.obsm["mglasso"][3:]))


def test_numpy_refit_forgets_the_groups(cells):
    X, labels = cells
    model = MetaGraphicalLasso(**PARAMS).fit(_adata(X, labels), groupby="cell_type")
    assert is_anndata(_adata(X, labels)) and not is_anndata(X)
    model.fit([X[:80], X[80:]])
    for attr in ("dataset_names_", "dropped_groups_", "groupby_", "layer_", "feature_names_in_"):
        assert not hasattr(model, attr), attr


def _bad_fits(X, labels):
    adata = _adata(X, labels)
    est = MetaGraphicalLasso(**PARAMS)
    return [
        (lambda: est.fit(adata), r"groupby must name a column of adata.obs .*got groupby=None"),
        (lambda: est.fit(adata, groupby="tissue"), r"groupby='tissue' is not a column of adata.obs; .*'cell_type'"),
        (lambda: est.fit([X[:50], X[50:]], groupby="cell_type"),
         r"groupby='cell_type' applies to an anndata.AnnData only; got Xs of type list"),
        (lambda: est.fit([X[:50], X[50:]], layer="counts"), r"layer='counts' applies to an anndata.AnnData only"),
        (lambda: est.fit([X[:50], X[50:]], min_cells=5), r"min_cells=5 applies to an anndata.AnnData only"),
        (lambda: est.fit(adata, groupby="cell_type", layer="counts"),
         r"layer='counts' is not in adata.layers; its layers are \[\]"),
        (lambda: est.fit(adata, groupby="cell_type", min_cells=0), r"min_cells must be an integer >= 1; got 0"),
        (lambda: MetaGraphicalLasso(n_components=5).fit(adata, groupby="cell_type"),  # "tiny": 6 cells, M = 5 needs 7
         r"group 'tiny' of adata.obs\['cell_type'\] has 6 cells: .* needs at least 7 cells with n_components=5 "
         r".*min_cells=7 drops"),
        (lambda: datasets_from_anndata(X, "cell_type"), r"adata must be an anndata.AnnData; got ndarray"),
        (lambda: write_anndata(MetaGraphicalLasso(n_components=M).fit([X[:50], X[50:]]), adata),
         r"model has no dataset_names_"),
    ]


@pytest.mark.parametrize("case", range(10))
def test_errors_name_the_argument(cells, case):
    X, labels = cells
    call, match = _bad_fits(X, labels)[case]
    with pytest.raises(ValueError, match=match):
        call()


def test_all_groups_dropped_and_mismatched_genes(cells):
    X, labels = cells
    adata = _adata(X, labels)
    with pytest.warns(UserWarning, match="dropped 4 of 4 groups"):
        with pytest.raises(ValueError, match=r"min_cells=1000 drops every group of adata.obs\['cell_type'\] "
                                             r"\(the largest has 60 cells\)"):
            MetaGraphicalLasso(**PARAMS).fit(adata, groupby="cell_type", min_cells=1000)
    model = MetaGraphicalLasso(**PARAMS).fit(adata, groupby="cell_type", min_cells=5)
    other = adata.copy()
    other.var_names = [f"other{j}" for j in range(V)]
    with pytest.raises(ValueError, match="adata.var_names differ from the model's feature_names_in_"):
        write_anndata(model, other)
    relabelled = adata.copy()
    relabelled.obs["cell_type"] = relabelled.obs["cell_type"].cat.rename_categories(
        {"beta": "b"})
    with pytest.raises(ValueError, match=r"the model's datasets \['beta'\] are not values"):
        write_anndata(model, relabelled)
