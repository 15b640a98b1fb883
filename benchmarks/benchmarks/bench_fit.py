"""A full fit: Riemannian L-BFGS on the profile objective from the PCA start."""

from __future__ import annotations

from ._base import Benchmark
from .common import RHO, mg_fit, mg_pca, paper_problem, ref


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
