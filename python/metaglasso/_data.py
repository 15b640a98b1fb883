"""The input layer: every form of data that metaglasso's functions take, turned into one collection of
datasets.

Accepted forms, for ``fit`` and for everything that takes data after it (``transform``, ``score``,
``bic``, :func:`metaglasso.interpret.scores_table`, :func:`metaglasso.plotting.plot_scores`,
:func:`metaglasso.select_model`, the baselines):

- a sequence of K 2-D arrays, pandas DataFrames or scipy.sparse matrices (n_samples_k, n_features);
- a 3-D array (K, n_samples, n_features);
- a dict {name: dataset}: the keys name the datasets;
- one 2-D array, DataFrame or sparse matrix: a single dataset (K = 1), as scikit-learn's ``X``;
- an :class:`anndata.AnnData` with ``groupby``: one dataset per group of cells (:mod:`metaglasso.bio`);
- Dask arrays (any of the above holding them), which stay lazy.

DataFrames are aligned by column name: to the first dataset's columns, or after a fit to the model's
``feature_names_in_``. Each error names the dataset (``Xs[1]``, ``Xs['2016']``, ``group 'B' of
adata.obs['cell_type']``), and where it applies the column and the row, with the value found.
"""

from __future__ import annotations

import numbers
import sys
from collections.abc import Mapping

import numpy as np

from metaglasso._dask import is_dask_array
from metaglasso._validation import as_real_array, check_feature_names, feature_names, is_sparse

__all__ = ["Datasets", "as_datasets", "is_anndata", "model_datasets"]


def is_anndata(obj) -> bool:
    """Whether ``obj`` is an :class:`anndata.AnnData` (anndata is never imported here: it is loaded if
    ``obj`` is one)."""
    module = sys.modules.get("anndata")
    return module is not None and isinstance(obj, getattr(module, "AnnData", ()))


def _is_frame(obj) -> bool:
    return hasattr(obj, "columns") and hasattr(obj, "dtypes") and getattr(obj, "ndim", 2) == 2


class Datasets:
    """K datasets as the estimators use them.

    Attributes
    ----------
    arrays : list of K arrays of shape (n_samples_k, n_features)
        C-contiguous float64 ndarrays (the caller's own arrays when they already are), or Dask
        arrays when ``lazy``.
    labels : list of K str
        How messages name each dataset.
    names : list of K str or int, or None
        The datasets' names: a dict's keys, the groups of an AnnData or ``dataset_names``.
    feature_names : ndarray of str or None
        The column names (aligned across the datasets), or an AnnData's ``var_names``.
    sample_names : list of K sequences or None
        Per dataset the row labels (a DataFrame's index, an AnnData's ``obs_names``), else None.
    single : bool
        Given as one 2-D array rather than a collection.
    lazy : bool
        Dask arrays (not converted, not checked for values: the pass over them checks them).
    origin : dict
        After an AnnData: ``groupby_``, ``layer_`` and ``dropped_groups_``; else empty.
    """

    def __init__(self, arrays, labels, names=None, feature_names=None, sample_names=None, *, single=False,
                 lazy=False, origin=None):
        self.arrays = arrays
        self.labels = labels
        self.names = names
        self.feature_names = feature_names
        self.sample_names = sample_names if sample_names is not None else [None] * len(arrays)
        self.single = single
        self.lazy = lazy
        self.origin = origin or {}

    def __len__(self):
        return len(self.arrays)

    @property
    def n_samples(self):
        return np.array([X.shape[0] for X in self.arrays])

    def reordered(self, order):
        """The datasets in the order ``order`` (positions)."""
        pick = lambda seq: None if seq is None else [seq[i] for i in order]  # noqa: E731
        return Datasets(pick(self.arrays), pick(self.labels), pick(self.names), self.feature_names,
                        pick(self.sample_names), single=self.single, lazy=self.lazy, origin=self.origin)


def _listing(values, limit=5):
    values = list(values)
    shown = ", ".join(repr(v) for v in values[:limit])
    return shown + (f", ... ({len(values)} in all)" if len(values) > limit else "")


