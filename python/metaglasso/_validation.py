"""Input validation shared by the estimators and functions of metaglasso."""

from __future__ import annotations

import numbers

import numpy as np

from metaglasso._dask import any_dask

__all__ = [
    "check_nonnegative",
    "check_positive_int",
    "check_square_matrix",
    "check_n_threads",
    "check_random_state",
    "check_datasets",
    "check_symmetric",
    "check_data_matrix",
    "check_precision_init",
    "check_enough_samples",
    "too_few_samples",
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


def check_random_state(random_state) -> int:
    """Map ``random_state`` to the core's 64-bit seed.

    None gives 0 (results are reproducible by default); an int must be in [0, 2**64); a NumPy
    Generator or RandomState draws a seed.
    """
    if random_state is None:
        return 0
    if isinstance(random_state, np.random.Generator):
        return int(random_state.integers(0, 2**63))
    if isinstance(random_state, np.random.RandomState):
        return int(random_state.randint(0, 2**31 - 1))
    if isinstance(random_state, bool) or not isinstance(random_state, numbers.Integral):
        raise ValueError(f"random_state must be None, an int or a numpy Generator; got {random_state!r}")
    if not 0 <= random_state < 2**64:
        raise ValueError(f"random_state must be in [0, 2**64); got {random_state!r}")
    return int(random_state)


def _column_names(X):
    columns = getattr(X, "columns", None)
    if columns is None or getattr(X, "ndim", 2) != 2:
        return None
    names = np.asarray(columns, dtype=object)
    if not all(isinstance(c, str) for c in names):
        return None
    return names


def as_real_array(X, label):
    """``np.asarray(X)`` (no copy where possible), checked to be real and numeric.

    Raises ValueError naming ``label`` for ragged input, non-numeric or complex dtypes.
    """
    try:
        arr = np.asarray(X)
    except Exception as exc:  # ragged nested lists
        raise ValueError(f"{label} could not be converted to an array: {exc}") from None
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise ValueError(f"{label} must be numeric; got dtype {arr.dtype}")
    if np.iscomplexobj(arr):
        raise ValueError(f"{label} must be real; got dtype {arr.dtype}")
    return arr


def check_datasets(Xs, name: str = "Xs"):
    """Validate K datasets of the same features.

    Parameters
    ----------
    Xs : sequence of array-likes of shape (n_samples_k, n_features), or an array of shape
        (K, n_samples, n_features)
    name : str
        Argument name used in error messages.

    Returns
    -------
    arrays : list of C-contiguous float64 ndarrays
        The inputs themselves when they already are C-contiguous float64 arrays (no copy);
        otherwise converted copies. Never modified.
    feature_names : ndarray of str or None
        Column names when every dataset is a DataFrame with the same string columns.
    """
    if isinstance(Xs, np.ndarray):
        if Xs.ndim != 3:
            raise ValueError(
                f"{name} must be a sequence of 2-D arrays (n_samples_k, n_features) or a 3-D array; "
                f"got an array with ndim={Xs.ndim} (wrap a single dataset as [X])"
            )
        Xs = list(Xs)
    elif isinstance(Xs, (str, bytes)) or not hasattr(Xs, "__len__") or hasattr(Xs, "columns"):
        raise ValueError(f"{name} must be a sequence of 2-D arrays; got {type(Xs).__name__}")
    if len(Xs) == 0:
        raise ValueError(f"{name} must contain at least one dataset; got an empty sequence")
    if any_dask(Xs):
        raise ValueError(f"{name} holds Dask arrays, which MetaGraphicalLasso.fit, score and bic take without "
                         f"loading them; here the data must be in memory (call .compute() on each)")
    arrays, all_names = [], []
    for k, X in enumerate(Xs):
        all_names.append(_column_names(X))
        arr = as_real_array(X, f"{name}[{k}]")
        if arr.ndim != 2:
            raise ValueError(f"{name}[{k}] must be 2-D (n_samples, n_features); got ndim={arr.ndim} shape {arr.shape}")
        arr = np.ascontiguousarray(arr, dtype=np.float64)
        if arr.shape[1] < 1:
            raise ValueError(f"{name}[{k}] has no features; got shape {arr.shape}")
        if arr.shape[0] < 2:
            raise ValueError(f"{name}[{k}] must have at least 2 samples; got n_samples={arr.shape[0]}")
        if k > 0 and arr.shape[1] != arrays[0].shape[1]:
            raise ValueError(
                f"{name}[{k}] has {arr.shape[1]} features; expected {arrays[0].shape[1]} as in {name}[0]"
            )
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"{name}[{k}] contains NaN or infinite values")
        arrays.append(arr)
    names = all_names[0]
    if names is not None and not all(n is not None and np.array_equal(n, names) for n in all_names):
        raise ValueError(f"all datasets in {name} must have the same columns in the same order")
    return arrays, names


