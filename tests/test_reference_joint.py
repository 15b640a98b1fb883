"""The joint graphical lasso of the pure-NumPy reference (metaglasso.reference): fused and group
penalties that couple the K latent networks (Danaher, Wang & Witten 2014).

Ground truth comes from outside the solver: the subgradient conditions
(:func:`joint_kkt_residual`, exact per entry), gglasso's ADMM solver, bounded least squares for
the proximal operators, the per-dataset graphical lasso, closed forms at huge β, and central
finite differences of the profile objective. None of these tests uses the C++ core.

Tolerances, and why:

- KKT residual (scaled by √(W_ii W_jj), see :func:`joint_kkt_residual`) of our solutions
  <= 1e-6; they reach ~1e-15 (the solver stops on a duality gap of 1e-12 · K · M).
- A perturbed solution has a residual > 1e-3 (perturbations of 1e-4 and 1 %).
- Objective against gglasso (its own ADMM, run to tol = rtol = 1e-10): relative 1e-5.
- β = 0 against the per-dataset graphical lasso: 1e-10 on Λ.
- Huge β: fused networks equal to 1e-8, group off-diagonals exactly 0.
- Profile gradient against central differences (h = 1e-5): relative 1e-6.
"""

from __future__ import annotations

import contextlib
import io
import warnings

import numpy as np
import pytest

from metaglasso import reference as ref
from test_reference import directional_derivatives, make_datasets

RHO, BETA = 0.05, 0.05
SHAPES = [(2, 2), (2, 30), (10, 2), (10, 30), (5, 12)]  # (K, M)
PENALTIES = [("fused", "all"), ("fused", "chain"), ("group", "all")]


@pytest.fixture(scope="module", autouse=True)
def single_threaded_blas():
    """The matrices are at most 30 × 30: a threaded BLAS only adds synchronisation (on two cores
    it made eigh of a (6, 30, 30) stack a hundred times slower)."""
    try:
        import threadpoolctl
    except ImportError:  # only slower without it
        yield
        return
    with threadpoolctl.threadpool_limits(limits=1, user_api="blas"):
        yield


def latent_covariances(K, M, seed, N=40, extra=5):
    """A_k = Dᵀ S_k D for K datasets of N samples from a factor model with V = M + extra variables.

    The latent precisions share a sparse structure (about M edges) and differ in two entries
    each; the factors have their own scales and the data white noise of s.d. 0.3. With N = 40
    and M = 30 the A_k are poorly conditioned, as a sample covariance is.
    """
    rng = np.random.default_rng(seed)
    V = M + extra
    D = ref.polar_retraction(rng.standard_normal((V, M)))
    shared = np.zeros((M, M))
    for _ in range(M):
        i, j = rng.choice(M, 2, replace=False)
        shared[i, j] = shared[j, i] = rng.choice([-1.0, 1.0]) * rng.uniform(0.2, 0.5)
    out = []
    for _ in range(K):
        Lam = shared.copy()
        for _ in range(2):
            i, j = rng.choice(M, 2, replace=False)
            Lam[i, j] = Lam[j, i] = 0.0 if Lam[i, j] != 0.0 else rng.choice([-1.0, 1.0]) * 0.3
        Lam += np.eye(M) * (0.5 - min(0.0, np.linalg.eigvalsh(Lam)[0]))
        scale = np.diag(rng.uniform(0.7, 1.5, M))
        Z = rng.multivariate_normal(np.zeros(M), scale @ np.linalg.inv(Lam) @ scale, size=N)
        X = Z @ D.T + 0.3 * rng.standard_normal((N, V))
        A = D.T @ np.cov(X.T, bias=True) @ D
        out.append(0.5 * (A + A.T))
    return np.array(out)


def upper_entries(P):
    """(K, n) array of the entries i < j of each Λ_k."""
    iu, ju = np.triu_indices(P.shape[1], 1)
    return P[:, iu, ju]


def random_rho(K, seed):
    return np.random.default_rng(seed).uniform(0.02, 0.1, K)


