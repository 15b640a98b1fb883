"""Speed and scale: the exact data-span compression, the per-dataset representation, covariance
input and memory."""

import resource
import warnings

import numpy as np
import pytest

from metaglasso import ConvergenceWarning, MetaGraphicalLasso, _core
from metaglasso import reference as ref
from metaglasso.datasets import make_synthetic

TIGHT = dict(tol=1e-12, max_iter=2000)


@pytest.fixture(scope="module")
def wide():
    """sum N_k = 150 < V = 300: the compressed path applies."""
    Xs, _ = make_synthetic(300, [40, 60, 50], 3, 4, random_state=3)
    return Xs


def _span_basis(Xs):
    """Orthonormal basis (V, r) of the span of the centred data, by SVD."""
    F = np.hstack([(X - X.mean(0)).T for X in Xs])
    U, s, _ = np.linalg.svd(F, full_matrices=False)
    return U[:, s > 1e-10 * s[0]]


def _polar(Z):
    P, _, Qt = np.linalg.svd(Z, full_matrices=False)
    return P @ Qt


def test_compressed_and_uncompressed_lbfgs_give_the_same_fit(wide):
    kw = dict(n_components=4, alpha=0.1, **TIGHT)
    a = MetaGraphicalLasso(**kw).fit(wide)
    b = MetaGraphicalLasso(compress=False, **kw).fit(wide)
    assert a.compression_rank_ == 150 - 3  # centring removes one direction per dataset
    assert b.compression_rank_ is None
    assert a.converged_ and b.converged_
    np.testing.assert_allclose(a.components_, b.components_, rtol=0, atol=1e-8)
    assert a.objective_ == pytest.approx(b.objective_, rel=1e-10)
    np.testing.assert_allclose(a.precisions_, b.precisions_, rtol=0, atol=1e-8 * np.abs(b.precisions_).max())
    np.testing.assert_allclose(a.noise_variances_, b.noise_variances_, rtol=1e-10)
    np.testing.assert_allclose(a.components_ @ a.components_.T, np.eye(4), atol=1e-13)


def test_compressed_fit_at_rho_zero_finds_the_same_subspace(wide):
    """At rho = 0 the objective is invariant under rotations inside span D, so D is compared as a subspace."""
    kw = dict(n_components=4, alpha=0.0, **TIGHT)
    a = MetaGraphicalLasso(**kw).fit(wide)
    b = MetaGraphicalLasso(compress=False, **kw).fit(wide)
    assert a.compression_rank_ is not None
    Pa, Pb = a.components_.T @ a.components_, b.components_.T @ b.components_
    np.testing.assert_allclose(Pa, Pb, rtol=0, atol=1e-8)
    assert a.objective_ == pytest.approx(b.objective_, rel=1e-10)


def test_in_span_given_start_gives_the_same_fit(wide):
    """Any start inside the span: the compressed fit follows the uncompressed one."""
    B = _span_basis(wide)
    rng = np.random.default_rng(0)
    D0 = _polar(B @ rng.standard_normal((B.shape[1], 4)))
    kw = dict(n_components=4, alpha=0.05, init=D0.T, **TIGHT)
    a = MetaGraphicalLasso(**kw).fit(wide)
    b = MetaGraphicalLasso(compress=False, **kw).fit(wide)
    assert a.compression_rank_ is not None and b.compression_rank_ is None
    np.testing.assert_allclose(a.components_, b.components_, rtol=0, atol=1e-8)
    assert a.objective_ == pytest.approx(b.objective_, rel=1e-10)


def test_random_start_is_projected_into_the_span(wide):
    """init='random' compressed = uncompressed from polar(B Bᵀ D_random)."""
    B = _span_basis(wide)
    D_rand = _core.random_initial_projection(300, 4, 5)
    D_in = _polar(B @ (B.T @ D_rand))
    kw = dict(n_components=4, alpha=0.05, **TIGHT)
    a = MetaGraphicalLasso(init="random", random_state=5, **kw).fit(wide)
    b = MetaGraphicalLasso(init=D_in.T, compress=False, **kw).fit(wide)
    assert a.compression_rank_ is not None
    np.testing.assert_allclose(a.components_, b.components_, rtol=0, atol=1e-8)
    # the result lies in the span of the data
    D = a.components_.T
    assert np.linalg.norm(D - B @ (B.T @ D)) < 1e-10


