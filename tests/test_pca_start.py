"""The PCA start (top-M eigenvectors of the summed covariances) on its two paths.

Few samples relative to features go through the ΣN × ΣN Gram matrix, many through block Lanczos
on the data operator; both must give the dense eigenvectors to the residual tolerance 1e-10.
"""

import numpy as np
import pytest

from metaglasso import _core


def _spectrum(n_samples, n_features, rank=30, seed=0):
    """Centred (N, V) data: a rank-30 signal with scales 10 … 1 plus isotropic noise 0.3."""
    rng = np.random.default_rng(seed)
    scales = np.linspace(10.0, 1.0, rank)
    X = (rng.standard_normal((n_samples, rank)) * scales) @ rng.standard_normal((rank, n_features))
    X /= np.sqrt(n_features)
    X += 0.3 * rng.standard_normal((n_samples, n_features))
    return X - X.mean(axis=0)


def _summed_covariance(Xs, centre=True):
    return sum(np.cov(X, rowvar=False, bias=True) if centre else X.T @ X / X.shape[0] for X in Xs)


def _check_top_eigenvectors(S, D, M):
    w, U = np.linalg.eigh(S)
    w, U = w[::-1][:M], U[:, ::-1][:, :M]
    assert np.linalg.norm(D.T @ D - np.eye(M)) <= 1e-12
    SD = S @ D
    theta = np.einsum("ij,ij->j", D, SD)
    np.testing.assert_allclose(theta, w, rtol=0, atol=1e-10 * w[0])
    assert np.max(np.linalg.norm(SD - D * theta, axis=0)) <= 1e-10 * w[0]
    # Distinct eigenvalues: each column is the eigenvector, signed so that its largest entry is > 0.
    for j in range(M):
        u = U[:, j] * np.sign(U[np.argmax(np.abs(U[:, j])), j])
        np.testing.assert_allclose(D[:, j], u, atol=1e-7)
        assert D[np.argmax(np.abs(D[:, j])), j] > 0


@pytest.mark.parametrize(
    "shapes",
    [
        [(150, 1200)],  # ΣN ≪ V: Gram matrix
        [(60, 1200), (90, 1200)],  # two datasets, Gram matrix
        [(900, 1200)],  # ΣN close to V: block Lanczos on the data
        [(500, 1200), (450, 1200)],  # ΣN > V: block Lanczos on the data
    ],
)
@pytest.mark.parametrize("assume_centered", [True, False])
def test_pca_start_is_the_dense_top_subspace(shapes, assume_centered):
    M = 12
    Xs = [_spectrum(N, V, seed=k) + (0.0 if assume_centered else 3.0) for k, (N, V) in enumerate(shapes)]
    D = _core.pca_initial_projection(Xs, M, assume_centered=assume_centered, n_threads=1)
    _check_top_eigenvectors(_summed_covariance(Xs, centre=not assume_centered), D, M)
    D2 = _core.pca_initial_projection(Xs, M, assume_centered=assume_centered, n_threads=2)
    np.testing.assert_array_equal(D, D2)


def test_pca_start_with_m_at_the_rank_of_the_data():
    # 3 distinct samples per dataset: Σ S_k has rank 6 < M = 8; the last columns are null vectors.
    rng = np.random.default_rng(3)
    Xs = [np.repeat(rng.standard_normal((3, 200)), 7, axis=0) for _ in range(2)]
    D = _core.pca_initial_projection(Xs, 8, assume_centered=True)
    S = _summed_covariance(Xs, centre=False)
    assert np.linalg.norm(D.T @ D - np.eye(8)) <= 1e-12
    SD = S @ D
    theta = np.einsum("ij,ij->j", D, SD)
    w = np.linalg.eigvalsh(S)[::-1][:8]
    np.testing.assert_allclose(theta, w, rtol=0, atol=1e-10 * w[0])
    assert np.max(np.linalg.norm(SD - D * theta, axis=0)) <= 1e-10 * w[0]


@pytest.mark.parametrize("shape", [(400, 5000), (2500, 3000)])
def test_pca_start_large_products_do_not_depend_on_threads(shape):
    # Products large enough for the kernels to run on several threads: the Gram path for (400,
    # 5000), block Lanczos for (2500, 3000). Checked through the small side of the SVD of X.
    N, V = shape
    M = 10
    X = _spectrum(N, V, seed=7)
    D = _core.pca_initial_projection([X], M, assume_centered=True, n_threads=1)
    np.testing.assert_array_equal(D, _core.pca_initial_projection([X], M, assume_centered=True, n_threads=2))
    assert np.linalg.norm(D.T @ D - np.eye(M)) <= 1e-12
    SD = X.T @ (X @ D) / N
    theta = np.einsum("ij,ij->j", D, SD)
    w = np.linalg.svd(X, compute_uv=False)[:M] ** 2 / N
    np.testing.assert_allclose(theta, w, rtol=0, atol=1e-10 * w[0])
    assert np.max(np.linalg.norm(SD - D * theta, axis=0)) <= 1e-10 * w[0]
