"""The base of metaglasso's estimators: :class:`sklearn.base.BaseEstimator` where scikit-learn is installed,
else :class:`_EstimatorBase`, the parts of scikit-learn's estimator protocol that they rely on.

Importing scikit-learn takes about a second, which ``import metaglasso`` should not cost: the estimators'
modules, which import this one, are loaded on first use (see ``metaglasso.__getattr__``).
"""

from __future__ import annotations

import inspect
import math
import numbers

__all__ = ["NotFittedError"]


def _is_scalar_nan(x):
    return isinstance(x, numbers.Real) and not isinstance(x, bool) and math.isnan(x)


class _EstimatorBase:
    """scikit-learn's estimator protocol where scikit-learn is not installed.

    The parts of :class:`sklearn.base.BaseEstimator` that metaglasso's estimators rely on, with its
    conventions: the parameters are the arguments of ``__init__``; ``get_params(deep=True)`` also
    lists those of nested estimators as ``<name>__<parameter>``; ``set_params`` sets them (nested
    ones too) and rejects unknown names; the ``repr`` shows the parameters that differ from their
    defaults, in alphabetical order.
    """

    @classmethod
    def _get_param_names(cls):
        init = cls.__init__
        if init is object.__init__:
            return []
        parameters = [p for p in inspect.signature(init).parameters.values()
                      if p.name != "self" and p.kind != p.VAR_KEYWORD]
        for p in parameters:
            if p.kind == p.VAR_POSITIONAL:
                raise RuntimeError(f"{cls.__name__} must specify its parameters in the signature of its "
                                   f"__init__ (no varargs)")
        return sorted(p.name for p in parameters)

    def get_params(self, deep=True):
        """Get the parameters of this estimator.

        Parameters
        ----------
        deep : bool, default=True
            Also return the parameters of contained estimators, as ``<name>__<parameter>``.

        Returns
        -------
        params : dict
            Parameter names mapped to their values.
        """
        out = {}
        for key in self._get_param_names():
            value = getattr(self, key)
            if deep and hasattr(value, "get_params") and not isinstance(value, type):
                out.update((f"{key}__{k}", v) for k, v in value.get_params().items())
            out[key] = value
        return out

    def set_params(self, **params):
        """Set the parameters of this estimator (``<name>__<parameter>`` for nested ones).

        Parameters
        ----------
        **params : dict
            Estimator parameters.

        Returns
        -------
        self : estimator instance
            This estimator.
        """
        if not params:
            return self
        valid = self.get_params(deep=True)
        nested = {}
        for key, value in params.items():
            key, delim, sub_key = key.partition("__")
            if key not in valid:
                raise ValueError(f"Invalid parameter {key!r} for estimator {self}. Valid parameters are: "
                                 f"{self._get_param_names()!r}.")
            if delim:
                nested.setdefault(key, {})[sub_key] = value
            else:
                setattr(self, key, value)
                valid[key] = value
        for key, sub_params in nested.items():
            valid[key].set_params(**sub_params)
        return self

    def __repr__(self):
        defaults = {name: p.default for name, p in inspect.signature(type(self).__init__).parameters.items()}

        def changed(k, v):
            if k not in defaults or defaults[k] is inspect.Parameter.empty:
                return True
            return repr(v) != repr(defaults[k]) and not (_is_scalar_nan(v) and _is_scalar_nan(defaults[k]))

        items = [f"{k}={v!r}" for k, v in sorted(self.get_params(deep=False).items()) if changed(k, v)]
        # As scikit-learn's: lines of at most 80 characters, continued under the first parameter.
        head = f"{type(self).__name__}("
        pieces = [item + "," for item in items[:-1]] + [item + ")" for item in items[-1:]]
        lines, line = [], head
        for piece in pieces:
            if len(line) > len(head) and len(line) + 1 + len(piece) > 80:
                lines.append(line)
                line = " " * len(head) + piece
            else:
                line += piece if len(line) == len(head) else " " + piece
        return "\n".join(lines + [line if pieces else head + ")"])


class _NotFittedError(ValueError, AttributeError):
    """Raised when a method that needs a fitted estimator is called before ``fit`` (scikit-learn's
    NotFittedError where scikit-learn is not installed)."""


try:  # scikit-learn is optional: only its tests need it
    from sklearn.base import BaseEstimator as _Base
    from sklearn.exceptions import NotFittedError
    from sklearn.utils.metadata_routing import UNUSED as _UNUSED
except ImportError:
    _Base = _EstimatorBase
    NotFittedError = _NotFittedError
    _UNUSED = "$UNUSED$"
