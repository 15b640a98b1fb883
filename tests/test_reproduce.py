"""The paper-table machinery: the structured KL divergence and the command line."""

import numpy as np
import pytest

from metaglasso.__main__ import main
from metaglasso._reproduce import markdown_grid, observed_kl_divergence


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
