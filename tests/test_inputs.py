"""One input layer: every accepted form of the data gives the fit, scores and criteria of the same data
given as a list of float64 arrays, and every error names the dataset, the column and the value.

Equalities are exact (bit for bit) where the same arrays reach the core; scores of aligned DataFrames
are compared to 1e-12 relative.
"""

import warnings

import numpy as np
import pytest

from metaglasso import MetaGraphicalLasso, interpret, select_model
from metaglasso.datasets import make_synthetic

pd = pytest.importorskip("pandas")

M, ALPHA = 3, 0.05
NAMES = ["2015", "2016", "2017"]


@pytest.fixture(scope="module")
def data():
    Xs, _ = make_synthetic(12, [40, 50, 45], 3, M, random_state=3)
    columns = [f"g{i}" for i in range(Xs[0].shape[1])]
    return Xs, columns


@pytest.fixture(scope="module")
def reference(data):
    Xs, _ = data
    return MetaGraphicalLasso(M, ALPHA).fit(Xs)


def frames_of(Xs, columns):
    return [pd.DataFrame(X, columns=columns, index=[f"s{k}_{i}" for i in range(len(X))]) for k, X in enumerate(Xs)]


def assert_same_fit(a, b):
    np.testing.assert_array_equal(a.components_, b.components_)
    np.testing.assert_array_equal(a.precisions_, b.precisions_)
    np.testing.assert_array_equal(a.noise_variances_, b.noise_variances_)


def test_collection_forms_give_the_same_fit(data, reference):
    Xs, columns = data
    frames = frames_of(Xs, columns)
    forms = {
        "tuple": tuple(Xs),
        "dict": dict(zip(NAMES, Xs)),
        "frames": frames,
        "dict of frames": dict(zip(NAMES, frames)),
        "frames, columns in other orders": [frames[0], frames[1][columns[::-1]], frames[2][columns[3:] + columns[:3]]],
        "Fortran order": [np.asfortranarray(Xs[0]), Xs[1], Xs[2]],
    }
    for form, value in forms.items():
        assert_same_fit(MetaGraphicalLasso(M, ALPHA).fit(value), reference), form
    three = np.stack([X[:40] for X in Xs])
    assert_same_fit(MetaGraphicalLasso(M, ALPHA).fit(three), MetaGraphicalLasso(M, ALPHA).fit(list(three)))


def test_a_dict_names_the_datasets_and_is_matched_by_name(data, reference):
    Xs, columns = data
    model = MetaGraphicalLasso(M, ALPHA).fit(dict(zip(NAMES, Xs)))
    assert model.dataset_names_ == NAMES
    shuffled = {name: X for name, X in reversed(list(zip(NAMES, Xs)))}
    assert model.score(shuffled) == reference.score(Xs)
    assert model.bic(shuffled) == reference.bic(Xs)
    np.testing.assert_array_equal(model.transform(Xs[1], dataset="2016"), reference.transform(Xs[1], dataset=1))
    table = interpret.scores_table(model, shuffled)
    assert list(pd.unique(table["dataset"])) == NAMES
    with pytest.raises(ValueError, match=r"Xs lacks the model's datasets '2017'"):
        model.score({"2015": Xs[0], "2016": Xs[1], "2018": Xs[2]})
    with pytest.raises(ValueError, match=r"dataset='2020' is not one of the model's dataset_names_"):
        model.transform(Xs[0], dataset="2020")


def test_dataset_names_argument(data):
    Xs, _ = data
    model = MetaGraphicalLasso(M, ALPHA).fit(Xs, dataset_names=NAMES)
    assert model.dataset_names_ == NAMES
    assert "dataset_names_" not in vars(MetaGraphicalLasso(M, ALPHA).fit(Xs))
    with pytest.raises(ValueError, match=r"dataset_names must hold one name per dataset \(3\); got 2"):
        MetaGraphicalLasso(M, ALPHA).fit(Xs, dataset_names=NAMES[:2])
    with pytest.raises(ValueError, match=r"dataset_names must be distinct"):
        MetaGraphicalLasso(M, ALPHA).fit(Xs, dataset_names=["a", "a", "b"])
    with pytest.raises(ValueError, match=r"dataset_names is given, but the keys of the dict Xs already name"):
        MetaGraphicalLasso(M, ALPHA).fit(dict(zip(NAMES, Xs)), dataset_names=NAMES)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the grid's edge
        search = select_model(Xs, [M], [ALPHA, 2 * ALPHA], dataset_names=NAMES)
    assert search.best_estimator_.dataset_names_ == NAMES


def test_one_array_is_one_dataset(data):
    Xs, columns = data
    single = MetaGraphicalLasso(M, ALPHA).fit(Xs[0])
    assert_same_fit(single, MetaGraphicalLasso(M, ALPHA).fit([Xs[0]]))
    assert_same_fit(MetaGraphicalLasso(M, ALPHA).fit(pd.DataFrame(Xs[0], columns=columns)), single)
    assert_same_fit(MetaGraphicalLasso(M, ALPHA).fit(Xs[0].tolist()), single)  # nested lists: rows
    assert single.score(Xs[0]) == single.score([Xs[0]])


