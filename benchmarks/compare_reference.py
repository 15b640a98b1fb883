"""Time the C++ core against the pure-NumPy reference on the same problem, side by side.

    python benchmarks/compare_reference.py [--n-features 200] [--n-samples 200] ...

Both fit the same data from the same start with Riemannian L-BFGS; the script prints the wall
time of each, their ratio and the objectives reached. Run it on an otherwise idle machine and
compare ratios, not absolute times.
"""

import argparse
import time

import numpy as np

from metaglasso import MetaGraphicalLasso, _core
from metaglasso import reference as ref
from metaglasso.datasets import make_synthetic


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-features", type=int, default=200)
    parser.add_argument("--n-samples", type=int, default=200)
    parser.add_argument("--n-datasets", type=int, default=10)
    parser.add_argument("--n-components", type=int, default=10)
    parser.add_argument("--alpha", type=float, default=0.09)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    Xs, _ = make_synthetic(args.n_features, args.n_samples, args.n_datasets, args.n_components, random_state=0)
    D0 = _core.pca_initial_projection(Xs, args.n_components)
    times = {"metaglasso": [], "reference": []}
    for _ in range(args.repeat):
        t = time.perf_counter()
        model = MetaGraphicalLasso(n_components=args.n_components, alpha=args.alpha, init=D0.T).fit(Xs)
        times["metaglasso"].append(time.perf_counter() - t)
        t = time.perf_counter()
        r = ref.fit_lbfgs(Xs, D0, args.alpha)
        times["reference"].append(time.perf_counter() - t)
    best = {k: min(v) for k, v in times.items()}
    print(f"V={args.n_features} N={args.n_samples} K={args.n_datasets} M={args.n_components} alpha={args.alpha}")
    print(f"metaglasso  {best['metaglasso']:.3f} s  objective {model.objective_:.10g}  iterations {model.n_iter_}")
    print(f"reference   {best['reference']:.3f} s  objective {r.objective:.10g}  iterations {r.n_iter}")
    print(f"speed-up    {best['reference'] / best['metaglasso']:.1f}x (best of {args.repeat})")
    print(f"relative objective difference {abs(model.objective_ - r.objective) / abs(r.objective):.2e}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
