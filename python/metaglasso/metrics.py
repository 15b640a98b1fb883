"""Evaluation metrics of the paper's synthetic experiments (Table 1: Space, Eps, Dist, KLD).

All functions take latent factors in the orientation of the estimators' ``components_``: an array
of shape (n_components, n_features) whose rows are the factors (Dᵀ in the paper's notation, where
D is the V × M projection matrix).

Matching
    Estimated factors are identified only up to order and sign. :func:`match_components` pairs them
    with the true factors greedily by Euclidean distance, as described in the paper; the resulting
    ``(permutation, signs)`` is used by :func:`factor_similarity` (Dist) and
    :func:`latent_kl_divergence` (KLD). :func:`space_alignment` (Space) and :func:`noise_error` (Eps)
    do not depend on the matching.

:func:`evaluate` computes the four metrics for a fitted estimator (or a baseline result of
:func:`metaglasso.baselines.fit_baseline`) against the ground truth of
:func:`metaglasso.datasets.make_synthetic`.
"""

from __future__ import annotations

import numpy as np

from metaglasso._validation import as_real_array

__all__ = [
    "evaluate",
    "factor_similarity",
    "gaussian_kl_divergence",
    "latent_kl_divergence",
    "match_components",
    "noise_error",
    "space_alignment",
]

# Relative threshold below which a singular value of a set of factors counts as zero.
_RANK_RTOL = 1e-10


# ----------------------------------------------------------------------------------------------
# validation helpers


def _check_components(value, name, *, n_components=None, n_features=None):
    """``value`` as a finite float64 (n_components, n_features) array with non-zero rows."""
    arr = as_real_array(value, name).astype(np.float64, copy=False)
    if arr.ndim != 2 or arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ValueError(
            f"{name} must be a non-empty 2-D array of shape (n_components, n_features); got shape {arr.shape}"
        )
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or infinite values")
    if n_features is not None and arr.shape[1] != n_features:
        raise ValueError(f"{name} must have n_features={n_features} columns; got shape {arr.shape}")
    if n_components is not None and arr.shape[0] != n_components:
        raise ValueError(f"{name} must have n_components={n_components} rows; got shape {arr.shape}")
    norms = np.linalg.norm(arr, axis=1)
    if np.any(norms == 0):
        raise ValueError(f"{name} has an all-zero row (factor {int(np.argmin(norms))})")
    return arr


def _check_pair(components_true, components_est):
    true = _check_components(components_true, "components_true")
    est = _check_components(components_est, "components_est", n_components=true.shape[0], n_features=true.shape[1])
    return true, est


def _unit_rows(arr):
    return arr / np.linalg.norm(arr, axis=1, keepdims=True)


def _row_basis(arr, name):
    """Orthonormal basis (as rows) of the row span of ``arr``: the left singular vectors of ``arr.T``."""
    U, s, _ = np.linalg.svd(arr.T, full_matrices=False)
    if s[-1] <= _RANK_RTOL * s[0]:
        raise ValueError(
            f"{name} must have linearly independent rows; got singular values down to {s[-1]:.3e} "
            f"(largest {s[0]:.3e})"
        )
    return U.T


def _check_matching(permutation, signs, n_components):
    """Validate ``(permutation, signs)`` of :func:`match_components`; return them as arrays."""
    perm = np.asarray(permutation)
    if perm.shape != (n_components,) or not np.issubdtype(perm.dtype, np.integer):
        raise ValueError(
            f"permutation must be an integer array of shape ({n_components},); got "
            f"{'dtype ' + str(perm.dtype) + ' ' if perm.ndim == 1 else ''}shape {perm.shape}"
        )
    if not np.array_equal(np.sort(perm), np.arange(n_components)):
        raise ValueError(f"permutation must be a permutation of 0..{n_components - 1}; got {perm.tolist()}")
    sg = np.asarray(signs, dtype=np.float64)
    if sg.shape != (n_components,) or not np.all(np.abs(sg) == 1):
        raise ValueError(f"signs must be an array of shape ({n_components},) with entries +1 or -1; got {signs!r}")
    return perm.astype(np.intp), sg


