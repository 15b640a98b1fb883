"""The per-iteration work of a fit: covariance projections and the profile objective."""

from __future__ import annotations

import numpy as np

from ._base import Benchmark
from .common import RHO, mg_profile, paper_problem, random_projection, ref


class Projections(Benchmark):
    """S_k D and Dᵀ S_k D for K = 4 datasets of N = 500 samples, M = 10.

    Measured through the profile objective at ρ = 0, where the graphical lasso reduces to an
    M × M inverse: what remains is preparing the data (centring) and the two GEMM-shaped passes
    Fᵀ D and F (Fᵀ D) per dataset, plus the O(V M²) gradient assembly.
    """

    params = ([2_000, 10_000], [1, 2], ["metaglasso", "reference"])
    param_names = ["n_features", "n_threads", "implementation"]

    def setup(self, n_features, n_threads, implementation):
        self.start(n_threads)
        self.Xs = paper_problem(n_features, 500, 4, 10)
        self.D = random_projection(n_features, 10)

    def evaluate(self, n_threads, implementation):
        if implementation == "metaglasso":
            return mg_profile(self.Xs, self.D, 0.0, n_threads=n_threads)[0]
        return ref.profile_objective(self.Xs, self.D, 0.0)[0]

    def time_projections(self, n_features, n_threads, implementation):
        self.evaluate(n_threads, implementation)

    def peakmem_projections(self, n_features, n_threads, implementation):
        self.evaluate(n_threads, implementation)

    def track_objective(self, n_features, n_threads, implementation):
        return self.evaluate(n_threads, implementation)

    track_objective.unit = "objective"


class OneIteration(Benchmark):
    """One profile objective + Riemannian gradient evaluation (eqs. 9, 10, 13, 16).

    The paper's synthetic problem, K = 10 datasets of N = 200 samples, M = 10, ρ = 0.09, at the
    PCA-free random start; each dataset's graphical lasso starts cold.
    """

    params = ([1_000, 10_000], [1, 2], ["metaglasso", "reference"])
    param_names = ["n_features", "n_threads", "implementation"]

    def setup(self, n_features, n_threads, implementation):
        self.start(n_threads)
        self.Xs = paper_problem(n_features, 200, 10, 10)
        self.D = random_projection(n_features, 10)

    def evaluate(self, n_threads, implementation):
        if implementation == "metaglasso":
            return mg_profile(self.Xs, self.D, RHO, n_threads=n_threads)
        return ref.profile_objective(self.Xs, self.D, RHO)[:2]

    def time_profile_objective(self, n_features, n_threads, implementation):
        self.evaluate(n_threads, implementation)

    def peakmem_profile_objective(self, n_features, n_threads, implementation):
        self.evaluate(n_threads, implementation)

    def track_objective(self, n_features, n_threads, implementation):
        return self.evaluate(n_threads, implementation)[0]

    track_objective.unit = "objective"

    def track_gradient_norm(self, n_features, n_threads, implementation):
        return float(np.linalg.norm(self.evaluate(n_threads, implementation)[1]))

    track_gradient_norm.unit = "norm"
