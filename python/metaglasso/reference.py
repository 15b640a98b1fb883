"""Pure-NumPy reference implementation of the Meta Graphical Lasso (MGLASSO).

This module is the slow, readable counterpart of the C++ core (``metaglasso._core``). It
follows the paper's "Proposed method" section equation by equation and never calls the
compiled extension, so tests and benchmarks can compare the two independently.

The model
---------
There are K datasets ``X_k`` of shape (N_k, V). With ``S_k`` the sample covariance of dataset k
(centred and divided by N_k, or ``X_kᵀ X_k / N_k`` when ``assume_centered``), a projection
``D`` (V, M) with ``DᵀD = I`` and, per dataset, a latent precision ``Λ_k = Σ_k⁻¹`` (M, M) and a
noise variance ``ε_k > 0``, the data of dataset k is modelled as ``N(0, Φ_k)`` with (eq. 5)

    Φ_k = D Σ_k Dᵀ + ε_k (I − D Dᵀ),

and the objective is ``E = Σ_k L_k`` (eq. 6), which for orthonormal D reduces to

    L_k = tr(Λ_k A_k) + (tr S_k − tr A_k) / ε_k − log|Λ_k| + (V − M) log ε_k + ρ_k ‖Λ_k‖₁,

with ``A_k = Dᵀ S_k D``. ``ρ_k >= 0`` is dataset k's penalty: the model-level functions
(:func:`profile_objective`, :func:`objective_dense`, :func:`fit_adam`, :func:`fit_lbfgs`) take
``alpha`` as one float (the same ρ for every dataset, as in the paper) or K floats;
:func:`scaled_penalties` gives ρ_k ∝ 1/√N_k for datasets of different sizes.

``‖·‖₁`` is the paper's (Notations): the sum of the absolute values of *all* entries, so eq. 6
penalises the diagonal of Λ_k too. That is the default (``penalize_diagonal=True``) of the
model-level functions; ``penalize_diagonal=False`` sums the off-diagonal absolute values only.
The plain graphical lasso functions (:func:`graphical_lasso`, :func:`glasso_objective`,
:func:`glasso_duality_gap`) and :func:`dataset_objective` keep scikit-learn's convention, the
diagonal unpenalised, as their default.

For a fixed D the optimal ``ε_k`` is eq. 16 and the optimal ``Λ_k`` is the graphical lasso of
``A_k`` with penalty ρ_k (eq. 13). The profile objective ``f(D)`` is E at these optima; its
Euclidean gradient is eq. 10 and its Riemannian gradient on the Stiefel manifold is eq. 9.
Steps are pulled back onto the manifold by the polar retraction (eqs. 7-8).

The model is invariant under permuting the factors and flipping their signs
(``D → D P S``, ``Λ_k → (PS)ᵀ Λ_k (PS)``): f(D) and every ε_k are unchanged and the
Riemannian gradient becomes ``G P S``. :func:`canonical_form` picks one representative (factors
by decreasing latent variance, each column of D with its largest entry positive), and
:func:`fit_adam` and :func:`fit_lbfgs` return their result in it.

Coupled networks
----------------
The K latent networks can also be estimated jointly (the joint graphical lasso of Danaher,
Wang & Witten 2014): the model-level functions take ``penalty="fused"`` or ``"group"`` with a
weight ``beta = β > 0``, and E gains, once::

    fused:  P(Λ) = β Σ_{(k,l)} Σ_{i≠j} |Λ_k,ij − Λ_l,ij|   (all pairs k < l, or k, k+1),
    group:  P(Λ) = β Σ_{i≠j} √(Σ_k Λ_k,ij²).

ε_k is still eq. 16; the Λ_k at a fixed D solve the joint problem
(:func:`joint_graphical_lasso`, objective :func:`joint_objective`, certificate
:func:`joint_kkt_residual`) instead of K separate graphical lassos, and the gradient is still
eq. 10, since the Λ_k are optimal and P does not involve D. ``penalty="lasso"`` (the default)
or β = 0 is the model above, by the same code.

The V × V covariance is never formed by the model functions: ``S_k D`` is computed as
``X_cᵀ (X_c D) / N_k``. Only :func:`objective_dense` (an independent check of the trace and
log-determinant identities) and :func:`pca_initial_projection` form V × V matrices.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = [
    "SplitMix64",
    "FitResult",
    "canonical_form",
    "dataset_objective",
    "empirical_covariance",
    "fit_adam",
    "fit_lbfgs",
    "glasso_duality_gap",
    "glasso_objective",
    "graphical_lasso",
    "joint_graphical_lasso",
    "joint_kkt_residual",
    "joint_objective",
    "noise_variance",
    "objective_dense",
    "pca_initial_projection",
    "polar_retraction",
    "profile_objective",
    "random_initial_projection",
    "riemannian_gradient",
    "scaled_penalties",
    "tangent_projection",
]

_MASK64 = (1 << 64) - 1


# ---------------------------------------------------------------------------------------------
# Random numbers (identical to cpp/src/random.cpp)
# ---------------------------------------------------------------------------------------------


class SplitMix64:
    """SplitMix64 generator (Steele, Lea & Flood 2014), bit-identical to the C++ core.

    Parameters
    ----------
    seed : int
        Initial 64-bit state (taken modulo 2**64).
    """

    def __init__(self, seed: int) -> None:
        self.state = int(seed) & _MASK64

    def next(self) -> int:
        """Return the next 64-bit output as a Python int in [0, 2**64)."""
        self.state = (self.state + 0x9E3779B97F4A7C15) & _MASK64
        z = self.state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK64
        return z ^ (z >> 31)

    def uniform(self) -> float:
        """Return ``(next() >> 11) * 2**-53``, a double in [0, 1)."""
        return float(self.next() >> 11) * 2.0**-53

    def permutation(self, n: int) -> list[int]:
        """Fisher-Yates shuffle of ``0..n-1``.

        For i = n-1 down to 1, swap positions i and ``next() % (i + 1)``.

        Parameters
        ----------
        n : int
            Length of the permutation.

        Returns
        -------
        list of int
            A permutation of ``range(n)``.
        """
        p = list(range(n))
        for i in range(n - 1, 0, -1):
            j = self.next() % (i + 1)
            p[i], p[j] = p[j], p[i]
        return p


# ---------------------------------------------------------------------------------------------
# Stiefel manifold: retraction, projection, gradient (eqs. 7-9)
# ---------------------------------------------------------------------------------------------


def polar_retraction(Z: np.ndarray) -> np.ndarray:
    """Polar retraction onto the Stiefel manifold, eqs. 7-8.

    Parameters
    ----------
    Z : ndarray of shape (V, M)
        Full column rank matrix, V >= M.

    Returns
    -------
    D : ndarray of shape (V, M)
        ``P Qᵀ`` from the thin SVD ``Z = P S Qᵀ``; ``DᵀD = I``.
    """
    Z = np.asarray(Z, dtype=np.float64)
    if Z.ndim != 2 or Z.shape[1] > Z.shape[0]:
        raise ValueError(f"polar_retraction needs a 2-D array with rows >= cols; got shape {Z.shape}")
    if not np.all(np.isfinite(Z)):
        raise FloatingPointError("polar_retraction: non-finite input")
    P, s, Qt = np.linalg.svd(Z, full_matrices=False)
    if s[-1] <= 1e-14 * s[0]:
        raise FloatingPointError("polar_retraction: the matrix is rank deficient")
    return P @ Qt


def tangent_projection(D: np.ndarray, xi: np.ndarray) -> np.ndarray:
    """Orthogonal projection onto the tangent space of the Stiefel manifold at D.

    Parameters
    ----------
    D : ndarray of shape (V, M)
        Point with ``DᵀD = I``.
    xi : ndarray of shape (V, M)
        Any matrix.

    Returns
    -------
    ndarray of shape (V, M)
        ``xi − D sym(Dᵀ xi)`` with ``sym(B) = (B + Bᵀ) / 2``.
    """
    DtX = D.T @ xi
    return xi - 0.5 * D @ (DtX + DtX.T)


def riemannian_gradient(D: np.ndarray, G: np.ndarray) -> np.ndarray:
    """Riemannian gradient on the Stiefel manifold, eq. 9.

    Parameters
    ----------
    D : ndarray of shape (V, M)
        Point with ``DᵀD = I``.
    G : ndarray of shape (V, M)
        Euclidean gradient ∂E/∂D.

    Returns
    -------
    ndarray of shape (V, M)
        ``G − ½ D (Dᵀ G + Gᵀ D)``.
    """
    return G - 0.5 * D @ (D.T @ G + G.T @ D)


def random_initial_projection(n_features: int, n_components: int, seed: int = 0) -> np.ndarray:
    """Random start of D: polar factor of a matrix of SplitMix64 uniforms.

    The (V, M) matrix is filled column by column (column index outer, row index inner),
    exactly as the C++ core does, then retracted.

    Parameters
    ----------
    n_features : int
        V.
    n_components : int
        M, with 1 <= M < V.
    seed : int
        SplitMix64 seed.

    Returns
    -------
    D : ndarray of shape (V, M)
    """
    if not 1 <= n_components < n_features:
        raise ValueError(
            f"n_components must satisfy 1 <= n_components < n_features; got n_components={n_components}, "
            f"n_features={n_features}"
        )
    rng = SplitMix64(seed)
    Z = np.empty((n_features, n_components))
    for j in range(n_components):
        for i in range(n_features):
            Z[i, j] = rng.uniform()
    return polar_retraction(Z)


# ---------------------------------------------------------------------------------------------
# Data handling
# ---------------------------------------------------------------------------------------------


@dataclass
class _Dataset:
    """Centred data X_c (N, V) of one dataset, its size N and tr S = ‖X_c‖²_F / N."""

    Xc: np.ndarray
    n_samples: int
    trace: float

    def project(self, D: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Return ``S D`` (V, M) and ``Dᵀ S D`` (M, M) without forming S."""
        SD = self.Xc.T @ (self.Xc @ D) / self.n_samples
        A = D.T @ SD
        return SD, 0.5 * (A + A.T)


def _prepare(Xs, assume_centered: bool) -> list[_Dataset]:
    if isinstance(Xs, np.ndarray) and Xs.ndim == 2:
        Xs = [Xs]
    out = []
    n_features = None
    for k, X in enumerate(Xs):
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2:
            raise ValueError(f"dataset {k} must be a 2-D array (N_k, V); got shape {X.shape}")
        if n_features is None:
            n_features = X.shape[1]
        elif X.shape[1] != n_features:
            raise ValueError(f"dataset {k} has {X.shape[1]} features, expected {n_features}")
        if X.shape[0] < 2:
            raise ValueError(f"dataset {k} needs at least 2 samples; got {X.shape[0]}")
        if not np.all(np.isfinite(X)):
            raise ValueError(f"dataset {k} contains NaN or infinite values")
        Xc = X if assume_centered else X - X.mean(axis=0)
        n = X.shape[0]
        out.append(_Dataset(Xc=Xc, n_samples=n, trace=float(np.sum(Xc * Xc)) / n))
    if not out:
        raise ValueError("at least one dataset is required")
    return out


def empirical_covariance(X: np.ndarray, assume_centered: bool = False) -> np.ndarray:
    """Sample covariance divided by N (dense; for checks on small V only).

    Parameters
    ----------
    X : ndarray of shape (N, V)
    assume_centered : bool
        If True, return ``XᵀX / N`` without removing the mean.

    Returns
    -------
    S : ndarray of shape (V, V)
    """
    X = np.asarray(X, dtype=np.float64)
    Xc = X if assume_centered else X - X.mean(axis=0)
    return Xc.T @ Xc / X.shape[0]


def pca_initial_projection(Xs, n_components: int, assume_centered: bool = False) -> np.ndarray:
    """PCA start of D: the top-M eigenvectors of ``Σ_k S_k``.

    Each column's sign is fixed so that its entry of largest magnitude is positive.

    Parameters
    ----------
    Xs : sequence of ndarray, each of shape (N_k, V)
    n_components : int
        M, with 1 <= M < V.
    assume_centered : bool

    Returns
    -------
    D : ndarray of shape (V, M)
    """
    data = _prepare(Xs, assume_centered)
    V = data[0].Xc.shape[1]
    if not 1 <= n_components < V:
        raise ValueError(
            f"n_components must satisfy 1 <= n_components < n_features; got n_components={n_components}, "
            f"n_features={V}"
        )
    total = np.zeros((V, V))
    for d in data:
        total += d.Xc.T @ d.Xc / d.n_samples
    total = 0.5 * (total + total.T)
    values, vectors = np.linalg.eigh(total)
    D = vectors[:, np.argsort(values)[::-1][:n_components]].copy()
    for j in range(n_components):
        if D[np.argmax(np.abs(D[:, j])), j] < 0:
            D[:, j] = -D[:, j]
    return D


