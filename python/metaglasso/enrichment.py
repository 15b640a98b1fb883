"""Characteristic variables of each factor and their enrichment in labels and gene sets.

* :func:`characteristic_variables` — the variables whose loading deviates from the factor's mean
  loading by more than ``c`` standard deviations (the paper uses c = 2), split by sign.
* :func:`label_enrichment` — over-representation of categorical labels (e.g. sector, then
  industry within significant sectors) in those sets by the log-likelihood-ratio (G) test of a
  2 × 2 table, as the paper's Table 6.
* :func:`gene_set_enrichment` — the hypergeometric test of the top-n variables of each factor
  against gene sets (a GMT file or a dict), as the paper's Table 7.
* :func:`gene_set_rank_enrichment` — a test without a cut-off: the loadings of a set's genes
  against those of all other genes, by the Mann–Whitney U test (:func:`mann_whitney_u`) or the
  two-sample Kolmogorov–Smirnov test.

p-values are adjusted by Benjamini–Hochberg (:func:`benjamini_hochberg`). The tests are computed
with NumPy and the standard library only (scipy is needed only for ``method="ks"``); the test
suite checks them against :mod:`scipy.stats`. Tables are pandas DataFrames when pandas is installed, else dicts of
1-D arrays (see :mod:`metaglasso.interpret`).
"""

from __future__ import annotations

import math
import numbers
import os

import numpy as np

from metaglasso._tables import make_table, pandas_or_none, table_columns

__all__ = [
    "benjamini_hochberg",
    "characteristic_variables",
    "enrichment_summary",
    "gene_set_enrichment",
    "gene_set_rank_enrichment",
    "hypergeometric_sf",
    "label_enrichment",
    "llr_test",
    "mann_whitney_u",
    "read_gmt",
]

_SIGNS = ("pos", "neg")
_ALTERNATIVES = ("greater", "two-sided")
_ADJUST = ("set", "level")
_MWU_ALTERNATIVES = ("two-sided", "greater", "less")


# --------------------------------------------------------------------------------------------
# Statistics
# --------------------------------------------------------------------------------------------

def benjamini_hochberg(pvalues):
    """Benjamini–Hochberg adjusted p-values (the same as ``scipy.stats.false_discovery_control``).

    NaN entries are left out of the family and stay NaN.
    """
    p = np.asarray(pvalues, dtype=np.float64)
    out = np.full(p.shape, np.nan)
    flat = p.ravel()
    ok = ~np.isnan(flat)
    vals = flat[ok]
    if np.any((vals < 0) | (vals > 1)):
        raise ValueError(f"pvalues must lie in [0, 1]; got min {vals.min()!r}, max {vals.max()!r}")
    m = vals.size
    if m:
        order = np.argsort(vals)
        ranked = vals[order] * m / np.arange(1, m + 1)
        ranked = np.minimum.accumulate(ranked[::-1])[::-1]
        adj = np.empty(m)
        adj[order] = np.minimum(ranked, 1.0)
        res = out.ravel()
        res[ok] = adj
        out = res.reshape(p.shape)
    return out


def _xlogy_ratio(o, e):
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(o > 0, o * np.log(o / e), 0.0)


def llr_test(n_overlap, n_set, n_label, n_total, *, alternative="greater"):
    """Log-likelihood-ratio (G) test of a 2 × 2 table: in the set or not × with the label or not.

    The table is [[a, n_set − a], [n_label − a, n_total − n_set − n_label + a]] with a =
    ``n_overlap``; G = 2 Σ O ln(O / E) with E the expected counts under independence, compared with
    χ² on one degree of freedom (no continuity correction), as
    ``scipy.stats.chi2_contingency(table, correction=False, lambda_="log-likelihood")``.

    Parameters
    ----------
    n_overlap, n_set, n_label, n_total : int or array of int
        Broadcast together.
    alternative : {"greater", "two-sided"}, default="greater"
        ``"greater"`` (over-representation): half the χ² tail when a exceeds its expected
        count n_set · n_label / n_total, one minus that half otherwise (the one-sided test on the
        signed root of G). ``"two-sided"``: the χ² tail itself.

    Returns
    -------
    statistic, pvalue : float or ndarray
        G and its p-value; a table with an empty margin gives G = 0 and p = 1.
    """
    if alternative not in _ALTERNATIVES:
        raise ValueError(f"alternative must be one of {_ALTERNATIVES}; got {alternative!r}")
    a, s, lab, n = np.broadcast_arrays(*(np.asarray(v, dtype=np.float64) for v in
                                         (n_overlap, n_set, n_label, n_total)))
    if np.any((a < 0) | (a > s) | (a > lab) | (s > n) | (lab > n) | (n - s - lab + a < 0)):
        raise ValueError("counts must satisfy 0 <= n_overlap <= min(n_set, n_label) and "
                         "n_set + n_label - n_overlap <= n_total")
    obs = [a, s - a, lab - a, n - s - lab + a]
    with np.errstate(divide="ignore", invalid="ignore"):
        rows, cols = (s, n - s), (lab, n - lab)
        exp = [rows[0] * cols[0] / n, rows[0] * cols[1] / n, rows[1] * cols[0] / n, rows[1] * cols[1] / n]
        G = 2.0 * sum(_xlogy_ratio(o, e) for o, e in zip(obs, exp))
    degenerate = (s == 0) | (s == n) | (lab == 0) | (lab == n)
    G = np.where(degenerate, 0.0, np.maximum(G, 0.0))
    two_sided = np.array([math.erfc(math.sqrt(g / 2.0)) for g in G.ravel()]).reshape(G.shape)
    if alternative == "two-sided":
        p = two_sided
    else:
        p = np.where(a > exp[0], two_sided / 2.0, 1.0 - two_sided / 2.0)
    p = np.where(degenerate, 1.0, p)
    if G.ndim == 0:
        return float(G), float(p)
    return G, p


