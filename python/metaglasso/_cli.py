"""``metaglasso fit``, ``metaglasso select`` and ``metaglasso report``: fit data files from the
command line and write tables, figures, the model file and an HTML report."""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
import warnings

import numpy as np

__all__ = ["add_subcommands", "CLIError"]

_TABLE_SUFFIXES = (".csv", ".csv.gz", ".tsv", ".tsv.gz", ".txt", ".parquet", ".pq", ".npz")
MIN_SAMPLES = 2


class CLIError(Exception):
    """A problem with the command's input, reported as one line."""


# --------------------------------------------------------------------------------------------
# Progress
# --------------------------------------------------------------------------------------------

class _Progress:
    """A progress line on stderr: a bar over the fits of a grid with the current fit's iteration,
    objective and elapsed time, redrawn by a background thread (the core releases the GIL while it
    fits and reports each iteration through the estimator's callback, :meth:`update`). Without a
    terminal (or with ``enabled=False``) one plain line per fit is printed instead, unless quiet."""

    _SPIN = "|/-\\"

    def __init__(self, total, *, enabled=None, quiet=False, stream=None):
        self.stream = stream or sys.stderr
        self.total = max(int(total), 1)
        isatty = getattr(self.stream, "isatty", lambda: False)()
        self.live = (isatty if enabled is None else bool(enabled)) and not quiet
        self.plain = not self.live and not quiet
        self.done = 0
        self.label = ""
        self.detail = ""
        self.started = self.step_started = time.perf_counter()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = None

    def __enter__(self):
        self.started = time.perf_counter()
        if self.live:
            self._thread = threading.Thread(target=self._run, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            with self._lock:
                self.done = min(self.done, self.total)
                self._draw(final=True)
        return False

    def step(self, label):
        """The next fit starts (the previous one, if any, has finished)."""
        with self._lock:
            if self.label:
                self.done += 1
            self.label = label
            self.detail = ""
            self.step_started = time.perf_counter()
            if self.plain:
                print(f"[{self.done + 1}/{self.total}] {label}", file=self.stream, flush=True)

    def update(self, progress):
        """The estimator's callback: the current fit's iteration and objective (a FitProgress)."""
        with self._lock:
            self.detail = f"iteration {progress.iteration}, E {progress.objective:.8g}"

    def finish(self):
        with self._lock:
            if self.label:
                self.done += 1
                self.label = ""

    def _draw(self, final=False):
        width = 24
        filled = int(width * self.done / self.total)
        bar = "#" * filled + "-" * (width - filled)
        elapsed = time.perf_counter() - self.started
        spin = self._SPIN[int(elapsed * 5) % 4] if not final else " "
        label = f" {self.label}" if self.label and not final else ""
        if self.detail and not final:
            label += f": {self.detail}"
        line = f"\r[{bar}] {self.done}/{self.total} fits{label} {spin} {_clock(elapsed)}"
        self.stream.write(line.ljust(78) + ("\n" if final else ""))
        self.stream.flush()

    def _run(self):
        while not self._stop.wait(0.2):
            with self._lock:
                self._draw()


def _clock(seconds):
    m, s = divmod(int(seconds), 60)
    return f"{m:02d}:{s:02d}"


# --------------------------------------------------------------------------------------------
# Input
# --------------------------------------------------------------------------------------------

def _pandas():
    try:
        import pandas
    except ImportError:
        raise CLIError("the metaglasso command needs pandas: pip install 'metaglasso[interpret]'") from None
    return pandas


def _list(names, limit=8):
    names = [str(n) for n in names]
    more = f", ... ({len(names)} in all)" if len(names) > limit else ""
    return ", ".join(names[:limit]) + more


class _Input:
    """The datasets read from a file: frames (list of DataFrames, samples in rows), their names,
    and label arrays from an NPZ file."""

    def __init__(self, frames, names, description, npz=None):
        self.frames = frames
        self.names = names
        self.description = description
        self.npz = npz


def _kind(path, what="DATA"):
    low = path.lower()
    for suffix in _TABLE_SUFFIXES:
        if low.endswith(suffix):
            return {".csv.gz": ".csv", ".tsv.gz": ".tsv", ".pq": ".parquet"}.get(suffix, suffix)
    raise CLIError(f"{what} {path!r} has an unknown type; use a .csv, .tsv, .parquet or .npz file")


def _read_frame(path, args):
    pd = _pandas()
    kind = _kind(path)
    if kind == ".parquet":
        try:
            return pd.read_parquet(path)
        except ImportError:
            raise CLIError("reading Parquet needs pyarrow: pip install \"metaglasso[parquet]\"") from None
        except Exception as exc:
            raise CLIError(f"{path!r} could not be read as Parquet: {_first_line(exc)}") from None
    sep = args.sep if args.sep is not None else ("\t" if kind == ".tsv" else ",")
    try:
        return pd.read_csv(path, sep=sep)
    except pd.errors.EmptyDataError:
        raise CLIError(f"{path!r} is empty") from None
    except Exception as exc:
        raise CLIError(f"{path!r} could not be read as CSV: {_first_line(exc)}") from None


def _first_line(exc):
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _npz_frame(path, args):
    """(DataFrame samples × variables, the open npz) from an NPZ file."""
    pd = _pandas()
    try:
        z = np.load(path, allow_pickle=False)
    except Exception as exc:
        raise CLIError(f"{path!r} could not be read as NPZ: {_first_line(exc)}") from None
    files = list(z.files)
    key = args.array
    if key is None:
        if "X" in files:
            key = "X"
        else:
            cands = [f for f in files if z[f].ndim == 2 and np.issubdtype(z[f].dtype, np.number)]
            if len(cands) != 1:
                raise CLIError(f"{path!r}: choose the data array with --array (2-D numeric arrays: {_list(cands) or 'none'})")
            key = cands[0]
    if key not in files:
        raise CLIError(f"--array {key!r} is not in {path!r} (arrays: {_list(files)})")
    try:
        X = z[key]
    except ValueError as exc:
        raise CLIError(f"array {key!r} of {path!r} cannot be loaded without pickle: {_first_line(exc)}") from None
    if X.ndim != 2:
        raise CLIError(f"array {key!r} of {path!r} must be 2-D; got shape {X.shape}")
    if not np.issubdtype(X.dtype, np.number):
        raise CLIError(f"array {key!r} of {path!r} is not numeric (dtype {X.dtype})")
    if args.transpose:
        X = X.T
    n, v = X.shape
    names = None
    names_key = args.names if args.names is not None else ("feature_names" if "feature_names" in files else None)
    if names_key is not None:
        if names_key not in files:
            raise CLIError(f"--names {names_key!r} is not in {path!r} (arrays: {_list(files)})")
        names = [str(s) for s in z[names_key]]
        if len(names) != v:
            raise CLIError(f"--names {names_key!r} holds {len(names)} names; the data have {v} variables"
                           + ("" if args.transpose else " (variables in rows? add --transpose)"))
        if len(set(names)) != v:
            raise CLIError(f"--names {names_key!r} has duplicate variable names")
    index = None
    if args.sample_names is not None:
        if args.sample_names not in files:
            raise CLIError(f"--sample-names {args.sample_names!r} is not in {path!r} (arrays: {_list(files)})")
        index = [str(s) for s in z[args.sample_names]]
        if len(index) != n:
            raise CLIError(f"--sample-names {args.sample_names!r} holds {len(index)} names; the data have {n} samples")
    frame = pd.DataFrame(np.asarray(X, dtype=np.float64), columns=names if names is not None else
                         [f"x{i}" for i in range(v)], index=index)
    if args.group is not None:
        if args.group not in files:
            raise CLIError(f"--group {args.group!r} is not an array of {path!r} (arrays: {_list(files)})")
        g = z[args.group]
        if g.ndim != 1 or g.size != n:
            raise CLIError(f"--group {args.group!r} must hold one value per sample ({n}); got shape {g.shape}"
                           + ("" if args.transpose else " (samples in columns? add --transpose)"))
        frame.insert(0, args.group, g)
    return frame, z


def load_input(args):
    """Read DATA and split it into datasets as the options say."""
    pd = _pandas()
    path = args.data
    if not os.path.exists(path):
        raise CLIError(f"DATA file {path!r} does not exist")
    kind = _kind(path)
    npz = None
    if kind == ".npz":
        df, npz = _npz_frame(path, args)
    else:
        df = _read_frame(path, args)
        for opt in ("array", "names", "sample_names"):
            if getattr(args, opt) is not None:
                raise CLIError(f"--{opt.replace('_', '-')} applies to NPZ input only")
        if args.transpose:
            raise CLIError("--transpose applies to NPZ input only")
    columns = [str(c) for c in df.columns]
    df.columns = columns
    if len(set(columns)) != len(columns):
        dup = sorted({c for c in columns if columns.count(c) > 1})
        raise CLIError(f"{path!r} has duplicate columns: {_list(dup)}")
    special = []
    for opt, col in (("--group", args.group), ("--index-col", args.index_col)):
        if col is not None and col not in columns:
            raise CLIError(f"{opt} column {col!r} is not in {path!r} (columns: {_list(columns)})")
        if col is not None:
            special.append(col)
    for col in args.drop or []:
        if col not in columns:
            raise CLIError(f"--drop column {col!r} is not in {path!r} (columns: {_list(columns)})")
        special.append(col)
    if args.index_col is not None:
        df.index = df[args.index_col].astype(str)
    features = [c for c in columns if c not in special]
    if len(features) < 2:
        raise CLIError(f"{path!r} has {len(features)} variable column(s) after removing {_list(special)}; need at least 2")
    for col in features:
        s = df[col]
        if s.dtype == bool or not pd.api.types.is_numeric_dtype(s):
            num = pd.to_numeric(s, errors="coerce")
            bad = np.flatnonzero(num.isna().to_numpy() & s.notna().to_numpy())
            example = f" (value {s.iloc[bad[0]]!r} in data row {bad[0]})" if bad.size else ""
            raise CLIError(
                f"column {col!r} is not numeric{example}; remove it with --drop, or name it with --group or --index-col"
            )
        miss = np.flatnonzero(s.isna().to_numpy())
        if miss.size:
            raise CLIError(f"column {col!r} has {miss.size} missing value(s) (first in data row {miss[0]}); "
                           "MGLASSO needs complete data")
        if not np.all(np.isfinite(s.to_numpy(dtype=np.float64))):
            raise CLIError(f"column {col!r} has infinite values")
    n = len(df)
    if args.group is not None and args.split is not None:
        raise CLIError("use either --group or --split, not both")
    frames, names = [], []
    min_samples = getattr(args, "min_samples", None)
    if min_samples is not None and args.group is None:
        raise CLIError("--min-samples applies to --group only")
    if min_samples is not None and min_samples < 1:
        raise CLIError(f"--min-samples must be an integer >= 1; got {min_samples}")
    dropped = []
    if args.group is not None:
        g = df[args.group]
        if g.isna().any():
            raise CLIError(f"group column {args.group!r} has {int(g.isna().sum())} missing value(s)")
        for key, idx in g.groupby(g, sort=False).indices.items():
            key = key.item() if hasattr(key, "item") else key
            if min_samples is not None and len(idx) < min_samples:
                dropped.append((key, len(idx)))
                continue
            if len(idx) < MIN_SAMPLES:
                raise CLIError(f"group {key!r} of column {args.group!r} has {len(idx)} sample(s); "
                               f"every dataset needs at least {MIN_SAMPLES}")
            frames.append(df.iloc[np.sort(idx)][features])
            names.append(key if isinstance(key, (int, str)) else str(key))
    else:
        points = [] if args.split is None else list(args.split)
        if points and (any(b <= a for a, b in zip([0] + points, points)) or points[-1] >= n):
            raise CLIError(f"--split points must increase strictly within (0, {n}); got {points}")
        bounds = [0] + points + [n]
        for a, b in zip(bounds[:-1], bounds[1:]):
            if b - a < MIN_SAMPLES:
                raise CLIError(f"rows {a}:{b} (a --split dataset) have {b - a} sample(s); "
                               f"every dataset needs at least {MIN_SAMPLES}")
            frames.append(df.iloc[a:b][features])
            names.append(f"{a}:{b}" if points else "all")
    if dropped:
        kept = len(frames)
        listed = ", ".join(f"{key!r} ({size})" for key, size in dropped)
        if not kept:
            raise CLIError(f"--min-samples {min_samples} drops every group of column {args.group!r}: {listed}")
        print(f"note: --min-samples {min_samples} dropped {len(dropped)} of {len(dropped) + kept} groups of column "
              f"{args.group!r}: {listed}", file=sys.stderr)
    frames = [f.astype(np.float64) for f in frames]
    if args.standardize:
        frames = _standardize(frames)
    desc = f"{os.path.basename(path)}: {n} samples × {len(features)} variables, {len(frames)} dataset(s)"
    return _Input(frames, names, desc, npz)


def _standardize(frames):
    """Divide each variable by its pooled within-dataset standard deviation."""
    ss = sum(((f - f.mean()) ** 2).sum() for f in frames)
    n = sum(len(f) for f in frames)
    sd = np.sqrt(ss / n)
    zero = [c for c, v in sd.items() if not v > 0]
    if zero:
        raise CLIError(f"--standardize: variable(s) {_list(zero)} are constant within every dataset")
    return [f / sd for f in frames]


def _read_labels(args, inp):
    """The labels of the variables (see _labels); closes an NPZ input afterwards."""
    try:
        return _labels(args, inp, [str(c) for c in inp.frames[0].columns])
    finally:
        if inp.npz is not None:
            inp.npz.close()


def _labels(args, inp, var_names):
    """{level: labels (V,)} from --labels FILE or --label-keys (NPZ), or None."""
    if args.label_keys:
        if inp.npz is None:
            raise CLIError("--label-keys reads arrays of an NPZ DATA file; use --labels FILE for other inputs")
        out = {}
        for key in args.label_keys:
            if key not in inp.npz.files:
                raise CLIError(f"--label-keys {key!r} is not in the NPZ file (arrays: {_list(inp.npz.files)})")
            arr = np.asarray(inp.npz[key]).astype(str)
            if arr.ndim != 1 or arr.size != len(var_names):
                raise CLIError(f"--label-keys {key!r} must hold one label per variable ({len(var_names)}); got shape {arr.shape}")
            out[key] = arr.astype(object)
        return out
    if not args.labels:
        return None
    path = args.labels
    if not os.path.exists(path):
        raise CLIError(f"--labels file {path!r} does not exist")
    kind = _kind(path, "--labels file")
    if kind == ".npz":
        raise CLIError("--labels must be a CSV or Parquet table (variable name, then label columns)")
    table = _read_frame(path, argparse.Namespace(sep=None))
    if table.shape[1] < 2:
        raise CLIError(f"--labels {path!r} needs a variable-name column and at least one label column")
    table = table.set_index(table.columns[0])
    table.index = table.index.astype(str)
    cols = args.label_columns or [str(c) for c in table.columns]
    missing = [c for c in cols if c not in table.columns]
    if missing:
        raise CLIError(f"--label-columns {_list(missing)} not in {path!r} (columns: {_list(table.columns)})")
    if table.index.duplicated().any():
        raise CLIError(f"--labels {path!r} names variable {table.index[table.index.duplicated()][0]!r} twice")
    matched = table.index.isin(var_names).sum()
    if matched == 0:
        raise CLIError(f"none of the {len(table)} variable names in --labels {path!r} match the data's variables")
    aligned = table.reindex(var_names)
    return {c: aligned[c].to_numpy(dtype=object) for c in cols}


# --------------------------------------------------------------------------------------------
# Output
# --------------------------------------------------------------------------------------------

def _estimator_params(args):
    """The MetaGraphicalLasso parameters the options set; their defaults are the estimator's."""
    return dict(solver=args.solver, init=args.init, max_iter=args.max_iter, tol=args.tol,
                learning_rate=args.learning_rate, batch_size=args.batch_size, random_state=args.seed,
                n_threads=args.n_threads, penalize_diagonal=args.penalize_diagonal,
                alpha_scaling=args.alpha_scaling, penalty=args.penalty, beta=args.beta,
                fused_pairs=args.fused_pairs, n_init=args.n_init, representation=args.representation,
                compress=args.compress, assume_centered=args.assume_centered)


def _fit_quietly(fn):
    """Run fn(), turning each ConvergenceWarning and GridEdgeWarning into a one-line note."""
    from metaglasso.exceptions import ConvergenceWarning, GridEdgeWarning

    kinds = (ConvergenceWarning, GridEdgeWarning)
    with warnings.catch_warnings(record=True) as caught:
        for kind in kinds:
            warnings.simplefilter("always", kind)
        result = fn()
    notes = [str(w.message).splitlines()[0] for w in caught if issubclass(w.category, kinds)]
    return result, notes


def _matplotlib():
    try:
        import matplotlib
    except ImportError:
        return None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save_fig(fig, path, dpi, plt):
    fig.savefig(path, dpi=dpi)
    plt.close(fig)
    return path


def write_outputs(out, model, *, args, save=None, Xs=None, scores=None, search_records=None, labels=None,
                  gene_sets=None, label_table=None, gene_table=None, info=None, notes=(), metadata=None):
    """Write the tables, the model (``save``: the model or search to save, None for none), the figures
    and report.html into ``out``; return the names of the files written. Enrichment tables are
    computed from ``labels``/``gene_sets`` or taken as given (``label_table``/``gene_table``)."""
    from metaglasso import enrichment, interpret
    from metaglasso._report import write_report
    from metaglasso._tables import html_table, pandas_or_none, write_csv
    from metaglasso.io import save_model

    pd = pandas_or_none()
    os.makedirs(out, exist_ok=True)
    written = []

    def table(name, t):
        write_csv(t, os.path.join(out, name))
        written.append(name)
        return t

    c = getattr(args, "c", 2.0)
    alpha_sig = getattr(args, "significance", 0.05)
    dpi = getattr(args, "dpi", 110)
    if save is not None:
        save_model(save, os.path.join(out, "model.npz"), metadata=metadata)
        written.append("model.npz")
    table("loadings.csv", interpret.loadings_table(model))
    if scores is None and Xs is not None:
        scores = interpret.scores_table(model, Xs)
    if scores is not None and Xs is not None:
        table("scores.csv", scores)
    variances = table("variances.csv", interpret.variances_table(model))
    explained = table("variance_explained.csv", interpret.variance_explained_table(model))
    edges = table("edges.csv", interpret.edges_table(model))
    differences = table("edge_differences.csv",
                        interpret.edge_differences_table(model, dataset_names=_column_names(model)))
    charvars = table("characteristic_variables.csv", enrichment.characteristic_variables(model, c=c))
    summary = None
    if labels is not None:
        label_table = table("label_enrichment.csv", enrichment.label_enrichment(model, labels, c=c, alpha=alpha_sig))
    if label_table is not None:
        summary = table("label_enrichment_summary.csv", enrichment.enrichment_summary(label_table, alpha=alpha_sig))
    if gene_sets is not None:
        n_top = min(getattr(args, "n_top", 100), model.n_features_in_)
        gene_table = table("gene_set_enrichment.csv",
                           enrichment.gene_set_enrichment(model, gene_sets, n_top=n_top))
    if search_records is not None:
        grid = {k: [r[k] for r in search_records] for k in search_records[0]}
        table("bic_grid.csv", grid if pd is None else pd.DataFrame(grid))

    figures = {}
    plt = _matplotlib() if not getattr(args, "no_figures", False) else None
    if plt is None and not getattr(args, "no_figures", False):
        notes = list(notes) + ["figures skipped: matplotlib is not installed (pip install 'metaglasso[plot]')"]
    if plt is not None:
        from metaglasso import plotting

        several = model.precisions_.shape[0] > 1
        figures["networks"] = _save_fig(plotting.plot_networks(model, show_shared=several),
                                        os.path.join(out, "networks.png"), dpi, plt)
        figures["edge_differences"] = _save_fig(
            plotting.plot_edge_differences(model, dataset_names=_column_names(model)),
            os.path.join(out, "edge_differences.png"), dpi, plt)
        figures["variances"] = _save_fig(plotting.plot_variances(model), os.path.join(out, "variances.png"), dpi, plt)
        if scores is not None:
            figures["scores"] = _save_fig(plotting.plot_scores(model, scores=scores),
                                          os.path.join(out, "scores.png"), dpi, plt)
        if len(np.ravel(model.objective_history_)) > 1:
            figures["objective"] = _save_fig(plotting.plot_objective(model), os.path.join(out, "objective.png"),
                                             dpi, plt)
        if search_records is not None:
            figures["bic"] = _save_fig(plotting.plot_bic(search_records), os.path.join(out, "bic.png"), dpi, plt)
        written += [os.path.basename(p) for p in figures.values()]

    sections = []
    if notes:
        sections.append({"heading": "Notes", "text": list(notes)})
    if "bic" in figures or search_records is not None:
        sections.append({"heading": "Model selection (BIC)", "figure": figures.get("bic"),
                         "html": html_table({k: np.asarray([r[k] for r in search_records]) for k in
                                             ("n_components", "alpha", "bic", "nonzeros", "n_iter", "converged")}),
                         "files": ["bic_grid.csv"] if "bic_grid.csv" in written else []})
    several = model.precisions_.shape[0] > 1
    sections.append({"heading": "Partial-correlation networks", "figure": figures.get("networks"),
                     "text": ["One panel per dataset; blue edges are positive and red negative partial correlations, "
                              "edge width ∝ |partial correlation|, node area ∝ the factor's variance"
                              + ("; solid edges are in every dataset, dashed ones in some only." if several else ".")],
                     "html": html_table(edges, max_rows=60), "files": ["edges.csv"]})
    sections.append({"heading": "Shared and differing edges", "figure": figures.get("edge_differences"),
                     "text": _differences_text(model, differences),
                     "html": html_table(differences, max_rows=60), "files": ["edge_differences.csv"]})
    sections.append({"heading": "Factor variances and noise", "figure": figures.get("variances"),
                     "html": "<p>Variances Σ_k[i, i] and ε_k:</p>" + html_table(variances)
                     + "<p>Share of each dataset's total variance per factor:</p>" + html_table(explained, digits=3),
                     "files": ["variances.csv", "variance_explained.csv"]})
    if "scores" in figures:
        sections.append({"heading": "Latent scores", "figure": figures["scores"],
                         "files": ["scores.csv"] if "scores.csv" in written else []})
    sections.append({"heading": f"Characteristic variables (|z| > {c:g})",
                     "html": html_table(_charvar_overview(charvars)), "files": ["characteristic_variables.csv",
                                                                                  "loadings.csv"]})
    if summary is not None:
        sections.append({"heading": "Label over-representation",
                         "text": [f"Labels over-represented (G-test, Benjamini–Hochberg adjusted p < {alpha_sig:g}) among "
                                  "the characteristic variables of each factor, tested against the labelled variables; "
                                  "'within' lists significant next-level labels tested within the first-level label."],
                         "html": html_table(summary), "files": ["label_enrichment.csv", "label_enrichment_summary.csv"]})
    if gene_table is not None:
        sections.append({"heading": "Gene-set enrichment (hypergeometric)",
                         "html": html_table(_best_per_list(gene_table)), "files": ["gene_set_enrichment.csv"]})
    if "objective" in figures:
        sections.append({"heading": "Objective history", "figure": figures["objective"]})
    info = list(info or []) + _model_info(model)
    write_report(os.path.join(out, "report.html"), title="MGLASSO report", info=info, sections=sections)
    written.append("report.html")
    return written


def _penalty_text(model):
    """The penalty of a fitted model in words: ρ, or the ρ_k of the datasets, and which entries of Λ_k."""
    alphas = np.asarray(getattr(model, "alphas_", np.broadcast_to(model.alpha, model.precisions_.shape[:1])))
    rho = f"{alphas[0]:g}" if np.all(alphas == alphas[0]) else "ρ_k = " + ", ".join(f"{a:.4g}" for a in alphas)
    if getattr(model, "alpha_scaling", "none") == "n_samples":
        rho += f" (α = {np.ravel(model.alpha)[0]:g} scaled by sqrt(mean N / N_k))" if np.ndim(model.alpha) == 0 else \
            " (scaled by sqrt(mean N / N_k))"
    return rho + ("; all entries of Λ_k" if model.penalize_diagonal else "; off-diagonal entries of Λ_k")


def _column_names(model):
    """The dataset names for the columns of the edge-differences table: the model's, prefixed with
    "dataset " when one of them is a column name of the table."""
    from metaglasso import interpret

    names = interpret.dataset_names(model)
    if any(str(n) in interpret._DIFFERENCE_COLUMNS for n in names):
        return [f"dataset {n}" for n in names]
    return names


def _differences_text(model, differences):
    """The paragraphs of the report's section on shared and differing edges."""
    from metaglasso._tables import table_columns

    t = dict(zip(*table_columns(differences)))
    K = model.precisions_.shape[0]
    total = len(t["status"])
    shared = int(np.count_nonzero(np.asarray(t["status"]) == "shared"))
    fused = int(np.count_nonzero(np.asarray(t["equal"], dtype=bool)))
    penalty, beta = getattr(model, "penalty", "lasso"), float(getattr(model, "beta", 0.0))
    text = [f"{total} factor pair{'' if total == 1 else 's'} {'is an edge' if total == 1 else 'are edges'} in at "
            f"least one of the {K} datasets: {shared} in every dataset ({fused} of them with one value of Λ_ij in "
            f"all, i.e. fused) and {total - shared} in some only."]
    if penalty == "fused" and beta > 0:
        text.append(f"The fused penalty (λ₂ = {beta:g}, {model.fused_pairs} pairs) makes entries of the networks "
                    "exactly equal across datasets: n_values counts the distinct values of Λ_ij among the datasets "
                    "with the edge (1: fused), and equal marks the edges fused in every dataset.")
    elif penalty == "group" and beta > 0:
        text.append(f"The group penalty (λ₂ = {beta:g}) favours one edge set for all datasets, each with weights of "
                    "its own.")
    else:
        text.append("The networks were fitted independently (no fused or group penalty): the edges found in every "
                    "dataset are shared by the data, not by the penalty.")
    text.append("Rows: the edges that differ first, the largest range of partial correlations (max_difference) "
                "first; one column per dataset with its partial correlation, 0 where it lacks the edge. In the "
                "figure a blank cell is a missing edge.")
    return text


def _coupling_text(model):
    """The penalty that relates the K networks, in words."""
    penalty = getattr(model, "penalty", "lasso")
    beta = float(getattr(model, "beta", 0.0))
    if penalty == "lasso" or beta == 0:
        return "none (independent networks)"
    pairs = f", {model.fused_pairs} pairs" if penalty == "fused" else ""
    return f"{penalty}, λ₂ = {beta:g}{pairs}"


def _model_info(model):
    M, V = model.components_.shape
    K = model.precisions_.shape[0]
    return [("datasets K", K), ("variables V", V), ("factors M", M), ("penalty ρ", _penalty_text(model)),
            ("network coupling", _coupling_text(model)),
            ("solver", model.solver), ("iterations", f"{model.n_iter_} (converged: {model.converged_})"),
            ("objective E", f"{model.objective_:.8g}")] + _starts_info(model) + [
            ("edges per dataset", ", ".join(str(int(np.count_nonzero(np.triu(p, 1)))) for p in model.precisions_))]


def _starts_info(model):
    """The objectives of the starts of an n_init > 1 fit: local optima are shown, not hidden."""
    objectives = np.asarray(getattr(model, "init_objectives_", ()))
    if objectives.size <= 1:
        return []
    return [("starts", f"{objectives.size}; kept start {model.best_init_}; objectives "
                       + ", ".join(f"{f:.8g}" for f in objectives))]


def _charvar_overview(t):
    from metaglasso._tables import table_columns

    names, cols = table_columns(t)
    d = dict(zip(names, cols))
    out = {"factor": [], "sign": [], "n": [], "top variables": []}
    keys = list(dict.fromkeys(zip(d["factor"].tolist(), d["sign"].tolist())))
    for f, s in keys:
        sel = np.flatnonzero((d["factor"] == f) & (d["sign"] == s))
        out["factor"].append(f)
        out["sign"].append(s)
        out["n"].append(sel.size)
        out["top variables"].append(", ".join(str(d["variable"][i]) for i in sel[:8]))
    return {k: np.asarray(v, dtype=object if k in ("sign", "top variables") else np.int64) for k, v in out.items()}


def _best_per_list(t):
    from metaglasso._tables import table_columns

    names, cols = table_columns(t)
    d = dict(zip(names, cols))
    rows = {}
    for i in range(len(d["factor"])):
        key = (int(d["factor"][i]), d["sign"][i])
        if key not in rows:
            rows[key] = i
    idx = list(rows.values())
    return {k: np.asarray(d[k])[idx] for k in ("factor", "sign", "gene_set", "set_size", "n_overlap",
                                               "fold_enrichment", "p_value", "p_adjusted")}


# --------------------------------------------------------------------------------------------
# Commands
# --------------------------------------------------------------------------------------------

def _gene_sets(args):
    if not args.gene_sets:
        return None
    from metaglasso.enrichment import read_gmt

    if not os.path.exists(args.gene_sets):
        raise CLIError(f"--gene-sets file {args.gene_sets!r} does not exist")
    sets = read_gmt(args.gene_sets)
    if not sets:
        raise CLIError(f"--gene-sets file {args.gene_sets!r} holds no gene sets")
    return sets


def _check_out(args):
    if os.path.exists(args.out) and not os.path.isdir(args.out):
        raise CLIError(f"--out {args.out!r} exists and is not a directory")


def _check_coupling(args):
    """Refuse options of the fused and group penalties that the chosen penalty would ignore."""
    if args.beta != 0 and args.penalty == "lasso":
        raise CLIError("--beta applies to --penalty fused or group (the lasso fits the networks independently)")
    if args.fused_pairs != "all" and args.penalty != "fused":
        raise CLIError("--fused-pairs applies to --penalty fused")


def _cmd_fit(args):
    from metaglasso import MetaGraphicalLasso, interpret

    _check_out(args)
    _check_coupling(args)
    inp = load_input(args)
    V = inp.frames[0].shape[1]
    if not 1 <= args.n_components < V:
        raise CLIError(f"-M/--n-components must be in [1, {V}) for {V} variables; got {args.n_components}")
    labels = _read_labels(args, inp)
    gene_sets = _gene_sets(args)
    log = (lambda *a: None) if args.quiet else (lambda *a: print(*a, file=sys.stderr))
    log(inp.description)
    model = MetaGraphicalLasso(n_components=args.n_components, alpha=args.alpha, **_estimator_params(args))
    start = time.perf_counter()
    with _Progress(1, enabled=args.progress, quiet=args.quiet) as progress:
        if progress.live:
            model.set_params(callback=progress.update)
        progress.step(f"fitting M={args.n_components} ρ={args.alpha:g}")
        _, notes = _fit_quietly(lambda: model.fit(inp.frames, dataset_names=inp.names))
        progress.finish()
    elapsed = time.perf_counter() - start
    bic = model.bic(inp.frames)
    scores = interpret.scores_table(model, inp.frames)
    meta = {"command": "fit", "data": os.path.abspath(args.data), "description": inp.description,
            "bic": bic, "fit_seconds": elapsed, "argv": args.argv}
    written = write_outputs(args.out, model, args=args, save=model, Xs=inp.frames, scores=scores, labels=labels,
                            gene_sets=gene_sets, notes=notes, metadata=meta,
                            info=[("data", inp.description), ("BIC", f"{bic:.8g}"), ("fit time", f"{elapsed:.1f} s")])
    for n in notes:
        print(f"note: {n}", file=sys.stderr)
    coupling = f" {args.penalty} λ₂={args.beta:g}" if model._coupled() else ""
    print(f"fitted M={args.n_components} ρ={args.alpha:g}{coupling} on {inp.description} in {elapsed:.1f} s "
          f"({model.n_iter_} iterations, converged: {model.converged_}); BIC {bic:.6g}")
    print(f"wrote {args.out}: {', '.join(written)}")
    return 0


class _ProgressSearch:
    """MetaGraphicalLassoBIC that reports each fit of its grid to a _Progress."""

    @staticmethod
    def make(progress, n_components, alphas, betas=None, **params):
        from metaglasso import MetaGraphicalLassoBIC

        grid_size = len(np.atleast_1d(n_components)) * len(np.atleast_1d(alphas)) * (
            1 if betas is None else len(np.atleast_1d(betas)))
        calls = []

        class Search(MetaGraphicalLassoBIC):
            def _estimator(self, m, alpha, beta, n_threads):
                calls.append(None)
                coupling = "" if betas is None else f" λ₂={beta:g}"
                progress.step(f"{'refit best ' if len(calls) > grid_size else ''}M={m} ρ={alpha:g}{coupling}")
                return super()._estimator(m, alpha, beta, n_threads)

        return Search(n_components, alphas, betas=betas, **params)


def _cmd_select(args):
    from metaglasso import interpret

    _check_out(args)
    _check_coupling(args)
    inp = load_input(args)
    V = inp.frames[0].shape[1]
    bad = [m for m in args.n_components if not 1 <= m < V]
    if bad:
        raise CLIError(f"-M/--n-components values must be in [1, {V}) for {V} variables; got {bad}")
    if len(set(args.n_components)) != len(args.n_components) or len(set(args.alphas)) != len(args.alphas):
        raise CLIError("-M/--n-components and --alphas must not contain duplicates")
    if any(not (a >= 0 and np.isfinite(a)) for a in args.alphas):
        raise CLIError(f"--alphas must be finite numbers >= 0; got {args.alphas}")
    if args.betas is not None:
        if args.penalty == "lasso":
            raise CLIError("--betas applies to --penalty fused or group")
        if args.beta != 0:
            raise CLIError("give either --betas (the grid of lambda_2) or --beta, not both")
        if len(set(args.betas)) != len(args.betas) or any(not (b >= 0 and np.isfinite(b)) for b in args.betas):
            raise CLIError(f"--betas must be distinct finite numbers >= 0; got {args.betas}")
    labels = _read_labels(args, inp)
    gene_sets = _gene_sets(args)
    if not args.quiet:
        print(inp.description, file=sys.stderr)
    total = len(args.n_components) * len(args.alphas) * (1 if args.betas is None else len(args.betas)) + 1
    start = time.perf_counter()
    with _Progress(total, enabled=args.progress, quiet=args.quiet) as progress:
        params = _estimator_params(args)
        if args.betas is not None:
            params.pop("beta")
        if progress.live:
            params["callback"] = progress.update
        search = _ProgressSearch.make(progress, args.n_components, args.alphas, args.betas, **params)
        _, notes = _fit_quietly(lambda: search.fit(inp.frames, dataset_names=inp.names))
        progress.finish()
    elapsed = time.perf_counter() - start
    model = search.best_estimator_
    bic = search.results_[search.best_index_]["bic"]
    scores = interpret.scores_table(model, inp.frames)
    meta = {"command": "select", "data": os.path.abspath(args.data), "description": inp.description,
            "bic": bic, "fit_seconds": elapsed, "argv": args.argv}
    written = write_outputs(args.out, model, args=args, save=search, Xs=inp.frames, scores=scores,
                            search_records=search.results_, labels=labels, gene_sets=gene_sets, notes=notes,
                            metadata=meta,
                            info=[("data", inp.description),
                                  ("chosen", f"M = {search.n_components_}, ρ = {search.alpha_:g}"
                                             + ("" if args.betas is None else f", λ₂ = {search.beta_:g}")
                                             + f" (BIC {bic:.8g})"),
                                  ("grid time", f"{elapsed:.1f} s")])
    for n in notes:
        print(f"note: {n}", file=sys.stderr)
    chosen_beta = "" if args.betas is None else f" λ₂={search.beta_:g}"
    print(f"BIC chose M={search.n_components_} ρ={search.alpha_:g}{chosen_beta} (BIC {bic:.6g}) over "
          f"{len(search.results_)} fits in {elapsed:.1f} s")
    print(f"wrote {args.out}: {', '.join(written)}")
    return 0


def _cmd_report(args):
    from metaglasso.io import load_model, read_metadata

    pd = _pandas()
    path = args.model
    if os.path.isdir(path):
        path = os.path.join(path, "model.npz")
    try:
        model = load_model(path)
        meta = read_metadata(path)
    except (FileNotFoundError, ValueError) as exc:
        raise CLIError(_first_line(exc)) from None
    folder = os.path.dirname(os.path.abspath(path))
    out = args.out or folder
    os.makedirs(out, exist_ok=True)

    def read(name):
        p = os.path.join(folder, name)
        return pd.read_csv(p, keep_default_na=False) if os.path.exists(p) else None

    scores = read("scores.csv")
    grid = read("bic_grid.csv")
    records = None if grid is None else grid.to_dict("records")
    user = meta.get("user") or {}
    info = [("model", os.path.abspath(path))]
    if user.get("description"):
        info.append(("data", user["description"]))
    if user.get("bic") is not None:
        info.append(("BIC", f"{user['bic']:.8g}"))
    written = write_outputs(out, model, args=args, scores=scores, search_records=records,
                            label_table=read("label_enrichment.csv"), gene_table=read("gene_set_enrichment.csv"),
                            info=info)
    print(f"wrote {os.path.join(out, 'report.html')} (and {', '.join(w for w in written if w != 'report.html')})")
    return 0


# --------------------------------------------------------------------------------------------
# Parser
# --------------------------------------------------------------------------------------------

_DATA_HELP = (
    "DATA is a table with one sample per row and one variable per column: CSV (.csv, .csv.gz), "
    "TSV (.tsv) or Parquet (.parquet, needs pyarrow), or an NPZ file (.npz) holding a 2-D array. "
    "The datasets are the groups of a column (--group) or consecutive blocks of rows (--split); "
    "without either, all rows form one dataset. Each dataset is centred on its own mean."
)


def _add_input_options(p):
    p.add_argument("data", metavar="DATA", help="the data file (.csv, .tsv, .parquet or .npz); samples in rows")
    split = p.add_mutually_exclusive_group()
    p.add_argument("--min-samples", "--min-cells", dest="min_samples", type=int, default=None, metavar="N",
                   help="with --group: leave out the groups with fewer than N samples, with a note listing them "
                        "(as fit(adata, groupby=..., min_cells=N) does)")
    split.add_argument("--group", metavar="COLUMN",
                       help="column (for NPZ: array of one value per sample) whose values define the datasets, "
                            "one per distinct value in order of first appearance; the column is not a variable")
    split.add_argument("--split", metavar="ROW", type=int, nargs="+",
                       help="row positions (0-based) where a new dataset starts, e.g. --split 199 451 for "
                            "rows 0-198, 199-450 and 451-end")
    p.add_argument("--index-col", metavar="COLUMN",
                   help="column of sample labels (e.g. dates): used as the sample names in scores.csv, not a variable")
    p.add_argument("--drop", metavar="COLUMN", nargs="+", help="columns to ignore (e.g. identifiers)")
    p.add_argument("--sep", default=None, help="field separator of CSV input (default ',' and tab for .tsv)")
    p.add_argument("--standardize", action="store_true",
                   help="divide each variable by its pooled within-dataset standard deviation before fitting")
    npz = p.add_argument_group("NPZ input")
    npz.add_argument("--array", metavar="KEY",
                     help="name of the data array in the NPZ file (default 'X', or its only 2-D numeric array)")
    npz.add_argument("--transpose", action="store_true",
                     help="the NPZ array holds variables in rows and samples in columns")
    npz.add_argument("--names", metavar="KEY",
                     help="NPZ array of variable names (default 'feature_names' if present, else x0, x1, ...)")
    npz.add_argument("--sample-names", metavar="KEY", help="NPZ array of sample names (e.g. dates)")


def _add_model_options(p):
    p.add_argument("--solver", choices=["lbfgs", "adam"], default="lbfgs",
                   help="optimiser: Riemannian L-BFGS (default) or the paper's Adam steps")
    p.add_argument("--max-iter", type=int, default=None,
                   help="iterations (lbfgs) or epochs (adam); default 2000 for lbfgs and 5000 for adam")
    p.add_argument("--tol", type=float, default=1e-8, help="convergence tolerance (default 1e-8)")
    p.add_argument("--init", choices=["pca", "random"], default="pca",
                   help="start of the factors: the PCA start (default) or a seeded random one")
    p.add_argument("--learning-rate", type=float, default=1e-3, help="Adam step size (default 1e-3)")
    p.add_argument("--batch-size", type=int, default=None,
                   help="datasets per Adam step (default: all)")
    p.add_argument("--representation", choices=["auto", "data", "covariance"], default="auto",
                   help="how each dataset is held: its centred data, its covariance, or the cheaper (default auto)")
    p.add_argument("--compress", action=argparse.BooleanOptionalAction, default=True,
                   help="solve in the span of the data when it is smaller than the variables (default: yes)")
    p.add_argument("--assume-centered", action="store_true",
                   help="do not centre the datasets (their means are taken as zero)")
    p.add_argument("--penalize-diagonal", action=argparse.BooleanOptionalAction, default=True,
                   help="penalise every entry of each latent precision Λ_k, the paper's |Λ_k|_1 (default); "
                        "--no-penalize-diagonal penalises the off-diagonal entries only, which leaves the "
                        "objective unbounded when a dataset has no more samples than variables")
    p.add_argument("--penalty", choices=["lasso", "fused", "group"], default="lasso",
                   help="how the K latent networks are related: lasso fits them independently (default, the "
                        "paper's model); fused adds beta * sum |Lambda_k,ij - Lambda_l,ij| over pairs of datasets, "
                        "which makes entries equal across datasets; group adds beta * sum ||(Lambda_1,ij, ..., "
                        "Lambda_K,ij)||_2, which favours one edge set with weights of their own")
    p.add_argument("--beta", type=float, default=0.0,
                   help="lambda_2 >= 0 of the fused or group penalty (default 0: independent networks)")
    p.add_argument("--fused-pairs", choices=["all", "chain"], default="all",
                   help="the pairs of datasets --penalty fused links: every pair (default) or consecutive "
                        "datasets only (chain, for ordered datasets such as years)")
    p.add_argument("--alpha-scaling", choices=["none", "n_samples"], default="none",
                   help="n_samples: dataset k's penalty is rho * sqrt(mean N / N_k), larger for small datasets "
                        "(default none: the same rho for all)")
    p.add_argument("--n-init", type=int, default=1,
                   help="number of starts (the PCA start, then random ones); the best objective is kept and "
                        "the objective of every start reported (default 1)")
    p.add_argument("--seed", type=int, default=None, help="random seed (random start, Adam batches); default 0")
    p.add_argument("--n-threads", type=int, default=None, help="threads of the core (default: all)")


def _add_output_options(p):
    p.add_argument("--out", metavar="DIR", required=True,
                   help="output folder (created if needed) for the tables (CSV), model.npz, figures (PNG) and "
                        "report.html")
    interp = p.add_argument_group("interpretation")
    interp.add_argument("--c", type=float, default=2.0,
                        help="characteristic variables of a factor: loading more than C standard deviations from "
                             "the factor's mean loading (default 2, as in the paper)")
    interp.add_argument("--labels", metavar="FILE",
                        help="CSV/Parquet table of variable labels: first column the variable name, then one column "
                             "per level, coarsest first (e.g. variable,sector,industry); enables the over-"
                             "representation test (G-test) of the labels among the characteristic variables")
    interp.add_argument("--label-columns", metavar="COLUMN", nargs="+",
                        help="label columns of --labels to test, coarsest first (default: all)")
    interp.add_argument("--label-keys", metavar="KEY", nargs="+",
                        help="NPZ input: arrays of per-variable labels in the DATA file, coarsest first "
                             "(e.g. --label-keys sector industry); '' means no label")
    interp.add_argument("--gene-sets", metavar="GMT",
                        help="gene sets (GMT file) for the hypergeometric test of each factor's top variables")
    interp.add_argument("--n-top", type=int, default=100,
                        help="top variables per factor and sign for --gene-sets (default 100, as in the paper)")
    interp.add_argument("--significance", type=float, default=0.05,
                        help="adjusted p-value threshold of the reported labels and of nested tests (default 0.05)")
    fig = p.add_argument_group("figures and progress")
    fig.add_argument("--no-figures", action="store_true", help="write no figures (and a report without them)")
    fig.add_argument("--dpi", type=int, default=110, help="resolution of the PNG figures (default 110)")
    fig.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                     help="show a progress bar on stderr (default: when stderr is a terminal)")
    fig.add_argument("--quiet", "-q", action="store_true", help="print only the final summary and errors")


