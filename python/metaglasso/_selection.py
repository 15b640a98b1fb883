"""Choice of the number of factors M, the penalty ρ and the coupling λ₂ by the Bayesian information criterion."""

from __future__ import annotations

import time
import warnings
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from metaglasso._estimator import MetaGraphicalLasso
from metaglasso._base import NotFittedError, _Base
from metaglasso._data import as_datasets
from metaglasso._validation import check_enough_samples, check_nonnegative, check_positive_int
from metaglasso.exceptions import ConvergenceWarning, FitFailedWarning, GridEdgeWarning, NumericalError

__all__ = ["MetaGraphicalLassoBIC", "select_model"]

_CRITERIA = ("bic",)


def _grid_values(values, name, check):
    """A non-empty tuple of distinct checked values, from a scalar or a sequence."""
    seq = [values] if np.isscalar(values) else list(values)
    if not seq:
        raise ValueError(f"{name} must contain at least one value; got an empty sequence")
    out = tuple(check(v, name) for v in seq)
    if len(set(out)) != len(out):
        raise ValueError(f"{name} must not contain duplicates; got {list(seq)!r}")
    return out


class MetaGraphicalLassoBIC(_Base):
    """MetaGraphicalLasso with M and ρ (and λ₂) chosen by BIC (paper eq. 17) over a grid.

    For every number of factors M the penalties are fitted from the largest to the smallest, each
    fit starting from the factors of the previous one (a warm start along ρ); every grid point is
    scored by :meth:`MetaGraphicalLasso.bic` on the data it was fitted to. The point of smallest BIC
    is then refitted from the estimator's own start (``init``, by default the PCA start), so that
    ``best_estimator_`` is exactly ``MetaGraphicalLasso(n_components=M, alpha=ρ, ...).fit(Xs)``.

    With ``betas`` (and ``penalty="fused"`` or ``"group"``) λ₂ is a third axis: for every M the
    (ρ, λ₂) grid is walked row by row in a serpentine — ρ from the largest, λ₂ from the largest on
    the first row, back from the smallest on the next — so that each fit starts from a neighbour's
    factors. BIC then counts the networks' distinct nonzero values
    (:meth:`MetaGraphicalLasso.n_parameters`).

    Parameters
    ----------
    n_components : int or sequence of int, default=(5, 10, 20)
        Candidate numbers M of latent factors.
    alphas : float or sequence of float, default=(0.03, 0.06, 0.09)
        Candidate penalties ρ >= 0: the common multiplier α of every dataset's penalty (with
        ``alpha_scaling="n_samples"`` dataset k gets ρ_k = α sqrt(N̄ / N_k); see
        :class:`MetaGraphicalLasso`).
    betas : float or sequence of float, optional
        Candidate λ₂ >= 0 of a fused or group penalty (``penalty`` given among ``params``). None:
        the one ``beta`` of ``params`` (default 0), not searched.
    criterion : {"bic"}, default="bic"
        Model selection criterion (smaller is better).
    warm_start : bool, default=True
        Start each fit along ρ from the previous fit's factors. With False every grid point is
        an independent fit from ``init``.
    refit : bool, default=True
        Refit the best grid point from ``init`` (see above); with False ``best_estimator_`` is
        the grid's own fit of that point.
    n_jobs : int or None, default=None
        Numbers of factors fitted concurrently (Python threads; the core releases the GIL). Each
        concurrent chain then gets ``n_threads // n_jobs`` core threads when ``n_threads`` is
        given. None means 1.
    **params
        Any other :class:`MetaGraphicalLasso` parameter (``solver``, ``tol``, ``init``,
        ``n_threads``, ...), used for every fit.

    Attributes
    ----------
    results_ : list of dict
        One record per grid point, in fitting order, with keys ``n_components``, ``alpha`` (the
        grid's ρ), ``beta`` (λ₂), ``alphas`` (the ρ_k of the datasets at that point, or None for a failed fit),
        ``bic``, ``objective``, ``nonzeros`` (Σ_k nnz(Λ_k), every entry as counted by BIC),
        ``n_parameters``, ``n_iter``, ``converged``, ``time`` (seconds) and ``error``: None, or the
        message of the :class:`NumericalError` of a fit that failed (its criterion is then
        infinite, and a :class:`FitFailedWarning` is issued). ``pandas.DataFrame(results_)``
        makes a table of it. Fits that stop before converging are kept with the criterion of the
        point they reached and reported together in one :class:`ConvergenceWarning`; a choice at
        the smallest or largest M or ρ of the grid issues a :class:`GridEdgeWarning`.
    best_index_ : int
        Index of the smallest criterion in ``results_``.
    n_components_ : int
        The chosen M.
    alpha_ : float
        The chosen ρ.
    beta_ : float
        The chosen λ₂ (the one ``beta`` when ``betas`` is None).
    best_estimator_ : MetaGraphicalLasso
        The fitted model at the chosen point.

    Examples
    --------
    >>> from metaglasso import MetaGraphicalLassoBIC
    >>> from metaglasso.datasets import make_synthetic
    >>> Xs, truth = make_synthetic(60, 100, 4, 3, random_state=0)
    >>> search = MetaGraphicalLassoBIC(n_components=[2, 3, 5], alphas=[0.05, 0.1]).fit(Xs)
    >>> search.n_components_
    3
    """

    def __init__(self, n_components=(5, 10, 20), alphas=(0.03, 0.06, 0.09), *, betas=None, criterion="bic",
                 warm_start=True, refit=True, n_jobs=None, **params):
        self.n_components = n_components
        self.alphas = alphas
        self.betas = betas
        self.criterion = criterion
        self.warm_start = warm_start
        self.refit = refit
        self.n_jobs = n_jobs
        self._params = params  # checked by fit (scikit-learn's estimators validate nothing in __init__)

    def _check_params(self):
        forwarded = set(MetaGraphicalLasso._get_param_names()) - {"n_components", "alpha"}
        unknown = sorted(set(self._params) - forwarded)
        if unknown:
            raise ValueError(f"invalid MetaGraphicalLasso parameter(s) for the grid search: {unknown}")
        if self.betas is None:
            return (check_nonnegative(self._params.get("beta", 0.0), "beta"),)
        if "beta" in self._params:
            raise ValueError("give either betas (the grid of lambda_2) or beta, not both")
        if self._params.get("penalty", "lasso") not in ("fused", "group"):
            raise ValueError(f"betas needs penalty='fused' or 'group'; got penalty={self._params.get('penalty', 'lasso')!r}")
        return tuple(sorted(_grid_values(self.betas, "betas", check_nonnegative), reverse=True))

    def get_params(self, deep=True):
        """Get the parameters of this search: its own and the :class:`MetaGraphicalLasso` parameters given.

        Parameters
        ----------
        deep : bool, default=True
            Ignored (the search holds no estimator as a parameter).

        Returns
        -------
        params : dict
            Parameter names mapped to their values.
        """
        out = {name: getattr(self, name) for name in self._get_param_names()}
        out.update(self._params)
        return out

    def set_params(self, **params):
        """Set parameters of this search, or :class:`MetaGraphicalLasso` parameters of its fits.

        Parameters
        ----------
        **params : dict
            Parameter names and values; names that are not parameters of the search or of
            :class:`MetaGraphicalLasso` (but n_components and alpha) are reported by :meth:`fit`.

        Returns
        -------
        self : MetaGraphicalLassoBIC
            This search.
        """
        own = set(self._get_param_names())
        for key, value in params.items():
            if key in own:
                setattr(self, key, value)
            else:
                self._params[key] = value
        return self

    def __sklearn_tags__(self):
        return MetaGraphicalLasso().__sklearn_tags__()

    def _best(self):
        if "best_estimator_" not in self.__dict__:
            raise NotFittedError(f"This {type(self).__name__} instance is not fitted yet. Call 'fit' with appropriate "
                                 f"arguments before using this estimator.")
        return self.best_estimator_

    def transform(self, X, dataset=None, *, groupby=None, layer=None):
        """:meth:`MetaGraphicalLasso.transform` of ``best_estimator_``."""
        return self._best().transform(X, dataset, groupby=groupby, layer=layer)

    def fit_transform(self, X, y=None, **fit_params):
        """:meth:`fit`, then :meth:`MetaGraphicalLasso.transform` of the data (see
        :meth:`MetaGraphicalLasso.fit_transform`)."""
        return self.fit(X, **fit_params).best_estimator_._fit_scores(X, fit_params)

    def score(self, Xs, y=None, *, groupby=None, layer=None):
        """:meth:`MetaGraphicalLasso.score` of ``best_estimator_``."""
        return self._best().score(Xs, groupby=groupby, layer=layer)

    def bic(self, Xs, *, groupby=None, layer=None):
        """:meth:`MetaGraphicalLasso.bic` of ``best_estimator_``."""
        return self._best().bic(Xs, groupby=groupby, layer=layer)

    def get_feature_names_out(self, input_features=None):
        """:meth:`MetaGraphicalLasso.get_feature_names_out` of ``best_estimator_``."""
        return self._best().get_feature_names_out(input_features)

    def _estimator(self, m, alpha, beta, n_threads):
        params = dict(self._params)
        if n_threads is not None:
            params["n_threads"] = n_threads
        params["beta"] = beta
        return MetaGraphicalLasso(n_components=m, alpha=alpha, **params)

    def _chain(self, arrays, m, alphas, betas, n_threads):
        """Fits of one M along the penalties (ρ largest first, λ₂ in a serpentine); returns (records,
        models)."""
        records, models, previous = [], [], None
        points = [(alpha, beta) for row, alpha in enumerate(alphas)
                  for beta in (betas if row % 2 == 0 else betas[::-1])]
        for alpha, beta in points:
            model = self._estimator(m, alpha, beta, n_threads)
            if self.warm_start and previous is not None:
                model.set_params(init=previous.components_)
            start = time.perf_counter()
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", ConvergenceWarning)
                    model.fit(arrays)
            except NumericalError as exc:
                at = f"n_components={m}, alpha={alpha:g}" + (f", beta={beta:g}" if len(betas) > 1 else "")
                warnings.warn(f"the fit at {at} failed and is left out: {exc}", FitFailedWarning, stacklevel=4)
                records.append(dict(
                    n_components=m, alpha=alpha, beta=beta, alphas=None, bic=np.inf, objective=np.inf, nonzeros=0,
                    n_parameters=0, n_iter=0, converged=False, time=time.perf_counter() - start, error=str(exc),
                ))
                models.append(None)
                continue
            elapsed = time.perf_counter() - start
            records.append(dict(
                n_components=m, alpha=alpha, beta=beta, alphas=[float(a) for a in model.alphas_],
                bic=model.bic(arrays),
                objective=float(model.objective_),
                nonzeros=int(np.count_nonzero(model.precisions_)), n_parameters=model.n_parameters(),
                n_iter=int(model.n_iter_), converged=bool(model.converged_), time=elapsed, error=None,
            ))
            models.append(model)
            previous = model
        return records, models

    def fit(self, Xs, y=None, *, groupby=None, layer=None, min_cells=None, dataset_names=None):
        """Fit every grid point and keep the one of smallest criterion.

        Parameters
        ----------
        Xs : sequence of K array-likes of shape (n_samples_k, n_features), dict, array-like or anndata.AnnData
            The datasets, in any form :meth:`MetaGraphicalLasso.fit` takes except Dask arrays (the grid
            needs the data in memory).
        y : None
            Ignored; for scikit-learn's API.
        groupby, layer, min_cells : optional
            AnnData only; see :meth:`MetaGraphicalLasso.fit`.
        dataset_names : sequence of K str or int, optional
            Names of the datasets (``best_estimator_.dataset_names_``).

        Returns
        -------
        self : MetaGraphicalLassoBIC
            The fitted search.
        """
        betas = self._check_params()
        if self.criterion not in _CRITERIA:
            raise ValueError(f"criterion must be one of {_CRITERIA}; got {self.criterion!r}")
        ms = _grid_values(self.n_components, "n_components", check_positive_int)
        alphas = sorted(_grid_values(self.alphas, "alphas", check_nonnegative), reverse=True)
        n_jobs = 1 if self.n_jobs is None else check_positive_int(self.n_jobs, "n_jobs")
        data = as_datasets(Xs, groupby=groupby, layer=layer, min_cells=min_cells, dataset_names=dataset_names)
        if data.lazy:
            raise ValueError("Xs holds Dask arrays, which MetaGraphicalLasso.fit, score and bic take without loading "
                             "them; here the data must be in memory (call .compute() on each)")
        arrays = data.arrays
        n_features = arrays[0].shape[1]
        too_big = [m for m in ms if m >= n_features]
        if too_big:
            raise ValueError(f"n_components must be smaller than n_features={n_features}; got {too_big}")
        check_enough_samples(arrays, max(ms), bool(self._params.get("assume_centered", False)), labels=data.labels)
        threads = self._params.get("n_threads")
        chain_threads = None if threads is None or n_jobs == 1 else max(1, int(threads) // n_jobs)

        if n_jobs == 1 or len(ms) == 1:
            chains = [self._chain(arrays, m, alphas, betas, chain_threads) for m in ms]
        else:
            with ThreadPoolExecutor(max_workers=min(n_jobs, len(ms))) as pool:
                chains = list(pool.map(lambda m: self._chain(arrays, m, alphas, betas, chain_threads), ms))
        self.results_ = [rec for records, _ in chains for rec in records]
        models = [model for _, fitted in chains for model in fitted]
        if all(rec["error"] is not None for rec in self.results_):
            raise NumericalError(f"every fit of the grid failed; the first: {self.results_[0]['error']}")
        self.best_index_ = int(np.argmin([rec[self.criterion] for rec in self.results_]))
        best = self.results_[self.best_index_]
        self.n_components_, self.alpha_, self.beta_ = best["n_components"], best["alpha"], best["beta"]
        _warn_about_grid(self.results_, ms, alphas, betas, best, self.criterion)
        if self.refit:
            self.best_estimator_ = self._estimator(self.n_components_, self.alpha_, self.beta_, None).fit(arrays)
        else:
            self.best_estimator_ = models[self.best_index_]
        best_model = self.best_estimator_  # the grid fits the validated arrays; record the input's names
        best_model._set_origin(best_model.n_samples_, best_model.means_, data, None)
        return self

    def __getattr__(self, name):
        # The fitted model's attributes (components_, precisions_, ...) through the search.
        if name.endswith("_") and not name.startswith("_") and "best_estimator_" in self.__dict__:
            return getattr(self.__dict__["best_estimator_"], name)
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")


def _warn_about_grid(records, ms, alphas, betas, best, criterion):
    """The search's own warnings: grid fits that stopped before converging (their criterion is that of
    the point they reached), and a choice at the edge of the grid (the optimum may lie beyond it)."""
    short = [r for r in records if r["error"] is None and not r["converged"]]
    if short:
        listed = ", ".join(f"M={r['n_components']} alpha={r['alpha']:g}"
                           + (f" beta={r['beta']:g}" if len(betas) > 1 else "") + f" ({r['n_iter']} iterations)"
                           for r in short)
        warnings.warn(
            f"{len(short)} of the {len(records)} grid fits stopped before converging: {listed}; their {criterion} is "
            f"that of the point they reached (increase max_iter, or see converged in results_)",
            ConvergenceWarning, stacklevel=3)
    edges = []
    if len(ms) > 1 and best["n_components"] in (min(ms), max(ms)):
        side = "smallest" if best["n_components"] == min(ms) else "largest"
        edges.append(f"n_components={best['n_components']} is the {side} value tried")
    if len(alphas) > 1 and best["alpha"] in (min(alphas), max(alphas)):
        side = "smallest" if best["alpha"] == min(alphas) else "largest"
        edges.append(f"alpha={best['alpha']:g} is the {side} value tried")
    # λ₂ = 0 is the independent fit, the end of the axis, so choosing it is no sign of a short grid.
    if len(betas) > 1 and best["beta"] in (min(betas), max(betas)) and not (best["beta"] == min(betas) == 0):
        side = "smallest" if best["beta"] == min(betas) else "largest"
        edges.append(f"beta={best['beta']:g} is the {side} value tried")
    if edges:
        warnings.warn(f"the {criterion} is smallest at the edge of the grid: {' and '.join(edges)}; the optimum "
                      "may lie beyond it, extend the grid on that side", GridEdgeWarning, stacklevel=3)


def select_model(Xs, n_components, alphas, *, betas=None, criterion="bic", groupby=None, layer=None,
                 min_cells=None, dataset_names=None, **kwargs):
    """Choose M and ρ (and λ₂) by BIC over a grid and refit the best model.

    A shortcut for ``MetaGraphicalLassoBIC(n_components, alphas, betas=betas, criterion=criterion,
    **kwargs).fit(Xs)``; see :class:`MetaGraphicalLassoBIC` for the procedure and the keyword
    arguments.

    Parameters
    ----------
    Xs : sequence of K array-likes of shape (n_samples_k, n_features), dict, array-like or anndata.AnnData
        The datasets, as for :meth:`MetaGraphicalLassoBIC.fit`.
    n_components : int or sequence of int
        Candidate numbers M of latent factors.
    alphas : float or sequence of float
        Candidate penalties ρ >= 0.
    betas : float or sequence of float, optional
        Candidate λ₂ >= 0 of ``penalty="fused"`` or ``"group"`` (given in ``kwargs``).
    criterion : {"bic"}, default="bic"
        Model selection criterion.
    groupby, layer, min_cells, dataset_names : optional
        See :meth:`MetaGraphicalLassoBIC.fit`.
    **kwargs
        Parameters of :class:`MetaGraphicalLassoBIC` and :class:`MetaGraphicalLasso`.

    Returns
    -------
    MetaGraphicalLassoBIC
        Fitted: ``results_`` (the table), ``n_components_``, ``alpha_``, ``beta_`` and ``best_estimator_``.
    """
    return MetaGraphicalLassoBIC(n_components, alphas, betas=betas, criterion=criterion, **kwargs).fit(
        Xs, groupby=groupby, layer=layer, min_cells=min_cells, dataset_names=dataset_names)
