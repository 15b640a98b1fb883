"""Fitting Dask arrays on a local distributed cluster: both paths, one and two workers.

    python benchmarks/dask_cluster.py [--quick] [--out benchmarks/RESULTS.md]

K = 4 datasets of 250,000 rows × V = 2,000 variables (10⁶ samples, 16 GB in float64) are generated
chunk by chunk on the workers (``da.map_blocks``; each chunk from a seed derived from its dataset and
chunk index) from a factor model with 10 latent factors shared across the datasets, a latent
covariance per dataset and isotropic noise, so that the data never exist in the client. Each worker
of the ``distributed.LocalCluster`` (one thread) may use 3.5 GiB, so the cluster holds less memory
than the data. ``MetaGraphicalLasso(n_components=10, alpha=0.05)`` is fitted on them four times,
each run in its own process with a fresh cluster (so every peak is the run's own):

- the covariance path (``memory_budget="100TB"``: the K covariances gathered into the client) and
  the distributed path (``memory_budget=1``: they stay on the cluster, S_k D computed there at every
  evaluation), each with one and with two workers.

Per run: the wall time of ``fit`` (the statistics pass plus the fit), iterations, evaluations and
the time per iteration and per round trip, the bytes sent between client and cluster (from
``dask_info_``, checked against the workers' transfer logs) and between workers (the logs), the
workers' CPU time in the pass, the peak RSS of the client process (which also runs the scheduler)
and of every worker process. The paths' and the worker
counts' results are compared, and each fit's subspace with the true one. One chunk's generation,
column sums and Gram matrix are also timed on one core, which gives the per-core SYRK rate the
"At scale" estimate uses.

``--quick`` (10⁵ samples × 500 variables, 1 GiB per worker) checks the script in about 15 s.
``--out FILE`` replaces the ``## Dask cluster`` section of FILE (from that heading to the end of the
file; appended if absent) with the report and writes the raw numbers as JSON beside FILE
(``RESULTS_dask_cluster.json`` for ``RESULTS.md``). The full run takes about ten minutes on two cores.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
GIB = 2.0**30
SEED = 20240601
SECTION = "## Dask cluster"

CONFIGS = {
    "full": dict(n_datasets=4, n_rows=250_000, n_features=2000, chunk_rows=10_000, m_true=10, n_components=10,
                 alpha=0.05, worker_memory="3.5GiB", run_timeout=2400),
    "quick": dict(n_datasets=4, n_rows=25_000, n_features=500, chunk_rows=5_000, m_true=10, n_components=10,
                  alpha=0.05, worker_memory="1GiB", run_timeout=600),
}
RUNS = (("covariance", 1), ("distributed", 1), ("covariance", 2), ("distributed", 2))
BUDGETS = {"covariance": "100TB", "distributed": 1}

# The estimate for a large cluster in the report ("At scale").
SCALE = dict(n_samples=10**8, n_features=20_000, n_datasets=4, n_components=10, nodes=32, cores_per_node=32)


# --- the data: module-level functions, imported by the workers ---

@functools.lru_cache(maxsize=8)
def truth(n_features, n_datasets, m_true, seed):
    """(D, Σ_k, ε_k, μ_k): orthonormal loadings shared by the datasets, per-dataset latent
    covariances (the graphical lasso of 20 latent samples, as in metaglasso.datasets), noise
    variances and means. Deterministic in its arguments, so every task derives the same model."""
    from metaglasso import graphical_lasso

    rng = np.random.default_rng([seed, 0])
    P, _, Qt = np.linalg.svd(rng.random((n_features, m_true)), full_matrices=False)
    D = P @ Qt
    covariances, noises, means = [], [], []
    for _ in range(n_datasets):
        Y = rng.standard_normal((20, m_true))
        cov, _ = graphical_lasso(np.cov(Y, rowvar=False, bias=True), 0.3)
        covariances.append(cov)
        noises.append(rng.uniform(0.05, 0.15))
        means.append(rng.normal(0.0, 1.0, n_features))
    return D, np.stack(covariances), np.array(noises), np.stack(means)


def make_chunk(n_features, n_datasets, m_true, seed, k, block_info=None):
    """One chunk of rows of dataset k: x = μ_k + D L_k u + √ε_k w (u, w standard normal), from a
    seed derived from (dataset, chunk index)."""
    info = block_info[None]
    start, stop = info["array-location"][0]
    index = info["chunk-location"][0]
    D, covariances, noises, means = truth(n_features, n_datasets, m_true, seed)
    rng = np.random.default_rng([seed, 1, k, index])
    n = stop - start
    x = rng.standard_normal((n, n_features))
    x *= np.sqrt(noises[k])
    x += (rng.standard_normal((n, m_true)) @ np.linalg.cholesky(covariances[k]).T) @ D.T
    x += means[k]
    return x


def make_datasets(cfg):
    """K lazy dask arrays (n_rows, V), chunked by rows, generated on the workers."""
    import dask.array as da

    rows, V = cfg["n_rows"], cfg["n_features"]
    chunks = (tuple(min(cfg["chunk_rows"], rows - lo) for lo in range(0, rows, cfg["chunk_rows"])), (V,))
    return [da.map_blocks(make_chunk, dtype=np.float64, chunks=chunks, meta=np.empty((0, 0)), n_features=V,
                          n_datasets=cfg["n_datasets"], m_true=cfg["m_true"], seed=SEED, k=k)
            for k in range(cfg["n_datasets"])]


# --- run on the workers by client.run ---

def _worker_counters(dask_worker):
    """Where the worker's logs stand, its CPU time so far and what it spilled."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    spill = getattr(dask_worker.data, "cumulative_metrics", {})
    return dict(outgoing=len(dask_worker.transfer_outgoing_log), log_max=dask_worker.transfer_outgoing_log.maxlen,
                cpu=usage.ru_utime + usage.ru_stime, spilled_bytes=int(spill.get(("disk-write", "bytes"), 0)))