def _guard(func):
    """Run a command; report an input problem as one line on stderr and exit status 1."""
    def run(args):
        try:
            return func(args)
        except CLIError as exc:
            print(f"metaglasso {args.command}: error: {exc}", file=sys.stderr)
        except (ValueError, FileNotFoundError, ImportError, OSError) as exc:
            print(f"metaglasso {args.command}: error: {_first_line(exc)}", file=sys.stderr)
        except Exception as exc:  # e.g. metaglasso.NumericalError
            print(f"metaglasso {args.command}: error: {type(exc).__name__}: {_first_line(exc)}", file=sys.stderr)
        return 1
    return run


def add_subcommands(sub):
    """Add ``fit``, ``select`` and ``report`` to the subparsers ``sub`` of the metaglasso parser."""
    fit = sub.add_parser(
        "fit", help="fit MGLASSO to a data file and write tables, figures and a report",
        description="Fit MGLASSO with M factors and penalty rho to the datasets of DATA and write into --out: "
        "loadings.csv (variable x factor), scores.csv (latent scores per sample), variances.csv (diag of Sigma_k "
        "and eps_k), variance_explained.csv, edges.csv (partial-correlation networks), edge_differences.csv (the "
        "edges shared by every dataset and those that differ), "
        "characteristic_variables.csv, optional label/gene-set enrichment tables, model.npz (reload with "
        "metaglasso.io.load_model), PNG figures and report.html. " + _DATA_HELP,
        epilog="Example: metaglasso fit prices.csv --group year --index-col date -M 10 --alpha 0.1 --out results/")
    _add_input_options(fit)
    fit.add_argument("-M", "--n-components", type=int, default=10, help="number of latent factors M (default 10)")
    fit.add_argument("--alpha", type=float, default=0.01,
                     help="L1 penalty rho on the latent precisions (default 0.01, as MetaGraphicalLasso)")
    _add_model_options(fit)
    _add_output_options(fit)
    fit.set_defaults(func=_guard(_cmd_fit))

    sel = sub.add_parser(
        "select", help="choose M and rho by BIC over a grid, then write the best model's outputs",
        description="Fit every (M, rho) of the grid (warm-started along rho), choose the smallest BIC (paper eq. 17), "
        "refit it and write the same outputs as 'metaglasso fit' plus bic_grid.csv and bic.png. " + _DATA_HELP,
        epilog="Example: metaglasso select data.npz --transpose --group year -M 5 10 --alphas 0.1 1 10 --out sel/")
    _add_input_options(sel)
    sel.add_argument("-M", "--n-components", type=int, nargs="+", default=[5, 10, 20],
                     help="candidate numbers of factors (default 5 10 20)")
    sel.add_argument("--alphas", type=float, nargs="+", default=[0.03, 0.06, 0.09],
                     help="candidate penalties rho (default 0.03 0.06 0.09)")
    sel.add_argument("--betas", type=float, nargs="+", default=None,
                     help="candidate lambda_2 of --penalty fused or group, searched as a third axis (default: the "
                     "one --beta)")
    _add_model_options(sel)
    _add_output_options(sel)
    sel.set_defaults(func=_guard(_cmd_select))

    rep = sub.add_parser(
        "report", help="rebuild the figures and report.html of a saved model",
        description="Rebuild the figures and report.html from MODEL (a model.npz written by 'metaglasso fit' or "
        "'select', or its folder) and the CSV tables beside it (scores.csv, bic_grid.csv, label_enrichment.csv, "
        "gene_set_enrichment.csv, when present).")
    rep.add_argument("model", metavar="MODEL", help="model.npz file, or the folder holding it")
    rep.add_argument("--out", metavar="DIR", default=None, help="output folder (default: the model's folder)")
    rep.add_argument("--c", type=float, default=2.0, help="threshold of the characteristic variables (default 2)")
    rep.add_argument("--significance", type=float, default=0.05,
                     help="adjusted p-value threshold of the reported labels (default 0.05)")
    rep.add_argument("--dpi", type=int, default=110, help="resolution of the PNG figures (default 110)")
    rep.add_argument("--no-figures", action="store_true", help="write no figures")
    rep.set_defaults(func=_guard(_cmd_report))
    return sub