def _check_names(names, K, what="dataset_names"):
    """K distinct dataset names (str or int), as a list."""
    if isinstance(names, (str, bytes)) or not hasattr(names, "__len__"):
        raise ValueError(f"{what} must be a sequence of {K} names; got {names!r}")
    names = [n.item() if isinstance(n, np.generic) else n for n in names]
    if len(names) != K:
        raise ValueError(f"{what} must hold one name per dataset ({K}); got {len(names)}")
    for n in names:
        if isinstance(n, bool) or not isinstance(n, (str, numbers.Integral)):
            raise ValueError(f"{what} must be strings or integers; got {n!r}")
    if len({str(n) for n in names}) != K:
        raise ValueError(f"{what} must be distinct; got {names!r}")
    return names


def _frame_to_array(X, label, columns):
    """A DataFrame's values as float64, its columns put in the order ``columns`` (when given).

    Raises ValueError naming ``label``, the column and the row for a column that is not numeric;
    missing values (NaN, None, pd.NA) become NaN, found by the finiteness check.
    """
    import pandas as pd

    own = feature_names(X)
    if columns is not None and own is not None and not np.array_equal(own, columns):
        if len(set(own)) != len(own):
            dup = sorted({c for c in own if list(own).count(c) > 1})
            raise ValueError(f"{label} has duplicate columns {_listing(dup)}")
        missing = [c for c in columns if c not in set(own)]
        extra = [c for c in own if c not in set(columns)]
        if missing or extra:
            parts = ([f"lacks {_listing(missing)}"] if missing else []) + (
                [f"has {_listing(extra)} besides"] if extra else [])
            raise ValueError(f"{label} does not have the same columns as the other datasets: it "
                             f"{' and '.join(parts)}")
        X = X.loc[:, list(columns)]  # the same columns in another order: aligned by name
    values = []
    for j, (col, dtype) in enumerate(X.dtypes.items()):
        series = X.iloc[:, j]
        if pd.api.types.is_bool_dtype(dtype) or (pd.api.types.is_numeric_dtype(dtype)
                                                 and not pd.api.types.is_complex_dtype(dtype)):
            values.append(series.to_numpy(dtype=np.float64, na_value=np.nan))
            continue
        if pd.api.types.is_complex_dtype(dtype):
            raise ValueError(f"Complex data not supported: {label} column {col!r} has dtype {dtype}; it must be real")
        converted = pd.to_numeric(series, errors="coerce")
        bad = converted.isna().to_numpy() & series.notna().to_numpy()
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise ValueError(f"{label} column {col!r} must be numeric; got dtype {dtype} with the value "
                             f"{series.iloc[i]!r} at row {X.index[i]!r}")
        values.append(converted.to_numpy(dtype=np.float64, na_value=np.nan))
    if not values:
        return np.empty((X.shape[0], 0)), own
    return np.ascontiguousarray(np.column_stack(values)), own if columns is None else columns


def _to_array(X, label):
    """A dense real 2-D float64 array of ``X`` (no copy when it already is C-contiguous float64)."""
    if is_sparse(X):
        kind = np.dtype(X.dtype).kind
        if kind not in "biuf":
            raise ValueError(f"{label} is a sparse matrix of dtype {X.dtype}; it must be real and numeric")
        X = X.toarray()  # one dataset at a time
    return as_real_array(X, label)


def check_finite(arr, label, columns=None, rows=None):
    """Raise ValueError naming ``label``, the row and the column of the first NaN or infinite entry."""
    finite = np.isfinite(arr)
    if finite.all():
        return
    bad = np.argwhere(~finite)
    i, j = (int(v) for v in bad[0])
    row = repr(rows[i]) if rows is not None else str(i)
    col = repr(columns[j]) if columns is not None else str(j)
    count = f"{len(bad)} {'entry' if len(bad) == 1 else 'entries'}"
    raise ValueError(f"{label} contains NaN or infinite values ({count}): the first is {float(arr[i, j])!r} "
                     f"at row {row}, column {col}")


