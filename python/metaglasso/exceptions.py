"""Warnings and errors raised by metaglasso."""

from metaglasso._core import NumericalError

__all__ = ["ConvergenceWarning", "FitFailedWarning", "GridEdgeWarning", "NumericalError"]

# Defined by the compiled core (a subclass of ArithmeticError); its docstring is given here.
NumericalError.__doc__ = """A numerical failure that is not the caller's fault.

Raised when a problem has no solution to working precision: a dataset without variance outside
the span of D, a singular covariance with ρ = 0, or an inner graphical lasso that cannot converge
at the returned D (README, *Edge cases*); a fit's message names the dataset. Invalid arguments raise
``ValueError`` instead, and a solver that stops before its tolerance issues a
:class:`ConvergenceWarning`.
"""


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
