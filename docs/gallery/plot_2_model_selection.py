"""
Choosing M and ρ by BIC
=======================

The number of factors M and the penalty ρ are chosen by the Bayesian information criterion of
the paper (eq. 17) over a grid. :func:`metaglasso.select_model` fits each M along ρ, from the
largest value down with warm starts, and refits the best point;
:class:`metaglasso.MetaGraphicalLassoBIC` is the same search as an estimator.
"""

# %%
# The search
# ----------
# Three datasets drawn with M = 4 true factors; the grid brackets both the true M and the chosen
# ρ, so that the choice is not at an edge of the grid (where a
# :class:`~metaglasso.GridEdgeWarning` would say that the optimum may lie beyond it).
import matplotlib.pyplot as plt
import pandas as pd

from metaglasso import select_model
from metaglasso.datasets import make_synthetic

Xs, truth = make_synthetic(n_features=60, n_samples=150, n_datasets=3, n_components=4, random_state=1)
search = select_model(Xs, n_components=[2, 3, 4, 5, 6], alphas=[0.01, 0.03, 0.1, 0.3, 1.0])
print(f"chosen: M = {search.n_components_}, rho = {search.alpha_}")

# %%
# Every grid point is recorded in ``results_``: its BIC, objective, number of nonzero entries of
# the Λ_k, number of parameters, iterations and whether it converged.
results = pd.DataFrame(search.results_)
results[["n_components", "alpha", "bic", "nonzeros", "n_parameters", "n_iter", "converged"]].round(1)

# %%
# The criterion over the grid
# ---------------------------
# :func:`~metaglasso.plotting.plot_bic` draws BIC over ρ, one line per M, and stars the smallest.
# BIC separates the values of M far more than those of ρ: the V·M parameters of D weigh more
# than the few nonzeros of the networks.
from metaglasso.plotting import plot_bic

fig = plot_bic(search)
plt.show()

# %%
# The chosen model
# ----------------
# ``best_estimator_`` is the chosen point refitted from the default start, a fitted
# :class:`~metaglasso.MetaGraphicalLasso`. Its factors against the true ones (the paper's Table 1
# metrics, :func:`metaglasso.metrics.evaluate`):
from metaglasso.metrics import evaluate

best = search.best_estimator_
print({key: round(value, 3) for key, value in evaluate(truth, best).items()})

# %%
# The same search as an estimator, e.g. for a pipeline: :class:`~metaglasso.MetaGraphicalLassoBIC`
# takes the grid as parameters and its ``fit`` gives the same choice.
from metaglasso import MetaGraphicalLassoBIC

estimator = MetaGraphicalLassoBIC(n_components=[2, 3, 4, 5, 6], alphas=[0.01, 0.03, 0.1, 0.3, 1.0]).fit(Xs)
print(f"chosen: M = {estimator.n_components_}, rho = {estimator.alpha_}")
