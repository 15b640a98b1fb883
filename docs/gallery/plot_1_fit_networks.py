"""
Fitting MGLASSO and drawing its networks
========================================

Four datasets of the same 100 variables are drawn from the MGLASSO model itself
(:func:`metaglasso.datasets.make_synthetic`, the generator of the paper's experiments): five
latent factors shared by all datasets, a sparse network of the factors per dataset and white
noise in the other directions. The true networks are drawn a little stronger than in the paper's
experiments (each Λ_k is the graphical lasso of 8 latent samples instead of 20), so that they
can be seen at 200 samples per dataset.
"""

# %%
# Data and fit
# ------------
# ``fit`` takes a list of K arrays, samples in rows, with the same variables in the same order.
import matplotlib.pyplot as plt

from metaglasso import MetaGraphicalLasso
from metaglasso.datasets import make_synthetic

Xs, truth = make_synthetic(n_features=100, n_samples=200, n_datasets=4, n_components=5, n_latent_samples=8,
                           random_state=0)
model = MetaGraphicalLasso(n_components=5, alpha=0.09).fit(Xs)

print(f"{model.n_iter_} L-BFGS iterations, converged: {model.converged_}, objective {model.objective_:.2f}")
print("components_  ", model.components_.shape, "(M, V): the rows are the factors")
print("precisions_  ", model.precisions_.shape, "(K, M, M): one sparse network per dataset")
print("noise_variances_", model.noise_variances_.round(4), "against the truth", truth.noise_variances.round(4))

# %%
# The networks
# ------------
# :func:`~metaglasso.plotting.plot_networks` draws the partial correlations of each dataset: blue
# edges are positive, red negative, their width is proportional to the partial correlation's size and a
# node's area to the factor's variance in that dataset. With ``truth=`` the true networks are drawn
# in a row above, their factors matched to the estimate's (the model does not change when factors
# are permuted or their signs flipped). Most of the estimated edges are true ones; the penalty
# removes the weakest true edges.
from metaglasso.plotting import plot_networks

fig = plot_networks(model, truth=truth)
plt.show()

# %%
# How close is the fit?
# ---------------------
# :func:`metaglasso.metrics.evaluate` computes the paper's Table 1 metrics: ``space`` (alignment of
# the spans, at most M = 5), ``eps`` (error of the noise variances), ``dist`` (mean inner product of
# matched factors, at most 1) and ``kld`` (KL divergence of the latent Gaussians). The paper's PCA
# baseline — principal components of all datasets, then a graphical lasso per dataset in their
# span (:func:`metaglasso.baselines.fit_baseline`) — finds the span about as well, but not the
# factors within it, and so not their networks.
from metaglasso.baselines import fit_baseline
from metaglasso.metrics import evaluate

baseline = fit_baseline(Xs, 5, "pca", alpha=0.09)
for name, estimate in [("MGLASSO", model), ("PCA + graphical lasso", baseline)]:
    scores = evaluate(truth, estimate)
    print(f"{name:22s}", "  ".join(f"{key} {value:.3f}" for key, value in scores.items()))