def _check_covariance_stack(value, name, *, shape=None, like=None):
    """``value`` as finite, symmetric float64 (K, M, M); a single (M, M) matrix gives K = 1."""
    arr = as_real_array(value, name).astype(np.float64, copy=False)
    if arr.ndim == 2:
        arr = arr[None]
    if arr.ndim != 3 or arr.shape[1] != arr.shape[2] or arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ValueError(
            f"{name} must be a square matrix (M, M) or a stack of them (K, M, M); got shape {np.shape(value)}"
        )
    if shape is not None and arr.shape != shape:
        raise ValueError(f"{name} must have shape {shape} like {like}; got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or infinite values")
    scale = np.max(np.abs(arr), axis=(1, 2))
    asym = np.max(np.abs(arr - arr.transpose(0, 2, 1)), axis=(1, 2))
    bad = np.flatnonzero(asym > 1e-8 * scale)
    if bad.size:
        k = int(bad[0])
        raise ValueError(f"{name}[{k}] must be symmetric; got max |A - A.T| = {asym[k]:.3e}")
    return 0.5 * (arr + arr.transpose(0, 2, 1))


def _cholesky_stack(arr, name):
    chols = []
    for k, A in enumerate(arr):
        try:
            chols.append(np.linalg.cholesky(A))
        except np.linalg.LinAlgError:
            raise ValueError(f"{name}[{k}] must be positive definite") from None
    return np.stack(chols)


# ----------------------------------------------------------------------------------------------
# matching


def match_components(components_true, components_est):
    """Match estimated latent factors to the true ones, greedily by Euclidean distance.

    The procedure of the paper's synthetic experiments: among all pairs (true factor i, estimated
    factor j) pick the one at the smallest distance, fix it, remove both factors and repeat with the
    remaining ones until every true factor has a partner. The distance between the two factors is
    ``min(‖t_i − e_j‖, ‖t_i + e_j‖)`` (an estimated factor may be flipped), computed after scaling
    both to unit norm, and ``signs[i]`` is the sign attaining it. For unit-norm factors
    ``‖t − e‖² = 2 − 2 tᵀe``, so the greedy step picks the pair with the largest ``|tᵀe|``.

    Greedy matching is not the optimal (Hungarian) assignment: a first pair that is very close can
    force a poor pair later. It is used here because the paper's numbers are computed with it.

    Ties are broken deterministically: among pairs at exactly the same distance, the smallest true
    index wins, then the smallest estimated index; an estimated factor exactly orthogonal to its
    partner gets sign +1.

    Parameters
    ----------
    components_true : array-like of shape (n_components, n_features)
        True factors as rows (``truth.components`` of :func:`metaglasso.datasets.make_synthetic`).
    components_est : array-like of shape (n_components, n_features)
        Estimated factors as rows (an estimator's ``components_``); need not be orthonormal.

    Returns
    -------
    permutation : ndarray of int of shape (n_components,)
        ``permutation[i]`` is the estimated factor matched to true factor ``i``.
    signs : ndarray of float of shape (n_components,)
        +1 or −1; the aligned estimate is ``signs[:, None] * components_est[permutation]``.

    Raises
    ------
    ValueError
        If the arrays are not finite 2-D arrays of the same shape or have an all-zero row.

    Examples
    --------
    >>> import numpy as np
    >>> from metaglasso.metrics import match_components
    >>> true = np.eye(3)
    >>> est = np.array([[0.0, 1.0, 0.0], [0.0, 0.0, -1.0], [1.0, 0.0, 0.0]])
    >>> match_components(true, est)
    (array([2, 0, 1]), array([ 1.,  1., -1.]))
    """
    true, est = _check_pair(components_true, components_est)
    cos = _unit_rows(true) @ _unit_rows(est).T
    # Distance of the better sign, sqrt(2 - 2|cos|); ordering by it equals ordering by -|cos|, and
    # np.argmax over the row-major flattening returns the first (smallest i, then j) maximiser.
    closeness = np.abs(cos)
    m = true.shape[0]
    permutation = np.empty(m, dtype=np.intp)
    signs = np.empty(m)
    work = closeness.copy()
    for _ in range(m):
        i, j = np.unravel_index(int(np.argmax(work)), work.shape)
        permutation[i] = j
        signs[i] = -1.0 if cos[i, j] < 0 else 1.0
        work[i, :] = -np.inf
        work[:, j] = -np.inf
    return permutation, signs


# ----------------------------------------------------------------------------------------------
# the four metrics


