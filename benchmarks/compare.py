"""Side-by-side timings of metaglasso against scikit-learn, the NumPy reference and NumPy/SciPy.

    python benchmarks/compare.py [--quick] [--only CASE ...] [--out FILE]

Prints a description of the machine and one Markdown table with a row per case of the project's
speed and scale targets; in every row metaglasso and what it is compared with are measured in the
same run. Each measurement runs in its own worker process (this script with ``--task``), which
gives it a fresh heap for its peak RSS and a time limit: a run that exceeds its limit is stopped
and reported as "not finished within" the limit. Where a full run of the slow side would take
more than five minutes it is timed over a shorter run and extrapolated, and the table says so.

``--quick`` shrinks every size for a smoke run of a minute or two; its numbers do not speak to the
targets. ``--out FILE`` also writes the Markdown to FILE, keeping the ``## Dask cluster`` section
of an existing FILE (written by ``dask_cluster.py``) at its end. ``--only CASE ...`` runs only the
cases named (``--help`` lists them), for a row measured on its own; its table has those rows only.
The whole run takes eight to ten minutes on two cores, most of it in the NumPy reference.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
import timeit
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
RESULT_MARK = "RESULT "
GIB = 2.0**30
#: A slow side whose full run is estimated above this many seconds is extrapolated instead.
FULL_RUN_BUDGET = 300.0
#: ρ and λ₂ of the larger fused-against-plain row (V = 2000); those of V = 200 are common.FUSED_RHO, FUSED_BETA.
FUSED_RHO_LARGE, FUSED_BETA_LARGE = 3e-4, 0.1


# =============================================================================================
# Worker tasks: each runs in a fresh process and returns a JSON-able dict
# =============================================================================================


def best_of(fn, repeats=3, budget=10.0):
    """(best wall time, last return value) of up to ``repeats`` runs; stops repeating once the
    runs so far have used ``budget`` seconds."""
    times, value, spent = [], None, 0.0
    for _ in range(repeats):
        t = time.perf_counter()
        value = fn()
        times.append(time.perf_counter() - t)
        spent += times[-1]
        if spent >= budget:
            break
    return min(times), value, len(times)


def per_call(fn, repeats=5):
    """Best time per call over ``repeats`` loops, each long enough (>= 0.2 s) to time (timeit)."""
    timer = timeit.Timer(fn)
    number, _ = timer.autorange()
    return min(timer.repeat(repeat=repeats, number=number)) / number


def task_glasso_small(p, n_samples, rho, gap):
    """Both solvers stop at a duality gap of ``gap``: scikit-learn's tol is an absolute gap, metaglasso's
    tol is per variable (gap ≤ tol·p), so metaglasso gets tol = gap / p."""
    tol = gap / p
    from sklearn.covariance import graphical_lasso as sk_graphical_lasso

    from benchmarks.common import (factor_covariance, glasso_gap, mg_graphical_lasso, mg_graphical_lasso_name,
                                   sparse_precision_covariance)

    def compare(S):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            P_sk, n_iter_sk = sk_graphical_lasso(S, rho, tol=gap, return_n_iter=True)[1:]
        P_mg = mg_graphical_lasso(S, rho, tol)
        P_exact = mg_graphical_lasso(S, rho, 1e-12)
        t_mg = per_call(lambda: mg_graphical_lasso(S, rho, tol))
        t_sk = per_call(lambda: sk_graphical_lasso(S, rho, tol=gap))
        scale = float(np.max(np.abs(P_exact)))
        return dict(
            t_mg=t_mg, t_sk=t_sk, n_iter_sk=int(n_iter_sk), sk_warnings=len(caught),
            gap_mg=glasso_gap(S, rho, P_mg), gap_sk=glasso_gap(S, rho, P_sk),
            err_mg=float(np.max(np.abs(P_mg - P_exact))) / scale,
            err_sk=float(np.max(np.abs(P_sk - P_exact))) / scale,
            diff=float(np.max(np.abs(P_mg - P_sk))) / scale,
        )

    return dict(entry=mg_graphical_lasso_name(),
                sparse=compare(sparse_precision_covariance(p, n_samples)),
                factor=compare(factor_covariance(p, n_samples=n_samples)))


def task_glasso_large(implementation, p, rho, gap):
    """One solver at the duality gap ``gap`` (metaglasso: tol = gap / p; the reference: its fixed-point
    test at ``gap``)."""
    from benchmarks.common import factor_covariance, glasso_gap, mg_graphical_lasso, ref

    S = factor_covariance(p)
    out = dict(implementation=implementation)
    t = time.perf_counter()
    try:
        if implementation == "metaglasso":
            P = mg_graphical_lasso(S, rho, gap / p)
        elif implementation == "sklearn":
            from sklearn.covariance import graphical_lasso as sk_graphical_lasso

            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                P = sk_graphical_lasso(S, rho, tol=gap)[1]
            out["warnings"] = len(caught)
        else:
            P = ref.graphical_lasso(S, rho, tol=gap)[1]
    except (FloatingPointError, ArithmeticError, np.linalg.LinAlgError) as exc:
        first = str(exc).strip().splitlines()[0].split(". ")[0] if str(exc).strip() else ""
        out.update(time=time.perf_counter() - t, error=f"{type(exc).__name__}: {first}")
        return out
    out["time"] = time.perf_counter() - t
    out["gap"] = glasso_gap(S, rho, P)
    out["gap_tol"] = gap
    return out


def task_mg_fit(V, N, K, M, rho, repeats):
    """A default MetaGraphicalLasso fit (PCA start, lbfgs), as a user runs it."""
    from benchmarks.common import mg_fit_pca, paper_problem

    Xs = paper_problem(V, N, K, M)
    t, model, runs = best_of(lambda: mg_fit_pca(Xs, M, rho), repeats=repeats, budget=10.0)
    return dict(time=t, runs=runs, objective=model.objective_, n_iter=model.n_iter_, converged=model.converged_)


def task_mg_fit_factor_analysis(V, N, K, M, rho, repeats):
    """A default fit of data from a model MGLASSO does not fit exactly (metaglasso.datasets.make_factor_analysis)."""
    from benchmarks.common import mg_fit_pca
    from metaglasso.datasets import make_factor_analysis

    Xs, truth = make_factor_analysis(V, N, K, M, random_state=0)
    t, model, runs = best_of(lambda: mg_fit_pca(Xs, M, rho), repeats=repeats, budget=10.0)
    cosines = np.linalg.svd(truth.components @ model.components_.T, compute_uv=False)
    return dict(time=t, runs=runs, objective=model.objective_, n_iter=model.n_iter_, converged=model.converged_,
                smallest_cosine=float(cosines.min()))


def task_fused_fit(V, N, K, M, rho, beta, repeats):
    """A plain and a fused (chain) MetaGraphicalLasso fit of the same data (make_shared_networks, the
    parameters of ``metaglasso reproduce joint``), PCA start counted; the repeats alternate between
    the two, and each keeps its best time."""
    from benchmarks.common import mg_fit_pca, shared_networks_problem

    Xs = shared_networks_problem(V, N, K, M)
    kinds = {"plain": {}, "fused": dict(penalty="fused", beta=beta, fused_pairs="chain")}
    times = {name: [] for name in kinds}
    models, spent = {}, 0.0
    for _ in range(repeats):
        for name, params in kinds.items():
            t = time.perf_counter()
            models[name] = mg_fit_pca(Xs, M, rho, **params)
            times[name].append(time.perf_counter() - t)
            spent += times[name][-1]
        if spent >= 60.0:
            break
    return {name: dict(time=min(times[name]), runs=len(times[name]), n_iter=int(model.n_iter_),
                       converged=bool(model.converged_), objective=float(model.objective_),
                       network_parameters=int(model.n_network_parameters()))
            for name, model in models.items()}


def task_ref_adam(V, N, K, M, rho, epochs):
    from benchmarks.common import mg_pca, paper_problem, ref

    Xs = paper_problem(V, N, K, M)
    D0 = mg_pca(Xs, M, compress=True)
    t = time.perf_counter()
    result = ref.fit_adam(Xs, D0, rho, max_iter=epochs, tol=0.0)
    return dict(time=time.perf_counter() - t, objective=result.objective, epochs=result.n_iter)


def task_mg_adam(V, N, K, M, rho, epochs):
    """metaglasso's Adam (the same algorithm and shuffles as the reference's) for each count."""
    from benchmarks.common import mg_fit, mg_pca, paper_problem

    Xs = paper_problem(V, N, K, M)
    D0 = mg_pca(Xs, M, compress=True)
    out = {}
    for e in epochs:
        t = time.perf_counter()
        model = mg_fit(Xs, D0, rho, solver="adam", max_iter=e, tol=0.0)
        out[str(e)] = dict(time=time.perf_counter() - t, objective=model.objective_)
    return out


def task_ref_lbfgs(V, N, K, M, rho, max_iter):
    from benchmarks.common import mg_pca, paper_problem, ref

    Xs = paper_problem(V, N, K, M)
    D0 = mg_pca(Xs, M, compress=True)
    t = time.perf_counter()
    result = ref.fit_lbfgs(Xs, D0, rho, max_iter=max_iter)
    return dict(time=time.perf_counter() - t, objective=result.objective, n_iter=result.n_iter,
                converged=result.converged)


def task_iteration(V, N, K, M, extra_epochs):
    """metaglasso's time per iteration against the two NumPy GEMMs of the same data.

    An Adam epoch over all K datasets is one profile objective + gradient evaluation and one
    retraction; the time per epoch is the difference between fits of 1 + E and 1 epochs, divided
    by E, so data validation, preparation and the start cancel out.
    """
    from benchmarks.common import RHO, mg_fit, paper_problem, random_projection

    Xs = paper_problem(V, N, K, M)
    D = random_projection(V, M)
    Xc = [X - X.mean(axis=0) for X in Xs]

    def gemms():
        for X in Xc:
            T = X @ D
            X.T @ T

    t_gemm, _, _ = best_of(gemms, repeats=3, budget=30.0)
    del Xc

    def epochs(n):
        return lambda: mg_fit(Xs, D, RHO, solver="adam", max_iter=n, tol=0.0)

    t_one, _, _ = best_of(epochs(1), repeats=2, budget=20.0)
    t_more, _, _ = best_of(epochs(1 + extra_epochs), repeats=2, budget=60.0)
    return dict(t_gemm=t_gemm, t_iter=(t_more - t_one) / extra_epochs, t_one=t_one)


def task_lanczos(N, V, M, tol):
    """metaglasso's PCA start (its default path, and the data-span path where it exists) and ARPACK."""
    from benchmarks.common import (arpack_top_subspace, eigen_residual, has_span_pca, mg_pca, spectrum_data,
                                   subspace_distance)

    X = spectrum_data(N, V)
    t_mg, D_mg, _ = best_of(lambda: mg_pca([X], M, assume_centered=True), repeats=3, budget=10.0)
    t_arpack, D_arpack, _ = best_of(lambda: arpack_top_subspace(X, M, tol), repeats=3, budget=10.0)
    out = dict(t_mg=t_mg, t_arpack=t_arpack, res_mg=eigen_residual(X, D_mg),
               res_arpack=eigen_residual(X, D_arpack), distance=subspace_distance(D_mg, D_arpack))
    if has_span_pca():
        t_span, D_span, _ = best_of(lambda: mg_pca([X], M, assume_centered=True, compress=True), repeats=3,
                                    budget=10.0)
        out.update(t_span=t_span, res_span=eigen_residual(X, D_span))
    return out