def test_sparse_datasets_equal_dense(data, reference):
    sp = pytest.importorskip("scipy.sparse")
    Xs, _ = data
    model = MetaGraphicalLasso(M, ALPHA).fit([sp.csr_matrix(Xs[0]), sp.csc_array(Xs[1]), Xs[2]])
    assert_same_fit(model, reference)
    np.testing.assert_array_equal(model.transform(sp.csr_matrix(Xs[0])), reference.transform(Xs[0]))
    assert model.bic([sp.csr_matrix(X) for X in Xs]) == reference.bic(Xs)


def test_dataframes_after_the_fit_are_aligned_to_feature_names_in(data):
    Xs, columns = data
    frames = frames_of(Xs, columns)
    model = MetaGraphicalLasso(M, ALPHA).fit(frames)
    shuffled = [f[columns[::-1]] for f in frames]
    np.testing.assert_allclose(model.transform(shuffled[0]), model.transform(frames[0]), rtol=1e-12, atol=1e-14)
    assert model.score(shuffled) == pytest.approx(model.score(frames), rel=1e-12)
    table = interpret.scores_table(model, shuffled)
    assert list(table["sample"][:2]) == ["s0_0", "s0_1"]  # the frames' index labels the samples
    with pytest.raises(ValueError, match=r"X does not have the same columns as the other datasets: it lacks 'g0'"):
        model.transform(frames[0].drop(columns="g0"))
    with pytest.warns(UserWarning, match="X does not have valid feature names, but MetaGraphicalLasso was fitted"):
        model.transform(Xs[0])
    with pytest.raises(ValueError, match=r"X has 11 features, but MetaGraphicalLasso is expecting 12 features"):
        model.transform(Xs[0][:, 1:])


@pytest.mark.parametrize("make, match", [
    # A text column: the dataset, the column, the value and its row.
    (lambda f: f.assign(g3=["x"] * len(f)), r"Xs\[1\] column 'g3' must be numeric; got dtype object with the value 'x' "
                                            r"at row 's1_0'"),
    # pd.NA in a nullable integer column: the dataset, the row label and the column.
    (lambda f: f.assign(g5=pd.array([1] * 7 + [pd.NA] + [2] * (len(f) - 8), dtype="Int64")),
     r"Xs\[1\] contains NaN or infinite values \(1 entry\): the first is nan at row 's1_7', column 'g5'"),
    (lambda f: f.assign(g2=np.where(np.arange(len(f)) == 4, np.inf, 1.0)),
     r"Xs\[1\] contains NaN or infinite values \(1 entry\): the first is inf at row 's1_4', column 'g2'"),
    (lambda f: f.drop(columns=["g1", "g7"]).assign(h=1.0),
     r"Xs\[1\] does not have the same columns as the other datasets: it lacks 'g1', 'g7' and has 'h' besides"),
    (lambda f: f.to_numpy(), r"Xs\[0\] has column names but Xs\[1\] does not"),
])
def test_dataframe_errors_name_dataset_column_and_value(data, make, match):
    Xs, columns = data
    frames = frames_of(Xs, columns)
    frames[1] = make(frames[1])
    with pytest.raises(ValueError, match=match):
        MetaGraphicalLasso(M, ALPHA).fit(frames)


def test_array_errors_name_dataset_row_and_column(data):
    Xs, _ = data
    bad = [X.copy() for X in Xs]
    bad[2][5, 7] = np.nan
    with pytest.raises(ValueError, match=r"Xs\[2\] contains NaN or infinite values \(1 entry\): the first is nan at "
                                         r"row 5, column 7"):
        MetaGraphicalLasso(M, ALPHA).fit(bad)
    with pytest.raises(ValueError, match=r"Xs\['b'\] contains NaN .* at row 5, column 7"):
        MetaGraphicalLasso(M, ALPHA).fit({"a": Xs[0], "b": bad[2]})
    with pytest.raises(ValueError, match=r"Complex data not supported: Xs\[1\] has dtype complex128"):
        MetaGraphicalLasso(M, ALPHA).fit([Xs[0], Xs[1] + 1j])
    objects = Xs[0].astype(object)
    objects[3, 2] = "n/a"
    with pytest.raises(ValueError, match=r"Xs\[0\] has dtype object with an entry that is not a number: 'n/a' at Xs\[0\]\[3, 2\]"):
        MetaGraphicalLasso(M, ALPHA).fit([objects, Xs[1]])
    with pytest.raises(ValueError, match=r"Xs\['b'\] has 11 features; expected 12 as in Xs\['a'\]"):
        MetaGraphicalLasso(M, ALPHA).fit({"a": Xs[0], "b": Xs[1][:, 1:]})
    with pytest.raises(ValueError, match=r"X must be one dataset .*got a collection"):
        MetaGraphicalLasso(M, ALPHA).fit(Xs).transform(Xs)


