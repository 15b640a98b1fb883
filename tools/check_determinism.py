#!/usr/bin/env python3
"""Check that examples/us_stocks.py gives the same factor tables for every instruction set and thread count.

Runs ``examples/us_stocks.py DATA --max-stocks N --alphas ... --tables FILE --out DIR --no-figures``
in a fresh subprocess for every combination of ``METAGLASSO_SIMD`` (the C++ core's products:
baseline, avx2, avx512) and thread count (``OMP_NUM_THREADS``, with ``OPENBLAS_NUM_THREADS`` and
``MKL_NUM_THREADS`` set to the same value), then compares every table of every run's JSON (see
``--tables`` in the example) with the first run's:

* the same keys in the same order, the same lengths (shapes), equal strings, None and booleans;
* integers exactly equal;
* floats equal to ``--rtol`` relative: ``abs(a - b) <= rtol * max(abs(a), abs(b))`` (NaN equals NaN).

It prints one line per run — the instruction set and thread count requested and the ones the run
actually used (``metaglasso._core.simd_instruction_set()`` and the core's thread count, as recorded
by the run), its wall time and its verdict — then the largest relative difference per table, and
says whether the results were bit-identical (they are expected to be). A requested instruction
set the machine does not support falls back to the widest one it does; such a run is reported as
a fallback and the set as not tested.

The C++ core is written to give bit-identical results for every instruction set and thread
count. Values the example computes with NumPy — the BIC (``MetaGraphicalLasso.bic``: matrix
products through NumPy's BLAS) — can differ in the last bit when the BLAS runs on another number
of threads; such values are listed as "equal to the tolerance but not bit for bit".
``--blas-threads 1`` keeps NumPy's BLAS on one thread in every run, so that only the core's
threads vary.

Usage::

    python tools/check_determinism.py [DATA] [--max-stocks 600] [--alphas 0.03 0.1 0.3]
        [--simd baseline avx2 avx512] [--threads 1 2] [--rtol 1e-6] [--keep DIR]
        [--blas-threads N] [--figures] [--require-bit-identical] [--timeout 600]

DATA defaults to ``../shared/data/us_stocks_2015_2017/us_stocks_20150320_20170331_strict.npz``
beside the repository. The default reduced set — the first 600 stocks (more than the 513 trading
days, so the fits run in the data's span as the full analysis does) and ρ ∈ {0.03, 0.1, 0.3}
(30, 8 and 3 edges over the three years) — takes about 3 s a run.

Exit status: 0 when every run agrees with the first; 1 on any difference or failed run; 2 on a
usage error (for example a missing data file).
"""

import argparse
import json
import math
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXAMPLE = os.path.join(ROOT, "examples", "us_stocks.py")
DEFAULT_DATA = os.path.normpath(os.path.join(
    ROOT, os.pardir, "shared", "data", "us_stocks_2015_2017", "us_stocks_20150320_20170331_strict.npz"))
DEFAULT_MAX_STOCKS = 600
DEFAULT_ALPHAS = (0.03, 0.1, 0.3)
DEFAULT_SIMD = ("baseline", "avx2", "avx512")
DEFAULT_THREADS = (1, 2)
DEFAULT_RTOL = 1e-6
THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
MAX_MESSAGES = 5  # differences kept per table (all are counted)


# ---- comparison ------------------------------------------------------------------------------

