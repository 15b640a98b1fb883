"""The C++ model pieces: retraction, gradients, initialisations."""

import numpy as np
import pytest

from metaglasso import _core
from metaglasso.datasets import make_synthetic

TIGHT = dict(glasso_tol=1e-14, glasso_max_iter=100000)


def test_polar_retraction_is_orthonormal_and_equals_scipy_polar():
    from scipy.linalg import polar

    rng = np.random.default_rng(0)
    for V, M in [(5, 1), (50, 10), (2000, 20)]:
        Z = rng.random((V, M))
        D = _core.polar_retraction(Z)
        assert np.linalg.norm(D.T @ D - np.eye(M)) <= 1e-12
        np.testing.assert_allclose(D, polar(Z)[0], atol=1e-12)


def test_riemannian_gradient_is_tangent_projection():
    rng = np.random.default_rng(1)
    D = _core.polar_retraction(rng.standard_normal((40, 4)))
    G = rng.standard_normal((40, 4))
    R = _core.riemannian_gradient(D, G)
    np.testing.assert_allclose(R, G - 0.5 * D @ (D.T @ G + G.T @ D), atol=1e-13)
    # tangent: D^T R is skew-symmetric
    DtR = D.T @ R
    np.testing.assert_allclose(DtR + DtR.T, 0, atol=1e-12)


@pytest.mark.parametrize("alpha", [0.0, 0.05, 0.2])
def test_riemannian_gradient_matches_finite_differences(alpha):
    Xs, _ = make_synthetic(25, 60, 3, 4, random_state=3)
    rng = np.random.default_rng(4)
    D = _core.pca_initial_projection(Xs, 4)
    D = _core.polar_retraction(D + 0.05 * rng.standard_normal(D.shape))
    f0, grad = _core.profile_objective(Xs, D, alpha, **TIGHT)
    h = 1e-5
    for _ in range(3):
        xi = _core.riemannian_gradient(D, rng.standard_normal(D.shape))
        xi /= np.linalg.norm(xi)
        fp, _ = _core.profile_objective(Xs, _core.polar_retraction(D + h * xi), alpha, **TIGHT)
        fm, _ = _core.profile_objective(Xs, _core.polar_retraction(D - h * xi), alpha, **TIGHT)
        fd = (fp - fm) / (2 * h)
        exact = np.sum(grad * xi)
        assert abs(fd - exact) <= 1e-5 * max(abs(exact), np.linalg.norm(grad))


@pytest.mark.parametrize("penalize_diagonal", [True, False])
@pytest.mark.parametrize("alpha", [0.1, [0.02, 0.3]])
def test_profile_objective_equals_dense_formula(alpha, penalize_diagonal):
    # The default is the paper's ‖Λ_k‖₁ over all entries; ρ_k per dataset when alpha is a list.
    Xs, _ = make_synthetic(20, 50, 2, 3, random_state=5)
    D = _core.random_initial_projection(20, 3, 11)
    options = dict(TIGHT) if penalize_diagonal else dict(TIGHT, penalize_diagonal=False)
    f, _ = _core.profile_objective(Xs, D, alpha, **options)
    total = 0.0
    for X, rho in zip(Xs, np.broadcast_to(alpha, (2,))):
        Xc = X - X.mean(0)
        S = Xc.T @ Xc / X.shape[0]
        A = D.T @ S @ D
        eps = (np.trace(S) - np.trace(A)) / 17
        r = _core.graphical_lasso(A, rho, tol=1e-14, max_iter=100000, penalize_diagonal=penalize_diagonal)
        Lam = r["precision"]
        Phi_inv = D @ Lam @ D.T + (np.eye(20) - D @ D.T) / eps
        l1 = np.abs(Lam).sum() - (0.0 if penalize_diagonal else np.abs(np.diag(Lam)).sum())
        total += np.trace(Phi_inv @ S) - np.linalg.slogdet(Phi_inv)[1] + rho * l1
    assert f == pytest.approx(total, rel=1e-11)


def test_pca_initial_projection_is_top_eigenvectors_with_sign_convention():
    Xs, _ = make_synthetic(40, 30, 3, 3, random_state=6)
    D = _core.pca_initial_projection(Xs, 5)
    S = sum(np.cov(X, rowvar=False, bias=True) for X in Xs)
    w, U = np.linalg.eigh(S)
    U = U[:, ::-1][:, :5]
    for j in range(5):
        u = U[:, j] * np.sign(U[np.argmax(np.abs(U[:, j])), j])
        np.testing.assert_allclose(D[:, j], u, atol=1e-9)


def test_random_initial_projection_is_seeded_polar_of_uniform():
    D = _core.random_initial_projection(30, 4, 123)
    np.testing.assert_array_equal(D, _core.random_initial_projection(30, 4, 123))
    assert np.linalg.norm(D.T @ D - np.eye(4)) <= 1e-12
    assert not np.allclose(D, _core.random_initial_projection(30, 4, 124))
    with pytest.raises(ValueError, match="n_components"):
        _core.random_initial_projection(4, 4, 0)