def task_scale(V, N, K, M, rho):
    from benchmarks.common import mg_fit_pca, paper_problem

    Xs = paper_problem(V, N, K, M)
    input_bytes = sum(X.nbytes for X in Xs)
    rss_before = peak_rss_self()
    t = time.perf_counter()
    model = mg_fit_pca(Xs, M, rho)
    return dict(time=time.perf_counter() - t, objective=model.objective_, n_iter=model.n_iter_,
                converged=model.converged_, input_bytes=input_bytes, rss_before=rss_before)


TASKS = {name[5:]: fn for name, fn in globals().items() if name.startswith("task_")}


def peak_rss_self():
    """Peak RSS of this process in bytes."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def worker(name, kwargs):
    """Run one task and print its result (or the exception it raised) as a JSON line."""
    sys.path.insert(0, str(HERE))
    try:
        result = TASKS[name](**kwargs)
    except Exception as exc:  # reported in the table, with the traceback on stderr
        import traceback

        traceback.print_exc()
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        result = {"exception": f"{type(exc).__name__}: {message[:160]}"}
    result["peak_rss"] = peak_rss_self()
    print(RESULT_MARK + json.dumps(result), flush=True)


# =============================================================================================
# Running tasks
# =============================================================================================


@dataclass
class Outcome:
    """A task's result, or why there is none."""

    status: str  # "ok", "timeout" or "error"
    result: dict = field(default_factory=dict)
    wall: float = 0.0
    limit: float = 0.0
    peak_rss: float = 0.0
    message: str = ""

    @property
    def ok(self):
        return self.status == "ok"

    def __getitem__(self, key):
        return self.result[key]

    def failure(self):
        """Table text for a task that gave no result."""
        if self.status == "timeout":
            return f"not finished within {self.limit:.0f} s (stopped)"
        return f"error: {self.message}"


