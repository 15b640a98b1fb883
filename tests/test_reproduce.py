"""The paper-table machinery: the structured KL divergence and the command line."""

import numpy as np
import pytest

from metaglasso.__main__ import main
from metaglasso._reproduce import (edge_recovery, markdown_grid, markdown_penalties, observed_kl_divergence,
                                   penalties)
from metaglasso.metrics import match_components


def _orthonormal(rng, V, M):
    return np.linalg.qr(rng.standard_normal((V, M)))[0]


def _spd(rng, M):
    A = rng.standard_normal((M, M))
    return A @ A.T + M * np.eye(M)


@pytest.mark.parametrize("Mt, Me", [(3, 3), (3, 5), (4, 2)])
def test_observed_kl_divergence_matches_dense(Mt, Me):
    """Against ½[tr(Φe⁻¹Φt) − V + log|Φe| − log|Φt|] with the V × V matrices formed (1e-10 rel.)."""
    rng = np.random.default_rng(Mt * 10 + Me)
    V = 30
    Dt, De = _orthonormal(rng, V, Mt), _orthonormal(rng, V, Me)
    St, Se = _spd(rng, Mt), _spd(rng, Me)
    et, ee = 0.3, 0.7
    Pt = Dt @ St @ Dt.T + et * (np.eye(V) - Dt @ Dt.T)
    Pe = De @ Se @ De.T + ee * (np.eye(V) - De @ De.T)
    dense = 0.5 * (np.trace(np.linalg.solve(Pe, Pt)) - V + np.linalg.slogdet(Pe)[1] - np.linalg.slogdet(Pt)[1])
    assert observed_kl_divergence(Dt, St, et, De, np.linalg.inv(Se), ee) == pytest.approx(dense, rel=1e-10)


def test_observed_kl_divergence_is_zero_for_the_same_model():
    rng = np.random.default_rng(0)
    D, S = _orthonormal(rng, 20, 4), _spd(rng, 4)
    assert abs(observed_kl_divergence(D, S, 0.2, D, np.linalg.inv(S), 0.2)) < 1e-10


def test_grid_markdown_marks_the_minimum():
    records = [dict(V=100, N=200, trial=0, n_components=m, alpha=0.09, bic=b)
               for m, b in [(5, 3.0), (10, 1.0), (20, 2.0)]]
    text = markdown_grid(records, "m")
    row = text.splitlines()[2]
    assert "| 3 | **1** | 2 | M = 10 | M = 10 |" in row


def test_command_line_bic_table(capsys):
    assert main(["reproduce", "table3", "--features", "100", "--samples", "200", "--trials", "1"]) == 0
    out = capsys.readouterr().out
    assert "| 100 | 200 |  | 1 |" in out
    assert "`metaglasso reproduce table3 --features 100 --samples 200 --trials 1`" in out


def test_command_line_table1(capsys):
    """One trial of the first row: MGLASSO beats both baselines in Dist and KLD (bold)."""
    assert main(["reproduce", "table1", "--features", "100", "--samples", "200", "--trials", "1"]) == 0
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| MGLASSO |")]
    assert len(rows) == 1
    cells = [c.strip() for c in rows[0].split("|")]
    assert cells[8].startswith("**") and cells[9].startswith("**")


# ----------------------------------------------------------------------------------------------
# metaglasso reproduce penalties


def _symmetric(M, edges, weight=0.2):
    P = 2.0 * np.eye(M)
    for i, j in edges:
        P[i, j] = P[j, i] = weight
    return P


