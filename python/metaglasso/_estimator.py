"""The scikit-learn style MGLASSO estimator."""

from __future__ import annotations

import numbers
import time
import warnings

import numpy as np

from metaglasso import _core, _dask
from metaglasso._base import NotFittedError, _Base
from metaglasso._results import FitProgress, partial_correlations
from metaglasso._data import as_datasets, check_finite, is_anndata, model_dataset, model_datasets
from metaglasso._validation import (
    as_real_array,
    check_enough_samples,
    check_n_threads,
    check_nonnegative,
    check_positive_int,
    check_random_state,
)
from metaglasso.exceptions import ConvergenceWarning

__all__ = ["FitProgress", "MetaGraphicalLasso", "partial_correlations"]

_SOLVERS = ("lbfgs", "adam")
_ALPHA_SCALINGS = ("none", "n_samples")
_REPRESENTATIONS = ("auto", "data", "covariance")
_PENALTIES = ("lasso", "fused", "group")
_FUSED_PAIRS = ("all", "chain")
_DEFAULT_MAX_ITER = {"lbfgs": 2000, "adam": 5000}
# What a fit records of its input when it applies, removed by a fit where it does not: the names of the
# features and of the datasets, the grouping of an AnnData (metaglasso.bio), the summary of a Dask fit.
_INPUT_ATTRIBUTES = ("feature_names_in_", "dataset_names_", "dropped_groups_", "groupby_", "layer_", "dask_info_")


