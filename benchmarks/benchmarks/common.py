"""Problems and entry points shared by the asv suite and ``benchmarks/compare.py``.

Every generator is seeded, so the asv benchmarks, ``compare.py`` and its worker processes all
see the same data. The ``mg_*`` functions are the one place where the suite reaches into
metaglasso below its estimator; they keep the benchmark files free of binding details.
"""

from __future__ import annotations

import contextlib
import warnings

import numpy as np

import metaglasso
from metaglasso import _core
from metaglasso import reference as ref

#: ρ of the paper's synthetic experiments.
RHO = 0.09
#: ρ of the graphical lasso cases.
GLASSO_RHO = 0.1
#: ρ and λ₂ of the fused-penalty cases (make_shared_networks data, V = 200): about the BIC choices of
#: ``metaglasso reproduce joint``.
FUSED_RHO, FUSED_BETA = 0.001, 0.1


# ---------------------------------------------------------------------------------------------
# Problems
# ---------------------------------------------------------------------------------------------


def factor_covariance(p, *, n_factors=5, noise=1.0, n_samples=None, seed=0):
    """Correlation matrix of a factor model: L Lᵀ + noise · I scaled to unit diagonal.

    L (p, n_factors) is standard normal. With ``n_samples`` the sample covariance (divided by N)
    of that many draws of the model is returned instead, scaled the same way. The population
    version is the ill-conditioned, densely correlated input on which scikit-learn's graphical
    lasso stops with ``FloatingPointError`` ("Non SPD result").

    Returns
    -------
    S : ndarray of shape (p, p)
    """
    rng = np.random.default_rng(seed)
    L = rng.standard_normal((p, n_factors))
    if n_samples is None:
        S = L @ L.T + noise * np.eye(p)
    else:
        X = rng.standard_normal((n_samples, n_factors)) @ L.T
        X += np.sqrt(noise) * rng.standard_normal((n_samples, p))
        X -= X.mean(axis=0)
        S = X.T @ X / n_samples
    d = np.sqrt(np.diag(S))
    S = S / np.outer(d, d)
    return 0.5 * (S + S.T)


def sparse_precision_covariance(p, n_samples, *, density=0.1, seed=0):
    """Sample covariance (divided by N, unit diagonal) of N draws of N(0, P⁻¹), P sparse.

    P has each upper off-diagonal entry nonzero with probability ``density``, uniform in
    (−1, 1), and a diagonal that makes it strictly diagonally dominant: the sparse latent
    precisions of the model, where a graphical lasso behaves as it typically does.

    Returns
    -------
    S : ndarray of shape (p, p)
    """
    rng = np.random.default_rng(seed)
    A = np.triu(rng.uniform(-1.0, 1.0, (p, p)) * (rng.random((p, p)) < density), 1)
    P = A + A.T
    P += np.eye(p) * (np.abs(P).sum(axis=1).max() + 0.5)
    C = np.linalg.cholesky(np.linalg.inv(P))
    X = rng.standard_normal((n_samples, p)) @ C.T
    X -= X.mean(axis=0)
    S = X.T @ X / n_samples
    d = np.sqrt(np.diag(S))
    S = S / np.outer(d, d)
    return 0.5 * (S + S.T)


def paper_problem(n_features, n_samples, n_datasets, n_components, seed=0):
    """K datasets drawn from the MGLASSO model as in the paper (``metaglasso.datasets``)."""
    from metaglasso.datasets import make_synthetic

    Xs, _ = make_synthetic(n_features, n_samples, n_datasets, n_components, random_state=seed)
    return Xs


def shared_networks_problem(n_features, n_samples, n_datasets, n_components, seed=0):
    """K datasets whose latent networks drift along the datasets (``make_shared_networks`` with the
    parameters of ``metaglasso reproduce joint``)."""
    from metaglasso._reproduce import JOINT_GENERATOR
    from metaglasso.datasets import make_shared_networks

    Xs, _ = make_shared_networks(n_features, n_samples, n_datasets, n_components, random_state=seed,
                                 **JOINT_GENERATOR)
    return Xs


def random_projection(n_features, n_components, seed=0):
    """A (V, M) matrix with orthonormal columns (Q of a Gaussian matrix)."""
    rng = np.random.default_rng(seed)
    Q, _ = np.linalg.qr(rng.standard_normal((n_features, n_components)))
    return np.ascontiguousarray(Q)


def spectrum_data(n_samples, n_features, *, rank=40, noise=0.3, seed=0):
    """Centred (N, V) data with a decaying spectrum: a rank-40 signal plus isotropic noise.

    The signal's latent scales fall linearly from 10 to 1, so the top-20 subspace is separated
    from the rest by a moderate gap (harder for Lanczos than the model's own data, whose
    signal sits far above the noise).
    """
    rng = np.random.default_rng(seed)
    scales = np.linspace(10.0, 1.0, rank)
    X = (rng.standard_normal((n_samples, rank)) * scales) @ rng.standard_normal((rank, n_features))
    X /= np.sqrt(n_features)
    X += noise * rng.standard_normal((n_samples, n_features))
    X -= X.mean(axis=0)
    return X


