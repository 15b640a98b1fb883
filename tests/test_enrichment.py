"""Characteristic variables, the G-test and hypergeometric enrichment, checked against scipy.stats."""

import numpy as np
import pytest
from scipy import stats

from metaglasso.enrichment import (
    benjamini_hochberg,
    characteristic_variables,
    enrichment_summary,
    gene_set_enrichment,
    hypergeometric_sf,
    label_enrichment,
    llr_test,
    read_gmt,
)

pd = pytest.importorskip("pandas")


def _table(a, n_set, n_label, n_total):
    return np.array([[a, n_set - a], [n_label - a, n_total - n_set - n_label + a]])


@pytest.mark.parametrize("a, n_set, n_label, n_total", [
    (12, 40, 100, 2000), (3, 40, 100, 2000), (1, 5, 3, 50), (19, 67, 128, 2323), (0, 10, 20, 100), (30, 30, 60, 90),
])
def test_llr_matches_scipy(a, n_set, n_label, n_total):
    G, p_two = llr_test(a, n_set, n_label, n_total, alternative="two-sided")
    ref_G, ref_p, _, expected = stats.chi2_contingency(_table(a, n_set, n_label, n_total), correction=False,
                                                      lambda_="log-likelihood")
    assert G == pytest.approx(ref_G, rel=1e-10, abs=1e-12)
    assert p_two == pytest.approx(ref_p, rel=1e-10, abs=1e-300)
    _, p_one = llr_test(a, n_set, n_label, n_total)
    over = a > expected[0, 0]
    assert p_one == pytest.approx(ref_p / 2 if over else 1 - ref_p / 2, rel=1e-10, abs=1e-300)


def test_llr_vectorised_and_degenerate():
    G, p = llr_test([12, 3], 40, 100, 2000)
    assert G.shape == p.shape == (2,)
    assert llr_test(0, 0, 10, 100) == (0.0, 1.0)  # empty set
    with pytest.raises(ValueError, match="counts must satisfy"):
        llr_test(5, 3, 10, 100)
    with pytest.raises(ValueError, match="alternative must be one of"):
        llr_test(1, 3, 10, 100, alternative="less")


@pytest.mark.parametrize("k, N, K, n", [
    (5, 17737, 120, 100), (1, 17737, 120, 100), (0, 100, 10, 10), (10, 100, 10, 10), (30, 20000, 80, 100),
    (3, 50, 5, 5), (4, 765, 100, 100), (25, 765, 100, 100),
])
def test_hypergeometric_matches_scipy(k, N, K, n):
    assert hypergeometric_sf(k, N, K, n) == pytest.approx(stats.hypergeom.sf(k - 1, N, K, n), rel=1e-9, abs=1e-300)


def test_benjamini_hochberg_matches_scipy():
    rng = np.random.default_rng(0)
    p = np.concatenate([rng.uniform(size=40), rng.uniform(0, 1e-3, size=10), [0.0, 1.0]])
    np.testing.assert_allclose(benjamini_hochberg(p), stats.false_discovery_control(p, method="bh"), rtol=1e-12)
    out = benjamini_hochberg([0.01, np.nan, 0.04])
    assert np.isnan(out[1])
    np.testing.assert_allclose(out[[0, 2]], stats.false_discovery_control([0.01, 0.04]))


def _loadings():
    """50 variables, 2 factors: factor 0 has variables 0-2 far above and 49 far below its mean."""
    L = np.zeros((50, 2))
    L[:, 0] = np.linspace(-0.1, 0.1, 50)
    L[[0, 1, 2], 0] = [3.0, 2.5, 2.8]
    L[49, 0] = -3.0
    L[:, 1] = np.sin(np.arange(50))
    return L


def test_characteristic_variables_by_hand():
    L = _loadings()
    names = [f"v{i}" for i in range(50)]
    t = characteristic_variables(L, c=2.0, variable_names=names)
    assert list(t.columns) == ["factor", "sign", "variable", "index", "loading", "z"]
    f0 = t[t["factor"] == 0]
    assert list(f0[f0["sign"] == "pos"]["variable"]) == ["v0", "v2", "v1"]  # by |z| descending
    assert list(f0[f0["sign"] == "neg"]["variable"]) == ["v49"]
    mu, sd = L[:, 0].mean(), L[:, 0].std()
    np.testing.assert_allclose(f0["z"], (f0["loading"] - mu) / sd)
    z1 = (L[:, 1] - L[:, 1].mean()) / L[:, 1].std()
    assert sorted(t[(t["factor"] == 1) & (t["sign"] == "pos")]["index"]) == list(np.flatnonzero(z1 > 2))
    with pytest.raises(ValueError, match="c must be a finite number >= 0; got -1"):
        characteristic_variables(L, c=-1)


