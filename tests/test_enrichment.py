"""Characteristic variables, the G-test and hypergeometric enrichment, checked against scipy.stats."""

import numpy as np
import pytest
from scipy import stats

from metaglasso.enrichment import (
    benjamini_hochberg,
    characteristic_variables,
    enrichment_summary,
    gene_set_enrichment,
    gene_set_rank_enrichment,
    hypergeometric_sf,
    label_enrichment,
    llr_test,
    mann_whitney_u,
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


def test_gene_set_enrichment_signed_lists_match_scipy():
    """The neg and abs lists are the n_top smallest and largest-|loading| variables; each p-value is
    scipy's hypergeometric tail of that list's overlap."""
    rng = np.random.default_rng(5)
    V, n_top = 200, 15
    genes = [f"G{i}" for i in range(V)]
    L = rng.normal(size=(V, 1))
    L[:10, 0] -= 4.0  # G0..G9 at the negative end
    L[10:14, 0] += 4.0
    sets = {"neg_end": genes[:12], "pos_end": genes[10:20], "mixed": genes[5:15] + genes[100:110]}
    for sign, key in (("neg", -L[:, 0]), ("abs", np.abs(L[:, 0])), ("pos", L[:, 0])):
        top = set(np.argsort(-key, kind="stable")[:n_top])
        t = gene_set_enrichment(L, sets, n_top=n_top, sign=sign, variable_names=genes)
        assert set(t["sign"]) == {sign}
        for r in t.itertuples():
            members = {genes.index(g) for g in sets[r.gene_set]}
            k = len(members & top)
            assert r.n_overlap == k and r.set_size == len(members)
            assert r.p_value == pytest.approx(stats.hypergeom.sf(k - 1, V, len(members), n_top), rel=1e-9, abs=1e-300)
            assert set(r.genes.split(";")) == {genes[i] for i in members & top}
        np.testing.assert_allclose(t["p_adjusted"], stats.false_discovery_control(t["p_value"], method="bh"),
                                   rtol=1e-12)
    neg = gene_set_enrichment(L, sets, n_top=n_top, sign="neg", variable_names=genes)
    assert neg.iloc[0].gene_set == "neg_end" and neg.iloc[0].n_overlap == 10


def test_benjamini_hochberg_by_hand():
    p = np.array([0.01, 0.04, 0.03, 0.005, 0.5])
    m = p.size
    order = np.argsort(p)
    direct = np.empty(m)
    running = 1.0
    for rank in range(m, 0, -1):  # step-up: q_(i) = min_{j >= i} p_(j) m / j
        running = min(running, p[order[rank - 1]] * m / rank)
        direct[order[rank - 1]] = running
    np.testing.assert_allclose(benjamini_hochberg(p), direct, rtol=1e-15)


@pytest.mark.parametrize("alternative", ["two-sided", "greater", "less"])
def test_mann_whitney_u_matches_scipy(alternative):
    rng = np.random.default_rng(6)
    x = rng.normal(0.4, 1, size=25)
    y = rng.normal(0, 1, size=300)
    ties_x, ties_y = np.round(x, 1), np.round(y, 1)  # many ties
    for a, b in ((x, y), (ties_x, ties_y), ([1.0, 2.0, 3.0], [2.0, 3.0, 4.0, 5.0]), (y[:9], x[:12])):
        U, p = mann_whitney_u(a, b, alternative=alternative)
        ref = stats.mannwhitneyu(a, b, alternative=alternative, method="asymptotic")
        assert U == ref.statistic
        assert p == pytest.approx(ref.pvalue, rel=1e-10, abs=1e-300)
    with pytest.raises(ValueError, match="alternative must be one of"):
        mann_whitney_u(x, y, alternative="bigger")
    with pytest.raises(ValueError, match="at least one value"):
        mann_whitney_u([], y)


def _rank_problem():
    rng = np.random.default_rng(7)
    V = 250
    genes = [f"G{i}" for i in range(V)]
    L = rng.normal(size=(V, 3))
    L[:20, 0] += 1.2   # set "up" shifted up on factor 0
    L[30:45, 1] -= 1.0  # set "down" shifted down on factor 1
    L[:, 2] = np.round(L[:, 2], 1)  # ties
    sets = {"up": genes[:20] + ["NOT_A_GENE"], "down": genes[30:45], "null": genes[100:160], "tiny": genes[200:203]}
    return L, genes, sets


@pytest.mark.parametrize("sign", ["two-sided", "both", "pos", "neg", "abs"])
@pytest.mark.parametrize("method", ["mannwhitney", "ks"])
def test_rank_enrichment_matches_scipy(sign, method):
    L, genes, sets = _rank_problem()
    V = len(genes)
    t = gene_set_rank_enrichment(pd.DataFrame(L, index=genes), sets, method=method, sign=sign)
    assert list(t.columns) == ["factor", "sign", "gene_set", "n_variables", "set_size", "statistic", "auc",
                               "mean_difference", "p_value", "p_adjusted", "genes"]
    assert "tiny" not in set(t["gene_set"])  # below min_size=5
    n_tests = {"two-sided": 1, "both": 2}.get(sign, 1)
    assert len(t) == 3 * 3 * n_tests
    for r in t.itertuples():
        idx = [genes.index(g) for g in sets[r.gene_set] if g in genes]
        rest = np.setdiff1d(np.arange(V), idx)
        x = np.abs(L[:, r.factor]) if sign == "abs" else L[:, r.factor]
        alt = "two-sided" if sign == "two-sided" else {"pos": "greater", "neg": "less", "abs": "greater"}[r.sign]
        mwu = stats.mannwhitneyu(x[idx], x[rest], alternative=alt, method="asymptotic")
        assert r.auc == pytest.approx(mwu.statistic / (len(idx) * len(rest)), rel=1e-12)
        assert r.mean_difference == pytest.approx(x[idx].mean() - x[rest].mean(), rel=1e-10, abs=1e-12)
        if sign == "two-sided":
            assert r.sign == ("pos" if r.auc >= 0.5 else "neg")
        if method == "mannwhitney":
            assert r.statistic == mwu.statistic
            assert r.p_value == pytest.approx(mwu.pvalue, rel=1e-10, abs=1e-300)
        else:
            # ks_2samp's alternative refers to the first sample's CDF: "less" = its values are larger
            ks = stats.ks_2samp(x[idx], x[rest], alternative={"two-sided": "two-sided", "greater": "less",
                                                               "less": "greater"}[alt])
            assert r.statistic == pytest.approx(ks.statistic, rel=1e-12)
            assert r.p_value == pytest.approx(ks.pvalue, rel=1e-10, abs=1e-300)
    family = ["factor"] if sign == "two-sided" else ["factor", "sign"]
    for _, sub in t.groupby(family):
        np.testing.assert_allclose(sub["p_adjusted"], stats.false_discovery_control(sub["p_value"]), rtol=1e-12)
    if sign in ("two-sided", "both", "pos"):
        best = t[(t["factor"] == 0) & (t["sign"] == "pos")].iloc[0]
        assert best.gene_set == "up" and best.p_adjusted < 1e-2 and best.auc > 0.7
        # leading genes: the set's genes of largest loading first
        lead = best.genes.split(";")
        assert len(lead) == 10 and lead[0] == genes[int(np.argmax(L[:20, 0]))]
    if sign in ("two-sided", "both", "neg"):
        down = t[(t["factor"] == 1) & (t["gene_set"] == "down") & (t["sign"] == "neg")].iloc[0]
        assert down.p_adjusted < 0.05 and down.auc < 0.3 and down.mean_difference < 0


def test_rank_enrichment_options_and_errors(tmp_path):
    L, genes, sets = _rank_problem()
    lev = gene_set_rank_enrichment(L, sets, variable_names=genes, adjust="level")
    np.testing.assert_allclose(lev["p_adjusted"], stats.false_discovery_control(lev["p_value"]), rtol=1e-12)
    small = gene_set_rank_enrichment(L, sets, variable_names=genes, min_size=1, max_size=20, n_genes=2)
    assert set(small["gene_set"]) == {"up", "down", "tiny"}
    assert all(len(g.split(";")) <= 2 for g in small["genes"])
    gmt = tmp_path / "sets.gmt"
    gmt.write_text("".join(f"{k}\td\t" + "\t".join(v) + "\n" for k, v in sets.items()))
    pd.testing.assert_frame_equal(gene_set_rank_enrichment(L, str(gmt), variable_names=genes),
                                  gene_set_rank_enrichment(L, sets, variable_names=genes))
    none = gene_set_rank_enrichment(L, {"x": ["nope"]}, variable_names=genes)
    assert len(none) == 0 and "auc" in none.columns
    with pytest.raises(ValueError, match="needs variable names"):
        gene_set_rank_enrichment(L, sets)
    with pytest.raises(ValueError, match="method must be one of"):
        gene_set_rank_enrichment(L, sets, variable_names=genes, method="gsea")
    with pytest.raises(ValueError, match="sign must be one of"):
        gene_set_rank_enrichment(L, sets, variable_names=genes, sign="up")


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
    r = gene_set_rank_enrichment(model, {"s": cols[:10]})
    assert list(r["factor"]) == [0, 1, 2]


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
    r = gene_set_rank_enrichment(L, {"top": [f"v{i}" for i in range(8)]}, variable_names=[f"v{i}" for i in range(200)])
    assert isinstance(r, dict) and r["gene_set"][0] == "top" and r["p_adjusted"][0] < 1e-3
