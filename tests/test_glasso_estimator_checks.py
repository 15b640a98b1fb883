"""metaglasso.GraphicalLasso as a scikit-learn estimator: scikit-learn's estimator checks, clone,
Pipeline and GridSearchCV, the EmpiricalCovariance API, input validation, the parameters accepted
for compatibility with scikit-learn, the protocol without scikit-learn, and the convergence
warnings of graphical_lasso.

No scikit-learn check is skipped or expected to fail (``expected_failed_checks`` is empty). The
array API check that scikit-learn skips unless SCIPY_ARRAY_API=1 is set before SciPy is imported
is run in a subprocess with it set (test_check_estimator_in_one_call).
"""

import json
import os
import pickle
import re
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from metaglasso import _core, graphical_lasso
from metaglasso._glasso_estimator import GraphicalLasso, _EstimatorBase
from metaglasso.exceptions import ConvergenceWarning

sklearn = pytest.importorskip("sklearn", minversion="1.6")
from sklearn.base import BaseEstimator, clone  # noqa: E402
from sklearn.covariance import EmpiricalCovariance, empirical_covariance, log_likelihood  # noqa: E402
from sklearn.covariance import GraphicalLasso as SklearnGraphicalLasso  # noqa: E402
from sklearn.exceptions import NotFittedError  # noqa: E402
from sklearn.model_selection import GridSearchCV, KFold  # noqa: E402
from sklearn.pipeline import Pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402
from sklearn.utils.estimator_checks import (  # noqa: E402
    check_dataframe_column_names_consistency,
    parametrize_with_checks,
)

# Checks expected to fail, with the reason (scikit-learn's `expected_failed_checks`): none.
EXPECTED_FAILED_CHECKS = {}


def factor_data(rng, n, p, k=2, noise=0.5, shift=0.0):
    return rng.standard_normal((n, k)) @ rng.standard_normal((k, p)) + noise * rng.standard_normal((n, p)) + shift


def factor_covariance(rng, p, *, k=3, n=80, strength=3.0, noise=1.0):
    """Sample covariance (1/n) of n draws of F z + noise ε with k strong factors F (p, k)."""
    F = strength * rng.standard_normal((p, k))
    X = rng.standard_normal((n, k)) @ F.T + noise * rng.standard_normal((n, p))
    Xc = X - X.mean(axis=0)
    return Xc.T @ Xc / n


# ---------------------------------------------------------------------------------------------
# scikit-learn's estimator checks, one test each


@parametrize_with_checks(
    [GraphicalLasso(), GraphicalLasso(alpha=0.1, penalize_diagonal=True, assume_centered=True, tol=1e-10)],
    expected_failed_checks=lambda estimator: EXPECTED_FAILED_CHECKS,
)
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


def test_dataframe_column_names_consistency():
    # A check of scikit-learn's own test suite that check_estimator does not run.
    pytest.importorskip("pandas")
    check_dataframe_column_names_consistency("GraphicalLasso", GraphicalLasso())


def test_check_estimator_in_one_call():
    # The acceptance test, literally, in a fresh interpreter with SCIPY_ARRAY_API=1 (which
    # scikit-learn needs to run its array API check) and every warning an error: every check runs
    # and passes, none is skipped.
    code = textwrap.dedent(
        """
        import json, warnings
        warnings.simplefilter("error")
        from sklearn.utils.estimator_checks import check_estimator
        from metaglasso import GraphicalLasso
        results = []
        check_estimator(GraphicalLasso(), on_skip=None, on_fail=None,
                        callback=lambda **kw: results.append([kw["check_name"], kw["status"], str(kw["exception"])]))
        print(json.dumps(results))
        """
    )
    env = dict(os.environ, SCIPY_ARRAY_API="1")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    results = json.loads(proc.stdout.strip().splitlines()[-1])
    assert len(results) > 40
    not_passed = [r for r in results if r[1] != "passed"]
    assert not_passed == []
    assert any(name == "check_array_api_input" for name, _, _ in results)


# ---------------------------------------------------------------------------------------------
# the estimator protocol: parameters, clone, repr, pickling


def test_is_a_sklearn_estimator_with_sklearn_installed():
    assert issubclass(GraphicalLasso, BaseEstimator)


