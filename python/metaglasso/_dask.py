"""Fitting datasets held as Dask arrays: sufficient statistics on the cluster, the solve in the core.

The fit needs dataset k only through N_k, its mean and its covariance S_k, and S_k only through the
products S_k D and Dᵀ S_k D. One distributed pass over the rows of every dataset computes N_k, the
column sums and sums of squares and the Gram matrix of the rows, shifted by a reference row mean
c_k (the mean of the first chunk's first 1,000 rows — a small read before the pass — so that
S_k = G_k/N_k − δ δᵀ with δ = mean_k − c_k loses no precision to cancellation, whatever the offset
of the data). Each chunk's Gram matrix (one BLAS call per chunk and row block; SYRK when a block is
the whole matrix) is summed up a tree of tasks (8 at a time), so no worker holds more than a few
partial sums. Then, by the size K·V²·8 bytes of the covariances against ``memory_budget``:

- ``"covariance"``: the K covariances are gathered into the client and fitted by
  :meth:`MetaGraphicalLasso.fit_covariances`'s core path;
- ``"distributed"``: each S_k stays on the cluster as strips S[lo:hi, lo:] above the diagonal, row
  blocks of at most ``array.chunk-size`` (dask's configuration) bytes — about half of S_k, formed
  by GEMMs of about half the multiply-adds of full rows — and every evaluation of the objective
  computes S_k D for all K datasets there in one round trip: D (V × M) goes to the workers, each
  strip's two shares (its rows, and by symmetry the rows below it) are added on the cluster and
  S_k D comes back, while the core (through :class:`metaglasso._core.CovarianceProducts`) does the
  rest. The pass returns once every strip is computed and checked.

Works with any Dask scheduler: a ``distributed.Client`` if one is active, the threaded scheduler
otherwise.
"""

from __future__ import annotations

import logging
import math
import numbers
import sys
import time

import numpy as np

from metaglasso import _core

logger = logging.getLogger("metaglasso")

# Tasks summed per node of the reduction tree.
_SPLIT_EVERY = 8
# Rows of the first chunk that give the shift c_k.
_SHIFT_ROWS = 1000


def is_dask_array(obj) -> bool:
    """Whether obj is a dask.array.Array (without importing dask)."""
    module = sys.modules.get("dask.array")
    return module is not None and isinstance(obj, getattr(module, "Array", ()))


def any_dask(Xs) -> bool:
    """Whether a sequence of datasets holds a Dask array."""
    if is_dask_array(Xs):
        return True
    try:
        return any(is_dask_array(X) for X in Xs)
    except TypeError:
        return False


def _format_bytes(n):
    for unit in ("bytes", "kB", "MB", "GB", "TB"):
        if abs(n) < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1000.0
    return f"{n} bytes"  # pragma: no cover