# ---------------------------------------------------------------------------------------------
# The solver against the optimality conditions
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("penalize_diagonal", [False, True])
@pytest.mark.parametrize("penalty, fused_pairs", PENALTIES)
@pytest.mark.parametrize("K, M", SHAPES)
def test_solution_satisfies_the_kkt_conditions(K, M, penalty, fused_pairs, penalize_diagonal):
    A = latent_covariances(K, M, seed=10 * K + M)
    # the group penalty takes per-dataset ρ_k; the fused one needs a common ρ
    alpha = random_rho(K, seed=M) if penalty == "group" else RHO
    args = (alpha, BETA, penalty, fused_pairs)
    covariances, precisions = ref.joint_graphical_lasso(A, *args, penalize_diagonal=penalize_diagonal)
    assert precisions.shape == covariances.shape == (K, M, M)
    assert np.array_equal(precisions, precisions.transpose(0, 2, 1))
    np.testing.assert_allclose(covariances @ precisions, np.broadcast_to(np.eye(M), (K, M, M)), atol=1e-8)
    assert ref.joint_kkt_residual(A, precisions, *args, penalize_diagonal) <= 1e-6
    if M >= 12:
        # the nonsmooth parts are exercised: exact zeros and, for the fused penalty, exact ties
        x = upper_entries(precisions)
        assert np.any(x == 0.0) and np.any(x != 0.0)
        if penalty == "fused":
            pairs = ref._fusion_pairs(K, fused_pairs)
            assert any(np.any((x[k] == x[l]) & (x[k] != 0.0)) for k, l in pairs)


def test_solution_is_unit_free_and_a_fixed_point_of_the_warm_start():
    # A → cA, ρ → cρ, β → cβ gives Λ → Λ/c; started at the optimum the solver stays there.
    A = latent_covariances(4, 8, seed=3)
    _, P = ref.joint_graphical_lasso(A, RHO, BETA, "fused", "chain")
    _, P_scaled = ref.joint_graphical_lasso(7.0 * A, 7.0 * RHO, 7.0 * BETA, "fused", "chain")
    np.testing.assert_allclose(7.0 * P_scaled, P, rtol=0, atol=1e-10)
    _, P_warm = ref.joint_graphical_lasso(A, RHO, BETA, "fused", "chain", precisions_init=P)
    np.testing.assert_allclose(P_warm, P, rtol=0, atol=1e-12)


# ---------------------------------------------------------------------------------------------
# The solver against gglasso
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("reg, penalty, fused_pairs", [("FGL", "fused", "chain"), ("GGL", "group", "all")])
@pytest.mark.parametrize("K, M", SHAPES)
def test_objective_matches_gglasso(K, M, reg, penalty, fused_pairs):
    """gglasso's ADMM_MGL minimises Σ_k [tr(S_k Ω_k) − log|Ω_k|] + P(Θ) subject to Ω = Θ, with no
    N_k weights (n_samples=None). Its penalty (gglasso.solver.ggl_helper.P_val) sums the entries
    i < j only and doubles them: the diagonal is unpenalised, and the penalty runs over i ≠ j as
    here. 'FGL' is λ₁ Σ|Θ_k,ij| + λ₂ Σ_k |Θ_k+1,ij − Θ_k,ij| (the chain), 'GGL' is
    λ₁ Σ|Θ_k,ij| + λ₂ ‖Θ_·ij‖₂ (the group penalty).

    Both answers are evaluated with joint_objective. gglasso's Θ is used: it is the output of the
    proximal step, exactly sparse and fused, and it is positive definite here (checked); its Ω is
    positive definite by construction but only approximately sparse, which overstates the
    penalty by about the ADMM tolerance."""
    pytest.importorskip("gglasso")
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", module=r"numba(\.|$)")  # numba's deprecation notices, if any
        from gglasso.solver.admm_solver import ADMM_MGL

        A = latent_covariances(K, M, seed=10 * K + M)
        with contextlib.redirect_stdout(io.StringIO()):  # it prints its status
            solution, info = ADMM_MGL(
                A, RHO, BETA, reg, np.array([np.eye(M)] * K), tol=1e-10, rtol=1e-10, max_iter=20000
            )
    assert info["status"] == "optimal"
    theirs = solution["Theta"]
    np.linalg.cholesky(theirs)
    _, ours = ref.joint_graphical_lasso(A, RHO, BETA, penalty, fused_pairs)
    f_ours = ref.joint_objective(A, ours, RHO, BETA, penalty, fused_pairs)
    f_theirs = ref.joint_objective(A, theirs, RHO, BETA, penalty, fused_pairs)
    assert abs(f_ours - f_theirs) <= 1e-5 * abs(f_ours)
    assert f_ours <= f_theirs + 1e-12 * abs(f_ours)  # ours is the minimum