def test_get_params_and_set_params():
    model = GraphicalLasso()
    assert model.get_params() == {
        "alpha": 0.01, "mode": "cd", "covariance": None, "tol": 1e-8, "enet_tol": 1e-4, "max_iter": 1000,
        "verbose": False, "eps": np.finfo(np.float64).eps, "assume_centered": False, "penalize_diagonal": False,
    }
    assert model.get_params(deep=False) == model.get_params(deep=True)
    assert model.set_params(alpha=0.2, max_iter=50) is model
    assert (model.alpha, model.max_iter) == (0.2, 50)
    with pytest.raises(ValueError, match=r"Invalid parameter 'beta' for estimator GraphicalLasso\(alpha=0.2, "
                                         r"max_iter=50\). Valid parameters are: \['alpha', "):
        model.set_params(beta=1.0)
    # Nested names, through a pipeline.
    pipe = Pipeline([("glasso", GraphicalLasso())])
    assert pipe.get_params(deep=True)["glasso__alpha"] == 0.01
    pipe.set_params(glasso__alpha=0.3)
    assert pipe.named_steps["glasso"].alpha == 0.3
    with pytest.raises(ValueError, match="Invalid parameter 'nope' for estimator GraphicalLasso"):
        pipe.set_params(glasso__nope=1)


def test_clone_copies_the_parameters_not_the_fit():
    X = factor_data(np.random.default_rng(0), 60, 5)
    model = GraphicalLasso(alpha=0.07, tol=1e-10, covariance=None, penalize_diagonal=True).fit(X)
    copy = clone(model)
    assert copy is not model
    assert copy.get_params() == model.get_params()
    assert not hasattr(copy, "precision_") and not hasattr(copy, "n_features_in_")
    assert_array_equal(copy.fit(X).precision_, model.precision_)


@pytest.mark.parametrize(
    "params, expected",
    [
        ({}, "GraphicalLasso()"),
        ({"alpha": 0.05}, "GraphicalLasso(alpha=0.05)"),
        ({"alpha": 0.01, "tol": 1e-8}, "GraphicalLasso()"),
        ({"mode": "lars", "max_iter": 50, "penalize_diagonal": True},
         "GraphicalLasso(max_iter=50, mode='lars', penalize_diagonal=True)"),
        ({"alpha": 0.1, "assume_centered": True, "covariance": "precomputed", "enet_tol": 1e-5, "max_iter": 50,
          "mode": "lars", "tol": 1e-3},
         "GraphicalLasso(alpha=0.1, assume_centered=True, covariance='precomputed',\n"
         "               enet_tol=1e-05, max_iter=50, mode='lars', tol=0.001)"),
    ],
)
def test_repr_shows_the_changed_parameters(params, expected):
    assert repr(GraphicalLasso(**params)) == expected
    # The same as scikit-learn's estimator with the same parameters.
    sk_params = {k: v for k, v in params.items() if k != "penalize_diagonal"}
    if "penalize_diagonal" not in params and "tol" not in params and "max_iter" not in params:
        assert repr(SklearnGraphicalLasso(**sk_params)) == expected


def test_pickle_round_trip():
    X = factor_data(np.random.default_rng(1), 50, 4)
    model = GraphicalLasso(alpha=0.05).fit(X)
    restored = pickle.loads(pickle.dumps(model))
    assert restored.get_params() == model.get_params()
    assert_array_equal(restored.precision_, model.precision_)
    assert restored.score(X) == model.score(X)


# ---------------------------------------------------------------------------------------------
# Pipeline and GridSearchCV


def test_pipeline_with_standard_scaler():
    rng = np.random.default_rng(2)
    X = factor_data(rng, 120, 6) * np.array([1.0, 10.0, 0.1, 3.0, 1.0, 100.0]) + 5.0
    pipe = Pipeline([("scale", StandardScaler()), ("glasso", GraphicalLasso(alpha=0.1))]).fit(X)
    Z = StandardScaler().fit_transform(X)
    direct = GraphicalLasso(alpha=0.1).fit(Z)
    assert_allclose(pipe.named_steps["glasso"].precision_, direct.precision_, rtol=1e-12, atol=1e-14)
    # The pipeline's score is the estimator's score of the scaled data.
    X_test = factor_data(rng, 40, 6) * np.array([1.0, 10.0, 0.1, 3.0, 1.0, 100.0]) + 5.0
    assert pipe.score(X_test) == pytest.approx(direct.score(pipe.named_steps["scale"].transform(X_test)), rel=1e-12)
    assert pipe.named_steps["glasso"].n_features_in_ == 6


