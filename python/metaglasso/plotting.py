"""Figures of a fitted model (matplotlib; ``pip install "metaglasso[plot]"``).

* :func:`plot_networks` — the partial-correlation network of each dataset, one panel each, with
  the same node positions in every panel (paper Figs 2, 5, 7);
* :func:`plot_edge_differences` — a heat map of the edges the datasets share and those that differ;
* :func:`plot_variances` — the factor variances diag(Σ_k) and the noise ε_k per dataset (Figs 4, 6);
* :func:`plot_scores` — the latent scores per factor, the datasets in colours: lines over the samples'
  dates or other x values (Fig 3), or one dot per sample when the samples have no order (cells);
* :func:`plot_objective` — the objective history of a fit;
* :func:`plot_bic` — the BIC grid of a model selection;
* :func:`plot_enrichment` — a dot plot of gene-set enrichment tables (factor × gene set).

Each function returns the matplotlib Figure. Without ``ax``/``axes`` a new figure is made with
``matplotlib.pyplot`` (close it with ``plt.close(fig)`` when done). matplotlib is imported only
when a function is called.
"""

from __future__ import annotations

import numpy as np

from metaglasso.interpret import _datasets, align_factors

__all__ = ["enrichment_dot_sizes", "plot_bic", "plot_edge_differences", "plot_enrichment", "plot_networks", "plot_objective", "plot_scores", "plot_variances", "network_layout"]

POSITIVE_COLOR = "#1f5fbf"  # blue: positive partial correlation
NEGATIVE_COLOR = "#d62728"  # red: negative partial correlation


def _pyplot():
    try:
        import matplotlib.pyplot as plt
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            "metaglasso.plotting needs matplotlib; install it with: pip install 'metaglasso[plot]'"
        ) from exc
    return plt


def _factor_colors(M):
    plt = _pyplot()
    cmap = plt.get_cmap("tab10" if M <= 10 else "tab20")
    return [cmap(i % cmap.N) for i in range(M)]


# --------------------------------------------------------------------------------------------
# Networks
# --------------------------------------------------------------------------------------------

def network_layout(weights, layout="circle", *, random_state=0, n_iter=300):
    """Node positions (M, 2) in [-1, 1]² for a network of M factors.

    Parameters
    ----------
    weights : array of shape (M, M)
        Symmetric edge weights (e.g. the mean ``|partial correlation|`` over datasets); used by
        ``"spring"`` only.
    layout : {"circle", "spring"} or array of shape (M, 2)
        ``"circle"``: factor 0 at the top, then clockwise. ``"spring"``: a Fruchterman–Reingold
        force layout of the weighted graph from the circle, deterministic for ``random_state``.
    """
    W = np.asarray(weights, dtype=np.float64)
    if W.ndim != 2 or W.shape[0] != W.shape[1]:
        raise ValueError(f"weights must be a square matrix; got shape {W.shape}")
    M = W.shape[0]
    if not isinstance(layout, str):
        pos = np.asarray(layout, dtype=np.float64)
        if pos.shape != (M, 2) or not np.all(np.isfinite(pos)):
            raise ValueError(f"layout must be 'circle', 'spring' or finite positions of shape ({M}, 2); got {pos.shape}")
        return pos
    angles = np.pi / 2 - 2 * np.pi * np.arange(M) / max(M, 1)
    circle = np.column_stack([np.cos(angles), np.sin(angles)])
    if layout == "circle":
        return circle
    if layout != "spring":
        raise ValueError(f"layout must be 'circle', 'spring' or an array of positions; got {layout!r}")
    rng = np.random.default_rng(random_state)
    pos = circle + 0.01 * rng.standard_normal(circle.shape)
    A = np.abs(W) * (1 - np.eye(M))
    k = 1.0 / np.sqrt(max(M, 1))
    temp = 0.1
    for _ in range(n_iter):
        delta = pos[:, None, :] - pos[None, :, :]
        dist = np.maximum(np.linalg.norm(delta, axis=-1), 1e-3)
        force = (k * k / dist**2 - A * dist / k)[..., None] * delta
        disp = force.sum(axis=1)
        length = np.maximum(np.linalg.norm(disp, axis=1, keepdims=True), 1e-9)
        pos += disp / length * np.minimum(length, temp)
        temp = max(temp * 0.98, 1e-3)
    pos -= pos.mean(axis=0)
    scale = np.abs(pos).max()
    return pos / scale if scale > 0 else circle


def _network_arrays(obj, name):
    """(partial correlations (K, M, M), nonzero mask (K, M, M), variances (K, M)) of a model, a
    ground truth (precisions, covariances attributes) or an array of precision matrices."""
    from metaglasso._results import partial_correlations

    if hasattr(obj, "precisions_"):
        prec, cov = np.asarray(obj.precisions_), np.asarray(obj.covariances_)
    elif hasattr(obj, "precisions"):
        prec = np.asarray(obj.precisions)
        cov = np.asarray(obj.covariances) if hasattr(obj, "covariances") else np.linalg.inv(prec)
    else:
        prec = np.asarray(obj, dtype=np.float64)
        if prec.ndim == 2:
            prec = prec[None]
        if prec.ndim != 3 or prec.shape[1] != prec.shape[2]:
            raise ValueError(f"{name} must be a fitted model or precision matrices of shape (K, M, M); got {prec.shape}")
        cov = np.linalg.inv(prec)
    return partial_correlations(prec), prec != 0, np.diagonal(cov, axis1=1, axis2=2)


