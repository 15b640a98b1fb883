"""Warnings and errors raised by metaglasso."""

from metaglasso._core import NumericalError

__all__ = ["ConvergenceWarning", "NumericalError"]


class ConvergenceWarning(UserWarning):
    """An iterative solver stopped before its convergence criterion held.

    The result is still returned (and flagged, e.g. ``converged_ = False``); increase
    ``max_iter`` or loosen ``tol`` if it matters.
    """