def test_grid_search_picks_the_best_held_out_likelihood():
    rng = np.random.default_rng(3)
    X = factor_data(rng, 150, 8, k=2, noise=0.7)
    alphas = [0.001, 0.01, 0.05, 0.2, 0.8]
    cv = KFold(n_splits=4, shuffle=True, random_state=0)
    search = GridSearchCV(GraphicalLasso(), {"alpha": alphas}, cv=cv).fit(X)
    # GridSearchCV scores with GraphicalLasso.score: recompute its table by hand.
    expected = []
    for alpha in alphas:
        folds = [GraphicalLasso(alpha=alpha).fit(X[train]).score(X[test]) for train, test in cv.split(X)]
        expected.append(np.mean(folds))
    assert_allclose(search.cv_results_["mean_test_score"], expected, rtol=1e-12)
    assert search.best_params_ == {"alpha": alphas[int(np.argmax(expected))]}
    assert isinstance(search.best_estimator_, GraphicalLasso)
    assert search.best_estimator_.alpha == search.best_params_["alpha"]
    assert_allclose(search.best_estimator_.precision_, GraphicalLasso(**search.best_params_).fit(X).precision_)


def test_grid_search_in_a_pipeline():
    rng = np.random.default_rng(4)
    X = factor_data(rng, 100, 5) + 2.0
    pipe = Pipeline([("scale", StandardScaler()), ("glasso", GraphicalLasso())])
    search = GridSearchCV(pipe, {"glasso__alpha": [0.01, 0.1, 0.5]}, cv=3).fit(X)
    assert search.best_params_["glasso__alpha"] in (0.01, 0.1, 0.5)
    assert np.all(np.isfinite(search.cv_results_["mean_test_score"]))


# ---------------------------------------------------------------------------------------------
# EmpiricalCovariance's API: score, mahalanobis, error_norm, get_precision


def test_score_is_sklearns_log_likelihood():
    rng = np.random.default_rng(5)
    X, X_test = factor_data(rng, 80, 6, shift=3.0), factor_data(rng, 30, 6, shift=3.0)
    model = GraphicalLasso(alpha=0.05).fit(X)
    test_cov = empirical_covariance(X_test - model.location_, assume_centered=True)
    assert model.score(X_test) == pytest.approx(log_likelihood(test_cov, model.precision_), rel=1e-12)
    assert model.score(X_test, y=None) == model.score(X_test)
    # With alpha = 0 the model is the empirical one: the same score as EmpiricalCovariance.
    exact = GraphicalLasso(alpha=0.0).fit(X)
    reference = EmpiricalCovariance().fit(X)
    assert exact.score(X_test) == pytest.approx(reference.score(X_test), rel=1e-10)
    # assume_centered: the test data are not centred either.
    centered = GraphicalLasso(alpha=0.0, assume_centered=True).fit(X)
    assert centered.score(X_test) == pytest.approx(EmpiricalCovariance(assume_centered=True).fit(X).score(X_test),
                                                   rel=1e-10)
    # The same as scikit-learn's GraphicalLasso where both converge to the same precision.
    sk = SklearnGraphicalLasso(alpha=0.05, tol=1e-9, enet_tol=1e-12, max_iter=2000).fit(X)
    assert model.score(X_test) == pytest.approx(sk.score(X_test), rel=1e-6)


def test_mahalanobis_error_norm_and_get_precision():
    rng = np.random.default_rng(6)
    X = factor_data(rng, 70, 5, shift=-1.0)
    model = GraphicalLasso(alpha=0.0).fit(X)
    reference = EmpiricalCovariance().fit(X)
    assert_allclose(model.mahalanobis(X[:10]), reference.mahalanobis(X[:10]), rtol=1e-9)
    assert np.all(model.mahalanobis(np.tile(model.location_, (3, 1))) >= 0)
    assert model.mahalanobis(X).shape == (70,)
    assert model.get_precision() is model.precision_
    other = np.cov(factor_data(rng, 70, 5).T, bias=True)
    for norm in ("frobenius", "spectral"):
        for scaling in (True, False):
            for squared in (True, False):
                assert model.error_norm(other, norm=norm, scaling=scaling, squared=squared) == pytest.approx(
                    reference.error_norm(other, norm=norm, scaling=scaling, squared=squared), rel=1e-9)
    with pytest.raises(NotImplementedError, match="norm='nuclear'"):
        model.error_norm(other, norm="nuclear")
    with pytest.raises(ValueError, match=r"comp_cov must have shape \(5, 5\)"):
        model.error_norm(np.eye(4))


@pytest.mark.parametrize("method, args", [("score", (np.ones((3, 2)),)), ("mahalanobis", (np.ones((3, 2)),)),
                                          ("get_precision", ()), ("error_norm", (np.eye(2),))])
