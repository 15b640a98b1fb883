"""
Tables and figures of a fit
===========================

:mod:`metaglasso.interpret` turns a fitted model into tidy tables labelled by the names of the
input — the columns and index of pandas DataFrames — and :mod:`metaglasso.plotting` draws the
paper's figures. :mod:`metaglasso.enrichment` finds the variables that characterise each factor,
and :mod:`metaglasso.io` saves the model without pickle.
"""

# %%
# A fit on DataFrames
# -------------------
# Three datasets of different sizes, as DataFrames with named variables and samples. The names
# are kept by the model (``feature_names_in_``) and label every table.
import matplotlib.pyplot as plt
import pandas as pd

from metaglasso import MetaGraphicalLasso, interpret
from metaglasso.datasets import make_synthetic

Xs, truth = make_synthetic(n_features=40, n_samples=[150, 250, 100], n_datasets=3, n_components=4, random_state=0)
variables = [f"v{j:02d}" for j in range(40)]
names = ["spring", "summer", "autumn"]
frames = [
    pd.DataFrame(X, columns=variables, index=[f"{name}_{i:03d}" for i in range(len(X))])
    for name, X in zip(names, Xs)
]
model = MetaGraphicalLasso(n_components=4, alpha=0.05).fit(frames)

# %%
# The loadings D, one column per factor:
interpret.loadings_table(model).head().round(3)

# %%
# The factor variances diag(Σ_k) and the noise variance ε_k of each dataset:
interpret.variances_table(model, dataset_names=names).round(3)

# %%
# The share of each dataset's total variance carried by each factor and by the noise (each row sums
# to 1):
interpret.variance_explained_table(model, dataset_names=names).round(3)

# %%
# The networks as an edge list of partial correlations:
interpret.edges_table(model, dataset_names=names).round(3)

# %%
# The latent scores (X_k − mean_k) D of every sample, labelled by the DataFrames' index:
scores = interpret.scores_table(model, frames, dataset_names=names)
scores.head().round(3)

# %%
# Figures
# -------
# Factor variances per dataset, and the noise (log scale; the paper's Figs 4 and 6):
from metaglasso.plotting import plot_scores, plot_variances

fig = plot_variances(model, dataset_names=names)
plt.show()

# %%
# The scores over the sample order, the datasets side by side (the paper's Fig 3):
fig = plot_scores(model, frames, dataset_names=names)
plt.show()

# %%
# Characteristic variables
# ------------------------
# The variables whose loading lies more than ``c`` standard deviations from the factor's mean
# loading, above (``pos``) or below (``neg``) — the sets that the paper tests for
# over-represented labels (:func:`~metaglasso.enrichment.label_enrichment`) and gene sets.
from metaglasso.enrichment import characteristic_variables

characteristic_variables(model, c=2.0).round(3)

# %%
# Saving and loading
# ------------------
# One ``.npz`` file of arrays and JSON metadata; loading needs no pickle and gives a fitted model
# with the same ``transform``, ``score`` and ``bic``.
import tempfile
from pathlib import Path

import numpy as np

from metaglasso.io import load_model, read_metadata, save_model

with tempfile.TemporaryDirectory() as tmp:
    path = Path(tmp) / "model.npz"
    save_model(model, path, dataset_names=names, metadata={"source": "make_synthetic, seed 0"})
    loaded = load_model(path)
    metadata = read_metadata(path)
print("same scores:", np.array_equal(loaded.transform(frames[0]), model.transform(frames[0])))
print("metadata keys:", sorted(metadata))