def _outgoing_log(dask_worker):
    """Every transfer the worker has served: (requester, {key: bytes})."""
    return [(e["who"], {str(k): int(v) for k, v in e["keys"].items()}) for e in dask_worker.transfer_outgoing_log]


def _peak_rss():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: KiB


# --- one run, in its own process ---

def _phase(logs, workers, before, after):
    """The bytes the workers served between two snapshots: to other workers and to anyone else (the
    client, through the scheduler), each also by task name; and the workers' CPU seconds."""
    from dask.utils import key_split

    out = dict(inter_worker=0, to_client=0, inter_worker_keys={}, to_client_keys={}, complete=True,
               worker_cpu=sum(after[a]["cpu"] - before[a]["cpu"] for a in after))
    for addr, log in logs.items():
        if after[addr]["outgoing"] >= after[addr]["log_max"]:
            out["complete"] = False
        for who, keys in log[before[addr]["outgoing"]:after[addr]["outgoing"]]:
            where = "inter_worker" if who in workers else "to_client"
            for key, n in keys.items():
                out[where] += n
                name = key_split(key)
                out[where + "_keys"][name] = out[where + "_keys"].get(name, 0) + n
    return out


def run_one(config, path, n_workers, outdir):
    import logging

    import dask
    from distributed import Client, LocalCluster

    import metaglasso
    from metaglasso import MetaGraphicalLasso, _dask
    from metaglasso.metrics import space_alignment

    cfg = CONFIGS[config]
    logging.basicConfig(level=logging.WARNING, format="    %(name)s %(levelname)s: %(message)s")
    logging.getLogger("metaglasso").setLevel(logging.INFO)
    # A transfer log long enough to hold every transfer of the run.
    dask.config.set({"distributed.admin.low-level-log-length": 1_000_000})
    result = dict(path_requested=path, n_workers=n_workers)
    with LocalCluster(n_workers=n_workers, threads_per_worker=1, memory_limit=cfg["worker_memory"],
                      dashboard_address=":0", processes=True) as cluster, Client(cluster) as client:
        client.wait_for_workers(n_workers)
        pids = client.run(os.getpid)
        counters = [client.run(_worker_counters)]
        original = _dask.statistics

        def statistics(*args, **kwargs):
            out = original(*args, **kwargs)
            counters.append(client.run(_worker_counters))  # between the pass and the fit
            return out

        _dask.statistics = statistics
        # Built from the module imported by name, so that the workers import make_chunk rather than
        # unpickle a copy of this script's __main__.
        import dask_cluster

        Xs = dask_cluster.make_datasets(cfg)
        model = MetaGraphicalLasso(n_components=cfg["n_components"], alpha=cfg["alpha"],
                                   memory_budget=BUDGETS[path])
        client_rss_before = _peak_rss()
        start = time.perf_counter()
        model.fit(Xs)
        wall = time.perf_counter() - start
        _dask.statistics = original
        counters.append(client.run(_worker_counters))
        logs = client.run(_outgoing_log)
        worker_rss = client.run(_peak_rss)
        pids_after = client.run(os.getpid)
    truth_D = truth(cfg["n_features"], cfg["n_datasets"], cfg["m_true"], SEED)[0]
    np.save(Path(outdir) / f"components_{path}_{n_workers}.npy", model.components_)
    workers = set(logs)
    result.update(
        wall=wall, dask_info={k: (v if isinstance(v, str) else float(v)) for k, v in model.dask_info_.items()},
        n_iter=int(model.n_iter_), converged=bool(model.converged_),
        objective=float(model.objective_), alignment=space_alignment(truth_D.T, model.components_),
        transfer_pass=_phase(logs, workers, counters[0], counters[1]),
        transfer_fit=_phase(logs, workers, counters[1], counters[2]),
        spilled_bytes=int(sum(c["spilled_bytes"] for c in counters[2].values())),
        client_rss_before=client_rss_before, client_rss=_peak_rss(),
        worker_rss=sorted(worker_rss.values(), reverse=True),
        workers_restarted=sorted(pids.values()) != sorted(pids_after.values()),
        metaglasso=metaglasso.__version__,
    )
    return result