# ---------------------------------------------------------------------------------------------
# The optimality certificate itself
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("penalize_diagonal", [False, True])
@pytest.mark.parametrize("penalty, fused_pairs", PENALTIES)
def test_kkt_residual_rejects_perturbed_solutions(penalty, fused_pairs, penalize_diagonal):
    A = latent_covariances(5, 12, seed=7)
    args = (RHO, BETA, penalty, fused_pairs)
    _, P = ref.joint_graphical_lasso(A, *args, penalize_diagonal=penalize_diagonal)
    assert ref.joint_kkt_residual(A, P, *args, penalize_diagonal) <= 1e-10
    rng = np.random.default_rng(0)
    noise = rng.standard_normal(P.shape)
    noisy = P + 1e-4 * (noise + noise.transpose(0, 2, 1))  # breaks the zeros and the ties
    assert ref.joint_kkt_residual(A, noisy, *args, penalize_diagonal) > 1e-3
    scaled = 1.01 * P  # keeps the pattern, breaks stationarity
    assert ref.joint_kkt_residual(A, scaled, *args, penalize_diagonal) > 1e-3


@pytest.mark.parametrize("penalize_diagonal", [False, True])
def test_kkt_residual_accepts_the_graphical_lasso_at_beta_zero(penalize_diagonal):
    A = latent_covariances(4, 10, seed=11)
    rho = random_rho(4, seed=2)
    P = np.array([ref.graphical_lasso(A[k], rho[k], penalize_diagonal=penalize_diagonal)[1] for k in range(4)])
    for penalty, fused_pairs in PENALTIES + [("lasso", "all")]:
        assert ref.joint_kkt_residual(A, P, rho, 0.0, penalty, fused_pairs, penalize_diagonal) <= 1e-8
    # ... and no longer once β couples the networks
    assert ref.joint_kkt_residual(A, P, rho, 0.5, "fused", "all", penalize_diagonal) > 1e-3
    assert ref.joint_kkt_residual(A, P, rho, 0.5, "group", "all", penalize_diagonal) > 1e-3


def test_two_datasets_all_pairs_and_chain_coincide():
    A = latent_covariances(2, 12, seed=5)
    _, P_all = ref.joint_graphical_lasso(A, RHO, BETA, "fused", "all")
    _, P_chain = ref.joint_graphical_lasso(A, RHO, BETA, "fused", "chain")
    np.testing.assert_allclose(P_all, P_chain, rtol=0, atol=1e-10)
    for P in (P_all, P_chain):
        for fused_pairs in ("all", "chain"):
            assert ref.joint_kkt_residual(A, P, RHO, BETA, "fused", fused_pairs) <= 1e-8


@pytest.mark.parametrize("fused_pairs", ["all", "chain"])
def test_huge_fusion_is_the_graphical_lasso_of_the_mean(fused_pairs):
    # The fused penalty leaves the diagonal alone, so Λ_k = Λ for all k needs covariances with a
    # common diagonal (rescaled here). Then with Λ_k = Λ the objective is
    # K [tr(Ā Λ) − log|Λ| + ρ‖Λ‖₁], and for β large enough the answer is the graphical lasso of
    # the mean covariance, repeated.
    K, M = 4, 8
    A = latent_covariances(K, M, seed=9)
    common_diagonal = np.sqrt(np.mean(np.diagonal(A, axis1=1, axis2=2), axis=0))
    for k in range(K):
        scale = common_diagonal / np.sqrt(np.diag(A[k]))
        A[k] = scale[:, None] * A[k] * scale[None, :]
    common = ref.graphical_lasso(A.mean(axis=0), RHO)[1]
    repeated = np.array([common] * K)
    assert ref.joint_kkt_residual(A, repeated, RHO, 50.0, "fused", fused_pairs) <= 1e-8
    assert ref.joint_kkt_residual(A, repeated, RHO, BETA, "fused", fused_pairs) > 1e-3
    _, P = ref.joint_graphical_lasso(A, RHO, 50.0, "fused", fused_pairs)
    np.testing.assert_allclose(P, repeated, rtol=0, atol=1e-8)


