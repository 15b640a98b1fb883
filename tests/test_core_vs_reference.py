"""The C++ core against the pure-NumPy reference, and the two solvers against each other."""

import warnings

import numpy as np
import pytest

from metaglasso import ConvergenceWarning, MetaGraphicalLasso, _core
from metaglasso import reference as ref
from metaglasso.datasets import make_synthetic


@pytest.fixture(scope="module")
def data():
    Xs, _ = make_synthetic(40, [80, 120, 100, 90], 4, 4, random_state=7)
    return Xs


def test_random_starts_and_pca_start_agree(data):
    g = ref.SplitMix64(99)
    assert _core.splitmix64(99, 5) == [g.next() for _ in range(5)]
    np.testing.assert_allclose(_core.random_initial_projection(40, 4, 5), ref.random_initial_projection(40, 4, 5),
                               atol=1e-14)
    np.testing.assert_allclose(_core.pca_initial_projection(data, 4), ref.pca_initial_projection(data, 4), atol=1e-9)


@pytest.mark.parametrize("alpha", [0.0, 0.1])
def test_profile_objective_and_gradient_agree(data, alpha):
    D = _core.random_initial_projection(40, 4, 3)
    f, g = _core.profile_objective(data, D, alpha, glasso_tol=1e-14, glasso_max_iter=100000)
    f_ref, g_ref, _, _ = ref.profile_objective(data, D, alpha, glasso_tol=1e-14)
    assert f == pytest.approx(f_ref, rel=1e-12)
    np.testing.assert_allclose(g, g_ref, rtol=0, atol=1e-9 * np.abs(g_ref).max())


@pytest.mark.parametrize("batch_size", [None, 3])
def test_adam_50_epochs_agrees_with_reference(data, batch_size):
    """Same seed, same start, 50 Adam epochs: D agrees to 1e-8."""
    D0 = _core.random_initial_projection(40, 4, 17)
    with pytest.warns(ConvergenceWarning):
        model = MetaGraphicalLasso(n_components=4, alpha=0.1, solver="adam", init="random", random_state=17,
                                   max_iter=50, batch_size=batch_size, learning_rate=1e-2).fit(data)
    r = ref.fit_adam(data, D0, 0.1, max_iter=50, tol=1e-8, learning_rate=1e-2, batch_size=batch_size, seed=17)
    assert model.n_iter_ == r.n_iter == 50
    np.testing.assert_allclose(model.components_.T, r.components, rtol=0, atol=1e-8)
    np.testing.assert_allclose(model.objective_history_, r.objective_history, rtol=1e-9)
    assert model.objective_ == pytest.approx(r.objective, rel=1e-10)


def test_lbfgs_reaches_the_reference_objective(data):
    D0 = _core.random_initial_projection(40, 4, 21)
    model = MetaGraphicalLasso(n_components=4, alpha=0.1, init="random", random_state=21).fit(data)
    r = ref.fit_lbfgs(data, D0, 0.1)
    assert model.converged_ and r.converged
    assert model.objective_ == pytest.approx(r.objective, rel=1e-8)


def test_lbfgs_beats_5000_adam_epochs_on_the_paper_setup():
    """Paper setup V=100, N=200, K=10, M=10, rho=0.09: L-BFGS reaches an objective <= Adam's
    after 5000 epochs (lr 1e-3), in at most a tenth of the iterations."""
    Xs, _ = make_synthetic(100, 200, 10, 10, random_state=0)
    lbfgs = MetaGraphicalLasso(n_components=10, alpha=0.09).fit(Xs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        adam = MetaGraphicalLasso(n_components=10, alpha=0.09, solver="adam", max_iter=5000, tol=0).fit(Xs)
    assert adam.n_iter_ == 5000
    assert lbfgs.converged_
    assert lbfgs.objective_ <= adam.objective_ + 1e-9 * abs(adam.objective_)
    assert lbfgs.n_iter_ <= adam.n_iter_ // 10