def test_methods_before_fit_raise_not_fitted_error(method, args):
    with pytest.raises(NotFittedError, match="This GraphicalLasso instance is not fitted yet"):
        getattr(GraphicalLasso(), method)(*args)


def test_methods_check_the_number_of_features():
    model = GraphicalLasso().fit(np.random.default_rng(7).standard_normal((20, 4)))
    for method in (model.score, model.mahalanobis):
        with pytest.raises(ValueError, match="X has 3 features, but GraphicalLasso is expecting 4 features as input"):
            method(np.ones((5, 3)))


# ---------------------------------------------------------------------------------------------
# covariance="precomputed"


def test_precomputed_covariance_is_the_function():
    rng = np.random.default_rng(8)
    S = factor_covariance(rng, 8, n=40)
    model = GraphicalLasso(alpha=0.1, covariance="precomputed", tol=1e-12).fit(S)
    cov, prec, n_iter = graphical_lasso(S, 0.1, tol=1e-12, return_n_iter=True)
    assert_array_equal(model.precision_, prec)
    assert_array_equal(model.covariance_, cov)
    assert model.n_iter_ == n_iter
    assert_array_equal(model.location_, np.zeros(8))
    assert model.n_features_in_ == 8
    # From data, the same answer as from its covariance.
    X = factor_data(rng, 60, 5, shift=2.0)
    from_data = GraphicalLasso(alpha=0.05, tol=1e-12).fit(X)
    from_cov = GraphicalLasso(alpha=0.05, tol=1e-12, covariance="precomputed").fit(empirical_covariance(X))
    assert_allclose(from_cov.precision_, from_data.precision_, rtol=1e-8, atol=1e-10)
    # score takes data, centred at location_ (zero here), as scikit-learn's.
    assert from_cov.score(X - X.mean(axis=0)) == pytest.approx(from_data.score(X), rel=1e-8)


def test_precomputed_alpha_zero_is_the_inverse():
    X = np.random.RandomState(0).randn(100, 10)
    S = empirical_covariance(X, assume_centered=True)
    model = GraphicalLasso(alpha=0, covariance="precomputed").fit(S)
    assert_allclose(model.precision_, np.linalg.inv(S), rtol=1e-10)


@pytest.mark.parametrize(
    "S, match",
    [
        (np.ones((3, 4)), r"X must be a square covariance matrix .*covariance='precomputed'; got shape \(3, 4\)"),
        (np.array([[1.0, 0.5], [0.0, 1.0]]), r"X must be symmetric"),
        (np.array([[-1.0, 0.0], [0.0, 1.0]]), r"negative diagonal entry X\[0, 0\] = -1.0"),
        (np.array([[1.0, np.nan], [np.nan, 1.0]]), r"X contains NaN or infinite values: X\[0, 1\] = nan"),
    ],
)
def test_precomputed_covariance_is_validated(S, match):
    with pytest.raises(ValueError, match=match):
        GraphicalLasso(covariance="precomputed").fit(S)


def test_precomputed_data_frame_covariance_has_feature_names():
    pd = pytest.importorskip("pandas")
    X = pd.DataFrame(factor_data(np.random.default_rng(9), 40, 3), columns=["a", "b", "c"])
    model = GraphicalLasso(covariance="precomputed").fit(X.cov(ddof=0))
    assert_array_equal(model.feature_names_in_, np.array(["a", "b", "c"], dtype=object))


# ---------------------------------------------------------------------------------------------
# feature names


def test_feature_names_in_from_data_frames():
    pd = pytest.importorskip("pandas")
    rng = np.random.default_rng(10)
    X = pd.DataFrame(factor_data(rng, 50, 3), columns=["x", "y", "z"])
    model = GraphicalLasso(alpha=0.05).fit(X)
    assert model.feature_names_in_.dtype == object
    assert_array_equal(model.feature_names_in_, ["x", "y", "z"])
    assert_array_equal(model.precision_, GraphicalLasso(alpha=0.05).fit(X.to_numpy()).precision_)
    model.score(X)  # no warning
    with pytest.warns(UserWarning, match="X does not have valid feature names, but GraphicalLasso was fitted with"):
        model.score(X.to_numpy())
    with pytest.raises(ValueError, match="The feature names should match those that were passed during fit.\n"
                                         "Feature names must be in the same order as they were in fit."):
        model.score(X[["z", "y", "x"]])
    with pytest.raises(ValueError, match="Feature names unseen at fit time:\n- w\n"):
        model.mahalanobis(X.rename(columns={"x": "w"}))
    # Refitted on an array: the names are gone, and a data frame now warns.
    model.fit(X.to_numpy())
    assert not hasattr(model, "feature_names_in_")
    with pytest.warns(UserWarning, match="X has feature names, but GraphicalLasso was fitted without feature names"):
        model.score(X)
    # Non-string names are not recorded; a mix of strings and others is an error (scikit-learn's rule).
    assert not hasattr(GraphicalLasso().fit(pd.DataFrame(X.to_numpy())), "feature_names_in_")
    with pytest.raises(TypeError, match="Feature names are only supported if all input features have string names"):
        GraphicalLasso().fit(pd.DataFrame(X.to_numpy(), columns=["a", 1, "c"]))


