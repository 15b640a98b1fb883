"""Tidy tables of a fitted :class:`~metaglasso.MetaGraphicalLasso`.

Every function takes a fitted model and returns a table: a pandas DataFrame when pandas is
installed (``pip install "metaglasso[interpret]"``), otherwise a dict mapping column names to 1-D
NumPy arrays (a wide table's index comes first in that dict).

Names follow the input. Variables are the model's ``feature_names_in_`` (the columns of the pandas
DataFrames it was fitted on, or the ``var_names`` of an AnnData), else ``x0, x1, ...``. Factors are
``factor_0, factor_1, ...`` in wide tables and integers 0..M−1 in long tables. Datasets are the
``dataset_names`` argument, else the model's ``dataset_names_`` (the groups of an AnnData it was
fitted on, or set by :func:`metaglasso.io.load_model` when the file stores them), else 0..K−1.
"""

from __future__ import annotations

import numbers

import numpy as np

from metaglasso._tables import make_table
from metaglasso._data import model_datasets

__all__ = [
    "align_factors",
    "dataset_names",
    "edge_differences",
    "edge_differences_table",
    "edges_table",
    "factor_names",
    "loadings_table",
    "scores_table",
    "variable_names",
    "variance_explained_table",
    "variances_table",
]


def _check_model(model, name="model"):
    if not hasattr(model, "components_") or not hasattr(model, "precisions_"):
        raise ValueError(
            f"{name} must be a fitted MetaGraphicalLasso (with components_ and precisions_); "
            f"got {type(model).__name__}"
        )
    return model


def _in_memory(data):
    if data.lazy:
        raise ValueError("Xs holds Dask arrays; the tables need the data in memory (call .compute() on each)")
    return data


def variable_names(model):
    """The model's variable names: ``feature_names_in_`` when fitted on DataFrames, else x0, x1, ..."""
    _check_model(model)
    names = getattr(model, "feature_names_in_", None)
    if names is not None:
        return [str(n) for n in names]
    return [f"x{i}" for i in range(model.components_.shape[1])]


def factor_names(model_or_m):
    """``factor_0, ..., factor_{M-1}`` for a fitted model or a number of factors M."""
    m = model_or_m if isinstance(model_or_m, numbers.Integral) else _check_model(model_or_m).components_.shape[0]
    return [f"factor_{i}" for i in range(int(m))]


def dataset_names(model, names=None):
    """Dataset names: ``names`` if given (one per dataset), else the model's ``dataset_names_``,
    else 0..K−1."""
    return _datasets(model, names)


def _datasets(model, names):
    _check_model(model)
    K = model.precisions_.shape[0]
    if names is None:
        names = getattr(model, "dataset_names_", None)
    if names is None:
        return list(range(K))
    names = list(names)
    if len(names) != K:
        raise ValueError(f"dataset_names must hold one name per dataset ({K}); got {len(names)}")
    if len(set(map(str, names))) != K:
        raise ValueError(f"dataset_names must be distinct; got {names!r}")
    return names


def loadings_table(model):
    """The loadings D (variable × factor).

    Returns
    -------
    DataFrame of shape (n_features, n_components)
        Index ``variable`` (the variable names), columns ``factor_0, ...``; entry (v, m) is D[v, m]
        = ``components_[m, v]``.
    """
    _check_model(model)
    cols = {name: model.components_[m] for m, name in enumerate(factor_names(model))}
    return make_table(cols, index=variable_names(model), index_name="variable")


def scores_table(model, Xs, *, dataset_names=None, groupby=None, layer=None):
    """Latent scores (X_k − mean_k) D of every sample of the K training datasets.

    Parameters
    ----------
    model : fitted MetaGraphicalLasso
        The model.
    Xs : sequence of K array-likes of shape (n_samples_k, n_features), dict, array-like or anndata.AnnData
        The datasets, in any form :meth:`~metaglasso.MetaGraphicalLasso.fit` takes: in the order of
        the fit, or matched to the model's ``dataset_names_`` by name (a dict's keys, an AnnData's
        groups). Sample labels are the DataFrames' index or the AnnData's ``obs_names``, else the row
        positions 0..N_k−1.
    dataset_names : sequence of K names, optional
        Names of the datasets in the table.
    groupby, layer : str, optional
        AnnData only; by default those of the fit.

    Returns
    -------
    DataFrame with columns ``dataset``, ``sample`` and ``factor_0, ...``
        One row per sample, datasets in order. Dataset k is centred with the model's ``means_[k]``
        (its own mean when the model was fitted on covariances).
    """
    _check_model(model)
    names = _datasets(model, dataset_names)
    data = _in_memory(model_datasets(model, Xs, groupby=groupby, layer=layer))
    ds, samples, blocks = [], [], []
    means = getattr(model, "means_", None)
    for k, (X, index) in enumerate(zip(data.arrays, data.sample_names)):
        centre = X.mean(axis=0) if means is None else means[k]
        blocks.append((X - centre) @ model.components_.T)
        samples.extend(index if index is not None else range(X.shape[0]))
        ds.extend([names[k]] * X.shape[0])
    scores = np.vstack(blocks)
    cols = {"dataset": ds, "sample": samples}
    cols.update({name: scores[:, m] for m, name in enumerate(factor_names(model))})
    return make_table(cols)


