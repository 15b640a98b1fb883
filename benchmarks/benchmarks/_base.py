"""Base class of the suite: the thread limit of a parameter set, and the skip convention."""

from __future__ import annotations

from .common import limit_threads


class Benchmark:
    """Holds the thread limit for the benchmark's lifetime.

    Subclasses call ``self.start(n_threads)`` first in ``setup``. NumPy's BLAS and the extension's
    OpenMP pool are both limited, so the reference and metaglasso run under the same budget;
    metaglasso's functions also receive ``n_threads`` explicitly where they take it.
    """

    timeout = 120.0

    def start(self, n_threads):
        self._limits = limit_threads(n_threads)
        self._limits.__enter__()

    def teardown(self, *params):
        limits = getattr(self, "_limits", None)
        if limits is not None:
            limits.__exit__(None, None, None)
            self._limits = None


def skip(reason):
    """asv's convention: NotImplementedError raised in setup skips the parameter set."""
    raise NotImplementedError(reason)