# ---------------------------------------------------------------------------------------------
# input validation: errors that name the argument and the value


@pytest.mark.parametrize(
    "X, error, match",
    [
        (np.ones(5), ValueError, r"X must be a 2-D array .*got a 1-D array of shape \(5,\)\. Reshape it"),
        (np.float64(3.0), ValueError, r"X must be a 2-D array .*got a scalar"),
        (np.ones((2, 3, 4)), ValueError, r"X must be a 2-D array .*ndim=3"),
        (np.ones((1, 3)), ValueError, r"X has 1 sample\(s\) \(shape=\(1, 3\)\) while a minimum of 2 is required"),
        (np.ones((0, 3)), ValueError, r"X has 0 sample\(s\)"),
        (np.ones((5, 0)), ValueError, r"X has 0 feature\(s\) \(shape=\(5, 0\)\) while a minimum of 1 is required"),
        (np.array([[1.0, np.nan], [2.0, 3.0]]), ValueError, r"X contains NaN or infinite values: X\[0, 1\] = nan"),
        (np.array([[1.0, 2.0], [np.inf, 3.0]]), ValueError, r"X contains NaN or infinite values: X\[1, 0\] = inf"),
        (np.ones((3, 2)) + 1j, ValueError, r"Complex data not supported: X has dtype complex128"),
        (np.array([["a", "b"], ["c", "d"]]), ValueError, r"X must be numeric; got dtype <U1"),
        (np.array([[1.0, {}], [2.0, 3.0]], dtype=object), TypeError, r"X has dtype object with an entry that is not "
                                                                     r"a number: \{\} at X\[0, 1\] \(float\(\) argument must be"),
        ([[1.0, 2.0], [3.0]], ValueError, r"X could not be converted to an array"),
    ],
)
def test_bad_data_raise_errors_naming_x(X, error, match):
    with pytest.raises(error, match=match):
        GraphicalLasso().fit(X)


def test_graphical_lasso_rejects_complex_emp_cov():
    with pytest.raises(ValueError, match="Complex data not supported: emp_cov has dtype complex128"):
        graphical_lasso(np.eye(2) + 0j, 0.1)
    with pytest.raises(ValueError, match="emp_cov could not be converted to a real float64 array: float"):
        graphical_lasso([[1.0, 1j], [-1j, 1.0]], 0.1)


@pytest.mark.parametrize("container", ["csr_matrix", "csr_array", "coo_matrix"])
def test_sparse_input_is_not_supported(container):
    sparse = pytest.importorskip("scipy.sparse")
    X = getattr(sparse, container)(np.eye(4))
    with pytest.raises(TypeError, match=r"X is a sparse .*: sparse input is not supported by GraphicalLasso; pass a "
                                        r"dense array instead \(e.g. X.toarray\(\)\)"):
        GraphicalLasso().fit(X)
    with pytest.raises(TypeError, match=r"emp_cov is a sparse .*: sparse input is not supported"):
        graphical_lasso(X, 0.1)
    model = GraphicalLasso().fit(np.random.default_rng(0).standard_normal((10, 4)))
    with pytest.raises(TypeError, match="X_test is a sparse"):
        model.score(X)


def test_accepted_data_types():
    rng = np.random.default_rng(11)
    X = factor_data(rng, 30, 4)
    expected = GraphicalLasso().fit(X).precision_
    assert_array_equal(GraphicalLasso().fit(X.astype(object)).precision_, expected)
    assert_array_equal(GraphicalLasso().fit(X.tolist()).precision_, expected)
    assert_array_equal(GraphicalLasso().fit(np.asfortranarray(X)).precision_, expected)
    Xi = (3 * rng.random((30, 4))).astype(np.int32)
    assert_array_equal(GraphicalLasso().fit(Xi).precision_, GraphicalLasso().fit(Xi.astype(float)).precision_)
    # One feature: the precision is 1 / variance.
    x = rng.standard_normal((25, 1))
    assert_allclose(GraphicalLasso().fit(x).precision_, [[1.0 / x.var()]], rtol=1e-12)
    # Read-only input is read, never written.
    X.setflags(write=False)
    assert_array_equal(GraphicalLasso().fit(X).precision_, expected)


