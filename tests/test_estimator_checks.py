"""MetaGraphicalLasso and MetaGraphicalLassoBIC as scikit-learn estimators: scikit-learn's estimator checks,
clone, Pipeline, and the parts of the protocol that a multi-dataset estimator defines for itself.

scikit-learn's checks give the estimators one 2-D array X, which metaglasso takes as one dataset (K = 1).
Two checks are expected to fail, for the reasons in EXPECTED_FAILED_CHECKS (scikit-learn's documented
``expected_failed_checks``); what each of them checks is tested below in the form that applies.
scikit-learn skips its array API check unless SCIPY_ARRAY_API=1 is set before SciPy is imported; it is
run in a subprocess with it set (test_array_api_check_with_scipy_array_api).
"""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from metaglasso import MetaGraphicalLasso, MetaGraphicalLassoBIC
from metaglasso.datasets import make_synthetic

sklearn = pytest.importorskip("sklearn", minversion="1.6")
from sklearn.base import BaseEstimator, clone  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402
from sklearn.utils.estimator_checks import parametrize_with_checks  # noqa: E402

SUBSET = ("transform(X) centres X on its own mean, as each dataset is centred on its own mean in the model: "
          "new data need belong to none of the K datasets, so the scores of a subset differ (one sample scores 0). "
          "transform(X, dataset=k) centres with training dataset k's mean and is invariant on subsets "
          "(test_transform_with_a_training_mean_is_invariant_on_subsets).")
N_ITER = ("with one dataset and one factor the PCA start is the optimum (the top principal direction), and the fit "
          "honestly reports n_iter_ = 0: the start meets the tolerance "
          "(test_a_fit_that_starts_at_its_optimum_runs_no_iteration).")
EXPECTED_FAILED_CHECKS = {
    "MetaGraphicalLasso": {"check_methods_subset_invariance": SUBSET, "check_transformer_n_iter": N_ITER},
    "MetaGraphicalLassoBIC": {"check_methods_subset_invariance": SUBSET},
}


@parametrize_with_checks([MetaGraphicalLasso(n_components=1), MetaGraphicalLassoBIC(n_components=[1], alphas=[0.01])],
                         expected_failed_checks=lambda est: EXPECTED_FAILED_CHECKS[type(est).__name__])
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)


def test_array_api_check_with_scipy_array_api():
    code = textwrap.dedent(
        """
        import json, warnings
        warnings.simplefilter("error")
        from sklearn.utils.estimator_checks import check_estimator
        from metaglasso import MetaGraphicalLasso, MetaGraphicalLassoBIC
        results = []
        for est in (MetaGraphicalLasso(n_components=1), MetaGraphicalLassoBIC([1], [0.01])):
            check_estimator(est, on_skip=None, on_fail=None, callback=lambda **kw: results.append(
                [type(est).__name__, kw["check_name"], kw["status"]]))
        print(json.dumps(results))
        """
    )
    env = dict(os.environ, SCIPY_ARRAY_API="1")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    results = json.loads(proc.stdout.strip().splitlines()[-1])
    assert [r for r in results if r[1] == "check_array_api_input"] == [
        ["MetaGraphicalLasso", "check_array_api_input", "passed"],
        ["MetaGraphicalLassoBIC", "check_array_api_input", "passed"]]
    not_passed = {(est, check) for est, check, status in results if status != "passed"}
    assert not_passed == {(est, check) for est, checks in EXPECTED_FAILED_CHECKS.items() for check in checks}


@pytest.fixture(scope="module")
def data():
    return make_synthetic(15, [50, 60], 2, 3, random_state=4)[0]


def test_transform_with_a_training_mean_is_invariant_on_subsets(data):
    model = MetaGraphicalLasso(3, 0.05).fit(data)
    X = data[1]
    whole = model.transform(X, dataset=1)
    for rows in (slice(0, 1), slice(5, 17), [3, 40, 2]):
        np.testing.assert_allclose(model.transform(X[rows], dataset=1), whole[rows], rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(whole, (X - X.mean(axis=0)) @ model.components_.T, rtol=1e-12, atol=1e-13)


def test_a_fit_that_starts_at_its_optimum_runs_no_iteration(data):
    X = data[0]
    model = MetaGraphicalLasso(1, 0.01).fit(X)
    assert model.n_iter_ == 0 and model.converged_
    top = np.linalg.eigh(np.cov(X, rowvar=False, bias=True))[1][:, -1]
    assert abs(abs(top @ model.components_[0]) - 1) < 1e-12  # the top principal direction
    moved = MetaGraphicalLasso(1, 0.01, init="random").fit(X)  # from elsewhere it gets there by iterating
    assert moved.n_iter_ >= 1
    assert abs(abs(top @ moved.components_[0]) - 1) < 1e-8


def test_estimators_are_base_estimators_and_import_metaglasso_does_not_import_sklearn():
    assert isinstance(MetaGraphicalLasso(), BaseEstimator)
    assert isinstance(MetaGraphicalLassoBIC(), BaseEstimator)
    code = "import sys, metaglasso; assert 'sklearn' not in sys.modules; metaglasso.MetaGraphicalLasso"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_clone_keeps_the_parameters_given_to_the_search():
    search = MetaGraphicalLassoBIC([2, 3], [0.1], tol=1e-6, solver="adam", refit=False)
    twin = clone(search)
    assert twin.get_params() == search.get_params()
    assert twin.get_params()["tol"] == 1e-6 and twin.get_params()["solver"] == "adam"
    twin.set_params(tol=1e-7, n_jobs=2)
    assert twin.get_params()["tol"] == 1e-7 and twin.n_jobs == 2 and search.get_params()["tol"] == 1e-6
    assert "tol=1e-06" in repr(search)
    model = MetaGraphicalLasso(4, [0.1, 0.2], init="random", random_state=3)
    assert clone(model).get_params() == model.get_params()


def test_pipeline_and_fit_transform(data):
    X = data[0]
    pipe = make_pipeline(StandardScaler(), MetaGraphicalLasso(3, 0.05)).fit(X)
    scores = pipe.transform(X)
    Z = StandardScaler().fit_transform(X)
    direct = MetaGraphicalLasso(3, 0.05).fit(Z)
    np.testing.assert_array_equal(scores, direct.transform(Z))
    np.testing.assert_array_equal(MetaGraphicalLasso(3, 0.05).fit_transform(Z), scores)
    per_dataset = MetaGraphicalLasso(3, 0.05).fit_transform(data)  # K datasets: one array of scores each
    model = MetaGraphicalLasso(3, 0.05).fit(data)
    for k, (S, Xk) in enumerate(zip(per_dataset, data)):
        np.testing.assert_array_equal(S, model.transform(Xk, dataset=k))
    assert list(model.get_feature_names_out()) == ["factor_0", "factor_1", "factor_2"]
