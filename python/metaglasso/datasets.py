"""Synthetic data generated from the MGLASSO model, as in the paper's experiments."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from metaglasso import _core
from metaglasso._validation import check_nonnegative, check_positive_int

__all__ = ["FactorAnalysisTruth", "SyntheticTruth", "make_factor_analysis", "make_shared_networks", "make_synthetic"]


@dataclass(frozen=True)
class SyntheticTruth:
    """Ground truth of :func:`make_synthetic`.

    Attributes
    ----------
    components : ndarray of shape (n_components, n_features)
        Dᵀ with orthonormal rows.
    precisions : ndarray of shape (n_datasets, n_components, n_components)
        Λ_k.
    covariances : ndarray of shape (n_datasets, n_components, n_components)
        Σ_k = Λ_k⁻¹.
    noise_variances : ndarray of shape (n_datasets,)
        ε_k.
    """

    components: np.ndarray
    precisions: np.ndarray
    covariances: np.ndarray
    noise_variances: np.ndarray


def _check_shape(n_features, n_samples, n_datasets, n_components):
    """V, K, M and the K sample sizes of a generator's arguments, or ValueError naming the argument."""
    V = check_positive_int(n_features, "n_features", minimum=2)
    K = check_positive_int(n_datasets, "n_datasets")
    M = check_positive_int(n_components, "n_components")
    if M >= V:
        raise ValueError(f"n_components must be smaller than n_features={V}; got n_components={M}")
    sizes = [n_samples] * K if np.ndim(n_samples) == 0 else list(n_samples)
    if len(sizes) != K:
        raise ValueError(f"n_samples must be an int or have n_datasets={K} entries; got {len(sizes)}")
    return V, K, M, [check_positive_int(n, "n_samples", minimum=2) for n in sizes]


def _polar(Z):
    P, _, Qt = np.linalg.svd(Z, full_matrices=False)
    return P @ Qt


def _draw(rng, D, cov, n, eps):
    """n samples x = D L u + √ε (I − D Dᵀ) w of N(0, Φ) (rows), L the Cholesky factor of the latent
    covariance cov (M, M) and u, w standard normal: no V × V factor is formed."""
    L = np.linalg.cholesky(cov)
    U = rng.standard_normal((n, cov.shape[0]))
    W = rng.standard_normal((n, D.shape[0]))
    W -= (W @ D) @ D.T  # (I − D Dᵀ) w
    return U @ L.T @ D.T + np.sqrt(eps) * W


def make_synthetic(n_features, n_samples, n_datasets, n_components, *, alpha_truth=0.3,
                   n_latent_samples=20, noise_scale=0.1, random_state=None):
    """Draw K datasets from the MGLASSO model the way the paper's experiments do.

    D is the polar factor of a uniform [0, 1) matrix; each Λ_k is the graphical lasso
    (penalty ``alpha_truth``) of the covariance of ``n_latent_samples`` standard-normal
    M-vectors; ε_k = ``|N(0, noise_scale²)|``; samples are x = D L_k u + √ε_k (I − D Dᵀ) w with
    L_k the Cholesky factor of Σ_k and u, w standard normal, which is exactly N(0, Φ_k) without
    forming a V × V factor.

    Parameters
    ----------
    n_features : int
        V.
    n_samples : int or sequence of int
        N (the same for every dataset) or N_k per dataset.
    n_datasets : int
        K.
    n_components : int
        M < V.
    alpha_truth : float, default=0.3
    n_latent_samples : int, default=20
    noise_scale : float, default=0.1
    random_state : int, numpy Generator or None

    Returns
    -------
    Xs : list of K ndarrays of shape (n_samples_k, n_features)
    truth : SyntheticTruth
    """
    V, K, M, sizes = _check_shape(n_features, n_samples, n_datasets, n_components)
    alpha_truth = check_nonnegative(alpha_truth, "alpha_truth")
    n_latent = check_positive_int(n_latent_samples, "n_latent_samples", minimum=2)
    noise_scale = check_nonnegative(noise_scale, "noise_scale")
    rng = np.random.default_rng(random_state)

    D = _polar(rng.random((V, M)))
    precisions, covariances, noises, Xs = [], [], [], []
    for n in sizes:
        Y = rng.standard_normal((n_latent, M))
        emp = np.atleast_2d(np.cov(Y, rowvar=False, bias=True))  # (M, M), also for M = 1
        fit = _core.graphical_lasso(emp, alpha_truth)
        cov, prec = fit["covariance"], fit["precision"]
        eps = abs(rng.normal(0.0, noise_scale))
        Xs.append(_draw(rng, D, cov, n, eps))
        precisions.append(prec)
        covariances.append(cov)
        noises.append(eps)
    truth = SyntheticTruth(
        components=np.ascontiguousarray(D.T),
        precisions=np.stack(precisions),
        covariances=np.stack(covariances),
        noise_variances=np.array(noises),
    )
    return Xs, truth