def space_alignment(components_true, components_est):
    """Alignment of the subspaces spanned by two sets of factors (Table 1, "Space").

    The sum of the singular values of ``Dᵀ D'`` where D and D' are orthonormal bases of the spans
    of the true and estimated factors (the paper's D is orthonormal; for a non-orthonormal estimate,
    e.g. ICA, the left singular vectors of D' are used, as in the paper). The singular values are
    the cosines of the principal angles between the two subspaces, so the value lies in
    ``[0, min(M, M')]`` and equals M exactly when both span the same subspace. It does not depend on
    the order, signs, scale or any invertible mixing of the factors within their span.

    Parameters
    ----------
    components_true : array-like of shape (n_components, n_features)
        True factors as rows.
    components_est : array-like of shape (n_components_est, n_features)
        Estimated factors as rows; linearly independent. ``n_components_est`` may differ from
        ``n_components``.

    Returns
    -------
    float
        The alignment, in ``[0, min(n_components, n_components_est)]``.

    Raises
    ------
    ValueError
        If an input is not a finite 2-D array, the numbers of features differ, or the rows of an
        input are linearly dependent.
    """
    true = _check_components(components_true, "components_true")
    est = _check_components(components_est, "components_est", n_features=true.shape[1])
    Bt = _row_basis(true, "components_true")
    Be = _row_basis(est, "components_est")
    return float(np.sum(np.linalg.svd(Bt @ Be.T, compute_uv=False)))


def noise_error(noise_variances_true, noise_variances_est):
    """Mean absolute error of the noise variances ε_k (Table 1, "Eps").

    Parameters
    ----------
    noise_variances_true : array-like of shape (n_datasets,)
    noise_variances_est : array-like of shape (n_datasets,)

    Returns
    -------
    float
        ``mean_k |ε̂_k − ε_k|``.

    Raises
    ------
    ValueError
        If the inputs are not finite 1-D arrays of the same non-zero length.
    """
    true = as_real_array(noise_variances_true, "noise_variances_true").astype(np.float64, copy=False)
    est = as_real_array(noise_variances_est, "noise_variances_est").astype(np.float64, copy=False)
    if true.ndim != 1 or true.size == 0:
        raise ValueError(f"noise_variances_true must be a non-empty 1-D array; got shape {true.shape}")
    if est.shape != true.shape:
        raise ValueError(
            f"noise_variances_est must have shape {true.shape} like noise_variances_true; got shape {est.shape}"
        )
    for name, arr in (("noise_variances_true", true), ("noise_variances_est", est)):
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"{name} contains NaN or infinite values")
    return float(np.mean(np.abs(est - true)))


def factor_similarity(components_true, components_est, permutation=None, signs=None):
    """Mean inner product of matched factors (Table 1, "Dist").

    Every factor is first scaled to unit norm (the true and MGLASSO/PCA factors already are; ICA
    factors are not), so each term is the cosine of the angle between a true factor and its matched,
    sign-aligned estimate::

        Dist = (1/M) Σ_i signs[i] · ⟨t_i/‖t_i‖, e_{permutation[i]}/‖e_{permutation[i]}‖⟩.

    The paper also averages over the K datasets; the factors are shared, so that average is the
    same number.

    Parameters
    ----------
    components_true : array-like of shape (n_components, n_features)
        True factors as rows.
    components_est : array-like of shape (n_components, n_features)
        Estimated factors as rows.
    permutation, signs : array-like of shape (n_components,), optional
        A matching as returned by :func:`match_components`; computed with it when omitted (give both
        or neither).

    Returns
    -------
    float
        In ``[-1, 1]``; 1 when the estimate equals the truth up to order, signs and scale. With the
        greedy matching's sign choice it is in ``[0, 1]``.

    Raises
    ------
    ValueError
        For inputs of the wrong shape, non-finite entries, all-zero rows, or an invalid matching.
    """
    true, est = _check_pair(components_true, components_est)
    perm, sg = _resolve_matching(true, est, permutation, signs)
    cos = np.sum(_unit_rows(true) * _unit_rows(est)[perm], axis=1) * sg
    return float(np.mean(cos))


def _resolve_matching(true, est, permutation, signs):
    if (permutation is None) != (signs is None):
        raise ValueError("permutation and signs must be given together (or both omitted)")
    if permutation is None:
        return match_components(true, est)
    return _check_matching(permutation, signs, true.shape[0])