@dataclass
class TableDiff:
    """The comparison of one table of a run with the reference run's."""

    name: str
    rtol: float = DEFAULT_RTOL
    n_values: int = 0  # leaves compared (numbers, strings, booleans, None)
    max_rel_diff: float = 0.0  # over the numbers (integers included)
    bit_identical: bool = True
    n_differences: int = 0
    messages: list = field(default_factory=list)
    n_inexact: int = 0  # values equal to rtol but not bit for bit
    inexact: list = field(default_factory=list)  # their paths (the first few)

    @property
    def ok(self):
        return self.n_differences == 0

    def differ(self, path, text):
        self.n_differences += 1
        self.bit_identical = False
        if len(self.messages) < MAX_MESSAGES:
            self.messages.append(f"{path}: {text}")

    def not_bitwise(self, path):
        self.n_inexact += 1
        self.bit_identical = False
        if len(self.inexact) < MAX_MESSAGES:
            self.inexact.append(path)

    def walk(self, a, b, path):
        """Compare ``a`` (reference) with ``b`` recursively."""
        if isinstance(a, dict) and isinstance(b, dict):
            if list(a) != list(b):
                missing = [k for k in a if k not in b]
                extra = [k for k in b if k not in a]
                detail = (f"missing {missing}" if missing else "") + (", " if missing and extra else "") + (
                    f"extra {extra}" if extra else "")
                self.differ(path, f"keys differ ({detail or 'in another order'})")
            for k in a:
                if k in b:
                    self.walk(a[k], b[k], f"{path}.{k}")
            return
        if isinstance(a, list) and isinstance(b, list):
            if len(a) != len(b):
                self.differ(path, f"length {len(a)} vs {len(b)}")
            for i, (x, y) in enumerate(zip(a, b)):
                self.walk(x, y, f"{path}[{i}]")
            return
        self.n_values += 1
        if type(a) is not type(b):
            self.differ(path, f"type {type(a).__name__} vs {type(b).__name__} ({a!r} vs {b!r})")
        elif isinstance(a, float):
            self._floats(a, b, path)
        elif isinstance(a, int) and not isinstance(a, bool):
            if a != b:
                self.max_rel_diff = max(self.max_rel_diff, abs(a - b) / max(abs(a), abs(b)))
                self.differ(path, f"{a} vs {b}" + (" (sign flipped)" if a == -b else ""))
        elif a != b:  # str, bool, None and anything else JSON gives
            self.differ(path, f"{a!r} vs {b!r}")

    def _floats(self, a, b, path):
        if math.isnan(a) or math.isnan(b):
            if not (math.isnan(a) and math.isnan(b)):
                self.max_rel_diff = math.inf
                self.differ(path, f"{a!r} vs {b!r}")
            return
        if a == b:  # equal values; 0.0 and -0.0 are equal but not the same bits
            if a.hex() != b.hex():
                self.not_bitwise(path)
            return
        scale = max(abs(a), abs(b))
        rel = abs(a - b) / scale if math.isfinite(scale) else math.inf
        self.max_rel_diff = max(self.max_rel_diff, rel)
        if abs(a - b) <= self.rtol * scale:
            self.not_bitwise(path)
        else:
            self.differ(path, f"{a!r} vs {b!r} (relative difference {rel:.3g}"
                              + (", sign flipped" if a == -b else "") + ")")


def compare_tables(reference, other, *, rtol=DEFAULT_RTOL):
    """Compare two mappings of tables (name → JSON value); returns {name: TableDiff}.

    Every table of either mapping is compared; one missing from ``other`` (or only in ``other``)
    is a difference (under its own name). The order of the tables themselves is checked too (a
    difference reported under ``"(tables)"``).
    """
    out = {}
    for name in list(reference) + [k for k in other if k not in reference]:
        diff = TableDiff(name, rtol=rtol)
        if name not in other:
            diff.differ(name, "missing from this run")
        elif name not in reference:
            diff.differ(name, "not in the reference run")
        else:
            diff.walk(reference[name], other[name], name)
        out[name] = diff
    common = [k for k in reference if k in other]
    if common != [k for k in other if k in reference]:
        diff = TableDiff("(tables)", rtol=rtol)
        diff.differ("(tables)", "tables in another order")
        out["(tables)"] = diff
    return out


def compare_documents(reference, other, *, rtol=DEFAULT_RTOL):
    """Compare two ``--tables`` JSON documents: their ``format`` and ``input`` (as one table
    ``"input"``) and every table under ``tables``; ``run`` (how each was made) is not compared."""
    head = TableDiff("input", rtol=rtol)
    head.walk({"format": reference.get("format"), "input": reference.get("input")},
              {"format": other.get("format"), "input": other.get("input")}, "input")
    return {"input": head, **compare_tables(reference.get("tables", {}), other.get("tables", {}), rtol=rtol)}


def agree(diffs):
    """Whether a result of :func:`compare_tables` or :func:`compare_documents` has no difference."""
    return all(d.ok for d in diffs.values())


# ---- runs ------------------------------------------------------------------------------------

@dataclass
class Run:
    simd: str  # requested
    threads: int  # requested
    seconds: float = math.nan
    returncode: int = None
    error: str = ""
    document: dict = None

    @property
    def simd_used(self):
        return None if self.document is None else self.document["run"]["simd_instruction_set"]

    @property
    def threads_used(self):
        return None if self.document is None else self.document["run"]["n_threads"]


