"""Figures render headless (Agg) and draw what the model holds."""

import io
import subprocess
import sys

import numpy as np
import pytest

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from metaglasso import MetaGraphicalLasso, MetaGraphicalLassoBIC, interpret, partial_correlations, plotting  # noqa: E402
from metaglasso.datasets import make_synthetic  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::metaglasso.exceptions.GridEdgeWarning")  # grids chosen for speed


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def fitted():
    Xs, truth = make_synthetic(40, 120, 3, 4, random_state=0)
    model = MetaGraphicalLasso(n_components=4, alpha=0.02).fit(Xs)
    return Xs, truth, model


def _render(fig):
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=40)
    assert buf.getvalue()[:8] == b"\x89PNG\r\n\x1a\n"


def _edges(ax):
    (lines,) = [c for c in ax.collections if c.get_label() == "edges"]
    return lines


def _known_precisions():
    """Three 5 × 5 precision matrices with 0, 1 and 4 edges (signs known)."""
    P = np.stack([np.eye(5) * 2.0 for _ in range(3)])
    P[1, 0, 1] = P[1, 1, 0] = -0.5  # positive partial correlation
    for i, j, v in [(0, 2, 0.4), (1, 3, -0.3), (2, 4, 0.2), (3, 4, -0.6)]:
        P[2, i, j] = P[2, j, i] = v
    return P


def test_networks_edges_per_panel():
    P = _known_precisions()
    fig = plotting.plot_networks(P, dataset_names=["a", "b", "c"])
    axes = [ax for ax in fig.axes if ax.get_visible()]
    assert len(axes) == 3
    counts = [len(_edges(ax).get_segments()) for ax in axes]
    assert counts == [0, 1, 4]
    assert [int(np.count_nonzero(np.triu(p, 1))) for p in P] == counts
    # same node positions in every panel
    offsets = [ax.collections[1].get_offsets() for ax in axes]
    for off in offsets[1:]:
        np.testing.assert_array_equal(off, offsets[0])
    assert offsets[0].shape == (5, 2)
    # colours: blue for positive partial correlations (negative precision entries), red for negative
    colors = _edges(axes[2]).get_colors()
    pc = partial_correlations(P[2])
    iu, ju = np.triu_indices(5, 1)
    vals = np.sort(pc[iu, ju][P[2][iu, ju] != 0])
    n_pos = int(np.sum(vals > 0))
    blue = matplotlib.colors.to_rgba(plotting.POSITIVE_COLOR, alpha=0.85)
    assert sum(np.allclose(c, blue) for c in colors) == n_pos
    widths = np.sort(_edges(axes[2]).get_linewidths())
    np.testing.assert_allclose(widths, np.sort(np.maximum(6.0 * np.abs(vals), 0.4)))
    assert [ax.get_title().splitlines()[0] for ax in axes] == ["a", "b", "c"]
    _render(fig)


def test_networks_with_truth_and_model(fitted):
    Xs, truth, model = fitted
    fig = plotting.plot_networks(model, truth=truth, dataset_names=["x", "y", "z"], layout="spring")
    axes = [ax for ax in fig.axes if ax.get_visible()]
    assert len(axes) == 6
    est_counts = [len(_edges(ax).get_segments()) for ax in axes[3:]]
    assert est_counts == [int(np.count_nonzero(np.triu(p, 1))) for p in model.precisions_]
    truth_counts = [len(_edges(ax).get_segments()) for ax in axes[:3]]
    assert truth_counts == [int(np.count_nonzero(np.triu(p, 1))) for p in truth.precisions]
    assert axes[0].get_title().startswith("truth: x")
    # node areas ∝ variances, relative to the largest over all panels
    var = np.diagonal(model.covariances_, axis1=1, axis2=2)
    tvar = np.diagonal(truth.covariances, axis1=1, axis2=2)
    vmax = max(var.max(), tvar.max())
    sizes = axes[3].collections[1].get_sizes()
    np.testing.assert_allclose(sizes, np.maximum(900 * var[0] / vmax, 900 * 0.04))
    _render(fig)


