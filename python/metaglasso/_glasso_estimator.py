"""The graphical lasso estimator, a scikit-learn estimator.

:class:`GraphicalLasso` derives from :class:`sklearn.base.BaseEstimator` when scikit-learn is installed,
and otherwise from :class:`_EstimatorBase`, a small equivalent of the parts of that protocol it uses
(``get_params``, ``set_params`` and the ``repr``), so that metaglasso itself depends on NumPy alone. Its
data validation is metaglasso's own (:mod:`metaglasso._validation`), with scikit-learn's messages, and
the same with or without scikit-learn. This module is imported when ``metaglasso.GraphicalLasso`` is
first used: importing scikit-learn takes about a second, which ``import metaglasso`` should not cost.
"""

from __future__ import annotations

import math

import numpy as np

from metaglasso._base import _UNUSED, NotFittedError, _Base, _EstimatorBase, _NotFittedError  # noqa: F401
from metaglasso._validation import (
    check_estimator_data,
    check_feature_names,
    check_symmetric,
    feature_names,
)
from metaglasso._glasso import _EPS, _LOG_2PI, _check_sklearn_options, _objective, _solve

__all__ = ["GraphicalLasso"]


class GraphicalLasso(_Base):
    r"""Sparse inverse covariance estimation with an L1 penalty (graphical lasso).

    Fits :func:`graphical_lasso` to the empirical covariance of the data (or to a covariance
    given as ``X`` with ``covariance="precomputed"``). A scikit-learn estimator, usable as a drop-in
    replacement of :class:`sklearn.covariance.GraphicalLasso`: it has the same parameters (and
    ``penalize_diagonal``), ``get_params``/``set_params``, works with ``clone``, ``Pipeline`` and
    ``GridSearchCV`` (which uses :meth:`score`), and has the methods :meth:`score`,
    :meth:`mahalanobis`, :meth:`error_norm` and :meth:`get_precision` of
    :class:`sklearn.covariance.EmpiricalCovariance`. It passes
    :func:`sklearn.utils.estimator_checks.check_estimator`. scikit-learn is not needed: where it is
    installed the class derives from :class:`sklearn.base.BaseEstimator`, and otherwise from a small
    equivalent with the same conventions.

    The defaults of ``tol`` and ``max_iter`` are metaglasso's (a certified duality gap), not
    scikit-learn's, and ``mode``, ``enet_tol`` and ``eps`` are accepted, validated and ignored.

    Parameters
    ----------
    alpha : float, default=0.01
        Penalty :math:`\alpha \ge 0` on the off-diagonal entries of the precision (on all entries
        with ``penalize_diagonal=True``).
    mode : {'cd', 'lars'}, default='cd'
        scikit-learn's lasso solver for the columns. Accepted for compatibility and ignored:
        metaglasso solves each column's lasso exactly, so both give the same answer.
    covariance : "precomputed" or None, default=None
        With ``"precomputed"``, ``X`` in :meth:`fit` is the (n_features, n_features) covariance
        matrix itself (symmetric positive semi-definite), and ``location_`` is zero. With None the
        empirical covariance of the data ``X`` is used.
    tol : float, default=1e-8
        Stop when the duality gap is at most ``tol * n_features``.
    enet_tol : float, default=1e-4
        scikit-learn's tolerance of its inner elastic-net solver, > 0. Accepted for compatibility
        and ignored.
    max_iter : int, default=1000
        Maximum number of sweeps over the columns (>= 1).
    verbose : bool or int, default=False
        Print the number of sweeps, the objective and the duality gap once the fit is done.
    eps : float, default=np.finfo(np.float64).eps
        scikit-learn's regularisation of its Cholesky factors, >= 0. Accepted for compatibility and
        ignored.
    assume_centered : bool, default=False
        If True, the data are not centred before the covariance is computed (``location_`` is
        zero).
    penalize_diagonal : bool, default=False
        Penalise the diagonal of the precision as well.

    Attributes
    ----------
    location_ : ndarray of shape (n_features,)
        Estimated mean (zeros if ``assume_centered`` or ``covariance="precomputed"``).
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
    costs_ : list of (objective, dual_gap) pairs
        A single pair, for the fitted precision: the penalised objective
        :math:`\operatorname{tr}(S\Theta) - \log\det\Theta + \alpha\|\Theta\|_1` and ``gap_`` (see
        :func:`graphical_lasso`; scikit-learn lists one pair per iteration).
    n_features_in_ : int
        Number of features seen during ``fit``.
    feature_names_in_ : ndarray of shape (``n_features_in_``,)
        Names of the features seen during ``fit``. Defined only when ``X`` has feature names that
        are all strings (the columns of a data frame).

    See Also
    --------
    graphical_lasso : The function this estimator calls.
    metaglasso.MetaGraphicalLasso : Several datasets with shared latent factors.

    Notes
    -----
    scikit-learn's estimator checks: none is skipped through tags or ``expected_failed_checks``,
    and none is expected to fail (scikit-learn itself runs its array API check only when
    ``SCIPY_ARRAY_API=1`` is set before SciPy is imported; it passes then). :meth:`score` and
    :meth:`mahalanobis` check that their input has the features seen by ``fit`` (and the same
    column names, with scikit-learn's warnings and errors). Sparse input is rejected with a
    TypeError saying it is not supported; one feature is accepted (the precision is then
    1 / variance), where scikit-learn's estimator requires two.

    Examples
    --------
    >>> import numpy as np
    >>> from metaglasso import GraphicalLasso
    >>> X = np.random.default_rng(0).standard_normal((200, 4))
    >>> model = GraphicalLasso(alpha=0.05).fit(X)
    >>> model.precision_.shape
    (4, 4)
    >>> model
    GraphicalLasso(alpha=0.05)
    >>> bool(model.score(X) < 0)
    True
    """

    # score's argument is X_test (scikit-learn's name), not metadata to route.
    __metadata_request__score = {"X_test": _UNUSED}

    def __init__(
        self,
        alpha=0.01,
        *,
        mode="cd",
        covariance=None,
        tol=1e-8,
        enet_tol=1e-4,
        max_iter=1000,
        verbose=False,
        eps=_EPS,
        assume_centered=False,
        penalize_diagonal=False,
    ):
        self.alpha = alpha
        self.mode = mode
        self.covariance = covariance
        self.tol = tol
        self.enet_tol = enet_tol
        self.max_iter = max_iter
        self.verbose = verbose
        self.eps = eps
        self.assume_centered = assume_centered
        self.penalize_diagonal = penalize_diagonal

    def fit(self, X, y=None):
        """Estimate the sparse precision matrix of ``X``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features), or (n_features, n_features) with ``covariance="precomputed"``
            Data, with at least two samples (a dense array or a data frame; sparse input is not
            supported). With ``covariance="precomputed"``, the covariance matrix.
        y : None
            Ignored; present for API consistency.

        Returns
        -------
        self : GraphicalLasso
            The fitted estimator.

        Raises
        ------
        ValueError
            If ``X`` is not a finite, real 2-D array with at least two samples (a finite symmetric
            square matrix with a non-negative diagonal when ``covariance="precomputed"``), or a
            parameter is invalid (the message names it and its value).
        TypeError
            If ``X`` is sparse.
        metaglasso.NumericalError
            As :func:`graphical_lasso`.

        Warns
        -----
        ConvergenceWarning
            As :func:`graphical_lasso`.
        """
        name = type(self).__name__
        _check_sklearn_options(self.mode, self.enet_tol, self.eps, self.verbose)
        if self.covariance is not None and not (isinstance(self.covariance, str) and self.covariance == "precomputed"):
            raise ValueError(f"covariance must be 'precomputed' or None; got {self.covariance!r}")
        if self.covariance is None:
            X, names = check_estimator_data(X, "X", name, min_samples=2)
            X = np.ascontiguousarray(X)  # the same rounding, hence the same answer, for every layout
            if self.assume_centered:
                location = np.zeros(X.shape[1])
                S = X.T @ X / X.shape[0]
            else:
                location = X.mean(axis=0)
                Xc = X - location
                S = Xc.T @ Xc / X.shape[0]
            S = 0.5 * (S + S.T)
        else:
            S, names = check_estimator_data(X, "X", name)
            if S.shape[0] != S.shape[1]:
                raise ValueError(f"X must be a square covariance matrix of shape (n_features, n_features) with "
                                 f"covariance='precomputed'; got shape {S.shape}")
            check_symmetric(S, "X")
            diagonal = np.diag(S)
            if diagonal.min() < 0:
                j = int(np.argmin(diagonal))
                raise ValueError(f"X must be positive semi-definite with covariance='precomputed'; got a negative "
                                 f"diagonal entry X[{j}, {j}] = {float(diagonal[j])!r}")
            location = np.zeros(S.shape[0])
        covariance, precision, n_iter, converged, gap = _solve(
            S, self.alpha, self.tol, self.max_iter, self.penalize_diagonal, None
        )
        cost = _objective(S, float(self.alpha), precision, self.penalize_diagonal)
        if self.verbose:
            print(f"[{name}] {n_iter} sweeps, cost {cost:.6e}, dual gap {gap:.3e}, "
                  f"{'converged' if converged else 'not converged'}")
        self.location_ = location
        self.covariance_ = covariance
        self.precision_ = precision
        self.n_iter_ = int(n_iter)
        self.gap_ = float(gap)
        self.converged_ = bool(converged)
        self.costs_ = [(cost, float(gap))]
        self.n_features_in_ = S.shape[1]
        if names is not None:
            self.feature_names_in_ = names
        elif hasattr(self, "feature_names_in_"):
            del self.feature_names_in_
        return self

    # -----------------------------------------------------------------------------------------
    # EmpiricalCovariance's methods

    def _check_is_fitted(self):
        if not hasattr(self, "precision_"):
            raise NotFittedError(f"This {type(self).__name__} instance is not fitted yet. Call 'fit' with "
                                 f"appropriate arguments before using this estimator.")

    def _check_test_data(self, X, name):
        """``X`` as a float64 array with the features seen by ``fit`` (scikit-learn's checks)."""
        self._check_is_fitted()
        # The column names first, as scikit-learn's validate_data: a data frame with other columns
        # is reported as such (not as the values it then holds).
        check_feature_names(getattr(self, "feature_names_in_", None), feature_names(X), type(self).__name__, "X",
                            stacklevel=4)
        X, _ = check_estimator_data(X, name, type(self).__name__)
        if X.shape[1] != self.n_features_in_:
            raise ValueError(f"X has {X.shape[1]} features, but {type(self).__name__} is expecting "
                             f"{self.n_features_in_} features as input.")
        return X

    def get_precision(self):
        """The estimated precision matrix.

        Returns
        -------
        precision_ : ndarray of shape (n_features, n_features)
            ``precision_``.
        """
        self._check_is_fitted()
        return self.precision_

    def score(self, X_test, y=None):
        r"""Average Gaussian log-likelihood of ``X_test`` under the fitted model.

        As :meth:`sklearn.covariance.EmpiricalCovariance.score`: with :math:`S_{test}` the covariance
        of ``X_test`` centred at ``location_`` (divided by n_samples) and :math:`\Theta` =
        ``precision_``, it is :math:`(-\operatorname{tr}(S_{test}\Theta) + \log\det\Theta - p\log 2\pi) / 2`,
        scikit-learn's ``log_likelihood(S_test, precision_)``. ``X_test`` is data (also when the
        model was fitted with ``covariance="precomputed"``). Larger is better, so
        ``GridSearchCV`` can choose ``alpha`` with it.

        Parameters
        ----------
        X_test : array-like of shape (n_samples, n_features)
            Test data, assumed to come from the distribution of the training data.
        y : None
            Ignored; present for API consistency.

        Returns
        -------
        log_likelihood : float
            Mean log-likelihood per sample.

        Raises
        ------
        sklearn.exceptions.NotFittedError
            Before ``fit`` (a subclass of ValueError and AttributeError; metaglasso's own class of
            that name when scikit-learn is not installed).
        ValueError
            If ``X_test`` is not a finite real 2-D array with ``n_features_in_`` features, or its
            column names differ from those seen by ``fit``.
        """
        X = self._check_test_data(X_test, "X_test")
        Xc = X - self.location_
        P = self.precision_
        trace = float(np.sum((Xc @ P) * Xc)) / X.shape[0]
        sign, logdet = np.linalg.slogdet(P)
        if not sign > 0:
            logdet = -math.inf
        return (-trace + float(logdet) - P.shape[0] * _LOG_2PI) / 2.0

    def mahalanobis(self, X):
        r"""Squared Mahalanobis distances of the observations to ``location_`` under the fitted
        model, :math:`(x - \mu)^\top \Theta (x - \mu)`.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Observations.

        Returns
        -------
        dist : ndarray of shape (n_samples,)
            Squared Mahalanobis distances (non-negative: computed through the Cholesky factor of
            ``precision_``).
        """
        X = self._check_test_data(X, "X")
        L = np.linalg.cholesky(self.precision_)
        return np.sum(((X - self.location_) @ L) ** 2, axis=1)

    def error_norm(self, comp_cov, norm="frobenius", scaling=True, squared=True):
        r"""Squared error norm between ``covariance_`` and another covariance, as
        :meth:`sklearn.covariance.EmpiricalCovariance.error_norm`.

        Parameters
        ----------
        comp_cov : array-like of shape (n_features, n_features)
            The covariance to compare with.
        norm : {"frobenius", "spectral"}, default="frobenius"
            Frobenius norm :math:`\sqrt{\operatorname{tr}(A^\top A)}` or spectral norm (the largest
            singular value) of ``A = comp_cov - covariance_``.
        scaling : bool, default=True
            Divide the squared norm by n_features.
        squared : bool, default=True
            Return the squared norm (else the norm).

        Returns
        -------
        result : float
            The (scaled, squared) norm.

        Raises
        ------
        ValueError
            If ``comp_cov`` does not have shape (n_features, n_features).
        NotImplementedError
            For another ``norm`` (as scikit-learn).
        """
        self._check_is_fitted()
        comp_cov = np.asarray(comp_cov, dtype=np.float64)
        if comp_cov.shape != self.covariance_.shape:
            raise ValueError(f"comp_cov must have shape {self.covariance_.shape}; got shape {comp_cov.shape}")
        error = comp_cov - self.covariance_
        if norm == "frobenius":
            squared_norm = float(np.sum(error**2))
        elif norm == "spectral":
            squared_norm = float(np.amax(np.linalg.svd(error.T @ error, compute_uv=False)))
        else:
            raise NotImplementedError(f"Only spectral and frobenius norms are implemented; got norm={norm!r}")
        if scaling:
            squared_norm = squared_norm / error.shape[0]
        return squared_norm if squared else math.sqrt(squared_norm)