def _vm_hwm(pid):
    """Peak RSS (bytes) of a running process from /proc, 0 where unavailable."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return float(line.split()[1]) * 1024
    except OSError:
        pass
    return 0.0


def run_task(name, limit, **kwargs):
    """Run task ``name`` in a worker process, stopping it after ``limit`` seconds."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--task", name, "--kwargs", json.dumps(kwargs)]
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    hwm = 0.0
    while True:
        try:
            out, err = proc.communicate(timeout=0.25)
            break
        except subprocess.TimeoutExpired:
            hwm = max(hwm, _vm_hwm(proc.pid))
            if time.perf_counter() - start > limit:
                proc.kill()
                proc.communicate()
                return Outcome("timeout", wall=time.perf_counter() - start, limit=limit, peak_rss=hwm)
    wall = time.perf_counter() - start
    for line in reversed(out.splitlines()):
        if line.startswith(RESULT_MARK):
            result = json.loads(line[len(RESULT_MARK):])
            peak = max(hwm, result["peak_rss"])
            if "exception" in result:
                return Outcome("error", wall=wall, limit=limit, peak_rss=peak, message=result["exception"])
            return Outcome("ok", result, wall=wall, limit=limit, peak_rss=peak)
    lines = [ln for ln in err.strip().splitlines() if ln.strip()]
    return Outcome("error", wall=wall, limit=limit, peak_rss=hwm,
                   message=lines[-1] if lines else f"worker exited with status {proc.returncode}")


# =============================================================================================
# Formatting
# =============================================================================================


def fmt_time(seconds):
    if seconds < 1e-3:
        return f"{seconds * 1e6:.3g} µs"
    if seconds < 1.0:
        return f"{seconds * 1e3:.3g} ms"
    return f"{seconds:.3g} s"


def fmt_ratio(r):
    return f"{r:,.0f}×" if r >= 100 else f"{r:.3g}×"


def fmt_speedup(ratio, faster="faster", slower="slower"):
    """'12× faster' for a ratio other / metaglasso ≥ 1, '1.2× slower' below."""
    return f"{fmt_ratio(ratio)} {faster}" if ratio >= 1 else f"{fmt_ratio(1 / ratio)} {slower}"


def speedup_verdict(ratio, target):
    """'yes', or by how much ``ratio`` falls short of ``target``."""
    if ratio >= target:
        return "yes"
    return f"no: {fmt_ratio(ratio)}, short of {fmt_ratio(target)} by {target / ratio:.3g}×"


@dataclass
class Row:
    case: str
    metaglasso: str
    against: str
    other: str
    ratio: str
    target: str
    met: str


# =============================================================================================
# Cases
# =============================================================================================