def run_example(data, folder, simd, threads, *, max_stocks, alphas, figures=False, timeout=600, blas_threads=None):
    """One run of the example in a fresh interpreter; returns a :class:`Run`.

    ``OMP_NUM_THREADS`` (the core's threads) is ``threads``; ``OPENBLAS_NUM_THREADS`` and
    ``MKL_NUM_THREADS`` (NumPy's BLAS) too, unless ``blas_threads`` is given.
    """
    os.makedirs(folder, exist_ok=True)
    tables = os.path.join(folder, "tables.json")
    cmd = [sys.executable, EXAMPLE, data, "--max-stocks", str(max_stocks), "--alphas",
           *[repr(float(a)) for a in alphas], "--tables", tables, "--out", folder]
    if not figures:
        cmd.append("--no-figures")
    env = dict(os.environ, METAGLASSO_SIMD=simd, MPLBACKEND="Agg")
    env.update({var: str(threads) for var in THREAD_VARIABLES})
    if blas_threads is not None:
        env.update({var: str(blas_threads) for var in THREAD_VARIABLES if var != "OMP_NUM_THREADS"})
    run = Run(simd, threads)
    start = time.perf_counter()
    try:
        proc = subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                              timeout=timeout, cwd=ROOT)
    except subprocess.TimeoutExpired:
        run.seconds = time.perf_counter() - start
        run.error = f"timed out after {timeout} s"
        return run
    run.seconds = time.perf_counter() - start
    run.returncode = proc.returncode
    with open(os.path.join(folder, "stderr.txt"), "w", encoding="utf-8") as fh:
        fh.write(proc.stderr)
    if proc.returncode != 0:
        run.error = f"exit status {proc.returncode}: " + "\n".join(proc.stderr.strip().splitlines()[-8:])
        return run
    try:
        with open(tables, encoding="utf-8") as fh:
            run.document = json.load(fh)
    except (OSError, ValueError) as exc:
        run.error = f"no readable tables file {tables}: {exc}"
    return run


def _fmt_rel(x):
    return "0" if x == 0 else f"{x:.2g}"


