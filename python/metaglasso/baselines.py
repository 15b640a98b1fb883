"""The PCA and ICA baselines of the paper's synthetic experiments.

Both baselines estimate M latent factors from all datasets at once and then fit a graphical lasso
per dataset in the space of those factors (section "Comparison methods" of the paper):

1. each dataset is centred and each of its variables scaled to unit variance, and the K
   standardized datasets are stacked row-wise into one (Σ_k N_k, V) matrix Z;
2. the factors are the top M principal directions of Z (``method="pca"``) or the M independent
   components that FastICA extracts from Z (``method="ica"``);
3. with D' the V × M matrix whose columns are the factors and S_k the covariance of the k-th
   *original* (centred, not scaled) dataset, Λ_k is the graphical lasso of D'ᵀ S_k D' and ε_k the
   MGLASSO closed form (tr S_k − tr Uᵀ S_k U) / (V − M), U an orthonormal basis of span D'.

The standardization only serves to find the factors. The latent covariances and noise variances
are estimated on the original scale of each dataset, the scale of the generating model (Σ_k, ε_k)
and of MGLASSO's estimates, so that the penalty ``alpha`` means the same as MGLASSO's and the
metrics of :mod:`metaglasso.metrics` compare like with like.

Use :func:`fit_baseline`; it returns a :class:`BaselineResult` with the attributes of a fitted
:class:`~metaglasso.MetaGraphicalLasso` (``components_``, ``precisions_``, ``covariances_``,
``noise_variances_``, ``partial_correlations_``).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from metaglasso._results import partial_correlations
from metaglasso._glasso import graphical_lasso
from metaglasso._data import as_datasets
from metaglasso._validation import (
    check_data_matrix,
    check_nonnegative,
    check_positive_int,
    check_random_state,
)
from metaglasso.exceptions import ConvergenceWarning

__all__ = ["BaselineResult", "fit_baseline", "principal_components", "standardize_datasets"]

_METHODS = ("pca", "ica")
# An eigenvalue of a Gram matrix below _GRAM_RTOL * max(n, V) * (largest eigenvalue) counts as 0.
_GRAM_RTOL = 100 * np.finfo(np.float64).eps


@dataclass
class BaselineResult:
    """Result of :func:`fit_baseline`, with the fitted attributes of MetaGraphicalLasso.

    Attributes
    ----------
    method : {"pca", "ica"}
        How the factors were found.
    components_ : ndarray of shape (n_components, n_features)
        D'ᵀ: the latent factors as unit-norm rows, each with its largest-magnitude entry positive.
        Orthonormal for PCA (ordered by decreasing variance of the standardized data); for ICA the
        FastICA unmixing vectors scaled to unit norm (not orthogonal in general; ordered by
        decreasing variance of their projection of the standardized data).
    precisions_ : ndarray of shape (n_datasets, n_components, n_components)
        Λ_k, the graphical lasso of D'ᵀ S_k D'.
    covariances_ : ndarray of shape (n_datasets, n_components, n_components)
        Σ_k = Λ_k⁻¹.
    noise_variances_ : ndarray of shape (n_datasets,)
        ε_k = (tr S_k − tr Uᵀ S_k U) / (V − M), U an orthonormal basis of the span of the factors
        (the same for PCA and ICA: FastICA's factors span the principal subspace).
    partial_correlations_ : ndarray of shape (n_datasets, n_components, n_components)
        −Λ_ij / sqrt(Λ_ii Λ_jj), ones on the diagonal.
    means_ : ndarray of shape (n_datasets, n_features)
        Per-dataset means.
    scales_ : ndarray of shape (n_datasets, n_features)
        Per-dataset standard deviations used for the standardization (1 for constant variables).
    alpha : float
        Graphical lasso penalty.
    n_features_in_ : int
    n_samples_ : ndarray of shape (n_datasets,)
    """

    method: str
    components_: np.ndarray
    precisions_: np.ndarray
    covariances_: np.ndarray
    noise_variances_: np.ndarray
    partial_correlations_: np.ndarray
    means_: np.ndarray
    scales_: np.ndarray
    alpha: float
    n_features_in_: int
    n_samples_: np.ndarray

    def __repr__(self):
        K, M = self.precisions_.shape[:2]
        return (
            f"BaselineResult(method={self.method!r}, n_components={M}, n_datasets={K}, "
            f"n_features={self.n_features_in_}, alpha={self.alpha!r})"
        )


def standardize_datasets(Xs):
    """Centre each dataset and scale each of its variables to unit variance.

    Parameters
    ----------
    Xs : sequence of K array-likes of shape (n_samples_k, n_features)
        The datasets (not modified).

    Returns
    -------
    Z : ndarray of shape (sum_k n_samples_k, n_features)
        The standardized datasets stacked row-wise (in the order given). Variances are the biased
        (1/N_k) ones; a variable that is constant within a dataset is left at zero there.
    means : ndarray of shape (n_datasets, n_features)
    scales : ndarray of shape (n_datasets, n_features)
        Standard deviations, with 1 in place of 0.
    """
    arrays = as_datasets(Xs).arrays
    means = np.stack([X.mean(axis=0) for X in arrays])
    scales = np.stack([X.std(axis=0) for X in arrays])
    scales[scales == 0] = 1.0
    Z = np.concatenate([(X - mu) / sd for X, mu, sd in zip(arrays, means, scales)])
    return Z, means, scales


def _fix_signs(components):
    """Flip each row so that its largest-magnitude entry (first one on ties) is positive."""
    idx = np.argmax(np.abs(components), axis=1)
    signs = np.sign(components[np.arange(components.shape[0]), idx])
    return components * signs[:, None]


def _top_eigenpairs(G, m):
    """The m largest eigenvalues (descending) of the symmetric G and their eigenvectors (columns).

    SciPy's subset eigensolver (MRRR, only m eigenvectors) is used when SciPy is installed: the
    same accuracy as the full decomposition at a fraction of its cost for large G. Otherwise NumPy's
    full ``eigh``.
    """
    n = G.shape[0]
    try:
        from scipy.linalg import eigh
    except ImportError:
        evals, evecs = np.linalg.eigh(G)
        return evals[::-1][:m], evecs[:, ::-1][:, :m]
    evals, evecs = eigh(G, subset_by_index=[n - m, n - 1], driver="evr")
    return evals[::-1], evecs[:, ::-1]


def principal_components(Z, n_components):
    """Top principal directions of a centred data matrix, through the smaller Gram matrix.

    With n samples and V features the right singular vectors of Z are found from the eigenvectors
    of Zᵀ Z (V × V) when V <= n, and from those of Z Zᵀ (n × n) mapped by Zᵀ otherwise, so that the
    cost is O(n V min(n, V) + min(n, V)³) and no n × V orthogonal factor is formed. Only the top
    M eigenpairs are computed when SciPy is installed (``scipy.linalg.eigh`` with
    ``subset_by_index``); NumPy's full ``eigh`` is used otherwise.

    Parameters
    ----------
    Z : ndarray of shape (n_samples, n_features)
        Centred data (not centred again here).
    n_components : int
        M <= min(n_samples, n_features).

    Returns
    -------
    components : ndarray of shape (n_components, n_features)
        Orthonormal rows, by decreasing singular value, each with its largest-magnitude entry
        positive.
    singular_values : ndarray of shape (n_components,)

    Raises
    ------
    ValueError
        If Z is not a finite 2-D array or has rank below ``n_components``.
    """
    Z = check_data_matrix(Z, "Z")
    n, V = Z.shape
    m = check_positive_int(n_components, "n_components")
    if m > min(n, V):
        raise ValueError(f"n_components must be <= min(n_samples, n_features)={min(n, V)}; got {m}")
    evals, evecs = _top_eigenpairs(Z.T @ Z if V <= n else Z @ Z.T, m)
    lam_max = evals[0]
    # Eigenvalues of the Gram matrix below its rounding level carry no direction.
    if not evals[-1] > _GRAM_RTOL * max(n, V) * lam_max:
        raise ValueError(
            f"the data are (numerically) of rank < n_components={m}: the M-th squared singular value "
            f"is {max(evals[-1], 0.0):.3e}, the largest {lam_max:.3e}; reduce n_components"
        )
    if V <= n:
        components = evecs.T
    else:
        components = (Z.T @ evecs / np.sqrt(evals)).T
        components /= np.linalg.norm(components, axis=1, keepdims=True)
    return np.ascontiguousarray(_fix_signs(components)), np.sqrt(evals)


def _fastica_components(Z, pca_components, seed, max_iter, tol):
    """FastICA unmixing vectors of Z (rows, feature space) with the principal subspace as whitening."""
    try:
        from sklearn.decomposition import FastICA
        from sklearn.exceptions import ConvergenceWarning as SklearnConvergenceWarning
    except ImportError:
        raise ImportError(
            "method='ica' requires scikit-learn (FastICA); install it with `pip install scikit-learn`"
        ) from None
    m = pca_components.shape[0]
    # FastICA whitens with the top-M principal directions of Z; doing that projection first is the
    # same model and keeps the ICA itself M-dimensional even when V is large.
    Y = Z @ pca_components.T
    ica = FastICA(n_components=m, whiten="unit-variance", max_iter=max_iter, tol=tol,
                  random_state=seed % 2**32)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ica.fit(Y)
    for w in caught:
        if issubclass(w.category, SklearnConvergenceWarning):
            warnings.warn(
                f"FastICA did not converge in ica_max_iter={max_iter} iterations (ica_tol={tol:g}); "
                "increase ica_max_iter or ica_tol",
                ConvergenceWarning,
                stacklevel=3,
            )
        else:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    W = ica.components_ @ pca_components  # unmixing in feature space: s = W z
    W /= np.linalg.norm(W, axis=1, keepdims=True)
    variances = np.sum((Z @ W.T) ** 2, axis=0)
    order = np.argsort(-variances, kind="stable")
    return np.ascontiguousarray(_fix_signs(W[order]))


def fit_baseline(
    Xs,
    n_components,
    method="pca",
    *,
    alpha=0.01,
    random_state=None,
    penalize_diagonal=True,
    glasso_tol=1e-10,
    glasso_max_iter=1000,
    ica_max_iter=1000,
    ica_tol=1e-4,
):
    """Fit the paper's PCA or ICA baseline: shared factors, then a graphical lasso per dataset.

    The factors are found on the standardized, stacked datasets (see :func:`standardize_datasets`):
    the top M principal directions (``"pca"``, computed by :func:`principal_components`) or the M
    FastICA components (``"ica"``; scikit-learn's :class:`~sklearn.decomposition.FastICA` with
    ``whiten="unit-variance"`` run on the M-dimensional principal subspace — the whitening FastICA
    itself applies — and the unmixing vectors mapped back to the V features and scaled to unit
    norm). With D' the matrix of factors as columns and S_k = (1/N_k) X̄_kᵀ X̄_k the covariance of
    the centred original dataset, each Λ_k is :func:`metaglasso.graphical_lasso` of D'ᵀ S_k D' and
    ε_k = (tr S_k − tr Uᵀ S_k U) / (V − M) with U an orthonormal basis of span D' (U = D' for PCA).

    Parameters
    ----------
    Xs : sequence of K array-likes of shape (n_samples_k, n_features)
        The datasets (not modified).
    n_components : int
        Number M of factors, 1 <= M < n_features and at most the rank of the stacked data.
    method : {"pca", "ica"}, default="pca"
    alpha : float, default=0.01
        Graphical lasso penalty on Λ_k (the paper uses MGLASSO's ρ).
    random_state : int, numpy Generator or None, default=None
        Seed of FastICA (None means seed 0, so results are reproducible); unused by PCA.
    penalize_diagonal : bool, default=True
        Penalise every entry of Λ_k, as MGLASSO does by default (the paper's ``|Λ_k|_1``); False
        penalises the off-diagonal entries only.
    glasso_tol, glasso_max_iter
        ``tol`` and ``max_iter`` of :func:`metaglasso.graphical_lasso`.
    ica_max_iter, ica_tol
        ``max_iter`` and ``tol`` of FastICA.

    Returns
    -------
    BaselineResult

    Raises
    ------
    ValueError
        For invalid datasets or parameters, or when the stacked data have rank < n_components.
    ImportError
        For ``method="ica"`` without scikit-learn.

    Warns
    -----
    ConvergenceWarning
        If FastICA or a graphical lasso does not converge.

    Notes
    -----
    On Gaussian data, such as those of :func:`metaglasso.datasets.make_synthetic`, the independent
    components are not identifiable: FastICA's answer depends on ``random_state`` and may change
    with rounding-level differences in its input (e.g. another BLAS), and it can fail to converge.
    The span of its factors, and hence ε_k, is the principal subspace in every case.

    Examples
    --------
    >>> from metaglasso.baselines import fit_baseline
    >>> from metaglasso.datasets import make_synthetic
    >>> Xs, truth = make_synthetic(50, 100, 3, 4, random_state=0)
    >>> result = fit_baseline(Xs, 4, "pca", alpha=0.09)
    >>> result.components_.shape, result.precisions_.shape
    ((4, 50), (3, 4, 4))
    """
    arrays = as_datasets(Xs).arrays
    V = arrays[0].shape[1]
    m = check_positive_int(n_components, "n_components")
    if m >= V:
        raise ValueError(f"n_components must be smaller than n_features={V}; got n_components={m}")
    if not isinstance(method, str) or method not in _METHODS:
        raise ValueError(f"method must be one of {_METHODS}; got {method!r}")
    alpha = check_nonnegative(alpha, "alpha")
    seed = check_random_state(random_state)
    glasso_tol = check_nonnegative(glasso_tol, "glasso_tol")
    glasso_max_iter = check_positive_int(glasso_max_iter, "glasso_max_iter")
    ica_max_iter = check_positive_int(ica_max_iter, "ica_max_iter")
    ica_tol = check_nonnegative(ica_tol, "ica_tol")
    n_total = sum(X.shape[0] for X in arrays)
    if m > n_total:
        raise ValueError(f"n_components must be <= the total number of samples {n_total}; got {m}")

    Z, means, scales = standardize_datasets(arrays)
    pca, _ = principal_components(Z, m)
    if method == "pca":
        components, basis = pca, pca
    else:
        components = _fastica_components(Z, pca, seed, ica_max_iter, ica_tol)
        basis = np.linalg.qr(components.T)[0].T
    del Z

    D = components.T
    precisions, covariances, noises = [], [], []
    for X, mu in zip(arrays, means):
        Xc = X - mu
        n = X.shape[0]
        Y = Xc @ D
        S_latent = Y.T @ Y / n
        S_latent = 0.5 * (S_latent + S_latent.T)
        total = np.sum(Xc * Xc) / n
        captured = np.sum((Xc @ basis.T) ** 2) / n
        noises.append(max(total - captured, 0.0) / (V - m))
        cov, prec = graphical_lasso(S_latent, alpha, tol=glasso_tol, max_iter=glasso_max_iter,
                                    penalize_diagonal=penalize_diagonal)
        precisions.append(prec)
        covariances.append(cov)
    precisions = np.stack(precisions)
    return BaselineResult(
        method=method,
        components_=components,
        precisions_=precisions,
        covariances_=np.stack(covariances),
        noise_variances_=np.array(noises),
        partial_correlations_=partial_correlations(precisions),
        means_=means,
        scales_=scales,
        alpha=alpha,
        n_features_in_=V,
        n_samples_=np.array([X.shape[0] for X in arrays]),
    )