# --- one chunk on one core: the rates behind the pass ---

def chunk_rates(config):
    """Best-of-3 seconds of one chunk's generation, column sums and Gram matrix on one core."""
    from metaglasso import _dask

    cfg = CONFIGS[config]
    V, rows = cfg["n_features"], cfg["chunk_rows"]
    info = {None: {"array-location": [(0, rows), (0, V)], "chunk-location": (0, 0)}}
    make_chunk(V, cfg["n_datasets"], cfg["m_true"], SEED, 0, block_info=info)  # warm the model cache
    shift = np.zeros(V)
    times = dict(generate=[], sums=[], gram=[])
    for _ in range(3):
        t0 = time.perf_counter()
        x = make_chunk(V, cfg["n_datasets"], cfg["m_true"], SEED, 0, block_info=info)
        t1 = time.perf_counter()
        xc = _dask._centre(x, shift)  # the pass centres each chunk once, then sums it and forms its Gram matrix
        _dask._chunk_sums(xc)
        t2 = time.perf_counter()
        _dask._chunk_gram(xc, 0, V)
        t3 = time.perf_counter()
        for name, t in (("generate", t1 - t0), ("sums", t2 - t1), ("gram", t3 - t2)):
            times[name].append(t)
    out = {name: min(ts) for name, ts in times.items()}
    out["syrk_gflops"] = rows * V * (V + 1) / out["gram"] / 1e9  # SYRK: N V(V+1)/2 multiply-adds
    return out


def _subprocess(args, timeout, env_extra=None):
    """Run this script with args in a fresh process; its last stdout line is JSON."""
    env = dict(os.environ)
    # The workers import this module by name to run make_chunk.
    env["PYTHONPATH"] = str(HERE) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env.update(env_extra or {})
    start = time.perf_counter()
    try:
        proc = subprocess.run([sys.executable, str(Path(__file__).resolve()), *args], stdout=subprocess.PIPE,
                              text=True, env=env, timeout=timeout)
    except subprocess.TimeoutExpired:
        return dict(error=f"not finished within {timeout} s")
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        return dict(error=f"exit code {proc.returncode} after {time.perf_counter() - start:.0f} s")
    return json.loads(lines[-1])


# --- the report ---

def _fmt_s(x):
    return f"{x:.3g} s" if x >= 1 else f"{x * 1e3:.3g} ms"


def _fmt_b(n):
    n = float(n)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(n) < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.3g} {unit}"
        n /= 1000.0


def _fmt_gib(n):
    return f"{n / GIB:.2f} GiB"


