"""Graphical lasso: the function and the estimator (scikit-learn conventions)."""

from __future__ import annotations

import math
import warnings

import numpy as np

from metaglasso import _core
from metaglasso._validation import (
    check_data_matrix,
    check_nonnegative,
    check_positive_int,
    check_precision_init,
)
from metaglasso.exceptions import ConvergenceWarning

__all__ = ["GraphicalLasso", "graphical_lasso"]


def _nonnegative(value, name):
    """check_nonnegative with a fast path for the common plain float or int."""
    if type(value) is float or type(value) is int:
        value = float(value)
        if value >= 0.0 and value != math.inf:
            return value
    return check_nonnegative(value, name)


def _solve(emp_cov, alpha, tol, max_iter, penalize_diagonal, precision_init):
    """Validate the arguments, run the C++ solver and return (covariance, precision, n_iter,
    converged, gap).

    Cheap checks only: emp_cov is read in place when it is a C-ordered float64 array, and its
    finiteness and symmetry are checked in C++ in one pass.
    """
    S = np.asarray(emp_cov, dtype=np.float64)
    if S.ndim != 2 or S.shape[0] != S.shape[1] or S.shape[0] == 0:
        raise ValueError(f"emp_cov must be a non-empty square 2-D array; got shape {S.shape}")
    alpha = _nonnegative(alpha, "alpha")
    tol = _nonnegative(tol, "tol")
    if type(max_iter) is not int or max_iter < 1:
        max_iter = check_positive_int(max_iter, "max_iter")
    P0 = None if precision_init is None else check_precision_init(precision_init, S.shape[0])
    result = _core._graphical_lasso(S, alpha, tol, max_iter, bool(penalize_diagonal), P0)
    if not result[3]:
        warnings.warn(
            f"graphical_lasso did not converge in max_iter={max_iter} sweeps: duality gap "
            f"{result[4]:.3e} > tol * n_features = {tol * S.shape[0]:.3e}. Increase max_iter or tol.",
            ConvergenceWarning,
            stacklevel=3,
        )
    return result


def graphical_lasso(
    emp_cov,
    alpha,
    *,
    tol=1e-8,
    max_iter=1000,
    penalize_diagonal=False,
    precision_init=None,
    return_n_iter=False,
):
    r"""L1-penalised Gaussian maximum likelihood estimate of a precision matrix.

    Minimises :math:`\operatorname{tr}(S\Theta) - \log\det\Theta + \alpha\|\Theta\|_1` over symmetric
    positive definite :math:`\Theta` (Friedman, Hastie & Tibshirani 2008), where the penalty covers the
    off-diagonal entries (all entries with ``penalize_diagonal=True``). After exact covariance
    thresholding into connected components, each component is solved by block coordinate descent on
    the dual (the glasso algorithm, with every column's lasso solved exactly), falling back on primal
    block coordinate descent (Mazumder & Hastie 2012) with a Newton finish; it stops on a duality gap,
    so the answer is certified to ``tol``, and the returned precision is positive definite.

    Parameters
    ----------
    emp_cov : array-like of shape (n_features, n_features)
        Symmetric positive semi-definite empirical covariance :math:`S`.
    alpha : float
        Penalty :math:`\alpha \ge 0`. With ``alpha=0`` the exact inverse of ``emp_cov`` is returned
        (``emp_cov`` must then be positive definite and not numerically singular: no ridge is added).
    tol : float, default=1e-8
        Stop when the duality gap is at most ``tol * n_features`` and the optimality (KKT)
        conditions hold to ``tol`` relative to the scale of ``emp_cov``.
    max_iter : int, default=1000
        Maximum number of sweeps over the columns (>= 1).
    penalize_diagonal : bool, default=False
        Penalise the diagonal of the precision as well (R glasso's ``penalize.diagonal``).
    precision_init : array-like of shape (n_features, n_features), default=None
        Warm start, e.g. the solution at a nearby ``alpha``. Ignored (cold start) when it is not
        positive definite.
    return_n_iter : bool, default=False
        Also return the number of sweeps.

    Returns
    -------
    covariance : ndarray of shape (n_features, n_features)
        The inverse of ``precision`` (``emp_cov`` itself when ``alpha=0``).
    precision : ndarray of shape (n_features, n_features)
        Symmetric positive definite estimate :math:`\Theta`.
    n_iter : int
        Number of sweeps; returned only if ``return_n_iter`` is True.

    Raises
    ------
    ValueError
        If ``emp_cov`` is not a finite square matrix, ``alpha`` or ``tol`` is negative or not finite,
        ``max_iter`` is not a positive integer, or ``precision_init`` has the wrong shape.
    metaglasso.NumericalError
        If ``alpha=0`` and ``emp_cov`` is singular or numerically singular (a variable with less
        than 1e-12 of its variance not explained by the others), or a diagonal entry of ``emp_cov`` is zero while
        the diagonal is not penalised (the problem then has no solution).

    Warns
    -----
    ConvergenceWarning
        If the duality gap is still above ``tol * n_features`` after ``max_iter`` sweeps.

    Examples
    --------
    >>> import numpy as np
    >>> from metaglasso import graphical_lasso
    >>> S = np.array([[1.0, 0.5], [0.5, 1.0]])
    >>> cov, prec = graphical_lasso(S, alpha=0.1)
    >>> np.round(cov, 6)
    array([[1. , 0.4],
           [0.4, 1. ]])
    """
    covariance, precision, n_iter, _, _ = _solve(emp_cov, alpha, tol, max_iter, penalize_diagonal, precision_init)
    if return_n_iter:
        return covariance, precision, n_iter
    return covariance, precision


