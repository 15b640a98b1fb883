"""AnnData input and output: one dataset per group of cells, results written back into the object.

Single-cell data in the scanpy ecosystem live in an :class:`anndata.AnnData` (cells × genes). With
``MetaGraphicalLasso().fit(adata, groupby="cell_type")`` every group of cells — every value of
the column ``adata.obs["cell_type"]`` — is one dataset of the model, and the gene names
(``adata.var_names``) become the model's ``feature_names_in_``. :func:`write_anndata` stores the
fit in the object: loadings in ``adata.varm``, each cell's factor scores in ``adata.obsm`` and the
per-group networks in ``adata.uns``.

anndata is optional (``pip install "metaglasso[bio]"``): importing metaglasso does not import it,
and the functions here only need the AnnData object they are given.

Groups
------
- **Order.** For a categorical column, the order of its categories; otherwise the sorted distinct
  values. Categories without cells are not groups. ``dataset_names_`` holds the group names as
  strings, in this order: dataset k of the model is group ``dataset_names_[k]``.
- **Cells without a group** (a missing value in the column) belong to no dataset; a warning says
  how many there are.
- **Small groups.** ``min_cells=n`` drops the groups with fewer than n cells, with a warning that
  lists each dropped group and its size; the model records them in ``dropped_groups_``.
- **Matrices.** ``layer=None`` uses ``adata.X``, ``layer="name"`` uses ``adata.layers["name"]``.
  Dense arrays, scipy.sparse matrices and arrays (CSR or CSC) and backed (on-disk) matrices are
  read one group at a time: only one group's rows are ever densified, never the whole matrix.
  A group whose cells form a contiguous block of rows of a C-ordered float64 array is used in
  place (no copy). Values are converted to float64 exactly, so a float32 matrix gives the fit of
  the same values given as float64 arrays.
- **Dask.** A matrix that is a Dask array (e.g. ``anndata.experimental.read_elem_lazy`` of a Zarr
  or HDF5 store) stays lazy: each group is a lazy selection of its rows, and the fit reduces the
  groups to their statistics on the cluster (see ``memory_budget`` of
  :class:`~metaglasso.MetaGraphicalLasso`); :func:`datasets_from_anndata` then returns Dask arrays.
"""

from __future__ import annotations

import warnings

import numpy as np

from metaglasso import _dask
from metaglasso._data import check_finite
from metaglasso._data import is_anndata as _is_anndata
from metaglasso._validation import check_positive_int

__all__ = ["datasets_from_anndata", "is_anndata", "write_anndata"]

# Marks "the layer the model was fitted with" in write_anndata (None already means adata.X).
_FIT_LAYER = object()


def is_anndata(obj) -> bool:
    """Whether ``obj`` is an :class:`anndata.AnnData` (without importing anndata)."""
    return _is_anndata(obj)


def _check_adata(adata, name="adata"):
    if not is_anndata(adata):
        raise ValueError(f"{name} must be an anndata.AnnData; got {type(adata).__name__}")
    return adata


def _matrix(adata, layer):
    """adata.X or adata.layers[layer], with a ValueError naming ``layer`` when it is missing."""
    if layer is None:
        X = adata.X
        if X is None:
            raise ValueError("adata.X is None; pass layer= to use one of adata.layers "
                             f"{sorted(adata.layers.keys())!r}")
        return X
    if not isinstance(layer, str):
        raise ValueError(f"layer must be None (adata.X) or the name of a layer; got {layer!r}")
    if layer not in adata.layers:
        raise ValueError(f"layer={layer!r} is not in adata.layers; its layers are {sorted(adata.layers.keys())!r}")
    return adata.layers[layer]


def _group_codes(adata, groupby):
    """(codes, names): codes[i] = group of cell i (-1 for a missing label), names = the groups' labels
    in the documented order (category order, else sorted values)."""
    import pandas as pd

    if not isinstance(groupby, str):
        raise ValueError(f"groupby must be the name of a column of adata.obs; got {groupby!r}")
    if groupby not in adata.obs.columns:
        raise ValueError(
            f"groupby={groupby!r} is not a column of adata.obs; its columns are {list(map(str, adata.obs.columns))!r}"
        )
    column = adata.obs[groupby]
    if isinstance(column.dtype, pd.CategoricalDtype):
        categories = list(column.cat.categories)
        codes = np.asarray(column.cat.codes, dtype=np.int64)
    else:
        values = column.to_numpy()
        present = values[~pd.isna(values)]
        distinct = list(pd.unique(present))
        try:
            categories = sorted(distinct)
        except TypeError:  # mixed types
            categories = sorted(distinct, key=str)
        codes = np.asarray(pd.Categorical(values, categories=categories).codes, dtype=np.int64)
    names = [str(c) for c in categories]
    if len(set(names)) != len(names):
        raise ValueError(f"the values of adata.obs[{groupby!r}] must have distinct string forms; got {categories!r}")
    return codes, names