# ---------------------------------------------------------------------------------------------
# Graphical lasso (eqs. 1-2, 13)
# ---------------------------------------------------------------------------------------------


def _l1(precision: np.ndarray, penalize_diagonal: bool) -> float:
    total = float(np.abs(precision).sum())
    if not penalize_diagonal:
        total -= float(np.abs(np.diag(precision)).sum())
    return total


def glasso_objective(S: np.ndarray, alpha: float, precision: np.ndarray, penalize_diagonal: bool = False) -> float:
    """Penalised graphical lasso objective ``tr(SΘ) − log|Θ| + ρ‖Θ‖₁`` (eq. 1).

    Parameters
    ----------
    S : ndarray of shape (p, p)
    alpha : float
        ρ >= 0.
    precision : ndarray of shape (p, p)
        Symmetric positive definite Θ.
    penalize_diagonal : bool

    Returns
    -------
    float
    """
    sign, logdet = np.linalg.slogdet(precision)
    if sign <= 0:
        raise np.linalg.LinAlgError("precision is not positive definite")
    return float(np.sum(S * precision)) - logdet + alpha * _l1(precision, penalize_diagonal)


def glasso_duality_gap(S: np.ndarray, alpha: float, precision: np.ndarray, penalize_diagonal: bool = False) -> float:
    """Duality gap of the graphical lasso at a positive definite Θ.

    The dual of eq. 1 is ``max log|W̃| + p`` over symmetric W̃ with ``|W̃ᵢⱼ − Sᵢⱼ| <= ρ`` off the
    diagonal and ``W̃ᵢᵢ = Sᵢᵢ`` (``|W̃ᵢᵢ − Sᵢᵢ| <= ρ`` when the diagonal is penalised). The
    dual point is ``W̃ = S + clip(Θ⁻¹ − S, −ρ, ρ)`` (the diagonal set to ``Sᵢᵢ`` when it is
    not penalised), and the gap is ``primal(Θ) − dual(W̃) >= 0``, zero exactly at the optimum.

    Parameters
    ----------
    S : ndarray of shape (p, p)
    alpha : float
        ρ >= 0.
    precision : ndarray of shape (p, p)
        Symmetric positive definite Θ.
    penalize_diagonal : bool

    Returns
    -------
    float
        The gap, or ``inf`` when W̃ is not positive definite.
    """
    p = S.shape[0]
    W = np.linalg.inv(precision)
    W = 0.5 * (W + W.T)
    W_dual = S + np.clip(W - S, -alpha, alpha)
    if not penalize_diagonal:
        np.fill_diagonal(W_dual, np.diag(S))
    sign, logdet_dual = np.linalg.slogdet(W_dual)
    if sign <= 0:
        return float("inf")
    return glasso_objective(S, alpha, precision, penalize_diagonal) - (logdet_dual + p)


def _soft_threshold(x: float, t: float) -> float:
    if x > t:
        return x - t
    if x < -t:
        return x + t
    return 0.0


def _lasso_kkt_solve(W: np.ndarray, s: np.ndarray, alpha: float, beta: np.ndarray) -> np.ndarray | None:
    """Exact lasso solution on the support and signs of ``beta``, or None if KKT fails.

    The lasso is ``min_β ½ βᵀ W β − sᵀ β + ρ ‖β‖₁``. On the active set A with signs σ the
    stationarity condition is ``W_AA β_A = s_A − ρ σ``; the inactive coordinates need
    ``|s_i − (W β)_i| <= ρ``.
    """
    active = beta != 0.0
    signs = np.sign(beta[active])
    exact = np.zeros_like(beta)
    if np.any(active):
        try:
            exact[active] = np.linalg.solve(W[np.ix_(active, active)], s[active] - alpha * signs)
        except np.linalg.LinAlgError:
            return None
        if np.any(np.sign(exact[active]) != signs):
            return None
    inactive = ~active
    if np.any(inactive):
        residual = s[inactive] - W[inactive] @ exact
        scale = max(1.0, float(np.max(np.abs(s))))
        if np.any(np.abs(residual) > alpha + 1e-13 * scale):
            return None
    return exact


def _lasso(W: np.ndarray, s: np.ndarray, alpha: float, beta0: np.ndarray, max_sweeps: int = 10000) -> np.ndarray:
    """Solve ``min_β ½ βᵀ W β − sᵀ β + ρ ‖β‖₁`` (W positive definite) to machine accuracy.

    Cyclic coordinate descent (Friedman et al. 2008, eq. 2.4 there) from ``beta0``; after each
    sweep the stationarity equations are solved exactly on the current support and accepted
    when they satisfy all KKT conditions.
    """
    beta = beta0.copy()
    q = beta.size
    scale = max(1.0, float(np.max(np.abs(s))) / float(np.min(np.diag(W))))
    for _ in range(max_sweeps):
        max_change = 0.0
        for i in range(q):
            r = s[i] - W[i] @ beta + W[i, i] * beta[i]
            new = _soft_threshold(r, alpha) / W[i, i]
            max_change = max(max_change, abs(new - beta[i]))
            beta[i] = new
        exact = _lasso_kkt_solve(W, s, alpha, beta)
        if exact is not None:
            return exact
        if max_change <= 1e-15 * scale:
            break
    return beta


