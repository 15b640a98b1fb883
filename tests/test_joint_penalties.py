"""Fused and group penalties on the K latent networks (the joint graphical lasso of the core).

Ground truths: gglasso's ADMM (Danaher et al.'s algorithm, an independent implementation) on the same
latent covariances, finite differences of the profile objective, the plain fit (λ₂ → 0) and the
closed-form limits of a large λ₂.
"""

import warnings

import numpy as np
import pytest

from metaglasso import MetaGraphicalLasso, _core, select_model
from metaglasso._estimator import network_parameters
from metaglasso.datasets import make_shared_networks
from metaglasso.reference import polar_retraction, tangent_projection


def latent_covariances(K, M, seed, N=40):
    """K latent covariances D_trueᵀ S_k D_true of data with shared networks: the matrices the
    inner step of a fit sees (factor-structured, N = 40 samples each)."""
    Xs, truth = make_shared_networks(3 * M + 10, N, K, M, n_changes=min(2, M * (M - 1) // 2), random_state=seed)
    D = truth.components.T
    out = []
    for X in Xs:
        P = (X - X.mean(axis=0)) @ D
        out.append(P.T @ P / X.shape[0])
    return out


CASES = [(2, 2), (2, 30), (3, 10), (6, 10), (10, 2), (10, 20), (10, 30)]


@pytest.fixture(scope="module")
def gglasso_admm():
    gg = pytest.importorskip("gglasso.solver.admm_solver")
    return gg.ADMM_MGL


@pytest.mark.parametrize("penalty, pairs, reg", [("fused", "chain", "FGL"), ("group", "all", "GGL")])
@pytest.mark.parametrize("K, M", CASES)
def test_joint_solution_matches_gglasso_and_is_optimal(gglasso_admm, capsys, K, M, penalty, pairs, reg):
    S = latent_covariances(K, M, seed=K * 100 + M)
    scale = np.mean([np.trace(s) for s in S]) / M
    rho, beta = 0.05 * scale, 0.05 * scale
    coupling = (penalty, beta, pairs)
    # gglasso penalises the off-diagonal entries only, over i != j, with the unweighted sum of the K
    # likelihood terms (n_samples=None).
    cov, prec, n_iter, converged, residual = _core.joint_graphical_lasso(
        S, [rho] * K, coupling, penalize_diagonal=False)
    assert converged and residual <= 1e-12
    for P, C in zip(prec, cov):
        np.testing.assert_allclose(P @ C, np.eye(M), atol=1e-9)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sol, _ = gglasso_admm(np.array(S), rho, beta, reg, np.array([np.eye(M)] * K), tol=1e-7, rtol=1e-7,
                              max_iter=20000)
    capsys.readouterr()  # gglasso prints its status
    f = _core.joint_glasso_objective(S, [rho] * K, prec, coupling, False)
    # Omega: gglasso's positive definite iterate (its Theta is the sparse copy).
    f_gg = _core.joint_glasso_objective(S, [rho] * K, list(sol["Omega"]), coupling, False)
    assert abs(f - f_gg) <= 1e-5 * abs(f)
    assert f <= f_gg + 1e-12 * abs(f)  # ours is the lower of the two
    # The sparsity gglasso finds (its Theta, entries above its accuracy) is ours.
    ours = np.abs(np.array(prec)) > 0
    theirs = np.abs(sol["Theta"]) > 1e-6 * np.abs(sol["Theta"]).max()
    assert np.mean(ours == theirs) >= 0.99


@pytest.mark.parametrize("penalty, pairs", [("fused", "all"), ("fused", "chain"), ("group", "all")])
def test_beta_to_zero_is_the_plain_fit(penalty, pairs):
    Xs, _ = make_shared_networks(60, 40, 4, 5, random_state=0)
    plain = MetaGraphicalLasso(5, alpha=0.02).fit(Xs)
    # beta = 0 takes the plain code path: the same bits.
    zero = MetaGraphicalLasso(5, alpha=0.02, penalty=penalty, beta=0.0, fused_pairs=pairs).fit(Xs)
    np.testing.assert_array_equal(zero.components_, plain.components_)
    np.testing.assert_array_equal(zero.precisions_, plain.precisions_)
    # A vanishing beta takes the joint solver at every evaluation: the same fit to 1e-10.
    tiny = MetaGraphicalLasso(5, alpha=0.02, penalty=penalty, beta=1e-300, fused_pairs=pairs).fit(Xs)
    assert tiny._coupled()
    np.testing.assert_allclose(tiny.components_, plain.components_, rtol=0, atol=1e-10)
    np.testing.assert_allclose(tiny.precisions_, plain.precisions_, rtol=0, atol=1e-10 * np.abs(plain.precisions_).max())
    assert abs(tiny.objective_ - plain.objective_) <= 1e-10 * abs(plain.objective_)


@pytest.mark.parametrize("penalty, pairs", [("fused", "all"), ("fused", "chain"), ("group", "all")])
def test_profile_gradient_by_finite_differences(penalty, pairs):
    Xs, _ = make_shared_networks(30, 40, 3, 4, random_state=1)
    rng = np.random.default_rng(2)
    D = polar_retraction(rng.standard_normal((30, 4)))
    coupling = (penalty, 0.02, pairs)
    arrays = [np.ascontiguousarray(X) for X in Xs]
    f0, grad = _core.profile_objective(arrays, D, 0.01, coupling=coupling)
    for _ in range(3):
        xi = tangent_projection(D, rng.standard_normal(D.shape))
        xi /= np.linalg.norm(xi)
        h = 1e-5
        fp = _core.profile_objective(arrays, polar_retraction(D + h * xi), 0.01, coupling=coupling)[0]
        fm = _core.profile_objective(arrays, polar_retraction(D - h * xi), 0.01, coupling=coupling)[0]
        fd = (fp - fm) / (2 * h)
        exact = float(np.sum(grad * xi))
        assert abs(fd - exact) <= 1e-6 * max(abs(exact), np.linalg.norm(grad))


def test_large_beta_limits():
    Xs, _ = make_shared_networks(40, 40, 4, 5, random_state=3)
    fused = MetaGraphicalLasso(5, alpha=0.01, penalty="fused", beta=100.0, fused_pairs="chain").fit(Xs)
    off = fused.precisions_ - fused.precisions_[0]
    off[:, np.arange(5), np.arange(5)] = 0
    assert np.all(off == 0)  # one network, exactly
    # Distinct values: the shared off-diagonal entries once, the diagonals per dataset.
    nnz_off = np.count_nonzero(fused.precisions_[0]) - 5
    assert fused.n_network_parameters() == nnz_off + 4 * 5
    group = MetaGraphicalLasso(5, alpha=0.01, penalty="group", beta=100.0).fit(Xs)
    offdiag = ~np.eye(5, dtype=bool)
    assert np.all(group.precisions_[:, offdiag] == 0)
    assert group.n_network_parameters() == 4 * 5


def test_network_parameters_counts_distinct_nonzero_values():
    P = np.zeros((3, 2, 2))
    P[:, 0, 0] = [1.0, 1.0, 2.0]  # two distinct values
    P[:, 1, 1] = [3.0, 4.0, 5.0]  # three
    P[:, 0, 1] = P[:, 1, 0] = [0.5, 0.0, 0.5]  # one nonzero value, in both triangles
    assert network_parameters(P, coupled=True) == 2 + 3 + 2
    assert network_parameters(P, coupled=False) == np.count_nonzero(P) == 10


def test_solvers_paths_and_threads_agree():
    Xs, _ = make_shared_networks(200, 30, 4, 5, random_state=4)  # ΣN = 120 < V: compressed
    kw = dict(alpha=0.01, penalty="fused", beta=0.02, fused_pairs="chain")
    comp = MetaGraphicalLasso(5, **kw).fit(Xs)
    assert comp.compression_rank_ is not None
    full = MetaGraphicalLasso(5, compress=False, **kw).fit(Xs)
    assert abs(comp.objective_ - full.objective_) <= 1e-9 * abs(full.objective_)
    np.testing.assert_allclose(comp.precisions_, full.precisions_, atol=1e-6 * np.abs(full.precisions_).max())
    one = MetaGraphicalLasso(5, n_threads=1, compress=False, **kw).fit(Xs)
    two = MetaGraphicalLasso(5, n_threads=2, compress=False, **kw).fit(Xs)
    np.testing.assert_array_equal(one.components_, two.components_)
    np.testing.assert_array_equal(one.precisions_, two.precisions_)
    # Adam steps on all datasets at once and reaches (about) the same objective.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        adam = MetaGraphicalLasso(5, solver="adam", learning_rate=1e-2, max_iter=3000, **kw).fit(Xs)
    assert adam.objective_ >= full.objective_ - 1e-8 * abs(full.objective_)
    assert adam.objective_ <= full.objective_ + 1e-3 * abs(full.objective_)
    with pytest.raises(ValueError, match="batch_size must be 0 or at least the number of datasets"):
        MetaGraphicalLasso(5, solver="adam", batch_size=2, **kw).fit(Xs)


def test_invalid_parameters():
    Xs, _ = make_shared_networks(30, 20, 3, 3, random_state=5)
    with pytest.raises(ValueError, match="penalty must be one of"):
        MetaGraphicalLasso(3, penalty="ridge").fit(Xs)
    with pytest.raises(ValueError, match="fused_pairs must be one of"):
        MetaGraphicalLasso(3, penalty="fused", fused_pairs="ring").fit(Xs)
    with pytest.raises(ValueError, match="beta"):
        MetaGraphicalLasso(3, penalty="group", beta=-1.0).fit(Xs)
    with pytest.raises(ValueError, match="penalty='fused' needs one alpha for every dataset"):
        MetaGraphicalLasso(3, alpha=[0.1, 0.2, 0.1], penalty="fused", beta=0.1).fit(Xs)
    Xs_uneven = [Xs[0], Xs[1][:10], Xs[2]]
    with pytest.raises(ValueError, match="alpha_scaling='n_samples' with unequal n_samples"):
        MetaGraphicalLasso(3, alpha_scaling="n_samples", penalty="fused", beta=0.1).fit(Xs_uneven)
    # Unequal penalties are fine for the group penalty.
    MetaGraphicalLasso(3, alpha=[0.1, 0.2, 0.1], penalty="group", beta=0.1).fit(Xs)


def test_bic_search_over_beta():
    Xs, _ = make_shared_networks(40, 40, 4, 4, random_state=6)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        search = select_model(Xs, [4], [0.05, 0.01], betas=[0.0, 0.01, 0.05], penalty="fused",
                              fused_pairs="chain")
    grid = [(r["alpha"], r["beta"]) for r in search.results_]
    # The serpentine: alpha from the largest, beta from the largest, then back.
    assert grid == [(0.05, 0.05), (0.05, 0.01), (0.05, 0.0), (0.01, 0.0), (0.01, 0.01), (0.01, 0.05)]
    best = min(search.results_, key=lambda r: r["bic"])
    assert (search.alpha_, search.beta_) == (best["alpha"], best["beta"])
    assert search.best_estimator_.beta == search.beta_
    refit = MetaGraphicalLasso(4, alpha=search.alpha_, penalty="fused", beta=search.beta_,
                               fused_pairs="chain").fit(Xs)
    np.testing.assert_array_equal(refit.precisions_, search.best_estimator_.precisions_)
    # Without the refit, the kept model is the grid's own fit, scored as recorded.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        grid_only = select_model(Xs, [4], [0.05, 0.01], betas=[0.0, 0.01, 0.05], penalty="fused",
                                 fused_pairs="chain", refit=False)
    kept = grid_only.results_[grid_only.best_index_]
    assert kept["bic"] == grid_only.best_estimator_.bic(Xs)
    assert kept["n_parameters"] == grid_only.best_estimator_.n_parameters()
    with pytest.raises(ValueError, match="betas needs penalty='fused' or 'group'"):
        select_model(Xs, [4], [0.05], betas=[0.1])
    with pytest.raises(ValueError, match="either betas"):
        select_model(Xs, [4], [0.05], betas=[0.1], beta=0.2, penalty="group")


# ---------------------------------------------------------------------------------------------
# The core against the independent NumPy reference
# ---------------------------------------------------------------------------------------------

REFERENCE_CASES = [(2, 2), (2, 12), (4, 6), (6, 10), (10, 3), (8, 20)]


@pytest.mark.parametrize("penalize_diagonal", [True, False])
@pytest.mark.parametrize("penalty, pairs", [("fused", "all"), ("fused", "chain"), ("group", "all")])
@pytest.mark.parametrize("K, M", REFERENCE_CASES)
def test_core_joint_solver_matches_the_reference(K, M, penalty, pairs, penalize_diagonal):
    from metaglasso import reference

    S = latent_covariances(K, M, seed=7 * K + M)
    scale = np.mean([np.trace(s) for s in S]) / M
    rho, beta = 0.03 * scale, 0.04 * scale
    _, prec, _, converged, _ = _core.joint_graphical_lasso(S, [rho] * K, (penalty, beta, pairs),
                                                           penalize_diagonal=penalize_diagonal)
    assert converged
    # The reference's optimality certificate (subgradients found by a linear program), on the core's answer.
    kkt = reference.joint_kkt_residual(S, prec, rho, beta, penalty, pairs, penalize_diagonal)
    assert kkt <= 1e-6
    _, ref = reference.joint_graphical_lasso(S, rho, beta, penalty, pairs, penalize_diagonal=penalize_diagonal)
    f = reference.joint_objective(S, prec, rho, beta, penalty, pairs, penalize_diagonal)
    f_ref = reference.joint_objective(S, ref, rho, beta, penalty, pairs, penalize_diagonal)
    assert abs(f - f_ref) <= 1e-10 * abs(f)
    assert abs(f - _core.joint_glasso_objective(S, [rho] * K, prec, (penalty, beta, pairs), penalize_diagonal)) \
        <= 1e-12 * abs(f)
    np.testing.assert_allclose(np.array(prec), ref, rtol=0, atol=1e-6 * np.abs(ref).max())
    # The same zeros (the fused values too: fused entries are exactly equal in both).
    np.testing.assert_array_equal(np.array(prec) == 0, ref == 0)


@pytest.mark.parametrize("penalty, pairs", [("fused", "chain"), ("group", "all")])
def test_core_fit_matches_the_reference_fit(penalty, pairs):
    from metaglasso import reference

    Xs, _ = make_shared_networks(40, 40, 3, 4, random_state=8)
    D0 = _core.pca_initial_projection([np.ascontiguousarray(X) for X in Xs], 4)
    f_core, g_core = _core.profile_objective([np.ascontiguousarray(X) for X in Xs], D0, 0.01,
                                             coupling=(penalty, 0.02, pairs))
    f_ref, g_ref, _, _ = reference.profile_objective(Xs, D0, 0.01, penalty=penalty, beta=0.02, fused_pairs=pairs)
    assert abs(f_core - f_ref) <= 1e-10 * abs(f_ref)
    np.testing.assert_allclose(g_core, g_ref, rtol=0, atol=1e-7 * np.abs(g_ref).max())
    model = MetaGraphicalLasso(4, alpha=0.01, penalty=penalty, beta=0.02, fused_pairs=pairs, init=D0.T).fit(Xs)
    ref = reference.fit_lbfgs(Xs, D0, 0.01, penalty=penalty, beta=0.02, fused_pairs=pairs)
    assert abs(model.objective_ - ref.objective) <= 1e-8 * abs(ref.objective)


def test_covariance_input_gives_the_data_fit():
    Xs, _ = make_shared_networks(30, 50, 3, 4, random_state=9)
    kw = dict(alpha=0.01, penalty="group", beta=0.02)
    data = MetaGraphicalLasso(4, **kw).fit(Xs)
    covs = [np.cov(X, rowvar=False, bias=True) for X in Xs]
    cov = MetaGraphicalLasso(4, **kw).fit_covariances(covs, [X.shape[0] for X in Xs])
    assert abs(cov.objective_ - data.objective_) <= 1e-9 * abs(data.objective_)
    np.testing.assert_allclose(cov.precisions_, data.precisions_, atol=1e-6 * np.abs(data.precisions_).max())
    assert cov.n_parameters() == data.n_parameters()
