"""examples/us_stocks.py on the real stock prices (skipped when the data are not beside the repository),
and the comparison of tools/check_determinism.py (no data needed)."""

import copy
import importlib.util
import json
import os
import sys

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.path.join(ROOT, os.pardir, "shared", "data", "us_stocks_2015_2017", "us_stocks_20150320_20170331_strict.npz")
TOOL = os.path.join(ROOT, "tools", "check_determinism.py")

needs_data = pytest.mark.skipif(not os.path.exists(DATA), reason="US stock data not found at ../shared/data")
needs_tool = pytest.mark.skipif(not os.path.exists(TOOL), reason="tools/check_determinism.py is not here (sdist)")


def _load(name, path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up there
    try:
        spec.loader.exec_module(module)
    finally:
        del sys.modules[name]
    return module


def _example():
    return _load("us_stocks_example", os.path.join(ROOT, "examples", "us_stocks.py"))


def _tool():
    return _load("check_determinism", TOOL)


@needs_data
def test_loader_gives_the_raw_yearly_prices_and_the_model_centres_them():
    pytest.importorskip("pandas")
    from metaglasso import MetaGraphicalLasso

    frames, years, info = _example().load_stocks(DATA, max_stocks=50)
    assert years == [2015, 2016, 2017]
    assert [f.shape for f in frames] == [(199, 50), (252, 50), (62, 50)]
    assert list(frames[0].columns) == list(info.index)
    assert {"name", "sector", "industry"} <= set(info.columns)
    with np.load(DATA, allow_pickle=False) as z:
        X, year = np.asarray(z["log_adj_close"][:50], dtype=np.float64).T, z["year"]
    raw = [X[year == y] for y in years]
    for f, r in zip(frames, raw):
        np.testing.assert_array_equal(f.to_numpy(), r)
    # Each year is centred by the model: the example's fit is the fit of the raw arrays, bit for bit.
    a = MetaGraphicalLasso(n_components=3, alpha=0.1).fit(frames)
    b = MetaGraphicalLasso(n_components=3, alpha=0.1).fit(raw)
    np.testing.assert_allclose(a.means_, [r.mean(axis=0) for r in raw], rtol=1e-14)
    np.testing.assert_array_equal(a.components_, b.components_)


@needs_data
def test_example_runs_on_a_subset(tmp_path, capsys):
    pytest.importorskip("pandas")
    pytest.importorskip("matplotlib")
    rc = _example().main([DATA, "--out", str(tmp_path), "--max-stocks", "600", "--alphas", "1", "3", "--dpi", "40"])
    assert rc == 0
    text = (tmp_path / "summary.md").read_text()
    assert "Choice of ρ by BIC" in text and "(Table 6)" in text
    assert "canonical form" in text and "largest absolute value positive" in text
    assert "as in the paper; a factor's sign is arbitrary" not in text
    assert "all entries of Λ_k" in text
    for name in ("networks.png", "variances.png", "scores.png", "bic.png"):
        assert (tmp_path / name).exists()


@needs_data
def test_tables_json_matches_the_fitted_model(tmp_path, capsys):
    pytest.importorskip("pandas")
    pytest.importorskip("matplotlib")
    import metaglasso
    from metaglasso import MetaGraphicalLasso, _core

    example = _example()
    path = tmp_path / "tables.json"
    V, M, alphas = 300, 10, [0.1, 0.3]
    rc = example.main([DATA, "--out", str(tmp_path), "--max-stocks", str(V), "--alphas", *map(str, alphas),
                       "--no-figures", "--tables", str(path)])
    assert rc == 0
    assert not (tmp_path / "networks.png").exists()  # --no-figures
    doc = json.loads(path.read_text())
    assert list(doc) == ["format", "run", "input", "tables"]
    assert doc["format"] == example.TABLES_FORMAT
    run = doc["run"]
    assert run["metaglasso_version"] == metaglasso.__version__
    assert run["simd_instruction_set"] == _core.simd_instruction_set()
    assert run["n_threads"] == _core.default_n_threads()
    assert doc["input"]["n_stocks"] == V and doc["input"]["alphas"] == alphas
    t = doc["tables"]
    assert list(t) == ["model", "bic_grid", "below_grid", "components", "variances", "noise_variances",
                       "explained_variance", "partial_correlations", "enrichment", "top_stocks"]
    years, K = doc["input"]["years"], 3

    # BIC grid: ρ increasing, the chosen ρ is on it and has the smallest BIC
    grid = t["bic_grid"]
    assert grid["alpha"] == sorted(alphas)
    assert all(len(v) == len(alphas) for v in grid.values())
    rho = t["model"]["alpha"]
    assert rho in grid["alpha"]
    assert grid["bic"][grid["alpha"].index(rho)] == min(grid["bic"])
    assert grid["edges"] == [(n - K * M) // 2 for n in grid["nonzeros"]]
    assert t["below_grid"]["alpha"] == pytest.approx(min(alphas) / 10) and len(t["below_grid"]["edges"]) == K

    # the same fit in this process gives the same numbers
    frames, _, _ = example.load_stocks(DATA, max_stocks=V)
    model = MetaGraphicalLasso(n_components=M, alpha=rho, max_iter=3000).fit(frames)
    assert t["model"]["objective"] == pytest.approx(model.objective_, rel=1e-12)
    assert t["model"]["bic"] == pytest.approx(model.bic(frames), rel=1e-12)
    assert t["model"]["n_iter"] == model.n_iter_
    comp = t["components"]
    assert comp["layout"] == "full" and comp["variables"] == list(frames[0].columns)
    D = np.asarray(comp["values"])
    assert D.shape == (M, V)
    np.testing.assert_allclose(D, model.components_, rtol=0, atol=1e-12)
    np.testing.assert_allclose(D @ D.T, np.eye(M), atol=1e-10)
    assert all(row[np.argmax(np.abs(row))] > 0 for row in D)  # canonical signs

    # variances K × M, in canonical order; noise; explained shares from them
    var = np.asarray(t["variances"]["values"])
    assert var.shape == (K, M) and t["variances"]["dataset"] == years
    np.testing.assert_allclose(var, np.diagonal(model.covariances_, axis1=1, axis2=2), rtol=1e-12)
    assert np.all(np.diff(var.sum(axis=0)) <= 0)  # decreasing variance summed over the years
    noise = np.asarray(t["noise_variances"]["values"])
    np.testing.assert_allclose(noise, model.noise_variances_, rtol=1e-12)
    explained = np.asarray(t["explained_variance"]["values"])
    assert explained.shape == (K, M + 1) and t["explained_variance"]["columns"][-1] == "noise"
    total = var.sum(axis=1) + (V - M) * noise
    np.testing.assert_allclose(explained[:, :M], var / total[:, None], rtol=1e-10)
    np.testing.assert_allclose(explained.sum(axis=1), 1.0, rtol=1e-12)

    # partial-correlation edges: the nonzero off-diagonal entries of each Λ_k
    assert [e["dataset"] for e in t["partial_correlations"]] == years
    for k, e in enumerate(t["partial_correlations"]):
        i, j = np.nonzero(np.triu(model.precisions_[k], 1))
        assert e["factor_i"] == i.tolist() and e["factor_j"] == j.tolist()
        np.testing.assert_allclose(e["partial_correlation"], model.partial_correlations_[k][i, j], rtol=1e-10)
        assert all(-1 < p < 1 for p in e["partial_correlation"])

    assert sum(len(e["factor_i"]) for e in t["partial_correlations"]) > 0  # (6 edges on these stocks)

    # enrichment rows as in the Table 6 summary
    assert t["enrichment"]  # (11 significant sectors on these stocks)
    for r in t["enrichment"]:
        assert r["sign"] in ("pos", "neg") and 0 <= r["factor"] < M
        assert r["n"] == f"{r['n_overlap']}/{r['n_set']}" and r["p_adjusted"] < 0.05
        assert all(w["p_adjusted"] < 0.05 for w in r["within"])

    # top stocks: the largest / smallest loadings of each factor, in order
    assert [(r["factor"], r["sign"]) for r in t["top_stocks"]] == [(m, s) for m in range(M) for s in ("pos", "neg")]
    col = {name: i for i, name in enumerate(comp["variables"])}
    for r in t["top_stocks"]:
        load = D[r["factor"]]
        assert r["loadings"] == [load[col[n]] for n in r["tickers"]]
        expect = np.sort(load)[::-1][:len(r["tickers"])] if r["sign"] == "pos" else np.sort(load)[:len(r["tickers"])]
        assert r["loadings"] == expect.tolist()


def _tables():
    return {
        "model": {"alpha": 0.03, "objective": -8888.709766614082, "n_iter": 343, "converged": True,
                  "compression_rank": None},
        "variances": {"dataset": [2015, 2016], "values": [[11.75, 0.0473], [1.53, 6.07]]},
        "partial_correlations": [{"dataset": 2015, "factor_i": [0, 1], "factor_j": [1, 2],
                                  "partial_correlation": [0.5, -0.25]}],
        "top_stocks": [{"factor": 0, "sign": "pos", "tickers": ["AAMC", "CF"], "loadings": [0.287, 0.205]},
                       {"factor": 0, "sign": "neg", "tickers": ["CEL", "CENT"], "loadings": [-0.31, -0.12]}],
        "enrichment": [{"factor": 0, "sign": "pos", "sector": "Energy", "n": "3/13", "p_adjusted": float("nan")}],
    }


def _failing(diffs):
    return {name for name, d in diffs.items() if not d.ok}


@needs_tool
def test_comparison_of_hand_made_tables():
    tool = _tool()
    ref = _tables()

    same = tool.compare_tables(ref, copy.deepcopy(ref))
    assert tool.agree(same) and all(d.bit_identical and d.max_rel_diff == 0 for d in same.values())

    close = copy.deepcopy(ref)
    close["variances"]["values"][1][0] *= 1 + 1e-9
    diffs = tool.compare_tables(ref, close)
    assert tool.agree(diffs) and not diffs["variances"].bit_identical
    assert diffs["variances"].inexact == ["variances.values[1][0]"]
    assert diffs["variances"].max_rel_diff == pytest.approx(1e-9, rel=1e-3)

    far = copy.deepcopy(ref)
    far["variances"]["values"][1][0] *= 1 + 1e-5  # a 1e-5 relative change
    diffs = tool.compare_tables(ref, far)
    assert _failing(diffs) == {"variances"}
    assert diffs["variances"].max_rel_diff == pytest.approx(1e-5, rel=1e-3)
    assert "variances.values[1][0]" in diffs["variances"].messages[0]

    swapped = copy.deepcopy(ref)  # two factors' rows swapped
    swapped["top_stocks"].reverse()
    assert _failing(tool.compare_tables(ref, swapped)) == {"top_stocks"}
    swapped = copy.deepcopy(ref)  # two columns (factors) swapped
    swapped["variances"]["values"] = [row[::-1] for row in ref["variances"]["values"]]
    assert _failing(tool.compare_tables(ref, swapped)) == {"variances"}
    reordered = copy.deepcopy(ref)  # the same keys in another order
    reordered["model"] = dict(reversed(list(ref["model"].items())))
    diffs = tool.compare_tables(ref, reordered)
    assert _failing(diffs) == {"model"} and "another order" in diffs["model"].messages[0]

    flipped = copy.deepcopy(ref)  # a factor's sign flipped
    flipped["partial_correlations"][0]["partial_correlation"] = [-0.5, 0.25]
    diffs = tool.compare_tables(ref, flipped)
    assert _failing(diffs) == {"partial_correlations"}
    assert diffs["partial_correlations"].n_differences == 2 and "sign flipped" in diffs["partial_correlations"].messages[0]

    # integers, booleans, strings, None, types, shapes and tables: exact
    for change in (lambda t: t["model"].update(n_iter=344), lambda t: t["model"].update(converged=False),
                   lambda t: t["model"].update(compression_rank=510), lambda t: t["model"].update(n_iter=343.0),
                   lambda t: t["top_stocks"][0]["tickers"].reverse(), lambda t: t["enrichment"][0].update(n="3/14"),
                   lambda t: t["variances"]["values"].append([1.0, 2.0]), lambda t: t.pop("enrichment"),
                   lambda t: t["enrichment"][0].update(p_adjusted=0.01)):
        other = copy.deepcopy(ref)
        change(other)
        assert not tool.agree(tool.compare_tables(ref, other))
    extra = copy.deepcopy(ref)
    extra["new"] = []
    assert _failing(tool.compare_tables(ref, extra)) == {"new"}


@needs_tool
def test_report_names_fallbacks_and_fails_on_a_difference():
    tool = _tool()

    def run(simd, used, threads, tables):
        return tool.Run(simd, threads, seconds=1.0, returncode=0, document={
            "format": "f", "run": {"simd_instruction_set": used, "n_threads": threads}, "input": {"n_stocks": 5},
            "tables": tables})

    runs = [run("baseline", "baseline", 1, _tables()), run("avx2", "avx2", 2, _tables()),
            run("avx512", "avx2", 1, _tables())]  # avx512 not supported: the core used avx2
    lines = []
    assert tool.report(runs, out=lambda *a: lines.append(" ".join(map(str, a)))) == 0
    text = "\n".join(lines)
    assert "avx2 (fallback)" in text
    assert "instruction sets tested: baseline, avx2; NOT tested" in text and "avx512" in text.split("NOT tested")[1]
    assert "bit-identical" in text and "RESULT: OK" in text

    changed = _tables()
    changed["variances"]["values"][0][1] *= 1 + 1e-5
    runs[2] = run("avx512", "avx512", 1, changed)
    lines = []
    assert tool.report(runs, out=lambda *a: lines.append(" ".join(map(str, a)))) == 1
    text = "\n".join(lines)
    assert "DIFFERS" in text and "variances.values[0][1]" in text and "RESULT: FAILED" in text

    runs[2] = tool.Run("avx512", 1, seconds=0.5, error="exit status 1: boom")
    assert tool.report(runs, out=lambda *a: None) == 1


@needs_data
@needs_tool
def test_check_determinism_end_to_end(tmp_path, capsys):
    pytest.importorskip("pandas")
    pytest.importorskip("matplotlib")
    rc = _tool().main([DATA, "--max-stocks", "150", "--alphas", "0.1", "0.3", "--simd", "baseline", "avx2",
                       "--threads", "1", "--keep", str(tmp_path)])
    out = capsys.readouterr().out
    assert rc == 0, out
    assert "RESULT: OK" in out and "instruction sets tested: baseline" in out
    assert len(list(tmp_path.glob("run*/tables.json"))) == 2