@pytest.mark.parametrize(
    "params, match",
    [
        ({"alpha": -0.1}, r"alpha must be a finite number >= 0; got -0.1"),
        ({"alpha": "big"}, r"alpha must be a real number >= 0; got 'big'"),
        ({"tol": np.nan}, r"tol must be a finite number >= 0; got nan"),
        ({"max_iter": 0}, r"max_iter must be an integer >= 1; got 0"),
        ({"max_iter": 2.5}, r"max_iter must be an integer >= 1; got 2.5"),
        ({"mode": "newton"}, r"mode must be 'cd' or 'lars'; got 'newton'"),
        ({"covariance": "empirical"}, r"covariance must be 'precomputed' or None; got 'empirical'"),
        ({"enet_tol": 0.0}, r"enet_tol must be a real number > 0; got 0.0"),
        ({"enet_tol": np.nan}, r"enet_tol must be a real number > 0; got nan"),
        ({"eps": -1e-3}, r"eps must be a real number >= 0; got -0.001"),
        ({"verbose": "yes"}, r"verbose must be a bool or an int; got 'yes'"),
    ],
)
def test_bad_parameters_raise_at_fit_naming_them(params, match):
    model = GraphicalLasso(**params)  # __init__ and set_params never validate (scikit-learn's convention)
    GraphicalLasso().set_params(**params)
    with pytest.raises(ValueError, match=match):
        model.fit(np.random.default_rng(12).standard_normal((10, 3)))


# ---------------------------------------------------------------------------------------------
# scikit-learn's parameters: accepted, validated, ignored by the solver; verbose and costs


def test_sklearn_only_parameters_do_not_change_the_answer():
    rng = np.random.default_rng(13)
    S = factor_covariance(rng, 10, n=50)
    _, expected, n_iter = graphical_lasso(S, 0.1, return_n_iter=True)
    for kwargs in ({"mode": "lars"}, {"enet_tol": 1e-11}, {"eps": 1e-3}, {"mode": "cd", "enet_tol": 0.5, "eps": 0.0}):
        _, precision, n = graphical_lasso(S, 0.1, return_n_iter=True, **kwargs)
        assert_array_equal(precision, expected)
        assert n == n_iter
    with pytest.raises(ValueError, match="mode must be 'cd' or 'lars'; got 'fast'"):
        graphical_lasso(S, 0.1, mode="fast")
    with pytest.raises(ValueError, match="enet_tol must be a real number > 0"):
        graphical_lasso(S, 0.1, enet_tol=-1.0)
    with pytest.raises(ValueError, match="eps must be a real number >= 0"):
        graphical_lasso(S, 0.1, eps=None)


def test_return_costs_and_costs_attribute():
    rng = np.random.default_rng(14)
    S = factor_covariance(rng, 9, n=60)
    alpha = 0.1
    for penalize_diagonal in (False, True):
        cov, precision, costs, n_iter = graphical_lasso(S, alpha, return_costs=True, return_n_iter=True,
                                                        penalize_diagonal=penalize_diagonal)
        assert isinstance(costs, list) and len(costs) == 1
        objective, gap = costs[0]
        assert objective == pytest.approx(
            _core.glasso_objective(np.asfortranarray(S), alpha, np.asfortranarray(precision), penalize_diagonal),
            rel=1e-14)
        # The certified gap of the returned precision, within tol * n_features.
        assert gap == pytest.approx(_core.glasso_duality_gap(np.asfortranarray(S), alpha, np.asfortranarray(precision),
                                                             penalize_diagonal), rel=1e-6, abs=1e-15)
        assert 0 <= gap <= 1e-8 * 9
    # Order of the outputs, as scikit-learn's: covariance, precision[, costs][, n_iter].
    out = graphical_lasso(S, alpha, return_costs=True)
    assert len(out) == 3 and isinstance(out[2], list)
    model = GraphicalLasso(alpha=alpha, covariance="precomputed").fit(S)
    assert model.costs_ == [(pytest.approx(out[2][0][0], rel=1e-14), model.gap_)]
    # scikit-learn's objective is metaglasso's plus 2 p log(2 pi).
    p = S.shape[0]
    sk_objective = -2.0 * log_likelihood(S, model.precision_) + p * np.log(2 * np.pi) + alpha * (
        np.abs(model.precision_).sum() - np.abs(np.diag(model.precision_)).sum())
    assert sk_objective == pytest.approx(model.costs_[0][0] + 2 * p * np.log(2 * np.pi), rel=1e-12)


