"""Fits at default settings on data with fewer samples than variables, as users bring them: gene-scale
data from a model MGLASSO does not fit exactly, and the README's single-cell recipe on real cells
(skipped without ../shared/data). With the paper's penalty (the default) these are well posed."""

import os
import warnings

import numpy as np
import pytest

from metaglasso import MetaGraphicalLasso
from metaglasso.datasets import make_factor_analysis

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PBMC = os.path.join(ROOT, os.pardir, "shared", "data", "pbmc68k_reduced", "pbmc68k_reduced.npz")


def fit_without_warnings(model, *args, **kwargs):
    """model.fit, failing on any warning but the expected report of dropped groups."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.fit(*args, **kwargs)
    unexpected = [str(w.message) for w in caught if "dropped" not in str(w.message)]
    assert not unexpected, unexpected
    return model


def test_gene_scale_fit_at_default_settings():
    # V = 17,737 genes, N_k = 160, 266, 305, 160 (each N_k < V), heteroscedastic noise in every direction and
    # means of their own: with the diagonal of Λ_k unpenalised this fit would be unbounded below.
    sizes = [160, 266, 305, 160]
    Xs, truth = make_factor_analysis(17737, sizes, 4, 20, random_state=0)
    model = fit_without_warnings(MetaGraphicalLasso(n_components=20, alpha=0.1), Xs)
    assert model.converged_ and model.n_iter_ < 2000
    assert np.all(np.isfinite(model.precisions_)) and np.all(model.noise_variances_ > 0)
    # The factors are found: the smallest cosine of the principal angles between the true and fitted spans.
    cosines = np.linalg.svd(truth.components @ model.components_.T, compute_uv=False)
    assert cosines.min() > 0.8
    # Every latent variance is at least ρ (Σ_jj = (Dᵀ S_k D)_jj + ρ): no factor without variance.
    assert np.diagonal(model.covariances_, axis1=1, axis2=2).min() >= 0.1


@pytest.mark.skipif(not os.path.exists(PBMC), reason="PBMC data not found at ../shared/data")
@pytest.mark.parametrize("matrix", ["X_scaled", "X_lognorm"])
def test_readme_single_cell_recipe_converges(matrix):
    # The README's recipe, fit(adata, groupby="cell_type", min_cells=50) with n_components=20, alpha=0.09, on
    # the file's X (scaled) and on its log-normalised counts (raw.X).
    ad = pytest.importorskip("anndata")
    pd = pytest.importorskip("pandas")
    with np.load(PBMC, allow_pickle=False) as z:
        adata = ad.AnnData(
            X=np.asarray(z[matrix]),
            obs=pd.DataFrame({"cell_type": pd.Categorical(z["cell_type"].astype(str))}, index=z["cells"].astype(str)),
            var=pd.DataFrame(index=z["genes"].astype(str)))
    model = fit_without_warnings(MetaGraphicalLasso(n_components=20, alpha=0.09), adata, groupby="cell_type",
                                 min_cells=50)
    assert model.converged_
    assert len(model.dataset_names_) == 5 and min(model.n_samples_) >= 50
    assert model.n_samples_.max() < adata.n_vars  # every group has fewer cells than genes
