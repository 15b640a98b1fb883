"""Threading model: concurrent fits from Python threads, and threadpoolctl on the OpenMP pool."""

import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from numpy.testing import assert_array_equal

from metaglasso import MetaGraphicalLasso, _core, graphical_lasso
from metaglasso.datasets import make_synthetic


def _problems():
    a, _ = make_synthetic(120, 90, 4, 4, random_state=11)
    b, _ = make_synthetic(80, 150, 3, 3, random_state=12)
    return [
        (a, dict(n_components=4, alpha=0.05)),
        (b, dict(n_components=3, alpha=0.02, solver="adam", max_iter=40, learning_rate=1e-2, tol=1e-3)),
    ]


def _assert_same_fit(x, y):
    assert_array_equal(x.components_, y.components_)
    assert_array_equal(x.precisions_, y.precisions_)
    assert_array_equal(x.noise_variances_, y.noise_variances_)
    assert_array_equal(x.objective_history_, y.objective_history_)


def test_concurrent_fits_equal_sequential_fits():
    # Two different models fitted at the same time from two Python threads (the core runs without
    # the GIL) give bit for bit the fits made one after the other. The barrier in the callbacks
    # makes sure that both fits are under way at once.
    problems = _problems()
    sequential = [MetaGraphicalLasso(**params).fit(Xs) for Xs, params in problems]
    barrier = threading.Barrier(len(problems), timeout=60)

    def fit(problem):
        Xs, params = problem

        def meet_once(progress):
            if progress.iteration == 1:
                barrier.wait()

        return MetaGraphicalLasso(**params, callback=meet_once).fit(Xs)

    for _ in range(3):
        barrier.reset()
        with ThreadPoolExecutor(max_workers=len(problems)) as pool:
            concurrent = list(pool.map(fit, problems))
        for x, y in zip(concurrent, sequential):
            _assert_same_fit(x, y)


def test_concurrent_graphical_lassos_equal_sequential_ones():
    rng = np.random.default_rng(5)
    covariances = []
    for p in (5, 30, 12, 60) * 4:
        X = rng.standard_normal((2 * p, p)) @ rng.standard_normal((p, p))
        covariances.append(np.cov(X, rowvar=False))
    sequential = [graphical_lasso(S, 0.1) for S in covariances]
    with ThreadPoolExecutor(max_workers=4) as pool:
        concurrent = list(pool.map(lambda S: graphical_lasso(S, 0.1), covariances))
    for (c1, p1), (c2, p2) in zip(concurrent, sequential):
        assert_array_equal(p1, p2)
        assert_array_equal(c1, c2)


def test_threadpoolctl_limits_the_openmp_pool():
    threadpoolctl = pytest.importorskip("threadpoolctl")
    openmp = [lib for lib in threadpoolctl.threadpool_info() if lib["user_api"] == "openmp"]
    if not openmp:
        pytest.skip("the core is built without OpenMP")
    Xs, params = _problems()[0]
    unlimited = MetaGraphicalLasso(**params).fit(Xs)
    before = _core.default_n_threads()
    with threadpoolctl.threadpool_limits(limits=1, user_api="openmp"):
        assert _core.default_n_threads() == 1
        limited = MetaGraphicalLasso(**params).fit(Xs)
    assert _core.default_n_threads() == before
    # The result does not depend on the number of threads.
    _assert_same_fit(limited, unlimited)
