"""Input validation shared by the estimators and functions of metaglasso."""

from __future__ import annotations

import numbers
import warnings

import numpy as np

__all__ = [
    "check_nonnegative",
    "check_positive_int",
    "check_n_threads",
    "check_random_state",
    "check_symmetric",
    "check_data_matrix",
    "check_precision_init",
    "check_enough_samples",
    "too_few_samples",
    "is_sparse",
    "feature_names",
    "check_feature_names",
    "check_estimator_data",
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


def as_real_array(X, label):
    """``np.asarray(X)`` (no copy where possible), checked to be real and numeric; an object array of
    numbers becomes float64.

    Raises ValueError naming ``label`` for ragged input, complex, string or other non-numeric dtypes,
    and for an object entry that is not a number — TypeError when it is no string either (a dict, as
    ``float()`` and scikit-learn do) — with its position.
    """
    try:
        arr = np.asarray(X)
    except (TypeError, ValueError) as exc:  # ragged nested sequences
        raise ValueError(f"{label} could not be converted to an array: {exc}") from None
    kind = arr.dtype.kind
    if kind == "O":
        try:
            return arr.astype(np.float64)
        except (TypeError, ValueError):
            for i, v in enumerate(arr.ravel()):
                try:
                    float(v)
                except (TypeError, ValueError) as exc:
                    where = ", ".join(map(str, np.unravel_index(i, arr.shape)))
                    raise type(exc)(f"{label} has dtype object with an entry that is not a number: {v!r} at "
                                    f"{label}[{where}] ({exc})") from None
            raise
    if kind == "c":
        raise ValueError(f"Complex data not supported: {label} has dtype {arr.dtype}; it must be real")
    if kind not in "biuf":
        raise ValueError(f"{label} must be numeric; got dtype {arr.dtype} (convert the data to numbers explicitly)")
    return arr


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


def check_enough_samples(arrays, n_components: int, assume_centered: bool, name: str = "Xs", *, labels=None,
                         unit: str = "samples", hint: str = "") -> None:
    """Raise ValueError naming the dataset unless every dataset has more than ``n_components``
    centred samples (see :func:`too_few_samples`).

    ``labels`` name the datasets in the message (default ``name[k]``); ``unit`` is what a sample is
    called ("cells" for the groups of an AnnData) and ``hint`` is appended to the message, with
    ``{need}`` replaced by the number of samples needed.
    """
    short = too_few_samples(arrays, n_components, assume_centered)
    if short is not None:
        k, need = short
        n = arrays[k].shape[0]
        rank = n if assume_centered else n - 1
        label = labels[k] if labels is not None else f"{name}[{k}]"
        count = f"n_samples={n}" if unit == "samples" else f"{n} {unit}"
        raise ValueError(
            f"{label} has {count}: its {'' if assume_centered else 'centred '}covariance has "
            f"rank <= {rank} <= n_components={n_components}, so the noise variance can be 0 and the likelihood "
            f"is unbounded; each dataset needs at least {need} {unit} with n_components={n_components}"
            + hint.format(need=need)
        )


# ---------------------------------------------------------------------------------------------
# Data validation of the scikit-learn compatible estimators (GraphicalLasso): scikit-learn's
# conventions (check_array, validate_data), without depending on scikit-learn.


def is_sparse(value) -> bool:
    """Whether ``value`` is a sparse matrix or array (SciPy's, or one with the same protocol),
    detected without importing SciPy."""
    module = type(value).__module__ or ""
    return module.startswith("scipy.sparse") or (hasattr(value, "nnz") and hasattr(value, "tocsr"))


def feature_names(X):
    """The column names of a 2-D data frame ``X`` as an object array, as scikit-learn records them
    in ``feature_names_in_``: None unless ``X`` has columns whose names are all strings.

    Raises TypeError when the names mix strings and other types (scikit-learn's rule).
    """
    columns = getattr(X, "columns", None)
    if columns is None or isinstance(X, np.ndarray) or getattr(X, "ndim", 2) != 2:
        return None
    names = np.asarray(list(columns), dtype=object)
    if names.size == 0:
        return None
    types = sorted(t.__qualname__ for t in {type(v) for v in names})
    if len(types) > 1 and "str" in types:
        raise TypeError(
            "Feature names are only supported if all input features have string names, but your "
            f"input has {types} as feature name / column name types. If you want feature names to be "
            "stored and validated, you must convert them all to strings, by using "
            "X.columns = X.columns.astype(str) for example. Otherwise you can remove feature / column "
            "names from your input data, or convert them all to a non-string data type."
        )
    if types == ["str"]:
        return names
    return None


def check_feature_names(fitted_names, names, estimator_name: str, name: str = "X", *, stacklevel: int = 4) -> None:
    """Check the column names ``names`` of data passed after ``fit`` against those seen by ``fit``
    (``fitted_names``; either may be None), with scikit-learn's messages: a UserWarning when only
    one of them has names (attributed ``stacklevel`` frames up), ValueError when the names differ."""
    if fitted_names is None and names is None:
        return
    if fitted_names is None:
        warnings.warn(f"{name} has feature names, but {estimator_name} was fitted without feature names",
                      UserWarning, stacklevel=stacklevel)
        return
    if names is None:
        warnings.warn(f"{name} does not have valid feature names, but {estimator_name} was fitted with feature "
                      "names", UserWarning, stacklevel=stacklevel)
        return
    if len(fitted_names) == len(names) and np.all(fitted_names == names):
        return
    message = "The feature names should match those that were passed during fit.\n"
    unexpected = sorted(set(names) - set(fitted_names))
    missing = sorted(set(fitted_names) - set(names))

    def listing(values):
        lines = [f"- {v}\n" for v in values[:5]]
        return "".join(lines) + ("- ...\n" if len(values) > 5 else "")

    if unexpected:
        message += "Feature names unseen at fit time:\n" + listing(unexpected)
    if missing:
        message += "Feature names seen at fit time, yet now missing:\n" + listing(missing)
    if not unexpected and not missing:
        message += "Feature names must be in the same order as they were in fit.\n"
    raise ValueError(message)


def check_estimator_data(X, name: str, estimator_name: str, *, min_samples: int = 1, min_features: int = 1):
    """Validate the data ``X`` passed to a method of an estimator, as scikit-learn's ``check_array``.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        Dense numeric data: a NumPy array, a nested sequence or a data frame. Object arrays of
        numbers are converted; booleans and integers become float64.
    name : str
        Argument name used in error messages.
    estimator_name : str
        Estimator name used in error messages.
    min_samples, min_features : int, default=1
        Smallest accepted numbers of rows and columns.

    Returns
    -------
    array : ndarray of shape (n_samples, n_features)
        ``X`` as float64 (``X`` itself when it already is a float64 array; never modified).
    feature_names : ndarray of str or None
        See :func:`feature_names`.

    Raises
    ------
    TypeError
        For sparse input (not supported), column names of mixed types, or an object array with an
        entry that is not a number.
    ValueError
        For complex, string or other non-numeric data, an array that is not 2-D, too few samples
        or features, and NaN or infinite entries; each message names ``name`` and the value.
    """
    if is_sparse(X):
        raise TypeError(
            f"{name} is a sparse {type(X).__name__}: sparse input is not supported by {estimator_name}; "
            f"pass a dense array instead (e.g. {name}.toarray())"
        )
    names = feature_names(X)
    arr = as_real_array(X, name).astype(np.float64, copy=False)
    if arr.ndim != 2:
        if arr.ndim == 1:
            raise ValueError(
                f"{name} must be a 2-D array of shape (n_samples, n_features); got a 1-D array of shape "
                f"{arr.shape}. Reshape it with {name}.reshape(-1, 1) if it holds a single feature or "
                f"{name}.reshape(1, -1) if it holds a single sample"
            )
        what = "a scalar" if arr.ndim == 0 else f"an array with ndim={arr.ndim} and shape {arr.shape}"
        raise ValueError(f"{name} must be a 2-D array of shape (n_samples, n_features); got {what}")
    n, p = arr.shape
    if n < min_samples:
        raise ValueError(f"{name} has {n} sample(s) (shape={arr.shape}) while a minimum of {min_samples} is "
                         f"required by {estimator_name}.")
    if p < min_features:
        raise ValueError(f"{name} has {p} feature(s) (shape={arr.shape}) while a minimum of {min_features} is "
                         f"required by {estimator_name}.")
    if not np.isfinite(arr).all():
        i, j = np.argwhere(~np.isfinite(arr))[0]
        raise ValueError(f"{name} contains NaN or infinite values: {name}[{i}, {j}] = {float(arr[i, j])!r}")
    return arr, names
