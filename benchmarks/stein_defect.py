"""Empirical Stein defect of each oracle's score: what drives the covariance error of a linear
Fokker-Planck (Ornstein-Uhlenbeck) particle run.

    .venv/bin/python benchmarks/stein_defect.py [--n 2000] [--var 0.1813] [--seeds 6]
        [--oracle blob --oracle discoformer --oracle discoformer:weights=PATH ...]

For dX_p/dt = -X_p - s(X_p) (``cases/fp_ou.yaml``: b(x) = -x, D = 1) the particles' second
moment obeys exactly

    dC/dt = -2 C - (M + M^T),   M = (1/n) sum_p s(X_p) X_p^T,

and the exact score satisfies Stein's identity E[s(X) X^T] = -I, so the covariance error grows at
the rate of the defect D = M + M^T + 2 I; its trace tr D = (2/n) sum_p s_p . X_p + 2 d is the
printed number (0 for a score that obeys the identity; > 0: the score is too weak on average,
the cloud spreads too slowly). The samples are i.i.d. N(0, var I) in d = 2 (var: the case's initial
variance; every oracle here sets its bandwidth or whitening from the sample, so var does not
change the numbers), so this measures the estimator on independent samples; the particles of a
deterministic run are not independent after the first steps (blob's are markedly not).
Also printed: the relative score error sum |s - s*|^2 / sum |s*|^2. Not part of the test run.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from oracles.registry import OracleContext, build_oracle  # noqa: E402
from solvers.case import parse_oracle_spec  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=2000)
    p.add_argument("--dim", type=int, default=2)
    p.add_argument("--var", type=float, default=0.18126924692201818)
    p.add_argument("--seeds", type=int, default=6)
    p.add_argument("--oracle", action="append", help="NAME or NAME:key=value,... (as solvers.run)")
    args = p.parse_args()
    torch.set_num_threads(1)
    specs = args.oracle or ["gaussian", "blob", "kde", "discoformer"]
    print("| oracle | tr D (mean ± sd over seeds) | rel. score error |\n|---|---:|---:|")
    for text in specs:
        spec, trace, err = parse_oracle_spec(text), [], []
        for seed in range(args.seeds):
            g = torch.Generator().manual_seed(seed)
            x = torch.randn(args.n, args.dim, generator=g, dtype=torch.float64) * args.var ** 0.5
            oracle = build_oracle(spec, OracleContext(dim=args.dim, generator=torch.Generator().manual_seed(seed)))
            s = oracle.score(x, 0.0)
            trace.append((2 * (s * x).sum(-1).mean() + 2 * args.dim).item())
            err.append(((s + x / args.var).pow(2).sum() / (x / args.var).pow(2).sum()).item())
        t = torch.tensor(trace)
        print(f"| {text} | {t.mean():+.4f} ± {t.std():.4f} | {sum(err) / len(err):.4f} |")


if __name__ == "__main__":
    main()