def _check_matrix(X, label, columns, min_samples=2):
    """(array, feature names, row labels) of one dataset, aligned to ``columns`` and checked."""
    rows = None
    if _is_frame(X):
        arr, own = _frame_to_array(X, label, columns)
        rows = list(X.index)
    else:
        arr, own = _to_array(X, label), None
    if arr.ndim != 2:
        hint = (f". Reshape your data with {label}.reshape(-1, 1) if it holds a single feature or "
                f"{label}.reshape(1, -1) if it holds a single sample") if arr.ndim == 1 else ""
        raise ValueError(f"{label} must be 2-D (n_samples, n_features); got ndim={arr.ndim} shape {arr.shape}{hint}")
    arr = np.ascontiguousarray(arr, dtype=np.float64)
    if arr.shape[1] < 1:
        raise ValueError(f"{label} has 0 feature(s) (shape={arr.shape}) while a minimum of 1 is required.")
    if arr.shape[0] < min_samples:
        raise ValueError(f"{label} must have at least {min_samples} sample{'s' if min_samples > 1 else ''}; got "
                         f"n_samples={arr.shape[0]}")
    check_finite(arr, label, own if own is not None else columns, rows)
    return arr, own, rows


def _is_collection_element(X) -> bool:
    """Whether ``X`` (the first item of a sequence) is itself a dataset rather than a row of one."""
    if _is_frame(X) or is_sparse(X) or is_dask_array(X) or isinstance(X, np.ndarray):
        return True
    if isinstance(X, (str, bytes)):
        return False
    try:
        return np.ndim(X) >= 2
    except ValueError:  # a ragged nested sequence: a dataset, whose conversion reports it
        return True


def _split_input(Xs, name):
    """(items, labels, names, single) of the accepted collection forms (not AnnData)."""
    if _is_frame(Xs) or is_sparse(Xs):  # before Mapping: a DOK matrix is a dict
        return [Xs], ["X"], None, True
    if isinstance(Xs, Mapping):
        keys = _check_names(list(Xs.keys()), len(Xs), f"the keys of {name}")
        return list(Xs.values()), [f"{name}[{k!r}]" for k in keys], keys, False
    if hasattr(Xs, "__array__") and not isinstance(Xs, (list, tuple)) and not is_dask_array(Xs):
        Xs = np.asarray(Xs)  # an array-like object
    if isinstance(Xs, np.ndarray) or is_dask_array(Xs):
        if Xs.ndim == 3:
            return [Xs[k] for k in range(Xs.shape[0])], [f"{name}[{k}]" for k in range(Xs.shape[0])], None, False
        if Xs.ndim == 2:
            return [Xs], ["X"], None, True
        raise ValueError(f"{name} must be a sequence of 2-D arrays (n_samples_k, n_features), a 3-D array or one "
                         f"2-D array; got an array with ndim={Xs.ndim}")
    if isinstance(Xs, (str, bytes)) or not hasattr(Xs, "__len__") or not hasattr(Xs, "__getitem__"):
        raise ValueError(f"{name} must be a sequence of 2-D arrays, a dict of them or an AnnData; got "
                         f"{type(Xs).__name__}")
    items = list(Xs)
    if items and not _is_collection_element(items[0]):
        return [items], ["X"], None, True  # a nested sequence of rows: one dataset
    return items, [f"{name}[{k}]" for k in range(len(items))], None, False


