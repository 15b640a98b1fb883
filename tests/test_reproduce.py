"""The paper-table machinery: the structured KL divergence and the command line."""

import numpy as np
import pytest

from metaglasso.__main__ import main
from metaglasso._reproduce import (align_precisions, edge_recovery, joint, latent_bic, latent_search, markdown_grid,
                                   markdown_joint, markdown_penalties, network_recovery, observed_kl_divergence,
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


# ----------------------------------------------------------------------------------------------
# metaglasso reproduce joint


def _network(M, edges, weight=0.3):
    return _symmetric(M, edges, weight)


def test_network_recovery_counts_changed_edges():
    """Hand-made: three datasets of three factors. True edges {01}, {01, 12}, {12}: changes (0→1, 12)
    and (1→2, 01). Fitted {01, 02}, {01, 02, 12}, {01, 12}: changes (0→1, 12) and (1→2, 02)."""
    true = np.stack([_network(3, [(0, 1)]), _network(3, [(0, 1), (1, 2)]), _network(3, [(1, 2)])])
    fitted = np.stack([_network(3, [(0, 1), (0, 2)]), _network(3, [(0, 1), (0, 2), (1, 2)]),
                       _network(3, [(0, 1), (1, 2)])])
    edges, changes = network_recovery(true, fitted)
    assert (edges["tp"], edges["fp"], edges["fn"]) == (4, 3, 0)
    assert edges["f1"] == pytest.approx(8 / 11, abs=1e-15) and edges["recall"] == 1.0
    assert (changes["tp"], changes["fp"], changes["fn"]) == (1, 1, 1)
    assert changes["f1"] == 0.5 and changes["precision"] == 0.5 and changes["recall"] == 0.5

    # The same weights everywhere (no change fitted) against the drifting truth: no true change found,
    # precision 1 by convention; the same networks as the truth: everything found.
    still = np.stack([_network(3, [(0, 1), (1, 2)])] * 3)
    _, none = network_recovery(true, still)
    assert (none["tp"], none["fp"], none["fn"], none["f1"], none["precision"]) == (0, 0, 2, 0.0, 1.0)
    edges, changes = network_recovery(true, true)
    assert edges["f1"] == changes["f1"] == 1.0 and changes["tp"] == 2
    # A change is a change of presence: a weight that changes sign or size is none.
    reweighted = true.copy()
    reweighted[1][0, 1] = reweighted[1][1, 0] = -0.1
    assert network_recovery(true, reweighted)[1]["tp"] == 2


def test_align_precisions_permutes_into_the_true_order():
    true_components = np.eye(3, 5)
    perm, signs = np.array([1, 2, 0]), np.array([1.0, -1.0, 1.0])
    est_components = np.empty((3, 5))
    est_components[perm] = signs[:, None] * true_components
    aligned = np.stack([_network(3, [(0, 1)]), _network(3, [(1, 2)])])
    est = np.empty_like(aligned)
    est[:, perm[:, None], perm[None, :]] = aligned * np.outer(signs, signs)
    np.testing.assert_array_equal(align_precisions(true_components, est, est_components), aligned)


def test_latent_bic_counts_distinct_values():
    """−2 log L of the latent Gaussians plus df ln(ΣN): a fused pair of equal networks counts its
    values once."""
    rng = np.random.default_rng(0)
    A = [_spd(rng, 3) / 3 for _ in range(2)]
    P = _network(3, [(0, 1)])
    precisions = np.stack([P, P])
    neg2 = sum(n * (np.trace(P @ a) - np.linalg.slogdet(P)[1]) for n, a in zip((10, 30), A))
    assert latent_bic(precisions, A, (10, 30), False) == (pytest.approx(neg2 + 10 * np.log(40)), 10)
    assert latent_bic(precisions, A, (10, 30), True) == (pytest.approx(neg2 + 5 * np.log(40)), 5)


def test_latent_search_lasso_is_the_graphical_lasso():
    from metaglasso import graphical_lasso

    rng = np.random.default_rng(1)
    A = [_spd(rng, 4) / 4 for _ in range(3)]
    points = latent_search(A, [20] * 3, [0.05, 0.2], [0.0, 0.1], "lasso")
    assert [(p["alpha"], p["beta"]) for p in points] == [(0.05, 0.0), (0.2, 0.0)]
    for p in points:
        for a, prec in zip(A, p["precisions"]):
            np.testing.assert_allclose(prec, graphical_lasso(a, p["alpha"], tol=1e-12, penalize_diagonal=True)[1], atol=1e-8)
    fused = latent_search(A, [20] * 3, [0.05], [0.0, 1e3], "fused")
    np.testing.assert_allclose(fused[0]["precisions"], points[0]["precisions"], atol=1e-8)  # λ₂ = 0
    big = fused[1]["precisions"]  # a very large λ₂ fuses every off-diagonal entry
    off = ~np.eye(4, dtype=bool)
    np.testing.assert_allclose(big[1][off], big[0][off], atol=1e-8)
    np.testing.assert_allclose(big[2][off], big[0][off], atol=1e-8)


TINY_JOINT = dict(alphas=(0.003, 0.03), betas=(0.0, 0.1), n_features=30, n_samples=40, n_datasets=3,
                  n_components=3, generator=dict(edge_probability=0.5, n_changes=1, edge_weight=(0.8, 1.2),
                                                 factor_spread=3.0, noise_scale=1e-3))


def test_joint_quick_run_records_and_markdown():
    records = joint(trials=2, seed=4, log=lambda message: None, **TINY_JOINT)
    assert [(r["trial"], r["seed"], r["setting"], r["penalty"]) for r in records] == [
        (t, 4 + t, s, p) for t in range(2) for p in ("lasso", "fused", "group") for s in ("fit", "latent")]
    for r in records:
        assert r["alpha"] in (0.003, 0.03) and r["alphas"][r["alpha_index"]] == r["alpha"]
        if r["penalty"] == "lasso":
            assert r["beta"] == 0.0 and r["beta_index"] is None
        else:
            assert r["betas"][r["beta_index"]] == r["beta"]
        for prefix in ("", "change_"):
            tp, fp, fn = (r[prefix + key] for key in ("tp", "fp", "fn"))
            assert r[prefix + "f1"] == (1.0 if 2 * tp + fp + fn == 0 else 2 * tp / (2 * tp + fp + fn))
        assert sum(r["true_edges"]) == r["tp"] + r["fn"] and sum(r["fitted_edges"]) == r["tp"] + r["fp"]
        assert r["true_changes"] == r["change_tp"] + r["change_fn"] == 1 * (3 - 1)  # one toggle per step
        assert r["fitted_changes"] == r["change_tp"] + r["change_fp"]
        if r["setting"] == "fit":
            assert 0.9 < r["space_cos"] <= 1.0 + 1e-12 and len(r["factor_cos"]) == 3
        else:
            n_points = 2 if r["penalty"] == "lasso" else 4
            assert len(r["grid"]) == n_points and r["grid_not_converged"] == 0
            best = min(r["grid"], key=lambda g: g["bic"])
            assert (best["alpha"], best["beta"], best["f1"], best["df"]) == (r["alpha"], r["beta"], r["f1"], r["df"])
            assert r["oracle_f1"] == max(g["f1"] for g in r["grid"]) >= r["f1"]
    # The truth does not depend on the penalty or the setting.
    assert len({(r["seed"], tuple(r["true_edges"])) for r in records}) == 2

    text = markdown_joint(records)
    for heading in ("### Setup", "### (a) MGLASSO, factors estimated", "### (b) given the true factors",
                    "### Paired comparison per trial", "### Choices along the grids", "### Summary"):
        assert heading in text
    lines = text.splitlines()
    for label in ("independent (lasso)", "fused (chain)", "group"):
        assert sum(line.startswith(f"| {label} | ") for line in lines) == 4  # 2 settings × 2 tables
    assert sum(line.startswith(("| (a) | ", "| (b) | ")) for line in lines) == 8
    assert "ρ ∈ {0.003, 0.03}" in text and "λ₂ ∈ {0, 0.1}" in text and "T = 2 trials" in text
    assert "seed + t = 4…5" in text and "2.0 changed edges per trial" in text


def test_command_line_joint(tmp_path, capsys, monkeypatch):
    import functools

    from metaglasso import _reproduce

    monkeypatch.setattr(_reproduce, "joint", functools.partial(_reproduce.joint, **TINY_JOINT))
    out = tmp_path / "joint.md"
    assert main(["reproduce", "joint", "--trials", "1", "--seed", "2", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert f"`metaglasso reproduce joint --trials 1 --seed 2 --out {out}` — " in text
    assert text == out.read_text(encoding="utf-8") + "\n"
    assert "T = 1 trials" in text and "Wall time" in text and "1 trials × 3 penalties" in text


def test_command_line_joint_rejects_the_table_options(capsys):
    assert main(["reproduce", "joint", "--samples", "200"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("metaglasso reproduce: error: ") and "joint experiment" in err