def _cpu_flags():
    """The SIMD-related CPU flags of /proc/cpuinfo (Linux), or None when unknown."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    return [f for f in ("avx2", "fma", "avx512f", "avx512dq", "avx512bw", "avx512vl") if f in flags]
    except OSError:
        pass
    return None


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     epilog="See the module docstring for the rules of the comparison.")
    parser.add_argument("data", nargs="?", default=DEFAULT_DATA,
                        help="us_stocks_20150320_20170331_strict.npz "
                             "(default: ../shared/data/us_stocks_2015_2017/... beside the repository)")
    parser.add_argument("--max-stocks", type=int, default=DEFAULT_MAX_STOCKS,
                        help=f"stocks of the reduced set (default {DEFAULT_MAX_STOCKS})")
    parser.add_argument("--alphas", type=float, nargs="+", default=list(DEFAULT_ALPHAS),
                        help=f"BIC grid of ρ (default {' '.join(f'{a:g}' for a in DEFAULT_ALPHAS)})")
    parser.add_argument("--simd", nargs="+", default=list(DEFAULT_SIMD), choices=DEFAULT_SIMD,
                        help="values of METAGLASSO_SIMD (default: all three)")
    parser.add_argument("--threads", type=int, nargs="+", default=list(DEFAULT_THREADS),
                        help="thread counts (default 1 2)")
    parser.add_argument("--rtol", type=float, default=DEFAULT_RTOL, help="relative tolerance (default 1e-6)")
    parser.add_argument("--keep", metavar="DIR", default=None,
                        help="keep every run's output (summary.md, tables.json, stderr.txt) under DIR")
    parser.add_argument("--figures", action="store_true", help="let the example draw its figures too")
    parser.add_argument("--require-bit-identical", action="store_true",
                        help="also fail when the runs agree to --rtol but are not bit-identical")
    parser.add_argument("--timeout", type=float, default=600, help="seconds per run (default 600)")
    parser.add_argument("--blas-threads", type=int, default=None,
                        help="fix OPENBLAS_NUM_THREADS and MKL_NUM_THREADS (NumPy's BLAS) to this value in "
                             "every run instead of following --threads")
    args = parser.parse_args(argv)
    if not os.path.exists(args.data):
        parser.error(f"data file not found: {args.data}")
    if any(t < 1 for t in args.threads) or (args.blas_threads is not None and args.blas_threads < 1):
        parser.error("--threads and --blas-threads must be >= 1")

    combos = [(s, t) for s in args.simd for t in args.threads]
    if len(combos) < 2:
        parser.error("need at least two runs to compare (several --simd or --threads values)")
    work = args.keep or tempfile.mkdtemp(prefix="metaglasso-determinism.")
    flags = _cpu_flags()
    print(f"examples/us_stocks.py on {os.path.basename(args.data)}: first {args.max_stocks} stocks, ρ grid "
          f"{' '.join(f'{a:g}' for a in args.alphas)}; {len(combos)} runs; floats to {args.rtol:g} relative")
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores"
          + ("" if flags is None else f", CPU flags: {' '.join(flags) or 'none of avx2/avx512'}"))
    print("threads: OMP_NUM_THREADS, OPENBLAS_NUM_THREADS and MKL_NUM_THREADS set to each run's count"
          if args.blas_threads is None else
          f"threads: OMP_NUM_THREADS set to each run's count; OPENBLAS_NUM_THREADS = MKL_NUM_THREADS = "
          f"{args.blas_threads}")
    total = time.perf_counter()
    runs = []
    try:
        for i, (simd, threads) in enumerate(combos, 1):
            run = run_example(args.data, os.path.join(work, f"run{i}_{simd}_{threads}"), simd, threads,
                              max_stocks=args.max_stocks, alphas=args.alphas, figures=args.figures,
                              timeout=args.timeout, blas_threads=args.blas_threads)
            runs.append(run)
            used = run.simd_used or "?"
            print(f"  run {i}/{len(combos)}: METAGLASSO_SIMD={simd} threads={threads} -> {used}, "
                  f"{run.threads_used if run.threads_used is not None else '?'} thread(s), {run.seconds:.1f} s"
                  + (f"  FAILED: {run.error}" if run.error else ""), flush=True)
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)
    elapsed = time.perf_counter() - total
    return report(runs, requested=args.simd, rtol=args.rtol, require_bit_identical=args.require_bit_identical,
                  elapsed=elapsed, blas_threads=args.blas_threads)


def report(runs, *, requested=DEFAULT_SIMD, rtol=DEFAULT_RTOL, require_bit_identical=False, elapsed=None,
           blas_threads=None, out=print):
    """Compare the runs with the first that gave tables, print the summary; returns the exit status."""
    ok_runs = [r for r in runs if r.document is not None]
    failed = [r for r in runs if r.document is None]
    reference = ok_runs[0] if ok_runs else None
    index = {id(r): i for i, r in enumerate(runs, 1)}
    per_run = [(run, compare_documents(reference.document, run.document, rtol=rtol)) for run in ok_runs[1:]]
    per_table = {}
    if reference is not None:
        for name, d in compare_documents(reference.document, reference.document).items():
            per_table[name] = {"values": d.n_values, "max": 0.0, "bits": True, "n": 0, "worst": None}
    for run, diffs in per_run:
        for name, d in diffs.items():
            agg = per_table.setdefault(name, {"values": d.n_values, "max": 0.0, "bits": True, "n": 0, "worst": None})
            if d.max_rel_diff > agg["max"] or (agg["worst"] is None and not d.ok):
                agg["max"], agg["worst"] = d.max_rel_diff, run
            agg["bits"] &= d.bit_identical
            agg["n"] += d.n_differences

    out()
    out(f"{'run':>3}  {'METAGLASSO_SIMD':<15}  {'used':<19}  {'threads':>7}  {'used':>4}  {'wall':>6}  "
        f"{'max rel diff':>12}  vs run {index[id(reference)] if reference is not None else '-'}")
    verdicts = {id(run): diffs for run, diffs in per_run}
    for i, run in enumerate(runs, 1):
        if run.document is None:
            verdict, worst = f"FAILED: {run.error.splitlines()[0] if run.error else 'no tables'}", "-"
        elif run is reference:
            verdict, worst = "reference", "-"
        else:
            diffs = verdicts[id(run)]
            worst = _fmt_rel(max(d.max_rel_diff for d in diffs.values()))
            n = sum(d.n_differences for d in diffs.values())
            verdict = (f"DIFFERS ({n} difference{'s' if n != 1 else ''})" if n else
                       "bit-identical" if all(d.bit_identical for d in diffs.values()) else f"agrees to {rtol:g}")
        used = run.simd_used or "?"
        if run.simd_used is not None and run.simd_used != run.simd:
            used += " (fallback)"
        threads_used = "?" if run.threads_used is None else run.threads_used
        out(f"{i:>3}  {run.simd:<15}  {used:<19}  {run.threads:>7}  {threads_used:>4}  {run.seconds:>5.1f}s  "
            f"{worst:>12}  {verdict}")

    if per_table:
        out()
        out(f"{'table':<22}  {'values':>6}  {'max rel diff':>12}  {'bit-identical':>13}  differences")
        for name, agg in per_table.items():
            worst = agg["worst"]
            where = f" (largest in run {index[id(worst)]})" if worst is not None and agg["max"] > 0 else ""
            out(f"{name:<22}  {agg['values']:>6}  {_fmt_rel(agg['max']):>12}  {'yes' if agg['bits'] else 'no':>13}  "
                f"{agg['n']}{where}")
    inexact = []
    for run, diffs in per_run:
        paths = [p for d in diffs.values() if d.ok for p in d.inexact]
        n_more = sum(d.n_inexact - len(d.inexact) for d in diffs.values() if d.ok)
        if paths:
            inexact.append(f"  run {index[id(run)]} ({run.simd}, {run.threads} thread(s)): {', '.join(paths)}"
                           + (f" and {n_more} more" if n_more else ""))
    if inexact:
        out()
        out("equal to the tolerance but not bit for bit:")
        for line in inexact:
            out(line)
    for run, diffs in per_run:
        bad = [d for d in diffs.values() if not d.ok]
        if bad:
            out()
            out(f"run {index[id(run)]} ({run.simd}, {run.threads} thread(s)) differs from run "
                f"{index[id(reference)]}:")
            for d in bad:
                for message in d.messages:
                    out(f"  {message}")
                if d.n_differences > len(d.messages):
                    out(f"  ... {d.n_differences - len(d.messages)} more in {d.name}")

    # ---- what was tested -----------------------------------------------------------------------
    out()
    used_sets = sorted({r.simd_used for r in ok_runs},
                       key=lambda v: (DEFAULT_SIMD.index(v) if v in DEFAULT_SIMD else len(DEFAULT_SIMD), v))
    untested = [v for v in dict.fromkeys(requested) if v not in used_sets]
    out(f"instruction sets tested: {', '.join(used_sets) or 'none'}"
        + (f"; NOT tested (not supported here, or no run succeeded): {', '.join(untested)}" if untested else ""))
    used_threads = sorted({r.threads_used for r in ok_runs})
    mismatch = [r for r in ok_runs if r.threads_used != r.threads]
    out(f"core thread counts tested: {', '.join(map(str, used_threads)) or 'none'}"
        + (f"; {len(mismatch)} run(s) did not get the requested count" if mismatch else ""))
    if runs:
        out(f"wall time: " + (f"{elapsed:.1f} s for " if elapsed is not None else "") + f"{len(runs)} runs "
            f"({min(r.seconds for r in runs):.1f}–{max(r.seconds for r in runs):.1f} s each)")

    if failed or not per_run:
        out(f"RESULT: FAILED — {len(failed)} run(s) gave no tables" if failed
            else "RESULT: FAILED — nothing to compare")
        return 1
    if any(not agree(diffs) for _, diffs in per_run):
        out(f"RESULT: FAILED — the factor tables differ between runs (beyond {rtol:g} relative, or in keys, "
            "shapes, order, signs, integers or strings)")
        return 1
    if all(d.bit_identical for _, diffs in per_run for d in diffs.values()):
        out(f"RESULT: OK — all {len(runs)} runs give the same factor tables, bit-identical")
        return 0
    largest = max(d.max_rel_diff for _, diffs in per_run for d in diffs.values())
    hint = "" if blas_threads is not None else (
        "; NumPy's BLAS followed the thread count — rerun with --blas-threads 1 to tell it from the C++ core")
    if require_bit_identical:
        out(f"RESULT: FAILED — the runs agree to {rtol:g} but are not bit-identical "
            f"(largest relative difference {largest:.2g}){hint}")
        return 1
    out(f"RESULT: OK — all {len(runs)} runs agree to {rtol:g} relative, but NOT bit-identical "
        f"(largest relative difference {largest:.2g}){hint}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