def as_datasets(Xs, *, name="Xs", groupby=None, layer=None, min_cells=None, dataset_names=None, columns=None,
                stacklevel=3):
    """The :class:`Datasets` of any accepted input (see the module docstring).

    Parameters
    ----------
    Xs : sequence, dict, array, DataFrame, sparse matrix or AnnData
    name : str
        Argument name used in error messages.
    groupby, layer, min_cells
        AnnData only (see :meth:`metaglasso.MetaGraphicalLasso.fit`).
    dataset_names : sequence of K str or int, optional
        Names of the datasets (not with a dict or an AnnData, which name them).
    columns : ndarray of str, optional
        The column names DataFrames are aligned to (a fitted model's ``feature_names_in_``); by default
        those of the first DataFrame.
    stacklevel : int
        Frames from this function up to the user's call, for the warnings of an AnnData's groups.
    """
    if is_anndata(Xs):
        data = _anndata_datasets(Xs, groupby, layer, min_cells, stacklevel + 1)
    else:
        for arg, value in (("groupby", groupby), ("layer", layer), ("min_cells", min_cells)):
            if value is not None:
                raise ValueError(f"{arg}={value!r} applies to an anndata.AnnData only; got {name} of type "
                                 f"{type(Xs).__name__}")
        items, labels, names, single = _split_input(Xs, name)
        if not items:
            raise ValueError(f"{name} must contain at least one dataset; got an empty {type(Xs).__name__}")
        if any(is_dask_array(X) for X in items):
            data = Datasets(items, labels, names, single=single, lazy=True)
        else:
            data = _dense_datasets(items, labels, names, single, columns)
    if dataset_names is not None:
        if data.names is not None:
            source = "the AnnData's groups" if data.origin else f"the keys of the dict {name}"
            raise ValueError(f"dataset_names is given, but {source} already name the datasets")
        data.names = _check_names(dataset_names, len(data))
        data.labels = [f"{label} ({n!r})" for label, n in zip(data.labels, data.names)]
    return data


def _dense_datasets(items, labels, names, single, columns):
    arrays, rows, reference = [], [], columns
    named = [_is_frame(X) and feature_names(X) is not None for X in items]
    if columns is None and any(named) and not all(named):
        with_names, without = labels[named.index(True)], labels[named.index(False)]
        raise ValueError(f"{with_names} has column names but {without} does not: give every dataset as a DataFrame "
                         f"with the same columns (they are aligned by name), or none")
    for k, X in enumerate(items):
        arr, own, sample = _check_matrix(X, labels[k], reference)
        if reference is None and own is not None:
            reference = own
        if k > 0 and arr.shape[1] != arrays[0].shape[1]:
            raise ValueError(f"{labels[k]} has {arr.shape[1]} features; expected {arrays[0].shape[1]} as in "
                             f"{labels[0]}")
        arrays.append(arr)
        rows.append(sample)
    return Datasets(arrays, labels, names, reference if any(named) else None, rows, single=single)


def _anndata_datasets(adata, groupby, layer, min_cells, stacklevel):
    from metaglasso.bio import _split

    if groupby is None:
        raise ValueError("groupby must name a column of adata.obs to use an AnnData (one dataset per group of "
                         "cells); got groupby=None")
    arrays, groups, dropped, positions = _split(adata, groupby, layer, min_cells, with_positions=True,
                                                 stacklevel=stacklevel + 2)
    features = np.asarray([str(v) for v in adata.var_names], dtype=object)
    obs = np.asarray(adata.obs_names, dtype=object)
    labels = [f"group {g!r} of adata.obs[{groupby!r}]" for g in groups]
    lazy = any(is_dask_array(X) for X in arrays)
    if not lazy:
        for X, label, idx in zip(arrays, labels, positions):
            check_finite(X, label, features, obs[idx])
    return Datasets(arrays, labels, list(groups), features, [list(obs[idx]) for idx in positions], lazy=lazy,
                    origin=dict(groupby_=groupby, layer_=layer, dropped_groups_=dropped))


# ---------------------------------------------------------------------------------------------
# Data given to a fitted model


def _fitted_columns(model):
    names = getattr(model, "feature_names_in_", None)
    return None if names is None else np.asarray(names, dtype=object)