@pytest.mark.parametrize("penalize_diagonal", [False, True])
def test_huge_group_penalty_is_diagonal(penalize_diagonal):
    K, M = 4, 8
    A = latent_covariances(K, M, seed=9)
    rho = random_rho(K, seed=4)
    shift = rho if penalize_diagonal else np.zeros(K)
    diagonal = np.array([np.diag(1.0 / (np.diag(A[k]) + shift[k])) for k in range(K)])
    assert ref.joint_kkt_residual(A, diagonal, rho, 50.0, "group", "all", penalize_diagonal) <= 1e-12
    _, P = ref.joint_graphical_lasso(A, rho, 50.0, "group", penalize_diagonal=penalize_diagonal)
    np.testing.assert_allclose(P, diagonal, rtol=1e-12, atol=0)


# ---------------------------------------------------------------------------------------------
# β = 0 and the proximal operators
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("penalize_diagonal", [False, True])
def test_beta_zero_is_the_per_dataset_graphical_lasso(penalize_diagonal):
    K, M = 4, 10
    A = latent_covariances(K, M, seed=13)
    rho = random_rho(K, seed=6)
    expected = np.array([ref.graphical_lasso(A[k], rho[k], penalize_diagonal=penalize_diagonal)[1] for k in range(K)])
    # penalty="lasso": the same calls, so the same numbers
    _, P = ref.joint_graphical_lasso(A, rho, 0.0, "lasso", penalize_diagonal=penalize_diagonal)
    assert np.array_equal(P, expected)
    # the joint path (ADMM and polishing) with β = 0, which accepts unequal ρ_k for the fused penalty
    for penalty, fused_pairs in PENALTIES:
        _, P = ref.joint_graphical_lasso(A, rho, 0.0, penalty, fused_pairs, penalize_diagonal=penalize_diagonal)
        np.testing.assert_allclose(P, expected, rtol=0, atol=1e-10)


def _prox_by_bounded_least_squares(v, rho, beta, pairs):
    """prox of Σ ρ_k|x_k| + β Σ_{(k,l)} |x_k − x_l| (or the TV part alone when rho is None) at v,
    through its dual: x = v − C y with y ∈ [−1, 1] minimising ‖v − C y‖², C = [diag(ρ), β Bᵀ]."""
    from scipy.optimize import lsq_linear

    K = v.size
    columns = [] if rho is None else [rho[k] * np.eye(K)[k] for k in range(K)]
    for k, l in pairs:
        column = np.zeros(K)
        column[k], column[l] = beta, -beta
        columns.append(column)
    C = np.array(columns).T
    y = lsq_linear(C, v, bounds=(-1.0, 1.0), method="bvls", tol=1e-14).x
    return v - C @ y


@pytest.mark.parametrize("fused_pairs", ["all", "chain"])
@pytest.mark.parametrize("K", [2, 3, 5, 8])
def test_fused_prox_matches_bounded_least_squares(K, fused_pairs):
    rng = np.random.default_rng(K)
    V = np.round(rng.standard_normal((60, K)), 1)  # rounded: many exact ties in v
    pairs = ref._fusion_pairs(K, fused_pairs)
    for lam in (0.01, 0.1, 0.5, 3.0):
        tv = ref._tv_prox(V, lam, fused_pairs)
        for v, x in zip(V, tv):
            np.testing.assert_allclose(x, _prox_by_bounded_least_squares(v, None, lam, pairs), rtol=0, atol=1e-9)
        rho = np.full(K, 0.2)
        full = ref._soft(tv, 0.2)  # the fused prox with a common ρ
        for v, x in zip(V[:15], full[:15]):
            np.testing.assert_allclose(x, _prox_by_bounded_least_squares(v, rho, lam, pairs), rtol=0, atol=1e-9)