def test_edge_recovery_counts_after_a_factor_permutation():
    """Hand-made: true factor i is the fitted factor perm[i] (with a sign flip); the fitted Λ_k are
    written in the fitted order, so the edges only agree once they are permuted back."""
    M, V = 4, 7
    true_components = np.eye(M, V)
    perm, signs = np.array([2, 0, 3, 1]), np.array([1.0, -1.0, 1.0, -1.0])
    est_components = np.empty((M, V))
    est_components[perm] = signs[:, None] * true_components + 0.01  # near, not equal
    assert np.array_equal(match_components(true_components, est_components)[0], perm)

    true_precisions = np.stack([
        _symmetric(M, [(0, 1), (1, 2), (2, 3)]),  # 3 true edges
        _symmetric(M, []),                       # none, and none fitted: F1 = 1
        _symmetric(M, [(0, 2)], weight=1e-12),   # below 1e-10 · max|Λ|: no true edge
    ])
    aligned = np.stack([
        _symmetric(M, [(0, 1), (1, 2), (0, 3)]), # TP (0, 1), (1, 2); FP (0, 3); FN (2, 3)
        _symmetric(M, []),
        _symmetric(M, [(1, 3)]),                 # one false positive
    ])
    # In the fitted order: Λ_fit[π_i, π_j] = s_i s_j Λ̃[i, j].
    est_precisions = np.empty_like(aligned)
    est_precisions[:, perm[:, None], perm[None, :]] = aligned * np.outer(signs, signs)

    per_dataset, pooled = edge_recovery(true_precisions, true_components, est_precisions, est_components)
    assert [(r["tp"], r["fp"], r["fn"]) for r in per_dataset] == [(2, 1, 1), (0, 0, 0), (0, 1, 0)]
    assert per_dataset[0]["f1"] == pytest.approx(4 / 6, abs=1e-15)
    assert per_dataset[0]["precision"] == pytest.approx(2 / 3) and per_dataset[0]["recall"] == pytest.approx(2 / 3)
    assert per_dataset[1] == dict(tp=0, fp=0, fn=0, f1=1.0, precision=1.0, recall=1.0)
    assert (per_dataset[2]["f1"], per_dataset[2]["precision"], per_dataset[2]["recall"]) == (0.0, 0.0, 1.0)
    assert (pooled["tp"], pooled["fp"], pooled["fn"]) == (2, 2, 1)
    assert pooled["f1"] == pytest.approx(4 / 7, abs=1e-15)

    # Read in the fitted order (no permutation) the same matrices score differently: fitted edges
    # (0, 2), (0, 3), (1, 2) against (0, 1), (1, 2), (2, 3), F1 = 2/(2 + 2 + 2).
    unaligned, _ = edge_recovery(true_precisions, true_components, est_precisions, true_components)
    assert (unaligned[0]["tp"], unaligned[0]["fp"], unaligned[0]["fn"]) == (1, 2, 2)
    assert unaligned[0]["f1"] == pytest.approx(1 / 3, abs=1e-15)


def test_penalties_quick_run_records_and_markdown():
    alphas = (0.03, 0.1, 0.3)
    records = penalties(trials=2, seed=5, alphas=alphas, log=lambda message: None)
    assert [(r["trial"], r["seed"], r["procedure"]) for r in records] == [
        (0, 5, "single"), (0, 5, "scaled"), (1, 6, "single"), (1, 6, "scaled")]
    n = np.array([50.0, 200.0, 1000.0])
    for r in records:
        assert r["n_samples"] == [50, 200, 1000] and r["alpha"] in alphas
        assert r["bic_index"] == list(alphas).index(r["alpha"])
        assert r["at_edge"] == (r["bic_index"] in (0, len(alphas) - 1))
        factor = np.sqrt(n.mean() / n) if r["procedure"] == "scaled" else np.ones(3)
        np.testing.assert_allclose(r["alphas"], r["alpha"] * factor, rtol=0, atol=1e-12)
        for g in r["grid"]:
            np.testing.assert_allclose(g["alphas"], g["alpha"] * factor, rtol=0, atol=1e-12)
        for key in ("f1", "precision", "recall", "tp", "fp", "fn", "true_edges", "fitted_edges", "oracle_f1"):
            assert len(r[key]) == 3
        for k in range(3):
            tp, fp, fn = r["tp"][k], r["fp"][k], r["fn"][k]
            assert r["f1"][k] == (1.0 if 2 * tp + fp + fn == 0 else 2 * tp / (2 * tp + fp + fn))
            assert r["true_edges"][k] == tp + fn and r["fitted_edges"][k] == tp + fp
            assert r["oracle_f1"][k] >= r["f1"][k]
        assert 0.0 <= r["pooled_f1"] <= r["oracle_pooled_f1"] <= 1.0
        # The chosen model is the grid's fit at the chosen α (both from the PCA start).
        assert r["grid"][r["bic_index"]]["f1"] == r["f1"]
        assert 4.5 < r["space"] <= 5.0 + 1e-9
    # The true networks do not depend on the procedure.
    assert records[0]["true_edges"] == records[1]["true_edges"]

    text = markdown_penalties(records)
    for heading in ("### Setup", "### Edge recovery at the BIC choice", "### Paired comparison",
                    "### Chosen penalties and factors", "### Along the grid", "### Summary"):
        assert heading in text
    lines = text.splitlines()
    assert sum(line.startswith("| single ρ | ") for line in lines) == 4 + 1  # 3 datasets + pooled, penalties row
    assert sum(line.startswith("| scaled ρ_k | ") for line in lines) == 4 + 1
    assert sum(line.startswith(("| N = ", "| pooled |")) for line in lines) == 4
    assert "α ∈ {0.03, 0.1, 0.3}" in text and "T = 2 trials" in text


def test_command_line_penalties(tmp_path, capsys):
    out = tmp_path / "penalties.md"
    assert main(["reproduce", "penalties", "--trials", "1", "--seed", "3", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert f"`metaglasso reproduce penalties --trials 1 --seed 3 --out {out}` — " in text
    assert text == out.read_text(encoding="utf-8") + "\n"  # print adds a newline
    assert "T = 1 trials" in text and "seed + t = 3…3" in text


def test_command_line_penalties_rejects_the_table_options(capsys):
    assert main(["reproduce", "penalties", "--trials", "1", "--features", "100"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("metaglasso reproduce: error: ") and "do not apply" in err
