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
from metaglasso._glasso import graphical_lasso
from metaglasso._results import FitProgress, partial_correlations
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


# The estimators derive from scikit-learn's BaseEstimator when scikit-learn is installed, and importing it
# takes about a second: their modules are loaded on first use rather than by ``import metaglasso``.
_LAZY = {
    "GraphicalLasso": "metaglasso._glasso_estimator",
    "MetaGraphicalLasso": "metaglasso._estimator",
    "MetaGraphicalLassoBIC": "metaglasso._selection",
    "select_model": "metaglasso._selection",
}


def __getattr__(name):
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'metaglasso' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_LAZY))
