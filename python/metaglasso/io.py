"""Save and load fitted models: one ``.npz`` file of arrays with JSON metadata, no pickle.

The file holds the fitted arrays (``components``, ``precisions``, ``covariances``,
``noise_variances``, ``means``, ``objective_history``, ``n_samples``, ``feature_names``, ...) and an
entry ``metadata``: a JSON text with the format name and version, the metaglasso version, the
estimator parameters, the scalar fitted attributes, the dataset names and any user metadata.
It is read with ``numpy.load(path, allow_pickle=False)``, so loading runs no stored code.
"""

from __future__ import annotations

import json
import numbers
import os

import numpy as np

__all__ = ["FORMAT_NAME", "FORMAT_VERSION", "load_model", "read_metadata", "save_model"]

#: The file format's name, ``metadata["format"]`` of every saved model.
FORMAT_NAME = "metaglasso-model"
#: The version of the file format that :func:`save_model` writes (``metadata["format_version"]``);
#: :func:`load_model` reads this version and older ones.
FORMAT_VERSION = 1

_ARRAYS = ("components", "precisions", "covariances", "noise_variances", "objective_history", "n_samples")


def _plain(value):
    """A JSON-ready copy of value (numpy scalars and arrays become Python numbers and lists)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return _plain(value.tolist())
    if isinstance(value, np.generic):
        return value.item()
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    return repr(value)


def _model_from(obj):
    """The MetaGraphicalLasso of ``obj`` and the selection records when obj is a search."""
    if hasattr(obj, "best_estimator_") and hasattr(obj, "results_"):
        return obj.best_estimator_, obj.results_
    if not hasattr(obj, "components_"):
        raise ValueError(f"model must be a fitted MetaGraphicalLasso or MetaGraphicalLassoBIC; got {type(obj).__name__}")
    return obj, None


def save_model(model, path, *, dataset_names=None, metadata=None):
    """Save a fitted model to ``path`` (``.npz`` is appended when missing).

    Parameters
    ----------
    model : fitted MetaGraphicalLasso or MetaGraphicalLassoBIC
        For a search, its ``best_estimator_`` is saved and its ``results_`` go into the metadata
        under ``"selection"``.
    path : str or os.PathLike
    dataset_names : sequence of K str or int, optional
        Stored and restored as ``dataset_names_``; default: the model's ``dataset_names_`` if set.
    metadata : dict, optional
        Extra JSON-serialisable information, stored under ``"user"``.

    Returns
    -------
    str
        The path written.
    """
    from metaglasso import __version__
    from metaglasso._estimator import MetaGraphicalLasso

    est, selection = _model_from(model)
    if not isinstance(est, MetaGraphicalLasso):
        raise ValueError(f"model must be a fitted MetaGraphicalLasso; got {type(est).__name__}")
    path = os.fspath(path)
    if not path.endswith(".npz"):
        path += ".npz"
    K = est.precisions_.shape[0]
    names = dataset_names if dataset_names is not None else getattr(est, "dataset_names_", None)
    if names is not None:
        names = _plain(list(names))
        if len(names) != K:
            raise ValueError(f"dataset_names must hold one name per dataset ({K}); got {len(names)}")
        if not all(isinstance(n, (str, int)) and not isinstance(n, bool) for n in names):
            raise ValueError(f"dataset_names must be strings or integers; got {names!r}")
    params = est.get_params()
    arrays = {name: np.asarray(getattr(est, name + "_"), dtype=np.float64) for name in _ARRAYS[:-1]}
    arrays["n_samples"] = np.asarray(est.n_samples_, dtype=np.int64)
    if getattr(est, "means_", None) is not None:
        arrays["means"] = np.asarray(est.means_, dtype=np.float64)
    if getattr(est, "feature_names_in_", None) is not None:
        arrays["feature_names"] = np.asarray([str(n) for n in est.feature_names_in_], dtype=str)
    if not isinstance(params["init"], str):
        arrays["init"] = np.asarray(params["init"], dtype=np.float64)
        params["init"] = "array"
    if not (params["random_state"] is None or isinstance(params["random_state"], numbers.Integral)):
        params["random_state"] = None  # a Generator cannot be stored; its draw is already in the fit
    params["callback"] = None  # code is not data: a loaded model has no callback
    meta = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "metaglasso_version": __version__,
        "estimator": "MetaGraphicalLasso",
        "params": _plain(params),
        "fitted": _plain({
            "objective": est.objective_, "n_iter": est.n_iter_, "converged": est.converged_,
            "gradient_norm": est.gradient_norm_, "representations": list(est.representations_),
            "compression_rank": est.compression_rank_, "n_features_in": est.n_features_in_,
            "alphas": getattr(est, "alphas_", None), "init_objectives": getattr(est, "init_objectives_", None),
            "best_init": getattr(est, "best_init_", None),
        }),
        "dataset_names": names,
        "selection": None if selection is None else _plain(list(selection)),
        "user": _plain(metadata) if metadata is not None else None,
    }
    try:
        text = json.dumps(meta, allow_nan=True)
    except (TypeError, ValueError) as exc:  # pragma: no cover - _plain makes everything serialisable
        raise ValueError(f"metadata is not JSON-serialisable: {exc}") from None
    arrays["metadata"] = np.asarray(text)
    with open(path, "wb") as fh:
        np.savez_compressed(fh, **arrays)
    return path


def _open(path):
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"model file {path!r} does not exist")
    try:
        z = np.load(path, allow_pickle=False)
    except Exception as exc:
        raise ValueError(f"{path!r} is not a metaglasso model file (.npz): {exc}") from None
    if not hasattr(z, "files") or "metadata" not in z.files:
        raise ValueError(f"{path!r} is not a metaglasso model file: it has no 'metadata' entry")
    try:
        meta = json.loads(str(z["metadata"][()]))
    except (ValueError, TypeError) as exc:
        raise ValueError(f"{path!r} has unreadable metadata: {exc}") from None
    if meta.get("format") != FORMAT_NAME:
        raise ValueError(f"{path!r} is not a metaglasso model file: format {meta.get('format')!r}")
    version = meta.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise ValueError(
            f"{path!r} has model format version {version!r}; this metaglasso reads versions <= {FORMAT_VERSION}"
        )
    return z, meta


def read_metadata(path):
    """The JSON metadata of a saved model, as a dict (no arrays are loaded)."""
    z, meta = _open(path)
    z.close()
    return meta


def load_model(path):
    """Load a model saved by :func:`save_model`.

    Returns
    -------
    MetaGraphicalLasso
        Fitted, with the saved parameters and attributes: ``transform``, ``score``, ``bic`` and
        the tables of :mod:`metaglasso.interpret` give the same results as on the saved model.
        ``dataset_names_`` is set when the file stores dataset names.
    """
    from metaglasso._estimator import MetaGraphicalLasso
    from metaglasso._results import partial_correlations

    z, meta = _open(path)
    with z:
        missing = [name for name in _ARRAYS if name not in z.files]
        if missing:
            raise ValueError(f"{os.fspath(path)!r} lacks the arrays {missing}")
        arrays = {name: z[name] for name in z.files if name != "metadata"}
    params = dict(meta["params"])
    if params.get("init") == "array":
        if "init" not in arrays:
            raise ValueError(f"{os.fspath(path)!r} lacks the array 'init' its parameters refer to")
        params["init"] = arrays["init"]
    unknown = set(params) - set(MetaGraphicalLasso._get_param_names())
    for name in unknown:  # parameters of another version of metaglasso
        params.pop(name)
    model = MetaGraphicalLasso(**params)
    comps = arrays["components"]
    prec = arrays["precisions"]
    if comps.ndim != 2 or prec.ndim != 3 or prec.shape[1:] != (comps.shape[0], comps.shape[0]):
        raise ValueError(
            f"{os.fspath(path)!r} has inconsistent shapes: components {comps.shape}, precisions {prec.shape}"
        )
    fitted = meta["fitted"]
    model.components_ = np.ascontiguousarray(comps)
    model.precisions_ = prec
    model.covariances_ = arrays["covariances"]
    model.noise_variances_ = arrays["noise_variances"]
    model.partial_correlations_ = partial_correlations(prec)
    model.means_ = arrays.get("means")
    model.objective_ = float(fitted["objective"])
    model.objective_history_ = arrays["objective_history"]
    model.n_iter_ = int(fitted["n_iter"])
    model.converged_ = bool(fitted["converged"])
    model.gradient_norm_ = float(fitted["gradient_norm"])
    model.representations_ = list(fitted["representations"])
    model.compression_rank_ = fitted["compression_rank"]
    model.n_features_in_ = int(fitted["n_features_in"])
    # Files of metaglasso before per-dataset penalties and n_init: one ρ, one start.
    K = prec.shape[0]
    alphas = fitted.get("alphas")
    model.alphas_ = np.asarray(np.broadcast_to(model.alpha, (K,)) if alphas is None else alphas, dtype=np.float64)
    starts = fitted.get("init_objectives")
    model.init_objectives_ = np.asarray([model.objective_] if starts is None else starts, dtype=np.float64)
    model.best_init_ = int(fitted.get("best_init") or 0)
    model.n_samples_ = arrays["n_samples"]
    if "feature_names" in arrays:
        model.feature_names_in_ = np.asarray(arrays["feature_names"], dtype=object)
    if meta.get("dataset_names") is not None:
        model.dataset_names_ = list(meta["dataset_names"])
    return model
