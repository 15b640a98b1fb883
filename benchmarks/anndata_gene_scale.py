"""Gene-scale fit through the AnnData path, as a single-cell user runs it.

    python benchmarks/anndata_gene_scale.py            # all variants, a Markdown report on stdout
    python benchmarks/anndata_gene_scale.py --variants numpy dense32

V = 17,737 genes, K = 4 groups of 160/266/305/160 cells, M = 20, ρ = 0.09: paper-style synthetic
data from ``metaglasso.datasets.make_synthetic(17737, [160, 266, 305, 160], 4, 20, random_state=0)``.
Each variant runs in its own worker process, so that its peak RSS is its own:

- ``numpy``: the plain ``fit(Xs)`` on the four float64 arrays (the baseline);
- ``dense64`` / ``dense32``: an AnnData with a dense float64 / float32 ``X`` (cells × genes, the
  groups' cells interleaved at random as in a real object) and a categorical ``obs["group"]``;
- ``dense64sorted``: float64 with the cells sorted by group, so that every group is a contiguous
  block of rows that the fit reads in place (no copy of the data);
- ``csr32``: the same float32 values as a scipy.sparse CSR matrix. Synthetic Gaussian data have no
  zeros, so every entry is stored: this measures the cost of the sparse path, not a saving.

Stages: generating the data, building the AnnData, ``datasets_from_anndata`` on its own (what
``fit`` does first; timed separately and its result discarded), ``fit(adata, groupby="group")``,
``write_anndata`` and an ``.h5ad`` write and read. For each stage: wall time (best of 3 for the
fits, once for the other stages), the process's peak
RSS after it (``resource.getrusage``, which only grows), the Python/NumPy memory held at its start
and the most it allocated on top of that (tracemalloc; the C++ core's own buffers are not counted
there).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
import tracemalloc

V, SIZES, K, M, ALPHA = 17737, [160, 266, 305, 160], 4, 20, 0.09
FIT_REPEAT = 3  # the fits' wall times are the best of 3 (the machine's cores are shared)
VARIANTS = ("numpy", "dense64", "dense64sorted", "dense32", "csr32")


def _rss_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def worker(variant):
    import numpy as np

    import metaglasso
    from metaglasso import MetaGraphicalLasso
    from metaglasso.datasets import make_synthetic

    stages = []
    tracemalloc.start()

    def stage(name, fn, repeat=1):
        tracemalloc.reset_peak()
        held = tracemalloc.get_traced_memory()[0]
        walls = []
        for _ in range(repeat):
            t0 = time.perf_counter()
            out = fn()
            walls.append(time.perf_counter() - t0)
        wall = min(walls)
        peak = tracemalloc.get_traced_memory()[1]
        stages.append(dict(stage=name, wall=wall, rss=_rss_mib(), held=held / 2**20, extra=(peak - held) / 2**20))
        return out

    base_rss = _rss_mib()
    Xs, _ = stage("generate data", lambda: make_synthetic(V, SIZES, K, M, random_state=0))
    model = MetaGraphicalLasso(n_components=M, alpha=ALPHA)
    if variant == "numpy":
        stage("fit(Xs)", lambda: model.fit(Xs), repeat=FIT_REPEAT)
    else:
        import anndata as ad
        import pandas as pd
        import scipy.sparse as sp

        from metaglasso.bio import datasets_from_anndata, write_anndata

        def build():
            labels = np.repeat([f"group{k}" for k in range(K)], SIZES)
            rng = np.random.default_rng(0)
            order = np.arange(len(labels)) if variant == "dense64sorted" else rng.permutation(len(labels))
            dtype = np.float64 if variant.startswith("dense64") else np.float32
            X = np.vstack(Xs).astype(dtype, copy=False)[order]
            if variant == "csr32":
                X = sp.csr_matrix(X)
            obs = pd.DataFrame({"group": pd.Categorical(labels[order])}, index=[f"cell{i}" for i in range(len(labels))])
            var = pd.DataFrame(index=[f"gene{j}" for j in range(V)])
            return ad.AnnData(X=X, obs=obs, var=var)

        adata = stage("build AnnData", build)
        Xs.clear()  # from here on only the AnnData holds the data, as for a user
        stage("datasets_from_anndata (alone)", lambda: datasets_from_anndata(adata, "group"))
        stage("fit(adata, groupby=)", lambda: model.fit(adata, groupby="group"), repeat=FIT_REPEAT)
        stage("write_anndata", lambda: write_anndata(model, adata))
        with tempfile.TemporaryDirectory(prefix="anndata-bench-") as tmp:
            path = os.path.join(tmp, "cells.h5ad")
            stage("write_h5ad", lambda: adata.write_h5ad(path))
            stage("read_h5ad", lambda: ad.read_h5ad(path))
    tracemalloc.stop()
    return dict(variant=variant, base_rss=base_rss, stages=stages, n_iter=model.n_iter_,
                objective=model.objective_, converged=model.converged_,
                simd=metaglasso._core.simd_instruction_set())


def _machine():
    import numpy as np

    import metaglasso

    lines = [f"- {platform.processor() or platform.machine()}; {os.cpu_count()} logical cores "
             f"({len(os.sched_getaffinity(0))} usable), shared with other work",
             f"- Linux {platform.release()}; Python {platform.python_version()}; NumPy {np.__version__}; "
             f"metaglasso {metaglasso.__version__}"]
    try:
        import anndata
        import scipy
        from importlib.metadata import version

        lines.append(f"- anndata {version('anndata')}, SciPy {scipy.__version__}")
    except ImportError:
        pass
    lines.append(f"- load average at the start: {', '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants", nargs="+", choices=VARIANTS, default=list(VARIANTS))
    parser.add_argument("--worker", choices=VARIANTS, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(args.worker)))
        return
    print(f"## Gene scale through AnnData: V = {V:,}, K = {K}, N = {tuple(SIZES)}, M = {M}, ρ = {ALPHA}\n")
    print(_machine() + "\n")
    print("| variant | stage | wall | peak RSS after | Python/NumPy held at start | + most allocated in stage |")
    print("|---|---|---|---|---|---|")
    summary = []
    for variant in args.variants:
        out = subprocess.run([sys.executable, __file__, "--worker", variant], capture_output=True, text=True)
        if out.returncode:
            print(f"| {variant} | failed: {out.stderr.strip().splitlines()[-1]} | | | | |")
            continue
        res = json.loads(out.stdout.strip().splitlines()[-1])
        for s in res["stages"]:
            print(f"| {variant} | {s['stage']} | {s['wall']:.2f} s | {s['rss']:.0f} MiB | {s['held']:.0f} MiB "
                  f"| {s['extra']:.0f} MiB |")
        summary.append(f"- {variant}: {res['n_iter']} iterations, objective {res['objective']:.10g}, "
                       f"converged = {res['converged']}; peak RSS after imports {res['base_rss']:.0f} MiB; "
                       f"products for {res['simd']}")
    print("\n" + "\n".join(summary))


if __name__ == "__main__":
    main()