class Cases:
    """The rows of the table, their notes and the sizes of a full or a quick run."""

    def __init__(self, quick):
        self.quick = quick
        self.rows: list[Row] = []
        self.notes: list[str] = []
        s = 0.25 if quick else 1.0  # time limits
        self.limit = lambda seconds: max(20.0, seconds * s)
        self.glasso_p = 200 if quick else 1000
        self.adam_epochs = 500 if quick else 5000
        self.adam_probe = 50 if quick else 200
        self.adam_sizes = (100, 300) if quick else (100, 1000)
        self.gene_V = 2000 if quick else 17_737
        self.iter_size = (2000, 200) if quick else (10_000, 1_000)
        self.lanczos_shapes = ((1_000, 4_000), (200, 20_000)) if quick else ((5_000, 20_000), (1_000, 100_000))
        self.scale_V = 10_000 if quick else 100_000
        from benchmarks.common import FUSED_BETA, FUSED_RHO

        #: (V, N, K, M, ρ, λ₂) of the fused-against-plain rows.
        self.fused_sizes = ((200, 40, 6, 10, FUSED_RHO, FUSED_BETA),) if quick else (
            (200, 40, 6, 10, FUSED_RHO, FUSED_BETA), (2000, 200, 10, 20, FUSED_RHO_LARGE, FUSED_BETA_LARGE))

    def note(self, text):
        self.notes.append(text)
        return len(self.notes)

    def add(self, *cells):
        self.rows.append(Row(*cells))

    # -----------------------------------------------------------------------------------------

    def glasso_small(self):
        rho, gap = 0.1, 1e-4
        o = run_task("glasso_small", self.limit(120), p=20, n_samples=200, rho=rho, gap=gap)
        case = "20×20 glasso, ρ = 0.1, 200-sample covariance, both to a duality gap of 1e-4"
        against = "`sklearn.covariance.graphical_lasso`"
        if not o.ok:
            self.add(case, o.failure(), against, "", "", "≥ 100× faster", "not measured")
            return
        sp, fa = o["sparse"], o["factor"]
        ratio = sp["t_sk"] / sp["t_mg"]
        n = self.note(
            f"20×20 glasso: the covariance of 200 draws of N(0, P⁻¹) with a sparse, diagonally dominant P "
            f"(unit diagonal), on which scikit-learn converges in {sp['n_iter_sk']} iterations. The same "
            f"stopping gap of 1e-4 for both: scikit-learn's default tol = 1e-4 (an absolute gap, with "
            f"enet_tol = 1e-4; its gap estimate does not bound the true gap), metaglasso's tol = 1e-4 / p "
            f"(its tolerance is per variable: duality gap ≤ tol·p). True duality gaps of the answers: "
            f"metaglasso {sp['gap_mg']:.2g}, scikit-learn {sp['gap_sk']:.2g}; largest entry error against a "
            f"tol = 1e-12 solution, relative to max|Θ|: metaglasso {sp['err_mg']:.2g}, scikit-learn "
            f"{sp['err_sk']:.2g} (the answers differ by {sp['diff']:.2g}). Best time per call over timeit loops; "
            f"metaglasso through `{o['entry']}`. On the 200-sample covariance of a 5-factor model instead, "
            f"scikit-learn needs {fa['n_iter_sk']} iterations and takes {fmt_time(fa['t_sk'])} against "
            f"metaglasso's {fmt_time(fa['t_mg'])} ({fmt_ratio(fa['t_sk'] / fa['t_mg'])}; gaps "
            f"{fa['gap_sk']:.2g} and {fa['gap_mg']:.2g}).")
        self.add(f"{case} [{n}]", fmt_time(sp["t_mg"]), against, fmt_time(sp["t_sk"]), fmt_speedup(ratio),
                 "≥ 100× faster", speedup_verdict(ratio, 100))

    def glasso_large(self):
        p, rho, gap = self.glasso_p, 0.1, 1e-4
        mg = run_task("glasso_large", self.limit(120), implementation="metaglasso", p=p, rho=rho, gap=gap)
        sk = run_task("glasso_large", self.limit(120), implementation="sklearn", p=p, rho=rho, gap=gap)
        rf = run_task("glasso_large", self.limit(30), implementation="reference", p=p, rho=rho, gap=gap)
        case = f"full glasso V = {p}, factor-structured covariance, ρ = 0.1, to a duality gap of 1e-4"

        def describe(o):
            if not o.ok:
                return o.failure()
            if "error" in o.result:
                return f"{o['error']} after {fmt_time(o['time'])}"
            n_warned = o.result.get("warnings", 0)
            warned = f", {n_warned} ConvergenceWarning{'s' if n_warned != 1 else ''}" if n_warned else ""
            return f"{fmt_time(o['time'])} (gap {o['gap']:.2g}{warned})"

        others = f"sklearn: {describe(sk)}; reference: {describe(rf)}"
        if mg.ok and "error" not in mg.result:
            t = mg["time"]
            converged = mg["gap"] <= mg["gap_tol"] * (1 + 1e-12)
            mg_text = f"{fmt_time(t)}, {'converged' if converged else 'NOT converged'} (gap {mg['gap']:.2g})"
            if rf.ok and "error" not in rf.result:
                ratio = fmt_speedup(rf["time"] / t) + " than the reference"
            elif rf.status == "timeout" and rf.limit >= t:
                ratio = f"> {fmt_ratio(rf.limit / t)} faster than the reference"
            else:
                ratio = "n/a"
            if converged and t <= 3.0:
                met = "yes"
            elif not converged:
                met = "no: did not converge"
            else:
                met = f"no: {fmt_time(t)} > 3 s (by {t / 3.0:.3g}×)"
        else:
            mg_text, ratio = describe(mg), ""
            met = "no: " + mg_text
        n = self.note(
            f"Correlation matrix of a 5-factor model, L Lᵀ + I with L standard normal ({p} × 5), scaled to unit "
            f"diagonal. Stopping gap 1e-4 for all: scikit-learn's tol = 1e-4, metaglasso's tol = 1e-4 / p, "
            f"the reference's fixed-point test at 1e-4; gap = the true duality gap of the answer. The reference "
            f"is the pure-NumPy block coordinate descent of `metaglasso.reference`, given {rf.limit:.0f} s.")
        self.add(f"{case} [{n}]", mg_text, "sklearn, NumPy reference", others, ratio, "converges; ≤ 3 s", met)

    def adam(self, V):
        N, K, M, rho = 200, 10, 10, 0.09
        E, probe = self.adam_epochs, self.adam_probe
        size = dict(V=V, N=N, K=K, M=M, rho=rho)
        case = (f"paper synthetic V = {V}, N = {N}, K = {K}, M = {M}, ρ = {rho}: time to reach the reference's "
                f"Adam objective after {E} epochs")
        against = f"NumPy reference `fit_adam`, {E} epochs"
        target = "≥ 500× less time"
        mg = run_task("mg_fit", self.limit(120), repeats=3, **size)
        # The first epochs cost more (cold graphical lassos, larger steps), so the rest of a run is
        # extrapolated from the epochs between probe/2 and probe, timed as the difference of two runs.
        half = run_task("ref_adam", self.limit(FULL_RUN_BUDGET), epochs=probe // 2, **size)
        pr = run_task("ref_adam", self.limit(FULL_RUN_BUDGET), epochs=probe, **size)
        if not (pr.ok and half.ok):
            self.add(case, mg_text_fit(mg), against, (pr if not pr.ok else half).failure(), "", target,
                     "not measured")
            return
        late = (pr["time"] - half["time"]) / (probe - probe // 2)
        per_epoch = late if late > 0 else pr["time"] / probe
        estimate = pr["time"] + per_epoch * (E - probe)
        full = None
        if estimate <= FULL_RUN_BUDGET:
            full = run_task("ref_adam", self.limit(max(60.0, 2.0 * estimate)), epochs=E, **size)
        if full is not None and full.ok:
            t_ref, f_ref = full["time"], full["objective"]
            other = fmt_time(t_ref)
            how = f"The reference ran all {E} epochs"
            extrapolated = False
        else:
            cross = run_task("mg_adam", self.limit(FULL_RUN_BUDGET), epochs=[probe, E], **size)
            if not cross.ok:
                self.add(case, mg_text_fit(mg), against, f"≈ {fmt_time(estimate)} (extrapolated)", "", target,
                         f"not measured: metaglasso's Adam {cross.failure()}")
                return
            t_ref, f_ref = estimate, cross[str(E)]["objective"]
            agree = abs(cross[str(probe)]["objective"] - pr["objective"]) / abs(pr["objective"])
            other = f"≈ {fmt_time(t_ref)} (extrapolated)"
            why = ("its full run did not finish within its limit" if full is not None
                   else f"a full run would take ≈ {fmt_time(estimate)}")
            how = (f"EXTRAPOLATED: {why}, so the reference ran {probe // 2} and {probe} epochs "
                   f"({fmt_time(half['time'])} and {fmt_time(pr['time'])}); its time is that of {probe} epochs "
                   f"plus {E - probe} more at the cost per epoch between the two ({fmt_time(per_epoch)}); the "
                   f"objective after {E} epochs is that of metaglasso's own Adam (the same algorithm, start and "
                   f"shuffles), which after {probe} epochs agrees with the reference's to {agree:.1e} relative")
            extrapolated = True
        if not mg.ok:
            self.add(case, mg.failure(), against, other, "", target, "no: " + mg.failure())
            return
        reached = mg["objective"] <= f_ref + 1e-12 * abs(f_ref)
        ratio = t_ref / mg["time"]
        n = self.note(
            f"V = {V}: metaglasso is a default `MetaGraphicalLasso(n_components={M}, alpha={rho}).fit` (PCA "
            f"start, lbfgs, tol = 1e-8; best of {mg['runs']}), its PCA start counted; the reference's Adam "
            f"(learning rate 1e-3, all datasets per step) starts from the same PCA start, not counted. "
            f"Objectives: metaglasso {mg['objective']:.10g} after {mg['n_iter']} iterations, Adam after {E} epochs "
            f"{f_ref:.10g}. {how}.")
        if reached:
            met = speedup_verdict(ratio, 500)
            if extrapolated and met == "yes":
                met = "yes (extrapolated)"
            mg_text = f"{fmt_time(mg['time'])} (reached)"
        else:
            met = "no: did not reach the Adam objective"
            mg_text = f"{fmt_time(mg['time'])} (NOT reached)"
        self.add(f"{case} [{n}]", mg_text, against, other, fmt_speedup(ratio, "less time", "more time"), target, met)

    def gene(self):
        V, N, K, M, rho = self.gene_V, [160, 266, 305, 160], 4, 20, 0.09
        size = dict(V=V, N=N, K=K, M=M, rho=rho)
        case = f"gene scale: V = {V:,}, K = 4, N = (160, 266, 305, 160), M = 20, ρ = {rho}, to convergence"
        against = "NumPy reference `fit_lbfgs`"
        target = "≤ 5 s wall in total, ≥ 20× faster"
        mg = run_task("mg_fit", self.limit(120), repeats=2, **size)
        probe_iters = 5
        pr = run_task("ref_lbfgs", self.limit(FULL_RUN_BUDGET), max_iter=probe_iters, **size)
        estimate = None
        if pr.ok and mg.ok and pr["n_iter"] > 0:
            estimate = pr["time"] / pr["n_iter"] * max(mg["n_iter"], pr["n_iter"])
        full = None
        if estimate is None or estimate <= FULL_RUN_BUDGET:
            full = run_task("ref_lbfgs", self.limit(max(FULL_RUN_BUDGET, 2.0 * (estimate or 0))), max_iter=500, **size)
        extrapolated = False
        if full is not None and full.ok:
            t_ref, other = full["time"], fmt_time(full["time"])
            how = (f"The reference ran to convergence ({full['n_iter']} iterations, objective "
                   f"{full['objective']:.10g}, converged = {full['converged']})")
        elif estimate is not None:
            t_ref, other, extrapolated = estimate, f"≈ {fmt_time(estimate)} (extrapolated)", True
            stopped = f" (a full run {full.failure()})" if full is not None else ""
            how = (f"EXTRAPOLATED{stopped}: the reference ran {pr['n_iter']} iterations ({fmt_time(pr['time'])}); "
                   f"its time is scaled to the {mg['n_iter']} iterations metaglasso's L-BFGS (the same algorithm) "
                   f"needed")
        else:
            self.add(case, mg_text_fit(mg), against, (full or pr).failure(), "", target, "not measured")
            return
        if not mg.ok:
            self.add(case, mg.failure(), against, other, "", target, "no: " + mg.failure())
            return
        ratio = t_ref / mg["time"]
        n = self.note(
            f"Gene scale: data from `metaglasso.datasets.make_synthetic` (paper-style). metaglasso is a default "
            f"`MetaGraphicalLasso(n_components={M}, alpha={rho}).fit` including its PCA start (best of "
            f"{mg['runs']}; {mg['n_iter']} iterations, objective {mg['objective']:.10g}, converged = "
            f"{mg['converged']}); the reference starts from the same PCA start, not counted (its own "
            f"`pca_initial_projection` forms the V × V covariance). {how}.")
        problems = []
        if mg["time"] > 5.0:
            problems.append(f"{fmt_time(mg['time'])} > 5 s (by {mg['time'] / 5.0:.3g}×)")
        if ratio < 20:
            problems.append(f"{fmt_ratio(ratio)} < 20× (short by {20 / ratio:.3g}×)")
        met = ("no: " + "; ".join(problems)) if problems else ("yes (extrapolated)" if extrapolated else "yes")
        self.add(f"{case} [{n}]", fmt_time(mg["time"]), against, other, fmt_speedup(ratio), target, met)

    def gene_factor_analysis(self):
        V, N, K, M, rho = self.gene_V, [160, 266, 305, 160], 4, 20, 0.1
        case = (f"gene scale, data MGLASSO does not fit exactly: V = {V:,}, K = 4, N = (160, 266, 305, 160), "
                f"M = 20, ρ = {rho}, default settings")
        target = "converges; ≤ 2 s"
        o = run_task("mg_fit_factor_analysis", self.limit(120), V=V, N=N, K=K, M=M, rho=rho, repeats=2)
        if not o.ok:
            self.add(case, o.failure(), "—", "", "", target, "no: " + o.failure())
            return
        n = self.note(
            f"Gene scale from a factor-analysis model (`metaglasso.datasets.make_factor_analysis`, seed 0): every "
            f"variable has noise of its own variance (uniform in 0.5–1.5) in every direction, not projected out of "
            f"the factors' span, and a mean of its own per dataset; factor variances 1000 to 100; sparse chain "
            f"precisions. Each N_k < V, so with the diagonal of Λ_k unpenalised the objective would be unbounded. "
            f"A default `MetaGraphicalLasso(n_components={M}, alpha={rho}).fit` (the paper's penalty, PCA start, "
            f"lbfgs), its PCA start counted, best of {o['runs']}: {o['n_iter']} iterations, converged = "
            f"{o['converged']}, objective {o['objective']:.10g}; smallest cosine of the principal angles between the "
            f"true and fitted spans {o['smallest_cosine']:.3f}.")
        problems = []
        if not o["converged"]:
            problems.append("did not converge")
        if o["time"] > 2.0:
            problems.append(f"{fmt_time(o['time'])} > 2 s (by {o['time'] / 2.0:.3g}×)")
        self.add(f"{case} [{n}]", f"{fmt_time(o['time'])}, {o['n_iter']} iterations", "—", "", "", target,
                 ("no: " + "; ".join(problems)) if problems else "yes")

    def iteration(self):
        V, N = self.iter_size
        K, M = 10, 10
        o = run_task("iteration", self.limit(300), V=V, N=N, K=K, M=M, extra_epochs=4)
        case = f"one iteration at V = {V:,}, N = {N:,}, K = {K}, M = {M}"
        against = "the two NumPy GEMMs Xᵀ D and X T, same data"
        if not o.ok:
            self.add(case, o.failure(), against, "", "", "≤ 1.3× their time", "not measured")
            return
        r = o["t_iter"] / o["t_gemm"]
        n = self.note(
            f"One iteration: metaglasso's time per Adam epoch over all K datasets (one profile objective + "
            f"gradient evaluation, the K graphical lassos and one retraction), as (t(5 epochs) − t(1 epoch)) / 4 "
            f"of `MetaGraphicalLasso(solver='adam', tol=0)` fits from a random orthonormal start (a 1-epoch fit "
            f"takes {fmt_time(o['t_one'])}). GEMMs: T = X_k D (N × M) and X_kᵀ T (V × M) for each of the K "
            f"centred (N, V) arrays, best of 3. Both use the default threads.")
        met = "yes" if r <= 1.3 else f"no: {r:.3g}× > 1.3× (by {r / 1.3:.3g}×)"
        self.add(f"{case} [{n}]", fmt_time(o["t_iter"]), against, fmt_time(o["t_gemm"]), f"{r:.3g}× their time",
                 "≤ 1.3× their time", met)

    def lanczos(self):
        M, tol = 20, 1e-10
        first = None
        for N, V in self.lanczos_shapes:
            o = run_task("lanczos", self.limit(300), N=N, V=V, M=M, tol=tol)
            case = f"top-20 subspace of {V:,} × {N:,} data (features × samples)"
            against = "ARPACK `scipy.sparse.linalg.svds`, tol = 1e-10"
            if not o.ok:
                self.add(case, o.failure(), against, "", "", "at least as fast", "not measured")
                continue
            ratio = o["t_arpack"] / o["t_mg"]
            if first is None:
                first = self.note(
                    "Top-20 subspace: centred data (N, V) with a decaying spectrum (a rank-40 signal, latent "
                    "scales 10 to 1, plus isotropic noise 0.3). metaglasso: `pca_initial_projection` as called "
                    "by default (block Lanczos on the data, or on the ΣN × ΣN Gram matrix when that costs fewer "
                    "multiply-adds; residual tolerance 1e-10), which the row judges; in brackets its data-span "
                    "path (`compress=True`: one pass for the Gram matrix, then block Lanczos in the span of the "
                    "data), the path a compressed fit takes. ARPACK: `svds(X, k=20, "
                    "tol=1e-10, return_singular_vectors='vh')`. Best of up to 3. "
                    "res = max_j ‖S d_j − θ_j d_j‖ / θ_max of the returned vectors; "
                    "dist = sin of the largest principal angle between "
                    "metaglasso's and ARPACK's subspaces.")
            accurate = o["res_mg"] <= max(10.0 * o["res_arpack"], 1e-9)
            met = speedup_verdict(ratio, 1.0) if accurate else "no: less accurate than ARPACK"
            span = (f"; data-span path {fmt_time(o['t_span'])}, res {o['res_span']:.1e}"
                    if "t_span" in o.result else "")
            self.add(
                f"{case} [{first}]",
                f"{fmt_time(o['t_mg'])} (res {o['res_mg']:.1e}{span})", against,
                f"{fmt_time(o['t_arpack'])} (res {o['res_arpack']:.1e}; dist {o['distance']:.1e})",
                fmt_speedup(ratio),
                "at least as fast", met)

    def scale(self):
        V, N, K, M, rho = self.scale_V, 500, 4, 20, 0.09
        o = run_task("scale", self.limit(150), V=V, N=N, K=K, M=M, rho=rho)
        case = f"V = {V:,}, ΣN = {N * K:,} (K = {K}), M = {M} fit"
        target = "fits in 24 GiB, under a minute"
        input_gib = V * N * K * 8 / GIB
        text = (f"Scale: paper-style synthetic data ({K} datasets of {N} samples, {input_gib:.2f} GiB), a default "
                f"`MetaGraphicalLasso(n_components={M}, alpha={rho}).fit` (PCA start, lbfgs). Peak RSS is the "
                f"worker process's: Python, NumPy, generating the input, the input and the fit")
        if not o.ok:
            n = self.note(f"{text}. The time limit of {o.limit:.0f} s includes generating the data.")
            rss = f"; peak RSS so far {o.peak_rss / GIB:.2f} GiB" if o.peak_rss else ""
            self.add(f"{case} [{n}]", o.failure() + rss, "—", "", "", target, "no: " + o.failure())
            return
        t, peak = o["time"], o.peak_rss
        n = self.note(f"{text} (peak before the fit: {o['rss_before'] / GIB:.2f} GiB). {o['n_iter']} iterations, "
                      f"converged = {o['converged']}.")
        problems = []
        if t >= 60.0:
            problems.append(f"{fmt_time(t)} ≥ 60 s (by {t / 60:.3g}×)")
        if peak > 24 * GIB:
            problems.append(f"peak RSS {peak / GIB:.2f} GiB > 24 GiB")
        self.add(f"{case} [{n}]", f"{fmt_time(t)}, peak RSS {peak / GIB:.2f} GiB", "—", "", "", target,
                 ("no: " + "; ".join(problems)) if problems else "yes")

    def fused(self):
        target = "≤ 3× the plain fit's time"
        first = None
        for V, N, K, M, rho, beta in self.fused_sizes:
            o = run_task("fused_fit", self.limit(300), V=V, N=N, K=K, M=M, rho=rho, beta=beta, repeats=5)
            case = (f"fused (chain) fit against the plain fit, V = {V:,}, N_k = {N}, K = {K}, M = {M}, ρ = {rho:g}, "
                    f"λ₂ = {beta:g}")
            against = f"plain `MetaGraphicalLasso(alpha={rho:g})`, same data"
            if not o.ok:
                self.add(case, o.failure(), against, "", "", target, "not measured")
                continue
            fu, pl = o["fused"], o["plain"]
            if first is None:
                first = self.note(
                    "Fused against plain: data from `metaglasso.datasets.make_shared_networks` (seed 0) with the "
                    "parameters of `metaglasso reproduce joint` (networks shared but for 2 toggled edges between "
                    "consecutive datasets); metaglasso is `MetaGraphicalLasso(n_components=M, alpha=ρ, "
                    "penalty='fused', beta=λ₂, fused_pairs='chain').fit`, the plain fit the same without the "
                    "fused penalty — both from the PCA start (counted), lbfgs, tol = 1e-8; the repeats "
                    "alternate between the two, best of each. ρ and λ₂: at V = 200 the median BIC choices of the "
                    "fused penalty in `metaglasso reproduce joint` (docs/results/joint.md); at V = 2,000 the BIC "
                    "choice of `select_model` over ρ ∈ {3e-4, 1e-3, 3e-3, 0.01} × λ₂ ∈ {0, 0.03, 0.1, 0.3, 1} on "
                    "this dataset (ρ = 3e-4; λ₂ = 0.1, 0.3 and 1 within 0.1 of each other in BIC, every entry "
                    "fused).")
            n = self.note(
                f"V = {V:,}, N_k = {N}, K = {K}, M = {M}: fused {fu['n_iter']} iterations (converged = "
                f"{fu['converged']}, objective {fu['objective']:.10g}, {fu['network_parameters']} distinct nonzero "
                f"network values), plain {pl['n_iter']} iterations (converged = {pl['converged']}, objective "
                f"{pl['objective']:.10g}, {pl['network_parameters']} nonzeros); best of {fu['runs']} and "
                f"{pl['runs']}; time per iteration {fmt_time(fu['time'] / max(fu['n_iter'], 1))} against "
                f"{fmt_time(pl['time'] / max(pl['n_iter'], 1))}.")
            r = fu["time"] / pl["time"]
            problems = []
            if not fu["converged"]:
                problems.append("the fused fit did not converge")
            if r > 3.0:
                problems.append(f"{r:.3g}× > 3× (by {r / 3.0:.3g}×)")
            self.add(f"{case} [{first}, {n}]", f"{fmt_time(fu['time'])}, {fu['n_iter']} iterations", against,
                     f"{fmt_time(pl['time'])}, {pl['n_iter']} iterations", f"{r:.3g}× the plain fit's time", target,
                     ("no: " + "; ".join(problems)) if problems else "yes")

    def steps(self):
        """(key for ``--only``, label, step) of every case, in the order of the table."""
        return [
            ("glasso_small", "20×20 glasso", self.glasso_small),
            ("glasso_large", f"glasso V = {self.glasso_p}", self.glasso_large),
            ("adam_small", f"Adam V = {self.adam_sizes[0]}", lambda: self.adam(self.adam_sizes[0])),
            ("adam_large", f"Adam V = {self.adam_sizes[1]}", lambda: self.adam(self.adam_sizes[1])),
            ("gene", "gene scale", self.gene),
            ("gene_factor_analysis", "gene scale, factor analysis", self.gene_factor_analysis),
            ("iteration", "one iteration", self.iteration),
            ("lanczos", "top-20 subspace", self.lanczos),
            ("scale", "scale fit", self.scale),
            ("fused", "fused against plain", self.fused),
        ]

    def all(self, only=None):
        steps = [(label, step) for key, label, step in self.steps() if only is None or key in only]
        for i, (label, step) in enumerate(steps, 1):
            t = time.perf_counter()
            print(f"[{i}/{len(steps)}] {label} ...", end="", file=sys.stderr, flush=True)
            step()
            print(f" {time.perf_counter() - t:.1f} s", file=sys.stderr, flush=True)


#: The keys of ``--only``, in the order of the table.
CASE_KEYS = [key for key, _, _ in Cases(quick=False).steps()]


def mg_text_fit(o):
    return fmt_time(o["time"]) if o.ok else o.failure()


# =============================================================================================
# Report
# =============================================================================================


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def memory_total():
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return f"{float(line.split()[1]) * 1024 / GIB:.1f} GiB"
    except OSError:
        pass
    return "unknown"


def git_state():
    root = HERE.parent
    try:
        head = subprocess.run(["git", "-C", str(root), "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + (" with uncommitted changes" if dirty else "")


def simd_level():
    """Instruction set of metaglasso's products in this process (its run-time choice)."""
    from metaglasso import _core

    return getattr(_core, "simd_instruction_set", lambda: "the build's default target")()


def machine_description(load):
    """Markdown bullet lines; ``load`` holds the load averages at the start and the end of the run."""
    import scipy
    import sklearn

    import metaglasso

    logical = os.cpu_count()
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else logical
    blas = "unknown"
    try:
        from threadpoolctl import threadpool_info

        pools = [f"{p['internal_api']} {p.get('version') or ''} ({p['num_threads']} threads)".replace("  ", " ")
                 for p in threadpool_info()]
        blas = ", ".join(pools) if pools else "none found"
    except ImportError:
        pass
    return [
        f"- CPU: {cpu_model()}; {logical} logical cores, {usable} usable by this process",
        f"- Memory: {memory_total()}",
        f"- OS: {platform.system()} {platform.release()} ({platform.machine()}); Python {platform.python_version()}",
        f"- NumPy {np.__version__}, SciPy {scipy.__version__}, scikit-learn {sklearn.__version__}",
        f"- Thread pools: {blas}",
        f"- metaglasso {metaglasso.__version__} (git {git_state()}), products for {simd_level()}; default threads "
        "everywhere",
        "- Load average (1, 5, 15 min) at the start: " + (", ".join(f"{x:.2f}" for x in load[0]) if load else "unknown")
        + "; at the end: " + (", ".join(f"{x:.2f}" for x in load[1]) if load else "unknown"),
    ]


def report(cases, elapsed, argv, load=None):
    lines = ["# metaglasso: speed and scale, side by side", ""]
    if cases.quick:
        lines += ["**Quick smoke run: sizes are reduced, so the targets do not apply.**", ""]
    lines += [f"`python benchmarks/compare.py{' ' + ' '.join(argv) if argv else ''}`, "
              f"{time.strftime('%Y-%m-%d %H:%M %Z')}, {elapsed / 60:.1f} min in total.", "", "## Machine", ""]
    lines += machine_description(load)
    lines += ["", "## Results", "",
              "| case | metaglasso | compared against (same run) | their time | ratio | target | met? |",
              "|---|---|---|---|---|---|---|"]
    for r in cases.rows:
        cells = [r.case, r.metaglasso, r.against, r.other, r.ratio, r.target, r.met]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    lines += ["", "## Notes", ""]
    lines += [f"{i}. {text}" for i, text in enumerate(cases.notes, 1)]
    return "\n".join(lines) + "\n"


def kept_section(path, heading="## Dask cluster"):
    """The section of an existing report from ``heading`` to its end (written by dask_cluster.py), or ""."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    except OSError:
        return ""
    for i, line in enumerate(lines):
        if line.startswith(heading):
            return "\n" + "".join(lines[i:])
    return ""


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="reduced sizes for a smoke run")
    parser.add_argument("--out", type=Path, help="also write the Markdown report to this file")
    parser.add_argument("--only", nargs="+", metavar="CASE", choices=CASE_KEYS,
                        help="run only these cases (of: %(choices)s); the table then has their rows only")
    parser.add_argument("--task", help=argparse.SUPPRESS)
    parser.add_argument("--kwargs", default="{}", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.task:
        worker(args.task, json.loads(args.kwargs))
        return 0
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    start = time.perf_counter()
    cases = Cases(args.quick)
    cases.all(args.only)
    shown = [a for a in argv if a == "--quick"]
    if args.only:
        shown += ["--only", *args.only]
    if args.out:
        shown += ["--out", str(args.out)]
    if load is not None:
        load = (load, os.getloadavg())
    text = report(cases, time.perf_counter() - start, shown, load)
    print(text)
    if args.out:
        args.out.write_text(text + kept_section(args.out), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