class GraphicalLasso:
    r"""Sparse inverse covariance estimation with an L1 penalty (graphical lasso).

    Parameters
    ----------
    alpha : float, default=0.01
        Penalty :math:`\alpha \ge 0` on the off-diagonal entries of the precision.
    tol : float, default=1e-8
        Stop when the duality gap is at most ``tol * n_features``.
    max_iter : int, default=1000
        Maximum number of sweeps over the columns.
    penalize_diagonal : bool, default=False
        Penalise the diagonal of the precision as well.
    assume_centered : bool, default=False
        If True, the data are not centred before the covariance is computed.

    Attributes
    ----------
    location_ : ndarray of shape (n_features,)
        Estimated mean (zeros if ``assume_centered``).
    covariance_ : ndarray of shape (n_features, n_features)
        Estimated covariance, the inverse of ``precision_``.
    precision_ : ndarray of shape (n_features, n_features)
        Estimated sparse precision matrix (symmetric positive definite).
    n_iter_ : int
        Number of sweeps run.
    gap_ : float
        Final duality gap.
    converged_ : bool
        Whether the duality gap reached ``tol * n_features``.
    n_features_in_ : int
        Number of features seen during ``fit``.

    See Also
    --------
    graphical_lasso : The function this estimator calls.

    Examples
    --------
    >>> import numpy as np
    >>> from metaglasso import GraphicalLasso
    >>> X = np.random.default_rng(0).standard_normal((200, 4))
    >>> model = GraphicalLasso(alpha=0.05).fit(X)
    >>> model.precision_.shape
    (4, 4)
    """

    def __init__(self, alpha=0.01, *, tol=1e-8, max_iter=1000, penalize_diagonal=False, assume_centered=False):
        self.alpha = alpha
        self.tol = tol
        self.max_iter = max_iter
        self.penalize_diagonal = penalize_diagonal
        self.assume_centered = assume_centered

    def fit(self, X, y=None):
        """Estimate the sparse precision matrix of ``X``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Data, with at least two samples.
        y : None
            Ignored; present for API consistency.

        Returns
        -------
        self : GraphicalLasso
            The fitted estimator.
        """
        X = check_data_matrix(X, "X", min_samples=2)
        if self.assume_centered:
            location = np.zeros(X.shape[1])
            S = X.T @ X / X.shape[0]
        else:
            location = X.mean(axis=0)
            Xc = X - location
            S = Xc.T @ Xc / X.shape[0]
        S = 0.5 * (S + S.T)
        covariance, precision, n_iter, converged, gap = _solve(
            S, self.alpha, self.tol, self.max_iter, self.penalize_diagonal, None
        )
        self.location_ = location
        self.covariance_ = covariance
        self.precision_ = precision
        self.n_iter_ = int(n_iter)
        self.gap_ = float(gap)
        self.converged_ = bool(converged)
        self.n_features_in_ = X.shape[1]
        return self
