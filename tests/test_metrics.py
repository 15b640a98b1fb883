"""The paper's evaluation metrics (metaglasso.metrics) against hand-computed and independent values."""

from types import SimpleNamespace

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from scipy.linalg import eigh
from scipy.optimize import linear_sum_assignment
from scipy.stats import multivariate_normal

from metaglasso.datasets import make_synthetic
from metaglasso.metrics import (
    evaluate,
    factor_similarity,
    gaussian_kl_divergence,
    latent_kl_divergence,
    match_components,
    noise_error,
    space_alignment,
)

# Tolerances used below, in one place.
EXACT = 1e-12  # identities that hold to rounding (unit-order quantities)
KL_RTOL = 1e-10  # KL divergence against the generalized-eigenvalue closed form
MC_SE = 5.0  # Monte-Carlo check: allowed deviation in standard errors


@pytest.fixture(scope="module")
def synthetic():
    _, truth = make_synthetic(40, 50, 4, 5, random_state=3)
    return truth


def random_spd(rng, m, *, ridge=0.5):
    A = rng.standard_normal((m, m + 2))
    return A @ A.T / (m + 2) + ridge * np.eye(m)


def orthonormal_rows(rng, m, v):
    return np.linalg.qr(rng.standard_normal((v, m)))[0].T


def as_estimate(components, covariances, noise_variances=None, *, precisions_only=False):
    est = SimpleNamespace(components_=components, noise_variances_=noise_variances)
    if precisions_only:
        est.precisions_ = np.linalg.inv(covariances)
    else:
        est.covariances_ = covariances
    return est


# ---------------------------------------------------------------------------------------------
# identities


def test_identity_estimate_is_perfect(synthetic):
    t = synthetic
    M = t.components.shape[0]
    est = as_estimate(t.components.copy(), t.covariances.copy(), t.noise_variances.copy())
    scores = evaluate(t, est)
    assert abs(scores["space"] - M) <= EXACT
    assert abs(scores["dist"] - 1.0) <= EXACT
    assert abs(scores["kld"]) <= EXACT
    assert scores["eps"] == 0.0
    perm, signs = match_components(t.components, t.components)
    assert_array_equal(perm, np.arange(M))
    assert_array_equal(signs, np.ones(M))


def test_precisions_only_estimate_gives_the_same_scores(synthetic):
    t = synthetic
    rng = np.random.default_rng(0)
    M = t.components.shape[0]
    covs = np.stack([random_spd(rng, M) for _ in range(t.covariances.shape[0])])
    a = evaluate(t, as_estimate(t.components, covs, t.noise_variances + 0.01))
    b = evaluate(t, as_estimate(t.components, covs, t.noise_variances + 0.01, precisions_only=True))
    assert a.keys() == b.keys() == {"space", "eps", "dist", "kld"}
    for key in a:
        assert abs(a[key] - b[key]) <= 1e-10 * max(1.0, abs(a[key])), key
    assert abs(a["eps"] - 0.01) <= EXACT


def test_missing_noise_variances_give_nan_eps(synthetic):
    t = synthetic
    scores = evaluate(t, as_estimate(t.components, t.covariances, None))
    assert np.isnan(scores["eps"])
    assert abs(scores["dist"] - 1.0) <= EXACT


def test_rotation_by_small_angle_keeps_space_and_gives_dist_cos_theta():
    # Two true factors t1 = e0, t2 = e1; the estimate rotates them by θ < 45° within their span:
    # e1 = cos θ t1 + sin θ t2, e2 = −sin θ t1 + cos θ t2. The greedy matching pairs t_i with e_i
    # (|cos θ| > |sin θ|), so Dist = cos θ, while the subspace is unchanged (Space = 2).
    V = 7
    T = np.eye(V)[:2]
    for theta in (0.1, 0.3, 0.7):
        c, s = np.cos(theta), np.sin(theta)
        E = np.array([c * T[0] + s * T[1], -s * T[0] + c * T[1]])
        perm, signs = match_components(T, E)
        assert_array_equal(perm, [0, 1])
        assert_array_equal(signs, [1.0, 1.0])
        assert abs(space_alignment(T, E) - 2.0) <= EXACT
        assert abs(factor_similarity(T, E) - c) <= EXACT
        assert factor_similarity(T, E) < 1.0