def graphical_lasso(
    S: np.ndarray,
    alpha: float,
    *,
    penalize_diagonal: bool = False,
    tol: float = 1e-12,
    max_iter: int = 10000,
    precision_init: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Graphical lasso by Friedman, Hastie & Tibshirani's block coordinate descent.

    Minimises ``tr(SΘ) − log|Θ| + ρ‖Θ‖₁`` over symmetric positive definite Θ (eqs. 1-2),
    working on the covariance ``W = Θ⁻¹``: W starts at S (plus ρ on the diagonal when the
    diagonal is penalised); each column j in turn solves the lasso
    ``min_β ½ βᵀ W₁₁ β − s₁₂ᵀ β + ρ‖β‖₁`` and sets ``w₁₂ = W₁₁ β``. Θ is recovered from the β's:
    ``θ₂₂ = 1 / (w₂₂ − w₁₂ᵀ β)``, ``θ₁₂ = −β θ₂₂``.

    Parameters
    ----------
    S : ndarray of shape (p, p)
        Symmetric positive semi-definite empirical covariance.
    alpha : float
        ρ >= 0. With ρ = 0 the result is ``np.linalg.inv(S)``.
    penalize_diagonal : bool
        Penalise the diagonal of Θ as well.
    tol : float
        Stop when no entry of W changes by more than ``tol · max|diag W|`` during a sweep,
        i.e. at a fixed point of the block updates. (scikit-learn's gap
        ``tr(SΘ) − p + ρ‖Θ‖₁`` cannot serve here: for Θ assembled from exactly solved lasso
        columns it vanishes after every sweep, converged or not. The honest duality gap is
        :func:`glasso_duality_gap`.)
    max_iter : int
        Maximum number of sweeps over the columns.
    precision_init : ndarray of shape (p, p), optional
        Warm start: W starts at its inverse (with the diagonal fixed as above) and the β's at
        ``−Θ₁₂ / θ₂₂``.

    Returns
    -------
    covariance : ndarray of shape (p, p)
        ``Θ⁻¹``.
    precision : ndarray of shape (p, p)
        Symmetric positive definite Θ.
    """
    S = np.asarray(S, dtype=np.float64)
    if S.ndim != 2 or S.shape[0] != S.shape[1] or S.shape[0] == 0:
        raise ValueError(f"S must be a non-empty square matrix; got shape {S.shape}")
    if not np.all(np.isfinite(S)):
        raise ValueError("S contains NaN or infinite values")
    if not alpha >= 0:
        raise ValueError(f"alpha must be >= 0; got {alpha!r}")
    S = 0.5 * (S + S.T)
    p = S.shape[0]
    if alpha == 0.0:
        precision = np.linalg.inv(S)
        precision = 0.5 * (precision + precision.T)
        np.linalg.cholesky(precision)  # raises LinAlgError unless positive definite
        return S.copy(), precision

    diagonal = np.diag(S) + (alpha if penalize_diagonal else 0.0)
    if p == 1:
        return diagonal.reshape(1, 1).copy(), (1.0 / diagonal).reshape(1, 1)

    # B[:, j] holds β for column j at the rows i != j (B[j, j] unused).
    W = S.copy()
    B = np.zeros((p, p))
    if precision_init is not None:
        theta0 = np.asarray(precision_init, dtype=np.float64)
        if theta0.shape != (p, p):
            raise ValueError(f"precision_init must have shape {(p, p)}; got {theta0.shape}")
        try:
            W0 = np.linalg.inv(0.5 * (theta0 + theta0.T))
            np.fill_diagonal(W0, diagonal)
            np.linalg.cholesky(W0)
            W = 0.5 * (W0 + W0.T)
            B = -theta0 / np.diag(theta0)[np.newaxis, :]
        except np.linalg.LinAlgError:
            W = S.copy()
            B = np.zeros((p, p))
    np.fill_diagonal(W, diagonal)

    precision = np.eye(p)
    for _ in range(max_iter):
        W_before = W.copy()
        for j in range(p):
            rest = np.arange(p) != j
            W11 = W[np.ix_(rest, rest)]
            beta = _lasso(W11, S[rest, j], alpha, B[rest, j])
            B[rest, j] = beta
            w12 = W11 @ beta
            W[rest, j] = w12
            W[j, rest] = w12
        for j in range(p):
            rest = np.arange(p) != j
            theta22 = 1.0 / (W[j, j] - W[rest, j] @ B[rest, j])
            precision[j, j] = theta22
            precision[rest, j] = -B[rest, j] * theta22
        precision = 0.5 * (precision + precision.T)
        if float(np.max(np.abs(W - W_before))) <= tol * float(np.max(np.abs(diagonal))):
            break
    np.linalg.cholesky(precision)  # raises LinAlgError unless positive definite
    covariance = np.linalg.inv(precision)
    return 0.5 * (covariance + covariance.T), precision


# ---------------------------------------------------------------------------------------------
# Penalties ρ_k, one per dataset
# ---------------------------------------------------------------------------------------------


def _finite_nonnegative(value, name: str) -> float:
    """``float(value)`` if it is a finite real number >= 0, else ValueError naming ``name``."""
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a finite real number >= 0; got {value!r}") from None
    if not (np.isfinite(x) and x >= 0.0):
        raise ValueError(f"{name} must be finite and >= 0; got {x!r}")
    return x


def _check_alpha(alpha, n_datasets: int) -> list[float]:
    """Validate ``alpha`` (a scalar or one value per dataset) and return K Python floats.

    A scalar ρ becomes ``[float(ρ)] * K``, so that a scalar and a list of K equal values go
    through exactly the same arithmetic afterwards.
    """
    ndim = np.ndim(alpha)
    if ndim == 0:
        return [_finite_nonnegative(alpha, "alpha")] * n_datasets
    if ndim != 1:
        raise ValueError(
            f"alpha must be a scalar or hold one value per dataset ({n_datasets}); "
            f"got an array of shape {np.shape(alpha)}"
        )
    values = list(alpha)
    if len(values) != n_datasets:
        raise ValueError(
            f"alpha must be a scalar or hold one value per dataset ({n_datasets}); got {len(values)}"
        )
    return [_finite_nonnegative(a, f"alpha[{k}]") for k, a in enumerate(values)]


def scaled_penalties(alpha, n_samples) -> np.ndarray:
    """Per-dataset penalties ρ_k scaled to the datasets' sizes.

    The rule is

        ρ_k = alpha_k · √(N̄ / N_k),    N̄ = (1/K) Σ_j N_j  (the arithmetic mean of the N_j).

    Why: each entry of the sample covariance S_k, and so each entry of ``A_k = Dᵀ S_k D`` that
    the graphical lasso of dataset k sees (eq. 13), has a sampling error of order 1/√N_k, and
    the usual rate for the graphical lasso penalty is ρ ≍ √(log p / n) (Ravikumar, Wainwright,
    Raskutti & Yu 2011; Rothman, Bickel, Levina & Zhu 2008). Here p = M is the same for every
    dataset, so ρ_k ∝ 1/√N_k; dividing by the value at N̄ makes datasets of equal sizes get
    exactly ρ_k = alpha_k (a scalar ``alpha`` then means the paper's single ρ).

    Parameters
    ----------
    alpha : float or sequence of K floats
        The penalty at the mean size N̄: one value for every dataset, or alpha_k per dataset;
        finite and >= 0.
    n_samples : sequence of K int
        N_k, the number of samples of dataset k; positive integers, K >= 1.

    Returns
    -------
    ndarray of shape (K,)
        ρ_k, to pass as ``alpha`` to :func:`profile_objective`, :func:`objective_dense`,
        :func:`fit_adam` or :func:`fit_lbfgs`.

    Raises
    ------
    ValueError
        If ``n_samples`` is not a non-empty 1-D sequence of positive integers, or ``alpha`` is
        not a finite scalar >= 0 or K such values.
    """
    if np.ndim(n_samples) != 1 or len(n_samples) == 0:
        raise ValueError(f"n_samples must be a non-empty 1-D sequence of positive integers; got {n_samples!r}")
    sizes = []
    for k, n in enumerate(n_samples):
        if isinstance(n, (bool, np.bool_)) or not isinstance(n, (int, np.integer)) or n <= 0:
            raise ValueError(f"n_samples[{k}] must be a positive integer; got {n!r}")
        sizes.append(int(n))
    alphas = _check_alpha(alpha, len(sizes))
    mean_size = sum(sizes) / len(sizes)  # exact integer sum, one rounding
    return np.array([a * np.sqrt(mean_size / n) for a, n in zip(alphas, sizes)], dtype=np.float64)


# ---------------------------------------------------------------------------------------------
# Joint graphical lasso: fused and group penalties across the K networks
# (Danaher, Wang & Witten 2014)
# ---------------------------------------------------------------------------------------------

_JOINT_PENALTIES = ("lasso", "fused", "group")
_FUSED_PAIRS = ("all", "chain")


def _check_joint_penalty(penalty, beta, fused_pairs) -> tuple[str, float, str]:
    """Validate the coupling of the K networks; return ``(penalty, β, fused_pairs)``."""
    if penalty not in _JOINT_PENALTIES:
        raise ValueError(f"penalty must be one of {_JOINT_PENALTIES}; got {penalty!r}")
    if fused_pairs not in _FUSED_PAIRS:
        raise ValueError(f"fused_pairs must be one of {_FUSED_PAIRS}; got {fused_pairs!r}")
    beta = _finite_nonnegative(beta, "beta")
    if penalty == "lasso" and beta != 0.0:
        raise ValueError(
            f"beta couples the networks only with penalty='fused' or 'group'; got penalty='lasso', beta={beta!r}"
        )
    return penalty, beta, fused_pairs


def _fusion_pairs(n_datasets: int, fused_pairs: str) -> list[tuple[int, int]]:
    """The pairs (k, l), k < l, whose differences the fused penalty sums: all of them, or (k, k+1)."""
    if fused_pairs == "chain":
        return [(k, k + 1) for k in range(n_datasets - 1)]
    return [(k, l) for k in range(n_datasets) for l in range(k + 1, n_datasets)]


def _check_covariances(covariances) -> np.ndarray:
    """K symmetric finite (M, M) matrices as one (K, M, M) array (symmetrised)."""
    A = np.asarray(covariances, dtype=np.float64)
    if A.ndim != 3 or A.shape[1] != A.shape[2] or A.shape[0] == 0 or A.shape[1] == 0:
        raise ValueError(f"covariances must have shape (K, M, M) with K, M >= 1; got {A.shape}")
    if not np.all(np.isfinite(A)):
        raise ValueError("covariances contain NaN or infinite values")
    return 0.5 * (A + A.transpose(0, 2, 1))


def _check_precisions(precisions, shape) -> np.ndarray:
    """K symmetric positive definite matrices of the given (K, M, M) shape (symmetrised)."""
    P = np.asarray(precisions, dtype=np.float64)
    if P.shape != shape:
        raise ValueError(f"precisions must have shape {shape}; got {P.shape}")
    P = 0.5 * (P + P.transpose(0, 2, 1))
    np.linalg.cholesky(P)  # raises LinAlgError unless every Λ_k is positive definite
    return P


def _off_diagonal(M: int) -> np.ndarray:
    return ~np.eye(M, dtype=bool)


def _coupling_value(precisions: np.ndarray, beta: float, penalty: str, fused_pairs: str) -> float:
    """The coupling P(Λ).

    ``β Σ_{(k,l)} Σ_{i≠j} |Λ_k,ij − Λ_l,ij|`` (fused) or ``β Σ_{i≠j} ‖(Λ_k,ij)_k‖₂`` (group).
    """
    if penalty == "lasso" or beta == 0.0:
        return 0.0
    off = _off_diagonal(precisions.shape[1])
    if penalty == "group":
        return beta * float(np.sum(np.sqrt(np.sum(precisions**2, axis=0))[off]))
    total = 0.0
    for k, l in _fusion_pairs(precisions.shape[0], fused_pairs):
        total += float(np.sum(np.abs(precisions[k] - precisions[l])[off]))
    return beta * total


def joint_objective(
    covariances,
    precisions,
    alpha,
    beta,
    penalty: str = "fused",
    fused_pairs: str = "all",
    penalize_diagonal: bool = False,
) -> float:
    """Objective of the joint graphical lasso (Danaher, Wang & Witten 2014).

        Σ_k [ tr(A_k Λ_k) − log|Λ_k| + ρ_k ‖Λ_k‖₁ ] + P(Λ),

    with ``‖·‖₁`` over all entries (``penalize_diagonal=True``) or the off-diagonal ones, and

    - fused: ``P = β Σ_{(k,l)} Σ_{i≠j} |Λ_k,ij − Λ_l,ij|`` over all pairs k < l
      (``fused_pairs="all"``) or the consecutive pairs (k, k+1) (``"chain"``);
    - group: ``P = β Σ_{i≠j} √(Σ_k Λ_k,ij²)``;
    - lasso: ``P = 0`` (β must be 0).

    Σ_{i≠j} runs over ordered pairs, so (i, j) and (j, i) both count. There are no weights N_k.

    Parameters
    ----------
    covariances : array_like of shape (K, M, M)
        The symmetric positive semi-definite A_k (e.g. ``Dᵀ S_k D``).
    precisions : array_like of shape (K, M, M)
        Symmetric positive definite Λ_k.
    alpha : float or sequence of K floats
        ρ_k >= 0.
    beta : float
        β >= 0.
    penalty : {"fused", "group", "lasso"}
    fused_pairs : {"all", "chain"}
    penalize_diagonal : bool

    Returns
    -------
    float
    """
    A = _check_covariances(covariances)
    K = A.shape[0]
    P = _check_precisions(precisions, A.shape)
    rhos = _check_alpha(alpha, K)
    penalty, beta, fused_pairs = _check_joint_penalty(penalty, beta, fused_pairs)
    total = 0.0
    for k in range(K):
        _, logdet = np.linalg.slogdet(P[k])
        total += float(np.sum(A[k] * P[k])) - logdet + rhos[k] * _l1(P[k], penalize_diagonal)
    return total + _coupling_value(P, beta, penalty, fused_pairs)


# --- Proximal operators of the penalty, entry by entry -----------------------------------------


def _fusion_path(v: np.ndarray, lam: float, graph: str) -> np.ndarray:
    """Exact total-variation prox for each row of v, by following the fusion path in λ.

    Row by row, ``x = argmin ½‖x − v‖² + λ Σ_{(k,l) ∈ E} |x_k − x_l|`` where E is the chain
    ``(k, k+1)`` (``graph="chain"``, v in its own order) or all pairs (``graph="sorted"``, the
    rows of v sorted ascending; the solution keeps that order).

    At λ = 0, x = v. As λ grows, x is piecewise constant on segments of consecutive positions
    and on each segment g, with mean m_g of v, ``x_g(λ) = m_g − λ δ_g`` where ``λ δ_g`` is the
    pull of the penalty on the segment divided by its size: for the chain
    ``δ_g = (σ_left − σ_right) / |g|`` with σ the sign of the jump across the segment's left
    and right edges (0 at the ends); for all pairs in sorted order
    ``δ_g = (#positions below g) − (#positions above g)``. Two neighbouring segments move
    linearly until they meet, and then stay fused for every larger λ (Friedman, Hastie, Höfling
    & Tibshirani 2007 for the chain; for all pairs the fused segment stays feasible because its
    internal subgradient condition only relaxes as λ grows). The path is therefore: repeatedly
    merge the two neighbouring segments that meet first, until the next meeting lies beyond λ;
    then evaluate ``m_g − λ δ_g``. Every member of a segment gets the same floating-point
    number, so fused entries are exactly equal.

    Parameters
    ----------
    v : ndarray of shape (n, K)
    lam : float
        λ >= 0.
    graph : {"chain", "sorted"}

    Returns
    -------
    ndarray of shape (n, K)
    """
    n, K = v.shape
    if K < 2 or lam == 0.0 or n == 0:
        return v.copy()
    prefix = np.concatenate([np.zeros((n, 1)), np.cumsum(v, axis=1)], axis=1)
    sigma = np.sign(np.diff(v, axis=1))  # sign of each jump; it cannot change before the jump closes
    cut = np.ones((n, K - 1), dtype=bool)  # cut[:, e]: positions e and e+1 are in different segments
    position = np.arange(K)
    rows = np.arange(n)

    def segments():
        """Per position: the mean of v over its segment and the segment's δ."""
        is_start = np.concatenate([np.ones((n, 1), dtype=bool), cut], axis=1)
        start = np.maximum.accumulate(np.where(is_start, position, 0), axis=1)
        is_last = np.concatenate([cut, np.ones((n, 1), dtype=bool)], axis=1)
        stop = np.minimum.accumulate(np.where(is_last, position + 1, K)[:, ::-1], axis=1)[:, ::-1]
        size = stop - start
        mean = (np.take_along_axis(prefix, stop, axis=1) - np.take_along_axis(prefix, start, axis=1)) / size
        if graph == "chain":
            left = np.where(start > 0, np.take_along_axis(sigma, np.maximum(start - 1, 0), axis=1), 0.0)
            right = np.where(stop < K, np.take_along_axis(sigma, np.minimum(stop - 1, K - 2), axis=1), 0.0)
            delta = (left - right) / size
        else:
            delta = (start - (K - stop)).astype(np.float64)
        return mean, delta

    for _ in range(K - 1):
        mean, delta = segments()
        # The jump across a cut edge e is (m_right − m_left) − λ (δ_right − δ_left): it closes at
        # λ_e = (m_right − m_left) / (δ_right − δ_left) when it shrinks, and at once when it is 0.
        dm = mean[:, 1:] - mean[:, :-1]
        dd = delta[:, 1:] - delta[:, :-1]
        closing = cut & (sigma * dd > 0)
        meet = np.where(closing, dm / np.where(closing, dd, 1.0), np.inf)
        meet = np.where(cut & (sigma == 0), 0.0, meet)
        edge = np.argmin(meet, axis=1)
        merge = meet[rows, edge] < lam
        if not np.any(merge):
            break
        cut[rows[merge], edge[merge]] = False
    mean, delta = segments()
    return mean - lam * delta


def _tv_prox(v: np.ndarray, lam: float, fused_pairs: str) -> np.ndarray:
    """Rows of ``argmin ½‖x − v‖² + λ Σ_{(k,l)} |x_k − x_l|`` for v of shape (n, K).

    Chain: :func:`_fusion_path` directly. All pairs: the solution preserves the order of v
    (swapping two values that are out of order lowers the quadratic term and leaves the
    penalty unchanged), so the rows are sorted, solved on the chain of sorted positions with
    all-pairs slopes, and put back in their order.
    """
    if fused_pairs == "chain":
        return _fusion_path(v, lam, "chain")
    order = np.argsort(v, axis=1, kind="stable")
    x_sorted = _fusion_path(np.take_along_axis(v, order, axis=1), lam, "sorted")
    x = np.empty_like(v)
    np.put_along_axis(x, order, x_sorted, axis=1)
    return x


def _soft(x: np.ndarray, t) -> np.ndarray:
    """Entrywise soft threshold ``sign(x) max(|x| − t, 0)`` (t broadcast against x)."""
    return np.sign(x) * np.maximum(np.abs(x) - t, 0.0)


def _joint_prox(V: np.ndarray, rhos: np.ndarray, beta: float, penalty: str, fused_pairs: str) -> np.ndarray:
    """Prox of the off-diagonal penalty ``Σ_k ρ_k‖Λ_k‖₁,off + P(Λ)`` (unit step) at V (K, M, M).

    The penalty separates over the entries i ≠ j; at entry (i, j), with v = (V_k,ij)_k:

    - fused (ρ_k all equal, or β = 0): ``soft(TV-prox(v, β), ρ)`` (Friedman et al. 2007, for
      any graph of pairs with a common ρ);
    - group: ``soft(v, ρ_k)`` scaled by ``max(0, 1 − β / ‖soft(v, ρ_k)‖₂)``: the soft threshold
      keeps signs and zeros, so the group shrink that follows leaves its subgradient valid
      (this holds for per-dataset ρ_k).

    The diagonal is returned unchanged (its penalty, if any, is linear: see
    :func:`joint_graphical_lasso`).
    """
    K, M, _ = V.shape
    iu, ju = np.triu_indices(M, 1)
    x = V[:, iu, ju].T  # (n, K), one row per entry i < j
    rho = rhos[np.newaxis, :]
    if penalty == "group":
        x = _soft(x, rho)
        if beta > 0.0:
            norm = np.sqrt(np.sum(x * x, axis=1, keepdims=True))
            x = x * np.maximum(0.0, 1.0 - beta / np.where(norm > 0.0, norm, np.inf))
    else:
        if beta > 0.0:
            x = _tv_prox(x, beta, fused_pairs)
        x = _soft(x, rho)
    out = V.copy()
    out[:, iu, ju] = x.T
    out[:, ju, iu] = x.T
    return out


# --- Duality gap and polishing ---------------------------------------------------------------


def _joint_smooth_part(At: np.ndarray, precisions: np.ndarray) -> float:
    """``Σ_k tr(Ã_k Λ_k) − log|Λ_k|``, +inf unless every Λ_k is positive definite."""
    total = 0.0
    for k in range(At.shape[0]):
        try:
            L = np.linalg.cholesky(precisions[k])
        except np.linalg.LinAlgError:
            return np.inf
        total += float(np.sum(At[k] * precisions[k])) - 2.0 * float(np.sum(np.log(np.diag(L))))
    return total


def _joint_duality_gap(At, precisions, rhos, beta, penalty, fused_pairs) -> float:
    """Duality gap of the joint problem at positive definite Λ, in the diagonal-shifted form.

    With ``Ã_k = A_k (+ ρ_k I)`` and Q(Λ) the off-diagonal penalty of :func:`_joint_prox`, the
    primal is ``F(Λ) = Σ_k [tr(Ã_k Λ_k) − log|Λ_k|] + Q(Λ)``. Q is convex and positively
    homogeneous, so its conjugate is the indicator of C = ∂Q(0) and the dual is

        max_{Γ ∈ C}  Σ_k log|Ã_k + Γ_k| + K M.

    The dual point is ``Γ = R − prox_Q(R)`` with ``R_k = Λ_k⁻¹ − Ã_k``: the Moreau
    decomposition makes it the projection of R onto C. The gap ``F(Λ) − dual(Γ) >= 0``
    bounds ``F(Λ) − min F`` and is zero at the optimum (where R ∈ ∂Q(Λ) ⊂ C, so Γ = R).

    Returns
    -------
    float
        The gap, or ``inf`` when some ``Ã_k + Γ_k`` is not positive definite.
    """
    K, M, _ = At.shape
    smooth = _joint_smooth_part(At, precisions)
    if not np.isfinite(smooth):
        return np.inf
    W = np.linalg.inv(precisions)
    R = 0.5 * (W + W.transpose(0, 2, 1)) - At
    Gamma = R - _joint_prox(R, rhos, beta, penalty, fused_pairs)
    dual = K * M
    for k in range(K):
        sign, logdet = np.linalg.slogdet(At[k] + Gamma[k])
        if sign <= 0:
            return np.inf
        dual += logdet
    off = _off_diagonal(M)
    l1 = sum(rhos[k] * float(np.sum(np.abs(precisions[k])[off])) for k in range(K))
    primal = smooth + l1 + _coupling_value(precisions, beta, penalty, fused_pairs)
    return primal - dual


def _pattern_labels(Z: np.ndarray, beta: float, penalty: str, fused_pairs: str) -> np.ndarray:
    """The sparsity and fusion pattern of Z as labels of shape (K, M, M).

    ``labels[k, i, j] = -1`` where ``Z_k,ij = 0`` off the diagonal (held at zero); otherwise a
    group id such that entries at the same (i, j) with the same id are tied (exactly equal,
    fused by the penalty: equal values for all pairs, runs of equal values for the chain).
    Diagonal entries and the entries of the group penalty are never tied.
    """
    K, M, _ = Z.shape
    labels = np.broadcast_to(np.arange(K)[:, None, None], Z.shape).copy()
    if penalty == "fused" and beta > 0.0:
        if fused_pairs == "chain":
            for k in range(1, K):
                labels[k] = np.where(Z[k] == Z[k - 1], labels[k - 1], k)
        else:
            for k in range(K):
                labels[k] = np.argmax(Z == Z[k], axis=0)  # the first l with Z_l,ij = Z_k,ij
    off = _off_diagonal(M)
    labels[:, off] = np.where(Z[:, off] == 0.0, -1, labels[:, off])
    diagonal = np.arange(M)
    labels[:, diagonal, diagonal] = np.arange(K)[:, None]
    return labels


def _pattern_projector(labels: np.ndarray):
    """The orthogonal projection onto the matrices with the pattern of ``labels``.

    Entries held at zero (label -1) are set to 0, and tied entries (the same label at the same
    (i, j)) are replaced by their mean. Returns the projection as a function of V (K, M, M).
    """
    free = labels >= 0
    ties = []
    for g in range(labels.shape[0]):
        members = labels == g
        count = members.sum(axis=0)
        if np.any(count > 1):
            ties.append((members, np.maximum(count, 1)))

    def project(V):
        out = np.where(free, V, 0.0)
        for members, count in ties:
            mean = np.sum(np.where(members, V, 0.0), axis=0) / count
            out = np.where(members, mean[np.newaxis], out)
        return out

    return project


def _conjugate_gradient(apply, b, tol, max_iter):
    """Solve ``apply(x) = b`` (symmetric positive definite) by conjugate gradients, from x = 0."""
    x = np.zeros_like(b)
    r = b.copy()
    p = r.copy()
    rr = float(np.sum(r * r))
    target = (tol * np.sqrt(rr)) ** 2
    for _ in range(max_iter):
        if rr <= target:
            break
        Ap = apply(p)
        pAp = float(np.sum(p * Ap))
        if not pAp > 0.0:
            break
        step = rr / pAp
        x += step * p
        r -= step * Ap
        rr_new = float(np.sum(r * r))
        p = r + (rr_new / rr) * p
        rr = rr_new
    return x


def _polish(At, Z, rhos, beta, penalty, fused_pairs, max_newton: int = 50):
    """Minimise the joint objective exactly on the pattern of Z (zeros, ties and signs).

    On the matrices L with Z's pattern (:func:`_pattern_labels`) and Z's signs, the fused
    penalty is linear, ``⟨G, Λ⟩`` with ``G_k = ρ_k sign(Z_k) + β Σ_{l paired with k}
    sign(Z_k − Z_l)`` off the diagonal, and the group penalty is ``⟨ρ sign(Z), Λ⟩`` plus the
    smooth ``β Σ_{i≠j} ‖Λ_·ij‖₂``. The objective F is then smooth and strictly convex on L, and
    Newton's method converges quadratically from Z: each step solves
    ``P_L(Λ⁻¹ V Λ⁻¹ + group term) = −P_L(∇F)`` by conjugate gradients (P_L the projection of
    :func:`_pattern_projector`), and is damped by backtracking (Armijo) until the squared
    Newton decrement is below 1e-2. Returns the Newton point, or None when Z is not positive
    definite or the iteration breaks down; whether the pattern was the right one is for the
    duality gap to say.
    """
    K, M, _ = At.shape
    project = _pattern_projector(_pattern_labels(Z, beta, penalty, fused_pairs))
    off = _off_diagonal(M)
    G = np.zeros_like(Z)
    G[:, off] = (rhos[:, None] * np.sign(Z[:, off]))
    if penalty == "fused" and beta > 0.0:
        for k, l in _fusion_pairs(K, fused_pairs):
            jump = np.sign(Z[k] - Z[l]) * off
            G[k] += beta * jump
            G[l] -= beta * jump
    C = At + G
    group = penalty == "group" and beta > 0.0

    def objective(Lam):
        value = _joint_smooth_part(C, Lam)
        if group and np.isfinite(value):
            value += beta * float(np.sum(np.sqrt(np.sum(Lam**2, axis=0))[off]))
        return value

    def group_norms(Lam):
        norm = np.sqrt(np.sum(Lam**2, axis=0))
        return np.where(off & (norm > 0.0), norm, np.inf)

    Lam = Z.copy()
    f = objective(Lam)
    if not np.isfinite(f):
        return None
    g0_norm = None
    for _ in range(max_newton):
        W = np.linalg.inv(Lam)
        W = 0.5 * (W + W.transpose(0, 2, 1))
        grad = C - W
        if group:
            norm = group_norms(Lam)
            grad = grad + beta * Lam / norm
        g = project(grad)
        g_norm = np.sqrt(float(np.sum(g * g)))
        if g_norm == 0.0:
            break
        g0_norm = g_norm if g0_norm is None else g0_norm

        def hessian(V, W=W, Lam=Lam):
            HV = W @ V @ W
            HV = 0.5 * (HV + HV.transpose(0, 2, 1))
            if group:
                norm = group_norms(Lam)
                HV = HV + beta * (V - Lam * np.sum(Lam * V, axis=0) / norm**2) / norm
            return project(HV)

        # Inexact Newton: the CG tolerance shrinks with the gradient, for quadratic convergence.
        d = _conjugate_gradient(hessian, -g, tol=max(1e-12, min(0.1, g_norm / g0_norm)), max_iter=10 * K * M * M)
        # The squared Newton decrement ⟨g, H⁻¹g⟩ is dimensionless (−log det is self-concordant).
        # Below 1e-2 full steps converge quadratically, and a line search on F would only see its
        # rounding errors; above, backtrack (Armijo).
        decrement = -float(np.sum(g * d))
        if not decrement > 0.0:
            break
        if decrement <= 1e-2:
            trial = Lam + d
            f_trial = objective(trial)
            if np.isfinite(f_trial):
                Lam, f = trial, f_trial
                if decrement <= 1e-24:
                    break
                continue
        step = 1.0
        for _ in range(60):
            trial = Lam + step * d
            f_trial = objective(trial)
            if f_trial <= f - 1e-4 * step * decrement:
                break
            step *= 0.5
        else:
            return None
        Lam, f = trial, f_trial
    if not np.isfinite(objective(Lam)):
        return None
    return Lam


def joint_graphical_lasso(
    covariances,
    alpha,
    beta,
    penalty: str = "fused",
    fused_pairs: str = "all",
    *,
    penalize_diagonal: bool = False,
    tol: float = 1e-12,
    max_iter: int = 5000,
    precisions_init=None,
) -> tuple[np.ndarray, np.ndarray]:
    """Joint graphical lasso of K networks (Danaher, Wang & Witten 2014), to high accuracy.

    Minimises over symmetric positive definite Λ_1..Λ_K (see :func:`joint_objective`)

        Σ_k [ tr(A_k Λ_k) − log|Λ_k| + ρ_k ‖Λ_k‖₁ ] + P(Λ)

    with the fused penalty ``P = β Σ_{(k,l)} Σ_{i≠j} |Λ_k,ij − Λ_l,ij|`` (all pairs k < l or
    the chain (k, k+1)) or the group penalty ``P = β Σ_{i≠j} ‖(Λ_k,ij)_k‖₂``. With
    ``penalty="lasso"`` (β = 0) the problems decouple and each is :func:`graphical_lasso`.

    The diagonal is never coupled, and ``Λ_k,ii > 0`` on the domain, so a penalised diagonal
    is the linear term ``ρ_k tr Λ_k``: it is folded into ``Ã_k = A_k + ρ_k I``, and the
    nonsmooth part ``Q = Σ_k ρ_k ‖Λ_k‖₁,off + P`` acts off the diagonal only.

    Algorithm: ADMM in the form of Danaher et al. (their Algorithm 1), for the split Θ = Z::

        Θ_k ← argmin tr(Ã_k Θ) − log|Θ| + (μ/2)‖Θ − Z_k + U_k‖²_F
        Z   ← prox_{Q/μ}(Θ + U)
        U   ← U + Θ − Z

    The Θ-step keeps the eigenvectors of ``μ(Z_k − U_k) − Ã_k`` and maps its eigenvalues c to
    ``(c + √(c² + 4μ)) / 2μ``; the prox is exact, entry by entry (:func:`_joint_prox`); μ is
    balanced between the primal and dual residuals (Boyd et al. 2011, §3.4.1). ADMM
    finds the pattern of the solution (its zeros, its fused entries and their signs) long
    before it is accurate, so every 10 iterations the pattern of Z is polished: Newton's method
    on the pattern, where the objective is smooth (:func:`_polish`). The solver stops when the
    duality gap (:func:`_joint_duality_gap`, a bound on the distance to the optimal value) at a
    polished point, or at Z, is at most ``tol · K · M``; ``K · M = Σ_k tr(Λ_k Λ_k⁻¹)`` is the
    size of the objective's terms, so the criterion does not depend on the units of A.

    Parameters
    ----------
    covariances : array_like of shape (K, M, M)
        Symmetric positive semi-definite A_k, with positive diagonals.
    alpha : float or sequence of K floats
        ρ_k >= 0. The fused penalty with β > 0 needs equal ρ_k: its prox is the soft threshold
        of the total-variation prox only for a common ρ, so unequal ones raise ValueError.
    beta : float
        β >= 0.
    penalty : {"fused", "group", "lasso"}
        "lasso" needs β = 0 and calls :func:`graphical_lasso` on each A_k (with its own
        defaults; ``tol`` and ``max_iter`` are not used).
    fused_pairs : {"all", "chain"}
        The pairs of the fused penalty.
    penalize_diagonal : bool, default=False
        Include the diagonal in ‖Λ_k‖₁.
    tol : float
        Duality gap target, relative to K M.
    max_iter : int
        Maximum number of ADMM iterations. If the target is not met, the point of smallest
        duality gap seen is returned (:func:`joint_kkt_residual` certifies a solution).
    precisions_init : array_like of shape (K, M, M), optional
        Warm start (used when positive definite): Θ = Z = Λ_init, and the dual U from the
        projection of ``Λ_init⁻¹ − Ã`` onto ∂Q(0), so an optimal Λ_init is a fixed point. Its
        own pattern is polished first.

    Returns
    -------
    covariances : ndarray of shape (K, M, M)
        Σ_k = Λ_k⁻¹.
    precisions : ndarray of shape (K, M, M)
        Symmetric positive definite Λ_k, with exact zeros and exactly equal fused entries.
    """
    A = _check_covariances(covariances)
    K, M, _ = A.shape
    rhos = np.array(_check_alpha(alpha, K))
    penalty, beta, fused_pairs = _check_joint_penalty(penalty, beta, fused_pairs)
    if penalty == "lasso":
        init = None if precisions_init is None else np.asarray(precisions_init, dtype=np.float64)
        fits = [
            graphical_lasso(
                A[k], rhos[k], penalize_diagonal=penalize_diagonal, precision_init=None if init is None else init[k]
            )
            for k in range(K)
        ]
        return np.array([c for c, _ in fits]), np.array([p for _, p in fits])
    if penalty == "fused" and beta > 0.0 and np.any(rhos != rhos[0]):
        raise ValueError(
            "the fused penalty with beta > 0 needs the same alpha for every dataset "
            f"(its proximal operator is exact only for a common one); got alpha={list(rhos)}"
        )
    At = A + (rhos[:, None, None] * np.eye(M) if penalize_diagonal else 0.0)
    if not np.all(np.diagonal(At, axis1=1, axis2=2) > 0.0):
        raise ValueError("every covariance needs a positive diagonal (or a penalised diagonal with alpha > 0)")

    Theta = None
    if precisions_init is not None:
        try:
            Theta = _check_precisions(precisions_init, A.shape)
        except np.linalg.LinAlgError:
            Theta = None
    if Theta is None:
        Theta = np.array([np.diag(1.0 / np.diag(At[k])) for k in range(K)])
    mu = float(np.mean(np.diagonal(At, axis1=1, axis2=2))) ** 2  # μ has the units of A²
    Z = Theta.copy()
    R = np.linalg.inv(Theta) - At
    U = (R - _joint_prox(R, rhos, beta, penalty, fused_pairs)) / mu

    best, best_gap = Z.copy(), np.inf
    tried = None
    for it in range(max_iter + 1):
        if (it % 10 == 0 and (it > 0 or precisions_init is not None)) or it == max_iter:
            # The polished point of a new pattern first, then Z itself.
            labels = _pattern_labels(Z, beta, penalty, fused_pairs)
            candidates = [Z]
            if tried is None or not np.array_equal(labels, tried):
                tried = labels
                polished = _polish(At, Z, rhos, beta, penalty, fused_pairs)
                if polished is not None:
                    candidates.insert(0, polished)
            for candidate in candidates:
                gap = _joint_duality_gap(At, candidate, rhos, beta, penalty, fused_pairs)
                if gap < best_gap:
                    best, best_gap = candidate.copy(), gap
                if best_gap <= tol * K * M:
                    break
            if best_gap <= tol * K * M:
                break
        if it == max_iter:
            break
        # Θ-step: eigen-decomposition of μ(Z − U) − Ã.
        c, Q = np.linalg.eigh(mu * (Z - U) - At)
        theta = (c + np.sqrt(c * c + 4.0 * mu)) / (2.0 * mu)
        Theta = (Q * theta[:, np.newaxis, :]) @ Q.transpose(0, 2, 1)
        Theta = 0.5 * (Theta + Theta.transpose(0, 2, 1))
        # Z-step: the exact prox of Q/μ; then the scaled dual.
        Z_old = Z
        Z = _joint_prox(Theta + U, rhos / mu, beta / mu, penalty, fused_pairs)
        U = U + Theta - Z
        primal = np.linalg.norm(Theta - Z)
        dual = mu * np.linalg.norm(Z - Z_old)
        if primal > 10.0 * dual:
            mu, U = 2.0 * mu, U / 2.0
        elif dual > 10.0 * primal:
            mu, U = mu / 2.0, 2.0 * U

    if not np.isfinite(best_gap):
        best = Theta  # no candidate had a finite gap: the last (positive definite) Θ
    covariances_out = np.linalg.inv(best)
    return 0.5 * (covariances_out + covariances_out.transpose(0, 2, 1)), best


# --- Optimality certificate ------------------------------------------------------------------


def _group_zero_violation(r, rho, w, beta) -> float:
    """``min t >= 0`` with ``‖soft(r, ρ + t w)‖₂ <= β``: the scaled ∞-distance of r from ∂ at 0.

    φ(t) = Σ_k max(0, |r_k| − ρ_k − t w_k)² decreases piecewise quadratically; on each piece
    (a fixed set of positive terms) ``φ(t) = β²`` is a quadratic equation in t.
    """
    a = np.abs(r) - rho
    if float(np.sum(np.maximum(a, 0.0) ** 2)) <= beta * beta:
        return 0.0
    breaks = np.sort(a / w)[::-1]  # where the terms switch off, largest first
    for m in range(1, len(breaks) + 1):
        active = a / w >= breaks[m - 1]
        aa, ww = a[active], w[active]
        qa, qb, qc = float(np.sum(ww * ww)), float(np.sum(aa * ww)), float(np.sum(aa * aa)) - beta * beta
        t = (qb - np.sqrt(max(qb * qb - qa * qc, 0.0))) / qa
        lower = breaks[m] if m < len(breaks) else -np.inf
        if t >= lower:
            return max(t, 0.0)
    return 0.0


def joint_kkt_residual(
    covariances,
    precisions,
    alpha,
    beta,
    penalty: str = "fused",
    fused_pairs: str = "all",
    penalize_diagonal: bool = False,
) -> float:
    """Optimality certificate of the joint graphical lasso: the largest scaled KKT violation.

    Λ is optimal iff ``R_k = Λ_k⁻¹ − A_k`` is a subgradient of the penalty at Λ. The
    conditions separate over entries, and the factor 2 of an off-diagonal entry (it appears as
    (i, j) and (j, i) in every term) cancels, so they read, with ``W = Λ⁻¹``:

    - diagonal (i, i), each k: ``R_k,ii = ρ_k`` (penalised diagonal) or 0;
    - each off-diagonal pair i < j, with ``x = (Λ_k,ij)_k`` and ``r = (R_k,ij)_k``:
      ``r = ρ∘s + g`` for some ``s_k ∈ ∂|x_k|`` and ``g ∈ ∂p(x)``, where p is the fused
      penalty ``β Σ_{(k,l)} |x_k − x_l|`` (``g = Bᵀt``, ``t_e ∈ β ∂|x_k − x_l|``) or the
      group penalty ``β ‖x‖₂``.

    The measure of an entry is its distance to these conditions in a scaled ∞-norm: the
    smallest τ such that some admissible s, t (or s, u for the group) satisfy
    ``|r_k − ρ_k s_k − g_k| <= τ √(W_k,ii W_k,jj)`` for every k (the diagonal: ``/ W_k,ii``).
    The scaling makes it unit-free (A → cA, ρ → cρ, β → cβ gives Λ → Λ/c and the same
    measure). The result is the maximum over all entries.

    - fused (and lasso, β = 0): subgradients are fixed where ``x_k ≠ 0`` and across pairs with
      ``x_k ≠ x_l``; where an entry has exact zeros or exact ties, the free ones are found by
      one linear program (HiGHS via ``scipy.optimize.linprog``) minimising a common τ over all
      such entries (they share no variables, so its value is the maximum of their distances).
      The returned value is evaluated exactly at the LP's subgradients clipped to their
      intervals, an upper bound on the distance that is tight to the LP's tolerances (1e-10).
    - group: closed form. If x ≠ 0 everything is fixed but ``s_k`` where ``x_k = 0``
      (violation ``max(0, |r_k| − ρ_k)``); if x = 0 the distance is the smallest τ with
      ``‖soft(r, ρ + τ w)‖₂ <= β`` (:func:`_group_zero_violation`).

    Zeros and ties are exact: a perturbed solution has none and is measured as such.
    Requires SciPy (fused and lasso penalties).

    Parameters
    ----------
    covariances : array_like of shape (K, M, M)
        A_k.
    precisions : array_like of shape (K, M, M)
        Symmetric positive definite Λ_k.
    alpha : float or sequence of K floats
        ρ_k >= 0 (per dataset, for the fused penalty too).
    beta : float
    penalty : {"fused", "group", "lasso"}
    fused_pairs : {"all", "chain"}
    penalize_diagonal : bool

    Returns
    -------
    float
        The largest scaled violation; 0 at the exact optimum.
    """
    A = _check_covariances(covariances)
    K, M, _ = A.shape
    P = _check_precisions(precisions, A.shape)
    rhos = np.array(_check_alpha(alpha, K))
    penalty, beta, fused_pairs = _check_joint_penalty(penalty, beta, fused_pairs)
    W = np.linalg.inv(P)
    W = 0.5 * (W + W.transpose(0, 2, 1))
    R = W - A
    d = np.diagonal(W, axis1=1, axis2=2)  # (K, M)
    worst = float(np.max(np.abs(np.diagonal(R, axis1=1, axis2=2) - (rhos[:, None] if penalize_diagonal else 0.0)) / d))

    entries = [(i, j) for i in range(M) for j in range(i + 1, M)]
    if penalty == "group":
        for i, j in entries:
            x, r, w = P[:, i, j], R[:, i, j], np.sqrt(d[:, i] * d[:, j])
            if np.any(x != 0.0):
                norm = np.sqrt(float(np.sum(x * x)))
                g = np.where(x != 0.0, rhos * np.sign(x) + beta * x / norm, 0.0)
                v = np.where(x != 0.0, np.abs(r - g), np.maximum(np.abs(r) - rhos, 0.0))
                worst = max(worst, float(np.max(v / w)))
            else:
                worst = max(worst, _group_zero_violation(r, rhos, w, beta))
        return worst

    pairs = _fusion_pairs(K, fused_pairs) if beta > 0.0 else []
    # Each free subgradient is a column: (entry, the K coefficients of its effect on r).
    blocks = []  # per entry with free subgradients: (fixed residual c / w, list of columns / w)
    for i, j in entries:
        x, r, w = P[:, i, j], R[:, i, j], np.sqrt(d[:, i] * d[:, j])
        c = r - np.where(x != 0.0, rhos * np.sign(x), 0.0)
        columns = []
        for k in range(K):
            if x[k] == 0.0 and rhos[k] > 0.0:
                col = np.zeros(K)
                col[k] = rhos[k]
                columns.append(col)
        for k, l in pairs:
            if x[k] != x[l]:
                jump = beta * np.sign(x[k] - x[l])
                c[k] -= jump
                c[l] += jump
            else:
                col = np.zeros(K)
                col[k], col[l] = beta, -beta
                columns.append(col)
        if columns:
            blocks.append((c / w, np.array(columns).T / w[:, None]))
        else:
            worst = max(worst, float(np.max(np.abs(c) / w)))
    if not blocks:
        return worst

    from scipy.optimize import linprog
    from scipy.sparse import coo_matrix

    # Variables: τ, then each block's free subgradients y ∈ [−1, 1]. Two rows per block and k:
    # c_k − (B y)_k <= τ and −(c_k − (B y)_k) <= τ.
    n_vars = 1 + sum(B.shape[1] for _, B in blocks)
    rows, cols, values, b_ub = [], [], [], []
    row, col = 0, 1
    for c, B in blocks:
        for k in range(K):
            for sign in (1.0, -1.0):
                rows.append(row)
                cols.append(0)
                values.append(-1.0)
                for m in np.flatnonzero(B[k]):
                    rows.append(row)
                    cols.append(col + m)
                    values.append(-sign * B[k, m])
                b_ub.append(-sign * c[k])
                row += 1
        col += B.shape[1]
    A_ub = coo_matrix((values, (rows, cols)), shape=(row, n_vars)).tocsr()
    cost = np.zeros(n_vars)
    cost[0] = 1.0
    bounds = [(0.0, None)] + [(-1.0, 1.0)] * (n_vars - 1)
    result = linprog(
        cost,
        A_ub=A_ub,
        b_ub=np.array(b_ub),
        bounds=bounds,
        method="highs",
        options={"primal_feasibility_tolerance": 1e-10, "dual_feasibility_tolerance": 1e-10},
    )
    if result.status != 0:
        raise RuntimeError(f"joint_kkt_residual: the linear program failed ({result.message})")
    y = np.clip(result.x[1:], -1.0, 1.0)
    col = 0
    for c, B in blocks:
        worst = max(worst, float(np.max(np.abs(c - B @ y[col : col + B.shape[1]]))))
        col += B.shape[1]
    return worst


# ---------------------------------------------------------------------------------------------
# The model for a fixed D (eqs. 6, 10, 13-16)
# ---------------------------------------------------------------------------------------------


def noise_variance(trace_S: float, A: np.ndarray, n_features: int) -> float:
    """Noise variance of the remaining V − M directions, eq. 16.

    Parameters
    ----------
    trace_S : float
        ``tr S_k``.
    A : ndarray of shape (M, M)
        ``Dᵀ S_k D``.
    n_features : int
        V > M.

    Returns
    -------
    float
        ``ε_k = (tr S_k − tr A) / (V − M)``.
    """
    M = A.shape[0]
    if n_features <= M:
        raise ValueError(f"n_features must exceed n_components; got n_features={n_features}, n_components={M}")
    eps = (trace_S - float(np.trace(A))) / (n_features - M)
    if not (eps > 0.0 and np.isfinite(eps)):
        raise FloatingPointError(
            f"noise variance (eq. 16) is not positive ({eps}): the data has no variance outside the span of D"
        )
    return eps


def dataset_objective(
    trace_S: float,
    A: np.ndarray,
    precision: np.ndarray,
    noise: float,
    n_features: int,
    alpha: float,
    penalize_diagonal: bool = False,
) -> float:
    """Term L_k of the objective (eq. 6) without forming Φ_k.

    Parameters
    ----------
    trace_S : float
        ``tr S_k``.
    A : ndarray of shape (M, M)
        ``Dᵀ S_k D``.
    precision : ndarray of shape (M, M)
        Λ_k, symmetric positive definite.
    noise : float
        ε_k > 0.
    n_features : int
        V.
    alpha : float
        ρ.
    penalize_diagonal : bool

    Returns
    -------
    float
        ``tr(Λ A) + (tr S − tr A)/ε − log|Λ| + (V − M) log ε + ρ‖Λ‖₁``.
    """
    M = A.shape[0]
    L = np.linalg.cholesky(precision)
    logdet = 2.0 * float(np.sum(np.log(np.diag(L))))
    return (
        float(np.sum(precision * A))
        + (trace_S - float(np.trace(A))) / noise
        - logdet
        + (n_features - M) * np.log(noise)
        + alpha * _l1(precision, penalize_diagonal)
    )


@dataclass
class _State:
    """Dataset k at the current D: S_k D, A_k, ε_k, Λ_k, Σ_k and L_k."""

    SD: np.ndarray
    A: np.ndarray
    noise: float
    precision: np.ndarray
    covariance: np.ndarray
    objective: float


def _refit(data: _Dataset, D: np.ndarray, alpha: float, opts: dict, precision_init) -> _State:
    """Projections, ε_k (eq. 16), Λ_k (eq. 13, warm-started) and L_k at D; ``alpha`` is this
    dataset's ρ_k (a float)."""
    SD, A = data.project(D)
    V = D.shape[0]
    eps = noise_variance(data.trace, A, V)
    covariance, precision = graphical_lasso(A, alpha, precision_init=precision_init, **opts)
    L = dataset_objective(data.trace, A, precision, eps, V, alpha, opts["penalize_diagonal"])
    return _State(SD=SD, A=A, noise=eps, precision=precision, covariance=covariance, objective=L)


@dataclass(frozen=True)
class _Coupling:
    """A penalty that couples the K networks: fused or group with β > 0."""

    penalty: str
    beta: float
    fused_pairs: str


def _check_coupling(penalty, beta, fused_pairs, alphas) -> _Coupling | None:
    """Validate the model's coupling keywords; None when the datasets decouple.

    ``penalty="lasso"`` and β = 0 leave every dataset its own graphical lasso (eq. 13), by the
    same code as without the keywords. The fused penalty with β > 0 needs equal ρ_k
    (:func:`joint_graphical_lasso`).
    """
    penalty, beta, fused_pairs = _check_joint_penalty(penalty, beta, fused_pairs)
    if penalty == "lasso" or beta == 0.0:
        return None
    if penalty == "fused" and any(a != alphas[0] for a in alphas):
        raise ValueError(
            f"the fused penalty with beta > 0 needs the same alpha for every dataset; got alpha={alphas}"
        )
    return _Coupling(penalty=penalty, beta=beta, fused_pairs=fused_pairs)


def _refit_joint(data, D, alphas, opts, coupling: _Coupling, warm_precisions) -> tuple[list[_State], float]:
    """All K datasets at D with coupled networks: ε_k (eq. 16), the Λ_k of the joint graphical
    lasso of the A_k (warm-started), each L_k with its ρ_k term, and the coupling P(Λ), which
    belongs to no single dataset."""
    V = D.shape[0]
    projections = [d.project(D) for d in data]
    A = np.array([A for _, A in projections])
    covariances, precisions = joint_graphical_lasso(
        A,
        alphas,
        coupling.beta,
        coupling.penalty,
        coupling.fused_pairs,
        penalize_diagonal=opts["penalize_diagonal"],
        tol=opts["tol"],
        max_iter=opts["max_iter"],
        precisions_init=warm_precisions,
    )
    states = []
    for k, (d, (SD, A_k)) in enumerate(zip(data, projections)):
        eps = noise_variance(d.trace, A_k, V)
        L = dataset_objective(d.trace, A_k, precisions[k], eps, V, alphas[k], opts["penalize_diagonal"])
        states.append(
            _State(SD=SD, A=A_k, noise=eps, precision=precisions[k], covariance=covariances[k], objective=L)
        )
    return states, _coupling_value(precisions, coupling.beta, coupling.penalty, coupling.fused_pairs)


def _euclidean_gradient_term(state: _State) -> np.ndarray:
    """Dataset k's share of eq. 10: ``2 S_k D (Λ_k − ε_k⁻¹ I)``."""
    M = state.precision.shape[0]
    return 2.0 * state.SD @ (state.precision - np.eye(M) / state.noise)


def _profile(data, D, alphas, opts, warm_precisions, coupling: _Coupling | None = None):
    """f(D), its Riemannian gradient and the datasets' states at D.

    ``alphas`` holds ρ_k for each dataset (K floats, as returned by :func:`_check_alpha`).
    ``warm_precisions`` (one (M, M) matrix per dataset, or None) warm-starts the graphical lasso.
    With a ``coupling`` the Λ_k are refitted jointly and f adds P(Λ) once; the gradient is
    eq. 10 all the same (the Λ_k are optimal for the joint problem, and P does not involve D).
    """
    if coupling is None:
        new_states = [
            _refit(d, D, alphas[k], opts, None if warm_precisions is None else warm_precisions[k])
            for k, d in enumerate(data)
        ]
        f = sum(s.objective for s in new_states)
    else:
        new_states, coupling_value = _refit_joint(data, D, alphas, opts, coupling, warm_precisions)
        f = sum(s.objective for s in new_states) + coupling_value
    G = np.zeros_like(D)
    for s in new_states:
        G += _euclidean_gradient_term(s)
    return f, riemannian_gradient(D, G), new_states


def _check_projection(D, n_features) -> np.ndarray:
    D = np.asarray(D, dtype=np.float64)
    if D.ndim != 2 or D.shape[0] != n_features or not 1 <= D.shape[1] < n_features:
        raise ValueError(f"D must have shape (V={n_features}, M) with 1 <= M < V; got {D.shape}")
    if not np.allclose(D.T @ D, np.eye(D.shape[1]), atol=1e-8):
        raise ValueError("D must have orthonormal columns (DᵀD = I)")
    return D


def profile_objective(
    Xs,
    D: np.ndarray,
    alpha,
    *,
    penalize_diagonal: bool = True,
    assume_centered: bool = False,
    precisions_init=None,
    glasso_tol: float = 1e-12,
    glasso_max_iter: int = 10000,
    penalty: str = "lasso",
    beta: float = 0.0,
    fused_pairs: str = "all",
):
    """Profile objective f(D) = min over Λ_k, ε_k of E, and its Riemannian gradient.

    With ``penalty="fused"`` or ``"group"`` and β > 0 the latent networks are coupled:
    E gains ``P(Λ)`` once (not per dataset; see :func:`joint_objective`), the Λ_k are the joint
    graphical lasso of the A_k (:func:`joint_graphical_lasso`), ε_k is still eq. 16, and the
    gradient is still eq. 10 (the envelope theorem at the jointly optimal Λ_k).

    Parameters
    ----------
    Xs : sequence of K ndarray, each of shape (N_k, V)
    D : ndarray of shape (V, M)
        Projection with ``DᵀD = I``.
    alpha : float or sequence of K floats
        The penalties: a scalar ρ for every dataset, or ρ_k per dataset (dataset k's
        graphical lasso, eq. 13, and its term ρ_k‖Λ_k‖₁ of L_k); finite and >= 0. A list of
        K equal values gives bit-for-bit the result of the scalar.
    penalize_diagonal : bool, default=True
        Penalise the diagonal of Λ_k as well (the paper's ‖·‖₁, eq. 6); False penalises the
        off-diagonal entries only.
    assume_centered : bool, default=False
    precisions_init : sequence of ndarray of shape (M, M), optional
        Warm starts of the graphical lasso, one per dataset.
    glasso_tol, glasso_max_iter
        Passed to :func:`graphical_lasso`; with a coupling, to :func:`joint_graphical_lasso`
        as its ``tol`` and ``max_iter``.
    penalty : {"lasso", "fused", "group"}, default="lasso"
        The coupling of the K latent networks; "lasso" leaves them independent.
    beta : float, default=0.0
        β >= 0 of the coupling. β = 0 (or ``penalty="lasso"``) gives bit-for-bit the result
        without these keywords. The fused penalty with β > 0 needs one ρ for all datasets.
    fused_pairs : {"all", "chain"}, default="all"
        The pairs (k, l) of the fused penalty: all k < l, or consecutive datasets.

    Returns
    -------
    f : float
        ``Σ_k L_k`` (+ ``P(Λ)``) at the optimal ε_k (eq. 16) and Λ_k (eq. 13, with penalty ρ_k,
        or the joint problem).
    riemannian_gradient : ndarray of shape (V, M)
        Eq. 9 applied to eq. 10; the exact gradient of f on the Stiefel manifold.
    precisions : ndarray of shape (K, M, M)
        Λ_k.
    noise_variances : ndarray of shape (K,)
        ε_k.
    """
    data = _prepare(Xs, assume_centered)
    alphas = _check_alpha(alpha, len(data))
    coupling = _check_coupling(penalty, beta, fused_pairs, alphas)
    D = _check_projection(D, data[0].Xc.shape[1])
    opts = {"penalize_diagonal": penalize_diagonal, "tol": glasso_tol, "max_iter": glasso_max_iter}
    warm = None
    if precisions_init is not None:
        warm = [np.asarray(P, dtype=np.float64) for P in precisions_init]
        if len(warm) != len(data):
            raise ValueError(f"precisions_init must hold {len(data)} matrices; got {len(warm)}")
    f, grad, states = _profile(data, D, alphas, opts, warm, coupling)
    return (
        f,
        grad,
        np.array([s.precision for s in states]),
        np.array([s.noise for s in states]),
    )


def objective_dense(
    Xs,
    D: np.ndarray,
    precisions,
    noise_variances,
    alpha,
    *,
    penalize_diagonal: bool = True,
    assume_centered: bool = False,
    penalty: str = "lasso",
    beta: float = 0.0,
    fused_pairs: str = "all",
) -> float:
    """E = Σ_k L_k computed densely from Φ_k (eqs. 5-6); for small V only.

    Forms ``Φ_k = D Σ_k Dᵀ + ε_k (I − D Dᵀ)`` with ``Σ_k = Λ_k⁻¹`` and evaluates
    ``tr(Φ_k⁻¹ S_k) − log|Φ_k⁻¹| + ρ_k‖Λ_k‖₁`` directly, an independent check of the trace and
    log-determinant identities (eq. 14) used everywhere else. A coupling penalty P(Λ)
    (:func:`joint_objective`) is added once.

    Parameters
    ----------
    Xs : sequence of K ndarray, each of shape (N_k, V)
    D : ndarray of shape (V, M)
    precisions : array_like of shape (K, M, M)
        Λ_k.
    noise_variances : array_like of shape (K,)
        ε_k.
    alpha : float or sequence of K floats
        A scalar ρ for every dataset, or ρ_k per dataset; finite and >= 0.
    penalize_diagonal : bool, default=True
        Include the diagonal of Λ_k in ‖Λ_k‖₁ (the paper's eq. 6).
    assume_centered : bool, default=False
    penalty : {"lasso", "fused", "group"}, default="lasso"
    beta : float, default=0.0
    fused_pairs : {"all", "chain"}, default="all"
        The coupling P(Λ) of :func:`joint_objective`, added once.

    Returns
    -------
    float
        ``E = Σ_k L_k + P(Λ)``.
    """
    if isinstance(Xs, np.ndarray) and Xs.ndim == 2:
        Xs = [Xs]
    Xs = list(Xs)
    alphas = _check_alpha(alpha, len(Xs))
    penalty, beta, fused_pairs = _check_joint_penalty(penalty, beta, fused_pairs)
    D = np.asarray(D, dtype=np.float64)
    V = D.shape[0]
    total = 0.0
    for X, Lam, eps, rho in zip(Xs, precisions, noise_variances, alphas):
        S = empirical_covariance(X, assume_centered)
        Lam = np.asarray(Lam, dtype=np.float64)
        Sigma = np.linalg.inv(Lam)
        Phi = D @ Sigma @ D.T + eps * (np.eye(V) - D @ D.T)
        sign, logdet_phi = np.linalg.slogdet(Phi)
        if sign <= 0:
            raise np.linalg.LinAlgError("Φ_k is not positive definite")
        total += float(np.trace(np.linalg.solve(Phi, S))) + logdet_phi + rho * _l1(Lam, penalize_diagonal)
    if penalty != "lasso" and beta != 0.0:
        total += _coupling_value(np.asarray(precisions, dtype=np.float64), beta, penalty, fused_pairs)
    return total


# ---------------------------------------------------------------------------------------------
# Canonical form (the factors' order and signs)
# ---------------------------------------------------------------------------------------------


def canonical_form(components, precisions, covariances):
    """Put an answer of the model in canonical form: factors ordered and signed.

    The model is invariant under permuting the factors and flipping their signs: with a
    permutation matrix P and a diagonal S of ±1, ``D → D P S`` and ``Λ_k → (PS)ᵀ Λ_k (PS)``
    (the same for Σ_k) leave f(D) and every ε_k unchanged, and the Riemannian gradient
    becomes ``G P S``. The canonical representative is defined by these rules:

    - **order**: the factors in decreasing order of ``v_j = Σ_k covariances[k, j, j]`` (the
      latent variance Σ_k[j, j] summed over the datasets); ties keep the lower original index
      first (a stable sort on −v). ``order[i]`` is the original index of new factor i.
    - **signs**: after reordering, each column of D is multiplied by ±1 so that its entry of
      largest absolute value is positive; if several entries share the largest absolute value
      exactly, the one with the lowest row index decides (a column of zeros gets +1).
      ``signs[i]`` is the ±1 applied to new factor i.
    - new ``Λ_k[a, b] = signs[a] · signs[b] · Λ_k[order[a], order[b]]``, the same for Σ_k.

    Only signs and positions change (multiplications by ±1 are exact), so applying the
    function to its own output returns the same arrays with ``order = 0..M-1`` and all
    ``signs = +1``. The inputs are not modified.

    Parameters
    ----------
    components : array_like of shape (V, M)
        D, one factor per column.
    precisions : array_like of shape (K, M, M)
        Λ_k.
    covariances : array_like of shape (K, M, M)
        Σ_k = Λ_k⁻¹; their diagonals decide the order.

    Returns
    -------
    components : ndarray of shape (V, M)
        ``D[:, order] * signs``.
    precisions : ndarray of shape (K, M, M)
        ``signs[a] · signs[b] · Λ_k[order[a], order[b]]``.
    covariances : ndarray of shape (K, M, M)
        The same for Σ_k.
    order : ndarray of shape (M,), int
        ``order[i]`` is the original index of new factor i.
    signs : ndarray of shape (M,), float
        ±1.0 applied to new factor i (after reordering).
    """
    D = np.array(components, dtype=np.float64)
    P = np.array(precisions, dtype=np.float64)
    C = np.array(covariances, dtype=np.float64)
    if D.ndim != 2:
        raise ValueError(f"components must have shape (V, M); got {D.shape}")
    M = D.shape[1]
    for name, arr in (("precisions", P), ("covariances", C)):
        if arr.ndim != 3 or arr.shape[1:] != (M, M):
            raise ValueError(f"{name} must have shape (K, {M}, {M}); got {arr.shape}")
    if P.shape[0] != C.shape[0]:
        raise ValueError(f"precisions and covariances must hold the same K; got {P.shape[0]} and {C.shape[0]}")
    if not (np.all(np.isfinite(D)) and np.all(np.isfinite(P)) and np.all(np.isfinite(C))):
        raise ValueError("canonical_form: components, precisions and covariances must be finite")

    v = np.zeros(M)
    for k in range(C.shape[0]):
        v += np.diag(C[k])
    order = np.argsort(-v, kind="stable")

    D = D[:, order]
    signs = np.ones(M)
    for i in range(M):
        row = int(np.argmax(np.abs(D[:, i])))  # argmax returns the first (lowest) row of a tie
        if D[row, i] < 0:
            signs[i] = -1.0
    D = D * signs
    flip = np.outer(signs, signs)
    P = P[:, order][:, :, order] * flip
    C = C[:, order][:, :, order] * flip
    return D, P, C, order, signs


# ---------------------------------------------------------------------------------------------
# Fitting D (Algorithm 1)
# ---------------------------------------------------------------------------------------------


@dataclass
class FitResult:
    """Result of :func:`fit_adam` and :func:`fit_lbfgs`.

    ``components``, ``precisions`` and ``covariances`` are in the canonical form of
    :func:`canonical_form` (factors by decreasing ``Σ_k Σ_k[j, j]``, each column of D with its
    entry of largest absolute value positive), applied once to the solver's final point. The
    objective, its history, the gradient norm and the noise variances are invariant under it.

    Attributes
    ----------
    components : ndarray of shape (V, M)
        D, with ``DᵀD = I``, in canonical form.
    precisions : ndarray of shape (K, M, M)
        Λ_k at the final D, in the factors' canonical order and signs.
    covariances : ndarray of shape (K, M, M)
        Σ_k = Λ_k⁻¹ at the final D, likewise.
    noise_variances : ndarray of shape (K,)
        ε_k at the final D.
    objective : float
        f(D) at the final D (all datasets).
    objective_history : list of float
        Adam: the summed L_k of each epoch (each L_k evaluated just before its batch's step).
        L-BFGS: f at the start, then after each iteration.
    gradient_norm : float
        Frobenius norm of the Riemannian gradient at the final D.
    n_iter : int
        Epochs (Adam) or iterations (L-BFGS) performed.
    converged : bool
    """

    components: np.ndarray
    precisions: np.ndarray
    covariances: np.ndarray
    noise_variances: np.ndarray
    objective: float
    objective_history: list = field(default_factory=list)
    gradient_norm: float = 0.0
    n_iter: int = 0
    converged: bool = False


def _result(D, states, f, grad, history, n_iter, converged) -> FitResult:
    # Canonical order and signs; f, the history, ‖grad‖ (G → G P S) and ε_k are invariant.
    components, precisions, covariances, _, _ = canonical_form(
        D, np.array([s.precision for s in states]), np.array([s.covariance for s in states])
    )
    return FitResult(
        components=components,
        precisions=precisions,
        covariances=covariances,
        noise_variances=np.array([s.noise for s in states]),
        objective=float(f),
        objective_history=list(history),
        gradient_norm=float(np.linalg.norm(grad)),
        n_iter=n_iter,
        converged=converged,
    )


def fit_adam(
    Xs,
    D0: np.ndarray,
    alpha,
    *,
    max_iter: int = 2000,
    tol: float = 1e-8,
    learning_rate: float = 1e-3,
    batch_size: int | None = None,
    seed: int = 0,
    penalize_diagonal: bool = True,
    assume_centered: bool = False,
    beta1: float = 0.9,
    beta2: float = 0.999,
    adam_eps: float = 1e-8,
    glasso_tol: float = 1e-12,
    glasso_max_iter: int = 10000,
    penalty: str = "lasso",
    beta: float = 0.0,
    fused_pairs: str = "all",
) -> FitResult:
    """Algorithm 1 with Adam steps on the Stiefel manifold and mini-batches of datasets.

    Every epoch draws a SplitMix64 permutation of the K datasets (even when one batch holds
    them all) and walks it in batches of ``B`` datasets. For each batch, every dataset in it
    is refitted at the current D (ε_k by eq. 16, Λ_k by the warm-started graphical lasso,
    eq. 13), its L_k is added to the epoch loss and its term of eq. 10 to the batch gradient;
    then one Adam step is taken on the Riemannian gradient (eq. 9) and pulled back to the
    manifold by the polar retraction (eqs. 7-8):

        t ← t + 1,  m ← β₁ m + (1 − β₁) g,  v ← β₂ v + (1 − β₂) g²,
        D ← polar(D − lr · m̂ / (√v̂ + eps)),  m̂ = m / (1 − β₁ᵗ),  v̂ = v / (1 − β₂ᵗ).

    With a coupling penalty (``penalty="fused"`` or ``"group"``, β > 0) the Λ_k of all K
    datasets are refitted together by :func:`joint_graphical_lasso`, so every batch holds all K
    datasets (a smaller ``batch_size`` raises ValueError), and the epoch loss adds P(Λ) once.

    The fit stops after ``max_iter`` epochs, or (when ``tol > 0``) from the second epoch on as
    soon as two successive epoch losses differ by at most ``tol · max(1, |latest − f_units|)``,
    ``f_units = Σ_k V log(tr S_k / V)`` (:func:`_objective_scale`). The final
    D, Λ_k and Σ_k are returned in the canonical form of :func:`canonical_form`.

    Parameters
    ----------
    Xs : sequence of K ndarray, each of shape (N_k, V)
    D0 : ndarray of shape (V, M)
        Start, ``D0ᵀ D0 = I``.
    alpha : float or sequence of K floats
        A scalar ρ for every dataset, or ρ_k per dataset (its graphical lasso, eq. 13, and
        its term ρ_k‖Λ_k‖₁ of L_k); finite and >= 0. A list of K equal values gives
        bit-for-bit the result of the scalar.
    max_iter : int
        Maximum number of epochs.
    tol : float
        Relative change of the epoch loss for convergence; 0 disables the test.
    learning_rate : float
    batch_size : int or None
        Datasets per step; None, 0 or >= K mean all K.
    seed : int
        SplitMix64 seed of the shuffles.
    penalize_diagonal : bool, default=True
        Penalise the diagonal of Λ_k as well (the paper's ‖·‖₁, eq. 6).
    assume_centered : bool, default=False
    beta1, beta2, adam_eps : float
        Adam constants.
    glasso_tol, glasso_max_iter
        Passed to :func:`graphical_lasso`; with a coupling, to :func:`joint_graphical_lasso`
        as its ``tol`` and ``max_iter``.
    penalty : {"lasso", "fused", "group"}, default="lasso"
        The coupling of the K latent networks; "lasso" leaves them independent.
    beta : float, default=0.0
        β >= 0 of the coupling; β = 0 gives bit-for-bit the fit without these keywords.
    fused_pairs : {"all", "chain"}, default="all"

    Returns
    -------
    FitResult
        Components (V, M), precisions and covariances (K, M, M) in canonical form.
    """
    data = _prepare(Xs, assume_centered)
    K = len(data)
    alphas = _check_alpha(alpha, K)
    coupling = _check_coupling(penalty, beta, fused_pairs, alphas)
    V = data[0].Xc.shape[1]
    D = _check_projection(D0, V).copy()
    opts = {"penalize_diagonal": penalize_diagonal, "tol": glasso_tol, "max_iter": glasso_max_iter}
    B = K if batch_size is None or batch_size == 0 or batch_size >= K else int(batch_size)
    if coupling is not None and B < K:
        raise ValueError(
            f"penalty={coupling.penalty!r} with beta > 0 couples all {K} datasets, so each batch must hold all "
            f"of them; got batch_size={batch_size}"
        )

    m = np.zeros_like(D)
    v = np.zeros_like(D)
    t = 0
    rng = SplitMix64(seed)
    states: list[_State | None] = [None] * K
    history: list[float] = []
    converged = False
    epoch = 0
    for epoch in range(1, max_iter + 1):
        order = rng.permutation(K)
        epoch_loss = 0.0
        for start in range(0, K, B):
            G = np.zeros_like(D)
            if coupling is None:
                for k in order[start : start + B]:
                    warm = None if states[k] is None else states[k].precision
                    states[k] = _refit(data[k], D, alphas[k], opts, warm)
                    epoch_loss += states[k].objective
                    G += _euclidean_gradient_term(states[k])
            else:
                warm = None if states[0] is None else [s.precision for s in states]
                states, coupling_value = _refit_joint(data, D, alphas, opts, coupling, warm)
                epoch_loss += sum(states[k].objective for k in order) + coupling_value
                for k in order:
                    G += _euclidean_gradient_term(states[k])
            g = riemannian_gradient(D, G)
            t += 1
            m = beta1 * m + (1.0 - beta1) * g
            v = beta2 * v + (1.0 - beta2) * (g * g)
            m_hat = m / (1.0 - beta1**t)
            v_hat = v / (1.0 - beta2**t)
            D = polar_retraction(D - learning_rate * m_hat / (np.sqrt(v_hat) + adam_eps))
        history.append(epoch_loss)
        if tol > 0 and epoch >= 2 and abs(history[-1] - history[-2]) <= tol * _objective_scale(data, history[-1]):
            converged = True
            break

    warm = [s.precision for s in states] if all(s is not None for s in states) else None
    f, grad, final_states = _profile(data, D, alphas, opts, warm, coupling)
    return _result(D, final_states, f, grad, history, epoch, converged)


def _objective_scale(data, f):
    """max(1, |f − Σ_k V log(tr S_k / V)|): E measured from the shift it takes when a dataset's units
    change (X → cX, ρ → c²ρ adds V log c² to L_k), so the stopping rules do not depend on units."""
    V = data[0].Xc.shape[1]
    units = sum(V * np.log(d.trace / V) for d in data)
    scale = abs(f - units)
    return max(1.0, scale) if np.isfinite(scale) else max(1.0, abs(f))


def _out_of_span_curvature(states):
    """h_j = 2 Σ_k [A_k[j, j] / ε_k + ε_k Λ_k[j, j] − 2]: the second derivative of f along a move of
    factor j out of span D in a direction of noise variance, floored at 1e-6 of the largest."""
    h = sum(2.0 * (np.diag(st.A) / st.noise + st.noise * np.diag(st.precision) - 2.0) for st in states)
    floor = 1e-6 * max(float(np.max(h)), 0.0)
    if not floor > 0:
        return np.ones_like(h)
    return np.where(np.isfinite(h) & (h > floor), h, floor)


def _initial_inverse_hessian(D, s, y, q, h):
    """H₀ q for the two-loop recursion, scaled separately inside and outside span D.

    A tangent vector splits into a rotation inside span D, ``D Dᵀ q``, and a move out of it,
    ``(I − D Dᵀ) q``; E sees the first only through the ℓ1 penalty and the second through the
    data. The first part gets the Barzilai–Borwein ratio ``sᵀy / yᵀy`` of its components of the
    newest pair; the second is scaled per factor by 1 / h_j (:func:`_out_of_span_curvature`: factors
    of very different strength have very different curvatures) and as a whole by the preconditioned
    ratio ``sᵀy / yᵀ diag(1/h) y`` (the ratio of the whole pair when a part is negligible or of
    non-positive curvature).
    """

    def ratio(sy_part, yy_part, s_part, y_part):
        whole = float(np.sum(s * y) / np.sum(y * y))
        if s_part <= 1e-8 * np.linalg.norm(s) or y_part <= 1e-8 * np.linalg.norm(y):
            return whole
        g = sy_part / yy_part
        return g if g > 0 and np.isfinite(g) else whole

    Ds, Dy = D.T @ s, D.T @ y
    s_out, y_out = s - D @ Ds, y - D @ Dy
    gamma_in = ratio(np.sum(Ds * Dy), np.sum(Dy * Dy), np.linalg.norm(Ds), np.linalg.norm(Dy))
    w = 1.0 / h
    gamma_out = ratio(np.sum(s_out * y_out), np.sum(y_out * y_out * w), np.linalg.norm(s_out), np.linalg.norm(y_out))
    q_in = D @ (D.T @ q)
    return gamma_in * q_in + gamma_out * (q - q_in) * w


def fit_lbfgs(
    Xs,
    D0: np.ndarray,
    alpha,
    *,
    max_iter: int = 2000,
    tol: float = 1e-8,
    memory: int = 10,
    penalize_diagonal: bool = True,
    assume_centered: bool = False,
    glasso_tol: float = 1e-12,
    glasso_max_iter: int = 10000,
    penalty: str = "lasso",
    beta: float = 0.0,
    fused_pairs: str = "all",
) -> FitResult:
    """Riemannian L-BFGS on the profile objective f(D).

    With a coupling penalty (``penalty="fused"`` or ``"group"``, β > 0), f is the coupled
    profile objective of :func:`profile_objective` (the joint graphical lasso, warm-started
    between evaluations, and P(Λ) added once).

    Two-loop recursion over the last ``memory`` pairs ``(s_i, y_i)``, transported to the
    current tangent space by the projection ``P_D(v) = v − D sym(Dᵀv)`` and dropped when their
    curvature ``sᵀy`` is not above ``1e-10 ‖s‖‖y‖``; initial inverse Hessian scaled by the
    ratio ``sᵀy / yᵀy`` of the newest pair, separately inside and outside span D, and outside it
    per factor by its curvature (:func:`_initial_inverse_hessian`). If the direction p is not a descent direction the
    memory is cleared and ``p = −g``. Armijo backtracking (c₁ = 1e-4) along
    ``polar(D + τ p)``: τ starts at 1 (at ``min(1, 1/‖g‖)`` while the memory is empty) and is
    halved up to 40 times. After a step, ``s = P_new(τ p)`` and ``y = g_new − P_new(g_old)``.

    Converged when ``f_prev − f_new <= tol · max(1, |f_new − f_units|)`` and
    ``‖g_new‖_F <= max(√tol · ‖g_0‖_F, 1e-10 · max(1, |f_0 − f_units|))`` with
    ``f_units = Σ_k V log(tr S_k / V)`` (:func:`_objective_scale`). When no step decreases f, the fit
    stops, converged if the gradient test holds or ``‖g‖_F <= 1e-7 ‖G‖_F`` with G the Euclidean
    gradient (eq. 10) at D — stationary to working precision, as a warm start from a converged fit
    is. The final D, Λ_k and Σ_k are
    returned in the canonical form of :func:`canonical_form`.

    Parameters
    ----------
    Xs : sequence of K ndarray, each of shape (N_k, V)
    D0 : ndarray of shape (V, M)
        Start, ``D0ᵀ D0 = I``.
    alpha : float or sequence of K floats
        A scalar ρ for every dataset, or ρ_k per dataset (its graphical lasso, eq. 13, and
        its term ρ_k‖Λ_k‖₁ of L_k); finite and >= 0. A list of K equal values gives
        bit-for-bit the result of the scalar.
    max_iter : int
        Maximum number of iterations.
    tol : float
    memory : int
        Number of stored pairs.
    penalize_diagonal : bool, default=True
        Penalise the diagonal of Λ_k as well (the paper's ‖·‖₁, eq. 6).
    assume_centered : bool, default=False
    glasso_tol, glasso_max_iter
        Passed to :func:`graphical_lasso` (warm-started between evaluations); with a coupling,
        to :func:`joint_graphical_lasso` as its ``tol`` and ``max_iter``.
    penalty : {"lasso", "fused", "group"}, default="lasso"
        The coupling of the K latent networks; "lasso" leaves them independent.
    beta : float, default=0.0
        β >= 0 of the coupling; β = 0 gives bit-for-bit the fit without these keywords.
    fused_pairs : {"all", "chain"}, default="all"

    Returns
    -------
    FitResult
        Components (V, M), precisions and covariances (K, M, M) in canonical form.
    """
    data = _prepare(Xs, assume_centered)
    alphas = _check_alpha(alpha, len(data))
    coupling = _check_coupling(penalty, beta, fused_pairs, alphas)
    V = data[0].Xc.shape[1]
    D = _check_projection(D0, V).copy()
    opts = {"penalize_diagonal": penalize_diagonal, "tol": glasso_tol, "max_iter": glasso_max_iter}
    c1 = 1e-4

    def inner(a, b):
        return float(np.sum(a * b))

    f, g, states = _profile(data, D, alphas, opts, None, coupling)
    g0_norm = float(np.linalg.norm(g))
    stationary = 1e-10 * _objective_scale(data, f)  # a unit step changes f by less than its accuracy
    grad_target = max(np.sqrt(tol) * g0_norm, stationary)
    history = [f]
    pairs: list[tuple[np.ndarray, np.ndarray]] = []
    converged = g0_norm <= stationary
    n_iter = 0

    while not converged and n_iter < max_iter:
        # Transport the memory to T_D and drop pairs that lost positive curvature.
        transported = []
        for s, y in pairs:
            s, y = tangent_projection(D, s), tangent_projection(D, y)
            if inner(s, y) > 1e-10 * np.linalg.norm(s) * np.linalg.norm(y):
                transported.append((s, y))
        pairs = transported

        # Two-loop recursion.
        q = g.copy()
        coefficients = []
        for s, y in reversed(pairs):
            rho_i = 1.0 / inner(s, y)
            a = rho_i * inner(s, q)
            q -= a * y
            coefficients.append((rho_i, a))
        if pairs:
            q = _initial_inverse_hessian(D, *pairs[-1], q, _out_of_span_curvature(states))
        for (s, y), (rho_i, a) in zip(pairs, reversed(coefficients)):
            b = rho_i * inner(y, q)
            q += (a - b) * s
        p = -q
        slope = inner(g, p)
        if not pairs or not slope < 0.0:
            pairs = []
            p = -g
            slope = -inner(g, g)

        # Armijo backtracking along the retraction.
        tau = min(1.0, 1.0 / float(np.linalg.norm(g))) if not pairs else 1.0
        accepted = None
        for _ in range(41):
            D_trial = polar_retraction(D + tau * p)
            f_trial, g_trial, states_trial = _profile(
                data, D_trial, alphas, opts, [s.precision for s in states], coupling
            )
            if f_trial <= f + c1 * tau * slope:
                accepted = (D_trial, f_trial, g_trial, states_trial)
                break
            tau *= 0.5
        if accepted is None:
            # No step decreases f: converged if the gradient test holds or the gradient is stationary
            # to working precision relative to the Euclidean gradient (e.g. a converged warm start).
            euclidean = sum(_euclidean_gradient_term(st) for st in states)
            g_norm = float(np.linalg.norm(g))
            converged = g_norm <= grad_target or g_norm <= 1e-7 * float(np.linalg.norm(euclidean))
            break

        n_iter += 1
        D_new, f_new, g_new, states = accepted
        s_new = tangent_projection(D_new, tau * p)
        y_new = g_new - tangent_projection(D_new, g)
        if inner(s_new, y_new) > 1e-10 * np.linalg.norm(s_new) * np.linalg.norm(y_new):
            pairs.append((s_new, y_new))
            if len(pairs) > memory:
                pairs.pop(0)
        f_prev = f
        D, f, g = D_new, f_new, g_new
        history.append(f)
        if f_prev - f <= tol * _objective_scale(data, f) and float(np.linalg.norm(g)) <= grad_target:
            converged = True

    return _result(D, states, f, g, history, n_iter, converged)
