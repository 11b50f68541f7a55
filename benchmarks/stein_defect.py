"""Empirical Stein defect of each oracle's score: what drives the covariance error of a linear
Fokker-Planck (Ornstein-Uhlenbeck) particle run.

    .venv/bin/python benchmarks/stein_defect.py [--n 2000] [--dim 2] [--var 0.1813] [--seeds 6]
        [--shape iso --shape diag --shape spd]
        [--oracle blob --oracle discoformer --oracle discoformer:weights=PATH ...]

For dX_p/dt = -X_p - s(X_p) (``cases/fp_ou.yaml``: b(x) = -x, D = 1) the particles' second
moment obeys exactly

    dC/dt = -2 C - (N + N^T),   N = (1/n) sum_p s(X_p) (X_p - m)^T,   mean drift -(1/n) sum_p s_p,

and the exact score satisfies Stein's identities E[s] = 0 and E[s (X - m)^T] = -I, so the
covariance error grows at the rate of the defect D = N + N^T + 2I (a matrix: on an anisotropic
sample its off-diagonal part matters as much as its trace). Printed per oracle: tr D (0 for a
score that obeys the identity; > 0: the score is too weak on average, the cloud spreads too
slowly), the largest entry of |D| and of |mean s| (the Euclidean identities that
``oracles/discoformer/stein.py`` enforces to rounding), and the relative score error
sum |s - s*|^2 / sum |s*|^2. The samples are i.i.d. N(0, var S) with ``--shape``
``iso`` (S = I), ``diag`` (S = diag(4, 1, ..., 1)) or ``spd`` (S a random SPD matrix of condition
number 100 in a random frame, fixed per seed); var is the case's initial variance (every oracle
here sets its bandwidth or whitening from the sample, so var does not change the numbers). This
measures the estimator on independent samples; the particles of a deterministic run are not
independent after the first steps (blob's are markedly not). Not part of the test run.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from oracles.registry import OracleContext, build_oracle  # noqa: E402
from solvers.case import parse_oracle_spec  # noqa: E402


def shape_matrix(shape: str, d: int, g: torch.Generator) -> torch.Tensor:
    """S (d, d): the covariance of the sample up to the factor var."""
    if shape == "iso":
        return torch.eye(d, dtype=torch.float64)
    if shape == "diag":
        return torch.diag(torch.tensor([4.0] + [1.0] * (d - 1), dtype=torch.float64))
    if shape == "spd":
        q, _ = torch.linalg.qr(torch.randn(d, d, generator=g, dtype=torch.float64))
        return (q * torch.logspace(-1, 1, d, dtype=torch.float64)) @ q.T
    raise ValueError(f"unknown shape {shape!r} (iso, diag, spd)")


def defects(x: torch.Tensor, s: torch.Tensor) -> tuple[float, float, float]:
    """(tr D, max |D|, max |mean s|) with D = N + N^T + 2I, N = (1/n) sum_p s_p (X_p - m)^T."""
    n, d = x.shape
    N = s.T @ (x - x.mean(0)) / n
    D = N + N.T + 2 * torch.eye(d, dtype=x.dtype)
    return torch.trace(D).item(), D.abs().max().item(), s.mean(0).abs().max().item()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=2000)
    p.add_argument("--dim", type=int, default=2)
    p.add_argument("--var", type=float, default=0.18126924692201818)
    p.add_argument("--seeds", type=int, default=6)
    p.add_argument("--shape", action="append", help="iso, diag or spd (repeatable; default all three)")
    p.add_argument("--oracle", action="append", help="NAME or NAME:key=value,... (as solvers.run)")
    args = p.parse_args()
    torch.set_num_threads(1)
    specs = args.oracle or ["gaussian", "blob", "kde", "discoformer"]
    print("| sample | oracle | tr D (mean ± sd over seeds) | max \\|D\\| | max \\|mean s\\| | rel. score error |\n"
          "|---|---|---:|---:|---:|---:|")
    for shape in args.shape or ["iso", "diag", "spd"]:
        for text in specs:
            spec, rows = parse_oracle_spec(text), []
            for seed in range(args.seeds):
                g = torch.Generator().manual_seed(seed)
                C = args.var * shape_matrix(shape, args.dim, g)
                x = torch.randn(args.n, args.dim, generator=g, dtype=torch.float64) @ torch.linalg.cholesky(C).T
                oracle = build_oracle(spec, OracleContext(dim=args.dim, generator=torch.Generator().manual_seed(seed)))
                s, exact = oracle.score(x, 0.0), -x @ torch.linalg.inv(C)
                rows.append((*defects(x, s), ((s - exact).pow(2).sum() / exact.pow(2).sum()).item()))
            t = torch.tensor(rows, dtype=torch.float64)
            print(f"| {shape} | {text} | {t[:, 0].mean():+.4f} ± {t[:, 0].std():.4f} | {t[:, 1].max():.1e} "
                  f"| {t[:, 2].max():.1e} | {t[:, 3].mean():.4f} |", flush=True)


if __name__ == "__main__":
    main()