class _LogFactorial:
    """log(i!) for i = 0..n by math.lgamma (no accumulated rounding)."""

    def __init__(self):
        self.table = np.zeros(1)

    def __call__(self, x):
        x = np.asarray(x, dtype=np.int64)
        top = int(x.max()) if x.size else 0
        if top >= self.table.size:
            self.table = np.array([math.lgamma(i + 1.0) for i in range(top + 1)])
        return self.table[x]


def hypergeometric_sf(k, N, K, n, *, _logfact=None):
    """P(X >= k) for X ~ Hypergeometric(population N, K successes, n draws).

    The same as ``scipy.stats.hypergeom.sf(k - 1, N, K, n)``; summed exactly over the tail in
    log space. Arguments broadcast together.
    """
    k, N, K, n = np.broadcast_arrays(*(np.asarray(v, dtype=np.int64) for v in (k, N, K, n)))
    if np.any((N < 0) | (K < 0) | (n < 0) | (K > N) | (n > N)):
        raise ValueError("need 0 <= K <= N and 0 <= n <= N")
    lf = _logfact or _LogFactorial()
    lf(N.max() if N.size else 0)
    out = np.empty(k.shape)
    for idx in np.ndindex(k.shape):
        kk, NN, KK, nn = int(k[idx]), int(N[idx]), int(K[idx]), int(n[idx])
        lo, hi = max(kk, 0, nn + KK - NN), min(nn, KK)
        if kk <= max(0, nn + KK - NN):
            out[idx] = 1.0
            continue
        if lo > hi:
            out[idx] = 0.0
            continue
        x = np.arange(lo, hi + 1)
        logp = (lf(KK) - lf(x) - lf(KK - x) + lf(NN - KK) - lf(nn - x) - lf(NN - KK - nn + x)
                - (lf(NN) - lf(nn) - lf(NN - nn)))
        top = logp.max()
        out[idx] = min(1.0, math.exp(top) * float(np.exp(logp - top).sum()))
    return float(out) if out.ndim == 0 else out


def _average_ranks(x):
    """Ranks 1..n of the columns of ``x`` (n, M), ties given their average rank, and the tie term
    Σ (t³ − t) over the groups of tied values of each column (M,)."""
    x = np.asarray(x, dtype=np.float64)
    n, M = x.shape
    order = np.argsort(x, axis=0, kind="stable")
    ranks = np.empty((n, M))
    tie_term = np.zeros(M)
    for m in range(M):
        xs = x[order[:, m], m]
        starts = np.flatnonzero(np.r_[True, xs[1:] != xs[:-1]])
        counts = np.diff(np.r_[starts, n])
        avg = starts + (counts + 1) / 2.0  # average of the 1-based ranks starts+1 .. starts+counts
        ranks[order[:, m], m] = np.repeat(avg, counts)
        tie_term[m] = float(np.sum(counts.astype(np.float64) ** 3 - counts))
    return ranks, tie_term


def _normal_sf(z):
    z = np.asarray(z, dtype=np.float64)
    return np.vectorize(lambda v: 0.5 * math.erfc(v / math.sqrt(2.0)), otypes=[np.float64])(z)


def _mwu_from_ranks(rank_sum, n1, n, tie_term, alternative):
    """U of the first sample and its asymptotic p-value (normal approximation with tie and
    continuity corrections), from the rank sum of the first sample among n values."""
    n1 = np.asarray(n1, dtype=np.float64)
    n2 = n - n1
    U1 = rank_sum - n1 * (n1 + 1) / 2.0
    mu = n1 * n2 / 2.0
    with np.errstate(divide="ignore", invalid="ignore"):
        s = np.sqrt(n1 * n2 / 12.0 * ((n + 1) - tie_term / (n * (n - 1.0))))
        if alternative == "greater":
            U = U1
        elif alternative == "less":
            U = n1 * n2 - U1
        else:
            U = np.maximum(U1, n1 * n2 - U1)
        z = np.where(s > 0, (U - mu - 0.5) / np.where(s > 0, s, 1.0), -np.inf)
    p = _normal_sf(z)
    if alternative == "two-sided":
        p = 2.0 * p
    return U1, np.clip(p, 0.0, 1.0)