_BYTE_UNITS = {"": 1, "b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12, "pb": 10**15,
               "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40, "pib": 2**50}


def check_memory_budget(value):
    """``memory_budget`` as bytes (int > 0), or None for "auto". Strings are a number and a unit
    ("4GB", "512 MiB", "1e9"), as dask writes sizes."""
    original = value
    message = f"memory_budget must be 'auto', a number of bytes or a string like '4GB'; got {value!r}"
    if value is None or (isinstance(value, str) and value == "auto"):
        return None
    if isinstance(value, str):
        text = value.strip().lower().replace(" ", "")
        number = text.rstrip("abcdefghijklmnopqrstuvwxyz")
        unit = text[len(number):]
        try:
            value = float(number) * _BYTE_UNITS[unit]
        except (ValueError, KeyError):
            raise ValueError(message) from None
    elif isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(message)
    if not math.isfinite(value) or value < 1:
        raise ValueError(f"memory_budget must be at least 1 byte; got {original!r}")
    return int(value)


def _auto_budget():
    """Half of the memory available to the client now."""
    try:
        import psutil

        return int(psutil.virtual_memory().available // 2)
    except ImportError:  # pragma: no cover - psutil comes with distributed
        import os

        return int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") // 2)


def check_dask_datasets(Xs, labels=None, name="Xs"):
    """The datasets as 2-D real Dask arrays with one column chunk (rechunked lazily if needed).

    NumPy arrays among them are wrapped (one chunk). Sizes along the rows may be unknown (e.g. after
    boolean indexing): the statistics pass counts the rows.
    """
    import dask.array as da

    if is_dask_array(Xs):
        if Xs.ndim != 3:
            raise ValueError(f"{name} must be a sequence of 2-D arrays (n_samples_k, n_features) or a 3-D array; "
                             f"got a dask array with ndim={Xs.ndim}")
        Xs = [Xs[k] for k in range(Xs.shape[0])]
    elif isinstance(Xs, (str, bytes)) or not hasattr(Xs, "__len__"):
        raise ValueError(f"{name} must be a sequence of 2-D arrays; got {type(Xs).__name__}")
    if len(Xs) == 0:
        raise ValueError(f"{name} must contain at least one dataset; got an empty sequence")
    labels = labels or [f"{name}[{k}]" for k in range(len(Xs))]
    out = []
    for k, X in enumerate(Xs):
        label = labels[k]
        if not is_dask_array(X):
            X = da.from_array(np.asarray(X))
        if X.ndim != 2:
            raise ValueError(f"{label} must be 2-D (n_samples, n_features); got ndim={X.ndim}")
        meta = getattr(X, "_meta", None)
        if meta is not None and not isinstance(meta, np.ndarray):
            raise ValueError(f"{label} must have dense NumPy chunks; got chunks of type {type(meta).__name__} "
                             f"(e.g. X.map_blocks(lambda b: b.toarray()) densifies sparse chunks lazily)")
        dtype = X.dtype
        if np.issubdtype(dtype, np.complexfloating) or not (np.issubdtype(dtype, np.number) or dtype == bool):
            raise ValueError(f"{label} must be real and numeric; got dtype {dtype}")
        V = X.shape[1]
        if not isinstance(V, numbers.Integral) or V < 1:
            raise ValueError(f"{label} must have a known number of features >= 1; got shape {X.shape}")
        if out and V != out[0].shape[1]:
            raise ValueError(f"all datasets must have the same number of features; {labels[0]} has "
                             f"{out[0].shape[1]}, {label} has {V}")
        if len(X.chunks[1]) != 1:
            X = X.rechunk({1: -1})
        out.append(X)
    return out, labels


# --- tasks: module-level functions, so that workers import them instead of unpickling closures ---

def _as_float(x):
    return np.asarray(x, dtype=np.float64)


def _head_mean(x):
    x = _as_float(x)[:_SHIFT_ROWS]
    return x.mean(axis=0) if x.shape[0] else np.zeros(x.shape[1])


def _centre(x, shift):
    """One chunk of rows as float64, shifted by c: computed once and read by the sums and every Gram block."""
    return _as_float(x) - shift


def _chunk_sums(x):
    """(n, Σ x, Σ x², all finite) of one chunk of rows."""
    x = _as_float(x)
    return x.shape[0], x.sum(axis=0), np.einsum("ij,ij->j", x, x), bool(np.isfinite(x).all())


def _add_sums(*parts):
    n = sum(p[0] for p in parts)
    return n, sum(p[1] for p in parts), sum(p[2] for p in parts), all(p[3] for p in parts)


def _chunk_gram(xc, lo, hi):
    """xc[:, lo:hi]ᵀ xc[:, lo:] of one centred chunk of rows: the strip of its Gram matrix in rows
    lo..hi−1 and columns lo.. (the blocks on and above the diagonal: the strips of all row blocks
    together cost about half the multiply-adds of the whole matrix)."""
    if lo == 0 and hi == xc.shape[1]:
        from scipy.linalg.blas import dsyrk

        # The upper triangle of xcᵀ xc by SYRK; xcᵀ is Fortran-ordered, so it is passed without a copy.
        return dsyrk(1.0, xc.T, trans=0, lower=0)
    return xc[:, lo:hi].T @ xc[:, lo:]


def _add(*parts):
    out = parts[0].copy()
    for p in parts[1:]:
        out += p
    return out


def _finish_block(gram, sums, lo, hi, centred):
    """S[lo:hi, lo:] of S = G/N − δ δᵀ (δ = mean − c; δ = 0 for data taken as centred), its diagonal
    block made exactly symmetric; the whole S when the block is all of it."""
    n = sums[0]
    block = gram / n
    if not centred:
        delta = sums[1] / n
        block -= np.outer(delta[lo:hi], delta[lo:])
    if lo == 0 and hi == block.shape[1]:  # a SYRK upper triangle: the whole matrix
        return np.triu(block) + np.triu(block, 1).T
    square = block[:, :hi - lo]
    square[...] = 0.5 * (square + square.T)
    return block


def _block_finite(block):
    return bool(np.isfinite(block).all())


def _finish_stats(sums, shift, centred):
    """(N, mean, tr S, all finite)."""
    n, s, ss, finite = sums
    if centred:
        return n, np.zeros_like(s), float(np.sum(ss) / n), finite
    delta = s / n
    return n, shift + delta, float(np.sum(ss / n - delta * delta)), finite


def _strip_times(strip, D, lo, hi):
    """The two shares of S D of the strip T = S[lo:hi, lo:]: T D[lo:] for rows lo..hi−1 and
    T[:, hi − lo:]ᵀ D[lo:hi] for rows hi.. (the blocks below the diagonal, by symmetry)."""
    return strip @ D[lo:], strip[:, hi - lo:].T @ D[lo:hi]


def _assemble(parts, bounds):
    """S D from the shares of all strips of S, added in strip order."""
    first, _ = parts[0]
    V = bounds[-1][1]
    SD = np.zeros((V, first.shape[1]))
    for (own, below), (lo, hi) in zip(parts, bounds):
        SD[lo:hi] += own
        SD[hi:] += below
    return SD


def _tree(delayed, func, parts):
    while len(parts) > 1:
        parts = [delayed(func, pure=True)(*parts[i:i + _SPLIT_EVERY]) for i in range(0, len(parts), _SPLIT_EVERY)]
    return parts[0]


class _Statistics:
    """Per dataset: delayed (N, mean, tr S, finite) and the delayed strips S[lo:hi, lo:] of S_k."""

    def __init__(self, X, shift, bounds, assume_centered):
        from dask import delayed

        chunks = [delayed(_centre, pure=True)(c, shift) for c in X.to_delayed().ravel()]
        sums = _tree(delayed, _add_sums, [delayed(_chunk_sums, pure=True)(c) for c in chunks])
        self.stats = delayed(_finish_stats, pure=True)(sums, shift, assume_centered)
        self.blocks = []
        for lo, hi in bounds:
            gram = _tree(delayed, _add, [delayed(_chunk_gram, pure=True)(c, lo, hi) for c in chunks])
            self.blocks.append(delayed(_finish_block, pure=True)(gram, sums, lo, hi, assume_centered))


class DaskCovariances(_core.CovarianceProducts):
    """K covariances kept on the cluster as strips of rows above the diagonal, S[lo:hi, lo:] for each
    row block (about half of each S_k); S_k D computed there at every evaluation.

    With a distributed client the tasks on a strip ask for the worker that holds it (a loose
    restriction: another worker only if that one is gone), so strips are not copied between
    workers. Records what each call of :meth:`project` moved between the client and the cluster.
    """

    def __init__(self, blocks, bounds, n_samples, traces, n_features):
        super().__init__()
        self._blocks = blocks
        self._bounds = list(bounds)
        self._holders = _holders(blocks)
        self._n = [int(n) for n in n_samples]
        self._traces = [float(t) for t in traces]
        self._V = int(n_features)
        self.n_calls = 0
        self.bytes_to_cluster = 0
        self.bytes_from_cluster = 0
        self.seconds = 0.0

    def n_datasets(self):
        return len(self._blocks)

    def n_features(self):
        return self._V

    def dimension(self):
        return self._V

    def n_samples(self, k):
        return self._n[k]

    def trace(self, k):
        return self._traces[k]

    def project(self, D, datasets):
        import dask
        from dask import delayed

        start = time.perf_counter()
        D = np.ascontiguousarray(D)
        Dd = delayed(D, pure=True)  # one key: shipped once to each worker that needs it
        tasks = []
        for k in datasets:
            parts = []
            for i, (b, (lo, hi)) in enumerate(zip(self._blocks[k], self._bounds)):
                with dask.annotate(**self._where(k, i)):
                    parts.append(delayed(_strip_times, pure=True, nout=2)(b, Dd, lo, hi))
            # One S_k D per dataset comes back: the shares are added on the cluster.
            tasks.append(parts[0][0] if len(parts) == 1 else delayed(_assemble, pure=True)(parts, self._bounds))
        out = []
        for SD in dask.compute(*tasks):
            SD = np.asarray(SD)
            DtSD = D.T @ SD
            out.append((SD, 0.5 * (DtSD + DtSD.T)))
            self.bytes_from_cluster += SD.nbytes
        self.n_calls += 1
        self.bytes_to_cluster += D.nbytes
        self.seconds += time.perf_counter() - start
        return out

    def _where(self, k, i):
        if self._holders is None or not self._holders[k][i]:
            return {}
        return dict(workers=self._holders[k][i], allow_other_workers=True)

    def matrix(self, k):
        """S_k (V, V) gathered into the client — for checks on small problems."""
        import dask

        S = np.zeros((self._V, self._V))
        for strip, (lo, hi) in zip(dask.compute(*self._blocks[k]), self._bounds):
            S[lo:hi, lo:] = strip
            S[hi:, lo:hi] = strip[:, hi - lo:].T
        return S


def _holders(blocks):
    """The workers holding each persisted strip, when a distributed client holds them; else None."""
    try:
        from distributed import default_client, futures_of
        client = default_client()
    except (ImportError, ValueError):
        return None
    futures = [[futures_of(b) for b in strips] for strips in blocks]
    flat = [f for strips in futures for fs in strips for f in fs]
    if not flat:
        return None
    who = client.who_has(flat)  # keyed by the futures' keys
    return [[sorted({w for f in fs for w in who.get(f.key, ())}) for fs in strips] for strips in futures]


def _chunk_projected(x, centre, D):
    """(n, Pᵀ P, Σ (x − c)²) of one chunk of rows, P = (x − c) D."""
    xc = _as_float(x) - centre
    P = xc @ D
    return x.shape[0], P.T @ P, float(np.einsum("ij,ij->", xc, xc))


def _add_projected(*parts):
    return sum(p[0] for p in parts), _add(*[p[1] for p in parts]), sum(p[2] for p in parts)


def projected_moments(Xs, D, centres):
    """Per dataset (N_k, Dᵀ S_k D, tr S_k), S_k centred at centres[k] (None: the dataset's own mean),
    in one pass over the data (two for datasets without a centre)."""
    import dask
    from dask import delayed

    chunks = [list(X.to_delayed().ravel()) for X in Xs]
    missing = [k for k, c in enumerate(centres) if c is None]
    if missing:
        sums = dask.compute(*[_tree(delayed, _add_sums, [delayed(_chunk_sums, pure=True)(c) for c in chunks[k]])
                              for k in missing])
        centres = list(centres)
        for k, (n, s, _, _) in zip(missing, sums):
            centres[k] = s / n
    D = np.ascontiguousarray(D)
    Dd = delayed(D, pure=True)
    totals = dask.compute(*[_tree(delayed, _add_projected,
                                  [delayed(_chunk_projected, pure=True)(c, centre, Dd) for c in chunks[k]])
                            for k, centre in enumerate(centres)])
    return [(n, A / n, tr / n) for n, A, tr in totals]


def _row_bounds(V, per_block_bytes):
    rows = max(1, min(V, int(per_block_bytes) // (8 * V)))
    return [(lo, min(V, lo + rows)) for lo in range(0, V, rows)]


def plan(n_datasets, n_features, memory_budget):
    """(path, reason, budget bytes): "covariance" when the K covariances fit in the budget."""
    budget = _auto_budget() if memory_budget is None else memory_budget
    need = 8 * n_datasets * n_features * n_features
    if need <= budget:
        return "covariance", (f"the {n_datasets} covariances ({n_datasets} x {n_features}^2 float64 = "
                              f"{_format_bytes(need)}) fit in memory_budget={_format_bytes(budget)}: they are "
                              f"reduced on the cluster and gathered into the client"), budget
    return "distributed", (f"the {n_datasets} covariances ({n_datasets} x {n_features}^2 float64 = "
                           f"{_format_bytes(need)}) exceed memory_budget={_format_bytes(budget)}: they stay on the "
                           f"cluster in strips of rows, and S_k D is computed there at every evaluation"), budget


def statistics(Xs, labels, assume_centered, memory_budget):
    """One distributed pass over the datasets.

    Returns (path, reason, n_samples, means, traces, covariances or DaskCovariances, info dict).
    """
    import dask
    from dask import delayed

    t0 = time.perf_counter()
    K, V = len(Xs), Xs[0].shape[1]
    path, reason, budget = plan(K, V, memory_budget)
    logger.info("metaglasso: %d dask datasets of %d features, the %s path: %s", K, V, path, reason)
    if assume_centered:
        shifts = [np.zeros(V)] * K
    else:
        heads = [delayed(_head_mean, pure=True)(X.to_delayed().ravel()[0]) for X in Xs]
        shifts = [np.asarray(s, dtype=np.float64) for s in dask.compute(*heads)]
    if path == "covariance":
        bounds = [(0, V)]
    else:
        bounds = _row_bounds(V, dask.utils.parse_bytes(dask.config.get("array.chunk-size")))
    stats = [_Statistics(X, c, bounds, assume_centered) for X, c in zip(Xs, shifts)]
    if path == "covariance":
        results = dask.compute(*[(s.stats, s.blocks[0]) for s in stats])
        summaries = [r[0] for r in results]
        covariances = [np.ascontiguousarray(r[1]) for r in results]
    else:
        persisted = dask.persist(*[(s.stats, s.blocks) for s in stats])
        summaries = dask.compute(*[p[0] for p in persisted])
        # Waits for every strip (each checked where it lives), so that the pass is complete here.
        finite = dask.compute(*[[delayed(_block_finite, pure=True)(b) for b in p[1]] for p in persisted])
        covariances = None
    n_samples = np.array([int(s[0]) for s in summaries])
    for k, (label, s) in enumerate(zip(labels, summaries)):
        if not s[3]:
            raise ValueError(f"{label} contains NaN or infinite values")
        if not (all(finite[k]) if covariances is None else np.isfinite(covariances[k]).all()):
            raise ValueError(f"{label} is too large in magnitude: its covariance overflows double precision")
    means = np.zeros((K, V)) if assume_centered else np.stack([s[1] for s in summaries])
    traces = [s[2] for s in summaries]
    if covariances is None:
        covariances = DaskCovariances([p[1] for p in persisted], bounds, n_samples, traces, V)
    info = dict(path=path, reason=reason, memory_budget=budget, covariance_bytes=8 * K * V * V,
                n_blocks=len(bounds), statistics_seconds=time.perf_counter() - t0)
    return path, n_samples, means, traces, covariances, info