def _pow10(n):
    """10⁶ for 1000000, else 2,000."""
    e = len(str(n)) - 1
    if n == 10**e and e >= 4:
        return "10" + "".join("⁰¹²³⁴⁵⁶⁷⁸⁹"[int(d)] for d in str(e))
    return f"{n:,}"


def machine():
    import dask
    import distributed
    import psutil
    import scipy

    import metaglasso
    from compare import cpu_model, git_state  # the description compare.py gives of the machine

    blas = "unknown"
    try:
        cfg = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        blas = f"{cfg['name']} {cfg['version']}"
    except Exception:  # noqa: BLE001 - only a description
        pass
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return dict(cpu=cpu_model(), cores=os.cpu_count(), usable=usable, memory=psutil.virtual_memory().total,
                os=f"{platform.system()} {platform.release()} ({platform.machine()})",
                python=platform.python_version(), dask=dask.__version__, distributed=distributed.__version__,
                numpy=np.__version__, scipy=scipy.__version__, blas=blas, metaglasso=metaglasso.__version__,
                git=git_state())


def _label(run):
    return f"{run['n_workers']} worker{'s' if run['n_workers'] > 1 else ''}, {run['path_requested']}"


def _max_diff(outdir, a, b):
    try:
        A, B = (np.load(Path(outdir) / f"components_{p}_{w}.npy") for p, w in (a, b))
    except OSError:
        return None
    return float(np.max(np.abs(A - B)))


def compare_runs(runs, outdir):
    """Agreement of the paths (same worker count) and of the worker counts (same path)."""
    by = {(r["path_requested"], r["n_workers"]): r for r in runs if "error" not in r}
    out = []
    pairs = [(("covariance", w), ("distributed", w)) for w in (1, 2)]
    pairs += [((p, 1), (p, 2)) for p in ("covariance", "distributed")]
    for a, b in pairs:
        if a in by and b in by:
            d = _max_diff(outdir, a, b)
            obj = abs(by[a]["objective"] - by[b]["objective"]) / abs(by[a]["objective"])
            out.append(dict(a=a, b=b, max_abs_components=d, rel_objective=obj,
                            iterations=(by[a]["n_iter"], by[b]["n_iter"])))
    return out


