"""examples/us_stocks.py on the real stock prices (skipped when the data are not beside the repository)."""

import importlib.util
import os

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.path.join(ROOT, os.pardir, "shared", "data", "us_stocks_2015_2017", "us_stocks_20150320_20170331_strict.npz")

pytestmark = pytest.mark.skipif(not os.path.exists(DATA), reason="US stock data not found at ../shared/data")


def _example():
    spec = importlib.util.spec_from_file_location("us_stocks_example", os.path.join(ROOT, "examples", "us_stocks.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_loader_centres_each_year():
    pytest.importorskip("pandas")
    frames, years, info = _example().load_stocks(DATA, max_stocks=50)
    assert years == [2015, 2016, 2017]
    assert [f.shape for f in frames] == [(199, 50), (252, 50), (62, 50)]
    assert all(abs(f.to_numpy().mean(axis=0)).max() < 1e-5 for f in frames)
    assert list(frames[0].columns) == list(info.index)
    assert {"name", "sector", "industry"} <= set(info.columns)


def test_example_runs_on_a_subset(tmp_path, capsys):
    pytest.importorskip("pandas")
    pytest.importorskip("matplotlib")
    rc = _example().main([DATA, "--out", str(tmp_path), "--max-stocks", "600", "--alphas", "1", "3", "--dpi", "40"])
    assert rc == 0
    text = (tmp_path / "summary.md").read_text()
    assert "Choice of ρ by BIC" in text and "(Table 6)" in text
    for name in ("networks.png", "variances.png", "scores.png", "bic.png"):
        assert (tmp_path / name).exists()
