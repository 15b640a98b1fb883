"""The paper's generator: exact distribution, structure of the truth, determinism."""

import numpy as np
import pytest

from metaglasso.datasets import make_synthetic


def test_samples_follow_phi_k():
    """Sample covariances of 200,000 draws match Φ_k = D Σ_k Dᵀ + ε_k (I − D Dᵀ) entry by entry
    within 5 standard errors (Var of a sample covariance entry: (Φ_ii Φ_jj + Φ_ij²)/N)."""
    V, M, N = 8, 3, 200_000
    Xs, truth = make_synthetic(V, N, 2, M, random_state=3)
    D = truth.components.T
    for X, cov, eps in zip(Xs, truth.covariances, truth.noise_variances):
        phi = D @ cov @ D.T + eps * (np.eye(V) - D @ D.T)
        S = X.T @ X / N  # the model's mean is zero
        d = np.diag(phi)
        se = np.sqrt((np.outer(d, d) + phi**2) / N)
        assert np.all(np.abs(S - phi) <= 5 * se)


def test_truth_structure():
    V, M, K = 50, 5, 4
    Xs, truth = make_synthetic(V, [30, 40, 50, 60], K, M, random_state=0)
    assert [X.shape for X in Xs] == [(30, V), (40, V), (50, V), (60, V)]
    D = truth.components.T
    np.testing.assert_allclose(D.T @ D, np.eye(M), atol=1e-12)
    for prec, cov in zip(truth.precisions, truth.covariances):
        np.testing.assert_allclose(prec @ cov, np.eye(M), atol=1e-8)
        assert np.all(np.linalg.eigvalsh(prec) > 0)
    assert np.all(truth.noise_variances > 0)
    # ρ = 0.3 on the covariance of 20 standard-normal 5-vectors leaves zeros in the precisions.
    off = ~np.eye(M, dtype=bool)
    assert np.count_nonzero(truth.precisions[:, off] == 0) > 0


def test_one_component():
    # M = 1: the latent covariance is 1 × 1, the variance of 20 standard-normal draws.
    Xs, truth = make_synthetic(8, 30, 2, 1, random_state=4)
    assert truth.precisions.shape == (2, 1, 1) and truth.components.shape == (1, 8)
    np.testing.assert_allclose(truth.precisions[:, 0, 0] * truth.covariances[:, 0, 0], 1.0, rtol=1e-14)
    np.testing.assert_allclose(np.linalg.norm(truth.components), 1.0, rtol=1e-14)


def test_deterministic_for_a_seed():
    a, ta = make_synthetic(20, 15, 3, 2, random_state=7)
    b, tb = make_synthetic(20, 15, 3, 2, random_state=7)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)
    np.testing.assert_array_equal(ta.components, tb.components)


@pytest.mark.parametrize("kwargs, match", [
    (dict(n_features=5, n_samples=10, n_datasets=2, n_components=5), "n_components must be smaller"),
    (dict(n_features=5, n_samples=[10], n_datasets=2, n_components=2), "n_samples must be an int or have"),
    (dict(n_features=5, n_samples=1, n_datasets=2, n_components=2), "n_samples must be an integer >= 2"),
])
def test_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        make_synthetic(**kwargs)