def _shared_precisions():
    """Three 4 × 4 precision matrices: (0, 1) in all three with one value, (0, 2) in all three with
    two values, (1, 3) in datasets 0 and 2, (2, 3) in dataset 1 only."""
    P = np.stack([2.0 * np.eye(4) for _ in range(3)])
    for (i, j), vals in {(0, 1): [-0.5, -0.5, -0.5], (0, 2): [-0.2, -0.2, -0.3], (1, 3): [0.3, 0.0, 0.3],
                         (2, 3): [0.0, -0.4, 0.0]}.items():
        P[:, i, j] = P[:, j, i] = vals
    return P


def _heat_map(fig):
    (ax,) = [ax for ax in fig.axes if ax.images]
    return ax, ax.images[0].get_array()


def test_edge_differences_heat_map():
    from types import SimpleNamespace

    model = SimpleNamespace(components_=np.eye(4, 6), precisions_=_shared_precisions())
    fig = plotting.plot_edge_differences(model, dataset_names=["a", "b", "c"])
    ax, data = _heat_map(fig)
    assert data.shape == (4, 3)  # rows: edges in the table's order; columns: datasets
    np.testing.assert_array_equal(np.ma.getmaskarray(data), [[1, 0, 1], [0, 1, 0], [0, 0, 0], [0, 0, 0]])
    table = interpret.edge_differences_table(model, dataset_names=["a", "b", "c"])
    np.testing.assert_array_equal(data.filled(0.0), table[["a", "b", "c"]].to_numpy())
    assert [t.get_text() for t in ax.get_yticklabels()] == ["f2–f3", "f1–f3", "f0–f2", "f0–f1"]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["a", "b", "c"]
    (right,) = ax.child_axes
    assert [t.get_text() for t in right.get_yticklabels()] == ["differs (1/3)", "differs (2/3)", "shared", "fused"]
    (dots,) = [c for c in ax.collections if c.get_label() == "present"]
    assert len(dots.get_offsets()) == 9  # one per (edge, dataset) present: 1 + 2 + 3 + 3
    vmin, vmax = ax.images[0].get_clim()
    assert vmin == -vmax and vmax == pytest.approx(0.25, rel=1e-15)  # symmetric: the largest |partial correlation|
    assert ax.get_title() == "4 edges: 2 in all 3 datasets (1 fused), 2 differ"
    _render(fig)

    fig = plotting.plot_edge_differences(model, max_edges=3)
    ax, data = _heat_map(fig)
    assert data.shape == (3, 3)
    assert ax.get_title().splitlines()[1].startswith("showing 3 of 4 edges (max_edges=3)")
    assert [t.get_text() for t in ax.get_xticklabels()] == ["0", "1", "2"]
    _render(fig)
    assert _heat_map(plotting.plot_edge_differences(model, max_edges=None))[1].shape == (4, 3)

    fig = plotting.plot_edge_differences(model, tol=0.3)  # no edge is that strong
    assert not any(ax.images for ax in fig.axes)
    assert any(t.get_text() == "no edges" for t in fig.axes[0].texts)
    _render(fig)
    with pytest.raises(ValueError, match="max_edges must be an integer >= 1 or None"):
        plotting.plot_edge_differences(model, max_edges=0)


def test_edge_differences_of_a_fit(fitted):
    _, _, model = fitted
    _, ax = plt.subplots()
    fig = plotting.plot_edge_differences(model, ax=ax, max_edges=5)
    assert fig is ax.figure
    n = len(interpret.edge_differences_table(model))
    assert ax.images[0].get_array().shape == (min(n, 5), 3)
    assert ("showing 5 of" in ax.get_title()) == (n > 5)
    _render(fig)