def test_start_orthogonal_to_the_span_is_rejected(wide):
    B = _span_basis(wide)
    rng = np.random.default_rng(1)
    Z = rng.standard_normal((300, 4))
    D0 = _polar(Z - B @ (B.T @ Z))
    with pytest.raises(ValueError, match="orthogonal to the span of the centred data"):
        MetaGraphicalLasso(n_components=4, init=D0.T).fit(wide)


def test_compressed_pca_start_equals_the_uncompressed_one(wide):
    D_fast = _core.pca_initial_projection(wide, 6, compress=True)
    D_full = _core.pca_initial_projection(wide, 6, compress=False)
    np.testing.assert_allclose(D_fast, D_full, rtol=0, atol=1e-9)
    np.testing.assert_allclose(D_fast, ref.pca_initial_projection(wide, 6), rtol=0, atol=1e-9)
    for j in range(6):
        assert D_fast[np.argmax(np.abs(D_fast[:, j])), j] > 0


def test_adam_and_forced_covariances_are_not_compressed(wide):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        adam = MetaGraphicalLasso(n_components=4, alpha=0.1, solver="adam", max_iter=3).fit(wide)
    assert adam.compression_rank_ is None
    cov = MetaGraphicalLasso(n_components=4, alpha=0.1, representation="covariance").fit(wide)
    assert cov.compression_rank_ is None and cov.representations_ == ["covariance"] * 3


def test_compressed_fits_do_not_depend_on_the_thread_count(wide):
    a = MetaGraphicalLasso(n_components=4, alpha=0.1, n_threads=1).fit(wide)
    b = MetaGraphicalLasso(n_components=4, alpha=0.1, n_threads=2).fit(wide)
    assert a.compression_rank_ == b.compression_rank_ is not None
    np.testing.assert_array_equal(a.components_, b.components_)
    assert a.objective_ == b.objective_


@pytest.fixture(scope="module")
def mixed():
    """N_k below and above V = 30: auto picks data for the first, covariance for the others."""
    Xs, _ = make_synthetic(30, [20, 50, 40], 3, 3, random_state=8)
    return Xs


def test_auto_representation_follows_the_sample_counts(mixed):
    model = MetaGraphicalLasso(n_components=3, alpha=0.05).fit(mixed)
    assert model.representations_ == ["data", "covariance", "covariance"]
    assert model.compression_rank_ is None  # sum N_k >= V


@pytest.mark.parametrize("representation", ["auto", "covariance"])
def test_every_representation_gives_the_plain_data_fit(mixed, representation):
    kw = dict(n_components=3, alpha=0.05, **TIGHT)
    plain = MetaGraphicalLasso(representation="data", **kw).fit(mixed)
    assert plain.representations_ == ["data"] * 3
    other = MetaGraphicalLasso(representation=representation, **kw).fit(mixed)
    assert other.objective_ == pytest.approx(plain.objective_, rel=1e-10)
    np.testing.assert_allclose(other.components_, plain.components_, rtol=0, atol=1e-8)


def test_fit_covariances_equals_the_data_fit(mixed):
    kw = dict(n_components=3, alpha=0.05, **TIGHT)
    plain = MetaGraphicalLasso(representation="data", **kw).fit(mixed)
    covs = np.stack([np.cov(X, rowvar=False, bias=True) for X in mixed])
    counts = [X.shape[0] for X in mixed]
    model = MetaGraphicalLasso(**kw).fit_covariances(covs, counts)
    assert model.representations_ == ["covariance"] * 3 and model.compression_rank_ is None
    assert model.objective_ == pytest.approx(plain.objective_, rel=1e-10)
    np.testing.assert_allclose(model.components_, plain.components_, rtol=0, atol=1e-8)
    np.testing.assert_array_equal(model.n_samples_, counts)
    assert model.means_ is None
    # a list of matrices and one sample count for all are accepted too; likelihoods use each
    # dataset's own mean
    again = MetaGraphicalLasso(**kw).fit_covariances(list(covs), counts)
    np.testing.assert_array_equal(again.components_, model.components_)
    assert model.score(mixed) == pytest.approx(plain.score(mixed), rel=1e-9)
    with pytest.raises(ValueError, match="fitted on covariances"):
        model.transform(mixed[0], dataset=0)
    same_n = MetaGraphicalLasso(**kw).fit_covariances(covs, 40)
    np.testing.assert_array_equal(same_n.n_samples_, [40, 40, 40])