class MetaGraphicalLasso(_Base):
    """Meta Graphical Lasso (MGLASSO): shared latent factors with a sparse network per dataset.

    K datasets of the same V variables are modelled as x_k ~ N(0, Φ_k) with
    Φ_k = D Σ_k Dᵀ + ε_k (I − D Dᵀ): an orthonormal projection D (V × M) shared by all datasets,
    a sparse latent precision Λ_k = Σ_k⁻¹ (M × M) per dataset and white noise of variance ε_k in
    the remaining V − M directions. The fit minimises
    E = Σ_k [tr(Φ_k⁻¹ S_k) − log|Φ_k⁻¹| + α ‖Λ_k‖₁] by alternating a graphical lasso on
    Dᵀ S_k D, the closed-form ε_k and Riemannian steps for D on the Stiefel manifold. ‖Λ_k‖₁ sums
    the absolute values of all entries of Λ_k, as the paper defines it (Notations), so that E is
    bounded below whatever the sample sizes; ``penalize_diagonal=False`` leaves the diagonal out.

    A scikit-learn estimator (it derives from :class:`sklearn.base.BaseEstimator` when scikit-learn is
    installed, and follows the same protocol without it): ``get_params``/``set_params``, ``clone``,
    ``Pipeline``, ``fit_transform`` and ``get_feature_names_out``. One 2-D array is one dataset (K = 1).
    :func:`sklearn.utils.estimator_checks.check_estimator` passes but for two checks, for reasons
    written down in ``tests/test_estimator_checks.py``: ``transform(X)`` centres X on its own mean
    (so it is not invariant on subsets; ``transform(X, dataset=k)`` is), and a fit that starts at its
    optimum reports ``n_iter_ = 0``.

    The answer is put in a canonical form (see ``components_``): factors in decreasing order of
    their variance summed over the datasets, each with its largest loading positive, so that the
    same data give the same tables whatever the instruction set, thread count or code path.

    Parameters
    ----------
    n_components : int, default=10
        Number M of latent factors, 1 <= M < n_features.
    alpha : float or array-like of shape (n_datasets,), default=0.01
        L1 penalty ρ >= 0 on the latent precisions: one ρ for every dataset, or one ρ_k per
        dataset (in the order of the datasets). Dataset k's ρ_k enters its graphical lasso, its
        term ρ_k ‖Λ_k‖₁ of E and so the gradient; the ρ_k used are in ``alphas_``.
    alpha_scaling : {"none", "n_samples"}, default="none"
        ``"n_samples"`` multiplies dataset k's penalty by sqrt(N̄ / N_k), N̄ the mean of the N_k:
        ρ_k = α_k · sqrt(N̄ / N_k). The sampling error of every entry of S_k, and so of Dᵀ S_k D,
        is of order 1/sqrt(N_k), and the usual rate of the graphical lasso penalty is
        sqrt(log p / n) (Rothman et al. 2008; Ravikumar et al. 2011) with p = M the same for
        every dataset — so a dataset with few samples gets a larger penalty than one with many.
        Equal sizes give ρ_k = α_k; :class:`MetaGraphicalLassoBIC` then searches the common
        multiplier α.
    penalty : {"lasso", "fused", "group"}, default="lasso"
        How the K latent networks are related. ``"lasso"``: independently, the paper's model.
        ``"fused"`` adds ``λ₂ Σ_{(k,l)} Σ_{i≠j} |Λ_k,ij − Λ_l,ij|`` to E, which pulls the networks of
        the pairs of ``fused_pairs`` towards equal entries (edges shared, with the same weight,
        unless the data say otherwise); ``"group"`` adds λ₂ Σ_{i≠j} ‖(Λ_1,ij, …, Λ_K,ij)‖₂, which
        pulls towards a common set of edges with weights of their own (the fused and group
        graphical lassos of Danaher, Wang & Witten 2014, here on the latent networks). For a fixed
        D the K graphical lassos then become one joint problem, solved exactly in the core; ε_k
        keeps its closed form and the gradient for D its form. The fused penalty needs one ρ for
        every dataset; Adam then steps on all datasets at once (``batch_size`` None or >= K).
    beta : float, default=0.0
        λ₂ >= 0 of the fused or group penalty; 0 gives the independent fit exactly.
    fused_pairs : {"all", "chain"}, default="all"
        The pairs of datasets the fused penalty links: every pair, or consecutive datasets only
        (``"chain"``, for ordered contexts such as years or dose levels: dataset k is pulled
        towards k − 1 and k + 1).
    solver : {"lbfgs", "adam"}, default="lbfgs"
        ``"lbfgs"``: Riemannian L-BFGS with an Armijo line search on the profile objective
        f(D) = min over Λ, ε of E (warm-started graphical lassos between evaluations).
        ``"adam"``: the paper's procedure — Adam on the Riemannian gradient followed by the polar
        retraction, one step per mini-batch of datasets.
    init : {"pca", "random"} or array of shape (n_components, n_features), default="pca"
        Start of D: the top principal directions of Σ_k S_k; the polar factor of a seeded uniform
        matrix (as the paper's generator); or given factors (their polar factor is used).
    max_iter : int or None, default=None
        Iterations (lbfgs) or epochs (adam); None means 2000 for lbfgs and 5000 for adam.
    tol : float, default=1e-8
        lbfgs: converged when the relative decrease of E is <= tol and the gradient norm has
        dropped by sqrt(tol) (or below 1e-10 of the scale of E, stationary to working precision);
        adam: converged when E changes by <= tol (relative) over an epoch. "Relative" is to
        max(1, ``|E − Σ_k V log(tr S_k / V)|``): E shifts by the second term when the data's units
        change, so the fit stops at the same point whatever the units.
    learning_rate : float, default=1e-3
        Adam step size.
    batch_size : int or None, default=None
        Datasets per Adam step (shuffled every epoch); None uses all datasets.
    penalize_diagonal : bool, default=True
        Penalise every entry of Λ_k, the paper's ‖Λ_k‖₁ (Notations and eq. 6). With False only the
        off-diagonal entries are penalised (the convention of scikit-learn's graphical lasso and of
        the authors' code); E is then unbounded below whenever a dataset has N_k <= V (more
        precisely, whenever D can turn a factor towards a direction without variance in some
        dataset), and such a fit raises :class:`~metaglasso.NumericalError` when it gets there.
    representation : {"auto", "data", "covariance"}, default="auto"
        How each dataset's covariance S_k is held. ``"data"``: the centred data as a Gram factor
        (S_k = F_k F_kᵀ, F_k of shape (V, N_k); no V × V matrix is formed); ``"covariance"``: S_k
        itself (V × V); ``"auto"``: data when N_k <= V, covariance otherwise — the cheaper of the
        two products per iteration and never more memory than the data. The result does not
        depend on this choice (to rounding).
    compress : bool, default=True
        With ``solver="lbfgs"``, when ΣN_k < V and every dataset is held as data, solve in the
        r <= ΣN_k dimensional span of the centred data and map D back: the same iterates as the
        V-dimensional fit (to rounding) at O(r M ΣN) instead of O(V M ΣN) per iteration, after one
        O(V ΣN²) pass over the data. A random or given ``init`` is first projected into the span
        and re-orthonormalised (the PCA start already lies in it). Adam is never compressed: its
        element-wise step scaling is not invariant under the change of coordinates, so in the span
        it would be a different algorithm from the paper's. See ``compression_rank_``.
    assume_centered : bool, default=False
        If True the data are not centred (each dataset's mean is taken as zero).
    n_init : int, default=1
        Number of starts: ``init`` and ``n_init - 1`` random starts (seeded from
        ``random_state``). The fit of smallest objective is kept; the objective reached from every
        start is in ``init_objectives_``, so that local optima are seen rather than hidden (the
        paper notes that the fit has no guarantee of reaching the global optimum).
    random_state : int, numpy Generator or None, default=None
        Seed of ``init="random"``, of the extra starts of ``n_init`` and of the Adam mini-batch
        shuffles. None means seed 0, so that every run gives the same result.
    n_threads : int or None, default=None
        Threads of the C++ core; None or -1 uses the OpenMP default (see threadpoolctl).
    warm_start : bool, default=False
        When the model is already fitted with the same n_components and n_features, the next
        :meth:`fit` starts from its ``components_`` instead of ``init`` (an interrupted or
        unconverged fit can thus be continued; the solver's memory starts afresh).
    callback : callable or None, default=None
        Called after every iteration (lbfgs) or epoch (adam) as ``callback(progress)`` with a
        :class:`FitProgress` (iteration, objective, gradient_norm). An exception it raises ends
        the fit and propagates; the estimator then keeps its previous state.
    verbose : int, default=0
        1: print progress every 10 iterations and a summary; 2: every iteration. A long fit can
        always be stopped with Ctrl-C (KeyboardInterrupt; the estimator keeps its previous state).
    memory_budget : "auto", int or str, default="auto"
        Dask input only: the client memory the K covariances may take (bytes, or a string such as
        ``"4GB"``; ``"auto"``: half of the memory available when the fit starts). When
        K·V²·8 bytes fit in it, the covariances are reduced on the cluster and gathered into the
        client (``dask_info_["path"] == "covariance"``); otherwise they stay on the cluster in row
        blocks and S_k D is computed there at every evaluation of the objective (``"distributed"``).
        The choice and its reason are logged (logger ``"metaglasso"``, level INFO).

    Attributes
    ----------
    components_ : ndarray of shape (n_components, n_features)
        Dᵀ; rows are orthonormal. In canonical form: rows in decreasing order of
        Σ_k Σ_k[j, j] (the variance of the data along factor j summed over the datasets, plus
        Σ_k ρ_k when the diagonal is penalised, the same for every factor), ties in the order the
        solver returned; each row's entry of largest absolute value positive. ``precisions_``,
        ``covariances_`` and ``partial_correlations_`` follow the same order and signs.
    alphas_ : ndarray of shape (n_datasets,)
        ρ_k, the penalty of each dataset (``alpha`` and ``alpha_scaling`` applied).
    precisions_ : ndarray of shape (n_datasets, n_components, n_components)
        Λ_k.
    covariances_ : ndarray of shape (n_datasets, n_components, n_components)
        Σ_k = Λ_k⁻¹.
    noise_variances_ : ndarray of shape (n_datasets,)
        ε_k.
    partial_correlations_ : ndarray of shape (n_datasets, n_components, n_components)
        -Λ_ij / sqrt(Λ_ii Λ_jj), ones on the diagonal.
    means_ : ndarray of shape (n_datasets, n_features) or None
        Per-dataset means used for centring (zeros when ``assume_centered``; None after
        :meth:`fit_covariances`).
    objective_ : float
        E at the returned D.
    objective_history_ : ndarray
        lbfgs: E at the start and after every iteration; adam: the sum of the per-dataset terms
        over each epoch.
    n_iter_ : int
        Iterations (lbfgs) or epochs (adam) run (of the kept start).
    init_objectives_ : ndarray of shape (n_init,)
        E reached from each start, in the order of the starts (``init`` first).
    best_init_ : int
        Index of the kept start in ``init_objectives_``.
    compression_rank_ : int or None
        r, the dimension of the data span the fit ran in (see ``compress``); None when the fit ran
        in the V features.
    representations_ : list of str
        How the solver held each S_k: ``"data"`` (a Gram factor) or ``"covariance"``; in span
        coordinates when ``compression_rank_`` is set. After a fit on Dask arrays ``"covariance"``
        or ``"distributed"`` (on the cluster; see ``memory_budget``).
    converged_ : bool
        Whether the tolerance was met (a ConvergenceWarning is issued otherwise).
    n_features_in_ : int
    feature_names_in_ : ndarray of shape (n_features,)
        Only when the datasets are pandas DataFrames with string column names, or an AnnData
        (its ``var_names``).
    dataset_names_ : list of str
        Only after a fit on an AnnData: the groups of ``groupby`` that are the datasets, in order.
    dropped_groups_ : dict of str to int
        Only after a fit on an AnnData: the groups dropped by ``min_cells`` and their sizes.
    groupby_, layer_ : str, str or None
        Only after a fit on an AnnData: the ``groupby`` and ``layer`` it used.
    n_samples_ : ndarray of shape (n_datasets,)
        N_k.
    dask_info_ : dict
        Only after a fit on Dask arrays: ``path`` ("covariance" or "distributed"), ``reason``,
        ``memory_budget`` and ``covariance_bytes`` (K·V²·8), ``n_blocks`` (strips of rows per S_k),
        ``statistics_seconds`` (the pass over the data), ``fit_seconds``; on the distributed path
        also ``n_evaluations`` (round trips to the cluster), ``bytes_to_cluster`` and
        ``bytes_from_cluster`` (the arrays sent and received by them) and ``products_seconds``.

    Examples
    --------
    >>> from metaglasso import MetaGraphicalLasso
    >>> from metaglasso.datasets import make_synthetic
    >>> Xs, truth = make_synthetic(100, 200, 5, 5, random_state=0)
    >>> model = MetaGraphicalLasso(n_components=5, alpha=0.09).fit(Xs)
    >>> model.components_.shape
    (5, 100)
    """

    # The inner graphical lasso is solved tightly so that the gradient is exact to working
    # precision; the line search needs it.
    _glasso_tol = 1e-12
    _glasso_max_iter = 10000

    def __init__(
        self,
        n_components=10,
        alpha=0.01,
        *,
        alpha_scaling="none",
        penalty="lasso",
        beta=0.0,
        fused_pairs="all",
        solver="lbfgs",
        init="pca",
        max_iter=None,
        tol=1e-8,
        learning_rate=1e-3,
        batch_size=None,
        penalize_diagonal=True,
        representation="auto",
        compress=True,
        assume_centered=False,
        n_init=1,
        random_state=None,
        n_threads=None,
        warm_start=False,
        callback=None,
        verbose=0,
        memory_budget="auto",
    ):
        self.n_components = n_components
        self.alpha = alpha
        self.alpha_scaling = alpha_scaling
        self.penalty = penalty
        self.beta = beta
        self.fused_pairs = fused_pairs
        self.solver = solver
        self.init = init
        self.max_iter = max_iter
        self.tol = tol
        self.learning_rate = learning_rate
        self.batch_size = batch_size
        self.penalize_diagonal = penalize_diagonal
        self.representation = representation
        self.compress = compress
        self.assume_centered = assume_centered
        self.n_init = n_init
        self.random_state = random_state
        self.n_threads = n_threads
        self.warm_start = warm_start
        self.callback = callback
        self.verbose = verbose
        self.memory_budget = memory_budget

    def __sklearn_tags__(self):
        # Called by scikit-learn only, so scikit-learn is loaded when it runs.
        from sklearn.utils import InputTags, Tags, TargetTags, TransformerTags

        return Tags(estimator_type=None, target_tags=TargetTags(required=False), transformer_tags=TransformerTags(),
                    input_tags=InputTags(sparse=True))

    def _validated_params(self, n_features):
        m = check_positive_int(self.n_components, "n_components")
        if m >= n_features:
            raise ValueError(
                f"n_components must be smaller than n_features={n_features}; got n_components={m}"
            )
        if self.solver not in _SOLVERS:
            raise ValueError(f"solver must be one of {_SOLVERS}; got {self.solver!r}")
        max_iter = _DEFAULT_MAX_ITER[self.solver] if self.max_iter is None else check_positive_int(
            self.max_iter, "max_iter")
        batch = 0 if self.batch_size is None else check_positive_int(self.batch_size, "batch_size")
        lr = check_nonnegative(self.learning_rate, "learning_rate")
        if lr == 0:
            raise ValueError(f"learning_rate must be > 0; got {self.learning_rate!r}")
        if not isinstance(self.representation, str) or self.representation not in _REPRESENTATIONS:
            raise ValueError(f"representation must be one of {_REPRESENTATIONS}; got {self.representation!r}")
        if not isinstance(self.compress, (bool, np.bool_)):
            raise ValueError(f"compress must be True or False; got {self.compress!r}")
        if not isinstance(self.alpha_scaling, str) or self.alpha_scaling not in _ALPHA_SCALINGS:
            raise ValueError(f"alpha_scaling must be one of {_ALPHA_SCALINGS}; got {self.alpha_scaling!r}")
        if np.ndim(self.alpha) == 0:
            check_nonnegative(self.alpha, "alpha")
        if not isinstance(self.penalty, str) or self.penalty not in _PENALTIES:
            raise ValueError(f"penalty must be one of {_PENALTIES}; got {self.penalty!r}")
        if not isinstance(self.fused_pairs, str) or self.fused_pairs not in _FUSED_PAIRS:
            raise ValueError(f"fused_pairs must be one of {_FUSED_PAIRS}; got {self.fused_pairs!r}")
        beta = check_nonnegative(self.beta, "beta")
        return dict(
            coupling=(self.penalty, float(beta), self.fused_pairs),
            m=m,
            n_init=check_positive_int(self.n_init, "n_init"),
            max_iter=max_iter,
            tol=check_nonnegative(self.tol, "tol"),
            learning_rate=lr,
            batch_size=batch,
            seed=check_random_state(self.random_state),
            n_threads=check_n_threads(self.n_threads),
        )

    def _penalties(self, n_samples):
        """ρ_k of the datasets of sizes n_samples (ndarray (K,)) and the core's alpha: the float alpha
        when it is one value for all datasets and unscaled, else the list of the K values."""
        K = len(n_samples)
        if np.ndim(self.alpha) == 0:
            base = np.full(K, check_nonnegative(self.alpha, "alpha"))
        else:
            values = list(np.asarray(self.alpha, dtype=object).ravel())
            if np.ndim(self.alpha) != 1 or len(values) != K:
                raise ValueError(f"alpha must be a number or hold one value per dataset ({K}); got shape "
                                 f"{np.shape(self.alpha)}")
            base = np.array([check_nonnegative(v, f"alpha[{k}]") for k, v in enumerate(values)])
        if self.alpha_scaling == "n_samples":
            n = np.asarray(n_samples, dtype=np.float64)
            base = base * np.sqrt(n.mean() / n)
        if self._coupled() and self.penalty == "fused" and np.any(base != base[0]):
            raise ValueError(
                "penalty='fused' needs one alpha for every dataset (soft thresholding commutes with the fused "
                f"penalty only for a common threshold); got the penalties {[float(v) for v in base]}"
                + (" from alpha_scaling='n_samples' with unequal n_samples" if self.alpha_scaling == "n_samples"
                   else ""))
        if np.ndim(self.alpha) == 0 and self.alpha_scaling == "none":
            return base, float(base[0])
        return base, [float(v) for v in base]

    def _coupled(self):
        """Whether a fused or group penalty with beta > 0 ties the networks together."""
        return self.penalty in ("fused", "group") and float(self.beta) > 0

    def _run_starts(self, p, run):
        """run(init, components, seed) -> the core's result dict, for each of the n_init starts; the result
        of smallest objective, with "init_objectives" and "best_init"."""
        starts = [(p["init"], p["components"], p["seed"])]
        if p["n_init"] > 1:
            seeds = _core.splitmix64(p["seed"], p["n_init"] - 1)
            starts += [("random", None, int(seed)) for seed in seeds]
        results = [run(init, components, seed) for init, components, seed in starts]
        objectives = np.array([float(r["objective"]) for r in results])
        best = int(np.argmin(objectives))
        res = results[best]
        res["init_objectives"], res["best_init"] = objectives, best
        return res

    def _start(self, n_features, p):
        """The start of D as the core's (init, components) pair."""
        if (self.warm_start and hasattr(self, "components_")
                and self.components_.shape == (p["m"], n_features)):
            return "given", np.ascontiguousarray(self.components_.T)
        init = self.init
        if isinstance(init, str):
            if init in ("pca", "random"):
                return init, None
            raise ValueError(f"init must be 'pca', 'random' or an array; got {init!r}")
        init = np.asarray(init, dtype=np.float64)
        if init.shape != (p["m"], n_features):
            raise ValueError(
                f"init must have shape (n_components, n_features)=({p['m']}, {n_features}); got {init.shape}"
            )
        if not np.all(np.isfinite(init)):
            raise ValueError("init contains NaN or infinite values")
        if np.linalg.matrix_rank(init) < p["m"]:
            raise ValueError("init must have linearly independent rows")
        return "given", np.ascontiguousarray(init.T)

    def _progress(self):
        """The core's per-iteration callback: verbose printing and the user's callback, or None."""
        every = {0: 0, 1: 10}.get(int(self.verbose), 1)
        user = self.callback
        if user is not None and not callable(user):
            raise ValueError(f"callback must be callable or None; got {type(user).__name__}")
        if not every and user is None:
            return None

        def progress(iteration, objective, gradient_norm):
            info = FitProgress(iteration, objective, gradient_norm)
            if every and iteration % every == 0:
                print(f"  iteration {iteration:5d}  objective {objective:.10g}  gradient norm {gradient_norm:.3g}",
                      flush=True)
            if user is not None:
                user(info)

        return progress

    def _core_options(self, p, init, components, seed):
        return dict(
            callback=self._progress(),
            init=init, components=components, n_components=p["m"], solver=self.solver,
            max_iter=p["max_iter"], tol=p["tol"], learning_rate=p["learning_rate"], batch_size=p["batch_size"],
            seed=seed, glasso_tol=self._glasso_tol, glasso_max_iter=self._glasso_max_iter,
            penalize_diagonal=bool(self.penalize_diagonal), n_threads=p["n_threads"], coupling=p["coupling"],
        )

    def fit(self, Xs, y=None, *, groupby=None, layer=None, min_cells=None, dataset_names=None):
        """Fit the model to K datasets.

        Parameters
        ----------
        Xs : sequence of K array-likes of shape (n_samples_k, n_features), dict, array-like or anndata.AnnData
            The datasets, in any of these forms:

            - a sequence of K NumPy arrays, pandas DataFrames or scipy.sparse matrices (a sparse
              dataset is densified), or a 3-D array of shape (K, n_samples, n_features);
            - a dict ``{name: dataset}``: the keys are the ``dataset_names_``;
            - one 2-D array or DataFrame (n_samples, n_features): a single dataset (K = 1);
            - an AnnData (cells × genes) with ``groupby``: each group of cells is one dataset
              (see :mod:`metaglasso.bio`);
            - Dask arrays (chunked by rows; from Zarr, HDF5 or generated on a cluster), reduced to
              sufficient statistics on the cluster without being loaded into the client — see
              ``memory_budget`` (``representation`` and ``compress`` do not apply to them).

            DataFrames are aligned by column name to the first one's columns (the same columns in
            another order are reordered); their columns must be numeric (missing values, pd.NA
            included, are an error naming the dataset, the row and the column). The data are not
            modified, and read in place when C-contiguous float64.
        y : None
            Ignored; for scikit-learn's API.
        groupby : str, optional
            AnnData only: the column of ``adata.obs`` whose groups are the datasets, in category
            order for a categorical column, else in sorted order.
        layer : str, optional
            AnnData only: fit ``adata.layers[layer]`` instead of ``adata.X``.
        min_cells : int, optional
            AnnData only: drop the groups with fewer cells (with a warning listing them).
        dataset_names : sequence of K str or int, optional
            Names of the datasets, kept in ``dataset_names_`` (a dict's keys and an AnnData's groups
            name them already).

        Returns
        -------
        self : MetaGraphicalLasso
            The fitted estimator.
        """
        budget = _dask.check_memory_budget(self.memory_budget)
        data = as_datasets(Xs, groupby=groupby, layer=layer, min_cells=min_cells, dataset_names=dataset_names)
        if data.lazy:
            return self._fit_dask(data, budget)
        arrays = data.arrays
        n_features = arrays[0].shape[1]
        p = self._validated_params(n_features)
        check_enough_samples(arrays, p["m"], bool(self.assume_centered), labels=data.labels,
                             unit="cells" if data.origin else "samples",
                             hint=" (min_cells={need} drops the smaller groups)" if data.origin else "")
        p["init"], p["components"] = self._start(n_features, p)
        n_samples = data.n_samples
        p["alphas"], alpha = self._penalties(n_samples)
        res = self._run_starts(p, lambda *start: _core.fit(
            arrays, alpha, assume_centered=bool(self.assume_centered), representation=self.representation,
            compress=bool(self.compress), **self._core_options(p, *start),
        ))
        means = (np.zeros((len(arrays), n_features)) if self.assume_centered
                 else np.stack([a.mean(axis=0) for a in arrays]))
        self._set_origin(n_samples, means, data, None)
        return self._set_result(res, n_features, p)

    def _set_origin(self, n_samples, means, data, dask_info):
        """The fit's record of its input: N_k, means, feature and dataset names, AnnData grouping, Dask
        summary (``data`` None after fit_covariances)."""
        self.n_samples_ = n_samples
        self.means_ = means
        record = dict.fromkeys(_INPUT_ATTRIBUTES)
        if data is not None:
            record.update(feature_names_in_=data.feature_names, dataset_names_=data.names)
        record["dask_info_"] = dask_info
        origin = {} if data is None else data.origin  # an AnnData's grouping, layer None included
        for attr, value in record.items():
            if attr in origin:
                setattr(self, attr, origin[attr])
            elif value is not None:
                setattr(self, attr, value)
            elif attr in self.__dict__:
                delattr(self, attr)

    def _fit_dask(self, data, budget):
        """fit for Dask arrays: sufficient statistics on the cluster, then the core (see metaglasso._dask)."""
        arrays, labels = _dask.check_dask_datasets(data.arrays, data.labels)
        n_features = arrays[0].shape[1]
        p = self._validated_params(n_features)
        p["init"], p["components"] = self._start(n_features, p)

        def check_counts(counts):
            shapes = [np.empty((int(n), 0)) for n in counts]  # what the sample checks read: the row counts
            check_enough_samples(shapes, p["m"], bool(self.assume_centered), labels=labels,
                                 unit="cells" if data.origin else "samples",
                                 hint=" (min_cells={need} drops the smaller groups)" if data.origin else "")

        known = [X.shape[0] for X in arrays]
        if not any(np.isnan(known)):  # before the pass when the row counts are known, else after it
            check_counts(known)
            self._penalties(known)
        path, n_samples, means, traces, covariances, info = _dask.statistics(
            arrays, labels, bool(self.assume_centered), budget)
        check_counts(n_samples)
        p["alphas"], alpha = self._penalties(n_samples)
        start = time.perf_counter()
        if path == "covariance":
            res = self._run_starts(p, lambda *start: _core.fit_covariances(
                covariances, [int(n) for n in n_samples], alpha, **self._core_options(p, *start)))
        else:
            res = self._run_starts(p, lambda *start: _core.fit_products(
                covariances, alpha, **self._core_options(p, *start)))
            res["representations"] = ["distributed"] * len(arrays)
            info.update(n_evaluations=covariances.n_calls, bytes_to_cluster=covariances.bytes_to_cluster,
                        bytes_from_cluster=covariances.bytes_from_cluster, products_seconds=covariances.seconds)
        info["fit_seconds"] = time.perf_counter() - start
        self._set_origin(n_samples, means, data, info)
        return self._set_result(res, n_features, p)

    def fit_covariances(self, covariances, n_samples):
        """Fit the model to K covariance matrices instead of data.

        The fit depends on the data only through S_k, so this gives the same model as :meth:`fit` on
        data whose centred covariances (divided by N_k) are ``covariances`` — without the data.
        Each S_k is held as given (``representation`` and ``compress`` do not apply).

        Parameters
        ----------
        covariances : array-like of shape (K, n_features, n_features) or sequence of K such matrices
            Symmetric positive semi-definite covariances S_k (divided by N_k, as
            ``np.cov(X, rowvar=False, bias=True)``). Not modified.
        n_samples : int or sequence of K ints
            N_k, the number of samples behind each S_k (>= 1); used by ``n_samples_`` and BIC.

        Returns
        -------
        self
        """
        mats = _check_covariances(covariances)
        K, n_features = len(mats), mats[0].shape[0]
        counts = _check_n_samples(n_samples, K)
        p = self._validated_params(n_features)
        p["init"], p["components"] = self._start(n_features, p)
        p["alphas"], alpha = self._penalties(counts)
        res = self._run_starts(p, lambda *start: _core.fit_covariances(
            mats, [int(n) for n in counts], alpha, **self._core_options(p, *start)))
        self._set_origin(counts, None, None, None)
        return self._set_result(res, n_features, p)

    def _set_result(self, res, n_features, p):
        self.components_ = np.ascontiguousarray(res["components"].T)
        self.precisions_ = np.stack(res["precisions"])
        self.covariances_ = np.stack(res["covariances"])
        self.noise_variances_ = np.asarray(res["noise_variances"])
        self.partial_correlations_ = partial_correlations(self.precisions_)
        self.objective_ = float(res["objective"])
        self.objective_history_ = np.asarray(res["objective_history"])
        self.n_iter_ = int(res["n_iter"])
        self.init_objectives_ = np.asarray(res["init_objectives"], dtype=np.float64)
        self.best_init_ = int(res["best_init"])
        self.alphas_ = np.asarray(p["alphas"], dtype=np.float64)
        self.converged_ = bool(res["converged"])
        self.gradient_norm_ = float(res["gradient_norm"])
        self.representations_ = list(res["representations"])
        self.compression_rank_ = int(res["compression_rank"]) or None
        self.n_features_in_ = n_features
        if not self.converged_:
            warnings.warn(
                f"MetaGraphicalLasso ({self.solver}) did not converge in {self.n_iter_} iterations "
                f"(tol={p['tol']:g}, gradient norm {self.gradient_norm_:.3g}); increase max_iter or tol.",
                ConvergenceWarning,
                stacklevel=3,
            )
        if self.verbose:
            rank = "" if self.compression_rank_ is None else f" compression_rank={self.compression_rank_}"
            starts = "" if len(self.init_objectives_) == 1 else (
                f" best of {len(self.init_objectives_)} starts (start {self.best_init_}; objectives "
                f"{self.init_objectives_.min():.10g} .. {self.init_objectives_.max():.10g})")
            print(
                f"MetaGraphicalLasso: solver={self.solver} n_iter={self.n_iter_} "
                f"objective={self.objective_:.10g} converged={self.converged_}{rank}{starts}"
            )
        return self

    def _check_fitted(self):
        if not hasattr(self, "components_"):
            raise NotFittedError(f"This {type(self).__name__} instance is not fitted yet. Call 'fit' with appropriate "
                                 f"arguments before using this estimator.")

    def transform(self, X, dataset=None, *, groupby=None, layer=None):
        """Latent scores (X − mean) D.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features), DataFrame, sparse matrix or anndata.AnnData
            One dataset. A DataFrame's columns are aligned to ``feature_names_in_`` by name. An
            AnnData gives the scores of all its cells (of ``layer``, by default the one of the fit);
            with ``groupby`` — by default the one of the fit, when the model was fitted on an
            AnnData — each cell is centred with the mean of its own group's dataset, and the cells of
            groups that are not datasets of the model get rows of NaN.
        dataset : int, str or None, default=None
            Centre with the mean of training dataset ``dataset`` (its position, or its name in
            ``dataset_names_``); None centres X on its own mean (each dataset is centred on its own
            mean in the model). Ignored with ``assume_centered``.
        groupby : str, optional
            AnnData only: see ``X``.
        layer : str, optional
            AnnData only: the layer to read instead of the fit's.

        Returns
        -------
        scores : ndarray of shape (n_samples, n_components)
            The scores, in the order of the samples (of ``adata.obs`` for an AnnData).
        """
        self._check_fitted()
        if is_anndata(X):
            groupby = getattr(self, "groupby_", None) if groupby is None and dataset is None else groupby
            if groupby is not None:
                if dataset is not None:
                    raise ValueError(f"dataset={dataset!r} and groupby={groupby!r} both say how to centre the cells; "
                                     f"pass one")
                return self._transform_groups(X, groupby, getattr(self, "layer_", None) if layer is None else layer)
        elif groupby is not None or layer is not None:
            raise ValueError(f"groupby and layer apply to an anndata.AnnData only; got X of type {type(X).__name__}")
        arr, _ = model_dataset(self, X, layer=layer)
        return (arr - self._centre(arr, dataset)) @ self.components_.T

    def fit_transform(self, Xs, y=None, **fit_params):
        """Fit the model and return the latent scores of the data it was fitted on.

        Parameters
        ----------
        Xs : any input of :meth:`fit`
            The datasets.
        y : None
            Ignored; for scikit-learn's API.
        **fit_params
            Keyword arguments of :meth:`fit` (``groupby``, ``dataset_names``, ...).

        Returns
        -------
        scores : ndarray of shape (n_samples, n_components), or list of K such arrays
            One dataset (a 2-D array or DataFrame): ``fit(X).transform(X)``. An AnnData: the scores of
            all its cells, as :meth:`transform`. Otherwise one array per dataset,
            ``transform(Xs[k], dataset=k)``, in the order of the datasets.
        """
        return self.fit(Xs, **fit_params)._fit_scores(Xs, fit_params)

    def _fit_scores(self, Xs, fit_params):
        """The scores of fit_transform, from the data of the fit."""
        if is_anndata(Xs):
            return self.transform(Xs, groupby=fit_params.get("groupby"), layer=fit_params.get("layer"))
        data = model_datasets(self, Xs, stacklevel=4)
        if data.single:
            return self.transform(data.arrays[0])
        return [self.transform(X, dataset=k) for k, X in enumerate(data.arrays)]

    def get_feature_names_out(self, input_features=None):
        """Names of the output features of :meth:`transform`: ``factor_0, ..., factor_{M-1}``.

        Parameters
        ----------
        input_features : array-like of str or None, default=None
            Checked against ``feature_names_in_`` (scikit-learn's convention); not used otherwise.

        Returns
        -------
        feature_names_out : ndarray of str objects of shape (n_components,)
            The factor names of :mod:`metaglasso.interpret`.
        """
        self._check_fitted()
        if input_features is not None:
            given = np.asarray(input_features, dtype=object)
            fitted = getattr(self, "feature_names_in_", None)
            if fitted is not None and not np.array_equal(given, fitted):
                raise ValueError("input_features is not equal to feature_names_in_")
            if fitted is None and len(given) != self.n_features_in_:
                raise ValueError(f"input_features should have length equal to number of features "
                                 f"({self.n_features_in_}), got {len(given)}")
        return np.asarray([f"factor_{m}" for m in range(self.components_.shape[0])], dtype=object)

    def _centre(self, X, dataset):
        """The mean X is centred with: 0 (assume_centered), its own (dataset None) or a training dataset's."""
        if self.assume_centered:
            return 0.0
        if dataset is None:
            return X.mean(axis=0)
        if self.means_ is None:
            raise ValueError(f"dataset={dataset!r} needs the training means; this model was fitted on covariances")
        return self.means_[self._check_dataset_index(dataset)]

    def _transform_groups(self, adata, groupby, layer):
        """transform of an AnnData, each cell centred with its group's training mean (see transform)."""
        from metaglasso.bio import _group_codes, _matrix, _rows

        names = getattr(self, "dataset_names_", None)
        if names is None:
            raise ValueError(f"groupby={groupby!r} matches the cells' groups to the model's datasets by name, but the "
                             f"model has no dataset_names_ (fit it on an AnnData with groupby, or with dataset_names)")
        matrix = _matrix(adata, layer)
        codes, groups = _group_codes(adata, groupby)
        where = {name: g for g, name in enumerate(groups)}
        unknown = [str(n) for n in names if str(n) not in where]
        if unknown:
            raise ValueError(f"groupby={groupby!r}: the model's datasets {unknown!r} are not values of "
                             f"adata.obs[{groupby!r}]")
        features = np.asarray([str(v) for v in adata.var_names], dtype=object)
        if adata.n_vars != self.n_features_in_:
            raise ValueError(f"adata has {adata.n_vars} features, but MetaGraphicalLasso is expecting "
                             f"{self.n_features_in_} features as input.")
        fitted = getattr(self, "feature_names_in_", None)
        if fitted is not None and not np.array_equal(features, np.asarray(fitted, dtype=object)):
            raise ValueError("adata.var_names differ from the model's feature_names_in_ (the genes it was fitted on)")
        scores = np.full((adata.n_obs, self.components_.shape[0]), np.nan)
        obs = np.asarray(adata.obs_names, dtype=object)
        for k, name in enumerate(names):
            idx = np.flatnonzero(codes == where[str(name)])
            if idx.size:
                block = _rows(matrix, idx)
                check_finite(block, f"group {str(name)!r} of adata.obs[{groupby!r}]", features, obs[idx])
                scores[idx] = (block - self._centre(block, k)) @ self.components_.T
        return scores

    def _check_dataset_index(self, k):
        n = self.precisions_.shape[0]
        names = getattr(self, "dataset_names_", None)
        if isinstance(k, str) and names is not None:
            where = [str(v) for v in names]
            if k in where:
                return where.index(k)
            raise ValueError(f"dataset={k!r} is not one of the model's dataset_names_ {where!r}")
        if isinstance(k, bool) or not isinstance(k, numbers.Integral) or not -n <= k < n:
            raise ValueError(f"dataset must be an integer in [0, {n})"
                             + (" or one of the dataset_names_" if names is not None else "") + f"; got {k!r}")
        return int(k)

    def _neg2_loglik_terms(self, Xs, groupby, layer):
        """Per dataset: N_k and N_k·(tr(Φ_k⁻¹ S_k) − log|Φ_k⁻¹| + V log 2π), S_k centred at means_
        (at each dataset's own mean after fit_covariances)."""
        self._check_fitted()
        K = self.precisions_.shape[0]
        V, M = self.n_features_in_, self.components_.shape[0]
        D = self.components_.T
        data = model_datasets(self, Xs, groupby=groupby, layer=layer, stacklevel=4)
        centres = [None] * K if self.means_ is None else list(self.means_)
        if data.lazy:  # one pass on the cluster: N_k, Dᵀ S_k D and tr S_k
            arrays = _dask.check_dask_datasets(data.arrays, data.labels)[0]
            for X, label in zip(arrays, data.labels):
                if X.shape[1] != V:
                    raise ValueError(f"{label} has {X.shape[1]} features, but MetaGraphicalLasso is expecting {V} "
                                     f"features as input.")
            moments = _dask.projected_moments(arrays, D, centres)
        else:
            moments = []
            for X, centre in zip(data.arrays, centres):
                Xc = X - (X.mean(axis=0) if centre is None else centre)
                n = X.shape[0]
                P = Xc @ D
                moments.append((n, P.T @ P / n, np.einsum("ij,ij->", Xc, Xc) / n))
        out = []
        for k, (n, A, tr_s) in enumerate(moments):
            lam, eps = self.precisions_[k], self.noise_variances_[k]
            logdet_lam = np.linalg.slogdet(lam)[1]
            value = (np.sum(lam * A) + (tr_s - np.trace(A)) / eps - logdet_lam + (V - M) * np.log(eps)
                     + V * np.log(2 * np.pi))
            out.append((n, n * value))
        return out

    def score(self, Xs, y=None, *, groupby=None, layer=None):
        """Average Gaussian log-likelihood per sample of K datasets under the fitted model.

        Dataset k is scored under N(means_[k], Φ_k).

        Parameters
        ----------
        Xs : sequence of K array-likes of shape (n_samples_k, n_features), dict, array-like or anndata.AnnData
            The K datasets in any form :meth:`fit` takes (Dask arrays are reduced on the cluster in
            one pass). Datasets with names (a dict's keys, an AnnData's groups) are matched to
            ``dataset_names_`` by name, others by position; DataFrames are aligned to
            ``feature_names_in_``.
        y : None
            Ignored; for scikit-learn's API.
        groupby, layer : str, optional
            AnnData only; by default those of the fit.

        Returns
        -------
        score : float
            The average log-likelihood per sample.
        """
        terms = self._neg2_loglik_terms(Xs, groupby, layer)
        return -0.5 * sum(t for _, t in terms) / sum(n for n, _ in terms)

    def n_parameters(self):
        """Number of free parameters k of eq. 17: Σ_k nnz(Λ_k) + K + V·M − M(M+1)/2.

        nnz(Λ_k) counts every nonzero entry of the M × M matrix Λ_k — the diagonal and both
        off-diagonal triangles, as the paper writes NNZ(Σ_k⁻¹). With a fused or group penalty
        (``beta`` > 0) the networks share values, and Σ_k nnz(Λ_k) becomes the number of distinct
        nonzero values: for every entry (i, j), the number of distinct nonzero values among
        Λ_1,ij, …, Λ_K,ij (both triangles and the diagonal counted as above) — the degrees of
        freedom Danaher, Wang & Witten (2014) use for the joint graphical lasso. A fused entry
        equal in all K networks is one parameter; without fusion (group, or λ₂ = 0) the count is
        nnz.
        """
        self._check_fitted()
        K, M, _ = self.precisions_.shape
        V = self.n_features_in_
        return self.n_network_parameters() + K + V * M - M * (M + 1) // 2

    def n_network_parameters(self):
        """The networks' share of :meth:`n_parameters`: Σ_k nnz(Λ_k), or with a fused or group
        penalty the number of distinct nonzero values per entry summed over the M × M entries."""
        self._check_fitted()
        return network_parameters(self.precisions_, coupled=self._coupled())

    def bic(self, Xs, *, groupby=None, layer=None):
        """Bayesian information criterion, paper eq. 17: −2 ln L + k ln n.

        −2 ln L = Σ_k N_k [tr(Φ_k⁻¹ S_k) − log|Φ_k⁻¹| + V log 2π] is the unpenalised Gaussian
        likelihood of the datasets (S_k centred at ``means_``), n = Σ_k N_k, and k is
        :meth:`n_parameters`.

        Parameters
        ----------
        Xs : sequence of K array-likes of shape (n_samples_k, n_features), dict, array-like or anndata.AnnData
            The K datasets, as for :meth:`score`.
        groupby, layer : str, optional
            AnnData only; by default those of the fit.

        Returns
        -------
        bic : float
            The criterion (smaller is better).
        """
        terms = self._neg2_loglik_terms(Xs, groupby, layer)
        n = sum(n for n, _ in terms)
        return float(sum(t for _, t in terms) + self.n_parameters() * np.log(n))