def test_networks_show_shared_edges_solid():
    P = _shared_precisions()
    pos = plotting.network_layout(np.zeros((4, 4)))
    fig = plotting.plot_networks(P, show_shared=True)
    axes = [ax for ax in fig.axes if ax.get_visible()]
    for k, ax in enumerate(axes):
        lines = _edges(ax)
        pairs = [tuple(sorted(int(np.argmin(np.linalg.norm(pos - end, axis=1))) for end in seg))
                 for seg in lines.get_segments()]
        solid = {pair: dashes is None for pair, (_, dashes) in zip(pairs, lines.get_linestyles())}
        expected = {(0, 1): True, (0, 2): True, (1, 3): False, (2, 3): False}  # (0, 1), (0, 2): in every dataset
        assert solid == {pair: expected[pair] for pair in pairs}, k
    assert len(fig.legends[0].get_texts()) == 4
    plain = plotting.plot_networks(P)
    assert all(dashes is None for ax in plain.axes if ax.get_visible()
               for _, dashes in _edges(ax).get_linestyles())
    assert len(plain.legends[0].get_texts()) == 2
    _render(fig)


def test_other_figures_render(fitted):
    Xs, _, model = fitted
    _render(plotting.plot_variances(model, dataset_names=["a", "b", "c"]))
    fig = plotting.plot_scores(model, Xs)
    assert len(fig.axes) == 4
    assert len(_score_artists(fig.axes[0])) == 3  # one per dataset
    _render(fig)
    _render(plotting.plot_scores(model, scores=interpret.scores_table(model, Xs), factors=[0, 2]))
    _render(plotting.plot_objective(model))
    search = MetaGraphicalLassoBIC([2, 4], [0.02, 0.1]).fit(Xs)
    fig = plotting.plot_bic(search)
    assert len(fig.axes[0].lines) == 3  # one per M and the best point
    _render(fig)
    _render(plotting.plot_bic(search.results_))


def _enrichment_tables():
    from metaglasso.enrichment import gene_set_enrichment, gene_set_rank_enrichment

    rng = np.random.default_rng(3)
    genes = [f"G{i}" for i in range(120)]
    L = rng.normal(size=(120, 3))
    L[:15, 0] += 3.0
    L[20:35, 2] -= 3.0
    sets = {"A": genes[:15], "B": genes[20:35], "C": genes[60:90]}
    hyper = gene_set_enrichment(L, sets, n_top=15, variable_names=genes)
    rank = gene_set_rank_enrichment(L, sets, variable_names=genes)
    return hyper, rank, sets


def test_enrichment_dot_plot():
    hyper, rank, sets = _enrichment_tables()
    fig = plotting.plot_enrichment(hyper)
    ax = fig.axes[0]
    (dots,) = [c for c in ax.collections if c.get_label() == "dots"]
    assert len(dots.get_offsets()) == len(hyper)  # one dot per row
    overlap = hyper["n_overlap"].to_numpy()
    np.testing.assert_allclose(dots.get_sizes(), np.maximum(300.0 * overlap / overlap.max(), 6.0))
    np.testing.assert_allclose(dots.get_array(), -np.log10(hyper["p_adjusted"].to_numpy()))
    # columns: factor and sign (both signs present), rows: gene sets
    labels = [t.get_text() for t in ax.get_xticklabels()]
    assert labels[:2] == ["0+", "0−"] and len(labels) == len(set(zip(hyper["factor"], hyper["sign"])))
    rows = [t.get_text() for t in ax.get_yticklabels()]
    assert set(rows) == set(hyper["gene_set"])
    x, y = dots.get_offsets()[0]
    assert labels[int(x)] == f"{hyper['factor'].iloc[0]}{'+' if hyper['sign'].iloc[0] == 'pos' else '−'}"
    assert rows[int(y)] == hyper["gene_set"].iloc[0]
    edges = dots.get_edgecolors()
    assert sum(e[3] > 0 for e in edges) == int(np.sum(hyper["p_adjusted"] < 0.05))
    _render(fig)

    fig = plotting.plot_enrichment(rank, gene_sets=["C", "A"], dot_size=100)
    ax = fig.axes[0]
    (dots,) = [c for c in ax.collections if c.get_label() == "dots"]
    shown = rank[rank["gene_set"].isin(["C", "A"])]
    assert len(dots.get_offsets()) == len(shown) == 6
    effect = np.abs(2 * shown["auc"].to_numpy() - 1)
    np.testing.assert_allclose(dots.get_sizes(), np.maximum(100.0 * effect / effect.max(), 2.0))
    assert [t.get_text() for t in ax.get_yticklabels()] == ["C", "A"]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["0", "1", "2"]  # two-sided: one column per factor
    _render(fig)
    with pytest.raises(ValueError, match="size must be a column"):
        plotting.plot_enrichment(rank, size="n_overlap")
    with pytest.raises(ValueError, match="table needs the columns"):
        plotting.plot_enrichment({"factor": [0]})