def _check_fitted_features(model, data, estimator_name, stacklevel):
    """scikit-learn's checks of the features of data given after the fit: the count (its message),
    and a warning when only one of the fit and the data had column names."""
    V = model.components_.shape[1]
    for X, label in zip(data.arrays, data.labels):
        if X.shape[1] != V:
            raise ValueError(f"{label} has {X.shape[1]} features, but {estimator_name} is expecting {V} features "
                             f"as input.")
    fitted = _fitted_columns(model)
    if (fitted is None) != (data.feature_names is None):
        check_feature_names(fitted, data.feature_names, estimator_name, data.labels[0].split("[")[0],
                            stacklevel=stacklevel + 2)


def model_datasets(model, Xs, *, name="Xs", groupby=None, layer=None, estimator_name="MetaGraphicalLasso",
                   stacklevel=3):
    """The K datasets of a fitted model, as :class:`Datasets` in the model's order.

    DataFrames are aligned to the model's ``feature_names_in_``; datasets with names (a dict's keys, an
    AnnData's groups; ``groupby`` and ``layer`` default to those of the fit) are matched to the model's
    ``dataset_names_`` by name, and others by position.
    """
    K = model.precisions_.shape[0]
    if is_anndata(Xs):
        groupby = getattr(model, "groupby_", None) if groupby is None else groupby
        layer = getattr(model, "layer_", None) if layer is None else layer
    data = as_datasets(Xs, name=name, groupby=groupby, layer=layer, columns=_fitted_columns(model),
                       stacklevel=stacklevel + 1)
    fitted_names = getattr(model, "dataset_names_", None)
    if data.names is not None and fitted_names is not None:
        where = {str(n): k for k, n in enumerate(data.names)}
        wanted = [str(n) for n in fitted_names]
        missing = [n for n in wanted if n not in where]
        if missing:
            raise ValueError(f"{name} lacks the model's datasets {_listing(missing)} (the model's datasets are "
                             f"{_listing(wanted)})")
        data = data.reordered([where[n] for n in wanted])
    elif len(data) != K:
        raise ValueError(f"{name} must hold the {K} datasets the model was fitted on; got {len(data)}")
    if not data.lazy:
        _check_fitted_features(model, data, estimator_name, stacklevel)
    return data


def model_dataset(model, X, *, name="X", layer=None, estimator_name="MetaGraphicalLasso", stacklevel=3):
    """One dataset given to a fitted model (``transform``): (array, row labels), aligned and checked."""
    if is_anndata(X):
        from metaglasso.bio import _matrix, _rows

        layer = getattr(model, "layer_", None) if layer is None else layer
        arr = _rows(_matrix(X, layer), np.arange(X.n_obs))
        features = np.asarray([str(v) for v in X.var_names], dtype=object)
        check_finite(arr, name, features, np.asarray(X.obs_names, dtype=object))
        fitted = _fitted_columns(model)
        if fitted is not None and not np.array_equal(features, fitted):
            arr = _frame_columns(arr, features, fitted, name)
        data = Datasets([arr], [name], feature_names=fitted, single=True)
        sample = list(X.obs_names)
    else:
        if is_dask_array(X):
            raise ValueError(f"{name} holds Dask arrays, which MetaGraphicalLasso.fit, score and bic take without "
                             f"loading them; here the data must be in memory (call .compute())")
        if (isinstance(X, Mapping) and not is_sparse(X)) or (isinstance(X, (list, tuple)) and X and _is_collection_element(X[0])) or (
                isinstance(X, np.ndarray) and X.ndim == 3):
            raise ValueError(f"{name} must be one dataset (n_samples, n_features); got a collection of datasets "
                             f"(interpret.scores_table gives the scores of all of them)")
        arr, own, sample = _check_matrix(X, name, _fitted_columns(model), min_samples=1)
        data = Datasets([arr], [name], feature_names=own, single=True)
    _check_fitted_features(model, data, estimator_name, stacklevel)
    return data.arrays[0], sample


def _frame_columns(arr, features, fitted, label):
    position = {c: j for j, c in enumerate(features)}
    missing = [c for c in fitted if c not in position]
    if missing:
        raise ValueError(f"{label} lacks the model's features {_listing(missing)}")
    return np.ascontiguousarray(arr[:, [position[c] for c in fitted]])
