"""Per-dataset penalties ρ_k, the paper's penalised diagonal and the canonical form of an answer
in the pure-NumPy reference (metaglasso.reference).

Ground truth is computed here independently of the reference's internals: covariances by
``np.cov(..., bias=True)``, ε_k by eq. 16, the graphical-lasso subgradient conditions, central
finite differences of f, and the canonical-form rules written out entry by entry. None of these
tests uses the C++ core.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from metaglasso import reference as ref
from test_reference import directional_derivatives

RHO = (0.02, 0.1, 0.3)
SIZES = (60, 150, 400)
V, M = 20, 4


def make_data(sizes=SIZES, n_features=V, n_components=M, seed=1, noise=0.3):
    """Datasets sharing M latent factors, each with its own sparse latent precision and scale."""
    rng = np.random.default_rng(seed)
    D = ref.polar_retraction(rng.standard_normal((n_features, n_components)))
    Xs = []
    for k, n in enumerate(sizes):
        Lam = np.eye(n_components)
        Lam[0, 1] = Lam[1, 0] = 0.6 if k % 2 else -0.6
        if n_components >= 4:
            Lam[2, 3] = Lam[3, 2] = 0.5
        scale = np.diag(np.sqrt(2.0 + k + np.arange(n_components)))
        Sigma = scale @ np.linalg.inv(Lam) @ scale
        Z = rng.multivariate_normal(np.zeros(n_components), Sigma, size=n)
        Xs.append(Z @ D.T + noise * rng.standard_normal((n, n_features)) + rng.standard_normal(n_features))
    return Xs


@pytest.fixture(scope="module")
def data():
    return make_data()


def kkt_violation(Sigma, A, Lam, rho, penalize_diagonal):
    """Largest violation of the graphical lasso subgradient conditions of min tr(ΛA) − log|Λ| + ρ‖Λ‖₁.

    With R = Σ − A: R_ij = ρ sign(Λ_ij) where Λ_ij ≠ 0 (i ≠ j), |R_ij| <= ρ where Λ_ij = 0
    (i ≠ j), and R_jj = ρ (diagonal penalised) or 0.
    """
    R = Sigma - A
    off = ~np.eye(A.shape[0], dtype=bool)
    nonzero = off & (Lam != 0)
    zero = off & (Lam == 0)
    viol = [float(np.max(np.abs(np.diag(R) - (rho if penalize_diagonal else 0.0))))]
    if nonzero.any():
        viol.append(float(np.max(np.abs(R[nonzero] - rho * np.sign(Lam[nonzero])))))
    if zero.any():
        viol.append(max(0.0, float(np.max(np.abs(R[zero]))) - rho))
    return max(viol)


def random_answer(rng, n_features, n_components, n_datasets):
    """An orthonormal D and K random positive definite Λ_k with Σ_k = Λ_k⁻¹."""
    D = ref.polar_retraction(rng.standard_normal((n_features, n_components)))
    precisions, covariances = [], []
    for _ in range(n_datasets):
        B = rng.standard_normal((n_components, n_components))
        P = B @ B.T / n_components + np.diag(rng.uniform(0.2, 2.0, n_components))
        precisions.append(P)
        covariances.append(np.linalg.inv(P))
    return D, np.array(precisions), np.array(covariances)


# ---------------------------------------------------------------------------------------------
# Per-dataset penalties in the model
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("penalize_diagonal", [True, False])
def test_per_dataset_kkt_at_the_fitted_projection(data, penalize_diagonal):
    """Each Λ_k at the fitted D solves its own graphical lasso with its own ρ_k (to 1e-8), and
    ε_k is eq. 16 (to 1e-12 relative); another dataset's ρ violates the conditions."""
    res = ref.fit_lbfgs(data, ref.pca_initial_projection(data, M), RHO, tol=1e-10,
                        penalize_diagonal=penalize_diagonal)
    assert res.converged
    D = res.components
    np.testing.assert_allclose(D.T @ D, np.eye(M), rtol=0, atol=1e-12)
    saw_zero = False
    for k, X in enumerate(data):
        S = np.cov(X.T, bias=True)
        A = D.T @ S @ D
        Lam, Sigma = res.precisions[k], res.covariances[k]
        off = ~np.eye(M, dtype=bool)
        assert np.any(Lam[off] != 0)  # the equality condition off the diagonal is exercised
        saw_zero |= bool(np.any(Lam[off] == 0))
        assert kkt_violation(Sigma, A, Lam, RHO[k], penalize_diagonal) <= 1e-8
        for j in range(len(data)):
            if j != k:
                assert kkt_violation(Sigma, A, Lam, RHO[j], penalize_diagonal) > 1e-3
        expected_eps = (np.trace(S) - np.trace(A)) / (V - M)
        assert abs(res.noise_variances[k] - expected_eps) <= 1e-12 * expected_eps
    assert saw_zero  # the inequality condition is exercised too


