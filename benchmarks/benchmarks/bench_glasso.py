"""The graphical lasso (paper eqs. 1-2, 13) on factor-structured covariances."""

from __future__ import annotations

from ._base import Benchmark
from .common import GLASSO_RHO, factor_covariance, glasso_gap, mg_graphical_lasso, ref

#: Duality-gap tolerance of metaglasso's solver (its default). The reference runs to its own
#: fixed-point tolerance (1e-12); track_gap records the gap each one reached.
TOL = 1e-8


class GraphicalLasso(Benchmark):
    """p × p graphical lasso, ρ = 0.1, on the correlation matrix of a 5-factor model.

    metaglasso's solver is serial (the M × M problems of a fit are small); ``n_threads``
    limits the BLAS the reference calls.
    """

    params = ([20, 100], [1, 2], ["metaglasso", "reference"])
    param_names = ["p", "n_threads", "implementation"]

    def setup(self, p, n_threads, implementation):
        self.start(n_threads)
        self.S = factor_covariance(p)

    def solve(self, implementation):
        if implementation == "metaglasso":
            return mg_graphical_lasso(self.S, GLASSO_RHO, TOL)
        return ref.graphical_lasso(self.S, GLASSO_RHO)[1]

    def time_graphical_lasso(self, p, n_threads, implementation):
        self.solve(implementation)

    def peakmem_graphical_lasso(self, p, n_threads, implementation):
        self.solve(implementation)

    def track_objective(self, p, n_threads, implementation):
        return ref.glasso_objective(self.S, GLASSO_RHO, self.solve(implementation))

    track_objective.unit = "objective"

    def track_gap(self, p, n_threads, implementation):
        return glasso_gap(self.S, GLASSO_RHO, self.solve(implementation))

    track_gap.unit = "duality gap"
