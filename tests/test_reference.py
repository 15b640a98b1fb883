"""Tests of the pure-NumPy reference implementation (metaglasso.reference).

These check the reference against the paper's identities and against independent
implementations (dense Φ_k, scipy's polar decomposition, scikit-learn's graphical lasso,
finite differences); none of them uses the C++ core.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from metaglasso import reference as ref

# ---------------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------------


def make_datasets(V=15, M=3, K=3, N=200, noise=0.3, seed=0):
    """K datasets sharing M latent factors with a sparse, dataset-specific precision."""
    rng = np.random.default_rng(seed)
    D = ref.polar_retraction(rng.standard_normal((V, M)))
    Xs = []
    for k in range(K):
        Lam = 2.0 * np.eye(M)
        Lam[0, 1] = Lam[1, 0] = 0.6 if k % 2 else -0.6
        Sigma = np.linalg.inv(Lam) * (3.0 + k)
        Z = rng.multivariate_normal(np.zeros(M), Sigma, size=N)
        X = Z @ D.T + noise * rng.standard_normal((N, V)) + rng.standard_normal(V)
        Xs.append(X)
    return Xs, D


def random_covariance(p, n, rng):
    X = rng.standard_normal((n, p)) @ (np.eye(p) + 0.3 * rng.standard_normal((p, p)))
    return np.cov(X.T, bias=True)


def glasso_kkt_residual(S, alpha, precision, penalize_diagonal):
    """Largest violation of the graphical lasso optimality conditions.

    With W = Θ⁻¹: Wᵢⱼ − Sᵢⱼ = ρ sign(Θᵢⱼ) where Θᵢⱼ ≠ 0 and |Wᵢⱼ − Sᵢⱼ| <= ρ where Θᵢⱼ = 0
    (off the diagonal); Wᵢᵢ = Sᵢᵢ (+ ρ when the diagonal is penalised).
    """
    p = S.shape[0]
    W = np.linalg.inv(precision)
    R = W - S
    off = ~np.eye(p, dtype=bool)
    nonzero = off & (precision != 0)
    zero = off & (precision == 0)
    viol = [np.max(np.abs(np.diag(R) - (alpha if penalize_diagonal else 0.0)))]
    if nonzero.any():
        viol.append(np.max(np.abs(R[nonzero] - alpha * np.sign(precision[nonzero]))))
    if zero.any():
        viol.append(max(0.0, np.max(np.abs(R[zero]) - alpha)))
    return float(max(viol))


# ---------------------------------------------------------------------------------------------
# Random numbers
# ---------------------------------------------------------------------------------------------


def test_splitmix64_reference_values():
    rng = ref.SplitMix64(1234567)
    assert rng.next() == 6457827717110365317
    assert rng.next() == 3203168211198807973
    # uniform() is the top 53 bits of next()
    a, b = ref.SplitMix64(99), ref.SplitMix64(99)
    for _ in range(5):
        u = a.uniform()
        assert u == (b.next() >> 11) * 2.0**-53
        assert 0.0 <= u < 1.0
    # the state wraps modulo 2**64
    assert ref.SplitMix64(2**64 + 5).next() == ref.SplitMix64(5).next()


@pytest.mark.parametrize("n", [0, 1, 2, 7, 50])
def test_permutation_is_a_deterministic_permutation(n):
    p1 = ref.SplitMix64(42).permutation(n)
    p2 = ref.SplitMix64(42).permutation(n)
    assert p1 == p2
    assert sorted(p1) == list(range(n))


def test_permutation_is_fisher_yates():
    draws = ref.SplitMix64(7)
    expected = list(range(6))
    for i in range(5, 0, -1):
        j = draws.next() % (i + 1)
        expected[i], expected[j] = expected[j], expected[i]
    assert ref.SplitMix64(7).permutation(6) == expected
    assert ref.SplitMix64(7).permutation(30) != ref.SplitMix64(8).permutation(30)


def test_random_initial_projection_fills_column_by_column():
    V, M, seed = 9, 4, 2024
    rng = ref.SplitMix64(seed)
    Z = np.array([[rng.uniform() for _ in range(V)] for _ in range(M)]).T  # column j from draws j*V..
    D = ref.random_initial_projection(V, M, seed)
    np.testing.assert_allclose(D, ref.polar_retraction(Z), rtol=0, atol=1e-14)
    np.testing.assert_allclose(D.T @ D, np.eye(M), rtol=0, atol=1e-12)
    assert not np.allclose(D, ref.random_initial_projection(V, M, seed + 1))
    with pytest.raises(ValueError):
        ref.random_initial_projection(4, 4, 0)


# ---------------------------------------------------------------------------------------------
# Stiefel manifold pieces
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(5, 1), (12, 3), (30, 7), (6, 6)])
def test_polar_retraction(shape):
    scipy_linalg = pytest.importorskip("scipy.linalg")
    Z = np.random.default_rng(3).standard_normal(shape)
    D = ref.polar_retraction(Z)
    np.testing.assert_allclose(D.T @ D, np.eye(shape[1]), rtol=0, atol=1e-12)
    U, _ = scipy_linalg.polar(Z)
    np.testing.assert_allclose(D, U, rtol=0, atol=1e-12)
    # a point of the manifold is left where it is
    np.testing.assert_allclose(ref.polar_retraction(D), D, rtol=0, atol=1e-12)


def test_polar_retraction_rejects_rank_deficient():
    Z = np.ones((5, 2))
    with pytest.raises(FloatingPointError):
        ref.polar_retraction(Z)


def test_riemannian_gradient_is_the_tangent_projection():
    rng = np.random.default_rng(4)
    D = ref.polar_retraction(rng.standard_normal((10, 3)))
    G = rng.standard_normal((10, 3))
    R = ref.riemannian_gradient(D, G)
    # eq. 9 equals the orthogonal projection onto T_D: (I − DDᵀ) G + D skew(DᵀG)
    DtG = D.T @ G
    expected = (np.eye(10) - D @ D.T) @ G + D @ (0.5 * (DtG - DtG.T))
    np.testing.assert_allclose(R, expected, rtol=0, atol=1e-13)
    np.testing.assert_allclose(R, ref.tangent_projection(D, G), rtol=0, atol=1e-13)
    # tangent: DᵀR is skew-symmetric
    DtR = D.T @ R
    np.testing.assert_allclose(DtR + DtR.T, 0.0, rtol=0, atol=1e-13)


def test_pca_initial_projection():
    Xs, _ = make_datasets(V=12, M=3, K=3, seed=5)
    D = ref.pca_initial_projection(Xs, 3)
    total = sum(ref.empirical_covariance(X) for X in Xs)
    values = np.linalg.eigvalsh(total)[::-1][:3]
    np.testing.assert_allclose(D.T @ D, np.eye(3), rtol=0, atol=1e-12)
    np.testing.assert_allclose(total @ D, D * values, rtol=0, atol=1e-10 * values[0])
    for j in range(3):
        assert D[np.argmax(np.abs(D[:, j])), j] > 0
    # assume_centered uses XᵀX / N
    D_unc = ref.pca_initial_projection(Xs, 2, assume_centered=True)
    total_unc = sum(X.T @ X / X.shape[0] for X in Xs)
    values_unc = np.linalg.eigvalsh(total_unc)[::-1][:2]
    np.testing.assert_allclose(total_unc @ D_unc, D_unc * values_unc, rtol=0, atol=1e-10 * values_unc[0])


# ---------------------------------------------------------------------------------------------
# Graphical lasso
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("penalize_diagonal", [False, True])
@pytest.mark.parametrize("p", [2, 4, 7, 10])
def test_graphical_lasso_kkt(p, penalize_diagonal):
    rng = np.random.default_rng(10 + p)
    for alpha in [0.01, 0.05, 0.15, 0.5]:
        S = random_covariance(p, 4 * p + 10, rng)
        cov, prec = ref.graphical_lasso(S, alpha, penalize_diagonal=penalize_diagonal)
        np.testing.assert_allclose(prec, prec.T, rtol=0, atol=1e-14)
        assert np.all(np.linalg.eigvalsh(prec) > 0)
        np.testing.assert_allclose(cov @ prec, np.eye(p), rtol=0, atol=1e-10)
        assert glasso_kkt_residual(S, alpha, prec, penalize_diagonal) <= 1e-8
        gap = ref.glasso_duality_gap(S, alpha, prec, penalize_diagonal)
        assert -1e-12 <= gap <= 1e-10
        # warm start from a perturbed solution reaches the same point
        _, prec_warm = ref.graphical_lasso(
            S, alpha, penalize_diagonal=penalize_diagonal, precision_init=prec + 0.01 * np.eye(p)
        )
        np.testing.assert_allclose(prec_warm, prec, rtol=0, atol=1e-9 * np.max(np.abs(prec)))


def test_graphical_lasso_zero_penalty_is_inverse():
    S = random_covariance(5, 40, np.random.default_rng(0))
    cov, prec = ref.graphical_lasso(S, 0.0)
    np.testing.assert_allclose(prec, np.linalg.inv(S), rtol=1e-12, atol=0)
    np.testing.assert_allclose(cov, S, rtol=0, atol=0)


def test_graphical_lasso_large_penalty_is_diagonal():
    S = random_covariance(6, 40, np.random.default_rng(1))
    big = np.max(np.abs(S - np.diag(np.diag(S)))) * 1.01
    _, prec = ref.graphical_lasso(S, big)
    np.testing.assert_allclose(prec, np.diag(1.0 / np.diag(S)), rtol=1e-14, atol=0)


def test_graphical_lasso_matches_sklearn():
    sk_cov = pytest.importorskip("sklearn.covariance")
    from sklearn.exceptions import ConvergenceWarning

    rng = np.random.default_rng(123)
    compared = 0
    for p in [3, 5, 8, 10]:
        S = random_covariance(p, 3 * p + 20, rng)
        for alpha in [0.01, 0.03, 0.1, 0.3]:
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("error", ConvergenceWarning)
                    _, prec_sk = sk_cov.graphical_lasso(S, alpha, tol=1e-12, enet_tol=1e-12, max_iter=2000)
            except (ConvergenceWarning, FloatingPointError):
                continue  # compare only where scikit-learn converges
            _, prec = ref.graphical_lasso(S, alpha)
            scale = np.max(np.abs(prec))
            np.testing.assert_allclose(prec, prec_sk, rtol=0, atol=1e-6 * scale)
            compared += 1
    assert compared >= 12


# ---------------------------------------------------------------------------------------------
# Model for a fixed D
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "alpha, penalize_diagonal, assume_centered",
    [(0.0, False, False), (0.05, False, False), (0.2, True, False), (0.1, False, True)],
)
def test_profile_objective_matches_dense(alpha, penalize_diagonal, assume_centered):
    Xs, _ = make_datasets(V=15, M=3, K=3, seed=1)
    D = ref.random_initial_projection(15, 3, seed=3)
    kw = {"penalize_diagonal": penalize_diagonal, "assume_centered": assume_centered}
    f, grad, precisions, noise = ref.profile_objective(Xs, D, alpha, **kw)
    assert precisions.shape == (3, 3, 3)
    assert noise.shape == (3,)
    assert grad.shape == D.shape
    dense = ref.objective_dense(Xs, D, precisions, noise, alpha, **kw)
    assert abs(f - dense) <= 1e-10 * abs(dense)
    # ε_k (eq. 16) and Λ_k (eq. 13) from their definitions
    for k, X in enumerate(Xs):
        S = ref.empirical_covariance(X, assume_centered)
        A = D.T @ S @ D
        assert abs(noise[k] - (np.trace(S) - np.trace(A)) / 12) <= 1e-12 * noise[k]
        _, prec = ref.graphical_lasso(A, alpha, penalize_diagonal=penalize_diagonal)
        np.testing.assert_allclose(precisions[k], prec, rtol=0, atol=1e-9 * np.max(np.abs(prec)))


def test_noise_variance_and_precision_minimise_the_objective():
    Xs, _ = make_datasets(V=15, M=3, K=3, seed=2)
    D = ref.random_initial_projection(15, 3, seed=11)
    alpha = 0.05
    f, _, precisions, noise = ref.profile_objective(Xs, D, alpha)
    E0 = ref.objective_dense(Xs, D, precisions, noise, alpha)
    V, M = 15, 3
    for k in range(3):
        # dE/d log ε_k = (V − M) − (tr S − tr A)/ε_k vanishes at eq. 16
        delta = 1e-4
        up, down = noise.copy(), noise.copy()
        up[k] *= np.exp(delta)
        down[k] *= np.exp(-delta)
        E_up = ref.objective_dense(Xs, D, precisions, up, alpha)
        E_down = ref.objective_dense(Xs, D, precisions, down, alpha)
        assert abs(E_up - E_down) / (2 * delta) <= 1e-5 * (V - M)
        for factor in [0.9, 0.99, 1.01, 1.1]:
            moved = noise.copy()
            moved[k] *= factor
            assert ref.objective_dense(Xs, D, precisions, moved, alpha) > E0
        # a symmetric perturbation of Λ_k increases E as well
        rng = np.random.default_rng(k)
        B = rng.standard_normal((M, M))
        moved_prec = precisions.copy()
        moved_prec[k] += 1e-3 * (B + B.T)
        assert ref.objective_dense(Xs, D, moved_prec, noise, alpha) > E0
    with pytest.raises(FloatingPointError):
        ref.noise_variance(1.0, np.eye(2), 4)


@pytest.mark.parametrize("alpha, penalize_diagonal", [(0.0, False), (0.1, False), (0.1, True)])
def test_riemannian_gradient_matches_finite_differences(alpha, penalize_diagonal):
    Xs, _ = make_datasets(V=15, M=3, K=3, seed=4)
    D = ref.random_initial_projection(15, 3, seed=21)
    kw = {"penalize_diagonal": penalize_diagonal, "glasso_tol": 1e-14}
    f, grad, precisions, _ = ref.profile_objective(Xs, D, alpha, **kw)
    if alpha > 0:
        # the sparse path of the graphical lasso is exercised
        off = ~np.eye(3, dtype=bool)
        assert any(np.any(P[off] == 0) for P in precisions)
    for xi, numeric in directional_derivatives(Xs, D, alpha, grad, precisions, kw, n_random=4):
        analytic = float(np.sum(grad * xi))
        assert abs(numeric - analytic) <= 1e-5 * abs(analytic)


def directional_derivatives(Xs, D, alpha, grad, precisions, kw, *, n_random, h=1e-5, seed=5):
    """(ξ, central difference of the profile objective f along ξ) for ξ = the gradient and n_random random
    tangent directions at D, each of unit norm; the steps are retracted by the polar factor."""
    rng = np.random.default_rng(seed)
    directions = [grad] + [ref.tangent_projection(D, rng.standard_normal(D.shape)) for _ in range(n_random)]
    out = []
    for xi in directions:
        xi = xi / np.linalg.norm(xi)
        f_plus, f_minus = (
            ref.profile_objective(Xs, ref.polar_retraction(D + step), alpha, precisions_init=precisions, **kw)[0]
            for step in (h * xi, -h * xi)
        )
        out.append((xi, (f_plus - f_minus) / (2 * h)))
    return out


# ---------------------------------------------------------------------------------------------
# Fits
# ---------------------------------------------------------------------------------------------


def test_fit_adam_first_step_is_a_normalised_gradient_step():
    # After one step with all datasets in the batch, m̂ = g and v̂ = g², so the step is
    # −lr · g / (|g| + 1e-8) followed by the retraction.
    Xs, _ = make_datasets(V=12, M=2, K=3, seed=6)
    D0 = ref.random_initial_projection(12, 2, seed=1)
    lr = 1e-2
    f0, g, _, _ = ref.profile_objective(Xs, D0, 0.05)
    res = ref.fit_adam(Xs, D0, 0.05, max_iter=1, tol=0, learning_rate=lr)
    expected = ref.polar_retraction(D0 - lr * g / (np.abs(g) + 1e-8))
    # the fit returns its answer in canonical form (factor order and signs)
    _, _, P_expected, _ = ref.profile_objective(Xs, expected, 0.05)
    expected, P_expected, _, _, _ = ref.canonical_form(expected, P_expected, np.linalg.inv(P_expected))
    np.testing.assert_allclose(res.components, expected, rtol=0, atol=1e-12)
    np.testing.assert_allclose(res.precisions, P_expected, rtol=0, atol=1e-9 * np.abs(P_expected).max())
    assert res.n_iter == 1
    assert len(res.objective_history) == 1
    assert abs(res.objective_history[0] - f0) <= 1e-12 * abs(f0)
    f1 = ref.profile_objective(Xs, res.components, 0.05)[0]
    assert abs(res.objective - f1) <= 1e-12 * abs(f1)


@pytest.mark.parametrize("batch_size", [None, 2])
def test_fit_adam_decreases_the_objective(batch_size):
    Xs, _ = make_datasets(V=12, M=3, K=4, seed=7)
    D0 = ref.random_initial_projection(12, 3, seed=2)
    alpha = 0.05
    f0 = ref.profile_objective(Xs, D0, alpha)[0]
    res = ref.fit_adam(Xs, D0, alpha, max_iter=150, tol=0, learning_rate=1e-2, batch_size=batch_size, seed=3)
    assert res.n_iter == 150
    assert not res.converged
    assert len(res.objective_history) == 150
    assert res.objective < f0 - 1e-3 * abs(f0)
    assert res.objective_history[-1] < res.objective_history[0]
    np.testing.assert_allclose(res.components.T @ res.components, np.eye(3), rtol=0, atol=1e-12)
    assert res.precisions.shape == (4, 3, 3)
    assert res.covariances.shape == (4, 3, 3)
    assert res.noise_variances.shape == (4,)
    for P, C in zip(res.precisions, res.covariances):
        np.testing.assert_allclose(P @ C, np.eye(3), rtol=0, atol=1e-10)
    # deterministic for a given seed
    again = ref.fit_adam(Xs, D0, alpha, max_iter=5, tol=0, learning_rate=1e-2, batch_size=batch_size, seed=3)
    twice = ref.fit_adam(Xs, D0, alpha, max_iter=5, tol=0, learning_rate=1e-2, batch_size=batch_size, seed=3)
    np.testing.assert_array_equal(again.components, twice.components)


def test_fit_adam_stops_on_tol():
    Xs, _ = make_datasets(V=10, M=2, K=3, seed=8)
    D0 = ref.pca_initial_projection(Xs, 2)
    res = ref.fit_adam(Xs, D0, 0.05, max_iter=1000, tol=1e-6, learning_rate=1e-3)
    assert res.converged
    assert 2 <= res.n_iter < 1000
    h = res.objective_history
    assert abs(h[-1] - h[-2]) <= 1e-6 * max(1.0, abs(h[-1]))


def test_fit_lbfgs_reaches_adam_objective_with_fewer_iterations():
    Xs, _ = make_datasets(V=15, M=3, K=3, seed=9)
    D0 = ref.pca_initial_projection(Xs, 3)
    alpha = 0.05
    adam = ref.fit_adam(Xs, D0, alpha, max_iter=400, tol=0, learning_rate=1e-2)
    lbfgs = ref.fit_lbfgs(Xs, D0, alpha, max_iter=500, tol=1e-10)
    assert lbfgs.converged
    assert lbfgs.objective <= adam.objective + 1e-12 * abs(adam.objective)
    assert lbfgs.n_iter <= adam.n_iter // 4
    assert lbfgs.gradient_norm <= 1e-4 * np.linalg.norm(ref.profile_objective(Xs, D0, alpha)[1])
    # monotone decrease (Armijo) and a final objective consistent with the returned D
    assert np.all(np.diff(lbfgs.objective_history) <= 0)
    f_final = ref.profile_objective(Xs, lbfgs.components, alpha)[0]
    assert abs(lbfgs.objective - f_final) <= 1e-12 * abs(f_final)
    # same minimum: the subspaces agree
    P_adam = adam.components @ adam.components.T
    P_lbfgs = lbfgs.components @ lbfgs.components.T
    assert np.linalg.norm(P_adam - P_lbfgs) <= 1e-3


def test_fit_lbfgs_from_random_start_is_stationary():
    Xs, _ = make_datasets(V=12, M=2, K=3, seed=10)
    D0 = ref.random_initial_projection(12, 2, seed=5)
    f0, g0, _, _ = ref.profile_objective(Xs, D0, 0.1)
    res = ref.fit_lbfgs(Xs, D0, 0.1, tol=1e-10)
    assert res.converged
    assert res.objective < f0
    assert res.gradient_norm <= 1e-5 * np.linalg.norm(g0)
    np.testing.assert_allclose(res.components.T @ res.components, np.eye(2), rtol=0, atol=1e-12)
