"""Meta Graphical Lasso: shared latent factors with sparse per-dataset precision matrices."""

from metaglasso._core import __version__
from metaglasso.exceptions import ConvergenceWarning, NumericalError

__all__ = ["ConvergenceWarning", "NumericalError", "__version__"]