def _labelled():
    """200 variables, 1 factor; the 8 top variables are mostly 'A' (industry 'A1')."""
    rng = np.random.default_rng(1)
    L = rng.normal(0, 0.1, size=(200, 1))
    top = np.arange(8)
    L[top, 0] = 1.0 + np.arange(8) * 0.01
    sector = np.array(["B"] * 200, dtype=object)
    sector[100:130] = "A"
    sector[[0, 1, 2, 3, 4, 5]] = "A"
    sector[150:170] = ""  # no label
    sector[6] = ""
    industry = np.where(sector == "A", "A2", "B1").astype(object)
    industry[[0, 1, 2, 3, 100, 101]] = "A1"
    industry[sector == ""] = ""
    return L, sector, industry


def test_label_enrichment_matches_scipy_and_nests():
    L, sector, industry = _labelled()
    t = label_enrichment(L, {"sector": sector, "industry": industry})
    assert list(t.columns) == ["factor", "sign", "level", "label", "parent", "n_variables", "n_set", "n_label",
                               "n_overlap", "expected", "fold_enrichment", "statistic", "p_value", "p_adjusted"]
    row = t[(t["level"] == "sector") & (t["label"] == "A") & (t["sign"] == "pos")].iloc[0]
    labelled = sector != ""
    in_set = np.zeros(200, bool)
    in_set[:8] = True
    a = int(np.sum(in_set & labelled & (sector == "A")))
    n_set = int(np.sum(in_set & labelled))
    n_label = int(np.sum(labelled & (sector == "A")))
    n_total = int(labelled.sum())
    assert (row.n_overlap, row.n_set, row.n_label, row.n_variables) == (a, n_set, n_label, n_total) == (6, 7, 36, 179)
    ref_G, ref_p, *_ = stats.chi2_contingency(_table(a, n_set, n_label, n_total), correction=False,
                                             lambda_="log-likelihood")
    assert row.statistic == pytest.approx(ref_G, rel=1e-10)
    assert row.p_value == pytest.approx(ref_p / 2, rel=1e-10)
    pos_sector = t[(t["level"] == "sector") & (t["sign"] == "pos")]
    np.testing.assert_allclose(pos_sector["p_adjusted"], stats.false_discovery_control(pos_sector["p_value"]))
    assert row.p_adjusted < 0.05
    # Industries are tested within sector A only: population = sector A's labelled variables.
    ind = t[t["level"] == "industry"]
    assert set(ind["parent"]) == {"A"}
    r1 = ind[ind["label"] == "A1"].iloc[0]
    in_a = labelled & (sector == "A")
    a1 = int(np.sum(in_set & in_a & (industry == "A1")))
    assert (r1.n_variables, r1.n_set, r1.n_label, r1.n_overlap) == (int(in_a.sum()), 6, 6, a1)
    _, ref_p1, *_ = stats.chi2_contingency(_table(a1, 6, 6, int(in_a.sum())), correction=False,
                                           lambda_="log-likelihood")
    assert r1.p_value == pytest.approx(ref_p1 / 2, rel=1e-10)
    summary = enrichment_summary(t)
    assert list(summary.columns) == ["factor", "sign", "sector", "n", "fold", "p_adjusted", "within"]
    assert list(summary["sector"]) == ["A"] and summary["n"].iloc[0] == "6/7"
    assert summary["within"].iloc[0].startswith("A1 (4/6")


def test_label_enrichment_aligns_named_labels():
    L, sector, industry = _labelled()
    names = [f"g{i}" for i in range(200)]
    frame = pd.DataFrame({"sector": sector, "industry": industry}, index=names)
    shuffled = frame.sample(frac=1.0, random_state=0)
    loadings = pd.DataFrame(L, index=names, columns=["factor_0"])
    a = label_enrichment(loadings, shuffled)
    b = label_enrichment(L, {"sector": sector, "industry": industry})
    pd.testing.assert_frame_equal(a, b)
    with pytest.raises(ValueError, match=r"labels\['sector'\] must hold one label per variable \(200\)"):
        label_enrichment(L, {"sector": sector[:10]})
    with pytest.raises(ValueError, match="none is a variable of the model"):
        label_enrichment(loadings, frame.set_axis([f"other{i}" for i in range(200)]))