def _draw_network(ax, pos, pcor, mask, var, *, vmax, node_size, edge_width, tol, colors, title, shared=None):
    from matplotlib import patheffects
    from matplotlib.collections import LineCollection

    M = pos.shape[0]
    iu, ju = np.triu_indices(M, k=1)
    r = pcor[iu, ju]
    keep = mask[iu, ju] & (np.abs(r) > tol)
    iu, ju, r = iu[keep], ju[keep], r[keep]
    order = np.argsort(np.abs(r))  # strongest on top
    iu, ju, r = iu[order], ju[order], r[order]
    segments = [[pos[i], pos[j]] for i, j in zip(iu, ju)]
    styles = "solid" if shared is None else ["solid" if shared[i, j] else (0, (2.5, 1.5)) for i, j in zip(iu, ju)]
    lines = LineCollection(
        segments, colors=[POSITIVE_COLOR if v > 0 else NEGATIVE_COLOR for v in r],
        linewidths=np.maximum(edge_width * np.abs(r), 0.4), alpha=0.85, zorder=1, label="edges",
        capstyle="round", linestyles=styles,
    )
    ax.add_collection(lines)
    sizes = node_size * np.clip(var / vmax, 0, None)
    sizes = np.maximum(sizes, node_size * 0.04)
    ax.scatter(pos[:, 0], pos[:, 1], s=sizes, c=colors, edgecolors="black", linewidths=0.6, zorder=2,
               label="nodes")
    halo = [patheffects.withStroke(linewidth=2.5, foreground="white")]
    for m in range(M):
        ax.annotate(str(m), pos[m], ha="center", va="center", fontsize=9, fontweight="bold", zorder=3,
                    path_effects=halo)
    ax.set_xlim(-1.3, 1.3)
    ax.set_ylim(-1.3, 1.3)
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_visible(False)
    n = len(segments)
    ax.set_title(f"{title}\n{n} edge{'' if n == 1 else 's'}", fontsize=10)
    return lines