def check_symmetric(arr: np.ndarray, name: str, *, rtol: float = 1e-10) -> np.ndarray:
    """Raise ValueError naming ``name`` unless the square ``arr`` is symmetric to ``rtol`` (relative
    to its largest entry); return ``arr`` unchanged."""
    scale = float(np.max(np.abs(arr))) if arr.size else 0.0
    asym = float(np.max(np.abs(arr - arr.T))) if arr.size else 0.0
    if asym > rtol * scale:
        raise ValueError(
            f"{name} must be symmetric; got max |{name} - {name}.T| = {asym:.3e} > {rtol:g} * max |{name}|"
        )
    return arr


def check_data_matrix(value, name: str, *, min_samples: int = 1) -> np.ndarray:
    """Return ``value`` as a float64 (n_samples, n_features) array with finite entries, or raise
    ValueError naming ``name``. The input is never modified."""
    arr = np.asarray(value, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[1] == 0:
        raise ValueError(f"{name} must be a 2-D array of shape (n_samples, n_features); got shape {arr.shape}")
    if arr.shape[0] < min_samples:
        raise ValueError(f"{name} must have at least {min_samples} samples; got {arr.shape[0]}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or infinite values")
    return arr


def check_precision_init(value, n_features: int, name: str = "precision_init") -> np.ndarray:
    """Return ``value`` as a finite float64 (n_features, n_features) array, or raise ValueError
    naming ``name``. The input is never modified."""
    arr = np.asarray(value, dtype=np.float64)
    if arr.shape != (n_features, n_features):
        raise ValueError(f"{name} must have shape ({n_features}, {n_features}); got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or infinite values")
    return arr


def too_few_samples(arrays, n_components: int, assume_centered: bool):
    """(k, need) for the first dataset with fewer than ``need`` samples, else None.

    A dataset's covariance has rank at most N_k - 1 (N_k when ``assume_centered``). When that is
    <= M, D can take in all of its variance, its noise variance is then 0 and the likelihood is
    unbounded, so such input has no MGLASSO estimate: need = M + 2 (M + 1 when ``assume_centered``).
    """
    need = n_components + (1 if assume_centered else 2)
    for k, X in enumerate(arrays):
        if X.shape[0] < need:
            return k, need
    return None


def check_enough_samples(arrays, n_components: int, assume_centered: bool, name: str = "Xs") -> None:
    """Raise ValueError naming the dataset unless every dataset has more than ``n_components``
    centred samples (see :func:`too_few_samples`)."""
    short = too_few_samples(arrays, n_components, assume_centered)
    if short is not None:
        k, need = short
        n = arrays[k].shape[0]
        rank = n if assume_centered else n - 1
        raise ValueError(
            f"{name}[{k}] has n_samples={n}: its {'' if assume_centered else 'centred '}covariance has "
            f"rank <= {rank} <= n_components={n_components}, so the noise variance can be 0 and the likelihood "
            f"is unbounded; each dataset needs at least {need} samples with n_components={n_components}"
        )