# --------------------------------------------------------------------------------------------
# Layout: labels and titles that do not collide; points for unordered samples; dates; factor order
# --------------------------------------------------------------------------------------------

CELL_TYPES = ["Dendritic", "CD14+ Mono", "CD19+ B", "CD4+ Treg", "CD8+ Cytotox", "CD8+ Naive"]
CELL_COUNTS = [240, 129, 95, 68, 54, 43]  # the PBMC example's cell types


@pytest.fixture(scope="module")
def cell_types():
    Xs, _ = make_synthetic(30, CELL_COUNTS, 6, 3, random_state=1)
    return Xs, MetaGraphicalLasso(n_components=3, alpha=0.05).fit(Xs)


@pytest.fixture(scope="module")
def many_datasets():
    Xs, _ = make_synthetic(20, 30, 15, 2, random_state=0)
    return Xs, MetaGraphicalLasso(n_components=2, alpha=0.05).fit(Xs)


def _labels(ax):
    return [t for t in ax.get_xticklabels() if t.get_visible() and t.get_text()]


def _no_box_overlaps(texts):
    boxes = [t.get_window_extent() for t in texts]
    for i in range(len(boxes)):
        for j in range(i + 1, len(boxes)):
            assert not boxes[i].overlaps(boxes[j]), (texts[i].get_text(), texts[j].get_text())


def _inside(fig, artist):
    box, page = artist.get_window_extent(), fig.bbox
    assert page.x0 - 1 <= box.x0 and box.x1 <= page.x1 + 1 and page.y0 - 1 <= box.y0 and box.y1 <= page.y1 + 1, (
        artist, box, page)


def _glyph_masks(fig, texts):
    """Pixels drawn by each text alone (the others transparent, so the layout is the same)."""
    colors = [t.get_color() for t in texts]
    for t in texts:
        t.set_alpha(0.0)
    fig.canvas.draw()
    base = np.asarray(fig.canvas.buffer_rgba()).copy()
    masks = []
    for t in texts:
        t.set_alpha(1.0)
        fig.canvas.draw()
        masks.append(np.any(np.asarray(fig.canvas.buffer_rgba()) != base, axis=-1))
        t.set_alpha(0.0)
    for t, c in zip(texts, colors):
        t.set_alpha(None)
        t.set_color(c)
    return masks


def test_variance_figure_dataset_names_do_not_overlap(cell_types):
    _, model = cell_types
    fig = plotting.plot_variances(model, dataset_names=CELL_TYPES)
    fig.canvas.draw()
    ax1, ax2 = fig.axes[:2]
    labels = _labels(ax2)
    assert [t.get_text() for t in labels] == CELL_TYPES
    assert all(t.get_rotation() == 0 for t in labels)  # room enough to stay horizontal
    _no_box_overlaps(labels)
    for t in labels:
        _inside(fig, t)
    # (A) above (B) on the same dataset axis; the names are written once, under (B)
    assert ax1.get_window_extent().y0 > ax2.get_window_extent().y1
    assert _labels(ax1) == []
    assert ax1.get_xlim() == ax2.get_xlim()
    # the names do not run into the panels or the axis label
    for ax in (ax1, ax2):
        box = ax.get_window_extent()
        assert all(t.get_window_extent().y1 <= box.y0 for t in labels)
    assert all(t.get_window_extent().y0 >= ax2.xaxis.label.get_window_extent().y1 for t in labels)


