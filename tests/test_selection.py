"""Model selection by BIC over (M, ρ): the table, the choice and the refit."""

import numpy as np
import pytest

from metaglasso import ConvergenceWarning, GridEdgeWarning, MetaGraphicalLasso, MetaGraphicalLassoBIC, select_model
from metaglasso.datasets import make_synthetic

# The grids below are chosen for speed, and their choice often lies at an edge; the warning is tested below.
pytestmark = pytest.mark.filterwarnings("ignore::metaglasso.exceptions.GridEdgeWarning")


@pytest.fixture(scope="module")
def data():
    Xs, truth = make_synthetic(60, 100, 4, 3, random_state=0)
    return Xs, truth


def test_table_and_choice(data):
    Xs, _ = data
    search = select_model(Xs, [2, 3, 5], [0.05, 0.1])
    table = search.results_
    assert [(r["n_components"], r["alpha"]) for r in table] == [
        (2, 0.1), (2, 0.05), (3, 0.1), (3, 0.05), (5, 0.1), (5, 0.05)]
    bics = [r["bic"] for r in table]
    assert search.best_index_ == int(np.argmin(bics))
    best = table[search.best_index_]
    assert (search.n_components_, search.alpha_) == (best["n_components"], best["alpha"])
    # The data have 3 factors; BIC picks M = 3.
    assert search.n_components_ == 3
    for r in table:
        assert set(r) == {"n_components", "alpha", "beta", "alphas", "bic", "objective", "nonzeros", "n_parameters",
                          "n_iter", "converged", "time", "error"}
        assert r["error"] is None
        assert r["alphas"] == [r["alpha"]] * 4
        K, V, M = 4, 60, r["n_components"]
        assert r["n_parameters"] == r["nonzeros"] + K + V * M - M * (M + 1) // 2


def test_refit_is_the_plain_fit(data):
    Xs, _ = data
    search = MetaGraphicalLassoBIC([2, 3], [0.05, 0.1]).fit(Xs)
    plain = MetaGraphicalLasso(n_components=search.n_components_, alpha=search.alpha_).fit(Xs)
    np.testing.assert_array_equal(search.best_estimator_.components_, plain.components_)
    np.testing.assert_array_equal(search.components_, plain.components_)  # forwarded attribute


def test_cold_grid_points_are_independent_fits(data):
    """With warm_start=False each record is exactly the fit of that point from the PCA start."""
    Xs, _ = data
    search = MetaGraphicalLassoBIC(3, [0.05, 0.1], warm_start=False).fit(Xs)
    for r in search.results_:
        model = MetaGraphicalLasso(n_components=3, alpha=r["alpha"]).fit(Xs)
        assert r["bic"] == model.bic(Xs)
        assert r["objective"] == model.objective_


def test_warm_start_reaches_the_same_optimum(data):
    """Along ρ the warm-started fits reach the cold fits' objective (to 1e-6 relative) here."""
    Xs, _ = data
    warm = MetaGraphicalLassoBIC(3, [0.02, 0.05, 0.1]).fit(Xs)
    cold = MetaGraphicalLassoBIC(3, [0.02, 0.05, 0.1], warm_start=False).fit(Xs)
    for w, c in zip(warm.results_, cold.results_):
        assert w["objective"] == pytest.approx(c["objective"], rel=1e-6)


def test_parallel_chains_match_serial(data):
    Xs, _ = data
    serial = MetaGraphicalLassoBIC([2, 3], [0.05, 0.1]).fit(Xs)
    parallel = MetaGraphicalLassoBIC([2, 3], [0.05, 0.1], n_jobs=2, n_threads=2).fit(Xs)
    for a, b in zip(serial.results_, parallel.results_):
        assert a["bic"] == b["bic"]


@pytest.mark.parametrize("kwargs, match", [
    (dict(n_components=[], alphas=[0.1]), "n_components must contain at least one value"),
    (dict(n_components=[3, 3], alphas=[0.1]), "n_components must not contain duplicates"),
    (dict(n_components=[0], alphas=[0.1]), "n_components must be an integer >= 1"),
    (dict(n_components=[3], alphas=[-0.1]), "alphas must be a finite number >= 0"),
    (dict(n_components=[60], alphas=[0.1]), r"n_components must be smaller than n_features=60; got \[60\]"),
    (dict(n_components=[3], alphas=[0.1], criterion="aic"), "criterion must be one of"),
    (dict(n_components=[3], alphas=[0.1], n_jobs=0), "n_jobs must be an integer >= 1"),
])
def test_errors(data, kwargs, match):
    Xs, _ = data
    with pytest.raises(ValueError, match=match):
        MetaGraphicalLassoBIC(**kwargs).fit(Xs)


def test_unknown_parameter(data):
    Xs, _ = data
    with pytest.raises(ValueError, match=r"invalid MetaGraphicalLasso parameter\(s\).*'alpha'"):
        MetaGraphicalLassoBIC(3, 0.1, alpha=0.2).fit(Xs)
    with pytest.raises(ValueError, match=r"invalid MetaGraphicalLasso parameter\(s\).*'bogus'"):
        MetaGraphicalLassoBIC(3, 0.1).set_params(bogus=1).fit(Xs)


@pytest.mark.filterwarnings("error::metaglasso.exceptions.GridEdgeWarning")
def test_a_choice_at_the_edge_of_the_grid_is_reported(data):
    Xs, _ = data
    # The data have 3 factors: a grid that stops at 3 has its optimum at its edge, one around it does not.
    with pytest.warns(GridEdgeWarning, match=r"n_components=3 is the largest value tried"):
        MetaGraphicalLassoBIC([2, 3], [0.05]).fit(Xs)
    with pytest.warns(GridEdgeWarning, match=r"alpha=0.1 is the largest value tried"):
        search = MetaGraphicalLassoBIC([2, 3, 5], [0.01, 0.1]).fit(Xs)
    assert search.n_components_ == 3
    inside = [r["bic"] for r in MetaGraphicalLassoBIC([2, 3, 5], [0.05]).fit(Xs).results_]
    assert int(np.argmin(inside)) == 1  # the middle M: no warning (the filter above turns one into an error)


def test_grid_fits_short_of_convergence_are_reported_together(data):
    Xs, _ = data
    with pytest.warns(ConvergenceWarning, match=r"2 of the 2 grid fits stopped before converging: M=3 alpha=0.1 "
                                                r"\(2 iterations\), M=3 alpha=0.05 \(2 iterations\)"):
        search = MetaGraphicalLassoBIC(3, [0.05, 0.1], max_iter=2, refit=False).fit(Xs)
    assert not any(r["converged"] for r in search.results_)