def _cov(V=4, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((20, V))
    return np.cov(X, rowvar=False, bias=True)


def _bad_covariances():
    S = _cov()
    asym = S.copy()
    asym[0, 1] += 1e-3
    negdiag = S.copy()
    negdiag[2, 2] = -0.5
    cs = S.copy()
    cs[0, 3] = cs[3, 0] = 10 * np.sqrt(S[0, 0] * S[3, 3])
    nan = S.copy()
    nan[1, 1] = np.nan
    return [
        ([asym], 10, r"covariances\[0\] must be symmetric; got max \|S - S.T\| = 1\.000e-03"),
        ([S, negdiag], 10, r"covariances\[1\] must be positive semi-definite; got a negative diagonal entry -0.5 at 2"),
        ([cs], 10, r"covariances\[0\] must be positive semi-definite; got \|S\[0, 3\]\|"),
        ([nan], 10, r"covariances\[0\] contains NaN or infinite values"),
        ([S[:3]], 10, r"covariances\[0\] must be a square 2-D array .*got shape \(3, 4\)"),
        ([S, _cov(5)], 10, r"covariances\[1\] has shape \(5, 5\); expected \(4, 4\)"),
        (np.zeros((4, 4)), 10, r"covariances must be a 3-D array .*ndim=2"),
        ([], 10, r"covariances must contain at least one matrix"),
        ([S, S], [10], r"n_samples must be an int or hold one value per covariance \(2\); got 1"),
        ([S, S], [10, 0], r"n_samples\[1\] must be an integer >= 1; got 0"),
        ([S], 2.5, r"n_samples\[0\] must be an integer >= 1; got 2.5"),
    ]


@pytest.mark.parametrize("covariances, n_samples, match", _bad_covariances())
def test_fit_covariances_rejects_bad_input_naming_the_argument(covariances, n_samples, match):
    with pytest.raises(ValueError, match=match):
        MetaGraphicalLasso(n_components=2).fit_covariances(covariances, n_samples)


def test_bad_representation_and_compress_are_rejected(mixed):
    with pytest.raises(ValueError, match=r"representation must be one of .*'gram'"):
        MetaGraphicalLasso(n_components=2, representation="gram").fit(mixed)
    with pytest.raises(ValueError, match=r"compress must be True or False; got 'yes'"):
        MetaGraphicalLasso(n_components=2, compress="yes").fit(mixed)


def _peak_rss_bytes():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: kilobytes


@pytest.mark.parametrize("compress", [True, False])
def test_wide_fit_never_allocates_a_features_by_features_matrix(compress):
    """V = 20,000, sum N = 300: a V x V matrix would be 3.2 GB; the fit's peak stays near the input."""
    V = 20_000
    rng = np.random.default_rng(0)
    latent = rng.standard_normal((5, V))
    Xs = [rng.standard_normal((100, 5)) @ latent + 0.3 * rng.standard_normal((100, V)) for _ in range(3)]
    before = _peak_rss_bytes()
    model = MetaGraphicalLasso(n_components=5, alpha=0.1, compress=compress, max_iter=30, tol=1e-6)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(Xs)
    growth = _peak_rss_bytes() - before
    input_bytes = sum(X.nbytes for X in Xs)  # 48 MB
    assert (model.compression_rank_ is not None) == compress
    assert growth < 2 * input_bytes + 100e6 < 0.1 * V * V * 8
