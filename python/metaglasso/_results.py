"""What the fit reports: its progress and the partial correlations of the latent networks (no
dependency beyond NumPy, so that the modules that need them load without the estimators)."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

__all__ = ["FitProgress", "partial_correlations"]


class FitProgress(NamedTuple):
    """What :class:`MetaGraphicalLasso`'s ``callback`` receives after each iteration."""

    iteration: int
    """Iterations (lbfgs) or epochs (adam) completed."""
    objective: float
    """E after it (adam: the epoch's sum of per-dataset terms)."""
    gradient_norm: float
    """Norm of the Riemannian gradient at the new D (adam: of the epoch's last step)."""


def partial_correlations(precisions):
    """Partial correlations -Λ_ij / sqrt(Λ_ii Λ_jj) of precision matrices.

    Parameters
    ----------
    precisions : array of shape (..., M, M)
        Symmetric positive definite precision matrices.

    Returns
    -------
    ndarray of shape (..., M, M)
        Partial correlations, with ones on the diagonal.
    """
    precisions = np.asarray(precisions, dtype=np.float64)
    d = np.sqrt(np.diagonal(precisions, axis1=-2, axis2=-1))
    out = -precisions / (d[..., :, None] * d[..., None, :])
    idx = np.arange(precisions.shape[-1])
    out[..., idx, idx] = 1.0
    return out
