"""examples/pbmc_cell_types.py on the real PBMC data (skipped when the data are not beside the repository)."""

import importlib.util
import os

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.path.join(ROOT, os.pardir, "shared", "data", "pbmc68k_reduced", "pbmc68k_reduced.npz")


def _example():
    spec = importlib.util.spec_from_file_location("pbmc_example", os.path.join(ROOT, "examples", "pbmc_cell_types.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_missing_data_gives_a_clear_message(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        _example().main([str(tmp_path / "nowhere.npz"), "--out", str(tmp_path)])
    assert exc.value.code == 2
    assert "does not exist" in capsys.readouterr().err


needs_data = pytest.mark.skipif(not os.path.exists(DATA), reason="PBMC data not found at ../shared/data")


@needs_data
def test_loader_splits_cell_types():
    pytest.importorskip("pandas")
    frames, types, markers = _example().load_pbmc(DATA)
    assert [len(f) for f in frames] == [240, 129, 95, 68, 54, 43]
    assert types[0] == "Dendritic" and len(markers) == 10
    assert all(f.shape[1] == 765 and list(f.columns) == list(frames[0].columns) for f in frames)
    assert all(len(g) == 100 for g in markers.values())


@needs_data
def test_example_runs_on_a_small_grid(tmp_path):
    pytest.importorskip("pandas")
    pytest.importorskip("matplotlib")
    rc = _example().main([DATA, "--out", str(tmp_path), "-M", "3", "--alphas", "0.03", "0.3",
                          "--n-subsamples", "2", "--no-check", "--dpi", "40"])
    assert rc == 0
    text = (tmp_path / "README.md").read_text()
    for heading in ("Which expression matrix", "Choice of M and ρ by BIC", "Enrichment of the factors",
                    "Stability under subsampling", "Partial correlations between factors", "Caveats"):
        assert heading in text
    assert "the ℓ1 norm of the whole of Λ_k (the default)" in text
    # the B-cell factor is found and its marker list is enriched
    assert "| pos | CD19+ B |" in text or "| neg | CD19+ B |" in text
    for name in ("networks.png", "variances.png", "scores.png", "bic.png", "enrichment_hypergeometric.png",
                 "enrichment_rank.png"):
        assert (tmp_path / name).stat().st_size > 1000
    assert np.isfinite(float(text.split("objective E = ")[1].split(".\n")[0].rstrip(".")))
