"""Cost of one collision sub-step of the Vlasov-Poisson-Landau solver: blob scores per cell (one
blob oracle per cell, bandwidth from that cell's initial velocities) plus the Landau operator per
cell (Coulomb, gamma = -d), at the anchor's size (n = 1e6, M = 100 cells, d = 2, float64).

The anchor (Vilin97/Vlasov-Landau-SBTM, as quoted in issue 22) reports about 16 s per step and
448 MB on an RTX 6000 GPU. Here: wall seconds of each part on this machine's CPU cores (threads as
given), and the peak resident memory of the process.

    .venv/bin/python benchmarks/vpl_collision_step.py [--n 1000000] [--cells 100] [--threads 2]
"""
from __future__ import annotations

import argparse
import math
import os
import resource
import time

import torch

from landau.cell_collisions import CellLandau
from oracles import build_oracle
from oracles.registry import OracleContext
from solvers.cell_scores import CellScores


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--cells", type=int, default=100)
    parser.add_argument("--dim", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    L, d = 4 * math.pi, args.dim
    g = torch.Generator().manual_seed(0)
    z = torch.cat([torch.rand(args.n, 1, generator=g, dtype=torch.float64) * L,
                   torch.randn(args.n, d, generator=g, dtype=torch.float64)], 1)
    context = OracleContext(dim=d, generator=g)
    scores = CellScores(lambda: build_oracle({"kind": "blob"}, context), L, args.cells)
    operator = CellLandau(-float(d), 0.05, L, args.cells)
    load0 = os.getloadavg()
    t0 = time.perf_counter()
    scores.prepare(z, 0.0)
    t1 = time.perf_counter()
    s = scores.score(z, 0.0)
    t2 = time.perf_counter()
    U = operator.velocity(z[:, 1:], s, operator.segments(z[:, 0]))
    t3 = time.perf_counter()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"n = {args.n}, M = {args.cells}, d = {d}, float64, threads = {args.threads}, "
          f"load before {[round(x, 2) for x in load0]}, after {[round(x, 2) for x in os.getloadavg()]}")
    print(f"prepare (bandwidths per cell, once per run): {t1 - t0:.2f} s")
    print(f"blob scores per cell: {t2 - t1:.2f} s; Landau operator per cell: {t3 - t2:.2f} s; "
          f"collision sub-step (scores + operator): {t3 - t1:.2f} s (anchor: about 16 s on an RTX 6000)")
    print(f"peak resident memory of the process: {peak:.0f} MiB (anchor: 448 MB on the GPU); "
          f"|U| mean {float(U.norm(dim=1).mean()):.3g}")


if __name__ == "__main__":
    main()