def test_rotation_by_large_angle_swaps_the_factors():
    # For 45° < θ < 90° |sin θ| > |cos θ|: both cross pairs are at the same distance, the tie goes
    # to true factor 0 (paired with e2 = −sin θ t1 + ..., flipped), then t2 takes e1.
    T = np.eye(5)[:2]
    theta = np.deg2rad(60.0)
    c, s = np.cos(theta), np.sin(theta)
    E = np.array([c * T[0] + s * T[1], -s * T[0] + c * T[1]])
    perm, signs = match_components(T, E)
    assert_array_equal(perm, [1, 0])
    assert_array_equal(signs, [-1.0, 1.0])
    assert abs(factor_similarity(T, E) - s) <= EXACT
    assert abs(space_alignment(T, E) - 2.0) <= EXACT


def test_sign_flips_are_undone(synthetic):
    t = synthetic
    M = t.components.shape[0]
    flips = np.array([1.0, -1.0, -1.0, 1.0, -1.0])
    est = as_estimate(flips[:, None] * t.components, t.covariances * np.outer(flips, flips), t.noise_variances)
    perm, signs = match_components(t.components, est.components_)
    assert_array_equal(perm, np.arange(M))
    assert_array_equal(signs, flips)
    scores = evaluate(t, est)
    assert abs(scores["dist"] - 1.0) <= EXACT
    assert abs(scores["kld"]) <= EXACT
    # Without undoing the flips the latent Gaussians differ (the truth has non-zero correlations).
    assert latent_kl_divergence(t.covariances, est.covariances_, np.arange(M), np.ones(M)) > 1e-3


def test_permutation_and_flips_are_recovered(synthetic):
    t = synthetic
    rng = np.random.default_rng(5)
    pi = np.array([3, 0, 4, 1, 2])  # estimated factor j is true factor pi[j]
    flips = np.array([-1.0, 1.0, -1.0, -1.0, 1.0])
    E = flips[:, None] * t.components[pi]
    E = E + 0.01 * rng.standard_normal(E.shape)  # a small perturbation does not change the matching
    covs = t.covariances[:, pi][:, :, pi] * np.outer(flips, flips)
    perm, signs = match_components(t.components, E)
    inverse = np.argsort(pi)
    assert_array_equal(perm, inverse)
    assert_array_equal(signs, flips[inverse])
    assert abs(latent_kl_divergence(t.covariances, covs, perm, signs)) <= EXACT
    assert factor_similarity(t.components, E) > 0.99


def test_matching_is_scale_invariant():
    rng = np.random.default_rng(1)
    T = orthonormal_rows(rng, 4, 12)
    E = T[[2, 0, 3, 1]] + 0.2 * rng.standard_normal((4, 12))
    scales = np.array([0.1, 3.0, 7.0, 0.5])
    a = match_components(T, E)
    b = match_components(T, scales[:, None] * E)
    assert_array_equal(a[0], b[0])
    assert_array_equal(a[1], b[1])
    assert abs(factor_similarity(T, E) - factor_similarity(T, scales[:, None] * E)) <= EXACT


def test_greedy_matching_differs_from_optimal_assignment():
    # |cos| between true (rows) and estimated (columns) factors:
    #   [[0.80, 0.60],
    #    [0.55, 0.05]]
    # Greedy takes the closest pair (t1, e1) first and must then pair t2 with e2 (cos −0.05,
    # flipped); the assignment minimising the total distance pairs (t1, e2) and (t2, e1).
    V = 6
    basis = np.eye(V)
    T = basis[:2]
    e1 = 0.80 * basis[0] + 0.55 * basis[1] + np.sqrt(1 - 0.80**2 - 0.55**2) * basis[2]
    e2 = 0.60 * basis[0] - 0.05 * basis[1] + np.sqrt(1 - 0.60**2 - 0.05**2) * basis[3]
    E = np.array([e1, e2])
    perm, signs = match_components(T, E)
    assert_array_equal(perm, [0, 1])
    assert_array_equal(signs, [1.0, -1.0])
    assert abs(factor_similarity(T, E) - (0.80 + 0.05) / 2) <= EXACT

    cos = T @ E.T
    distance = np.sqrt(2 - 2 * np.abs(cos))
    _, optimal = linear_sum_assignment(distance)
    assert_array_equal(optimal, [1, 0])
    assert distance[[0, 1], optimal].sum() < distance[[0, 1], perm].sum()


def test_greedy_matching_is_deterministic_on_exact_ties():
    # All four pairs at the same distance: the smallest true index, then the smallest estimated
    # index, wins; orthogonal partners keep sign +1.
    T = np.eye(4)[:2]
    E = np.array([[1.0, 1.0, 0.0, 0.0], [1.0, -1.0, 0.0, 0.0]]) / np.sqrt(2)
    perm, signs = match_components(T, E)
    assert_array_equal(perm, [0, 1])
    assert_array_equal(signs, [1.0, -1.0])
    T = np.eye(4)[:2]
    E = np.eye(4)[2:]
    perm, signs = match_components(T, E)
    assert_array_equal(perm, [0, 1])
    assert_array_equal(signs, [1.0, 1.0])