def mann_whitney_u(x, y, *, alternative="two-sided"):
    """The Mann–Whitney U test of two samples by its normal approximation.

    U is the statistic of ``x``: the number of pairs (x_i, y_j) with x_i > y_j, ties counting
    one half; U / (n_x n_y) is the area under the ROC curve (AUC). The p-value is the normal
    approximation with the tie correction and the continuity correction, as
    ``scipy.stats.mannwhitneyu(x, y, alternative=alternative, method="asymptotic")`` (scipy's
    default method too unless both samples are small, at most 8 values, and without ties).

    Parameters
    ----------
    x, y : 1-D arrays of float
    alternative : {"two-sided", "greater", "less"}, default="two-sided"
        ``"greater"``: the values of ``x`` tend to be larger than those of ``y``.

    Returns
    -------
    statistic, pvalue : float
    """
    _check_choice(alternative, "alternative", _MWU_ALTERNATIVES)
    x = np.asarray(x, dtype=np.float64).ravel()
    y = np.asarray(y, dtype=np.float64).ravel()
    if x.size == 0 or y.size == 0:
        raise ValueError("x and y must each hold at least one value")
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))):
        raise ValueError("x and y must be finite")
    ranks, tie_term = _average_ranks(np.concatenate([x, y])[:, None])
    U1, p = _mwu_from_ranks(ranks[:x.size, 0].sum(), x.size, x.size + y.size, tie_term[0], alternative)
    return float(U1), float(p)


# --------------------------------------------------------------------------------------------
# Inputs
# --------------------------------------------------------------------------------------------

def _loadings(model_or_loadings, variable_names=None, *, names_for=None):
    """(L of shape (V, M), variable names or None) from a fitted model, a loadings table or an array.

    ``names_for``: the name of a caller that needs the variable names; ValueError when there are none.
    """
    obj = model_or_loadings
    if hasattr(obj, "components_"):
        L = np.asarray(obj.components_, dtype=np.float64).T
        names = getattr(obj, "feature_names_in_", None)
    elif hasattr(obj, "columns") and hasattr(obj, "index"):  # a loadings DataFrame (variable × factor)
        L = np.asarray(obj, dtype=np.float64)
        names = np.asarray(obj.index, dtype=object)
        pd = pandas_or_none()
        if pd is not None and isinstance(obj.index, pd.RangeIndex):
            names = None
    else:
        L = np.asarray(obj, dtype=np.float64)
        names = None
    if L.ndim != 2 or L.shape[0] < 2 or L.shape[1] < 1:
        raise ValueError(
            f"model_or_loadings must be a fitted model or loadings of shape (n_variables, n_factors); got shape {L.shape}"
        )
    if not np.all(np.isfinite(L)):
        raise ValueError("the loadings contain NaN or infinite values")
    if variable_names is not None:
        names = np.asarray([str(v) for v in variable_names], dtype=object)
        if names.size != L.shape[0]:
            raise ValueError(f"variable_names must hold {L.shape[0]} names; got {names.size}")
    elif names is not None:
        names = np.asarray([str(v) for v in names], dtype=object)
    if names is None and names_for is not None:
        raise ValueError(
            f"{names_for} needs variable names: fit on pandas DataFrames, pass a loadings table "
            "indexed by variable or give variable_names"
        )
    return L, names


def _check_c(c):
    if isinstance(c, bool) or not isinstance(c, numbers.Real) or not np.isfinite(c) or c < 0:
        raise ValueError(f"c must be a finite number >= 0; got {c!r}")
    return float(c)