def plot_networks(model, *, dataset_names=None, truth=None, align=True, layout="circle", tol=0.0,
                  ncols=None, axes=None, node_size=900.0, edge_width=6.0, panel_size=2.8, show_shared=False):
    """The partial-correlation network of each dataset, one panel each.

    Nodes are the factors at the same positions in every panel; an edge joins i and j where
    Λ_k[i, j] != 0 (and ``|partial correlation|`` > ``tol``), blue when the partial correlation is
    positive and red when negative, of width ``edge_width`` · ``|partial correlation|`` points (at
    least 0.4); node areas are proportional to the factor's variance Σ_k[i, i], relative to the
    largest variance over all panels (at least 4 % of ``node_size``).

    Parameters
    ----------
    model : fitted MetaGraphicalLasso or array of shape (K, M, M) of precision matrices
    dataset_names : sequence of K names, optional
    truth : object with ``precisions`` and ``covariances`` (e.g.
        :class:`metaglasso.datasets.SyntheticTruth`), a fitted model or precision matrices, optional
        Drawn beside the estimate: a top row "truth" and a bottom row of the estimates.
    align : bool, default=True
        When ``truth`` and the model both have factors (``components`` / ``components_``), reorder
        and flip the signs of the truth's factors to match the estimate's (see
        :func:`metaglasso.interpret.align_factors`), so that node i is the same factor in both rows.
    layout : {"circle", "spring"} or array of shape (M, 2), default="circle"
    tol : float, default=0.0
    ncols : int, optional
        Panels per row without ``truth`` (default: min(K, 4)).
    axes : sequence of matplotlib Axes, optional
        K axes (2K with ``truth``: the truth's first).
    node_size, edge_width, panel_size : float
        Largest node area (points²), width of an edge of ``|partial correlation|`` 1 (points), and
        the size of a panel (inches) of a new figure.
    show_shared : bool, default=False
        Draw the edges present in every dataset solid and the others dashed (with ``truth``: the
        truth's edges by the truth's datasets, the estimate's by the estimate's); see also
        :func:`plot_edge_differences`.

    Returns
    -------
    matplotlib.figure.Figure
    """
    plt = _pyplot()
    pcor, mask, var = _network_arrays(model, "model")
    K, M = var.shape
    names = _datasets(model, dataset_names) if hasattr(model, "precisions_") else (
        list(range(K)) if dataset_names is None else list(dataset_names))
    if len(names) != K:
        raise ValueError(f"dataset_names must hold one name per dataset ({K}); got {len(names)}")
    def in_all(p, mk):
        return np.all(mk & (np.abs(p) > tol), axis=0) if show_shared else None

    shared = in_all(pcor, mask)
    panels = [(pcor[k], mask[k], var[k], str(names[k]), shared) for k in range(K)]
    if truth is not None:
        tp, tm, tv = _network_arrays(truth, "truth")
        if tv.shape[1] != M:
            raise ValueError(f"truth has {tv.shape[1]} factors; the model has {M}")
        if tv.shape[0] != K:
            raise ValueError(f"truth has {tv.shape[0]} datasets; the model has {K}")
        comps = getattr(model, "components_", None)
        tcomps = getattr(truth, "components", getattr(truth, "components_", None))
        if align and comps is not None and tcomps is not None:
            order, signs = align_factors(comps, tcomps)
            flip = np.outer(signs, signs)
            tp = tp[:, order][:, :, order] * flip
            tm = tm[:, order][:, :, order]
            tv = tv[:, order]
        truth_shared = in_all(tp, tm)
        panels = [(tp[k], tm[k], tv[k], f"truth: {names[k]}", truth_shared) for k in range(K)] + [
            (p, mk, v, f"estimate: {t}", sh) for p, mk, v, t, sh in panels]
    weights = np.mean([np.abs(p) * mk for p, mk, *_ in panels], axis=0)
    pos = network_layout(weights, layout)
    vmax = max(float(np.max(v)) for _, _, v, *_ in panels)
    vmax = vmax if vmax > 0 else 1.0
    if axes is None:
        if truth is not None:
            nrows, nc = 2, K
        else:
            nc = min(K, 4) if ncols is None else max(1, int(ncols))
            nrows = -(-K // nc)
        height = panel_size * nrows + 1.1
        fig, grid = plt.subplots(nrows, nc, figsize=(panel_size * nc, height), squeeze=False)
        flat = list(grid.ravel())
        for ax in flat[len(panels):]:
            ax.set_visible(False)
        axes = flat[:len(panels)]
    else:
        axes = list(np.ravel(axes))
        if len(axes) != len(panels):
            raise ValueError(f"axes must hold {len(panels)} Axes; got {len(axes)}")
        fig = axes[0].figure
    colors = _factor_colors(M)
    for ax, (p, mk, v, title, sh) in zip(axes, panels):
        _draw_network(ax, pos, p, mk, v, vmax=vmax, node_size=node_size, edge_width=edge_width, tol=tol,
                      colors=colors, title=title, shared=sh)
    from matplotlib.lines import Line2D

    handles = [Line2D([], [], color=POSITIVE_COLOR, lw=3, label="positive partial correlation"),
               Line2D([], [], color=NEGATIVE_COLOR, lw=3, label="negative partial correlation")]
    if show_shared:
        handles += [Line2D([], [], color="0.4", lw=2, label="in every dataset"),
                    Line2D([], [], color="0.4", lw=2, ls=(0, (2.5, 1.5)), label="not in every dataset")]
    fig.legend(handles=handles, loc="lower center", ncol=2, frameon=False, fontsize=9,
               title="width ∝ |partial correlation|, node area ∝ factor variance", title_fontsize=9)
    height = fig.get_figheight()
    bottom = 0.62 + (0.3 if show_shared else 0.0)
    fig.subplots_adjust(left=0.01, right=0.99, bottom=bottom / height, top=1 - 0.45 / height, wspace=0.05,
                        hspace=0.35)
    return fig


STATUS_COLORS = {"fused": "0.35", "shared": "black", "differs": "#b35806"}  # labels of plot_edge_differences


def plot_edge_differences(model, *, dataset_names=None, tol=0.0, max_edges=40, ax=None):
    """A heat map of the edges the datasets share and of those that differ.

    One row per edge of :func:`metaglasso.interpret.edge_differences_table`, in its order (the
    edges that differ first, the largest differences first), at most ``max_edges`` rows (the title
    says how many are shown when there are more); one column per dataset. A cell's colour is the
    partial correlation (blue positive, red negative, as in :func:`plot_networks`; limits ± the
    largest ``|partial correlation|`` shown), blank where the dataset lacks the edge; a small dot
    marks every cell with the edge, so that a weak edge is told from a missing one. Rows are
    labelled ``f3–f7`` on the left and, on the right, ``fused`` (in every dataset with one value
    of Λ_ij), ``shared`` (in every dataset) or ``differs (n/K)`` (in n of the K datasets).

    Parameters
    ----------
    model : fitted MetaGraphicalLasso
    dataset_names : sequence of K names, optional
    tol : float, default=0.0
        Smallest ``|partial correlation|`` of an edge.
    max_edges : int or None, default=40
        Rows shown at most (None: every edge).
    ax : matplotlib Axes, optional

    Returns
    -------
    matplotlib.figure.Figure
        The heat map is the Axes' image (``ax.images[0]``), a masked array of shape
        (rows, K), masked where the edge is absent; the dots are the collection labelled
        ``"present"``. Without edges the Axes has no image and says so.
    """
    from metaglasso._tables import table_columns
    from metaglasso.interpret import _check_model, edge_differences_table

    plt = _pyplot()
    _check_model(model)
    if max_edges is not None:
        import numbers

        if isinstance(max_edges, bool) or not isinstance(max_edges, numbers.Integral) or max_edges < 1:
            raise ValueError(f"max_edges must be an integer >= 1 or None; got {max_edges!r}")
    names = _datasets(model, dataset_names)
    K = len(names)
    table = dict(zip(*table_columns(edge_differences_table(model, dataset_names=names, tol=tol))))
    total = len(table["factor_i"])
    n = total if max_edges is None else min(total, int(max_edges))
    values = np.column_stack([np.asarray(table[str(name)], dtype=np.float64)[:n] for name in names]) if n else \
        np.zeros((0, K))
    status = np.asarray(table["status"])[:n]
    equal = np.asarray(table["equal"], dtype=bool)[:n]
    counts = np.asarray(table["n_datasets"])[:n]
    if ax is None:
        longest = max(len(str(name)) for name in names)
        width = 3.4 + max(0.55, 0.075 * longest + 0.15) * K
        fig, ax = plt.subplots(figsize=(max(4.5, width), 0.24 * n + 2.0), constrained_layout=True)
    else:
        fig = ax.figure
    n_shared = int(np.count_nonzero(np.asarray(table["status"]) == "shared"))
    n_fused = int(np.count_nonzero(np.asarray(table["equal"], dtype=bool)))
    title = (f"{total} edge{'' if total == 1 else 's'}: {n_shared} in all {K} datasets ({n_fused} fused), "
             f"{total - n_shared} differ{'s' if total - n_shared == 1 else ''}")
    if n < total:
        title += f"\nshowing {n} of {total} edges (max_edges={max_edges}): those that differ first"
    ax.set_title(title, fontsize=9)
    ax.set_xticks(np.arange(K), [str(name) for name in names])
    ax.set_xlabel("dataset")
    if n == 0:
        ax.set_yticks([])
        ax.text(0.5, 0.5, "no edges", transform=ax.transAxes, ha="center", va="center", color="0.4")
        return fig
    cmap = plt.get_cmap("RdBu").with_extremes(bad="white")
    limit = float(np.max(np.abs(values)))
    limit = limit if limit > 0 else 1.0
    image = ax.imshow(np.ma.masked_equal(values, 0.0), cmap=cmap, vmin=-limit, vmax=limit, aspect="auto",
                      interpolation="nearest")
    rows = np.arange(n)
    yy, xx = np.nonzero(values)
    ax.scatter(xx, yy, s=3.0, color="0.3", alpha=0.6, linewidths=0, label="present")  # weak edges are not blank
    ax.set_xlim(-0.5, K - 0.5)
    ax.set_ylim(n - 0.5, -0.5)
    ax.set_yticks(rows, [f"f{i}–f{j}" for i, j in zip(table["factor_i"][:n], table["factor_j"][:n])],
                  fontsize=8)
    ax.set_xticks(np.arange(K + 1) - 0.5, minor=True)
    ax.set_yticks(np.arange(n + 1) - 0.5, minor=True)
    ax.grid(which="minor", color="0.85", lw=0.6)
    ax.tick_params(which="minor", length=0)
    labels = ["fused" if e else ("shared" if s == "shared" else f"differs ({c}/{K})")
              for s, e, c in zip(status, equal, counts)]
    right = ax.secondary_yaxis("right")
    right.set_yticks(rows, labels, fontsize=8)
    right.tick_params(length=0)
    for text, label in zip(right.get_yticklabels(), labels):
        text.set_color(STATUS_COLORS[label.split(" ")[0]])
    cbar = fig.colorbar(image, ax=ax, pad=0.02, fraction=0.05, shrink=min(1.0, 6.0 / max(n, 1) + 0.4))
    cbar.set_label("partial correlation")
    if not fig.get_constrained_layout():
        fig.tight_layout()
    return fig


# --------------------------------------------------------------------------------------------
# Variances, scores, objective, BIC
# --------------------------------------------------------------------------------------------

def _renderer(fig):
    """A renderer of ``fig`` for measuring text (the figure is drawn once when its canvas has none)."""
    get = getattr(fig.canvas, "get_renderer", None)
    if get is not None:
        return get()
    fig.canvas.draw()
    return fig._get_renderer() if hasattr(fig, "_get_renderer") else fig._cachedRenderer  # pragma: no cover


def _fit_tick_labels(axes):
    """Rotate the dataset names on the x axis of each Axes where they would overlap when horizontal:
    by 45° (right-aligned at the tick) when the rotated labels are apart, else by 90°.

    Measured on the drawn figure (so after its layout), each label's box with a gap of 0.3 × its
    height; the 45° labels are parallel strips 0.71 × the tick spacing apart, which must exceed
    1.3 × the text height.
    """
    fig = axes[0].figure
    fig.canvas.draw()  # runs the layout: the positions measured are those of the saved figure
    for ax in axes:
        labels = [t for t in ax.get_xticklabels() if t.get_visible() and t.get_text()]
        if len(labels) < 2:
            continue
        boxes = sorted((t.get_window_extent() for t in labels), key=lambda b: b.x0)
        height = max(b.height for b in boxes)
        if all(a.x1 + 0.3 * height <= b.x0 for a, b in zip(boxes, boxes[1:])):
            continue
        centres = np.asarray([(b.x0 + b.x1) / 2 for b in boxes])
        spacing = float(np.min(np.diff(centres)))
        if spacing * np.sqrt(0.5) >= 1.3 * height:
            ax.tick_params(axis="x", labelrotation=45)
            for t in ax.get_xticklabels():
                t.set_horizontalalignment("right")
                t.set_rotation_mode("anchor")
        else:
            ax.tick_params(axis="x", labelrotation=90)


def plot_variances(model, *, dataset_names=None, log=True, axes=None):
    """Factor variances diag(Σ_k) per dataset (one line per factor) and the noise ε_k per dataset.

    Without ``axes`` the two panels are stacked, (A) above (B), on one dataset axis whose labels are
    under (B); the figure's width grows with the number of datasets and the length of their names
    (8 to 14 inches). Dataset names that would still overlap are turned by 45° (right-aligned at
    their tick), or by 90° when even that is too tight. Factors are the model's, in its order
    (``components_`` rows: 0, 1, ...), and keep their colours in every figure of this module.

    Parameters
    ----------
    model : fitted MetaGraphicalLasso
    dataset_names : sequence of K names, optional
    log : bool, default=True
        Logarithmic variance axes (the variances often span orders of magnitude).
    axes : pair of matplotlib Axes, optional
        (A) and (B); each gets the dataset names.

    Returns
    -------
    matplotlib.figure.Figure
    """
    plt = _pyplot()
    names = [str(n) for n in _datasets(model, dataset_names)]
    var = np.diagonal(model.covariances_, axis1=1, axis2=2)
    eps = np.asarray(model.noise_variances_)
    K, M = var.shape
    own = axes is None
    if own:
        longest = max(len(n) for n in names)
        slot = max(0.75, 0.085 * longest + 0.3)  # inches per dataset for a horizontal 10-point name
        width = float(np.clip(2.6 + K * slot, 8.0, 14.0))
        fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(width, 6.2), sharex=True, constrained_layout=True,
                                       gridspec_kw={"height_ratios": [2.2, 1]})
    else:
        ax1, ax2 = axes
        fig = ax1.figure
    x = np.arange(K)
    for m, color in enumerate(_factor_colors(M)):
        ax1.plot(x, var[:, m], marker="o", color=color, lw=1.8, label=str(m))
    ax1.set_ylabel("variance Σ_k[i, i]")
    ax1.set_title("(A) factor variances")
    ax1.legend(title="factor", fontsize=8, title_fontsize=8, loc="center left", bbox_to_anchor=(1.0, 0.5),
               frameon=False)
    ax2.bar(x, eps, color="0.45", width=0.6)
    ax2.set_ylabel("noise variance ε_k")
    ax2.set_title("(B) noise variance ε_k")
    for ax in (ax2,) if own else (ax1, ax2):
        ax.set_xticks(x, names)
        ax.set_xlabel("dataset")
    if log:
        ax1.set_yscale("log")
    for ax in (ax1, ax2):
        ax.grid(True, axis="y", alpha=0.3)
    if not own and not fig.get_constrained_layout():
        fig.tight_layout()
    _fit_tick_labels([ax1, ax2])
    return fig


