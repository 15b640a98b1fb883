"""Command line of metaglasso: ``metaglasso demo``, ``metaglasso reproduce tableN`` (or ``penalties``, ``joint``), and
``metaglasso fit``, ``select`` and ``report`` (see :mod:`metaglasso._cli`)."""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np


def _demo(args) -> int:
    from metaglasso import MetaGraphicalLasso
    from metaglasso.datasets import make_synthetic

    print(
        f"Generating K={args.n_datasets} datasets of N={args.n_samples} samples, V={args.n_features} "
        f"variables, M={args.n_components} latent factors (seed {args.seed}) ..."
    )
    Xs, truth = make_synthetic(args.n_features, args.n_samples, args.n_datasets, args.n_components,
                               random_state=args.seed)
    model = MetaGraphicalLasso(n_components=args.n_components, alpha=args.alpha, solver=args.solver,
                               n_threads=args.n_threads)
    start = time.perf_counter()
    model.fit(Xs)
    elapsed = time.perf_counter() - start
    alignment = np.linalg.svd(truth.components @ model.components_.T, compute_uv=False).sum()
    print(f"solver           {args.solver}")
    print(f"objective E      {model.objective_:.6f}")
    print(f"iterations       {model.n_iter_}  (converged: {model.converged_})")
    print(f"fit time         {elapsed:.2f} s")
    print(f"subspace match   {alignment:.4f} of {args.n_components}  (sum of singular values of D_true^T D)")
    eps_err = np.mean(np.abs(model.noise_variances_ - truth.noise_variances))
    print(f"mean |eps - eps_true|  {eps_err:.5f}")
    return 0


def _reproduce(args) -> int:
    from metaglasso._reproduce import run_table

    def log(message):
        print(message, file=sys.stderr, flush=True)

    try:
        body, _, elapsed, machine = run_table(
            args.table, trials=args.trials, trials_large=args.trials_large, features=tuple(args.features),
            samples=tuple(args.samples), seed=args.seed, n_threads=args.n_threads, budget=args.budget, log=log)
    except ValueError as exc:
        print(f"metaglasso reproduce: error: {exc}", file=sys.stderr)
        return 2
    command = " ".join(["metaglasso", *args.argv])
    text = f"{body}\n\n`{command}` — {elapsed / 60:.1f} min wall on {machine}.\n"
    print(text)
    if args.out:
        with open(args.out, "w", encoding="utf-8") as fh:
            fh.write(text)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="metaglasso", description="Meta Graphical Lasso (MGLASSO).")
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser(
        "demo",
        help="fit synthetic data like the paper's experiment and report the recovery",
        description="Generate data from the MGLASSO model as in the paper's synthetic experiment, "
        "fit it, and print the objective, iterations, time and subspace alignment.",
    )
    demo.add_argument("--n-features", type=int, default=1000, help="number of variables V (default 1000)")
    demo.add_argument("--n-samples", type=int, default=200, help="samples per dataset N (default 200)")
    demo.add_argument("--n-datasets", type=int, default=10, help="number of datasets K (default 10)")
    demo.add_argument("--n-components", "-M", type=int, default=10, help="latent factors M (default 10)")
    demo.add_argument("--alpha", type=float, default=0.09, help="L1 penalty rho (default 0.09, the paper's)")
    demo.add_argument("--solver", choices=["lbfgs", "adam"], default="lbfgs", help="optimiser (default lbfgs)")
    demo.add_argument("--seed", type=int, default=0, help="random seed of the generated data (default 0)")
    demo.add_argument("--n-threads", type=int, default=None, help="threads of the core (default: all)")
    demo.set_defaults(func=_demo)

    rep = sub.add_parser(
        "reproduce",
        help="regenerate the paper's synthetic Tables 1-4 (and the penalty experiments)",
        description="Regenerate a table of the paper's synthetic experiments (K = 10 datasets, M = 10 "
        "factors) and print it as Markdown beside the paper's values. table1: Space, Eps, Dist and KLD of "
        "MGLASSO, PCA and ICA; table2: KL divergence of the fitted observed Gaussians over M; table3: BIC "
        "over rho at M = 10; table4: BIC over M; bic: tables 3 and 4 from one grid of fits. penalties (not "
        "in the paper): edge recovery (F1) of one rho for all datasets against the sample-scaled "
        "rho_k = alpha sqrt(mean N / N_k), each chosen by BIC, on K = 3 datasets of N_k = 50, 200, 1000 "
        "(V = 100, M = 5). joint (not in the paper): edge and changed-edge recovery of the independent, "
        "fused (chain) and group penalties, each at its BIC choice, on K = 6 ordered datasets of N_k = 40 "
        "whose networks drift (V = 200, M = 10), for the full fit and given the true factors. penalties and "
        "joint take --trials, --seed, --budget, --n-threads and --out only.",
    )
    rep.add_argument("table", choices=["table1", "table2", "table3", "table4", "bic", "penalties", "joint"])
    rep.add_argument("--trials", type=int, default=None,
                     help="trials per row with V <= 1000 (default 10 for table1, 5 for the BIC tables, "
                     "200 for penalties, 25 for joint)")
    rep.add_argument("--trials-large", type=int, default=None,
                     help="trials per row with V = 10,000 (default 3 for table1, 1 for the BIC tables)")
    rep.add_argument("--features", type=int, nargs="+", default=[100, 1000, 10000], help="rows' V to run")
    rep.add_argument("--samples", type=int, nargs="+", default=[200, 1000], help="rows' N to run")
    rep.add_argument("--seed", type=int, default=0, help="seed of trial 0 (trial t uses seed + t)")
    rep.add_argument("--budget", type=float, default=None,
                     help="seconds after which no further rows (penalties, joint: trials) are started (default: none)")
    rep.add_argument("--n-threads", type=int, default=None, help="threads of the core (default: all)")
    rep.add_argument("--out", default=None, help="also write the Markdown to this file")
    rep.set_defaults(func=_reproduce)

    from metaglasso._cli import add_subcommands

    add_subcommands(sub)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