def test_verbose_prints_one_summary(capsys):
    S = factor_covariance(np.random.default_rng(15), 6, n=40)
    graphical_lasso(S, 0.1, verbose=True)
    out = capsys.readouterr().out
    assert re.fullmatch(r"\[graphical_lasso\] \d+ sweeps, cost \S+, dual gap \S+, converged\n", out)
    GraphicalLasso(alpha=0.1, covariance="precomputed", verbose=1).fit(S)
    assert re.fullmatch(r"\[GraphicalLasso\] \d+ sweeps, cost \S+, dual gap \S+, converged\n", capsys.readouterr().out)
    graphical_lasso(S, 0.1)
    GraphicalLasso(alpha=0.1, covariance="precomputed").fit(S)
    assert capsys.readouterr().out == ""


# ---------------------------------------------------------------------------------------------
# convergence warnings: max_iter used up, or stopped early at working precision


def ill_conditioned_problem():
    """A nearly singular 3-factor covariance (noise 1e-2 against factors of scale 3; cond ≈ 1e7)
    with a tiny alpha: the solver stops after about 20 sweeps, its duality gap (≈ 2e-4) three
    orders of magnitude above tol * n_features = 2e-7 and no longer falling at double precision."""
    S = factor_covariance(np.random.default_rng(1), 20, n=40, noise=1e-2)
    return S, 1e-6 * float(np.mean(np.diag(S)))


def test_warning_when_stopped_early_says_max_iter_will_not_help():
    S, alpha = ill_conditioned_problem()
    early = r"did not converge: it stopped after (\d+) of max_iter={} sweeps because no further progress is possible"
    with pytest.warns(ConvergenceWarning, match=early.format(1000)) as record:
        _, precision, n_iter = graphical_lasso(S, alpha, return_n_iter=True)
    assert n_iter < 1000
    message = str(record[0].message)
    assert int(re.search(early.format(1000), message).group(1)) == n_iter
    gap = _core.glasso_duality_gap(np.asfortranarray(S), alpha, np.asfortranarray(precision), False)
    assert f"duality gap {gap:.3e} > tol * n_features = {1e-8 * 20:.3e}" in message
    assert "raising max_iter will not help: use a larger alpha or a larger tol" in message
    assert "Increase max_iter" not in message
    assert record[0].filename == __file__  # attributed to the caller
    # Indeed: 100 times more sweeps allowed, the same stop and the same answer.
    with pytest.warns(ConvergenceWarning, match=early.format(100000)):
        _, again, n_again = graphical_lasso(S, alpha, max_iter=100000, return_n_iter=True)
    assert n_again == n_iter
    assert_array_equal(again, precision)
    # ... while a larger alpha or tol converges (no warning: warnings are errors in this suite).
    graphical_lasso(S, 1e-3 * float(np.mean(np.diag(S))))
    graphical_lasso(S, alpha, tol=1e-4)
    # The estimator warns the same, and records the state.
    with pytest.warns(ConvergenceWarning, match=early.format(1000)) as record:
        model = GraphicalLasso(alpha=alpha, covariance="precomputed").fit(S)
    assert record[0].filename == __file__
    assert model.converged_ is False and model.n_iter_ == n_iter and model.gap_ == pytest.approx(gap, rel=1e-6)


def test_warning_when_max_iter_is_used_up():
    S = factor_covariance(np.random.default_rng(9), 30, n=80)
    alpha = 0.02 * float(np.mean(np.diag(S)))
    message = (r"graphical_lasso did not converge in max_iter=2 sweeps: duality gap \S+ > tol \* n_features = "
               r"3\.000e-13\. Increase max_iter or tol\.$")
    with pytest.warns(ConvergenceWarning, match=message) as record:
        _, _, n_iter = graphical_lasso(S, alpha, tol=1e-14, max_iter=2, return_n_iter=True)
    assert n_iter == 2
    assert "no further progress" not in str(record[0].message)
    with pytest.warns(ConvergenceWarning, match=message):
        model = GraphicalLasso(alpha=alpha, tol=1e-14, max_iter=2, covariance="precomputed").fit(S)
    assert model.n_iter_ == 2 and model.converged_ is False
    # Given the sweeps, it converges (at a reachable tol).
    graphical_lasso(S, alpha, tol=1e-10)


# ---------------------------------------------------------------------------------------------
# without scikit-learn