def variances_table(model, *, dataset_names=None):
    """Per dataset: the factor variances diag(Σ_k) and the noise variance ε_k.

    Returns
    -------
    DataFrame of shape (n_datasets, n_components + 1)
        Index ``dataset``, columns ``factor_0, ...`` (diagonal of ``covariances_[k]``) and
        ``noise`` (``noise_variances_[k]``).
    """
    _check_model(model)
    names = _datasets(model, dataset_names)
    diag = np.diagonal(model.covariances_, axis1=1, axis2=2)
    cols = {name: diag[:, m] for m, name in enumerate(factor_names(model))}
    cols["noise"] = np.asarray(model.noise_variances_, dtype=np.float64)
    return make_table(cols, index=names, index_name="dataset")


def variance_explained_table(model, Xs=None, *, dataset_names=None, groupby=None, layer=None):
    """Share of each dataset's total variance carried by each factor.

    Without ``Xs`` the shares come from the model: Σ_k[m, m] / tr Φ_k with
    tr Φ_k = tr Σ_k + (V − M) ε_k; the column ``noise`` is (V − M) ε_k / tr Φ_k, so each row
    sums to 1. With the paper's penalty (the default: the diagonal of Λ_k penalised),
    Σ_k[m, m] = (Dᵀ S_k D)[m, m] + ρ_k at the fit, so a factor's model variance exceeds the
    variance of the data along it by ρ_k; with ``penalize_diagonal=False``, tr Φ_k = tr S_k and
    Σ_k[m, m] = (Dᵀ S_k D)[m, m] on the training data, and these are the empirical shares.

    With ``Xs`` (K datasets) the shares are empirical: the variance of the factor's scores over
    the total variance Σ_v var(x_v) of dataset k (centred at ``means_[k]``, divided by N_k), and
    ``noise`` is the rest.

    Returns
    -------
    DataFrame of shape (n_datasets, n_components + 1)
        Index ``dataset``, columns ``factor_0, ...`` and ``noise``.
    """
    _check_model(model)
    names = _datasets(model, dataset_names)
    M, V = model.components_.shape
    K = len(names)
    if Xs is None:
        diag = np.diagonal(model.covariances_, axis1=1, axis2=2)
        noise = (V - M) * np.asarray(model.noise_variances_, dtype=np.float64)
        total = diag.sum(axis=1) + noise
    else:
        arrays = _in_memory(model_datasets(model, Xs, groupby=groupby, layer=layer)).arrays
        diag, total = np.empty((K, M)), np.empty(K)
        means = getattr(model, "means_", None)
        for k, X in enumerate(arrays):
            Xc = X - (X.mean(axis=0) if means is None else means[k])
            P = Xc @ model.components_.T
            diag[k] = np.einsum("ij,ij->j", P, P) / X.shape[0]
            total[k] = np.einsum("ij,ij->", Xc, Xc) / X.shape[0]
        noise = total - diag.sum(axis=1)
    share = diag / total[:, None]
    cols = {name: share[:, m] for m, name in enumerate(factor_names(model))}
    cols["noise"] = noise / total
    return make_table(cols, index=names, index_name="dataset")


def edges_table(model, *, dataset_names=None, tol=0.0):
    """The edge list of each dataset's partial-correlation network.

    An edge (i, j), i < j, is a nonzero off-diagonal entry of Λ_k (``precisions_``); with
    ``tol`` > 0 only edges with ``|partial correlation| > tol`` are kept.

    Returns
    -------
    DataFrame with columns ``dataset``, ``factor_i``, ``factor_j``, ``partial_correlation``
        One row per edge, by dataset then (i, j).
    """
    _check_model(model)
    names = _datasets(model, dataset_names)
    iu, ju, _, corr, present = _edge_arrays(model, tol)
    ds, fi, fj, pc = [], [], [], []
    for k, name in enumerate(names):
        keep = present[k]
        ds += [name] * int(keep.sum())
        fi.append(iu[keep])
        fj.append(ju[keep])
        pc.append(corr[k][keep])
    return make_table({
        "dataset": ds,
        "factor_i": np.concatenate(fi),
        "factor_j": np.concatenate(fj),
        "partial_correlation": np.concatenate(pc),
    })


