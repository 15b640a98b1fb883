"""Progress callback, Ctrl-C during a fit, and warm starts."""

import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

from metaglasso import FitProgress, MetaGraphicalLasso
from metaglasso.datasets import make_synthetic


@pytest.fixture(scope="module")
def data():
    Xs, _ = make_synthetic(40, 80, 4, 3, random_state=1)
    return Xs


@pytest.mark.filterwarnings("ignore::metaglasso.ConvergenceWarning")  # adam with tol=0 runs to max_iter
@pytest.mark.parametrize("solver", ["lbfgs", "adam"])
def test_callback_sees_every_iteration(data, solver):
    seen = []
    model = MetaGraphicalLasso(n_components=3, alpha=0.05, solver=solver, max_iter=40 if solver == "adam" else None,
                               tol=0 if solver == "adam" else 1e-8, callback=seen.append).fit(data)
    assert [p.iteration for p in seen] == list(range(1, model.n_iter_ + 1))
    assert all(isinstance(p, FitProgress) for p in seen)
    history = model.objective_history_[1:] if solver == "lbfgs" else model.objective_history_
    np.testing.assert_array_equal([p.objective for p in seen], history)
    if solver == "lbfgs":
        assert seen[-1].gradient_norm == model.gradient_norm_


def test_callback_exception_ends_the_fit_and_keeps_the_state(data):
    model = MetaGraphicalLasso(n_components=3, alpha=0.05).fit(data)
    before = model.components_.copy()

    def stop(progress):
        if progress.iteration == 2:
            raise RuntimeError("stop here")

    model.set_params(alpha=0.1, callback=stop)
    with pytest.raises(RuntimeError, match="stop here"):
        model.fit(data)
    np.testing.assert_array_equal(model.components_, before)
    assert model.alpha == 0.1


def test_verbose_prints_progress(data, capsys):
    MetaGraphicalLasso(n_components=3, alpha=0.05, verbose=2).fit(data)
    out = capsys.readouterr().out
    assert "iteration     1  objective" in out and "MetaGraphicalLasso: solver=lbfgs" in out


def test_bad_callback(data):
    with pytest.raises(ValueError, match="callback must be callable or None; got int"):
        MetaGraphicalLasso(n_components=3, callback=3).fit(data)


def test_warm_start_continues_a_fit(data):
    """Two fits of 5 iterations with warm_start reach lower E than one, and continue from the
    first fit's D (the second fit's start objective is the first fit's end objective)."""
    import warnings

    from metaglasso import ConvergenceWarning

    model = MetaGraphicalLasso(n_components=3, alpha=0.05, max_iter=5, warm_start=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(data)
        first = model.objective_
        model.fit(data)
    assert model.objective_history_[0] == pytest.approx(first, rel=1e-12)
    assert model.objective_ < first
    cold = MetaGraphicalLasso(n_components=3, alpha=0.05, max_iter=5, warm_start=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        cold.fit(data)
        objective = cold.objective_
        cold.fit(data)
    assert cold.objective_ == objective  # without warm_start a refit starts again from init


@pytest.mark.skipif(sys.platform == "win32", reason="SIGINT to a child process")
def test_ctrl_c_interrupts_a_long_fit_within_a_second(tmp_path):
    """A child process runs a fit of many seconds; SIGINT after its first iteration raises
    KeyboardInterrupt in the child within one second, and the estimator is left unfitted."""
    script = tmp_path / "long_fit.py"
    script.write_text(textwrap.dedent("""
        import sys, time
        from metaglasso import MetaGraphicalLasso
        from metaglasso.datasets import make_synthetic
        Xs, _ = make_synthetic(300, 200, 20, 10, random_state=0)
        def announce(progress):
            if progress.iteration == 1:
                print("started", flush=True)
        model = MetaGraphicalLasso(n_components=10, alpha=0.05, solver="adam", max_iter=100000, tol=0,
                                   callback=announce)
        try:
            model.fit(Xs)
        except KeyboardInterrupt:
            print(f"interrupted {time.time():.6f} fitted={hasattr(model, 'components_')}", flush=True)
            sys.exit(0)
        sys.exit(3)
    """))
    with subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True, cwd=os.getcwd()) as proc:
        try:
            assert proc.stdout.readline().strip() == "started"
            sent = time.time()
            proc.send_signal(signal.SIGINT)
            line = proc.stdout.readline().split()
            assert proc.wait(timeout=30) == 0
        finally:
            proc.kill()
    assert line[0] == "interrupted" and line[2] == "fitted=False"
    assert float(line[1]) - sent < 1.0