# ---------------------------------------------------------------------------------------------
# Space


def test_space_is_m_for_any_basis_of_the_same_span():
    rng = np.random.default_rng(2)
    T = orthonormal_rows(rng, 5, 30)
    A = rng.standard_normal((5, 5)) + 3 * np.eye(5)  # invertible, not orthogonal
    assert abs(space_alignment(T, A @ T) - 5.0) <= 1e-10


def test_space_equals_sum_of_principal_angle_cosines():
    # span{e0, e1} against span{cos a e0 + sin a e2, e3}: principal cosines (cos a, 0) → Space = cos a.
    basis = np.eye(6)
    a = 0.4
    T = basis[:2]
    E = np.array([np.cos(a) * basis[0] + np.sin(a) * basis[2], basis[3]])
    assert abs(space_alignment(T, E) - np.cos(a)) <= EXACT
    assert abs(space_alignment(T, basis[2:4])) <= EXACT
    # different numbers of factors: the smaller subspace inside the larger one gives its dimension
    assert abs(space_alignment(basis[:3], basis[1:3]) - 2.0) <= EXACT


def test_space_is_bounded_on_random_subspaces():
    rng = np.random.default_rng(4)
    for _ in range(20):
        T = orthonormal_rows(rng, 4, 9)
        E = rng.standard_normal((4, 9))
        value = space_alignment(T, E)
        assert 0.0 <= value <= 4.0 + EXACT


# ---------------------------------------------------------------------------------------------
# Eps


def test_noise_error_is_mean_absolute_difference():
    assert noise_error([0.1, 0.2, 0.3], [0.15, 0.1, 0.3]) == pytest.approx((0.05 + 0.1 + 0.0) / 3, abs=EXACT)


# ---------------------------------------------------------------------------------------------
# KLD


def test_kl_divergence_matches_generalized_eigenvalue_form():
    # KL(N(0,P) ‖ N(0,Q)) = ½ Σ_i (λ_i − 1 − log λ_i), λ the eigenvalues of Q⁻¹P.
    rng = np.random.default_rng(6)
    for m in (1, 2, 5, 10):
        P = np.stack([random_spd(rng, m) for _ in range(3)])
        Q = np.stack([random_spd(rng, m) for _ in range(3)])
        expected = [0.5 * np.sum(lam - 1 - np.log(lam)) for lam in (eigh(p, q, eigvals_only=True) for p, q in zip(P, Q))]
        assert_allclose(gaussian_kl_divergence(P, Q), expected, rtol=KL_RTOL, atol=1e-14)
        assert_allclose(
            latent_kl_divergence(P, Q, np.arange(m), np.ones(m)), np.mean(expected), rtol=KL_RTOL
        )


def test_kl_divergence_direction_and_entropy_against_scipy_monte_carlo():
    # KL(p ‖ q) = E_p[log p(x) − log q(x)], estimated with scipy's log-densities; the direction
    # (truth first) matters since KL is not symmetric.
    rng = np.random.default_rng(7)
    m = 4
    P, Q = random_spd(rng, m), 3.0 * random_spd(rng, m)  # different scales: KL clearly asymmetric
    p, q = multivariate_normal(np.zeros(m), P), multivariate_normal(np.zeros(m), Q)
    x = p.rvs(size=400_000, random_state=rng)
    diff = p.logpdf(x) - q.logpdf(x)
    estimate, se = diff.mean(), diff.std() / np.sqrt(x.shape[0])
    kl_pq = gaussian_kl_divergence(P, Q)[0]
    kl_qp = gaussian_kl_divergence(Q, P)[0]
    assert abs(kl_pq - estimate) <= MC_SE * se
    assert abs(kl_qp - estimate) > 10 * MC_SE * se  # the reverse direction is clearly rejected
    # KL = cross-entropy − entropy, the entropy from scipy
    cross = -np.mean(q.logpdf(x))
    assert abs(kl_pq - (cross - p.entropy())) <= MC_SE * np.std(q.logpdf(x)) / np.sqrt(x.shape[0])


def test_kl_of_equal_gaussians_is_zero_and_positive_otherwise():
    rng = np.random.default_rng(8)
    P = random_spd(rng, 6)
    assert abs(gaussian_kl_divergence(P, P)[0]) <= EXACT
    assert gaussian_kl_divergence(P, P + 0.1 * np.eye(6))[0] > 0


