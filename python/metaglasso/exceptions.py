"""Warnings and errors raised by metaglasso."""

from metaglasso._core import NumericalError

__all__ = ["ConvergenceWarning", "FitFailedWarning", "GridEdgeWarning", "NumericalError"]


class ConvergenceWarning(UserWarning):
    """An iterative solver stopped before its convergence criterion held.

    The result is still returned (and flagged, e.g. ``converged_ = False``); increase
    ``max_iter`` or loosen ``tol`` if it matters.
    """


class FitFailedWarning(UserWarning):
    """A fit of a model-selection grid raised :class:`NumericalError`.

    The grid point is recorded with an infinite criterion and the error message, and the search
    goes on with the other points.
    """


class GridEdgeWarning(UserWarning):
    """The criterion of a model-selection grid is smallest at the grid's edge (the smallest or the
    largest M or ρ tried): the optimum may lie beyond it. Extend the grid on that side."""
