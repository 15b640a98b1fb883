"""Graphical lasso: the function, with scikit-learn's signature (the estimator is in
:mod:`metaglasso._glasso_estimator`, loaded when ``metaglasso.GraphicalLasso`` is first used, so that
``import metaglasso`` does not import scikit-learn)."""

from __future__ import annotations

import math
import numbers
import warnings

import numpy as np

from metaglasso import _core
from metaglasso._validation import (
    check_nonnegative,
    check_positive_int,
    check_precision_init,
    is_sparse,
)
from metaglasso.exceptions import ConvergenceWarning

__all__ = ["graphical_lasso"]

_EPS = np.finfo(np.float64).eps
_LOG_2PI = math.log(2.0 * math.pi)


def _nonnegative(value, name):
    """check_nonnegative with a fast path for the common plain float or int."""
    if type(value) is float or type(value) is int:
        value = float(value)
        if value >= 0.0 and value != math.inf:
            return value
    return check_nonnegative(value, name)


def _check_sklearn_options(mode, enet_tol, eps, verbose):
    """Validate the arguments accepted for compatibility with scikit-learn, with its ranges: mode in
    {'cd', 'lars'}, enet_tol in (0, inf], eps in [0, inf], verbose a bool or an int."""
    if not isinstance(mode, str) or mode not in ("cd", "lars"):
        raise ValueError(f"mode must be 'cd' or 'lars'; got {mode!r}")
    if isinstance(enet_tol, bool) or not isinstance(enet_tol, numbers.Real) or not enet_tol > 0:
        raise ValueError(f"enet_tol must be a real number > 0; got {enet_tol!r}")
    if isinstance(eps, bool) or not isinstance(eps, numbers.Real) or not eps >= 0:
        raise ValueError(f"eps must be a real number >= 0; got {eps!r}")
    if not isinstance(verbose, (numbers.Integral, np.bool_)):
        raise ValueError(f"verbose must be a bool or an int; got {verbose!r}")


