"""A full fit: Riemannian L-BFGS on the profile objective from the PCA start, plain and with a fused or
group penalty."""

from __future__ import annotations

from ._base import Benchmark
from .common import (FUSED_BETA, FUSED_RHO, RHO, mg_fit, mg_fit_pca, mg_pca, paper_problem, ref,
                     shared_networks_problem)


class Fit(Benchmark):
    """The paper's synthetic problem: K = 10 datasets, N = 200, M = 10, ρ = 0.09, solver lbfgs.

    Both implementations start from the same PCA start and stop on the same test (tol = 1e-8).
    """

    params = ([100, 1_000], [1, 2], ["metaglasso", "reference"])
    param_names = ["n_features", "n_threads", "implementation"]
    timeout = 300.0

    def setup(self, n_features, n_threads, implementation):
        self.start(n_threads)
        self.Xs = paper_problem(n_features, 200, 10, 10)
        self.D0 = mg_pca(self.Xs, 10)

    def fit(self, n_threads, implementation):
        """(objective, iterations) of the fit."""
        if implementation == "metaglasso":
            model = mg_fit(self.Xs, self.D0, RHO, n_threads=n_threads)
            return model.objective_, model.n_iter_
        result = ref.fit_lbfgs(self.Xs, self.D0, RHO)
        return result.objective, result.n_iter

    def time_fit(self, n_features, n_threads, implementation):
        self.fit(n_threads, implementation)

    def peakmem_fit(self, n_features, n_threads, implementation):
        self.fit(n_threads, implementation)

    def track_objective(self, n_features, n_threads, implementation):
        return self.fit(n_threads, implementation)[0]

    track_objective.unit = "objective"

    def track_n_iter(self, n_features, n_threads, implementation):
        return self.fit(n_threads, implementation)[1]

    track_n_iter.unit = "iterations"


class FusedFit(Benchmark):
    """The fused (chain) and group penalties against the plain fit of the same data.

    ``make_shared_networks`` data as in ``metaglasso reproduce joint``: K = 6 datasets of N = 40, V = 200,
    M = 10, networks shared but for two toggled edges between consecutive datasets; ρ and λ₂ about
    the BIC choices there (``common.FUSED_RHO``, ``common.FUSED_BETA``). Default fits (PCA start, lbfgs).
    """

    params = ([1, 2], ["lasso", "fused", "group"])
    param_names = ["n_threads", "penalty"]

    def setup(self, n_threads, penalty):
        self.start(n_threads)
        self.Xs = shared_networks_problem(200, 40, 6, 10)

    def fit(self, n_threads, penalty):
        """(objective, iterations) of the fit."""
        params = {} if penalty == "lasso" else dict(penalty=penalty, beta=FUSED_BETA, fused_pairs="chain")
        model = mg_fit_pca(self.Xs, 10, FUSED_RHO, n_threads=n_threads, **params)
        return model.objective_, model.n_iter_

    def time_fit(self, n_threads, penalty):
        self.fit(n_threads, penalty)

    def peakmem_fit(self, n_threads, penalty):
        self.fit(n_threads, penalty)

    def track_objective(self, n_threads, penalty):
        return self.fit(n_threads, penalty)[0]

    track_objective.unit = "objective"

    def track_n_iter(self, n_threads, penalty):
        return self.fit(n_threads, penalty)[1]

    track_n_iter.unit = "iterations"