def test_variance_figure_turns_names_that_do_not_fit(many_datasets):
    _, model = many_datasets
    names = [f"a long dataset name {k}" for k in range(15)]
    fig = plotting.plot_variances(model, dataset_names=names)
    fig.canvas.draw()
    labels = _labels(fig.axes[1])
    assert [t.get_text() for t in labels] == names
    assert {t.get_rotation() for t in labels} == {45.0}
    assert {t.get_horizontalalignment() for t in labels} == {"right"}
    for t in labels:
        _inside(fig, t)
    masks = _glyph_masks(fig, labels)
    assert all(m.any() for m in masks)
    for i in range(len(masks) - 1):
        assert not np.any(masks[i] & masks[i + 1]), names[i]
    # given axes side by side: each gets the names, which do not overlap either
    fig, axes = plt.subplots(1, 2, figsize=(8, 3))
    plotting.plot_variances(model, dataset_names=[f"dataset {k}" for k in range(15)], axes=axes)
    fig.canvas.draw()
    for ax in axes:
        labels = _labels(ax)
        assert len(labels) == 15
        if labels[0].get_rotation() in (0.0, 90.0):
            _no_box_overlaps(labels)
        else:
            masks = _glyph_masks(fig, labels)
            assert not any(np.any(a & b) for a, b in zip(masks, masks[1:]))


def _score_artists(ax):
    """The samples of each dataset in a panel of plot_scores: the artists labelled with a dataset name
    (not the zero line, the dashed dataset boundaries or matplotlib's own '_' labels)."""
    return [a for a in list(ax.lines) + list(ax.collections) if not a.get_label().startswith("_")]


def _dataset_titles(fig):
    (legend,) = [lg for lg in (ax.get_legend() for ax in fig.axes) if lg is not None]
    return legend, legend.get_texts()


def test_score_dataset_titles_do_not_overlap(cell_types, many_datasets):
    Xs, model = cell_types
    fig = plotting.plot_scores(model, Xs, dataset_names=CELL_TYPES)
    fig.canvas.draw()
    legend, titles = _dataset_titles(fig)
    assert [t.get_text() for t in titles] == CELL_TYPES
    _no_box_overlaps(titles)
    _inside(fig, legend)
    for ax in fig.axes:
        assert not legend.get_window_extent().overlaps(ax.get_window_extent())
    assert legend.get_window_extent().y0 >= fig.axes[0].get_window_extent().y1
    # the panels' factor labels do not collide with each other or with the tick labels
    ylabels = [ax.yaxis.label for ax in fig.axes]
    _no_box_overlaps(ylabels)
    for ax in fig.axes:
        for t in ax.get_yticklabels():
            if t.get_visible() and t.get_text():
                assert not t.get_window_extent().overlaps(ax.yaxis.label.get_window_extent())

    # many long names: more rows, still inside the figure and apart
    Xs, model = many_datasets
    names = [f"a rather long dataset name {k}" for k in range(15)]
    fig = plotting.plot_scores(model, Xs, dataset_names=names)
    fig.canvas.draw()
    legend, titles = _dataset_titles(fig)
    assert [t.get_text() for t in titles] == names
    assert len({round(t.get_window_extent().y0) for t in titles}) > 1  # several rows
    _no_box_overlaps(titles)
    _inside(fig, legend)
    assert not any(legend.get_window_extent().overlaps(ax.get_window_extent()) for ax in fig.axes)