_SCORE_KINDS = ("auto", "line", "points")


def _is_dates(values):
    """True when ``values`` (1-D) are dates: datetime64, or datetime / date / Timestamp objects."""
    import datetime

    a = np.asarray(values)
    if a.dtype.kind == "M":
        return True
    return a.dtype == object and a.size > 0 and all(isinstance(v, (datetime.date, np.datetime64)) for v in a)


def _sample_x(x, groups):
    """The x values of each dataset's samples: ``x`` (K sequences, one value per sample) checked and
    converted (dates kept as dates, anything else to float)."""
    if isinstance(x, (str, bytes)) or not hasattr(x, "__len__"):
        raise ValueError(f"x must be a sequence of {len(groups)} arrays, one per dataset; got {type(x).__name__}")
    x = list(x)
    if len(x) != len(groups):
        raise ValueError(f"x must hold one array per dataset ({len(groups)}); got {len(x)}")
    out = []
    for k, (values, sel) in enumerate(zip(x, groups)):
        a = np.asarray(values)
        if a.ndim != 1 or a.size != sel.size:
            raise ValueError(f"x[{k}] must hold one value per sample of dataset {k} ({sel.size}); got shape {a.shape}")
        if not _is_dates(a):
            try:
                a = a.astype(np.float64)
            except (TypeError, ValueError):
                raise ValueError(f"x[{k}] must hold numbers or dates; got values of dtype {a.dtype}") from None
        out.append(a)
    kinds = {_is_dates(a) for a in out}
    if len(kinds) > 1:
        raise ValueError("x must hold dates for every dataset or for none")
    return out