def test_the_caller_arrays_are_neither_copied_nor_modified(data):
    Xs, _ = data
    before = [X.copy() for X in Xs]
    MetaGraphicalLasso(M, ALPHA).fit({"a": Xs[0], "b": Xs[1], "c": Xs[2]})
    for X, old in zip(Xs, before):
        np.testing.assert_array_equal(X, old)
    from metaglasso._data import as_datasets

    assert all(a is X for a, X in zip(as_datasets(Xs).arrays, Xs))  # C-contiguous float64: read in place


# ---------------------------------------------------------------------------------------------
# AnnData everywhere fit takes it

@pytest.fixture(scope="module")
def adata_case(data):
    ad = pytest.importorskip("anndata")
    Xs, columns = data
    labels = np.repeat(NAMES, [len(X) for X in Xs])
    order = np.random.default_rng(0).permutation(len(labels))  # the groups' cells interleaved
    X = np.concatenate(Xs)[order]
    obs = pd.DataFrame({"year": pd.Categorical(labels[order], categories=NAMES)},
                       index=[f"cell{i}" for i in range(len(order))])
    adata = ad.AnnData(X=X, obs=obs, var=pd.DataFrame(index=columns))
    return adata, [X[labels[order] == name] for name in NAMES]


def test_anndata_in_score_bic_transform_tables_and_selection(adata_case):
    adata, groups = adata_case
    model = MetaGraphicalLasso(M, ALPHA).fit(adata, groupby="year")
    ref = MetaGraphicalLasso(M, ALPHA).fit(dict(zip(NAMES, groups)))
    assert_same_fit(model, ref)
    assert model.score(adata) == ref.score(groups)
    assert model.bic(adata, groupby="year") == ref.bic(groups)
    scores = model.transform(adata)  # each cell centred with its group's mean
    codes = adata.obs["year"].cat.codes.to_numpy()
    for k, X in enumerate(groups):
        np.testing.assert_allclose(scores[codes == k], ref.transform(X, dataset=k), rtol=1e-13, atol=1e-13)
    np.testing.assert_allclose(model.transform(adata, dataset=0),  # every cell centred with dataset 0's mean
                               (adata.X - model.means_[0]) @ model.components_.T, rtol=1e-13, atol=1e-13)
    table = interpret.scores_table(model, adata)
    assert list(pd.unique(table["dataset"])) == NAMES
    assert set(table["sample"]) == set(adata.obs_names)
    explained = interpret.variance_explained_table(model, adata)
    np.testing.assert_allclose(explained.to_numpy(), interpret.variance_explained_table(ref, groups).to_numpy(),
                               rtol=1e-12)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        search = select_model(adata, [M], [ALPHA, 2 * ALPHA], groupby="year")
        plain = select_model(groups, [M], [ALPHA, 2 * ALPHA])
    assert [r["bic"] for r in search.results_] == [r["bic"] for r in plain.results_]
    assert search.best_estimator_.dataset_names_ == NAMES
    assert search.best_estimator_.groupby_ == "year"
    assert list(search.best_estimator_.feature_names_in_) == list(adata.var_names)


def test_anndata_errors_name_the_cell_and_the_gene(adata_case):
    adata, _ = adata_case
    bad = adata.copy()
    bad.X[4, 2] = np.nan
    group = bad.obs["year"].iloc[4]
    with pytest.raises(ValueError, match=rf"group '{group}' of adata.obs\['year'\] contains NaN or infinite values "
                                         rf"\(1 entry\): the first is nan at row 'cell4', column 'g2'"):
        MetaGraphicalLasso(M, ALPHA).fit(bad, groupby="year")
    model = MetaGraphicalLasso(M, ALPHA).fit(adata, groupby="year")
    with pytest.raises(ValueError, match=r"groupby must name a column of adata.obs"):
        MetaGraphicalLasso(M, ALPHA).fit(adata)
    with pytest.raises(ValueError, match=r"dataset=0 and groupby='year' both say how to centre the cells"):
        model.transform(adata, dataset=0, groupby="year")


def test_plot_scores_takes_an_anndata(adata_case):
    pytest.importorskip("matplotlib")
    import matplotlib

    matplotlib.use("Agg")
    from metaglasso.plotting import plot_scores

    adata, groups = adata_case
    model = MetaGraphicalLasso(M, ALPHA).fit(adata, groupby="year")
    fig = plot_scores(model, adata)
    ref = MetaGraphicalLasso(M, ALPHA).fit(dict(zip(NAMES, groups)))
    fig_ref = plot_scores(ref, dict(zip(NAMES, groups)))
    texts = sorted(t.get_text() for t in fig.findobj(matplotlib.text.Text) if t.get_text())
    assert texts == sorted(t.get_text() for t in fig_ref.findobj(matplotlib.text.Text) if t.get_text())
    assert set(NAMES) <= set(texts)  # the groups label the datasets


def test_dask_collections_stay_lazy(data, reference):
    da = pytest.importorskip("dask.array")
    Xs, _ = data
    model = MetaGraphicalLasso(M, ALPHA).fit({name: da.from_array(X, chunks=(20, -1)) for name, X in zip(NAMES, Xs)})
    assert model.dataset_names_ == NAMES
    assert model.dask_info_["path"] == "covariance"
    np.testing.assert_allclose(model.components_, reference.components_, rtol=0, atol=1e-8)