def _solve(emp_cov, alpha, tol, max_iter, penalize_diagonal, precision_init):
    """Validate the arguments, run the C++ solver and return (covariance, precision, n_iter,
    converged, gap).

    Cheap checks only: emp_cov is read in place when it is a C-ordered float64 array, and its
    finiteness and symmetry are checked in C++ in one pass.
    """
    if type(emp_cov) is np.ndarray and emp_cov.dtype.kind == "c":
        raise ValueError(f"Complex data not supported: emp_cov has dtype {emp_cov.dtype}; it must be real")
    try:
        S = np.asarray(emp_cov, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        if is_sparse(emp_cov):
            raise TypeError(f"emp_cov is a sparse {type(emp_cov).__name__}: sparse input is not supported; pass "
                            f"a dense array instead (e.g. emp_cov.toarray())") from None
        raise ValueError(f"emp_cov could not be converted to a real float64 array: {exc}") from None
    if S.ndim != 2 or S.shape[0] != S.shape[1] or S.shape[0] == 0:
        raise ValueError(f"emp_cov must be a non-empty square 2-D array; got shape {S.shape}")
    alpha = _nonnegative(alpha, "alpha")
    tol = _nonnegative(tol, "tol")
    if type(max_iter) is not int or max_iter < 1:
        max_iter = check_positive_int(max_iter, "max_iter")
    P0 = None if precision_init is None else check_precision_init(precision_init, S.shape[0])
    result = _core._graphical_lasso(S, alpha, tol, max_iter, bool(penalize_diagonal), P0)
    n_iter, converged, gap = result[2], result[3], result[4]
    if not converged:
        target = tol * S.shape[0]
        if n_iter >= max_iter:
            message = (
                f"graphical_lasso did not converge in max_iter={max_iter} sweeps: duality gap {gap:.3e} > "
                f"tol * n_features = {target:.3e}. Increase max_iter or tol."
            )
        else:
            # The solver stops before max_iter only when it can make no further progress: the
            # sweeps or Newton steps no longer lower the gap, or the next iterate would lose
            # positive definiteness, at double precision.
            shown = f"{gap:.3e}" if math.isfinite(gap) else "inf (the dual point is not positive definite)"
            message = (
                f"graphical_lasso did not converge: it stopped after {n_iter} of max_iter={max_iter} sweeps "
                f"because no further progress is possible at working (double) precision, with duality gap "
                f"{shown} > tol * n_features = {target:.3e}. The covariance is too ill-conditioned for "
                f"alpha={alpha:.3g} at this tol, so raising max_iter will not help: use a larger alpha or a larger tol."
            )
        warnings.warn(message, ConvergenceWarning, stacklevel=3)
    return result


def _objective(S, alpha, precision, penalize_diagonal):
    """tr(S Θ) − log det Θ + α‖Θ‖₁ (the C++ evaluation; S and Θ are symmetric, so their
    transposes are the F-ordered arrays it reads)."""
    S = np.asarray(S, dtype=np.float64)
    return float(_core.glasso_objective(np.asfortranarray(S.T), alpha, np.asfortranarray(precision.T),
                                        bool(penalize_diagonal)))


def graphical_lasso(
    emp_cov,
    alpha,
    *,
    mode="cd",
    tol=1e-8,
    enet_tol=1e-4,
    max_iter=1000,
    verbose=False,
    return_costs=False,
    eps=_EPS,
    return_n_iter=False,
    penalize_diagonal=False,
    precision_init=None,
):
    r"""L1-penalised Gaussian maximum likelihood estimate of a precision matrix.

    Minimises :math:`\operatorname{tr}(S\Theta) - \log\det\Theta + \alpha\|\Theta\|_1` over symmetric
    positive definite :math:`\Theta` (Friedman, Hastie & Tibshirani 2008), where the penalty covers the
    off-diagonal entries (all entries with ``penalize_diagonal=True``). After exact covariance
    thresholding into connected components, each component is solved by block coordinate descent on
    the dual (the glasso algorithm, with every column's lasso solved exactly), falling back on primal
    block coordinate descent (Mazumder & Hastie 2012) with a Newton finish; it stops on a duality gap,
    so the answer is certified to ``tol``, and the returned precision is positive definite.

    The signature is scikit-learn's :func:`sklearn.covariance.graphical_lasso` (with metaglasso's
    defaults for ``tol`` and ``max_iter``, and two parameters of its own, ``penalize_diagonal`` and
    ``precision_init``). ``mode``, ``enet_tol`` and ``eps`` are accepted and validated as scikit-learn
    does, but do not change the result: metaglasso has a single solver.

    Parameters
    ----------
    emp_cov : array-like of shape (n_features, n_features)
        Symmetric positive semi-definite empirical covariance :math:`S` (dense; sparse matrices are
        not supported).
    alpha : float
        Penalty :math:`\alpha \ge 0`. With ``alpha=0`` the exact inverse of ``emp_cov`` is returned
        (``emp_cov`` must then be positive definite and not numerically singular: no ridge is added).
    mode : {'cd', 'lars'}, default='cd'
        scikit-learn's choice of lasso solver for the columns. Accepted for compatibility and
        ignored: metaglasso solves each column's lasso exactly (an active-set method), so both give
        the same answer.
    tol : float, default=1e-8
        Stop when the duality gap is at most ``tol * n_features`` and the optimality (KKT)
        conditions hold to ``tol`` relative to the scale of ``emp_cov``. (scikit-learn's ``tol``
        bounds its duality gap itself, with default 1e-4.)
    enet_tol : float, default=1e-4
        scikit-learn's tolerance of its inner elastic-net solver, > 0. Accepted for compatibility
        and ignored (the inner problems are solved exactly).
    max_iter : int, default=1000
        Maximum number of sweeps over the columns (>= 1).
    verbose : bool or int, default=False
        Print the number of sweeps, the objective and the duality gap of the result (once, at
        the end: the solver does not report its sweeps one by one, as scikit-learn's does).
    return_costs : bool, default=False
        Also return ``costs``.
    eps : float, default=np.finfo(np.float64).eps
        scikit-learn's regularisation of its Cholesky diagonal factors, >= 0. Accepted for
        compatibility and ignored: metaglasso keeps its iterates positive definite without it.
    return_n_iter : bool, default=False
        Also return the number of sweeps.
    penalize_diagonal : bool, default=False
        Penalise the diagonal of the precision as well (R glasso's ``penalize.diagonal``).
    precision_init : array-like of shape (n_features, n_features), default=None
        Warm start, e.g. the solution at a nearby ``alpha``. Ignored (cold start) when it is not
        positive definite.

    Returns
    -------
    covariance : ndarray of shape (n_features, n_features)
        The inverse of ``precision`` (``emp_cov`` itself when ``alpha=0``).
    precision : ndarray of shape (n_features, n_features)
        Symmetric positive definite estimate :math:`\Theta`.
    costs : list of (objective, dual_gap) pairs
        Returned only if ``return_costs`` is True. A single pair, for the returned precision (the
        solver does not record its iterates; scikit-learn lists one pair per iteration): the
        objective :math:`\operatorname{tr}(S\Theta) - \log\det\Theta + \alpha\|\Theta\|_1` and
        metaglasso's certified duality gap (scikit-learn's objective adds the constant
        ``2 * n_features * log(2 pi)``, and its gap is Duchi's, :math:`\operatorname{tr}(S\Theta) - p +
        \alpha\|\Theta\|_1`).
    n_iter : int
        Number of sweeps; returned only if ``return_n_iter`` is True.

    Raises
    ------
    ValueError
        If ``emp_cov`` is not a finite symmetric square matrix, ``alpha`` or ``tol`` is negative or not
        finite, ``max_iter`` is not a positive integer, ``precision_init`` has the wrong shape, or
        ``mode``, ``enet_tol``, ``eps`` or ``verbose`` is outside scikit-learn's range for it.
    TypeError
        If ``emp_cov`` is a sparse matrix.
    metaglasso.NumericalError
        If ``alpha=0`` and ``emp_cov`` is singular or numerically singular (a variable with less
        than 1e-12 of its variance not explained by the others), or a diagonal entry of ``emp_cov`` is zero while
        the diagonal is not penalised (the problem then has no solution).

    Warns
    -----
    ConvergenceWarning
        If the duality gap is still above ``tol * n_features`` at the end. The message says why:
        either ``max_iter`` sweeps were used (then a larger ``max_iter`` or ``tol`` helps), or the
        solver stopped earlier because no further progress was possible at double precision (an
        ill-conditioned ``emp_cov`` with a small ``alpha``; a larger ``max_iter`` does not help, a
        larger ``alpha`` or ``tol`` does).

    See Also
    --------
    GraphicalLasso : The estimator, which fits data.

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
    if not (type(mode) is str and (mode == "cd" or mode == "lars") and type(enet_tol) is float and enet_tol > 0.0
            and isinstance(eps, float) and eps >= 0.0 and type(verbose) is bool):  # fast path for the usual types
        _check_sklearn_options(mode, enet_tol, eps, verbose)
    covariance, precision, n_iter, converged, gap = _solve(
        emp_cov, alpha, tol, max_iter, penalize_diagonal, precision_init
    )
    output = [covariance, precision]
    if return_costs or verbose:
        cost = _objective(emp_cov, float(alpha), precision, penalize_diagonal)
        if verbose:
            print(f"[graphical_lasso] {n_iter} sweeps, cost {cost:.6e}, dual gap {gap:.3e}, "
                  f"{'converged' if converged else 'not converged'}")
        if return_costs:
            output.append([(cost, float(gap))])
    if return_n_iter:
        output.append(n_iter)
    return tuple(output)