# ---------------------------------------------------------------------------------------------
# The model with coupled networks
# ---------------------------------------------------------------------------------------------

V_MODEL, M_MODEL, K_MODEL = 30, 4, 3
RHO_MODEL, BETA_MODEL = 0.02, 0.05


@pytest.fixture(scope="module")
def model_data():
    Xs, _ = make_datasets(V=V_MODEL, M=M_MODEL, K=K_MODEL, seed=4)
    return Xs


@pytest.mark.parametrize(
    "penalty, fused_pairs, beta", [("fused", "all", 0.05), ("fused", "chain", 0.05), ("group", "all", 0.1)]
)
def test_profile_gradient_matches_finite_differences(model_data, penalty, fused_pairs, beta):
    D = ref.random_initial_projection(V_MODEL, M_MODEL, seed=21)
    kw = {"penalty": penalty, "beta": beta, "fused_pairs": fused_pairs, "glasso_tol": 1e-14}
    f, grad, precisions, _ = ref.profile_objective(model_data, D, RHO_MODEL, **kw)
    x = upper_entries(precisions)
    if penalty == "fused":  # the coupling is active: some entries fused, as they would not be alone
        assert np.any((x[0] == x[1]) & (x[0] != 0.0))
    else:  # entries zero in every network, and entries nonzero in some
        assert np.any(np.all(x == 0.0, axis=0)) and np.any(x != 0.0)
    for xi, numeric in directional_derivatives(model_data, D, RHO_MODEL, grad, precisions, kw, n_random=3):
        analytic = float(np.sum(grad * xi))
        assert abs(numeric - analytic) <= 1e-6 * abs(analytic)


@pytest.mark.parametrize("penalty", ["fused", "group"])
def test_profile_objective_adds_the_coupling_once(model_data, penalty):
    D = ref.random_initial_projection(V_MODEL, M_MODEL, seed=3)
    kw = {"penalty": penalty, "beta": BETA_MODEL, "fused_pairs": "all"}
    f, _, precisions, noise = ref.profile_objective(model_data, D, RHO_MODEL, **kw)
    dense = ref.objective_dense(model_data, D, precisions, noise, RHO_MODEL, **kw)
    assert abs(f - dense) <= 1e-10 * abs(f)
    # and the Λ_k are the joint graphical lasso of the A_k = Dᵀ S_k D
    A = np.array([D.T @ ref.empirical_covariance(X) @ D for X in model_data])
    assert ref.joint_kkt_residual(A, precisions, RHO_MODEL, BETA_MODEL, penalty, "all", True) <= 1e-8
    uncoupled = ref.objective_dense(model_data, D, precisions, noise, RHO_MODEL)
    assert abs(dense - uncoupled - ref._coupling_value(precisions, BETA_MODEL, penalty, "all")) <= 1e-12 * abs(f)


def test_beta_zero_leaves_the_model_bit_identical(model_data):
    D = ref.random_initial_projection(V_MODEL, M_MODEL, seed=3)
    plain = ref.profile_objective(model_data, D, RHO_MODEL)
    for kw in ({"penalty": "lasso"}, {"penalty": "fused", "beta": 0.0}, {"penalty": "group", "beta": 0.0}):
        other = ref.profile_objective(model_data, D, RHO_MODEL, **kw)
        assert other[0] == plain[0]
        for a, b in zip(other[1:], plain[1:]):
            assert np.array_equal(a, b)
    fit = ref.fit_lbfgs(model_data, D, RHO_MODEL, max_iter=3)
    fit_zero = ref.fit_lbfgs(model_data, D, RHO_MODEL, max_iter=3, penalty="fused", beta=0.0)
    assert fit_zero.objective_history == fit.objective_history
    assert np.array_equal(fit_zero.components, fit.components)
    assert np.array_equal(fit_zero.precisions, fit.precisions)