def test_latent_kl_applies_permutation_and_signs():
    rng = np.random.default_rng(9)
    S = random_spd(rng, 3)
    perm = np.array([2, 0, 1])
    signs = np.array([1.0, -1.0, 1.0])
    # est[perm[i], perm[j]] * s_i * s_j must reproduce S
    est = np.empty_like(S)
    est[np.ix_(perm, perm)] = S * np.outer(signs, signs)
    assert abs(latent_kl_divergence(S, est, perm, signs)) <= EXACT
    assert latent_kl_divergence(S, est, np.arange(3), np.ones(3)) > 1e-3


# ---------------------------------------------------------------------------------------------
# validation

TRUTH_3 = SimpleNamespace(components=np.eye(3), covariances=np.eye(3)[None], noise_variances=np.ones(1))


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: match_components(np.eye(3), np.eye(4)[:3]), r"components_est must have n_features=3 columns; got shape \(3, 4\)"),
        (lambda: match_components(np.eye(3), np.eye(3)[:2]), r"components_est must have n_components=3 rows; got shape \(2, 3\)"),
        (lambda: match_components(np.eye(3)[0], np.eye(3)), r"components_true must be a non-empty 2-D array .*got shape \(3,\)"),
        (lambda: match_components(np.eye(3), np.diag([1.0, np.nan, 1.0])), r"components_est contains NaN or infinite"),
        (lambda: match_components(np.eye(3), np.diag([1.0, 0.0, 1.0])), r"components_est has an all-zero row \(factor 1\)"),
        (lambda: match_components(np.eye(2), [["a", "b"], ["c", "d"]]), r"components_est must be numeric"),
        (lambda: space_alignment(np.eye(4)[:2], np.array([[1.0, 0, 0, 0], [2.0, 0, 0, 0]])), r"components_est must have linearly independent rows"),
        (lambda: noise_error([0.1, 0.2], [0.1]), r"noise_variances_est must have shape \(2,\) like noise_variances_true; got shape \(1,\)"),
        (lambda: noise_error([0.1, np.inf], [0.1, 0.2]), r"noise_variances_true contains NaN or infinite"),
        (lambda: noise_error([], []), r"noise_variances_true must be a non-empty 1-D array"),
        (lambda: gaussian_kl_divergence(np.eye(2), np.eye(3)), r"covariances_q must have shape \(1, 2, 2\)"),
        (lambda: gaussian_kl_divergence(np.eye(2), np.diag([1.0, -1.0])), r"covariances_q\[0\] must be positive definite"),
        (lambda: gaussian_kl_divergence(np.eye(2), [[1.0, 0.5], [0.0, 1.0]]), r"covariances_q\[0\] must be symmetric"),
        (lambda: gaussian_kl_divergence(np.ones((2, 3)), np.ones((2, 3))), r"covariances_p must be a square matrix"),
        (lambda: latent_kl_divergence(np.eye(3), np.eye(3), [0, 0, 1], np.ones(3)), r"permutation must be a permutation of 0..2; got \[0, 0, 1\]"),
        (lambda: latent_kl_divergence(np.eye(3), np.eye(3), [0.0, 1.0, 2.0], np.ones(3)), r"permutation must be an integer array of shape \(3,\)"),
        (lambda: latent_kl_divergence(np.eye(3), np.eye(3), [0, 1, 2], [1, 0, 1]), r"signs must be an array of shape \(3,\) with entries \+1 or -1"),
        (lambda: factor_similarity(np.eye(3), np.eye(3), permutation=[0, 1, 2]), r"permutation and signs must be given together"),
        (lambda: evaluate(SimpleNamespace(components=np.eye(3)), object()), r"estimate must have a components_ .*or components .*got object"),
        (lambda: evaluate(TRUTH_3, SimpleNamespace(components_=np.eye(3))), r"estimate has neither covariances_ nor precisions_"),
        (lambda: evaluate(TRUTH_3, SimpleNamespace(components_=np.eye(3), covariances_=np.stack([np.eye(3)] * 2))),
         r"estimate covariances have shape \(2, 3, 3\); expected \(1, 3, 3\)"),
    ],
)
def test_bad_input_raises_value_error_naming_argument(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_inputs_not_modified(synthetic):
    t = synthetic
    rng = np.random.default_rng(10)
    E = t.components + 0.05 * rng.standard_normal(t.components.shape)
    covs = t.covariances + 0.01 * np.eye(t.covariances.shape[1])
    before = (E.copy(), covs.copy(), t.components.copy(), t.covariances.copy())
    evaluate(t, as_estimate(E, covs, t.noise_variances))
    for a, b in zip(before, (E, covs, t.components, t.covariances)):
        assert_array_equal(a, b)