def test_scores_of_unordered_samples_are_points(cell_types):
    Xs, model = cell_types
    table = interpret.scores_table(model, Xs, dataset_names=CELL_TYPES)
    starts = np.cumsum([0] + CELL_COUNTS)
    for fig in (plotting.plot_scores(model, Xs, dataset_names=CELL_TYPES),  # default for arrays
                plotting.plot_scores(model, Xs, dataset_names=CELL_TYPES, kind="points")):
        for m, ax in enumerate(fig.axes):
            artists = _score_artists(ax)
            assert [a.get_label() for a in artists] == CELL_TYPES
            assert all(isinstance(a, matplotlib.collections.PathCollection) for a in artists)
            # no line through the samples: the only lines are the zero line and the dataset boundaries
            assert all(len(line.get_xdata()) == 2 for line in ax.lines)
            for k, a in enumerate(artists):
                xy = a.get_offsets()
                np.testing.assert_array_equal(xy[:, 0], np.arange(starts[k], starts[k + 1]))
                np.testing.assert_allclose(xy[:, 1], table[f"factor_{m}"].to_numpy()[starts[k]:starts[k + 1]])
        assert fig.axes[-1].get_xlabel() == "sample (datasets side by side; no order within a dataset)"
        _, titles = _dataset_titles(fig)
        handles = _dataset_titles(fig)[0].legend_handles if hasattr(_dataset_titles(fig)[0], "legend_handles") \
            else _dataset_titles(fig)[0].legendHandles
        assert all(h.get_linestyle() in ("None", "none", "") and h.get_marker() == "o" for h in handles)
    # lines on request, as before: one Line2D per dataset through its samples in order
    fig = plotting.plot_scores(model, Xs, dataset_names=CELL_TYPES, kind="line")
    artists = _score_artists(fig.axes[0])
    assert all(isinstance(a, matplotlib.lines.Line2D) for a in artists) and len(artists) == 6
    np.testing.assert_array_equal(artists[2].get_xdata(), np.arange(starts[2], starts[3]))
    assert not [c for c in fig.axes[0].collections if not c.get_label().startswith("_")]
    assert fig.axes[-1].get_xlabel() == "sample (in order; datasets side by side)"
    # the dashed boundaries between datasets, half-way between the last and first sample
    bounds = sorted(line.get_xdata()[0] for line in fig.axes[0].lines if line.get_linestyle() == "--")
    np.testing.assert_allclose(bounds, starts[1:-1] - 0.5)
    with pytest.raises(ValueError, match="kind must be one of"):
        plotting.plot_scores(model, Xs, kind="bars")


def _year_dates(sizes):
    import datetime

    dates = np.arange(np.datetime64("2015-03-20"), np.datetime64("2017-04-01"))
    dates = dates[[datetime.date.fromisoformat(str(d)).weekday() < 5 for d in dates]]
    cut = np.cumsum([0] + list(sizes))
    return [dates[a:b] for a, b in zip(cut[:-1], cut[1:])]