def network_parameters(precisions, coupled):
    """Σ_k nnz(Λ_k) for (K, M, M) precisions, or (coupled) the number of distinct nonzero values of each
    entry across the K matrices summed over the entries (see MetaGraphicalLasso.n_parameters)."""
    precisions = np.asarray(precisions)
    if not coupled:
        return int(np.count_nonzero(precisions))
    values = np.sort(precisions.reshape(precisions.shape[0], -1), axis=0)  # (K, M·M), sorted per entry
    distinct = np.ones_like(values, dtype=bool)
    distinct[1:] = values[1:] != values[:-1]
    return int(np.count_nonzero(distinct & (values != 0)))


def _check_covariances(covariances, name="covariances"):
    """Validate K covariance matrices: square, same size, finite, symmetric, positive semi-definite
    as far as cheap necessary conditions tell (non-negative diagonal, |S_ij| <= sqrt(S_ii S_jj)).

    Returns a list of C-contiguous float64 (V, V) arrays (the inputs themselves when possible).
    """
    if isinstance(covariances, np.ndarray):
        if covariances.ndim != 3:
            raise ValueError(
                f"{name} must be a 3-D array (K, n_features, n_features) or a sequence of 2-D arrays; "
                f"got an array with ndim={covariances.ndim}"
            )
        covariances = list(covariances)
    elif isinstance(covariances, (str, bytes)) or not hasattr(covariances, "__len__"):
        raise ValueError(f"{name} must be a sequence of 2-D arrays; got {type(covariances).__name__}")
    if len(covariances) == 0:
        raise ValueError(f"{name} must contain at least one matrix; got an empty sequence")
    mats = []
    for k, S in enumerate(covariances):
        label = f"{name}[{k}]"
        arr = as_real_array(S, label)
        if arr.ndim != 2 or arr.shape[0] != arr.shape[1] or arr.shape[0] < 2:
            raise ValueError(f"{label} must be a square 2-D array with at least 2 rows; got shape {arr.shape}")
        arr = np.ascontiguousarray(arr, dtype=np.float64)
        if k > 0 and arr.shape != mats[0].shape:
            raise ValueError(f"{label} has shape {arr.shape}; expected {mats[0].shape} as in {name}[0]")
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"{label} contains NaN or infinite values")
        scale = float(np.max(np.abs(arr)))
        asym = float(np.max(np.abs(arr - arr.T)))
        if asym > 1e-10 * scale:
            raise ValueError(f"{label} must be symmetric; got max |S - S.T| = {asym:.3e} (max |S| = {scale:.3e})")
        diag = np.diag(arr)
        if np.any(diag < 0):
            i = int(np.argmin(diag))
            raise ValueError(f"{label} must be positive semi-definite; got a negative diagonal entry {float(diag[i])!r} at {i}")
        sd = np.sqrt(diag)
        excess = np.abs(arr) - np.outer(sd, sd) * (1 + 1e-8) - 1e-12 * scale
        if np.any(excess > 0):
            i, j = np.unravel_index(int(np.argmax(excess)), excess.shape)
            raise ValueError(
                f"{label} must be positive semi-definite; got |S[{i}, {j}]| = {abs(arr[i, j]):.6g} > "
                f"sqrt(S[{i}, {i}] S[{j}, {j}]) = {sd[i] * sd[j]:.6g}"
            )
        mats.append(arr)
    return mats


def _check_n_samples(n_samples, K, name="n_samples"):
    """N_k per dataset: an int >= 1 (the same for all) or K ints >= 1."""
    if isinstance(n_samples, numbers.Integral) and not isinstance(n_samples, bool):
        values = [n_samples] * K
    else:
        values = list(np.atleast_1d(np.asarray(n_samples, dtype=object)))
        if len(values) != K:
            raise ValueError(f"{name} must be an int or hold one value per covariance ({K}); got {len(values)}")
    for k, n in enumerate(values):
        if isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 1:
            raise ValueError(f"{name}[{k}] must be an integer >= 1; got {n!r}")
    return np.array([int(n) for n in values])