@pytest.mark.parametrize("penalize_diagonal", [True, False])
def test_gradient_with_per_dataset_alpha_matches_finite_differences(data, penalize_diagonal):
    D = ref.random_initial_projection(V, M, seed=3)
    kw = {"penalize_diagonal": penalize_diagonal, "glasso_tol": 1e-14}
    f, grad, precisions, _ = ref.profile_objective(data, D, RHO, **kw)
    off = ~np.eye(M, dtype=bool)
    assert any(np.any(P[off] == 0) for P in precisions)  # the sparse path is exercised
    _, grad_scalar, _, _ = ref.profile_objective(data, D, 0.1, **kw)
    worst_scalar = 0.0
    for xi, numeric in directional_derivatives(data, D, RHO, grad, precisions, kw, n_random=3):
        analytic = float(np.sum(grad * xi))
        assert abs(numeric - analytic) <= 1e-6 * abs(analytic)
        worst_scalar = max(worst_scalar, abs(numeric - float(np.sum(grad_scalar * xi))) / abs(numeric))
    # the gradient of a single ρ is not the gradient of f with the ρ_k (the check can fail)
    assert worst_scalar > 1e-4


@pytest.mark.parametrize("penalize_diagonal", [True, False])
def test_objective_dense_with_per_dataset_alpha_equals_profile(data, penalize_diagonal):
    D = ref.random_initial_projection(V, M, seed=8)
    f, _, precisions, noise = ref.profile_objective(data, D, RHO, penalize_diagonal=penalize_diagonal)
    dense = ref.objective_dense(data, D, precisions, noise, RHO, penalize_diagonal=penalize_diagonal)
    assert abs(f - dense) <= 1e-10 * abs(dense)
    # and the penalty term really is Σ_k ρ_k ‖Λ_k‖₁ (a different ρ_k changes E by the difference)
    l1 = [np.abs(P).sum() - (0.0 if penalize_diagonal else np.abs(np.diag(P)).sum()) for P in precisions]
    other = ref.objective_dense(data, D, precisions, noise, RHO[::-1], penalize_diagonal=penalize_diagonal)
    expected = sum((b - a) * n for a, b, n in zip(RHO, RHO[::-1], l1))
    assert abs((other - dense) - expected) <= 1e-10 * abs(dense)
    assert abs(expected) > 1e-3


def test_default_penalises_the_diagonal(data):
    """The model-level default is the paper's ‖Λ‖₁ over all entries; the plain graphical lasso
    keeps scikit-learn's unpenalised diagonal."""
    D = ref.random_initial_projection(V, M, seed=8)
    default = ref.profile_objective(data, D, RHO)
    explicit = ref.profile_objective(data, D, RHO, penalize_diagonal=True)
    off = ref.profile_objective(data, D, RHO, penalize_diagonal=False)
    assert default[0] == explicit[0] and np.array_equal(default[2], explicit[2])
    assert abs(default[0] - off[0]) > 1e-3
    A = D.T @ np.cov(data[0].T, bias=True) @ D
    cov, _ = ref.graphical_lasso(A, 0.1)
    np.testing.assert_allclose(np.diag(cov), np.diag(A), rtol=1e-12, atol=0)


@pytest.mark.parametrize("make_vector", [list, tuple, np.array])
def test_equal_per_dataset_alpha_is_bitwise_the_scalar(data, make_vector):
    rho = 0.07
    vector = make_vector([rho] * len(data))
    D0 = ref.pca_initial_projection(data, M)

    a = ref.fit_adam(data, D0, rho, max_iter=3, tol=0, learning_rate=1e-2, batch_size=2, seed=4)
    b = ref.fit_adam(data, D0, vector, max_iter=3, tol=0, learning_rate=1e-2, batch_size=2, seed=4)
    c = ref.fit_lbfgs(data, D0, rho, max_iter=15)
    d = ref.fit_lbfgs(data, D0, vector, max_iter=15)
    for x, y in ((a, b), (c, d)):
        assert np.array_equal(x.components, y.components)
        assert np.array_equal(x.precisions, y.precisions)
        assert np.array_equal(x.covariances, y.covariances)
        assert np.array_equal(x.noise_variances, y.noise_variances)
        assert np.array_equal(np.array(x.objective_history), np.array(y.objective_history))
        assert x.objective == y.objective and x.gradient_norm == y.gradient_norm
    f1, g1, p1, e1 = ref.profile_objective(data, D0, rho)
    f2, g2, p2, e2 = ref.profile_objective(data, D0, vector)
    assert f1 == f2 and np.array_equal(g1, g2) and np.array_equal(p1, p2) and np.array_equal(e1, e2)
    assert ref.objective_dense(data, D0, p1, e1, rho) == ref.objective_dense(data, D0, p1, e1, vector)
    # a different vector changes the answer (the comparison can fail)
    e = ref.fit_lbfgs(data, D0, RHO, max_iter=15)
    assert not np.array_equal(c.components, e.components)