def test_gene_set_enrichment_matches_scipy(tmp_path):
    rng = np.random.default_rng(2)
    V = 300
    genes = [f"G{i}" for i in range(V)]
    L = rng.normal(size=(V, 2))
    L[:20, 0] += 5.0  # the top 20 of factor 0 are G0..G19
    sets = {"hit": genes[:15] + genes[200:215] + ["NOT_A_GENE"], "miss": genes[100:140], "small": genes[250:252]}
    gmt = tmp_path / "sets.gmt"
    gmt.write_text("".join(f"{k}\tdescription\t" + "\t".join(v) + "\n" for k, v in sets.items()))
    assert read_gmt(gmt) == sets
    t = gene_set_enrichment(pd.DataFrame(L, index=genes), gmt, n_top=20, sign="pos")
    assert list(t.columns) == ["factor", "sign", "gene_set", "n_variables", "set_size", "n_top", "n_overlap",
                               "expected", "fold_enrichment", "p_value", "p_adjusted", "genes"]
    hit = t[(t["factor"] == 0) & (t["gene_set"] == "hit")].iloc[0]
    assert (hit.set_size, hit.n_overlap, hit.n_variables) == (30, 15, V)
    assert hit.p_value == pytest.approx(stats.hypergeom.sf(15 - 1, V, 30, 20), rel=1e-9)
    assert hit.genes.split(";")[:3] == ["G0", "G1", "G2"] or set(hit.genes.split(";")) == set(genes[:15])
    for f in (0, 1):
        sub = t[t["factor"] == f]
        for r in sub.itertuples():
            assert r.p_value == pytest.approx(stats.hypergeom.sf(r.n_overlap - 1, V, r.set_size, 20), rel=1e-9)
        np.testing.assert_allclose(sub["p_adjusted"], stats.false_discovery_control(sub["p_value"]))
    both = gene_set_enrichment(L, sets, n_top=20, variable_names=genes)
    assert set(both["sign"]) <= {"pos", "neg"}
    with pytest.raises(ValueError, match="needs variable names"):
        gene_set_enrichment(L, sets)
    with pytest.raises(ValueError, match=r"n_top must be an integer in \[1, 300\]; got 500"):
        gene_set_enrichment(L, sets, n_top=500, variable_names=genes)


def test_read_gmt_errors(tmp_path):
    bad = tmp_path / "bad.gmt"
    bad.write_text("onlyname\n")
    with pytest.raises(ValueError, match="line 1: a GMT line needs a name and a description"):
        read_gmt(bad)
    dup = tmp_path / "dup.gmt"
    dup.write_text("a\td\tx\na\td\ty\n")
    with pytest.raises(ValueError, match="line 2: gene set 'a' appears twice"):
        read_gmt(dup)


def test_enrichment_on_a_model():
    from metaglasso import MetaGraphicalLasso
    from metaglasso.datasets import make_synthetic

    Xs, _ = make_synthetic(60, 80, 2, 3, random_state=0)
    cols = [f"g{i}" for i in range(60)]
    model = MetaGraphicalLasso(n_components=3, alpha=0.05).fit([pd.DataFrame(X, columns=cols) for X in Xs])
    cv = characteristic_variables(model)
    assert set(cv["variable"]) <= set(cols)
    labels = np.array(["a", "b", "c"] * 20, dtype=object)
    t = label_enrichment(model, labels)
    assert set(t["level"]) <= {"label"}
    g = gene_set_enrichment(model, {"s": cols[:10]}, n_top=10)
    assert set(g["factor"]) <= {0, 1, 2}


def test_tables_without_pandas(monkeypatch):
    import metaglasso._tables as tables

    monkeypatch.setattr(tables, "pandas_or_none", lambda: None)
    import metaglasso.enrichment as enrichment

    monkeypatch.setattr(enrichment, "pandas_or_none", lambda: None)
    L, sector, industry = _labelled()
    t = label_enrichment(L, {"sector": sector, "industry": industry})
    assert isinstance(t, dict) and t["label"][0] == "A"
    s = enrichment_summary(t)
    assert isinstance(s, dict) and list(s["sector"]) == ["A"]
    cv = characteristic_variables(L)
    assert isinstance(cv, dict) and sorted(cv["index"]) == list(range(8))