def _dataset_legend(ax, handles, names, *, fontsize=9):
    """The dataset names in one row above ``ax`` (more rows when one would be wider than the figure)."""
    renderer = _renderer(ax.figure)
    width = ax.figure.bbox.width
    ncol = len(handles)
    while True:
        legend = ax.legend(handles, names, loc="lower center", bbox_to_anchor=(0.5, 1.02), ncol=ncol,
                           frameon=False, fontsize=fontsize, handlelength=1.6, columnspacing=1.4, borderaxespad=0.0)
        if ncol == 1 or legend.get_window_extent(renderer).width <= 0.98 * width:
            return legend
        ncol = -(-len(handles) // (-(-len(handles) // ncol) + 1))  # one more row, the columns balanced


def plot_scores(model, Xs=None, *, scores=None, dataset_names=None, factors=None, axes=None, xlabel=None, x=None,
                kind="auto", marker_size=6.0):
    """Latent scores of the samples: one panel per factor, the datasets in colours.

    Where the samples stand on the horizontal axis:

    * ``x`` given (one array per dataset, numbers or dates): at those values, every dataset on the
      same axis (datasets with overlapping x ranges overlay; disjoint ones, in order, are split by
      dashed lines);
    * else, when every sample label is a date (``Xs`` DataFrames with a ``DatetimeIndex``, or a
      ``scores`` table whose ``sample`` column holds dates): at those dates;
    * else at their positions 0..N−1, the datasets side by side in order, split by dashed lines.

    Dates get a date axis (``AutoDateLocator`` with a ``ConciseDateFormatter``). The dataset names
    are a legend above the top panel, in one row when it fits the figure's width. Panels are the
    model's factors in its order (``components_`` rows), labelled ``factor 0, 1, ...`` as elsewhere.

    Parameters
    ----------
    model : fitted MetaGraphicalLasso
    Xs : sequence of K datasets, optional
        The training datasets (scores by :func:`metaglasso.interpret.scores_table`).
    scores : table from :func:`metaglasso.interpret.scores_table`, optional
        Used instead of ``Xs``.
    dataset_names : sequence of K names, optional
    factors : sequence of int, optional
        The factors to draw (default: all).
    axes : sequence of matplotlib Axes, optional
        One per factor drawn.
    xlabel : str, optional
        Label of the horizontal axis; default ``"date"`` on a date axis, none for other given x,
        and for sample positions ``"sample (in order; datasets side by side)"`` (lines) or
        ``"sample (datasets side by side; no order within a dataset)"`` (points).
    x : sequence of K array-likes, optional
        The x value of each sample of each dataset (e.g. its date or time), in the rows' order.
    kind : {"auto", "line", "points"}, default="auto"
        ``"line"`` joins each dataset's samples in their order (a time series); ``"points"`` draws
        one dot per sample, for samples without an order (e.g. cells). ``"auto"``: lines when the
        samples have an order given — ``x``, or dates as sample labels — and points otherwise.
    marker_size : float, default=6
        Area (points²) of a dot of ``kind="points"``.

    Returns
    -------
    matplotlib.figure.Figure
        In each panel, a dataset's samples are one artist labelled with the dataset's name: a
        ``Line2D`` (lines) or a ``PathCollection`` (points).
    """
    from matplotlib.lines import Line2D

    from metaglasso._tables import table_columns
    from metaglasso.interpret import factor_names, scores_table

    plt = _pyplot()
    if kind not in _SCORE_KINDS:
        raise ValueError(f"kind must be one of {_SCORE_KINDS}; got {kind!r}")
    if scores is None:
        if Xs is None:
            raise ValueError("plot_scores needs the datasets Xs or a scores table")
        scores = scores_table(model, Xs, dataset_names=dataset_names)  # the only use of Xs
    names, cols = table_columns(scores)
    t = dict(zip(names, cols))
    M = model.components_.shape[0]
    fnames = factor_names(M)
    missing = [f for f in fnames if f not in t] + [c for c in ("dataset",) if c not in t]
    if missing:
        raise ValueError(f"scores must be a table of scores_table with the columns {missing}")
    factors = list(range(M)) if factors is None else [int(f) for f in factors]
    bad = [f for f in factors if not 0 <= f < M]
    if bad:
        raise ValueError(f"factors must be in [0, {M}); got {bad}")
    ds = np.asarray([str(d) for d in t["dataset"]], dtype=object)
    order = list(dict.fromkeys(ds))
    groups = [np.flatnonzero(ds == d) for d in order]

    # where the samples stand: given x, dates as sample labels, or positions side by side
    if x is not None:
        xs = _sample_x(x, groups)
    elif "sample" in t and _is_dates(t["sample"]):
        xs = [np.asarray(t["sample"])[sel] for sel in groups]
    else:
        xs = None
    ordered = xs is not None
    if xs is None:
        xs = [sel.astype(np.float64) for sel in groups]
    dates = _is_dates(xs[0])
    kind = ("line" if ordered else "points") if kind == "auto" else kind
    if xlabel is None:
        if dates:
            xlabel = "date"
        elif ordered:
            xlabel = ""
        else:
            xlabel = ("sample (in order; datasets side by side)" if kind == "line"
                      else "sample (datasets side by side; no order within a dataset)")
    # dashed lines between datasets whose x ranges are disjoint and in order
    bounds = []
    if all(a.size for a in xs):
        fine = [a.astype("datetime64[ms]") if a.dtype.kind == "M" else a for a in xs]  # half a day is not 0 days
        lo, hi = [np.min(a) for a in fine], [np.max(a) for a in fine]
        if all(h < l for h, l in zip(hi[:-1], lo[1:])):
            bounds = [h + (l - h) / 2 for h, l in zip(hi[:-1], lo[1:])]

    if axes is None:
        fig, axes = plt.subplots(len(factors), 1, figsize=(10, 0.95 * len(factors) + 1.5), sharex=True,
                                 squeeze=False, constrained_layout=True)
        axes = list(axes[:, 0])
    else:
        axes = list(np.ravel(axes))
        if len(axes) != len(factors):
            raise ValueError(f"axes must hold {len(factors)} Axes; got {len(axes)}")
        fig = axes[0].figure
    cmap = plt.get_cmap("tab10")
    colors = [cmap(i % 10) for i in range(len(order))]
    for ax, f in zip(axes, factors):
        y = np.asarray(t[fnames[f]], dtype=np.float64)
        for d, sel, xk, color in zip(order, groups, xs, colors):
            if kind == "line":
                ax.plot(xk, y[sel], lw=0.9, color=color, label=d)
            else:
                ax.scatter(xk, y[sel], s=marker_size, color=color, alpha=0.7, linewidths=0, label=d)
        for b in bounds:
            ax.axvline(b, color="0.6", lw=0.8, ls="--")
        ax.axhline(0, color="0.8", lw=0.6)
        ax.set_ylabel(f"factor {f}", rotation=0, ha="right", va="center", fontsize=9)
        ax.tick_params(axis="y", labelsize=7)
        ax.margins(x=0.005)
        if dates:
            import matplotlib.dates as mdates

            locator = mdates.AutoDateLocator()
            ax.xaxis.set_major_locator(locator)
            ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
    if kind == "line":
        handles = [Line2D([], [], color=c, lw=2.0) for c in colors]
    else:
        handles = [Line2D([], [], color=c, marker="o", ls="none", ms=5) for c in colors]
    _dataset_legend(axes[0], handles, order)
    if xlabel:
        axes[-1].set_xlabel(xlabel)
    if not fig.get_constrained_layout():
        fig.tight_layout()
    return fig


def plot_objective(model, *, axes=None):
    """The objective E over the iterations of a fit, and its gap to the final value (log scale).

    Parameters
    ----------
    model : fitted MetaGraphicalLasso or 1-D array of objective values
    axes : pair of matplotlib Axes, optional

    Returns
    -------
    matplotlib.figure.Figure
    """
    plt = _pyplot()
    hist = np.asarray(getattr(model, "objective_history_", model), dtype=np.float64).ravel()
    if hist.size == 0:
        raise ValueError("the objective history is empty")
    if axes is None:
        fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9, 3.4))
    else:
        ax1, ax2 = axes
        fig = ax1.figure
    it = np.arange(hist.size)
    ax1.plot(it, hist, color="0.2", lw=1.5)
    ax1.set_xlabel("iteration")
    ax1.set_ylabel("objective E")
    ax1.set_title("objective")
    gap = hist - hist[-1]
    keep = gap > 0
    if np.any(keep):
        ax2.semilogy(it[keep], gap[keep], color="tab:blue", lw=1.5)
    ax2.set_xlabel("iteration")
    ax2.set_ylabel("E − E_final")
    ax2.set_title("distance to the final objective")
    for ax in (ax1, ax2):
        ax.grid(True, alpha=0.3)
    fig.tight_layout()
    return fig