BAD_ALPHAS = [
    ([0.1, 0.2], "alpha must be a scalar or hold one value per dataset (3); got 2"),
    ([0.1, 0.2, 0.3, 0.4], "alpha must be a scalar or hold one value per dataset (3); got 4"),
    ([0.1, 0.2, -0.1], "alpha[2] must be finite and >= 0; got -0.1"),
    (np.array([0.1, np.nan, 0.3]), "alpha[1] must be finite and >= 0; got nan"),
    ([np.inf, 0.2, 0.3], "alpha[0] must be finite and >= 0; got inf"),
    (-0.5, "alpha must be finite and >= 0; got -0.5"),
    (float("nan"), "alpha must be finite and >= 0; got nan"),
    (np.ones((3, 1)), "alpha must be a scalar or hold one value per dataset (3); got an array of shape (3, 1)"),
]


@pytest.mark.parametrize("function", ["profile_objective", "objective_dense", "fit_adam", "fit_lbfgs"])
def test_alpha_validation(data, function):
    D = ref.random_initial_projection(V, M, seed=2)
    _, _, precisions, noise = ref.profile_objective(data, D, 0.1)
    calls = {
        "profile_objective": lambda alpha: ref.profile_objective(data, D, alpha),
        "objective_dense": lambda alpha: ref.objective_dense(data, D, precisions, noise, alpha),
        "fit_adam": lambda alpha: ref.fit_adam(data, D, alpha, max_iter=1),
        "fit_lbfgs": lambda alpha: ref.fit_lbfgs(data, D, alpha, max_iter=1),
    }
    for alpha, message in BAD_ALPHAS:
        with pytest.raises(ValueError) as excinfo:
            calls[function](alpha)
        assert str(excinfo.value) == message
    calls[function]([0.0, 0.1, 0.2])  # valid values pass


# ---------------------------------------------------------------------------------------------
# scaled_penalties
# ---------------------------------------------------------------------------------------------


def test_scaled_penalties_closed_form():
    # N = (20, 80, 200): N̄ = 100, so ρ_k = α √(100 / N_k) = α (√5, √1.25, √0.5)
    rho = ref.scaled_penalties(0.1, [20, 80, 200])
    assert rho.shape == (3,) and rho.dtype == np.float64
    np.testing.assert_allclose(rho, 0.1 * np.sqrt([5.0, 1.25, 0.5]), rtol=1e-15, atol=0)
    # ρ_k √N_k is the same for every dataset, and the datasets of mean size get alpha
    np.testing.assert_allclose(rho * np.sqrt([20, 80, 200]), np.full(3, 0.1 * 10.0), rtol=1e-15)
    rho4 = ref.scaled_penalties(0.3, [50, 100, 150])
    assert rho4[1] == 0.3
    assert rho4[0] > 0.3 > rho4[2]


def test_scaled_penalties_equal_sizes_and_vector_alpha():
    assert np.array_equal(ref.scaled_penalties(0.07, [123, 123, 123, 123]), np.full(4, 0.07))
    assert np.array_equal(ref.scaled_penalties([0.01, 0.2, 0.07], np.array([9, 9, 9])), [0.01, 0.2, 0.07])
    sizes = [30, 120, 480]
    scalar = ref.scaled_penalties(0.1, sizes)
    vector = ref.scaled_penalties([0.1, 0.1, 0.1], sizes)
    assert np.array_equal(scalar, vector)
    mixed = ref.scaled_penalties([0.1, 0.2, 0.4], sizes)
    np.testing.assert_allclose(mixed, scalar * [1.0, 2.0, 4.0], rtol=1e-15, atol=0)
    # the N̄ of the rule is the arithmetic mean (210 here), not e.g. the geometric one (120)
    np.testing.assert_allclose(scalar, 0.1 * np.sqrt(210.0 / np.array(sizes)), rtol=1e-15, atol=0)