def eigen_residual(X, D):
    """max_j ‖S d_j − θ_j d_j‖ / max_j θ_j for S = XᵀX / N (X centred (N, V), D (V, m)).

    θ_j = d_jᵀ S d_j. Small for every column only when D spans an invariant subspace.
    """
    SD = X.T @ (X @ D) / X.shape[0]
    theta = np.einsum("ij,ij->j", D, SD)
    return float(np.max(np.linalg.norm(SD - D * theta, axis=0)) / np.max(theta))


def arpack_top_subspace(X, k, tol):
    """Top-k right singular vectors (V, k) of X (N, V) by ARPACK (``scipy.sparse.linalg.svds``)."""
    import inspect

    from scipy.sparse.linalg import svds

    seed = {"rng": 0} if "rng" in inspect.signature(svds).parameters else {"random_state": 0}
    return np.ascontiguousarray(svds(X, k=k, tol=tol, return_singular_vectors="vh", **seed)[2].T)


def subspace_distance(A, B):
    """sin of the largest principal angle between the column spans of orthonormal A and B."""
    s = np.linalg.svd(A.T @ B, compute_uv=False)
    return float(np.sqrt(max(0.0, 1.0 - float(np.min(s)) ** 2)))


# ---------------------------------------------------------------------------------------------
# Threads
# ---------------------------------------------------------------------------------------------


def limit_threads(n_threads):
    """Context limiting BLAS and OpenMP pools (NumPy's BLAS, the extension's libgomp) to n_threads.

    A no-op when threadpoolctl is not installed.
    """
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - threadpoolctl comes with scikit-learn
        return contextlib.nullcontext()
    return threadpool_limits(limits=n_threads)


# ---------------------------------------------------------------------------------------------
# metaglasso entry points
# ---------------------------------------------------------------------------------------------


def mg_graphical_lasso(S, alpha, tol):
    """Precision matrix of metaglasso's graphical lasso (the public function when exported)."""
    public = getattr(metaglasso, "graphical_lasso", None)
    if public is not None:
        return public(S, alpha, tol=tol, max_iter=1000)[1]
    return _core.graphical_lasso(S, alpha, tol=tol, max_iter=1000)["precision"]


def mg_graphical_lasso_name():
    """How mg_graphical_lasso reaches the solver, for reports."""
    if getattr(metaglasso, "graphical_lasso", None) is not None:
        return "metaglasso.graphical_lasso"
    return "metaglasso._core.graphical_lasso"


def glasso_gap(S, alpha, precision):
    """Duality gap of the graphical lasso at ``precision`` (one definition for every solver)."""
    return float(_core.glasso_duality_gap(S, alpha, precision))


def has_span_pca():
    """Whether the binding's pca_initial_projection has the data-span path (``compress``)."""
    return "compress" in (_core.pca_initial_projection.__doc__ or "")


def mg_pca(Xs, n_components, *, assume_centered=False, n_threads=0, compress=False):
    """PCA start (V, M) of metaglasso, never forming V × V.

    ``compress=False``: Lanczos on the data operator. ``compress=True``: the data-span path of a
    compressed fit (one Gram pass, then Lanczos in the span when ΣN_k < V); ignored by a binding
    without it.
    """
    kwargs = dict(assume_centered=assume_centered, n_threads=n_threads)
    if compress and has_span_pca():
        kwargs["compress"] = True
    return _core.pca_initial_projection(list(Xs), n_components, **kwargs)


def mg_profile(Xs, D, alpha, *, n_threads=0):
    """metaglasso's profile objective f(D) and Riemannian gradient (V, M) from the raw data."""
    out = _core.profile_objective(list(Xs), D, alpha, n_threads=n_threads)
    return float(out[0]), out[1]


def mg_fit(Xs, D0, alpha, *, solver="lbfgs", max_iter=None, tol=1e-8, n_threads=None):
    """A MetaGraphicalLasso fit from the start D0 (V, M); ConvergenceWarning silenced."""
    model = metaglasso.MetaGraphicalLasso(
        n_components=D0.shape[1], alpha=alpha, solver=solver, init=np.ascontiguousarray(D0.T),
        max_iter=max_iter, tol=tol, n_threads=n_threads,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", metaglasso.ConvergenceWarning)
        return model.fit(Xs)


def mg_fit_pca(Xs, n_components, alpha, *, n_threads=None, **params):
    """A default MetaGraphicalLasso fit (PCA start, lbfgs), as a user runs it; ``params`` are further
    estimator parameters (``penalty``, ``beta``, ``fused_pairs``, ...)."""
    model = metaglasso.MetaGraphicalLasso(n_components=n_components, alpha=alpha, n_threads=n_threads, **params)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", metaglasso.ConvergenceWarning)
        return model.fit(Xs)


__all__ = [
    "FUSED_BETA",
    "FUSED_RHO",
    "GLASSO_RHO",
    "RHO",
    "arpack_top_subspace",
    "eigen_residual",
    "factor_covariance",
    "glasso_gap",
    "has_span_pca",
    "limit_threads",
    "mg_fit",
    "mg_fit_pca",
    "mg_graphical_lasso",
    "mg_graphical_lasso_name",
    "mg_pca",
    "mg_profile",
    "paper_problem",
    "random_projection",
    "ref",
    "shared_networks_problem",
    "sparse_precision_covariance",
    "spectrum_data",
    "subspace_distance",
]