def _edge_arrays(model, tol):
    """The upper-triangle entries (i < j) of every dataset's network: (iu, ju, Λ values (K, E),
    partial correlations (K, E), present (K, E)), an edge present where Λ_k,ij != 0 and
    |partial correlation| > tol."""
    tol = float(tol)
    if not np.isfinite(tol) or tol < 0:
        raise ValueError(f"tol must be a finite number >= 0; got {tol!r}")
    prec = np.asarray(model.precisions_)
    pcor = getattr(model, "partial_correlations_", None)
    if pcor is None:
        from metaglasso._estimator import partial_correlations

        pcor = partial_correlations(prec)
    pcor = np.asarray(pcor)
    iu, ju = np.triu_indices(prec.shape[1], k=1)
    values, corr = prec[:, iu, ju], pcor[:, iu, ju]
    present = (values != 0) & (np.abs(corr) > tol)
    return iu.astype(np.int64), ju.astype(np.int64), values, corr, present


def _distinct_present(values, present):
    """Per column of values (K, E): the number of distinct values among the rows where present."""
    filled = np.where(present, values, np.nan)  # NaN sorts last and never equals anything
    s = np.sort(filled, axis=0)
    new = np.ones_like(s, dtype=bool)
    new[1:] = s[1:] != s[:-1]
    return np.count_nonzero(new & ~np.isnan(s), axis=0).astype(np.int64)


_DIFFERENCE_COLUMNS = ("factor_i", "factor_j", "n_datasets", "status", "n_values", "equal", "max_difference")


def edge_differences_table(model, *, dataset_names=None, tol=0.0):
    """Which edges the K networks share and which differ, with each dataset's partial correlation.

    An edge (i, j), i < j, is present in dataset k where Λ_k,ij != 0 (``precisions_``) and
    ``|partial correlation|`` > ``tol``. With ``penalty="fused"`` entries of the networks become
    exactly equal across datasets; ``n_values`` and ``equal`` show which.

    Parameters
    ----------
    model : fitted MetaGraphicalLasso
    dataset_names : sequence of K names, optional
        Names of the per-dataset columns (default: the model's, see :func:`dataset_names`).
    tol : float, default=0.0
        Smallest ``|partial correlation|`` of an edge.

    Returns
    -------
    DataFrame with columns ``factor_i``, ``factor_j``, ``n_datasets``, ``status``, ``n_values``, ``equal``, ``max_difference`` and one per dataset
        One row per pair (i, j) that is an edge in at least one dataset:

        * ``n_datasets`` — the number of datasets with the edge;
        * ``status`` — ``"shared"`` (an edge in every dataset) or ``"differs"`` (in some only);
        * ``n_values`` — the number of distinct values of Λ_ij among the datasets with the edge
          (exact comparison; 1: fused to one value);
        * ``equal`` — present in every dataset with one value of Λ_ij (fully fused);
        * ``max_difference`` — max − min over the K datasets of the partial correlation, 0 for a
          dataset without the edge (the partial correlations of a fused edge can still differ
          through the diagonals of Λ_k);
        * one column per dataset, named by the dataset's name: its partial correlation, 0 where the
          edge is absent.

        Rows ``"differs"`` first, then by ``max_difference`` descending, then by (i, j).
    """
    _check_model(model)
    names = _datasets(model, dataset_names)
    clash = [n for n in names if str(n) in _DIFFERENCE_COLUMNS]
    if clash:
        raise ValueError(f"dataset names {clash!r} are column names of the table; pass other dataset_names")
    iu, ju, values, corr, present = _edge_arrays(model, tol)
    K = len(names)
    keep = present.any(axis=0)
    iu, ju, values, corr, present = iu[keep], ju[keep], values[:, keep], corr[:, keep], present[:, keep]
    n_datasets = present.sum(axis=0).astype(np.int64)
    n_values = _distinct_present(values, present)
    shown = np.where(present, corr, 0.0)
    max_difference = shown.max(axis=0) - shown.min(axis=0)
    shared = n_datasets == K
    order = np.lexsort((ju, iu, -max_difference, shared))
    cols = {
        "factor_i": iu[order],
        "factor_j": ju[order],
        "n_datasets": n_datasets[order],
        "status": np.asarray(np.where(shared, "shared", "differs")[order], dtype=object),
        "n_values": n_values[order],
        "equal": (shared & (n_values == 1))[order],
        "max_difference": max_difference[order],
    }
    cols.update({name: shown[k, order] for k, name in enumerate(names)})
    return make_table(cols)