def make_shared_networks(n_features, n_samples, n_datasets, n_components, *, edge_probability=0.2,
                         n_changes=2, edge_weight=(0.4, 0.8), factor_spread=3.0, noise_scale=0.1,
                         random_state=None):
    """Draw K datasets from the MGLASSO model whose latent networks are shared but for a few edges.

    One network of M factors is drawn (each pair an edge with probability ``edge_probability``);
    along the datasets in order it drifts: dataset k has the edges of dataset k − 1 with
    ``n_changes`` pairs toggled (an edge removed, or a new one added). An edge has the same weight
    in every dataset that has it — uniform in ``edge_weight`` with a random sign — so the truth is
    exactly what a fused penalty along a chain assumes: equal entries, a few changes between
    neighbours. Λ_k = S (c I + W_k) S, with one c for all datasets making the smallest eigenvalue of
    every c I + W_k equal to 1 and S = diag(s_j), s_j geometric from 1 to ``factor_spread``: the
    factors' variances differ (so that they are identifiable by variance, not only by the sparsity of
    their network) while the partial correlations are those of c I + W_k. D, ε_k and the samples are
    drawn as in :func:`make_synthetic`.

    Parameters
    ----------
    n_features : int
        V.
    n_samples : int or sequence of int
        N (the same for every dataset) or N_k per dataset.
    n_datasets : int
        K.
    n_components : int
        M < V, at least 2.
    edge_probability : float, default=0.2
        Probability that a pair of factors is an edge of the first network.
    n_changes : int, default=2
        Pairs toggled between consecutive datasets (at most M(M − 1)/2).
    edge_weight : (float, float), default=(0.4, 0.8)
        Range of the weight magnitude ``|W_ij|`` of an edge.
    factor_spread : float, default=3.0
        s_M / s_1 >= 1: the factors' standard deviations span about this ratio.
    noise_scale : float, default=0.1
    random_state : int, numpy Generator or None

    Returns
    -------
    Xs : list of K ndarrays of shape (n_samples_k, n_features)
    truth : SyntheticTruth
    """
    V, K, M, sizes = _check_shape(n_features, n_samples, n_datasets, n_components)
    if M < 2:
        raise ValueError(f"n_components must be at least 2 for a network; got {M}")
    p = check_nonnegative(edge_probability, "edge_probability")
    if p > 1:
        raise ValueError(f"edge_probability must be in [0, 1]; got {edge_probability!r}")
    n_pairs = M * (M - 1) // 2
    changes = check_nonnegative(n_changes, "n_changes")
    if changes != int(changes) or changes > n_pairs:
        raise ValueError(f"n_changes must be an integer in [0, {n_pairs}]; got {n_changes!r}")
    low, high = (check_nonnegative(w, "edge_weight") for w in edge_weight)
    if not low <= high:
        raise ValueError(f"edge_weight must be (low, high) with low <= high; got {edge_weight!r}")
    noise_scale = check_nonnegative(noise_scale, "noise_scale")
    if not check_nonnegative(factor_spread, "factor_spread") >= 1:
        raise ValueError(f"factor_spread must be >= 1; got {factor_spread!r}")
    rng = np.random.default_rng(random_state)

    D = _polar(rng.random((V, M)))
    iu = np.triu_indices(M, 1)
    weights = rng.uniform(low, high, n_pairs) * rng.choice([-1.0, 1.0], n_pairs)
    present = rng.random(n_pairs) < p
    networks = []
    for k in range(K):
        if k > 0:
            present = present.copy()
            present[rng.choice(n_pairs, int(changes), replace=False)] ^= True
        W = np.zeros((M, M))
        W[iu] = np.where(present, weights, 0.0)
        networks.append(W + W.T)
    shift = 1.0 - min(np.linalg.eigvalsh(W).min() for W in networks)
    # Distinct factor variances (geometric from 1 to factor_spread², the largest first) make the
    # factors identifiable by variance as well as by sparsity; the scaling leaves the partial
    # correlations, and so the networks, as drawn.
    scale = np.geomspace(1.0, float(factor_spread), M) if M > 1 else np.ones(1)
    precisions = np.stack([(W + shift * np.eye(M)) * np.outer(scale, scale) for W in networks])
    covariances, noises, Xs = [], [], []
    for prec, n in zip(precisions, sizes):
        cov = np.linalg.inv(prec)
        cov = 0.5 * (cov + cov.T)
        eps = abs(rng.normal(0.0, noise_scale))
        Xs.append(_draw(rng, D, cov, n, eps))
        covariances.append(cov)
        noises.append(eps)
    truth = SyntheticTruth(
        components=np.ascontiguousarray(D.T),
        precisions=precisions,
        covariances=np.stack(covariances),
        noise_variances=np.array(noises),
    )
    return Xs, truth