def _rows(X, idx):
    """X[idx] (idx sorted row positions) as a C-contiguous float64 array, densifying only these rows."""
    if idx.size and idx[-1] - idx[0] + 1 == idx.size:
        block = X[int(idx[0]):int(idx[-1]) + 1]  # contiguous rows: a view of a NumPy array
    else:
        block = X[idx]
    if hasattr(block, "toarray"):  # scipy.sparse (CSR, CSC, ...) or a backed sparse dataset's rows
        dense = block.astype(np.float64, copy=False).toarray()
    else:
        dense = np.asarray(block)
    if dense.ndim != 2:
        raise ValueError(f"the matrix must be 2-D (cells × genes); got ndim={dense.ndim}")
    if np.iscomplexobj(dense) or not (np.issubdtype(dense.dtype, np.number) or dense.dtype == bool):
        raise ValueError(f"the matrix must be real and numeric; got dtype {dense.dtype}")
    return np.ascontiguousarray(dense, dtype=np.float64)


def _groups(adata, groupby, min_cells, stacklevel=4):
    """Cell positions of every kept group, their names, and the dropped {name: size}."""
    codes, names = _group_codes(adata, groupby)
    if min_cells is not None:
        min_cells = check_positive_int(min_cells, "min_cells")
    counts = np.bincount(codes[codes >= 0], minlength=len(names))
    missing = int(np.count_nonzero(codes < 0))
    if missing:
        warnings.warn(f"{missing} of {codes.size} cells have no value in adata.obs[{groupby!r}] and belong to no "
                      f"dataset", UserWarning, stacklevel=stacklevel)
    kept, dropped = [], {}
    for k, (name, n) in enumerate(zip(names, counts)):
        if n == 0:
            continue  # an unused category is not a group
        if min_cells is not None and n < min_cells:
            dropped[name] = int(n)
        else:
            kept.append(k)
    if dropped:
        listing = ", ".join(f"{name!r} ({n} cells)" for name, n in dropped.items())
        warnings.warn(
            f"min_cells={min_cells} dropped {len(dropped)} of {len(kept) + len(dropped)} groups of "
            f"adata.obs[{groupby!r}]: {listing}",
            UserWarning,
            stacklevel=stacklevel,
        )
    if not kept:
        if dropped:
            raise ValueError(f"min_cells={min_cells} drops every group of adata.obs[{groupby!r}] "
                             f"(the largest has {max(dropped.values())} cells)")
        raise ValueError(f"groupby={groupby!r}: adata.obs[{groupby!r}] has no non-missing values")
    order = np.argsort(codes, kind="stable")
    starts = np.searchsorted(codes[order], np.arange(len(names) + 1))
    positions = [np.sort(order[starts[k]:starts[k + 1]]) for k in kept]
    return positions, [names[k] for k in kept], dropped


def datasets_from_anndata(adata, groupby, *, layer=None, min_cells=None):
    """Split an AnnData's cells into one dataset per group.

    Parameters
    ----------
    adata : anndata.AnnData
        Cells × genes.
    groupby : str
        A column of ``adata.obs``; each of its values (categories) is one dataset.
    layer : str or None, default=None
        The matrix: ``adata.X`` when None, else ``adata.layers[layer]``. Dense or scipy.sparse
        (CSR or CSC); a sparse matrix is densified one group at a time.
    min_cells : int or None, default=None
        Drop the groups with fewer cells, with a warning listing them and their sizes.

    Returns
    -------
    Xs : list of ndarray of shape (n_cells_k, n_genes)
        C-contiguous float64, one per kept group, in the group order of the module docstring
        (category order for a categorical column, else sorted values), each group's cells in
        the order of ``adata.obs``.
    group_names : list of str
        The kept groups, in the order of ``Xs``.
    dropped : dict of str to int
        The groups dropped by ``min_cells`` and their numbers of cells.
    """
    return _split(adata, groupby, layer, min_cells)


def _split(adata, groupby, layer, min_cells, *, with_positions=False, stacklevel=4):
    # Called directly by datasets_from_anndata and the input layer (metaglasso._data), so that the
    # warnings' stacklevel points at the user's call in both cases.
    _check_adata(adata)
    X = _matrix(adata, layer)
    if tuple(X.shape) != (adata.n_obs, adata.n_vars):
        raise ValueError(f"the matrix has shape {tuple(X.shape)}; expected (n_obs, n_vars)={adata.shape}")
    positions, names, dropped = _groups(adata, groupby, min_cells, stacklevel)
    Xs = []
    lazy = _dask.is_dask_array(X)
    for name, idx in zip(names, positions):
        if lazy:  # a lazy selection of rows; the statistics pass checks the values
            Xs.append(X[idx])
            continue
        block = _rows(X, idx)
        if not with_positions:  # the input layer checks the values itself, naming the cell and the gene
            check_finite(block, f"group {name!r} of adata.obs[{groupby!r}]", adata.var_names, adata.obs_names[idx])
        Xs.append(block)
    return (Xs, names, dropped, positions) if with_positions else (Xs, names, dropped)


