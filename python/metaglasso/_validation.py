"""Input validation shared by the estimators and functions of metaglasso."""

from __future__ import annotations

import numbers

import numpy as np

__all__ = [
    "check_nonnegative",
    "check_positive_int",
    "check_square_matrix",
    "check_n_threads",
]


def _describe(value) -> str:
    return repr(value) if np.ndim(value) == 0 else f"array of shape {np.shape(value)}"


def check_nonnegative(value, name: str) -> float:
    """Return ``value`` as a float, or raise ValueError naming ``name`` unless finite and >= 0."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must be a real number >= 0; got {_describe(value)}")
    value = float(value)
    if not np.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a finite number >= 0; got {value!r}")
    return value


def check_positive_int(value, name: str, *, minimum: int = 1) -> int:
    """Return ``value`` as an int, or raise ValueError naming ``name`` unless an integer >= minimum."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{name} must be an integer >= {minimum}; got {_describe(value)}")
    if value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}; got {value!r}")
    return int(value)


def check_n_threads(value) -> int:
    """Map ``n_threads`` (None or an int >= 1, or -1 for all cores) to the core's convention (0 = default)."""
    if value is None or value == -1:
        return 0
    return check_positive_int(value, "n_threads")


def check_square_matrix(value, name: str) -> np.ndarray:
    """Return ``value`` as a float64 (p, p) array with finite entries, or raise ValueError naming ``name``.

    The input is never modified; a copy is made only when its dtype is not float64.
    """
    arr = np.asarray(value, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[0] != arr.shape[1] or arr.shape[0] == 0:
        raise ValueError(f"{name} must be a non-empty square 2-D array; got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or infinite values")
    return arr