def test_without_sklearn_the_builtin_protocol_is_the_same():
    # In a fresh interpreter where scikit-learn cannot be imported: metaglasso imports, and
    # GraphicalLasso has the same parameters, repr, errors and results.
    X = factor_data(np.random.default_rng(16), 40, 5, shift=1.0)
    model = GraphicalLasso(alpha=0.05, mode="lars").fit(X)
    long = GraphicalLasso(alpha=0.1, assume_centered=True, covariance="precomputed", enet_tol=1e-5, max_iter=50,
                          mode="lars", tol=1e-3)
    try:
        GraphicalLasso().set_params(beta=1)
    except ValueError as exc:
        invalid = str(exc)
    code = textwrap.dedent(
        f"""
        import json, sys, warnings
        warnings.simplefilter("error")
        sys.modules["sklearn"] = None  # importing scikit-learn fails
        import numpy as np
        import metaglasso
        from metaglasso import GraphicalLasso
        from metaglasso._glasso_estimator import _EstimatorBase, _NotFittedError
        assert GraphicalLasso.__mro__[1] is _EstimatorBase
        assert not any(name.startswith("sklearn") for name in sys.modules if sys.modules[name] is not None)
        X = np.array(json.loads(sys.stdin.read()))
        model = GraphicalLasso(alpha=0.05, mode="lars").fit(X)
        out = {{"repr": [repr(GraphicalLasso()), repr(model), repr(GraphicalLasso(alpha=0.1, assume_centered=True,
                         covariance="precomputed", enet_tol=1e-5, max_iter=50, mode="lars", tol=1e-3))],
               "params": model.get_params(), "precision": model.precision_.tolist(), "score": model.score(X)}}
        try:
            GraphicalLasso().set_params(beta=1)
        except ValueError as exc:
            out["invalid"] = str(exc)
        try:
            GraphicalLasso().score(X)
        except _NotFittedError as exc:
            assert isinstance(exc, ValueError) and isinstance(exc, AttributeError)
            out["not_fitted"] = str(exc)
        copy = type(model)(**model.get_params())
        assert copy.get_params() == model.get_params() and not hasattr(copy, "precision_")
        print(json.dumps(out))
        """
    )
    proc = subprocess.run([sys.executable, "-c", code], input=json.dumps(X.tolist()), capture_output=True, text=True,
                          check=True)
    out = json.loads(proc.stdout)
    assert out["repr"] == [repr(GraphicalLasso()), repr(model), repr(long)]
    params = model.get_params()
    assert out["params"] == {**params, "eps": float(params["eps"])}
    assert_array_equal(np.array(out["precision"]), model.precision_)
    assert out["score"] == model.score(X)
    assert out["invalid"] == invalid
    assert out["not_fitted"].startswith("This GraphicalLasso instance is not fitted yet")


def test_builtin_base_matches_sklearn_base_in_process():
    # _EstimatorBase against BaseEstimator on the same class body.
    body = {k: v for k, v in vars(GraphicalLasso).items() if k not in ("__dict__", "__weakref__")}
    Builtin = type("GraphicalLasso", (_EstimatorBase,), body)
    for params in ({}, {"alpha": 0.5}, {"alpha": np.nan}, {"tol": 1e-3, "max_iter": 7, "verbose": 2},
                   {"alpha": 0.1, "assume_centered": True, "covariance": "precomputed", "enet_tol": 1e-5,
                    "max_iter": 50, "mode": "lars", "tol": 1e-3, "penalize_diagonal": True, "verbose": True}):
        a, b = Builtin(**params), GraphicalLasso(**params)
        assert repr(a) == repr(b)
        assert a.get_params() == b.get_params() or params.get("alpha") is np.nan
        assert a.set_params(alpha=0.2).get_params(deep=False) == b.set_params(alpha=0.2).get_params(deep=False)
    with pytest.raises(ValueError, match=re.escape("Invalid parameter 'x' for estimator GraphicalLasso(). Valid "
                                                   "parameters are: ['alpha', 'assume_centered', 'covariance',")):
        Builtin().set_params(x=1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        X = factor_data(np.random.default_rng(17), 30, 4)
        assert_array_equal(Builtin(alpha=0.1).fit(X).precision_, GraphicalLasso(alpha=0.1).fit(X).precision_)


def test_import_metaglasso_does_not_import_sklearn():
    # The estimator's module, which imports scikit-learn (about a second), loads on first use only.
    code = ("import sys, metaglasso; assert 'sklearn' not in sys.modules, 'imported'; "
            "metaglasso.GraphicalLasso; assert 'sklearn' in sys.modules; print('ok')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "ok"