def _bic_records(search):
    from metaglasso._tables import pandas_or_none, table_columns

    if hasattr(search, "results_"):
        records = list(search.results_)
    elif isinstance(search, (list, tuple)):
        records = list(search)
    else:
        pd = pandas_or_none()
        if (pd is not None and isinstance(search, pd.DataFrame)) or isinstance(search, dict):
            names, cols = table_columns(search)
            t = dict(zip(names, cols))
            records = [{k: t[k][i] for k in t} for i in range(len(cols[0]))]
        else:
            raise ValueError(f"search must be a fitted MetaGraphicalLassoBIC, its results_ or a table; got {type(search).__name__}")
    for key in ("n_components", "alpha", "bic"):
        if records and key not in records[0]:
            raise ValueError(f"the BIC records need the key {key!r}")
    if not records:
        raise ValueError("the BIC grid is empty")
    return records


def plot_bic(search, *, ax=None):
    """BIC over the penalty ρ, one line per number of factors M; the smallest BIC is starred.

    Parameters
    ----------
    search : fitted MetaGraphicalLassoBIC, its ``results_`` or a table with the columns
        ``n_components``, ``alpha`` and ``bic``
    ax : matplotlib Axes, optional

    Returns
    -------
    matplotlib.figure.Figure
    """
    plt = _pyplot()
    records = _bic_records(search)
    if ax is None:
        fig, ax = plt.subplots(figsize=(6, 4))
    else:
        fig = ax.figure
    ms = sorted({int(r["n_components"]) for r in records})
    colors = _factor_colors(max(len(ms), 1))
    for color, m in zip(colors, ms):
        pts = sorted((float(r["alpha"]), float(r["bic"])) for r in records if int(r["n_components"]) == m)
        ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", color=color, label=f"M = {m}")
    best = min(records, key=lambda r: float(r["bic"]))
    ax.plot([float(best["alpha"])], [float(best["bic"])], marker="*", ms=18, color="gold", mec="black",
            ls="none", zorder=5, label=f"best: M = {int(best['n_components'])}, ρ = {float(best['alpha']):g}")
    alphas = [float(r["alpha"]) for r in records]
    if min(alphas) > 0 and max(alphas) / min(alphas) > 20:
        ax.set_xscale("log")
    ax.set_xlabel("penalty ρ")
    ax.set_ylabel("BIC")
    ax.set_title("BIC over the grid (smaller is better)")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------------------------