def _characteristic_masks(L, c):
    """{(m, sign): boolean mask over variables} and the z-scores (V, M)."""
    mu = L.mean(axis=0)
    sd = L.std(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(sd > 0, (L - mu) / np.where(sd > 0, sd, 1.0), 0.0)
    masks = {}
    for m in range(L.shape[1]):
        masks[(m, "pos")] = z[:, m] > c
        masks[(m, "neg")] = z[:, m] < -c
    return masks, z


def characteristic_variables(model_or_loadings, *, c=2.0, variable_names=None):
    """The characteristic variables of each factor.

    Variable v is characteristic of factor m when its loading D[v, m] deviates from the mean
    loading of factor m by more than ``c`` standard deviations (population standard deviation over
    all variables): ``pos`` above the mean, ``neg`` below.

    Parameters
    ----------
    model_or_loadings : fitted MetaGraphicalLasso, loadings DataFrame (variable × factor) or
        array of shape (n_variables, n_factors)
    c : float, default=2.0
    variable_names : sequence of str, optional
        Names of the variables (default: the model's ``feature_names_in_``, the DataFrame's
        index, else x0, x1, ...).

    Returns
    -------
    DataFrame with columns ``factor``, ``sign``, ``variable``, ``index``, ``loading``, ``z``
        One row per (factor, sign, variable), by factor, ``pos`` before ``neg``, then by ``|z|``
        descending; ``index`` is the variable's position and z = (loading − mean) / sd.
    """
    c = _check_c(c)
    L, names = _loadings(model_or_loadings, variable_names)
    if names is None:
        names = np.asarray([f"x{i}" for i in range(L.shape[0])], dtype=object)
    masks, z = _characteristic_masks(L, c)
    cols = {"factor": [], "sign": [], "variable": [], "index": [], "loading": [], "z": []}
    for m in range(L.shape[1]):
        for sign in _SIGNS:
            idx = np.flatnonzero(masks[(m, sign)])
            idx = idx[np.argsort(-np.abs(z[idx, m]), kind="stable")]
            cols["factor"] += [m] * idx.size
            cols["sign"] += [sign] * idx.size
            cols["variable"] += list(names[idx])
            cols["index"] += list(idx)
            cols["loading"] += list(L[idx, m])
            cols["z"] += list(z[idx, m])
    cols["factor"] = np.asarray(cols["factor"], dtype=np.int64)
    cols["index"] = np.asarray(cols["index"], dtype=np.int64)
    cols["loading"] = np.asarray(cols["loading"], dtype=np.float64)
    cols["z"] = np.asarray(cols["z"], dtype=np.float64)
    return make_table(cols)


def _label_levels(labels, n_vars, var_names):
    """[(level name, object array of labels (V,))] from the accepted forms of ``labels``."""
    pd = pandas_or_none()
    levels = []

    def aligned(obj):
        """obj reindexed to the variable names when indexed by names (not a plain range)."""
        idx = obj.index
        if isinstance(idx, pd.RangeIndex) or var_names is None:
            return obj
        if not (pd.api.types.is_object_dtype(idx) or pd.api.types.is_string_dtype(idx)):
            return obj
        names = [str(v) for v in var_names]
        if not idx.isin(names).any():
            raise ValueError("labels are indexed by names of which none is a variable of the model")
        if idx.duplicated().any():
            raise ValueError(f"labels name variable {idx[idx.duplicated()][0]!r} more than once")
        return obj.reindex(names)

    if pd is not None and isinstance(labels, pd.DataFrame):
        frame = aligned(labels)
        for col in frame.columns:
            levels.append((str(col), frame[col].to_numpy(dtype=object)))
    elif pd is not None and isinstance(labels, pd.Series):
        s = aligned(labels)
        levels.append((str(s.name) if s.name is not None else "label", s.to_numpy(dtype=object)))
    elif isinstance(labels, dict):
        levels = [(str(k), np.asarray(v, dtype=object)) for k, v in labels.items()]
    else:
        arr = np.asarray(labels, dtype=object)
        if arr.ndim == 1:
            levels = [("label", arr)]
        elif arr.ndim == 2 and arr.shape[0] == n_vars:
            levels = [(f"level_{i}", arr[:, i]) for i in range(arr.shape[1])]
        else:
            raise ValueError(
                f"labels must be one label per variable ({n_vars}), a dict of such arrays or a DataFrame; "
                f"got an array of shape {arr.shape}"
            )
    if not levels:
        raise ValueError("labels must hold at least one level; got none")
    for name, arr in levels:
        if arr.ndim != 1 or arr.size != n_vars:
            raise ValueError(f"labels[{name!r}] must hold one label per variable ({n_vars}); got shape {arr.shape}")
    return levels


def _is_missing(arr, missing):
    out = np.zeros(arr.size, dtype=bool)
    for i, v in enumerate(arr):
        if v is None or (isinstance(v, float) and math.isnan(v)) or v in missing:
            out[i] = True
    return out


def _check_choice(value, name, choices):
    if value not in choices:
        raise ValueError(f"{name} must be one of {choices}; got {value!r}")
    return value


def label_enrichment(model_or_loadings, labels, *, c=2.0, alpha=0.05, alternative="greater",
                     missing=("",), min_count=1, adjust="set", variable_names=None):
    """Over-representation of labels among the characteristic variables of each factor (Table 6).

    For every factor m and sign s, the characteristic set C (see :func:`characteristic_variables`)
    is compared with each label ℓ of the first level by :func:`llr_test` on the 2 × 2 table
    (in C or not) × (label ℓ or not) over the *labelled* variables (those whose label at that
    level is not missing). Nested levels are tested within significant parents: for a first-level
    label with adjusted p < ``alpha``, the second-level labels are tested with the variables of
    that first-level label as the population, and so on down the levels.

    Parameters
    ----------
    model_or_loadings : fitted MetaGraphicalLasso, loadings DataFrame or array (V, M)
    labels : array-like (V,), dict {level: array-like (V,)}, pandas Series or DataFrame
        One label per variable, per level, coarsest level first (e.g. ``{"sector": ...,
        "industry": ...}``). A Series or DataFrame indexed by variable names is aligned to the
        model's variable names.
    c : float, default=2.0
        Threshold of the characteristic sets, in standard deviations.
    alpha : float, default=0.05
        Adjusted p-value under which a label's children are tested.
    alternative : {"greater", "two-sided"}, default="greater"
    missing : collection, default=("",)
        Label values that mean "no label" (None and NaN always do).
    min_count : int, default=1
        Only labels with at least this many variables in the set are tested.
    adjust : {"set", "level"}, default="set"
        The family of the Benjamini–Hochberg adjustment: ``"set"`` — the tests of one
        characteristic set (one factor and sign) at one level under one parent; ``"level"`` —
        every test at the same level.
    variable_names : sequence of str, optional

    Returns
    -------
    DataFrame with columns ``factor``, ``sign``, ``level``, ``label``, ``parent``,
    ``n_variables``, ``n_set``, ``n_label``, ``n_overlap``, ``expected``, ``fold_enrichment``,
    ``statistic``, ``p_value``, ``p_adjusted``
        One row per test: ``n_variables`` is the population (labelled variables under
        ``parent``), ``n_set`` the characteristic variables among them, ``n_label`` those with
        the label, ``n_overlap`` both; ``statistic`` is G. Sorted by factor, sign, level, p-value.
    """
    c = _check_c(c)
    alpha = float(alpha)
    _check_choice(alternative, "alternative", _ALTERNATIVES)
    _check_choice(adjust, "adjust", _ADJUST)
    if isinstance(min_count, bool) or not isinstance(min_count, numbers.Integral) or min_count < 0:
        raise ValueError(f"min_count must be an integer >= 0; got {min_count!r}")
    L, names = _loadings(model_or_loadings, variable_names)
    V, M = L.shape
    levels = _label_levels(labels, V, names)
    missing = set(missing)
    masks, _ = _characteristic_masks(L, c)
    miss = [_is_missing(arr, missing) for _, arr in levels]
    values = [np.asarray([str(v) for v in arr], dtype=object) for _, arr in levels]

    rows = []  # dicts; p_adjusted filled per family

    def test_level(depth, population, parent, key):
        """Test every label of ``levels[depth]`` within ``population`` (a mask) for set ``key``."""
        pop = population & ~miss[depth]
        n_total = int(pop.sum())
        in_set = masks[key] & pop
        n_set = int(in_set.sum())
        labs = values[depth][pop]
        uniq, counts = np.unique(labs, return_counts=True)
        set_labs = values[depth][in_set]
        out = []
        for lab, n_lab in zip(uniq, counts):
            a = int(np.count_nonzero(set_labs == lab))
            if a < min_count or n_set == 0:
                continue
            G, p = llr_test(a, n_set, int(n_lab), n_total, alternative=alternative)
            expected = n_set * n_lab / n_total
            out.append(dict(factor=key[0], sign=key[1], level=levels[depth][0], label=str(lab),
                            parent=parent, n_variables=n_total, n_set=n_set, n_label=int(n_lab),
                            n_overlap=a, expected=expected, fold_enrichment=a / expected,
                            statistic=G, p_value=p, p_adjusted=np.nan, _depth=depth, _family=(key, parent),
                            _pop=pop))
        return out

    frontier = [((m, s), np.ones(V, dtype=bool), "") for m in range(M) for s in _SIGNS]
    for depth in range(len(levels)):
        level_rows = []
        for key, population, parent in frontier:
            level_rows += test_level(depth, population, parent, key)
        families = {}
        for i, r in enumerate(level_rows):
            families.setdefault(r["_family"] if adjust == "set" else 0, []).append(i)
        for idx in families.values():
            adj = benjamini_hochberg([level_rows[i]["p_value"] for i in idx])
            for i, q in zip(idx, adj):
                level_rows[i]["p_adjusted"] = float(q)
        rows += level_rows
        if depth + 1 < len(levels):
            # a child's population: the variables of its parent label within the parent's population
            frontier = [(r["_family"][0], r["_pop"] & (values[depth] == r["label"]), r["label"])
                        for r in level_rows if r["p_adjusted"] < alpha]

    sign_rank = {s: i for i, s in enumerate(_SIGNS)}
    rows.sort(key=lambda r: (r["factor"], sign_rank[r["sign"]], r["_depth"], r["p_value"], r["label"]))
    names_ = ["factor", "sign", "level", "label", "parent", "n_variables", "n_set", "n_label", "n_overlap",
              "expected", "fold_enrichment", "statistic", "p_value", "p_adjusted"]
    ints = {"factor", "n_variables", "n_set", "n_label", "n_overlap"}
    floats = {"expected", "fold_enrichment", "statistic", "p_value", "p_adjusted"}
    cols = {}
    for n in names_:
        vals = [r[n] for r in rows]
        cols[n] = (np.asarray(vals, dtype=np.int64) if n in ints else
                   np.asarray(vals, dtype=np.float64) if n in floats else np.asarray(vals, dtype=object))
    return make_table(cols)


def read_gmt(path):
    """Gene sets from a GMT file: one set a line, ``name<TAB>description<TAB>gene<TAB>gene...``.

    Returns
    -------
    dict
        Set name → list of genes (empty fields dropped, order kept, duplicates removed).
    """
    path = os.fspath(path)
    sets = {}
    with open(path, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            line = line.rstrip("\r\n")
            if not line.strip():
                continue
            fields = line.split("\t")
            if len(fields) < 2 or not fields[0].strip():
                raise ValueError(f"{path!r} line {lineno}: a GMT line needs a name and a description separated by tabs")
            genes = list(dict.fromkeys(g.strip() for g in fields[2:] if g.strip()))
            name = fields[0].strip()
            if name in sets:
                raise ValueError(f"{path!r} line {lineno}: gene set {name!r} appears twice")
            sets[name] = genes
    return sets


def _gene_sets(gene_sets):
    if isinstance(gene_sets, (str, os.PathLike)):
        return read_gmt(gene_sets)
    if not isinstance(gene_sets, dict):
        raise ValueError(f"gene_sets must be a dict name -> genes or the path of a GMT file; got {type(gene_sets).__name__}")
    out = {}
    for name, genes in gene_sets.items():
        if isinstance(genes, str):
            raise ValueError(f"gene_sets[{name!r}] must be a collection of gene names; got the string {genes!r}")
        out[str(name)] = [str(g) for g in genes]
    return out


def gene_set_enrichment(model_or_loadings, gene_sets, *, n_top=100, sign="both", min_size=1, max_size=None,
                        adjust="set", variable_names=None):
    """Hypergeometric enrichment of the top-n variables of each factor in gene sets (Table 7).

    For factor m the top list is the ``n_top`` variables of largest loading (``pos``), of
    smallest loading (``neg``) or of largest ``|loading|`` (``abs``). Each gene set G, restricted to
    the model's variables, is tested by P(X >= k) with X ~ Hypergeometric(V, ``|G|``, n_top) and k
    the overlap (:func:`hypergeometric_sf`, as ``scipy.stats.hypergeom.sf(k − 1, V, |G|, n)``).

    Parameters
    ----------
    model_or_loadings : fitted MetaGraphicalLasso, loadings DataFrame or array (V, M)
        The variable names (the model's ``feature_names_in_``, the DataFrame's index or
        ``variable_names``) are matched with the genes of the sets.
    gene_sets : dict {name: collection of genes} or path of a GMT file
    n_top : int, default=100
    sign : {"both", "pos", "neg", "abs"}, default="both"
        ``"both"`` tests the ``pos`` and the ``neg`` lists.
    min_size, max_size : int, default=1 and None
        Only sets with ``min_size <= |G ∩ variables| <= max_size`` are tested.
    adjust : {"set", "level"}, default="set"
        Benjamini–Hochberg family: the tests of one top list (``"set"``) or all tests (``"level"``).
    variable_names : sequence of str, optional

    Returns
    -------
    DataFrame with columns ``factor``, ``sign``, ``gene_set``, ``n_variables``, ``set_size``,
    ``n_top``, ``n_overlap``, ``expected``, ``fold_enrichment``, ``p_value``, ``p_adjusted``, ``genes``
        One row per (top list, gene set) with at least one gene in common; ``genes`` lists the
        overlap in the order of the top list, separated by ``;``. Sorted by factor, sign, p-value.
    """
    L, names = _loadings(model_or_loadings, variable_names, names_for="gene_set_enrichment")
    V, M = L.shape
    n_top = int(n_top) if isinstance(n_top, numbers.Integral) and not isinstance(n_top, bool) else n_top
    if not isinstance(n_top, int) or not 1 <= n_top <= V:
        raise ValueError(f"n_top must be an integer in [1, {V}]; got {n_top!r}")
    signs = ("pos", "neg") if sign == "both" else (_check_choice(sign, "sign", ("both", "pos", "neg", "abs")),)
    _check_choice(adjust, "adjust", _ADJUST)
    sets = _gene_sets(gene_sets)
    position = {n: i for i, n in enumerate(names)}
    members = {}
    for name, genes in sets.items():
        idx = np.asarray(sorted({position[g] for g in genes if g in position}), dtype=np.int64)
        if idx.size >= min_size and (max_size is None or idx.size <= max_size) and idx.size > 0:
            members[name] = idx
    lf = _LogFactorial()
    rows = []
    for m in range(M):
        for s in signs:
            key = L[:, m] if s == "pos" else (-L[:, m] if s == "neg" else np.abs(L[:, m]))
            top = np.argsort(-key, kind="stable")[:n_top]
            rank = np.full(V, -1)
            rank[top] = np.arange(n_top)
            in_top = rank >= 0
            for name, idx in members.items():
                hit = idx[in_top[idx]]
                k = hit.size
                if k == 0:
                    continue
                hit = hit[np.argsort(rank[hit])]
                p = hypergeometric_sf(k, V, idx.size, n_top, _logfact=lf)
                expected = n_top * idx.size / V
                rows.append(dict(factor=m, sign=s, gene_set=name, n_variables=V, set_size=int(idx.size),
                                 n_top=n_top, n_overlap=int(k), expected=expected, fold_enrichment=k / expected,
                                 p_value=p, p_adjusted=np.nan, genes=";".join(str(names[i]) for i in hit)))
    families = {}
    for i, r in enumerate(rows):
        families.setdefault((r["factor"], r["sign"]) if adjust == "set" else 0, []).append(i)
    for idx in families.values():
        for i, q in zip(idx, benjamini_hochberg([rows[i]["p_value"] for i in idx])):
            rows[i]["p_adjusted"] = float(q)
    order = {s: i for i, s in enumerate(("pos", "neg", "abs"))}
    rows.sort(key=lambda r: (r["factor"], order[r["sign"]], r["p_value"], r["gene_set"]))
    cols = {}
    for n, kind in [("factor", "i"), ("sign", "o"), ("gene_set", "o"), ("n_variables", "i"), ("set_size", "i"),
                    ("n_top", "i"), ("n_overlap", "i"), ("expected", "f"), ("fold_enrichment", "f"),
                    ("p_value", "f"), ("p_adjusted", "f"), ("genes", "o")]:
        dtype = {"i": np.int64, "f": np.float64, "o": object}[kind]
        cols[n] = np.asarray([r[n] for r in rows], dtype=dtype)
    return make_table(cols)


_RANK_SIGNS = ("two-sided", "both", "pos", "neg", "abs")
_RANK_METHODS = ("mannwhitney", "ks")


def gene_set_rank_enrichment(model_or_loadings, gene_sets, *, method="mannwhitney", sign="two-sided", min_size=5,
                             max_size=None, adjust="set", n_genes=10, variable_names=None):
    """Rank test of gene sets against each factor's loadings: no top-n cut-off.

    For factor m and gene set G (restricted to the model's variables) the loadings of G's genes
    are compared with those of all other variables:

    * ``method="mannwhitney"``: the Mann–Whitney U test (:func:`mann_whitney_u`: normal
      approximation with tie and continuity corrections, as
      ``scipy.stats.mannwhitneyu(in_set, rest, method="asymptotic")``), vectorised over factors
      and sets; needs NumPy only.
    * ``method="ks"``: the two-sample Kolmogorov–Smirnov test, the largest gap between the
      running (cumulative) distributions of the set's and the other loadings, as
      ``scipy.stats.ks_2samp(in_set, rest)`` (needs scipy; scipy's default ``method="auto"``, exact
      for these sizes).

    Parameters
    ----------
    model_or_loadings : fitted MetaGraphicalLasso, loadings DataFrame or array (V, M)
        As for :func:`gene_set_enrichment`; the variable names are matched with the genes.
    gene_sets : dict {name: collection of genes} or path of a GMT file
    method : {"mannwhitney", "ks"}, default="mannwhitney"
    sign : {"two-sided", "both", "pos", "neg", "abs"}, default="two-sided"
        ``"pos"``: one-sided, the set's loadings are larger than the rest's; ``"neg"``: smaller;
        ``"both"``: the ``pos`` and the ``neg`` test; ``"abs"``: one-sided on ``|loading|`` (the set
        loads strongly, at either end); ``"two-sided"``: one two-sided test per factor and set.
    min_size, max_size : int, default=5 and None
        Only sets with ``min_size <= |G ∩ variables| <= max_size`` (and < V) are tested.
    adjust : {"set", "level"}, default="set"
        Benjamini–Hochberg family: the tests of one factor and direction (``"set"``; with
        ``"two-sided"`` one factor) or all tests (``"level"``).
    n_genes : int, default=10
        How many of the set's genes to list in ``genes``.
    variable_names : sequence of str, optional

    Returns
    -------
    DataFrame with columns ``factor``, ``sign``, ``gene_set``, ``n_variables``, ``set_size``,
    ``statistic``, ``auc``, ``mean_difference``, ``p_value``, ``p_adjusted``, ``genes``
        One row per (factor, direction, gene set). ``sign`` is the direction tested (``pos``,
        ``neg``, ``abs``) or, for ``"two-sided"``, the direction observed: ``pos`` when
        auc >= 0.5. ``statistic`` is U of the set (Mann–Whitney; of ``|loading|`` with ``abs``) or the
        KS distance D of the direction tested. ``auc`` = ``U / (|G| (V − |G|))``, the probability that
        a gene of the set has a larger loading (``|loading|`` with ``abs``) than another variable,
        ties counting one half (0.5: no shift; 2·auc − 1 is the rank-biserial correlation).
        ``mean_difference`` is the set's mean loading (``|loading|`` with ``abs``) minus the others'.
        ``genes`` lists up to ``n_genes`` of the set's genes, those furthest in the direction first.
        Sorted by factor, sign, p-value.
    """
    _check_choice(method, "method", _RANK_METHODS)
    _check_choice(sign, "sign", _RANK_SIGNS)
    _check_choice(adjust, "adjust", _ADJUST)
    if isinstance(n_genes, bool) or not isinstance(n_genes, numbers.Integral) or n_genes < 0:
        raise ValueError(f"n_genes must be an integer >= 0; got {n_genes!r}")
    if isinstance(min_size, bool) or not isinstance(min_size, numbers.Integral) or min_size < 1:
        raise ValueError(f"min_size must be an integer >= 1; got {min_size!r}")
    L, names = _loadings(model_or_loadings, variable_names, names_for="gene_set_rank_enrichment")
    V, M = L.shape
    if method == "ks":
        try:
            from scipy.stats import ks_2samp
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise ImportError("method='ks' needs scipy; install it or use method='mannwhitney'") from exc
    sets = _gene_sets(gene_sets)
    position = {n: i for i, n in enumerate(names)}
    set_names, members = [], []
    for name, genes in sets.items():
        idx = np.asarray(sorted({position[g] for g in genes if g in position}), dtype=np.int64)
        if min_size <= idx.size < V and (max_size is None or idx.size <= max_size):
            set_names.append(name)
            members.append(idx)
    tests = {"two-sided": [("two-sided", "two-sided")], "both": [("pos", "greater"), ("neg", "less")],
             "pos": [("pos", "greater")], "neg": [("neg", "less")], "abs": [("abs", "greater")]}[sign]
    rows = []
    if set_names:
        S = len(set_names)
        member = np.zeros((S, V))
        for i, idx in enumerate(members):
            member[i, idx] = 1.0
        n1 = member.sum(axis=1)
        keys = {"signed": L, "abs": np.abs(L)} if sign == "abs" else {"signed": L}
        stats_ = {}
        for kind, X in keys.items():
            ranks, tie_term = _average_ranks(X)
            rank_sum = member @ ranks  # (S, M)
            mean_in = (member @ X) / n1[:, None]
            mean_out = (X.sum(axis=0)[None, :] - member @ X) / (V - n1)[:, None]
            stats_[kind] = (rank_sum, tie_term, mean_in - mean_out)
        for label, alternative in tests:
            kind = "abs" if label == "abs" else "signed"
            X = keys[kind]
            rank_sum, tie_term, diff = stats_[kind]
            U1, p = _mwu_from_ranks(rank_sum, n1[:, None], float(V), tie_term[None, :], alternative)
            auc = U1 / (n1[:, None] * (V - n1[:, None]))
            for m in range(M):
                for i, name in enumerate(set_names):
                    idx = members[i]
                    direction = label if label != "two-sided" else ("pos" if auc[i, m] >= 0.5 else "neg")
                    if method == "ks":
                        rest = np.ones(V, dtype=bool)
                        rest[idx] = False
                        # ks_2samp's alternative is about the set's CDF: "less" = the set's values are larger
                        ks_alt = {"two-sided": "two-sided", "greater": "less", "less": "greater"}[alternative]
                        res = ks_2samp(X[idx, m], X[rest, m], alternative=ks_alt)
                        statistic, pval = float(res.statistic), float(res.pvalue)
                    else:
                        statistic, pval = float(U1[i, m]), float(p[i, m])
                    key = X[idx, m] if direction in ("pos", "abs") else -X[idx, m]
                    lead = idx[np.argsort(-key, kind="stable")][:n_genes]
                    rows.append(dict(factor=m, sign=direction, gene_set=name, n_variables=V, set_size=int(idx.size),
                                     statistic=statistic, auc=float(auc[i, m]), mean_difference=float(diff[i, m]),
                                     p_value=pval, p_adjusted=np.nan, genes=";".join(str(names[j]) for j in lead),
                                     _family=(m, label)))
    families = {}
    for i, r in enumerate(rows):
        families.setdefault(r["_family"] if adjust == "set" else 0, []).append(i)
    for idx in families.values():
        for i, q in zip(idx, benjamini_hochberg([rows[i]["p_value"] for i in idx])):
            rows[i]["p_adjusted"] = float(q)
    order = {"pos": 0, "neg": 1, "abs": 2}
    if sign == "two-sided":
        rows.sort(key=lambda r: (r["factor"], r["p_value"], r["gene_set"]))
    else:
        rows.sort(key=lambda r: (r["factor"], order[r["sign"]], r["p_value"], r["gene_set"]))
    cols = {}
    for n, kind in [("factor", "i"), ("sign", "o"), ("gene_set", "o"), ("n_variables", "i"), ("set_size", "i"),
                    ("statistic", "f"), ("auc", "f"), ("mean_difference", "f"), ("p_value", "f"),
                    ("p_adjusted", "f"), ("genes", "o")]:
        dtype = {"i": np.int64, "f": np.float64, "o": object}[kind]
        cols[n] = np.asarray([r[n] for r in rows], dtype=dtype)
    return make_table(cols)


def enrichment_summary(table, *, alpha=0.05, max_children=3):
    """The significant rows of :func:`label_enrichment` in the layout of the paper's Table 6.

    Returns
    -------
    DataFrame with columns ``factor``, ``sign``, ``<level 1>``, ``n``, ``fold``, ``p_adjusted``,
    ``within``
        One row per first-level label with adjusted p < ``alpha``; ``n`` is "overlap/set size",
        ``within`` lists up to ``max_children`` significant labels of the next level, each as
        "label (overlap/set, p=...)" with the adjusted p.
    """
    names, cols = table_columns(table)
    t = {n: c for n, c in zip(names, cols)}
    if not t or len(t["factor"]) == 0:
        return make_table({"factor": np.zeros(0, dtype=np.int64), "sign": [], "label": [], "n": [],
                           "fold": np.zeros(0), "p_adjusted": np.zeros(0), "within": []})
    level_names = list(dict.fromkeys(t["level"]))
    first = level_names[0]
    second = level_names[1] if len(level_names) > 1 else None
    out = {"factor": [], "sign": [], first: [], "n": [], "fold": [], "p_adjusted": [], "within": []}
    n_rows = len(t["factor"])
    for i in range(n_rows):
        if t["level"][i] != first or not t["p_adjusted"][i] < alpha:
            continue
        children = [j for j in range(n_rows)
                    if second is not None and t["level"][j] == second and t["parent"][j] == t["label"][i]
                    and t["factor"][j] == t["factor"][i] and t["sign"][j] == t["sign"][i]
                    and t["p_adjusted"][j] < alpha]
        children.sort(key=lambda j: t["p_adjusted"][j])
        within = "; ".join(
            f"{t['label'][j]} ({t['n_overlap'][j]}/{t['n_set'][j]}, {_fmt_p(t['p_adjusted'][j])})"
            for j in children[:max_children])
        if len(children) > max_children:
            within += f"; +{len(children) - max_children} more"
        out["factor"].append(int(t["factor"][i]))
        out["sign"].append(t["sign"][i])
        out[first].append(t["label"][i])
        out["n"].append(f"{t['n_overlap'][i]}/{t['n_set'][i]}")
        out["fold"].append(float(t["fold_enrichment"][i]))
        out["p_adjusted"].append(float(t["p_adjusted"][i]))
        out["within"].append(within or "-")
    out["factor"] = np.asarray(out["factor"], dtype=np.int64)
    out["fold"] = np.asarray(out["fold"], dtype=np.float64)
    out["p_adjusted"] = np.asarray(out["p_adjusted"], dtype=np.float64)
    return make_table(out)


def _fmt_p(p):
    return "p<0.001" if p < 0.001 else f"p={p:.3f}"