@pytest.mark.parametrize(
    "alpha, n_samples, message",
    [
        (0.1, [100, 0], "n_samples[1] must be a positive integer; got 0"),
        (0.1, [100, -5, 3], "n_samples[1] must be a positive integer; got -5"),
        (0.1, [100, 50.5], "n_samples[1] must be a positive integer; got 50.5"),
        ([0.1, 0.2, 0.3], [100, 50], "alpha must be a scalar or hold one value per dataset (2); got 3"),
        ([0.1, -0.2], [100, 50], "alpha[1] must be finite and >= 0; got -0.2"),
        (float("nan"), [100, 50], "alpha must be finite and >= 0; got nan"),
    ],
)
def test_scaled_penalties_validation(alpha, n_samples, message):
    with pytest.raises(ValueError) as excinfo:
        ref.scaled_penalties(alpha, n_samples)
    assert str(excinfo.value) == message
    with pytest.raises(ValueError, match="n_samples"):
        ref.scaled_penalties(0.1, [])


# ---------------------------------------------------------------------------------------------
# canonical_form
# ---------------------------------------------------------------------------------------------


def test_canonical_form_follows_the_rules():
    non_identity, negative = False, False
    for seed in range(6):
        rng = np.random.default_rng(seed)
        D, P, C = random_answer(rng, 12, 5, 3)
        D_in, P_in, C_in = D.copy(), P.copy(), C.copy()
        Dc, Pc, Cc, order, signs = ref.canonical_form(D, P, C)
        # the inputs are not modified
        assert np.array_equal(D, D_in) and np.array_equal(P, P_in) and np.array_equal(C, C_in)
        # order: decreasing v_j = Σ_k Σ_k[j, j], ties to the lower index
        v = [sum(C[k, j, j] for k in range(3)) for j in range(5)]
        assert list(order) == sorted(range(5), key=lambda j: (-v[j], j))
        v_new = [sum(Cc[k, i, i] for k in range(3)) for i in range(5)]
        assert all(v_new[i] >= v_new[i + 1] for i in range(4))
        # signs: ±1, the entry of largest |.| (first row on a tie) positive
        assert set(signs.tolist()) <= {1.0, -1.0}
        for i in range(5):
            col = Dc[:, i]
            top = max(abs(x) for x in col)
            first = next(r for r in range(12) if abs(col[r]) == top)
            assert col[first] > 0
            assert np.array_equal(col, signs[i] * D[:, order[i]])
        # Λ_k and Σ_k entry by entry
        for k, a, b in itertools.product(range(3), range(5), range(5)):
            assert Pc[k, a, b] == signs[a] * signs[b] * P[k, order[a], order[b]]
            assert Cc[k, a, b] == signs[a] * signs[b] * C[k, order[a], order[b]]
        non_identity |= list(order) != list(range(5))
        negative |= bool(np.any(signs < 0))
    assert non_identity and negative  # both rules did something


def test_canonical_form_is_idempotent_and_undoes_permutations_and_flips():
    rng = np.random.default_rng(11)
    D, P, C = random_answer(rng, 15, 4, 2)
    Dc, Pc, Cc, _, _ = ref.canonical_form(D, P, C)
    D2, P2, C2, order2, signs2 = ref.canonical_form(Dc, Pc, Cc)
    assert np.array_equal(D2, Dc) and np.array_equal(P2, Pc) and np.array_equal(C2, Cc)
    assert np.array_equal(order2, np.arange(4)) and np.array_equal(signs2, np.ones(4))
    for trial in range(5):
        perm = rng.permutation(4)
        if np.array_equal(perm, np.arange(4)):
            perm = perm[::-1].copy()
        flips = rng.choice([-1.0, 1.0], size=4)
        flips[trial % 4] = -1.0
        Dm = Dc[:, perm] * flips
        Pm = Pc[:, perm][:, :, perm] * np.outer(flips, flips)
        Cm = Cc[:, perm][:, :, perm] * np.outer(flips, flips)
        Db, Pb, Cb, order, signs = ref.canonical_form(Dm, Pm, Cm)
        assert np.array_equal(Db, Dc) and np.array_equal(Pb, Pc) and np.array_equal(Cb, Cc)
        assert np.array_equal(order, np.argsort(perm))
        assert np.array_equal(signs, flips[order])