# Enrichment
# --------------------------------------------------------------------------------------------

_SIGN_MARK = {"pos": "+", "neg": "−", "abs": "±"}


def enrichment_dot_sizes(values, size, *, dot_size=300.0):
    """The marker areas (points²) of :func:`plot_enrichment` for the ``size`` column's values.

    ``"auc"`` is drawn as its distance from no effect, ``|2·auc − 1|`` (the absolute
    rank-biserial correlation, in [0, 1]); any other column by its absolute value. Areas are
    ``dot_size`` · value / (largest value), at least 2 % of ``dot_size``.
    """
    v = np.abs(np.asarray(values, dtype=np.float64))
    if size == "auc":
        v = np.abs(2.0 * np.asarray(values, dtype=np.float64) - 1.0)
    top = float(np.max(v)) if v.size else 0.0
    scaled = v / top if top > 0 else np.ones_like(v)
    return np.maximum(dot_size * scaled, 0.02 * dot_size)


def plot_enrichment(table, *, size=None, alpha=0.05, factors=None, gene_sets=None, ax=None, dot_size=300.0,
                    cmap="viridis", title=None):
    """Dot plot of an enrichment table: one column per factor (and sign), one row per gene set.

    Each row of ``table`` is one dot: its area shows ``size`` (see :func:`enrichment_dot_sizes`)
    and its colour −log10 of the adjusted p-value; dots with adjusted p < ``alpha`` get a black
    edge. Pairs without a row (e.g. no overlap with the top list) stay empty. When a factor and
    gene set were tested in more than one direction (the ``pos`` and ``neg`` top lists), each
    factor gets a column per direction (``3+``, ``3−``); otherwise (a two-sided rank test) one
    column, and each dot is marked + or − by the direction of the shift.

    Parameters
    ----------
    table : table of :func:`metaglasso.enrichment.gene_set_enrichment` or
        :func:`~metaglasso.enrichment.gene_set_rank_enrichment` (DataFrame or dict of arrays)
        Needs the columns ``factor``, ``gene_set`` and ``p_adjusted``; ``sign`` is optional.
    size : str, optional
        The column shown by the dot areas: default ``"n_overlap"`` when the table has it (the
        hypergeometric test), else ``"auc"`` (the rank test).
    alpha : float, default=0.05
    factors, gene_sets : sequences, optional
        The factors and gene sets to show, in this order (default: all, as they first appear).
    ax : matplotlib Axes, optional
    dot_size : float, default=300
        Area (points²) of the largest dot.
    cmap : str, default="viridis"
    title : str, optional

    Returns
    -------
    matplotlib.figure.Figure
        The dots are the Axes' collection labelled ``"dots"``, in the order of the table's rows.
    """
    from metaglasso._tables import table_columns

    plt = _pyplot()
    names, cols = table_columns(table)
    t = dict(zip(names, cols))
    missing = [c for c in ("factor", "gene_set", "p_adjusted") if c not in t]
    if missing:
        raise ValueError(f"table needs the columns {missing} (an enrichment table)")
    if size is None:
        size = "n_overlap" if "n_overlap" in t else "auc"
    if size not in t:
        raise ValueError(f"size must be a column of the table; got {size!r}")
    factor = np.asarray(t["factor"]).astype(np.int64)
    sets = np.asarray([str(g) for g in t["gene_set"]], dtype=object)
    signs = np.asarray([str(s) for s in t["sign"]], dtype=object) if "sign" in t else np.full(factor.size, "", object)
    keep = np.ones(factor.size, dtype=bool)
    if factors is not None:
        factors = [int(f) for f in factors]
        keep &= np.isin(factor, factors)
    if gene_sets is not None:
        gene_sets = [str(g) for g in gene_sets]
        keep &= np.isin(sets, gene_sets)
    factor, sets, signs = factor[keep], sets[keep], signs[keep]
    values = np.asarray(t[size], dtype=np.float64)[keep]
    padj = np.asarray(t["p_adjusted"], dtype=np.float64)[keep]
    # one column per factor and sign when a pair (factor, gene set) was tested in more than one
    # direction (e.g. the pos and neg top lists); otherwise one column per factor
    split = len(set(zip(factor.tolist(), sets.tolist(), signs.tolist()))) > len(set(zip(factor.tolist(),
                                                                                         sets.tolist())))
    sign_order = {"pos": 0, "neg": 1, "abs": 2}

    def column(f, s):
        return f"{f}{_SIGN_MARK.get(s, s)}" if split else str(f)

    def factor_rank(f):
        return factors.index(f) if factors else f

    if split:
        col_keys = sorted(set(zip(factor.tolist(), signs.tolist())),
                          key=lambda k: (factor_rank(k[0]), sign_order.get(k[1], 3)))
    else:
        col_keys = sorted({(f, "") for f in factor.tolist()}, key=lambda k: factor_rank(k[0]))
    x_of = {column(f, s): i for i, (f, s) in enumerate(col_keys)}
    row_names = gene_sets if gene_sets is not None else list(dict.fromkeys(sets.tolist()))
    y_of = {g: i for i, g in enumerate(row_names)}
    x = np.asarray([x_of[column(f, s)] for f, s in zip(factor, signs)], dtype=np.float64)
    y = np.asarray([y_of[g] for g in sets], dtype=np.float64)
    with np.errstate(divide="ignore"):
        score = -np.log10(np.clip(padj, 1e-300, 1.0))
    if ax is None:
        longest = max((len(g) for g in row_names), default=4)
        width = 0.45 * len(x_of) + 0.075 * longest + 2.6  # dots, gene-set labels, colour bar
        fig, ax = plt.subplots(figsize=(max(5.0, width), max(2.5, 0.36 * len(row_names) + 1.8)))
    else:
        fig = ax.figure
    sig = padj < alpha
    dots = ax.scatter(x, y, s=enrichment_dot_sizes(values, size, dot_size=dot_size), c=score, cmap=cmap,
                      vmin=0.0, vmax=max(float(score.max()) if score.size else 1.0, -np.log10(alpha)),
                      edgecolors=np.where(sig[:, None], [[0, 0, 0, 1]], [[0, 0, 0, 0]]), linewidths=1.2,
                      label="dots", zorder=2)
    if not split and set(signs) & {"pos", "neg"}:
        from matplotlib import patheffects

        halo = [patheffects.withStroke(linewidth=2, foreground="white")]
        for xi, yi, si in zip(x, y, signs):  # the direction of a two-sided test's shift
            ax.annotate(_SIGN_MARK.get(si, ""), (xi, yi), ha="center", va="center", fontsize=8, zorder=3,
                        path_effects=halo)
    ax.set_xticks(np.arange(len(x_of)), list(x_of))
    ax.set_yticks(np.arange(len(row_names)), row_names)
    ax.set_xlim(-0.6, len(x_of) - 0.4)
    ax.set_ylim(len(row_names) - 0.4, -0.6)
    ax.set_xlabel("factor" + ("\n(+: positive loadings, −: negative)" if split else "")
                  + ("\n(+/−: the set's loadings are higher/lower)" if not split and set(signs) & {"pos", "neg"} else ""))
    ax.grid(True, alpha=0.25, zorder=0)
    cbar = fig.colorbar(dots, ax=ax, pad=0.02, fraction=0.05)
    cbar.set_label("−log10 adjusted p")
    label = "|2·AUC − 1|" if size == "auc" else size
    ax.set_title(title or f"dot area: {label}\nblack edge: adjusted p < {alpha:g}", fontsize=9)
    fig.tight_layout()
    return fig
