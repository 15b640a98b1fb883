"""scikit-learn's own tests of its graphical lasso, run against metaglasso's.

The tests are read from the installed scikit-learn (``sklearn/covariance/tests/test_graphical_lasso.py``),
not copied here: this module takes that file's source, changes only its imports so that
``GraphicalLasso`` and ``graphical_lasso`` are metaglasso's (``GraphicalLassoCV``,
``empirical_covariance``, the datasets and the testing helpers stay scikit-learn's), and runs its tests
as they are. The set-up around them:

* the ``global_random_seed`` fixture comes from a hook of scikit-learn's ``conftest.py`` (seed 42 unless
  ``SKLEARN_TESTS_GLOBAL_RANDOM_SEED`` says otherwise);
* the module is skipped where scikit-learn, a test dependency of metaglasso only, is older than 1.9 or
  ships without its tests;
* ``pytestmark`` below: metaglasso's pytest configuration turns every warning into an error,
  scikit-learn's only deprecation warnings. The ``GraphicalLassoCV`` tests fit scikit-learn's
  ``GraphicalLassoCV`` (not metaglasso's code): its cross-validation folds of one sample make
  scikit-learn's ``empirical_covariance`` and NumPy warn, and with some values of
  ``SKLEARN_TESTS_GLOBAL_RANDOM_SEED`` its lasso solver warns that it did not converge. Those
  warnings, raised in scikit-learn's and NumPy's modules, are not errors here, as in scikit-learn's
  own suite; metaglasso's warnings still are.

No test is skipped or marked as expected to fail.
"""

import os
import re

import pytest

sklearn = pytest.importorskip("sklearn", minversion="1.9")

SOURCE = os.path.join(os.path.dirname(sklearn.__file__), "covariance", "tests", "test_graphical_lasso.py")
if not os.path.exists(SOURCE):
    pytest.skip(f"scikit-learn's tests are not installed ({SOURCE})", allow_module_level=True)

from sklearn.conftest import pytest_generate_tests  # noqa: E402, F401  (the global_random_seed fixture)

pytestmark = [
    pytest.mark.filterwarnings("ignore:Only one sample available:UserWarning:sklearn"),
    pytest.mark.filterwarnings("ignore:invalid value encountered in subtract:RuntimeWarning:numpy"),
    pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning:sklearn"),
]


def _ported_source():
    """The source of scikit-learn's test file with its imports of the two names under test replaced."""
    with open(SOURCE, encoding="utf-8") as fh:
        text = fh.read()
    block = re.search(r"from sklearn\.covariance import \((?P<names>[^)]*)\)", text)
    if block is None:
        raise RuntimeError(f"{SOURCE}: no 'from sklearn.covariance import (...)' block to port")
    names = [n.strip() for n in block["names"].split(",") if n.strip()]
    if not {"GraphicalLasso", "graphical_lasso"} <= set(names):
        raise RuntimeError(f"{SOURCE} imports {names} from sklearn.covariance; expected GraphicalLasso and "
                           "graphical_lasso among them")
    kept = [n for n in names if n not in ("GraphicalLasso", "graphical_lasso")]
    replacement = ("from metaglasso import GraphicalLasso, graphical_lasso\n"
                   f"from sklearn.covariance import ({', '.join(kept)})")
    # as many lines as the block replaced, so that tracebacks point at the source's own lines
    replacement += "\n" * max(0, block.group().count("\n") - replacement.count("\n"))
    return text[:block.start()] + replacement + text[block.end():]


# The tests, defined in this module under their own names, with their source lines for tracebacks.
exec(compile(_ported_source(), SOURCE, "exec"))  # noqa: S102


def test_the_ported_tests_use_metaglasso():
    assert GraphicalLasso.__module__ == "metaglasso._glasso_estimator"  # noqa: F821  (defined by the exec)
    assert graphical_lasso.__module__ == "metaglasso._glasso"  # noqa: F821
