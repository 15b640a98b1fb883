"""The PCA start: the top-M subspace of the data, by Lanczos, ARPACK and a dense eigensolver."""

from __future__ import annotations

from ._base import Benchmark, skip
from .common import arpack_top_subspace, eigen_residual, has_span_pca, mg_pca, ref, spectrum_data

M = 20
#: ARPACK's relative tolerance, set to the residual tolerance of metaglasso's Lanczos so that
#: both stop at the same accuracy (track_residual records what each reached).
SVDS_TOL = 1e-10
#: The dense reference forms the V × V covariance; beyond this it takes minutes.
DENSE_MAX_FEATURES = 3_000


class TopSubspace(Benchmark):
    """Top-20 eigenvectors of S = XᵀX / N for centred data X (N, V) with a decaying spectrum.

    ``metaglasso``: ``pca_initial_projection`` (Lanczos on the data operator);
    ``metaglasso_span``: its data-span path (``compress=True``: a Gram pass, then Lanczos in the span);
    ``svds``: ``scipy.sparse.linalg.svds`` (ARPACK) on X, right singular vectors only;
    ``reference``: ``metaglasso.reference.pca_initial_projection`` (dense ``eigh`` of S).
    """

    params = (["500x2000", "2000x20000"], [1, 2], ["metaglasso", "metaglasso_span", "svds", "reference"])
    param_names = ["n_samples x n_features", "n_threads", "implementation"]

    def setup(self, shape, n_threads, implementation):
        n_samples, n_features = (int(v) for v in shape.split("x"))
        if implementation == "reference" and n_features > DENSE_MAX_FEATURES:
            skip(f"dense eigh of a {n_features} x {n_features} covariance takes minutes")
        if implementation == "metaglasso_span" and not has_span_pca():
            skip("this build of metaglasso has no data-span PCA path")
        self.start(n_threads)
        self.X = spectrum_data(n_samples, n_features)

    def subspace(self, n_threads, implementation):
        if implementation == "metaglasso":
            return mg_pca([self.X], M, assume_centered=True, n_threads=n_threads)
        if implementation == "metaglasso_span":
            return mg_pca([self.X], M, assume_centered=True, n_threads=n_threads, compress=True)
        if implementation == "svds":
            return arpack_top_subspace(self.X, M, SVDS_TOL)
        return ref.pca_initial_projection([self.X], M, assume_centered=True)

    def time_top_subspace(self, shape, n_threads, implementation):
        self.subspace(n_threads, implementation)

    def peakmem_top_subspace(self, shape, n_threads, implementation):
        self.subspace(n_threads, implementation)

    def track_residual(self, shape, n_threads, implementation):
        return eigen_residual(self.X, self.subspace(n_threads, implementation))

    track_residual.unit = "relative residual"