def at_scale(rates):
    """The on-paper estimate for SCALE, from the per-core SYRK rate measured here."""
    s = SCALE
    N, V, K, M = s["n_samples"], s["n_features"], s["n_datasets"], s["n_components"]
    cores = s["nodes"] * s["cores_per_node"]
    rate = rates["syrk_gflops"] * 1e9 / 2  # multiply-adds per second per core
    syrk = N * V * (V + 1) / 2  # multiply-adds, summed over the datasets (ΣN_k = N)
    gemm = None  # the strips' multiply-adds, once the block rows are known
    import dask
    block_bytes = dask.utils.parse_bytes(dask.config.get("array.chunk-size"))
    block_rows = max(1, min(V, block_bytes // (8 * V)))
    n_blocks = -(-V // block_rows)
    # Strips S[lo:hi, lo:]: Σ_blocks N · rows · (V − lo) multiply-adds by GEMM.
    gemm = sum(N * (min(V, lo + block_rows) - lo) * (V - lo) for lo in range(0, V, block_rows))
    cov_bytes = K * V * V * 8
    return dict(
        data=N * V * 8, syrk=syrk, gemm=gemm, cores=cores, rate=rate,
        syrk_seconds=syrk / (cores * rate), gemm_seconds=gemm / (cores * rate),
        cov_bytes=cov_bytes, cov_per_node=cov_bytes / s["nodes"], block_rows=block_rows, n_blocks=n_blocks,
        block_bytes=block_rows * V * 8, d_bytes=V * M * 8, sd_bytes=K * V * M * 8, gram_bytes=V * V * 8,
        chunk_seconds_per_core=rates["generate"] + rates["sums"] + rates["gram"],
    )


def report(cfg, config, runs, comparisons, rates, mach, argv, elapsed, load):
    K, n_rows, V = cfg["n_datasets"], cfg["n_rows"], cfg["n_features"]
    N = K * n_rows
    data_bytes = N * V * 8
    chunk_bytes = cfg["chunk_rows"] * V * 8
    n_chunks = K * -(-n_rows // cfg["chunk_rows"])
    from dask.utils import parse_bytes

    worker_mem = parse_bytes(cfg["worker_memory"])
    blocks = next((int(r["dask_info"]["n_blocks"]) for r in runs
                   if "error" not in r and r["dask_info"]["path"] == "distributed"), "?")
    lines = [f"{SECTION}: {_pow10(N)} samples × {_pow10(V)} variables, K = {K}", ""]
    if config == "quick":
        lines += ["**Quick check of the script: reduced sizes.**", ""]
    lines += [
        f"`python benchmarks/dask_cluster.py{' ' + ' '.join(argv) if argv else ''}`, "
        f"{time.strftime('%Y-%m-%d %H:%M %Z')}, {elapsed / 60:.1f} min in total.",
        "",
        f"- Machine: {mach['cpu']}; {mach['cores']} cores ({mach['usable']} usable), {_fmt_gib(mach['memory'])}; "
        f"{mach['os']}; Python {mach['python']}; load average (1, 5, 15 min) at the start "
        f"{', '.join(f'{x:.2f}' for x in load[0])}, at the end {', '.join(f'{x:.2f}' for x in load[1])}",
        f"- dask {mach['dask']}, distributed {mach['distributed']}, NumPy {mach['numpy']} ({mach['blas']}), "
        f"SciPy {mach['scipy']}; metaglasso {mach['metaglasso']} (git {mach['git']})",
        f"- Data: K = {K} datasets of {n_rows:,} rows × {V:,} variables, {_fmt_b(data_bytes)} in float64, generated "
        f"on the workers in {n_chunks} chunks of {cfg['chunk_rows']:,} rows ({_fmt_b(chunk_bytes)}) from "
        f"{cfg['m_true']} shared latent factors, a latent covariance per dataset and isotropic noise; never in the "
        f"client",
        f"- Cluster: `LocalCluster(n_workers=w, threads_per_worker=1, memory_limit=\"{cfg['worker_memory']}\")`, "
        f"w = 1 or 2, a fresh cluster (and client process, which also runs the scheduler) per run; the workers "
        f"together have {_fmt_gib(worker_mem)} or {_fmt_gib(2 * worker_mem)} against {_fmt_gib(data_bytes)} of data",
        f"- Fit: `MetaGraphicalLasso(n_components={cfg['n_components']}, alpha={cfg['alpha']}, "
        f"memory_budget=...)`, L-BFGS from the PCA start; `memory_budget=\"100TB\"` gives the covariance path "
        f"(the {K} covariances, {_fmt_b(8 * K * V * V)}, gathered into the client), `memory_budget=1` the "
        f"distributed path (each S_k in {blocks} row block{'s' if blocks != 1 else ''} of at most dask's "
        f"`array.chunk-size`); the client's core uses both cores",
        "",
        "| run | total | statistics pass | fit | iterations / evaluations | fit per iteration | per round trip "
        "| objective | subspace vs truth |",
        "|---|---|---|---|---|---|---|---|---|",
    ]

    def pass_s(r):
        return r["dask_info"]["statistics_seconds"]

    ok = [r for r in runs if "error" not in r]
    for r in runs:
        if "error" in r:
            lines.append(f"| {_label(r)} | {r['error']} | | | | | | | |")
            continue
        info = r["dask_info"]
        evals = info.get("n_evaluations")
        lines.append("| " + " | ".join([
            _label(r) + ("" if info["path"] == r["path_requested"] else f" (ran {info['path']})"),
            _fmt_s(r["wall"]), _fmt_s(pass_s(r)), _fmt_s(info["fit_seconds"]),
            f"{r['n_iter']}" + (f" / {evals:.0f}" if evals else "") + ("" if r["converged"] else " (not converged)"),
            _fmt_s(info["fit_seconds"] / max(r["n_iter"], 1)),
            _fmt_s(info["products_seconds"] / evals) if evals else "—",
            f"{r['objective']:.10g}", f"{r['alignment']:.5f} of {cfg['m_true']}",
        ]) + " |")
    lines += [
        "",
        "| run | client ↔ cluster per iteration (to / from) | between workers: pass / fit | workers' CPU in the pass "
        "| peak RSS client | peak RSS per worker | spilled to disk |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in ok:
        info = r["dask_info"]
        if info["path"] == "distributed":
            it = max(r["n_iter"], 1)
            traffic = f"{_fmt_b(info['bytes_to_cluster'] / it)} / {_fmt_b(info['bytes_from_cluster'] / it)}"
        else:
            traffic = f"— (once: {_fmt_b(info['covariance_bytes'])} gathered)"
        tp, tf = r["transfer_pass"], r["transfer_fit"]
        between = f"{_fmt_b(tp['inter_worker'])} / {_fmt_b(tf['inter_worker'])}"
        if not (tp["complete"] and tf["complete"]):
            between += " (log incomplete)"
        lines.append("| " + " | ".join([
            _label(r), traffic, between,
            f"{tp['worker_cpu']:.0f} s ({tp['worker_cpu'] / pass_s(r):.2f} cores busy)", _fmt_gib(r["client_rss"]),
            ", ".join(_fmt_gib(x) for x in r["worker_rss"])
            + (" (a worker restarted)" if r["workers_restarted"] else ""),
            _fmt_b(r["spilled_bytes"]),
        ]) + " |")
    lines.append("")
    # speed-ups
    by = {(r["path_requested"], r["n_workers"]): r for r in ok}
    speed = []
    for p in ("covariance", "distributed"):
        if (p, 1) in by and (p, 2) in by:
            a, b = by[p, 1], by[p, 2]
            speed.append(f"{p} path {a['wall'] / b['wall']:.2f}× in total (statistics pass "
                         f"{pass_s(a) / pass_s(b):.2f}×, fit "
                         f"{a['dask_info']['fit_seconds'] / b['dask_info']['fit_seconds']:.2f}×)")
    if speed:
        lines += ["Speed-up from 1 to 2 workers: " + "; ".join(speed) + ".", ""]
    # agreement
    if comparisons:
        parts = []
        for c in comparisons:
            (pa, wa), (pb, wb) = c["a"], c["b"]
            what = f"{pa} vs {pb}, {wa} worker{'s' if wa > 1 else ''}" if wa == wb else f"{pa}, 1 vs 2 workers"
            d = "n/a" if c["max_abs_components"] is None else f"{c['max_abs_components']:.1e}"
            parts.append(f"{what}: max |Δ components_| {d}, relative Δ objective {c['rel_objective']:.1e}, "
                         f"iterations {c['iterations'][0]} and {c['iterations'][1]}")
        lines += ["Agreement: " + "; ".join(parts) + ".", ""]
    # what the numbers mean
    if ok:
        flops = N * V * (V + 1)  # SYRK flops (2 per multiply-add) for the Gram matrices
        passes = ", ".join(f"{_label(r)} {flops / pass_s(r) / r['n_workers'] / 1e9:.1f}" for r in ok)
        dist = [r for r in ok if r["dask_info"]["path"] == "distributed"]
        served = "; ".join(f"{_label(r)}: {_fmt_b(r['transfer_fit']['to_client'])} sent, "
                           f"{_fmt_b(r['dask_info']['bytes_from_cluster'])} in `dask_info_`" for r in dist)
        moved = [(r, r["transfer_fit"]["inter_worker_keys"].get("finish_block", 0)) for r in dist]
        moved = "; ".join(f"{_label(r)}: {_fmt_b(n)} of covariance blocks (`_finish_block`) were copied from one "
                          f"worker to the other besides D" for r, n in moved if n)
        lines += [
            f"The statistics pass generates every chunk, sums its columns and forms its Gram matrix by SYRK "
            f"({N:,} × {V:,}² / 2 = {N * V * (V + 1) / 2:.1e} multiply-adds in all); on one core one "
            f"{cfg['chunk_rows']:,}-row chunk takes {_fmt_s(rates['generate'])} to generate, "
            f"{_fmt_s(rates['sums'])} to centre it and sum its columns and {_fmt_s(rates['gram'])} for the Gram matrix "
            f"({rates['syrk_gflops']:.1f} GFLOP/s), so {n_chunks} chunks need about "
            f"{_fmt_s(n_chunks * (rates['generate'] + rates['sums'] + rates['gram']))} of one core. The pass's "
            f"effective Gram rate per worker (Gram flops / pass time / workers, generation included), in GFLOP/s: "
            f"{passes}. \"Workers' CPU\" is the CPU time the workers used during the pass; below 2 cores busy "
            f"with 2 workers means they waited for each other or for the scheduler, or that other processes "
            f"took the machine's cores.",
            "",
        ]
        names = dict(chunk_gram="per-chunk Gram matrices", add="partial sums of Gram matrices",
                     make_chunk="data chunks", chunk_sums="per-chunk column sums", add_sums="partial column sums")
        between = []
        for r in ok:
            keys = r["transfer_pass"]["inter_worker_keys"]
            if keys:
                top = sorted(keys.items(), key=lambda kv: -kv[1])
                between.append(f"{_label(r)}: " + ", ".join(f"{_fmt_b(n)} {names.get(k, k)}" for k, n in top
                                                             if n >= 0.01 * r["transfer_pass"]["inter_worker"]))
        if between:
            lines += ["What the pass moved between workers, by task: " + "; ".join(between) + ".", ""]
        if dist:
            lines += [
                f"On the distributed path the pass returns once every covariance strip is computed and checked on "
                f"its worker, and the products on a strip run where it lives. Between workers, during the fit "
                + (f"{moved}. " if moved else "only D moves. ")
                + f"The bytes the workers sent to the client during the fit (from their transfer logs) "
                + ("match" if all(abs(r["transfer_fit"]["to_client"] - r["dask_info"]["bytes_from_cluster"])
                                  <= 0.01 * r["dask_info"]["bytes_from_cluster"] for r in dist) else "differ from")
                + f" `bytes_from_cluster`: {served}.",
                "",
            ]
        lines += [
            "Peak RSS of the client includes the scheduler; its peak before the fit was "
            + ", ".join(f"{_fmt_gib(r['client_rss_before'])}" for r in ok) + " (in the order of the table).",
            "",
        ]
    # at scale
    a = at_scale(rates)
    s = SCALE
    lines += [
        "**At scale (arithmetic, not a run).** "
        f"V = {s['n_features']:,}, {_pow10(s['n_samples'])} samples in K = {s['n_datasets']} datasets, M = "
        f"{s['n_components']}, on {s['nodes']} nodes: the data are {_pow10(s['n_samples'])} × {s['n_features']:,} "
        f"× 8 B = {_fmt_b(a['data'])} ({_fmt_b(a['data'] / s['nodes'])} per node). The Gram matrices take N V²/2 = "
        f"{a['syrk']:.1e} multiply-adds by SYRK (the covariance path, one block per S_k), and N V (V + rows)/2 = "
        f"{a['gemm']:.1e} on the distributed path, whose S_k is kept as {a['n_blocks']} strips above the diagonal "
        f"of {a['block_rows']} rows (at most dask's `array.chunk-size`, {_fmt_b(a['block_bytes'])}) formed by "
        f"GEMM. At the "
        f"{rates['syrk_gflops'] / 2:.0f} G multiply-adds/s per core measured above for SYRK "
        f"({rates['syrk_gflops']:.0f} GFLOP/s) and assuming {s['cores_per_node']} such cores per node "
        f"({a['cores']:,} cores), that is "
        f"{a['syrk_seconds'] / 60:.0f} min of arithmetic (SYRK) or {a['gemm_seconds'] / 60:.0f} min (GEMM), "
        f"not counting the time to read {_fmt_b(a['data'])}. The {s['n_datasets']} covariances take K V² · 8 = "
        f"{_fmt_b(a['cov_bytes'])} ({_fmt_b(a['gram_bytes'])} each): {_fmt_b(a['cov_per_node'])} per node on "
        f"the distributed path (about half that in strips). A chunk of r rows holds r V · 8 bytes of data but "
        f"adds partial Gram matrices of V² · 8 = {_fmt_b(a['gram_bytes'])} (SYRK; about half in strips) to the "
        f"reduction tree whatever r, so chunks should have at least V rows ({_fmt_b(a['gram_bytes'])} each) to "
        f"keep the tree's traffic to the size of the data; on the covariance path "
        f"each node of the tree adds 8 full V × V matrices ({_fmt_b(9 * a['gram_bytes'])} in one task). "
        f"Per evaluation on the distributed path D (V M · 8 = "
        f"{_fmt_b(a['d_bytes'])}) goes to each node holding blocks and S_k D (K V M · 8 = {_fmt_b(a['sd_bytes'])}) "
        f"comes back, so an iteration is bound by the round trip's latency (measured above) rather than by "
        f"bandwidth. The client's default budget (`memory_budget=\"auto\"`: half the memory available to it) "
        f"chooses the covariance path only when more than {_fmt_b(2 * a['cov_bytes'])} is free, so a client with "
        f"24 GiB like this machine would choose the distributed path.",
        "",
    ]
    return "\n".join(lines)


def write_section(path, section):
    """Replace the ``## Dask cluster`` section of path (from its heading to the end) or append it."""
    old = path.read_text(encoding="utf-8") if path.exists() else ""
    lines = old.splitlines(keepends=True)
    for i, line in enumerate(lines):
        if line.startswith(SECTION):
            old = "".join(lines[:i])
            break
    old = old.rstrip("\n")
    path.write_text((old + "\n\n" if old else "") + section.rstrip("\n") + "\n", encoding="utf-8")


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10⁵ samples × 500 variables, to check the script")
    parser.add_argument("--out", type=Path, help="replace (or append) the Dask cluster section of this Markdown file")
    parser.add_argument("--runs", default="1c,1d,2c,2d",
                        help="which runs, as <workers><c|d> (covariance or distributed path); default all four")
    parser.add_argument("--task", help=argparse.SUPPRESS)
    parser.add_argument("--outdir", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    config = "quick" if args.quick else "full"
    cfg = CONFIGS[config]
    if args.task == "rates":
        print(json.dumps(chunk_rates(config)))
        return 0
    if args.task:
        path, workers = args.task.split(":")
        print(json.dumps(run_one(config, path, int(workers), args.outdir)))
        return 0

    chosen = [(("covariance" if r[-1] == "c" else "distributed"), int(r[:-1])) for r in args.runs.split(",")]
    load0 = os.getloadavg()
    start = time.perf_counter()
    mach = machine()
    flag = ["--quick"] if args.quick else []
    print("timing one chunk on one core ...", file=sys.stderr, flush=True)
    single = {f"{v}_NUM_THREADS": "1" for v in ("OPENBLAS", "OMP", "MKL")}
    rates = _subprocess([*flag, "--task", "rates"], 300, single)
    print(f"  {rates}", file=sys.stderr, flush=True)
    runs = []
    with tempfile.TemporaryDirectory(prefix="mg-dask-bench-") as outdir:
        for path, workers in RUNS:
            if (path, workers) not in chosen:
                continue
            print(f"{workers} worker(s), {path} path ...", file=sys.stderr, flush=True)
            t = time.perf_counter()
            r = _subprocess([*flag, "--task", f"{path}:{workers}", "--outdir", outdir], cfg["run_timeout"])
            r.setdefault("path_requested", path)
            r.setdefault("n_workers", workers)
            print(f"  {time.perf_counter() - t:.0f} s: " + (r["error"] if "error" in r else
                  f"wall {r['wall']:.1f} s, pass {r['dask_info']['statistics_seconds']:.1f} s, fit "
                  f"{r['dask_info']['fit_seconds']:.1f} s, {r['n_iter']} iterations"), file=sys.stderr, flush=True)
            runs.append(r)
        comparisons = compare_runs(runs, outdir)
    shown = flag + (["--out", str(args.out)] if args.out else [])
    if args.runs != parser.get_default("runs"):
        shown += ["--runs", args.runs]
    text = report(cfg, config, runs, comparisons, rates, mach, shown, time.perf_counter() - start,
                  (load0, os.getloadavg()))
    print(text)
    if args.out:
        write_section(args.out, text)
        raw = dict(config=config, settings=cfg, machine=mach, chunk_rates=rates, runs=runs, comparisons=comparisons,
                   at_scale=dict(assumptions=SCALE, **at_scale(rates)))
        args.out.with_name(args.out.stem + "_dask_cluster.json").write_text(
            json.dumps(raw, indent=1, default=str) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