def gaussian_kl_divergence(covariances_p, covariances_q):
    r"""Kullback–Leibler divergence KL(N(0, Σ_p) ‖ N(0, Σ_q)) of zero-mean Gaussians.

    .. math::

        \mathrm{KL} = \tfrac12\left[\operatorname{tr}(\Sigma_q^{-1}\Sigma_p) - M
        + \log\det\Sigma_q - \log\det\Sigma_p\right],

    computed with Cholesky factors (``tr(Σ_q⁻¹Σ_p) = ‖L_q⁻¹ L_p‖_F²``).

    Parameters
    ----------
    covariances_p : array-like of shape (M, M) or (K, M, M)
        Covariances of the first argument (the reference, e.g. the ground truth).
    covariances_q : array-like of the same shape
        Covariances of the second argument (e.g. the estimate).

    Returns
    -------
    ndarray of shape (K,)
        One divergence per pair (K = 1 for 2-D input), each >= 0 (up to rounding).

    Raises
    ------
    ValueError
        If the inputs are not finite, symmetric, positive definite and of the same shape.
    """
    P = _check_covariance_stack(covariances_p, "covariances_p")
    Q = _check_covariance_stack(covariances_q, "covariances_q", shape=P.shape, like="covariances_p")
    Lp = _cholesky_stack(P, "covariances_p")
    Lq = _cholesky_stack(Q, "covariances_q")
    m = P.shape[1]
    out = np.empty(P.shape[0])
    for k in range(P.shape[0]):
        A = np.linalg.solve(np.tril(Lq[k]), Lp[k])  # L_q⁻¹ L_p
        logdet_p = 2.0 * np.sum(np.log(np.diagonal(Lp[k])))
        logdet_q = 2.0 * np.sum(np.log(np.diagonal(Lq[k])))
        out[k] = 0.5 * (np.sum(A * A) - m + logdet_q - logdet_p)
    return out


def latent_kl_divergence(covariances_true, covariances_est, permutation, signs):
    r"""Mean KL divergence of the latent Gaussians after matching (Table 1, "KLD").

    The estimated latent covariances are first re-expressed in the order and signs of the true
    factors, :math:`\tilde\Sigma_k[i, j] = s_i s_j \hat\Sigma_k[\pi_i, \pi_j]` with
    ``(π, s) = (permutation, signs)`` from :func:`match_components`, and then

    .. math::

        \mathrm{KLD} = \frac1K \sum_k \mathrm{KL}\big(\mathcal N(0, \Sigma_k) \,\|\,
        \mathcal N(0, \tilde\Sigma_k)\big)
        = \frac1K \sum_k \tfrac12\left[\operatorname{tr}(\tilde\Sigma_k^{-1}\Sigma_k) - M
        + \log\det\tilde\Sigma_k - \log\det\Sigma_k\right],

    i.e. the divergence of the estimate from the truth (truth first).

    Parameters
    ----------
    covariances_true : array-like of shape (n_datasets, M, M) or (M, M)
        True latent covariances Σ_k.
    covariances_est : array-like of the same shape
        Estimated latent covariances (an estimator's ``covariances_``).
    permutation : array-like of int of shape (M,)
    signs : array-like of shape (M,)
        The matching of :func:`match_components` (identity and ones for no re-ordering).

    Returns
    -------
    float
        The mean divergence, >= 0.

    Raises
    ------
    ValueError
        If a matrix is not finite, symmetric and positive definite, the shapes differ, or the
        matching is not a valid permutation with ±1 signs.
    """
    true = _check_covariance_stack(covariances_true, "covariances_true")
    est = _check_covariance_stack(covariances_est, "covariances_est", shape=true.shape, like="covariances_true")
    perm, sg = _check_matching(permutation, signs, true.shape[1])
    aligned = est[:, perm][:, :, perm] * np.outer(sg, sg)
    return float(np.mean(gaussian_kl_divergence(true, aligned)))


# ----------------------------------------------------------------------------------------------
# all four at once


def _suffix(obj, label):
    """"_" for a fitted estimator (``components_``), "" for a ground truth (``components``)."""
    if getattr(obj, "components_", None) is not None:
        return "_"
    if getattr(obj, "components", None) is not None:
        return ""
    raise ValueError(
        f"{label} must have a components_ (fitted estimator) or components (ground truth) attribute "
        f"of shape (n_components, n_features); got {type(obj).__name__}"
    )


