"""The paper's stock-price analysis on real US stock prices, 2015-03-20 .. 2017-03-31.

One dataset per year (2015: 199 trading days, 2016: 252, 2017: 62) of the log adjusted close of
V = 3483 stocks (the "strict" file: a close on every trading day), each year centred on its own
mean; M = 10 latent factors; the penalty ρ chosen by BIC over a small grid. Then the figures of
the paper (networks as Fig 5, variances as Fig 4, latent scores as Fig 3) and the sectors and
industries over-represented among each factor's characteristic stocks (as Table 6).

The data (CC BY-SA 4.0, derived from the public pystock-data repository; sector labels from the
MIT-licensed FinanceDatabase) are not part of this repository; pass their path:

    python examples/us_stocks.py ../shared/data/us_stocks_2015_2017/us_stocks_20150320_20170331_strict.npz

Writes ``summary.md`` and the PNG figures into ``--out`` (default ``docs/us_stocks``).
Needs pandas and matplotlib (``pip install "metaglasso[interpret,plot]"``).

The penalty is the paper's ρ‖Λ_k‖₁ over all entries of each Λ_k (the library's default,
``penalize_diagonal=True``). Factors come in the library's canonical form: numbered by decreasing
variance summed over the years, Σ_k Σ_k[m, m], each with its loading of largest absolute value
positive — so the numbering and signs are the same on every run, instruction set
(``METAGLASSO_SIMD``) and thread count (``OMP_NUM_THREADS`` or ``--n-threads``).

``--tables FILE`` also writes the factor tables of the chosen model as JSON, every float at full
precision (``repr``; NaN as ``NaN``), for comparing runs (``tools/check_determinism.py`` runs

    python examples/us_stocks.py DATA --max-stocks 600 --alphas 0.03 0.1 0.3 --no-figures \\
        --tables tables.json --out DIR

under every instruction set and thread count). Its top-level keys:

* ``format``: ``"metaglasso-us-stocks-tables/1"``;
* ``run``: how the run was made, which legitimately differs between runs — ``metaglasso_version``,
  ``simd_instruction_set`` (the products actually used: ``metaglasso._core.simd_instruction_set()``),
  ``n_threads`` (the core's thread count: ``--n-threads``, else ``default_n_threads()``), the
  thread and SIMD environment variables, Python and NumPy versions, machine, seconds;
* ``input``: data file name, ``n_stocks``, ``years``, ``n_samples``, ``n_components``, the ρ grid,
  ``max_iter``, ``c``;
* ``tables``: the results, which must agree between runs —
  ``model`` (the refit at the chosen ρ: ``alpha``, the ``alphas`` ρ_k, ``objective``, ``bic``,
  ``n_iter``, ``converged``, ``compression_rank``); ``bic_grid`` (columns ``alpha``, ``bic``,
  ``nonzeros``, ``edges``, ``objective``, ``n_iter``, ``converged``, ρ increasing); ``below_grid``
  (the check fit one step below the grid: ``alpha``, ``bic``, ``edges`` per year); ``components``
  (see below);
  ``variances`` (``values``: K × M, Σ_k[m, m]); ``noise_variances`` (ε_k); ``explained_variance``
  (``values``: K × (M + 1), the shares of the factors and of the noise); ``partial_correlations``
  (per year, the edges ``factor_i`` < ``factor_j`` and their ``partial_correlation``);
  ``enrichment`` (the significant sectors of the Table 6 summary: ``factor``, ``sign``, ``sector``,
  ``n``, ``n_overlap``, ``n_set``, ``fold``, ``statistic``, ``p_value``, ``p_adjusted`` and the
  significant industries ``within``); ``top_stocks`` (per factor and sign the tickers and
  loadings of the table "stocks of largest loadings").

``components`` holds every loading (``layout: "full"``, ``values``: M × V, rows the factors, with
the tickers in ``variables``) for at most 1000 stocks; above that, to keep the file small
(3483 stocks: 35 000 loadings), ``layout: "extremes"``: per factor the 50 largest (``pos``) and
50 smallest (``neg``) loadings with their tickers, in order.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
import warnings

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_OUT = os.path.normpath(os.path.join(HERE, os.pardir, "docs", "us_stocks"))
DEFAULT_ALPHAS = (0.1, 0.3, 1.0, 3.0, 10.0)
TABLES_FORMAT = "metaglasso-us-stocks-tables/1"
FULL_LOADINGS_MAX_STOCKS = 1000  # --tables: every loading up to this many stocks ...
EXTREME_LOADINGS = 50  # ... else this many largest and smallest per factor
TOP_STOCKS = 6  # stocks per factor and sign in the table of largest loadings


def load_stocks(path, *, max_stocks=None):
    """The yearly datasets as DataFrames (days × tickers) and the stock labels.

    The frames hold the log prices as they are: the model centres each year on its own mean (its
    ``means_``), so the example, ``metaglasso fit`` on the file and a fit of the raw arrays see the
    same numbers and give the same answer bit for bit.

    Returns
    -------
    frames : list of DataFrame
        One per year, indexed by date, columns the tickers.
    years : list of int
    info : DataFrame
        Index ticker; columns name, sector, industry ('' = no label).
    """
    import pandas as pd

    with np.load(path, allow_pickle=False) as z:
        X = np.asarray(z["log_adj_close"], dtype=np.float64)  # (V, T)
        tickers = [str(t) for t in z["tickers"]]
        dates = [str(d) for d in z["dates"]]
        years = [int(y) for y in z["split_years"]]
        bounds = list(zip(z["split_start"].tolist(), z["split_stop"].tolist()))
        info = pd.DataFrame({"name": z["names"].astype(str), "sector": z["sector"].astype(str),
                             "industry": z["industry"].astype(str)}, index=pd.Index(tickers, name="ticker"))
    if max_stocks is not None:
        X, tickers, info = X[:max_stocks], tickers[:max_stocks], info.iloc[:max_stocks]
    frames = []
    for a, b in bounds:
        Y = X[:, a:b]
        frames.append(pd.DataFrame(Y.T, index=pd.Index(dates[a:b], name="date"), columns=tickers))
    return frames, years, info


def _md(table, **kw):
    from metaglasso._tables import markdown_table

    return markdown_table(table, **kw)


def _extremes(load, sign, n):
    """Indices of the ``n`` largest (``pos``) or smallest (``neg``) entries of ``load``, in order."""
    return np.argsort(-load if sign == "pos" else load, kind="stable")[:n]


def _top_stocks(model, info, m, sign, n=TOP_STOCKS):
    names = model.feature_names_in_
    return ", ".join(f"{names[i]} ({info.loc[names[i], 'name'][:22]})"
                     for i in _extremes(model.components_[m], sign, n))


def _plain(obj):
    """``obj`` with NumPy scalars and arrays turned into Python ones (for ``json``)."""
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _plain(obj.tolist())
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        return float(obj)
    if isinstance(obj, np.str_):
        return str(obj)
    return obj


def _edges_per_year(model):
    return [int(np.count_nonzero(np.triu(p, 1))) for p in model.precisions_]


def factor_tables(search, model, info, years, *, frames=None, c=2.0, enrichment=None, below=None, below_bic=None):
    """The ``tables`` part of the ``--tables`` JSON (see the module docstring) as plain Python.

    ``search`` is the fitted MetaGraphicalLassoBIC, ``model`` its ``best_estimator_`` (the refit at
    the chosen ρ), ``info`` the stock labels of :func:`load_stocks` and ``frames`` the datasets (for
    the model's BIC; None leaves it out); ``enrichment`` the :func:`label_enrichment` table
    (computed when None); ``below`` the check fit one step below the grid and ``below_bic`` its BIC.
    """
    from metaglasso import interpret
    from metaglasso.enrichment import label_enrichment

    K, (M, V) = len(years), model.components_.shape
    names = [str(n) for n in model.feature_names_in_]
    grid = sorted(search.results_, key=lambda r: r["alpha"])
    tables = {
        "model": {"alpha": search.alpha_, "alphas": model.alphas_, "objective": model.objective_,
                  "bic": None if frames is None else model.bic(frames), "n_iter": model.n_iter_,
                  "converged": model.converged_, "compression_rank": model.compression_rank_},
        "bic_grid": {"alpha": [r["alpha"] for r in grid], "bic": [r["bic"] for r in grid],
                     "nonzeros": [r["nonzeros"] for r in grid],
                     "edges": [(r["nonzeros"] - K * M) // 2 for r in grid],
                     "objective": [r["objective"] for r in grid], "n_iter": [r["n_iter"] for r in grid],
                     "converged": [r["converged"] for r in grid]},
    }
    if below is not None:
        tables["below_grid"] = {"alpha": below.alpha, "bic": below_bic, "edges": _edges_per_year(below)}
    if V <= FULL_LOADINGS_MAX_STOCKS:
        tables["components"] = {"layout": "full", "variables": names, "values": model.components_}
    else:
        factors = []
        for m in range(M):
            entry = {"factor": m}
            for s in ("pos", "neg"):
                idx = _extremes(model.components_[m], s, EXTREME_LOADINGS)
                entry[s] = {"variables": [names[i] for i in idx], "loadings": model.components_[m, idx]}
            factors.append(entry)
        tables["components"] = {"layout": "extremes", "n_per_sign": EXTREME_LOADINGS, "factors": factors}
    variances = interpret.variances_table(model)
    tables["variances"] = {"dataset": years, "factor": list(range(M)),
                           "values": variances[interpret.factor_names(model)].to_numpy()}
    tables["noise_variances"] = {"dataset": years, "values": variances["noise"].to_numpy()}
    explained = interpret.variance_explained_table(model)
    tables["explained_variance"] = {"dataset": years, "columns": [str(col) for col in explained.columns],
                                    "values": explained.to_numpy()}
    edges = interpret.edges_table(model)
    tables["partial_correlations"] = [
        {"dataset": y, **{col: edges.loc[edges["dataset"] == y, col].to_numpy()
                          for col in ("factor_i", "factor_j", "partial_correlation")}}
        for y in years]

    # Table 6: the rows of enrichment_summary(table, alpha=0.05), with the numbers behind them.
    if enrichment is None:
        enrichment = label_enrichment(model, {"sector": info["sector"].to_numpy(object),
                                              "industry": info["industry"].to_numpy(object)}, c=c)
    rows = []
    t = enrichment.reset_index(drop=True)
    for _, r in t[(t["level"] == "sector") & (t["p_adjusted"] < 0.05)].iterrows():
        kids = t[(t["level"] == "industry") & (t["parent"] == r["label"]) & (t["factor"] == r["factor"])
                 & (t["sign"] == r["sign"]) & (t["p_adjusted"] < 0.05)]
        kids = kids.sort_values("p_adjusted", kind="stable")
        rows.append({
            "factor": r["factor"], "sign": r["sign"], "sector": r["label"], "n": f"{r['n_overlap']}/{r['n_set']}",
            "n_overlap": r["n_overlap"], "n_set": r["n_set"], "fold": r["fold_enrichment"],
            "statistic": r["statistic"], "p_value": r["p_value"], "p_adjusted": r["p_adjusted"],
            "within": [{"industry": k["label"], "n_overlap": k["n_overlap"], "n_set": k["n_set"],
                        "fold": k["fold_enrichment"], "p_value": k["p_value"], "p_adjusted": k["p_adjusted"]}
                       for _, k in kids.iterrows()],
        })
    tables["enrichment"] = rows
    tables["top_stocks"] = [
        {"factor": m, "sign": s, "tickers": [names[i] for i in idx], "loadings": model.components_[m, idx]}
        for m in range(M) for s in ("pos", "neg") for idx in [_extremes(model.components_[m], s, TOP_STOCKS)]]
    return _plain(tables)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("data", help="path of us_stocks_20150320_20170331_strict.npz")
    parser.add_argument("--out", default=DEFAULT_OUT, help="output folder (default docs/us_stocks)")
    parser.add_argument("-M", "--n-components", type=int, default=10, help="latent factors (default 10, as the paper)")
    parser.add_argument("--alphas", type=float, nargs="+", default=list(DEFAULT_ALPHAS),
                        help=f"BIC grid of ρ (default {' '.join(f'{a:g}' for a in DEFAULT_ALPHAS)})")
    parser.add_argument("--max-iter", type=int, default=3000, help="L-BFGS iterations per fit (default 3000)")
    parser.add_argument("--c", type=float, default=2.0, help="characteristic stocks: |z| > c (default 2)")
    parser.add_argument("--max-stocks", type=int, default=None, help="use only the first stocks (quick checks)")
    parser.add_argument("--dpi", type=int, default=100, help="figure resolution (default 100)")
    parser.add_argument("--no-figures", action="store_true", help="skip the figures (summary.md only)")
    parser.add_argument("--n-threads", type=int, default=None,
                        help="threads of the C++ core (default: the OpenMP default, OMP_NUM_THREADS)")
    parser.add_argument("--tables", metavar="FILE", default=None,
                        help="also write the factor tables of the chosen model as JSON at full precision")
    args = parser.parse_args(argv)

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from metaglasso import ConvergenceWarning, GridEdgeWarning, MetaGraphicalLasso, MetaGraphicalLassoBIC, __version__
    from metaglasso import _core, interpret, plotting
    from metaglasso.enrichment import enrichment_summary, label_enrichment

    if not os.path.exists(args.data):
        parser.error(f"data file {args.data!r} does not exist")
    os.makedirs(args.out, exist_ok=True)
    simd = _core.simd_instruction_set()  # the products actually used (a fallback when one is not supported)
    n_threads = args.n_threads if args.n_threads not in (None, -1) else _core.default_n_threads()
    print(f"metaglasso {__version__}: {simd} products, {n_threads} core thread(s)", file=sys.stderr)
    start = time.perf_counter()
    frames, years, info = load_stocks(args.data, max_stocks=args.max_stocks)
    V = frames[0].shape[1]
    sizes = [len(f) for f in frames]
    lines = ["# US stocks 2015–2017: MGLASSO with M = %d factors" % args.n_components, ""]
    lines += [
        "Produced by `python examples/us_stocks.py <data>/us_stocks_20150320_20170331_strict.npz` "
        f"(metaglasso {__version__}). Data: daily log adjusted closes of V = {V} US stocks with a close on every "
        f"trading day, one dataset per year ({', '.join(f'{y}: N = {n}' for y, n in zip(years, sizes))}), each "
        "stock centred within each year. Prices: the public pystock-data repository (CC BY-SA 4.0); sector and "
        "industry labels: FinanceDatabase (MIT). Factors are in metaglasso's canonical form: numbered "
        f"0–{args.n_components - 1} by decreasing variance summed over the years (Σ_k Σ_k[m, m]), each with its "
        "loading of largest absolute value positive. The model does not change when a factor's sign is flipped "
        "(that swaps its `pos` and `neg` stocks and the signs of its edges); the rule fixes the numbering and "
        "the signs, so every run — whatever the instruction set or thread count — gives the same tables.",
        "",
    ]

    # ---- BIC over ρ -------------------------------------------------------------------------
    with warnings.catch_warnings():  # the grid's table shows convergence; the text below the grid's edge
        warnings.simplefilter("ignore", ConvergenceWarning)
        warnings.simplefilter("ignore", GridEdgeWarning)
        search = MetaGraphicalLassoBIC(args.n_components, args.alphas, max_iter=args.max_iter,
                                       n_threads=args.n_threads).fit(frames)
    model = search.best_estimator_
    model.dataset_names_ = years
    rho = search.alpha_
    below = min(args.alphas) / 10
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        check = MetaGraphicalLasso(n_components=args.n_components, alpha=below, max_iter=args.max_iter,
                                   init=model.components_, n_threads=args.n_threads).fit(frames)
    check_bic = check.bic(frames)
    lines += ["## Choice of ρ by BIC (paper eq. 17)", ""]
    K, M = len(frames), args.n_components
    grid = {"ρ": [], "BIC": [], "edges (all years)": [], "iterations": [], "converged": []}
    for r in sorted(search.results_, key=lambda r: r["alpha"]):
        grid["ρ"].append(r["alpha"])
        grid["BIC"].append(f"{r['bic']:.1f}")
        grid["edges (all years)"].append((r["nonzeros"] - K * M) // 2)  # off-diagonal pairs of the Λ_k
        grid["iterations"].append(r["n_iter"])
        grid["converged"].append(r["converged"])
    grid["ρ"] = [f"{a:g}" for a in grid["ρ"]]
    lines += ["Each row is a fit of the grid, warm-started along ρ from the largest value; `edges` counts the "
              "nonzero partial correlations over the three years. The penalty is the paper's: ρ times ‖Λ_k‖₁, "
              "the sum of the absolute values of all entries of Λ_k (diagonal included), the same ρ for every "
              "year. The chosen ρ is then refitted from the PCA start (the model below).", "", _md(grid), ""]
    monotone = all(x["bic"] > y["bic"] for x, y in zip(
        sorted(search.results_, key=lambda r: -r["alpha"]), sorted(search.results_, key=lambda r: -r["alpha"])[1:]))
    lines += [
        f"BIC chooses **ρ = {rho:g}** (M = {args.n_components} fixed, as in the paper). "
        + ("BIC decreases monotonically as ρ decreases over this grid — as in the paper's Table 5, where the "
           "smallest ρ tried (3) was chosen — so the choice is the smallest value of the grid. "
           if monotone else "")
        + f"One step below the grid, ρ = {below:g} gives BIC {check_bic:.1f} with "
        f"{', '.join(str(n) for n in _edges_per_year(check))} edges: BIC keeps "
        "improving slowly while the networks get denser, so the grid's lower end is a choice for readable "
        "networks rather than a BIC optimum.",
        "",
        f"The chosen fit: {model.n_iter_} L-BFGS iterations (converged: {model.converged_}), objective "
        f"E = {model.objective_:.6g}, "
        + (f"solved in the {model.compression_rank_}-dimensional span of the data."
           if model.compression_rank_ else f"solved in the V = {V} dimensions of the stocks."),
        "",
    ]

    # ---- Tables ------------------------------------------------------------------------------
    variances = interpret.variances_table(model)
    explained = interpret.variance_explained_table(model)
    edges = interpret.edges_table(model)
    lines += ["## Factor variances Σ_k[i, i] and noise ε_k per year (Fig 4)", "",
              "With the diagonal of Λ_k penalised, Σ_k[i, i] is the variance of the year's data along factor i "
              f"plus ρ = {rho:g}.", "", _md(variances, digits=3), ""]
    percent = (100 * explained).map(lambda v: f"{v:.1f}")
    percent.columns = [c.replace("factor_", "") for c in percent.columns]
    lines += ["Share (%) of each year's total variance carried by each factor (`noise`: the other V − M "
              "directions):", "", _md(percent, digits=3), ""]
    pivot = edges.assign(edge=[f"{i}–{j}" for i, j in zip(edges["factor_i"], edges["factor_j"])]).pivot(
        index="edge", columns="dataset", values="partial_correlation")
    pivot = pivot.reindex(sorted(pivot.index, key=lambda e: tuple(int(x) for x in e.split("–"))))
    pivot = pivot.map(lambda v: "" if np.isnan(v) else f"{v:+.2f}")
    pivot.columns = [str(c) for c in pivot.columns]
    lines += ["## Partial correlations between factors (Fig 5)", "",
              f"Edges of the networks ({', '.join(f'{y}: {n}' for y, n in zip(years, edges.groupby('dataset').size().reindex(years, fill_value=0)))}); "
              "blank: no edge that year.", "", _md(pivot), ""]

    # ---- Enrichment (Table 6) ----------------------------------------------------------------
    labelled = int((info["sector"] != "").sum())
    table = label_enrichment(model, {"sector": info["sector"].to_numpy(object),
                                     "industry": info["industry"].to_numpy(object)}, c=args.c)
    summary = enrichment_summary(table, alpha=0.05)
    n_sig = len(summary)
    lines += [
        "## Sectors and industries over-represented among the characteristic stocks (Table 6)", "",
        f"Characteristic stocks of a factor: loading more than {args.c:g} standard deviations above (`pos`) or "
        f"below (`neg`) the factor's mean loading. Each set is compared with every sector by the "
        f"log-likelihood-ratio (G) test of the 2 × 2 table (in the set or not × in the sector or not), one-sided "
        f"for over-representation, **over the {labelled} stocks with a sector label** ({V - labelled} stocks "
        "have none and are left out of the tests); p-values are Benjamini–Hochberg adjusted within each set. "
        "Industries are then tested the same way within each significant sector. `n` is stocks of the sector "
        "in the set / labelled stocks in the set; `fold` the ratio to the expected count.",
        "",
        _md(summary, digits=3) if n_sig else "(no sector with adjusted p < 0.05)",
        "",
    ]

    lines += ["Highlights — per factor, the year in which its variance is largest and its most significant sector "
              "(with the industries within it):", ""]
    var = np.diagonal(model.covariances_, axis1=1, axis2=2)
    for m in range(args.n_components):
        rows = summary[summary["factor"] == m].sort_values("p_adjusted")
        peak = years[int(np.argmax(var[:, m]))]
        if len(rows):
            r = rows.iloc[0]
            within = "" if r["within"] == "-" else f"; within it {r['within']}"
            lines.append(f"- factor {m} (largest in {peak}): `{r['sign']}` stocks over-represent **{r['sector']}** "
                         f"({r['n']}, adjusted p = {r['p_adjusted']:.2g}){within}")
        else:
            lines.append(f"- factor {m} (largest in {peak}): no sector with adjusted p < 0.05")
    lines += [""]

    lines += ["## The stocks of largest loadings per factor", "",
              "The prices are not scaled, so the most volatile stocks (small caps, leveraged volatility products) "
              "carry the largest loadings; the sector tests above use the whole characteristic sets.", ""]
    tops = {"factor": [], "sign": [], "stocks": []}
    for m in range(args.n_components):
        for s in ("pos", "neg"):
            tops["factor"].append(m)
            tops["sign"].append(s)
            tops["stocks"].append(_top_stocks(model, info, m, s))
    lines += [_md(tops), ""]

    # ---- Figures -----------------------------------------------------------------------------
    figs = {}
    if not args.no_figures:
        figs = {
            "networks.png": plotting.plot_networks(model, panel_size=3.2),
            "variances.png": plotting.plot_variances(model),
            "scores.png": plotting.plot_scores(
                model, frames, x=[np.asarray(f.index, dtype="datetime64[D]") for f in frames],
                xlabel=f"trading day ({frames[0].index[0]} to {frames[-1].index[-1]})"),
            "bic.png": plotting.plot_bic(search),
        }
        for name, fig in figs.items():
            fig.savefig(os.path.join(args.out, name), dpi=args.dpi)
            plt.close(fig)
        lines += ["## Figures", "",
                  "![networks](networks.png)", "", "Partial-correlation networks per year (blue positive, red "
                  "negative, width ∝ |partial correlation|, node area ∝ factor variance).", "",
                  "![variances](variances.png)", "", "Factor variances (A) and noise variance (B) per year.", "",
                  "![scores](scores.png)", "", "Latent scores of the trading days against their dates, one line per "
                  "year.", "", "![bic](bic.png)", ""]
    elapsed = time.perf_counter() - start
    lines += [f"Run time: {elapsed:.0f} s on {platform.machine()} ({os.cpu_count()} cores; {n_threads} core "
              f"thread(s), {simd} products), Python {platform.python_version()}.", ""]
    text = "\n".join(lines)
    with open(os.path.join(args.out, "summary.md"), "w", encoding="utf-8") as fh:
        fh.write(text)
    print(text)
    wrote = os.path.join(args.out, "summary.md")
    if args.tables is not None:
        doc = {
            "format": TABLES_FORMAT,
            "run": {"metaglasso_version": __version__, "simd_instruction_set": simd, "n_threads": n_threads,
                    "environment": {k: os.environ.get(k) for k in (
                        "METAGLASSO_SIMD", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")},
                    "python": platform.python_version(), "numpy": np.__version__,
                    "machine": platform.machine(), "seconds": elapsed},
            "input": {"data": os.path.basename(args.data), "n_stocks": V, "years": years, "n_samples": sizes,
                      "n_components": args.n_components, "alphas": sorted(args.alphas), "max_iter": args.max_iter,
                      "c": args.c},
            "tables": factor_tables(search, model, info, years, frames=frames, c=args.c, enrichment=table,
                                    below=check, below_bic=check_bic),
        }
        folder = os.path.dirname(os.path.abspath(args.tables))
        os.makedirs(folder, exist_ok=True)
        with open(args.tables, "w", encoding="utf-8") as fh:
            json.dump(_plain(doc), fh, indent=1)
            fh.write("\n")
        wrote += f", {args.tables}"
    print(f"wrote {wrote} and {len(figs)} figures in {elapsed:.1f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
