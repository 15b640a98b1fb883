"""Meta Graphical Lasso (MGLASSO): shared latent factors with a sparse network per dataset.

The estimator :class:`MetaGraphicalLasso` fits K datasets of the same variables; the graphical
lasso of its inner step is available as :func:`graphical_lasso` and :class:`GraphicalLasso`.
:class:`MetaGraphicalLassoBIC` and :func:`select_model` choose M and ρ by BIC.
:mod:`metaglasso.reference` is a pure-NumPy implementation of the same model, and
:mod:`metaglasso.datasets` generates synthetic data from it. :mod:`metaglasso.metrics` holds the
paper's evaluation metrics (:func:`~metaglasso.metrics.evaluate`) and :mod:`metaglasso.baselines`
its PCA and ICA baselines (:func:`~metaglasso.baselines.fit_baseline`).
"""

from metaglasso._core import __version__
from metaglasso._estimator import FitProgress, MetaGraphicalLasso, partial_correlations
from metaglasso._glasso import graphical_lasso
from metaglasso._selection import MetaGraphicalLassoBIC, select_model
from metaglasso.exceptions import ConvergenceWarning, FitFailedWarning, GridEdgeWarning, NumericalError
from metaglasso import baselines, metrics

__all__ = [
    "ConvergenceWarning",
    "FitFailedWarning",
    "FitProgress",
    "GraphicalLasso",
    "GridEdgeWarning",
    "MetaGraphicalLasso",
    "MetaGraphicalLassoBIC",
    "NumericalError",
    "__version__",
    "baselines",
    "graphical_lasso",
    "metrics",
    "partial_correlations",
    "select_model",
]


def __getattr__(name):
    # GraphicalLasso is a scikit-learn estimator; its module imports scikit-learn (about a second) when it
    # is installed, so it is loaded on first use rather than by ``import metaglasso``.
    if name == "GraphicalLasso":
        from metaglasso._glasso_estimator import GraphicalLasso

        return GraphicalLasso
    raise AttributeError(f"module 'metaglasso' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | {"GraphicalLasso"})