def test_fit_lbfgs_with_fusion_converges_and_decreases(model_data):
    D0 = ref.pca_initial_projection(model_data, M_MODEL)
    kw = {"penalty": "fused", "beta": BETA_MODEL, "fused_pairs": "chain"}
    fit = ref.fit_lbfgs(model_data, D0, RHO_MODEL, tol=1e-8, **kw)
    assert fit.converged
    assert fit.objective <= fit.objective_history[0]
    assert all(b <= a for a, b in zip(fit.objective_history, fit.objective_history[1:]))
    f_final = ref.profile_objective(model_data, fit.components, RHO_MODEL, **kw)[0]
    assert abs(f_final - fit.objective) <= 1e-10 * abs(fit.objective)


@pytest.mark.parametrize("fused_pairs", ["all", "chain"])
def test_fit_with_huge_fusion_gives_equal_networks(model_data, fused_pairs):
    # P runs over i ≠ j: the off-diagonal entries are fused, the diagonals (the factors' own
    # precisions, different datasets have different scales) are not.
    D0 = ref.pca_initial_projection(model_data, M_MODEL)
    fit = ref.fit_lbfgs(model_data, D0, RHO_MODEL, max_iter=5, penalty="fused", beta=100.0, fused_pairs=fused_pairs)
    off = ~np.eye(M_MODEL, dtype=bool)
    assert np.any(fit.precisions[0][off] != 0.0)
    for k in range(1, K_MODEL):
        np.testing.assert_allclose(fit.precisions[k][off], fit.precisions[0][off], rtol=0, atol=1e-8)


def test_fit_with_huge_group_penalty_gives_diagonal_networks(model_data):
    D0 = ref.pca_initial_projection(model_data, M_MODEL)
    fit = ref.fit_lbfgs(model_data, D0, RHO_MODEL, max_iter=5, penalty="group", beta=100.0)
    off = ~np.eye(M_MODEL, dtype=bool)
    assert np.all(fit.precisions[:, off] == 0.0)


def test_fit_adam_refits_all_datasets_jointly(model_data):
    D0 = ref.random_initial_projection(V_MODEL, M_MODEL, seed=2)
    kw = {"penalty": "group", "beta": BETA_MODEL}
    fit = ref.fit_adam(model_data, D0, RHO_MODEL, max_iter=5, tol=0.0, learning_rate=1e-2, **kw)
    assert len(fit.objective_history) == 5
    assert fit.objective_history[-1] < fit.objective_history[0]
    f_final = ref.profile_objective(model_data, fit.components, RHO_MODEL, **kw)[0]
    assert abs(f_final - fit.objective) <= 1e-10 * abs(fit.objective)
    with pytest.raises(ValueError, match="batch"):
        ref.fit_adam(model_data, D0, RHO_MODEL, max_iter=1, batch_size=2, **kw)
    ref.fit_adam(model_data, D0, RHO_MODEL, max_iter=1, batch_size=2, penalty="group", beta=0.0)  # decoupled


# ---------------------------------------------------------------------------------------------
# Validation
# ---------------------------------------------------------------------------------------------


def test_invalid_couplings_are_refused(model_data):
    A = latent_covariances(3, 4, seed=1)
    D = ref.random_initial_projection(V_MODEL, M_MODEL, seed=3)
    with pytest.raises(ValueError, match="same alpha"):
        ref.joint_graphical_lasso(A, [0.1, 0.2, 0.1], 0.1, "fused")
    with pytest.raises(ValueError, match="same alpha"):
        ref.profile_objective(model_data, D, [0.1, 0.2, 0.1], penalty="fused", beta=0.1)
    with pytest.raises(ValueError, match="penalty"):
        ref.joint_graphical_lasso(A, 0.1, 0.1, "ridge")
    with pytest.raises(ValueError, match="fused_pairs"):
        ref.joint_graphical_lasso(A, 0.1, 0.1, "fused", "ring")
    with pytest.raises(ValueError, match="beta"):
        ref.profile_objective(model_data, D, 0.1, beta=0.1)  # penalty="lasso" has no β
    with pytest.raises(ValueError, match="beta"):
        ref.joint_objective(A, np.array([np.eye(4)] * 3), 0.1, -1.0)