def test_scores_over_given_dates(fitted):
    import matplotlib.dates as mdates

    Xs, _, model = fitted
    dates = _year_dates([len(X) for X in Xs])
    fig = plotting.plot_scores(model, Xs, x=dates, dataset_names=[2015, 2016, 2017])
    table = interpret.scores_table(model, Xs)
    for m, ax in enumerate(fig.axes):
        artists = _score_artists(ax)
        assert all(isinstance(a, matplotlib.lines.Line2D) for a in artists)  # dates: lines by default
        for k, a in enumerate(artists):
            np.testing.assert_array_equal(a.get_xdata(), dates[k])
            np.testing.assert_allclose(a.get_ydata(), table[f"factor_{m}"].to_numpy()[120 * k:120 * (k + 1)])
        assert isinstance(ax.xaxis.get_major_formatter(), mdates.ConciseDateFormatter)
        assert isinstance(ax.xaxis.get_major_locator(), mdates.AutoDateLocator)
        lo, hi = mdates.num2date(ax.get_xlim())
        assert lo.date() <= dates[0][0].astype(object) and hi.date() >= dates[-1][-1].astype(object)
    ax = fig.axes[-1]
    assert ax.get_xlabel() == "date"
    fig.canvas.draw()
    ticks = [t.get_text() for t in ax.get_xticklabels() if t.get_visible() and t.get_text()]
    months = {"Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"}
    assert "2016" in ticks and all(t in months or t in ("2015", "2016") for t in ticks)  # not day numbers
    _no_box_overlaps([t for t in ax.get_xticklabels() if t.get_visible() and t.get_text()])
    # one boundary between consecutive years, between the last day of one and the first of the next
    bounds = sorted(line.get_xdata()[0] for line in ax.lines if line.get_linestyle() == "--")
    assert len(bounds) == 2
    for b, (a, c) in zip(bounds, zip(dates[:-1], dates[1:])):
        assert mdates.date2num(a[-1]) < mdates.date2num(b) < mdates.date2num(c[0])

    # points at dates on request
    fig = plotting.plot_scores(model, Xs, x=dates, kind="points")
    (first, *_) = _score_artists(fig.axes[0])
    assert isinstance(first, matplotlib.collections.PathCollection)
    np.testing.assert_allclose(first.get_offsets()[:, 0], mdates.date2num(dates[0]))

    # numbers as x; overlapping ranges overlay without boundaries
    fig = plotting.plot_scores(model, Xs, x=[np.linspace(0, 1, 120)] * 3)
    ax = fig.axes[0]
    assert [len(a.get_xdata()) for a in _score_artists(ax)] == [120] * 3
    assert not [line for line in ax.lines if line.get_linestyle() == "--"]
    assert ax.get_xlabel() == ""
    with pytest.raises(ValueError, match=r"x must hold one array per dataset \(3\); got 2"):
        plotting.plot_scores(model, Xs, x=dates[:2])
    with pytest.raises(ValueError, match=r"x\[1\] must hold one value per sample of dataset 1 \(120\)"):
        plotting.plot_scores(model, Xs, x=[dates[0], dates[1][:5], dates[2]])
    with pytest.raises(ValueError, match="numbers or dates"):
        plotting.plot_scores(model, Xs, x=[np.array(["a"] * 120)] * 3)


def test_scores_take_the_dates_of_dataframes(fitted):
    pd = pytest.importorskip("pandas")
    import matplotlib.dates as mdates

    Xs, _, model = fitted
    dates = _year_dates([len(X) for X in Xs])
    frames = [pd.DataFrame(X, index=pd.DatetimeIndex(d, name="date")) for X, d in zip(Xs, dates)]
    for fig in (plotting.plot_scores(model, frames),
                plotting.plot_scores(model, scores=interpret.scores_table(model, frames))):
        ax = fig.axes[0]
        artists = _score_artists(ax)
        assert all(isinstance(a, matplotlib.lines.Line2D) for a in artists)
        for a, d in zip(artists, dates):
            np.testing.assert_array_equal(mdates.date2num(a.get_xdata()), mdates.date2num(d))
        assert isinstance(ax.xaxis.get_major_formatter(), mdates.ConciseDateFormatter)
    # a plain index is no order: points over the positions
    frames = [pd.DataFrame(X) for X in Xs]
    fig = plotting.plot_scores(model, frames)
    assert all(isinstance(a, matplotlib.collections.PathCollection) for a in _score_artists(fig.axes[0]))