def _plain_params(model):
    """The estimator's parameters that are plain numbers, strings or booleans (h5ad-writable)."""
    out = {}
    for key, value in model.get_params().items():
        if isinstance(value, (bool, np.bool_)):
            out[key] = bool(value)
        elif isinstance(value, (str, int, float, np.integer, np.floating)):
            out[key] = value.item() if isinstance(value, np.generic) else value
    return out


def write_anndata(model, adata, *, groupby=None, layer=_FIT_LAYER, key="mglasso"):
    """Store a fitted model in an AnnData, in place.

    Writes

    - ``adata.varm[key]``: the loadings D, shape (n_vars, M) (= ``model.components_.T``);
    - ``adata.obsm[key]``: each cell's factor scores (x − mean_k) D, shape (n_obs, M), centred
      with the mean of its own group k (``model.transform(X_group, dataset=k)``). Cells of
      groups that are not datasets of the model (dropped by ``min_cells``, or absent from the
      fit) and cells without a group get rows of NaN;
    - ``adata.uns[key]``: a dict of plain arrays, strings and numbers (so ``adata.write_h5ad``
      works): ``dataset_names``, ``factor_names``, ``precisions``, ``partial_correlations``,
      ``covariances`` (latent, Σ_k), ``noise_variances`` (ε_k), ``n_cells`` (N_k), ``groupby``,
      ``layer`` (``"X"`` for ``adata.X``), ``dropped_groups`` and ``dropped_sizes``,
      ``objective``, ``converged``, ``n_iter`` and ``params`` (the estimator's scalar parameters,
      among them ``alpha`` and ``n_components``). Arrays over groups follow ``dataset_names``.

    Parameters
    ----------
    model : fitted MetaGraphicalLasso
        With ``dataset_names_`` naming its datasets as groups of ``groupby`` (set by fitting on an
        AnnData); datasets are matched to groups by name.
    adata : anndata.AnnData
        The same genes as the fit, in the same order (checked against ``feature_names_in_``).
    groupby : str or None, default=None
        The column of ``adata.obs`` defining the groups; None: the one the model was fitted with.
    layer : str or None, optional
        The matrix the scores are computed from (None: ``adata.X``); by default the one the model
        was fitted with.
    key : str, default="mglasso"
    """
    _check_adata(adata)
    if not hasattr(model, "components_") or not hasattr(model, "precisions_"):
        raise ValueError(f"model must be a fitted MetaGraphicalLasso; got {type(model).__name__}")
    if not isinstance(key, str) or not key:
        raise ValueError(f"key must be a non-empty string; got {key!r}")
    names = getattr(model, "dataset_names_", None)
    if names is None:
        raise ValueError("model has no dataset_names_ (fit it on an AnnData with groupby=, or set "
                         "dataset_names_ to the groups its datasets are)")
    names = [str(n) for n in names]
    if groupby is None:
        groupby = getattr(model, "groupby_", None)
        if groupby is None:
            raise ValueError("groupby=None but the model was not fitted on an AnnData; name the obs column")
    if layer is _FIT_LAYER:
        layer = getattr(model, "layer_", None)
    M = model.components_.shape[0]
    scores = model._transform_groups(adata, groupby, layer)

    dropped = getattr(model, "dropped_groups_", None) or {}
    adata.varm[key] = np.array(model.components_.T, dtype=np.float64, order="C")
    adata.obsm[key] = scores
    adata.uns[key] = {
        "dataset_names": np.asarray(names, dtype=object),
        "factor_names": np.asarray([f"factor_{m}" for m in range(M)], dtype=object),
        "precisions": np.asarray(model.precisions_, dtype=np.float64),
        "partial_correlations": np.asarray(model.partial_correlations_, dtype=np.float64),
        "covariances": np.asarray(model.covariances_, dtype=np.float64),
        "noise_variances": np.asarray(model.noise_variances_, dtype=np.float64),
        "n_cells": np.asarray(model.n_samples_, dtype=np.int64),
        "groupby": str(groupby),
        "layer": "X" if layer is None else str(layer),
        "dropped_groups": np.asarray([str(n) for n in dropped], dtype=object),
        "dropped_sizes": np.asarray(list(dropped.values()), dtype=np.int64),
        "objective": float(model.objective_),
        "converged": bool(model.converged_),
        "n_iter": int(model.n_iter_),
        "params": _plain_params(model),
    }