def test_canonical_form_leaves_the_model_invariant(data):
    D = ref.random_initial_projection(V, M, seed=13)
    f, g, P, eps = ref.profile_objective(data, D, RHO)
    C = np.linalg.inv(P)
    Dc, Pc, Cc, order, signs = ref.canonical_form(D, P, C)
    assert list(order) != list(range(M)) or np.any(signs < 0)  # not the identity
    fc, gc, Pc_fit, eps_c = ref.profile_objective(data, Dc, RHO)
    assert abs(fc - f) <= 1e-10 * abs(f)
    np.testing.assert_allclose(eps_c, eps, rtol=1e-10, atol=0)
    # the refitted Λ_k at the new D are the transformed ones, and G → G P S
    np.testing.assert_allclose(Pc_fit, Pc, rtol=0, atol=1e-9 * np.abs(Pc).max())
    np.testing.assert_allclose(gc, g[:, order] * signs, rtol=0, atol=1e-9 * np.abs(g).max())
    dense = ref.objective_dense(data, Dc, Pc, eps, RHO)
    assert abs(dense - f) <= 1e-10 * abs(f)


def test_canonical_form_ties():
    # v = (1, 3, 1, 3): factors 1 and 3 first, each tie in its original order
    C = np.array([np.diag([0.5, 1.0, 0.25, 2.0]), np.diag([0.5, 2.0, 0.75, 1.0])])
    P = np.array([np.linalg.inv(c) for c in C])
    H = 0.5 * np.array([[1, 1, 1, 1], [1, -1, 1, -1], [1, 1, -1, -1], [1, -1, -1, 1]], dtype=float)
    # every entry of H has |.| = 0.5: the first row decides each sign
    D = H * np.array([1.0, -1.0, 1.0, -1.0])
    Dc, Pc, Cc, order, signs = ref.canonical_form(D, P, C)
    assert list(order) == [1, 3, 0, 2]
    assert list(signs) == [-1.0, -1.0, 1.0, 1.0]
    np.testing.assert_array_equal(Dc, H[:, [1, 3, 0, 2]])
    np.testing.assert_array_equal(Cc[0], np.diag([1.0, 2.0, 0.5, 0.25]))
    # all v equal: the original order is kept
    same = np.array([np.eye(4), 2 * np.eye(4)])
    _, _, _, order_eq, signs_eq = ref.canonical_form(H, same, same)
    assert list(order_eq) == [0, 1, 2, 3] and list(signs_eq) == [1.0] * 4


def test_canonical_form_validates_shapes():
    D, P, C = random_answer(np.random.default_rng(0), 6, 3, 2)
    with pytest.raises(ValueError, match="precisions"):
        ref.canonical_form(D, P[:, :2, :2], C)
    with pytest.raises(ValueError, match="covariances"):
        ref.canonical_form(D, P, C[0])
    with pytest.raises(ValueError, match="components"):
        ref.canonical_form(D[:, 0], P, C)


# ---------------------------------------------------------------------------------------------
# Fits return the canonical form
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("solver", ["adam", "lbfgs"])
def test_fit_results_are_canonical(data, solver):
    # Start from the PCA start with its columns reversed and signs flipped: not canonical.
    D0 = ref.pca_initial_projection(data, M)[:, ::-1] * np.array([-1.0, 1.0, -1.0, 1.0])
    _, _, P0, _ = ref.profile_objective(data, D0, RHO)
    _, _, _, order0, signs0 = ref.canonical_form(D0, P0, np.linalg.inv(P0))
    assert list(order0) != list(range(M)) and np.any(signs0 < 0)
    if solver == "adam":
        res = ref.fit_adam(data, D0, RHO, max_iter=2, tol=0, learning_rate=1e-3)
    else:
        res = ref.fit_lbfgs(data, D0, RHO, tol=1e-10)
        assert res.converged
    Dc, Pc, Cc, order, signs = ref.canonical_form(res.components, res.precisions, res.covariances)
    assert np.array_equal(order, np.arange(M)) and np.array_equal(signs, np.ones(M))
    assert np.array_equal(Dc, res.components) and np.array_equal(Pc, res.precisions)
    assert np.array_equal(Cc, res.covariances)
    # the canonical D, Λ_k, Σ_k and ε_k belong together and f is that of the returned D
    f, _, P, eps = ref.profile_objective(data, res.components, RHO)
    assert abs(res.objective - f) <= 1e-10 * abs(f)
    np.testing.assert_allclose(res.noise_variances, eps, rtol=1e-10, atol=0)
    np.testing.assert_allclose(res.precisions, P, rtol=0, atol=1e-9 * np.abs(P).max())
    for Lam, Sigma in zip(res.precisions, res.covariances):
        np.testing.assert_allclose(Lam @ Sigma, np.eye(M), rtol=0, atol=1e-10)
    if solver == "adam":
        # two small steps from D0: factor i of the result is D0's factor order0[i], sign signs0[i]
        overlap = np.abs(res.components.T @ D0[:, order0] * signs0 - np.eye(M)).max()
        assert overlap <= 0.05
