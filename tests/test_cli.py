"""``metaglasso fit``, ``select`` and ``report`` on files written here; clear one-line errors."""

import argparse
import io
import subprocess
import sys

import numpy as np
import pytest

from metaglasso.__main__ import build_parser, main
from metaglasso.datasets import make_synthetic
from metaglasso.io import load_model, read_metadata

pd = pytest.importorskip("pandas")
pytest.importorskip("matplotlib")

V, M = 20, 2


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("cli")
    Xs, _ = make_synthetic(V, [40, 50, 45], 3, M, random_state=0)
    cols = [f"g{i}" for i in range(V)]
    frames = []
    for k, X in enumerate(Xs):
        f = pd.DataFrame(X, columns=cols)
        f.insert(0, "grp", ["alpha", "beta", "gamma"][k])
        f.insert(1, "date", [f"d{k}-{i}" for i in range(len(X))])
        frames.append(f)
    data = pd.concat(frames, ignore_index=True)
    csv = d / "data.csv"
    data.to_csv(csv, index=False)
    labels = d / "labels.csv"
    pd.DataFrame({"variable": cols, "sector": ["S1", "S2"] * (V // 2),
                  "industry": [f"I{i % 4}" for i in range(V)]}).to_csv(labels, index=False)
    gmt = d / "sets.gmt"
    gmt.write_text("setA\tfirst\t" + "\t".join(cols[:6]) + "\nsetB\tsecond\t" + "\t".join(cols[6:12]) + "\n")
    return d, csv, labels, gmt, data


def _run(argv, capsys):
    rc = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return rc, out, err


def test_fit_writes_tables_figures_report(files, tmp_path, capsys):
    d, csv, labels, gmt, data = files
    out = tmp_path / "out"
    rc, stdout, err = _run(["fit", csv, "--group", "grp", "--index-col", "date", "-M", M, "--alpha", 0.05,
                            "--out", out, "--labels", labels, "--gene-sets", gmt, "--n-top", 5, "--no-progress"],
                           capsys)
    assert rc == 0, err
    for name in ("model.npz", "loadings.csv", "scores.csv", "variances.csv", "variance_explained.csv", "edges.csv",
                 "edge_differences.csv", "characteristic_variables.csv", "label_enrichment.csv",
                 "label_enrichment_summary.csv", "gene_set_enrichment.csv", "networks.png", "edge_differences.png",
                 "variances.png", "scores.png", "objective.png", "report.html"):
        assert (out / name).exists(), name
    assert "wrote" in stdout
    # Numbers as text, converted by NumPy (correctly rounded): pandas 2's own parser can be an ulp off.
    loadings = pd.read_csv(out / "loadings.csv", dtype=str)
    assert list(loadings.columns) == ["variable", "factor_0", "factor_1"]
    assert list(loadings["variable"]) == [f"g{i}" for i in range(V)]
    scores = pd.read_csv(out / "scores.csv")
    assert scores.shape == (len(data), 2 + M)
    assert list(scores["dataset"].unique()) == ["alpha", "beta", "gamma"]
    assert list(scores["sample"][:3]) == ["d0-0", "d0-1", "d0-2"]
    variances = pd.read_csv(out / "variances.csv")
    assert list(variances["dataset"]) == ["alpha", "beta", "gamma"]
    model = load_model(out / "model.npz")
    assert model.dataset_names_ == ["alpha", "beta", "gamma"]
    assert list(model.feature_names_in_) == [f"g{i}" for i in range(V)]
    np.testing.assert_allclose(loadings[["factor_0", "factor_1"]].to_numpy().astype(float), model.components_.T,
                               rtol=1e-15)
    assert read_metadata(out / "model.npz")["user"]["command"] == "fit"
    enr = pd.read_csv(out / "label_enrichment.csv", keep_default_na=False)
    assert set(enr["level"]) <= {"sector", "industry"}
    differences = pd.read_csv(out / "edge_differences.csv")
    assert list(differences.columns) == ["factor_i", "factor_j", "n_datasets", "status", "n_values", "equal",
                                         "max_difference", "alpha", "beta", "gamma"]
    edges = pd.read_csv(out / "edges.csv")
    assert differences["n_datasets"].sum() == len(edges)
    assert set(zip(differences["factor_i"], differences["factor_j"])) == set(zip(edges["factor_i"], edges["factor_j"]))
    html = (out / "report.html").read_text()
    assert html.count("data:image/png;base64,") == 5
    assert "Partial-correlation networks" in html and "Label over-representation" in html
    assert "<h2>Shared and differing edges</h2>" in html and "fitted independently" in html
    assert "edge_differences.csv" in html and "solid edges are in every dataset" in html

    # rebuild the report from the model and the tables beside it
    rebuilt = tmp_path / "rebuilt"
    rc, stdout, err = _run(["report", out / "model.npz", "--out", rebuilt], capsys)
    assert rc == 0, err
    html2 = (rebuilt / "report.html").read_text()
    assert html2.count("data:image/png;base64,") == 5
    assert "Label over-representation" in html2 and "Shared and differing edges" in html2
    assert (rebuilt / "edge_differences.csv").read_text() == (out / "edge_differences.csv").read_text()


def _one_line_error(rc, err, *needles, command="fit"):
    assert rc != 0
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(f"metaglasso {command}: error: ")
    for needle in needles:
        assert needle in lines[0], lines[0]


def test_bad_files(files, tmp_path, capsys):
    d, csv, labels, gmt, data = files
    out = tmp_path / "o"
    rc, _, err = _run(["fit", csv, "--group", "cohort", "-M", M, "--out", out], capsys)
    _one_line_error(rc, err, "--group column 'cohort' is not in", "data.csv", "grp")

    rc, _, err = _run(["fit", csv, "--group", "grp", "-M", M, "--out", out], capsys)  # 'date' is text
    _one_line_error(rc, err, "column 'date' is not numeric", "'d0-0'", "--drop")

    small = data.iloc[:-44]  # the last group keeps one sample
    path = tmp_path / "small.csv"
    small.to_csv(path, index=False)
    rc, _, err = _run(["fit", path, "--group", "grp", "--drop", "date", "-M", M, "--out", out], capsys)
    _one_line_error(rc, err, "group 'gamma' of column 'grp' has 1 sample(s)", "at least 2")

    holes = data.copy()
    holes.loc[5, "g3"] = np.nan
    path = tmp_path / "holes.csv"
    holes.to_csv(path, index=False)
    rc, _, err = _run(["fit", path, "--group", "grp", "--drop", "date", "-M", M, "--out", out], capsys)
    _one_line_error(rc, err, "column 'g3' has 1 missing value(s)")

    rc, _, err = _run(["fit", tmp_path / "nope.csv", "-M", M, "--out", out], capsys)
    _one_line_error(rc, err, "does not exist")

    rc, _, err = _run(["fit", csv, "--drop", "grp", "date", "--split", 50, 40, "-M", M, "--out", out], capsys)
    _one_line_error(rc, err, "--split points must increase strictly")

    rc, _, err = _run(["fit", csv, "--group", "grp", "--drop", "date", "-M", V, "--out", out], capsys)
    _one_line_error(rc, err, "-M/--n-components must be in [1, 20)")

    empty = tmp_path / "empty.csv"
    empty.write_text("")
    rc, _, err = _run(["fit", empty, "-M", M, "--out", out], capsys)
    _one_line_error(rc, err, "is empty")


def test_bad_file_exit_status_from_the_shell(files, tmp_path):
    d, csv, *_ = files
    proc = subprocess.run([sys.executable, "-m", "metaglasso", "fit", str(csv), "--group", "missing", "-M", "2",
                           "--out", str(tmp_path / "x")], capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 1
    assert proc.stderr.strip() == ("metaglasso fit: error: --group column 'missing' is not in "
                                   f"'{csv}' (columns: grp, date, g0, g1, g2, g3, g4, g5, ... (22 in all))")


def test_select_with_split_then_report(files, tmp_path, capsys):
    d, csv, *_ = files
    out = tmp_path / "sel"
    rc, stdout, err = _run(["select", csv, "--drop", "grp", "date", "--split", 40, 90, "-M", 1, 2,
                            "--alphas", 0.05, 0.2, "--out", out, "--quiet"], capsys)
    assert rc == 0, err
    assert "BIC chose M=" in stdout
    grid = pd.read_csv(out / "bic_grid.csv")
    assert len(grid) == 4 and {"n_components", "alpha", "bic"} <= set(grid.columns)
    assert (out / "bic.png").exists()
    meta = read_metadata(out / "model.npz")
    assert len(meta["selection"]) == 4
    assert meta["dataset_names"] == ["0:40", "40:90", "90:135"]
    rc, _, err = _run(["report", out, "--no-figures"], capsys)  # the folder works too
    assert rc == 0, err
    assert "Model selection (BIC)" in (out / "report.html").read_text()


def test_npz_input_with_labels(tmp_path, capsys):
    Xs, _ = make_synthetic(V, [30, 30], 2, M, random_state=1)
    X = np.vstack(Xs).T.astype(np.float32)  # variables in rows, as the stock files
    names = np.array([f"t{i}" for i in range(V)])
    sector = np.array(["A", "B", "", "C"] * (V // 4))
    path = tmp_path / "d.npz"
    np.savez(path, prices=X, year=np.repeat([2015, 2016], 30), tickers=names, sector=sector,
             other=np.zeros((3, 3)))
    out = tmp_path / "npz"
    rc, _, err = _run(["fit", path, "--array", "prices", "--transpose", "--group", "year", "--names", "tickers",
                       "--label-keys", "sector", "-M", M, "--out", out, "--no-figures"], capsys)
    assert rc == 0, err
    assert pd.read_csv(out / "variances.csv")["dataset"].tolist() == [2015, 2016]
    assert pd.read_csv(out / "loadings.csv")["variable"].tolist() == list(names)
    assert (out / "label_enrichment.csv").exists() and not (out / "networks.png").exists()
    rc, _, err = _run(["fit", path, "--group", "year", "-M", M, "--out", out], capsys)
    _one_line_error(rc, err, "choose the data array with --array", "other", "prices")
    rc, _, err = _run(["fit", path, "--array", "prices", "--group", "year", "-M", M, "--out", out], capsys)
    _one_line_error(rc, err, "--group 'year' must hold one value per sample (20)", "add --transpose")


def test_every_option_has_help():
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for name in ("fit", "select", "report"):
        p = sub.choices[name]
        assert p.description and len(p.description) > 80
        for action in p._actions:
            if isinstance(action, argparse._HelpAction):
                continue
            assert action.help and action.help != argparse.SUPPRESS, (name, action.dest)


def test_help_text_runs(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["fit", "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert "--group COLUMN" in out and "--split ROW" in out and "--label-keys" in out


def test_progress_bar_draws():
    from metaglasso._cli import _Progress

    stream = io.StringIO()
    with _Progress(2, enabled=True, stream=stream) as p:
        p.step("M=2 ρ=0.1")
        p.step("M=2 ρ=0.05")
        p.finish()
    text = stream.getvalue()
    assert "2/2 fits" in text and text.endswith("\n")
    plain = io.StringIO()
    with _Progress(2, enabled=False, stream=plain) as p:
        p.step("first")
        p.step("second")
    assert plain.getvalue().splitlines() == ["[1/2] first", "[2/2] second"]


def test_parquet_input(files, tmp_path, capsys):
    pytest.importorskip("pyarrow")
    d, csv, labels, gmt, data = files
    path = tmp_path / "data.parquet"
    data.to_parquet(path)
    out = tmp_path / "pq"
    rc, _, err = _run(["fit", path, "--group", "grp", "--index-col", "date", "-M", M, "--out", out, "--no-figures"],
                      capsys)
    assert rc == 0, err
    assert pd.read_csv(out / "variances.csv")["dataset"].tolist() == ["alpha", "beta", "gamma"]


def test_fit_takes_the_penalty_options(files, tmp_path, capsys):
    # The paper's penalty by default, as in Python; the switch, the sample-size scaling and the starts.
    from metaglasso import MetaGraphicalLasso

    d, csv, labels, gmt, data = files
    out = tmp_path / "default"
    rc, _, err = _run(["fit", csv, "--group", "grp", "--index-col", "date", "-M", M, "--alpha", 0.05, "--out", out,
                       "--no-figures", "--no-progress"], capsys)
    assert rc == 0, err
    model = load_model(out / "model.npz")
    assert model.penalize_diagonal is True and model.alpha_scaling == "none" and model.n_init == 1
    read = pd.read_csv(csv)
    frames = [g.drop(columns=["grp", "date"]).to_numpy() for _, g in read.groupby("grp", sort=False)]
    python = MetaGraphicalLasso(n_components=M, alpha=0.05).fit(frames)
    np.testing.assert_array_equal(model.components_, python.components_)  # the same answer as from Python

    out = tmp_path / "options"
    rc, _, err = _run(["fit", csv, "--group", "grp", "--index-col", "date", "-M", M, "--alpha", 0.05, "--out", out,
                       "--no-penalize-diagonal", "--alpha-scaling", "n_samples", "--n-init", 3, "--no-figures",
                       "--no-progress"], capsys)
    assert rc == 0, err
    model = load_model(out / "model.npz")
    assert model.penalize_diagonal is False and model.alpha_scaling == "n_samples" and model.n_init == 3
    sizes = np.array([40, 50, 45], dtype=float)
    np.testing.assert_allclose(model.alphas_, 0.05 * np.sqrt(sizes.mean() / sizes), rtol=1e-15)
    assert model.init_objectives_.shape == (3,)
    report = (out / "report.html").read_text()
    assert "off-diagonal entries of Λ_k" in report and "ρ_k = " in report and "kept start" in report


def test_fit_and_select_take_the_network_coupling(files, tmp_path, capsys):
    # --penalty, --beta and --fused-pairs reach the estimator: the same answer as from Python.
    from metaglasso import MetaGraphicalLasso

    d, csv, labels, gmt, data = files
    out = tmp_path / "fused"
    rc, stdout, err = _run(["fit", csv, "--group", "grp", "--index-col", "date", "-M", M, "--alpha", 0.05,
                            "--penalty", "fused", "--beta", 0.05, "--fused-pairs", "chain", "--out", out,
                            "--no-figures", "--no-progress"], capsys)
    assert rc == 0, err
    assert "fused λ₂=0.05" in stdout
    model = load_model(out / "model.npz")
    assert (model.penalty, model.beta, model.fused_pairs) == ("fused", 0.05, "chain") and model._coupled()
    read = pd.read_csv(csv)
    frames = [g.drop(columns=["grp", "date"]).to_numpy() for _, g in read.groupby("grp", sort=False)]
    python = MetaGraphicalLasso(n_components=M, alpha=0.05, penalty="fused", beta=0.05, fused_pairs="chain").fit(frames)
    np.testing.assert_array_equal(model.components_, python.components_)
    np.testing.assert_array_equal(model.precisions_, python.precisions_)
    html = (out / "report.html").read_text()
    assert "fused, λ₂ = 0.05, chain pairs" in html and "The fused penalty (λ₂ = 0.05, chain pairs)" in html
    differences = pd.read_csv(out / "edge_differences.csv")
    from metaglasso import interpret

    expected = interpret.edge_differences_table(python, dataset_names=["alpha", "beta", "gamma"])
    assert list(differences["n_values"]) == list(expected["n_values"])
    assert list(differences["equal"]) == list(expected["equal"])

    out = tmp_path / "group"
    rc, _, err = _run(["select", csv, "--group", "grp", "--drop", "date", "-M", 1, 2, "--alphas", 0.05, 0.2,
                       "--penalty", "group", "--beta", 0.1, "--out", out, "--no-figures", "--quiet"], capsys)
    assert rc == 0, err
    model = load_model(out / "model.npz")
    assert (model.penalty, model.beta, model.fused_pairs) == ("group", 0.1, "all")
    assert read_metadata(out / "model.npz")["params"]["penalty"] == "group"

    # --betas: lambda_2 as a third axis of the grid, the same search as from Python.
    out = tmp_path / "betas"
    rc, stdout, err = _run(["select", csv, "--group", "grp", "--drop", "date", "-M", 2, "--alphas", 0.05, 0.2,
                            "--penalty", "fused", "--betas", 0, 0.1, "--out", out, "--no-figures", "--quiet"], capsys)
    assert rc == 0, err
    grid = pd.read_csv(out / "bic_grid.csv")
    assert sorted(zip(grid["alpha"], grid["beta"])) == [(0.05, 0.0), (0.05, 0.1), (0.2, 0.0), (0.2, 0.1)]
    best = grid.loc[grid["bic"].idxmin()]
    model = load_model(out / "model.npz")
    assert (model.penalty, model.beta) == ("fused", best["beta"])
    assert f"λ₂={best['beta']:g}" in stdout
    for extra, needle in ((["--betas", 0.1], "--betas applies to --penalty fused or group"),
                          (["--penalty", "group", "--beta", 0.1, "--betas", 0.1, 0.2], "either --betas")):
        rc, _, err = _run(["select", csv, "--group", "grp", "--drop", "date", "-M", 1, "--out", tmp_path / "y"]
                          + extra, capsys)
        _one_line_error(rc, err, needle, command="select")

    for extra, needle in ((["--beta", 0.1], "--beta applies to --penalty fused or group"),
                          (["--penalty", "group", "--beta", 0.1, "--fused-pairs", "chain"],
                           "--fused-pairs applies to --penalty fused")):
        rc, _, err = _run(["fit", csv, "--group", "grp", "--drop", "date", "-M", M, "--out", tmp_path / "x"] + extra,
                          capsys)
        _one_line_error(rc, err, needle)


@pytest.mark.parametrize("command", ["fit", "select"])
def test_cli_defaults_are_the_estimators(command):
    # Every estimator option of the CLI defaults to MetaGraphicalLasso's own default.
    from metaglasso import MetaGraphicalLasso, MetaGraphicalLassoBIC
    from metaglasso._cli import _estimator_params

    args = build_parser().parse_args([command, "data.csv", "--out", "out"])
    params = _estimator_params(args)
    defaults = MetaGraphicalLasso().get_params()
    for name, value in params.items():
        expected = defaults[name]
        assert value == expected or (name == "random_state" and value is None), (name, value, expected)
    assert set(params) >= {"penalize_diagonal", "alpha_scaling", "n_init", "solver", "init", "tol", "max_iter",
                           "learning_rate", "batch_size", "representation", "compress", "assume_centered", "penalty",
                           "beta", "fused_pairs"}
    if command == "fit":
        assert args.alpha == defaults["alpha"] and args.n_components == defaults["n_components"]
    else:
        search = MetaGraphicalLassoBIC()
        assert tuple(args.n_components) == tuple(search.n_components)
        assert tuple(args.alphas) == tuple(search.alphas)


def test_min_samples_drops_small_groups_with_a_note(files, tmp_path, capsys):
    d, csv, labels, gmt, data = files
    small = data[data["grp"] != "beta"].copy()
    small = pd.concat([small, data[data["grp"] == "beta"].head(4)], ignore_index=True)  # beta: 4 samples
    path = tmp_path / "small.csv"
    small.to_csv(path, index=False)
    rc, _, err = _run(["fit", path, "--group", "grp", "--index-col", "date", "-M", M, "--min-samples", 10,
                       "--out", tmp_path / "out", "--no-figures", "--no-progress"], capsys)
    assert rc == 0, err
    assert "note: --min-samples 10 dropped 1 of 3 groups of column 'grp': 'beta' (4)" in err
    assert load_model(tmp_path / "out" / "model.npz").precisions_.shape[0] == 2
    rc, _, err = _run(["fit", path, "--group", "grp", "--index-col", "date", "-M", M, "--min-cells", 1000,
                       "--out", tmp_path / "none", "--no-figures", "--no-progress"], capsys)
    assert rc == 1 and "--min-samples 1000 drops every group of column 'grp'" in err
    rc, _, err = _run(["fit", path, "--split", 50, "--min-samples", 3, "--drop", "grp", "date", "-M", M,
                       "--out", tmp_path / "split", "--no-figures", "--no-progress"], capsys)
    assert rc == 1 and "--min-samples applies to --group only" in err


def test_edge_difference_columns_avoid_the_table_columns():
    from types import SimpleNamespace

    from metaglasso._cli import _column_names

    model = SimpleNamespace(components_=np.eye(2, 4), precisions_=np.stack([np.eye(2)] * 2))
    assert _column_names(model) == [0, 1]
    model.dataset_names_ = ["status", "other"]
    assert _column_names(model) == ["dataset status", "dataset other"]