def test_figures_keep_the_model_factor_order(cell_types):
    Xs, model = cell_types
    M = model.components_.shape[0]
    # the model's canonical order: by decreasing variance summed over the datasets
    var = np.diagonal(model.covariances_, axis1=1, axis2=2)
    assert np.all(np.diff(var.sum(axis=0)) <= 0)
    colors = [matplotlib.colors.to_rgba(c) for c in plotting._factor_colors(M)]

    fig = plotting.plot_variances(model)
    ax = fig.axes[0]
    assert [line.get_label() for line in ax.lines] == [str(m) for m in range(M)]
    for m, line in enumerate(ax.lines):
        np.testing.assert_allclose(line.get_ydata(), var[:, m])
        assert matplotlib.colors.to_rgba(line.get_color()) == colors[m]
    assert ax.get_legend().get_title().get_text() == "factor"
    assert [t.get_text() for t in ax.get_legend().get_texts()] == [str(m) for m in range(M)]

    table = interpret.scores_table(model, Xs)
    fig = plotting.plot_scores(model, Xs)
    assert [ax.get_ylabel() for ax in fig.axes] == [f"factor {m}" for m in range(M)]
    for m, ax in enumerate(fig.axes):
        y = np.concatenate([a.get_offsets()[:, 1] for a in _score_artists(ax)])
        np.testing.assert_allclose(y, table[f"factor_{m}"].to_numpy())
        np.testing.assert_allclose(y, np.concatenate([(X - X.mean(0)) @ model.components_[m] for X in Xs]))
    fig = plotting.plot_scores(model, Xs, factors=[2, 0])  # the order asked for
    assert [ax.get_ylabel() for ax in fig.axes] == ["factor 2", "factor 0"]

    fig = plotting.plot_networks(model)
    for k, ax in enumerate(ax for ax in fig.axes if ax.get_visible()):
        nodes = ax.collections[1]
        np.testing.assert_allclose(nodes.get_sizes(), np.maximum(900 * var[k] / var.max(), 36.0))
        np.testing.assert_allclose(nodes.get_offsets(), plotting.network_layout(np.zeros((M, M))))
        assert [t.get_text() for t in ax.texts] == [str(m) for m in range(M)]
        assert [tuple(c) for c in nodes.get_facecolors()] == colors


def test_networks_with_truth_keep_the_estimate_order_and_align_the_truth(fitted):
    Xs, truth, model = fitted
    M = model.components_.shape[0]
    order, signs = interpret.align_factors(model.components_, truth.components)
    assert list(order) != list(range(M))  # the truth's own order differs, so alignment matters here
    fig = plotting.plot_networks(model, truth=truth)
    axes = [ax for ax in fig.axes if ax.get_visible()]
    var = np.diagonal(model.covariances_, axis1=1, axis2=2)
    tvar = np.diagonal(truth.covariances, axis1=1, axis2=2)
    vmax = max(var.max(), tvar.max())
    for k in range(3):
        np.testing.assert_allclose(axes[3 + k].collections[1].get_sizes(), np.maximum(900 * var[k] / vmax, 36.0))
        np.testing.assert_allclose(axes[k].collections[1].get_sizes(),
                                   np.maximum(900 * tvar[k][order] / vmax, 36.0))


def test_plot_errors(fitted):
    Xs, _, model = fitted
    with pytest.raises(ValueError, match="layout must be 'circle', 'spring'"):
        plotting.plot_networks(model, layout="grid")
    with pytest.raises(ValueError, match=r"axes must hold 3 Axes; got 1"):
        _, ax = plt.subplots()
        plotting.plot_networks(model, axes=[ax])
    with pytest.raises(ValueError, match="plot_scores needs the datasets Xs or a scores table"):
        plotting.plot_scores(model)
    with pytest.raises(ValueError, match=r"factors must be in \[0, 4\); got \[7\]"):
        plotting.plot_scores(model, Xs, factors=[7])


def test_missing_matplotlib_message(monkeypatch, fitted):
    _, _, model = fitted
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)
    with pytest.raises(ImportError, match=r"metaglasso\[plot\]"):
        plotting.plot_variances(model)


def test_matplotlib_is_imported_lazily():
    code = "import sys, metaglasso.plotting, metaglasso.interpret; assert 'matplotlib' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