def _latent_covariances(obj, label, suffix):
    """``obj.covariances<suffix>``, or the inverse of ``obj.precisions<suffix>``."""
    cov = getattr(obj, f"covariances{suffix}", None)
    if cov is not None:
        return cov
    prec = getattr(obj, f"precisions{suffix}", None)
    if prec is None:
        raise ValueError(f"{label} has neither covariances{suffix} nor precisions{suffix}")
    P = _check_covariance_stack(prec, f"{label}.precisions{suffix}")
    _cholesky_stack(P, f"{label}.precisions{suffix}")
    return np.linalg.inv(P)


def evaluate(truth, estimate):
    """The paper's four synthetic-data metrics for one fit.

    Parameters
    ----------
    truth : object
        Ground truth with attributes ``components`` (M, V), ``covariances`` (K, M, M) (or
        ``precisions``) and ``noise_variances`` (K,), such as the
        :class:`~metaglasso.datasets.SyntheticTruth` of :func:`metaglasso.datasets.make_synthetic`.
    estimate : object
        A fitted :class:`~metaglasso.MetaGraphicalLasso` or a
        :class:`~metaglasso.baselines.BaselineResult`: attributes ``components_`` (M, V),
        ``covariances_`` (K, M, M) (or ``precisions_``) and optionally ``noise_variances_`` (K,).

        Either argument may use either naming: attributes with a trailing underscore are read when
        ``components_`` exists, plain names otherwise (so two fits, or a truth with itself, can be
        compared).

    Returns
    -------
    dict
        ``{"space": float, "eps": float, "dist": float, "kld": float}``:

        - ``space`` — :func:`space_alignment`, in [0, M];
        - ``eps`` — :func:`noise_error`; NaN when ``estimate`` has no noise variances (both
          baselines of :mod:`metaglasso.baselines` have them);
        - ``dist`` — :func:`factor_similarity` under the greedy matching, <= 1;
        - ``kld`` — :func:`latent_kl_divergence` KL(truth ‖ estimate) under the same matching.

    Raises
    ------
    ValueError
        If an attribute is missing or the shapes of truth and estimate disagree.

    Examples
    --------
    >>> from metaglasso import MetaGraphicalLasso
    >>> from metaglasso.datasets import make_synthetic
    >>> from metaglasso.metrics import evaluate
    >>> Xs, truth = make_synthetic(50, 200, 3, 3, random_state=0)
    >>> scores = evaluate(truth, MetaGraphicalLasso(n_components=3, alpha=0.09).fit(Xs))
    >>> sorted(scores)
    ['dist', 'eps', 'kld', 'space']
    """
    t_suffix = _suffix(truth, "truth")
    e_suffix = _suffix(estimate, "estimate")
    comp_true = getattr(truth, f"components{t_suffix}")
    comp_est = getattr(estimate, f"components{e_suffix}")
    true, est = _check_pair(comp_true, comp_est)
    cov_true = _check_covariance_stack(_latent_covariances(truth, "truth", t_suffix), "truth covariances")
    cov_est = _check_covariance_stack(_latent_covariances(estimate, "estimate", e_suffix), "estimate covariances")
    if cov_true.shape[1] != true.shape[0]:
        raise ValueError(
            f"truth covariances have shape {cov_true.shape}; expected (K, {true.shape[0]}, {true.shape[0]})"
        )
    if cov_est.shape != cov_true.shape:
        raise ValueError(
            f"estimate covariances have shape {cov_est.shape}; expected {cov_true.shape} like the truth"
        )
    perm, sg = match_components(true, est)
    eps_est = getattr(estimate, f"noise_variances{e_suffix}", None)
    if eps_est is None:
        eps = float("nan")
    else:
        eps_true = getattr(truth, f"noise_variances{t_suffix}", None)
        if eps_true is None:
            raise ValueError("truth must have a noise_variances attribute of shape (n_datasets,)")
        eps = noise_error(eps_true, eps_est)
    return {
        "space": space_alignment(true, est),
        "eps": eps,
        "dist": factor_similarity(true, est, perm, sg),
        "kld": latent_kl_divergence(cov_true, cov_est, perm, sg),
    }