@dataclass(frozen=True)
class FactorAnalysisTruth:
    """Ground truth of :func:`make_factor_analysis`.

    Attributes
    ----------
    components : ndarray of shape (n_components, n_features)
        Orthonormal rows spanning the factors' directions.
    precisions : ndarray of shape (n_datasets, n_components, n_components)
        Sparse precision of the factor scores in each dataset.
    covariances : ndarray of shape (n_datasets, n_components, n_components)
        Their inverses, the factors' covariances.
    noise_variances : ndarray of shape (n_datasets, n_features)
        The variance of each variable's own noise in each dataset.
    means : ndarray of shape (n_datasets, n_features)
        The variables' means in each dataset.
    """

    components: np.ndarray
    precisions: np.ndarray
    covariances: np.ndarray
    noise_variances: np.ndarray
    means: np.ndarray


def make_factor_analysis(n_features, n_samples, n_datasets, n_components, *, factor_variances=(1000.0, 100.0),
                         noise_range=(0.5, 1.5), edge_probability=0.6, random_state=None):
    """Datasets from a factor-analysis model that MGLASSO does not fit exactly.

    Unlike :func:`make_synthetic` (the paper's generator, which draws from the MGLASSO model itself),
    each variable has noise of its own variance, in every direction (the noise is not projected out
    of the span of the factors), and every variable has a mean of its own in each dataset:

        x = D diag(s) z + μ_k + e,   z ~ N(0, Σ_k),   e ~ N(0, diag(ψ_k)),

    with D (V × M) orthonormal (QR of a Gaussian matrix), factor scales s_j² decreasing linearly over
    ``factor_variances``, Σ_k = Λ_k⁻¹ for a sparse Λ_k — unit diagonal plus a random chain, the edge
    between factors j and j + 1 present with probability ``edge_probability`` and of weight uniform in
    ±0.4, shifted to keep its smallest eigenvalue at least 0.1 — ψ_k,v uniform over ``noise_range``
    and μ_k,v ~ N(0, 3²).

    Parameters
    ----------
    n_features : int
        V.
    n_samples : int or sequence of int
        N (the same for every dataset) or N_k per dataset.
    n_datasets : int
        K.
    n_components : int
        M < V.
    factor_variances : (float, float), default=(1000.0, 100.0)
        Largest and smallest s_j², in units of the noise (ψ is about 1).
    noise_range : (float, float), default=(0.5, 1.5)
    edge_probability : float, default=0.6
    random_state : int, numpy Generator or None

    Returns
    -------
    Xs : list of K ndarrays of shape (n_samples_k, n_features)
    truth : FactorAnalysisTruth
        ``precisions`` are those of z (the factors' scales s are in ``components`` only through D).
    """
    V, K, M, sizes = _check_shape(n_features, n_samples, n_datasets, n_components)
    hi, lo = (check_nonnegative(v, "factor_variances") for v in factor_variances)
    noise_lo, noise_hi = (check_nonnegative(v, "noise_range") for v in noise_range)
    if not 0.0 <= edge_probability <= 1.0:
        raise ValueError(f"edge_probability must be in [0, 1]; got {edge_probability!r}")
    rng = np.random.default_rng(random_state)
    D, _ = np.linalg.qr(rng.standard_normal((V, M)))
    scale = np.sqrt(np.linspace(hi, lo, M))
    Xs, precisions, covariances, noises, means = [], [], [], [], []
    for n in sizes:
        P = np.eye(M)
        for j in range(M - 1):
            if rng.random() < edge_probability:
                P[j, j + 1] = P[j + 1, j] = rng.uniform(-0.4, 0.4)
        smallest = np.linalg.eigvalsh(P)[0]
        if smallest < 0.1:
            P += (0.1 - smallest) * np.eye(M)
        cov = np.linalg.inv(P)
        cov = 0.5 * (cov + cov.T)
        Z = rng.standard_normal((n, M)) @ np.linalg.cholesky(cov).T * scale
        psi = rng.uniform(noise_lo, noise_hi, V)
        mu = rng.normal(0.0, 3.0, V)
        Xs.append(Z @ D.T + rng.standard_normal((n, V)) * np.sqrt(psi) + mu)
        precisions.append(P)
        covariances.append(cov)
        noises.append(psi)
        means.append(mu)
    truth = FactorAnalysisTruth(components=np.ascontiguousarray(D.T), precisions=np.stack(precisions),
                                covariances=np.stack(covariances), noise_variances=np.stack(noises),
                                means=np.stack(means))
    return Xs, truth