def _dataset_index(names, which, label):
    """The position of dataset ``which``: a name of ``names``, else a position 0..K−1."""
    for k, name in enumerate(names):
        if isinstance(which, str) == isinstance(name, str) and not isinstance(which, bool) and which == name:
            return k
    if isinstance(which, numbers.Integral) and not isinstance(which, bool) and 0 <= which < len(names):
        return int(which)
    raise ValueError(f"{label} must be a dataset name ({names!r}) or a position in [0, {len(names)}); got {which!r}")


def edge_differences(model, k, l, *, dataset_names=None, tol=0.0):
    """The edges whose presence or value differs between two datasets.

    Parameters
    ----------
    model : fitted MetaGraphicalLasso
    k, l : dataset name or int
        The two datasets: a value equal to one of the dataset names is that dataset, otherwise a
        position 0..K−1.
    dataset_names : sequence of K names, optional
    tol : float, default=0.0
        Smallest ``|partial correlation|`` of an edge, as in :func:`edge_differences_table`.

    Returns
    -------
    DataFrame with columns ``factor_i``, ``factor_j``, ``change``, the two datasets' names and ``difference``
        One row per pair (i, j) that is an edge of k or of l and not the same in both:
        ``change`` is ``"removed"`` (an edge of k only), ``"added"`` (of l only) or
        ``"changed"`` (of both, with different values of Λ_ij); the two dataset columns hold the
        partial correlations (0 where absent) and ``difference`` is l's minus k's. An edge of
        both with the same Λ_ij (fused) is not listed, even when its partial correlations differ
        through the diagonals of Λ_k and Λ_l. Rows by ``|difference|`` descending, then (i, j).
    """
    _check_model(model)
    names = _datasets(model, dataset_names)
    a, b = _dataset_index(names, k, "k"), _dataset_index(names, l, "l")
    if a == b:
        raise ValueError(f"k and l must be two different datasets; both are {names[a]!r}")
    clash = [names[c] for c in (a, b) if str(names[c]) in ("factor_i", "factor_j", "change", "difference")]
    if clash:
        raise ValueError(f"dataset names {clash!r} are column names of the table; pass other dataset_names")
    iu, ju, values, corr, present = _edge_arrays(model, tol)
    pa, pb = present[a], present[b]
    keep = (pa != pb) | (pa & pb & (values[a] != values[b]))
    ra, rb = np.where(pa, corr[a], 0.0)[keep], np.where(pb, corr[b], 0.0)[keep]
    change = np.where(~pb[keep], "removed", np.where(~pa[keep], "added", "changed"))
    difference = rb - ra
    order = np.lexsort((ju[keep], iu[keep], -np.abs(difference)))
    return make_table({
        "factor_i": iu[keep][order],
        "factor_j": ju[keep][order],
        "change": np.asarray(change[order], dtype=object),
        names[a]: ra[order],
        names[b]: rb[order],
        "difference": difference[order],
    })


def align_factors(components, reference):
    """Match the factors of ``components`` to those of ``reference`` (e.g. a ground truth).

    Factors are matched one to one by the largest total ``|inner product|`` (the Hungarian
    algorithm of scipy when installed, else a greedy match), and each match gets the sign that
    makes the inner product positive.

    Parameters
    ----------
    components : array of shape (M, V)
        Rows are factors (``model.components_``).
    reference : array of shape (M, V)

    Returns
    -------
    order : ndarray of shape (M,)
        ``reference[order[m]]`` is the factor matched to ``components[m]``.
    signs : ndarray of shape (M,)
        ±1 with ``signs[m] * reference[order[m]] · components[m] >= 0``.
    """
    A = np.asarray(components, dtype=np.float64)
    B = np.asarray(reference, dtype=np.float64)
    if A.ndim != 2 or A.shape != B.shape:
        raise ValueError(
            f"components and reference must be 2-D arrays of the same shape; got {A.shape} and {B.shape}"
        )
    C = A @ B.T
    cost = -np.abs(C)
    M = C.shape[0]
    try:
        from scipy.optimize import linear_sum_assignment
    except ImportError:
        order = np.full(M, -1)
        taken_rows, taken_cols = set(), set()
        for flat in np.argsort(cost, axis=None):
            i, j = divmod(int(flat), M)
            if i not in taken_rows and j not in taken_cols:
                order[i] = j
                taken_rows.add(i)
                taken_cols.add(j)
    else:
        rows, cols = linear_sum_assignment(cost)
        order = np.empty(M, dtype=np.int64)
        order[rows] = cols
    signs = np.where(C[np.arange(M), order] < 0, -1.0, 1.0)
    return order.astype(np.int64), signs
