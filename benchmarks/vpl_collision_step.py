"""Cost of one collision sub-step of the Vlasov-Poisson-Landau solver: scores per cell (any oracle
the registry builds per cell; blob by default, bandwidth per cell from that cell's initial
velocities) plus the Landau operator per cell (Coulomb, gamma = -d), by default at the anchor's
size (n = 1e6, M = 100 cells, d = 2, float64).

The anchor (Vilin97/Vlasov-Landau-SBTM, as quoted in issue 22) reports about 16 s per step and
448 MB on an RTX 6000 GPU. Here: wall seconds of each part on this machine's CPU cores, and the
peak resident memory of the process that measured it. The CPU seconds of the sub-step (all
threads of the process, ``time.process_time``) are printed beside its wall time: on a shared
machine they show how much of the wall time was spent computing.

Every configuration (oracle x threads x source tree) runs in its own subprocess, so each peak
RSS is that configuration's own; ``--baseline REV`` also measures the git revision REV (extracted
with ``git archive`` into a temporary directory, imported from there), interleaved with this tree,
so BEFORE and AFTER are timed side by side under the same load. Before timing, the compiled
kernels are compiled (or loaded from numba's cache) on the first 2000 particles, for the scores
and the operator; then ``prepare`` (bandwidths per cell; where an oracle batches the cells it
also scores the initial particles once) and ``--steps`` sub-steps are timed, the fastest reported.
A configuration that runs past ``--timeout`` seconds is reported as such.

    .venv/bin/python benchmarks/vpl_collision_step.py [--n 1000000] [--cells 100] [--threads 1 2]
        [--oracle blob] [--oracle kde ...] [--baseline REV] [--steps 1] [--timeout S] [--json FILE]
"""
from __future__ import annotations

import argparse
import json
import math
import os
import resource
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def measure(n: int, cells: int, d: int, threads: int, oracle: str, steps: int) -> dict:
    """One configuration, in this process: seconds of prepare, scores, operator; peak RSS (MiB)."""
    import torch

    import landau
    from landau.cell_collisions import CellLandau
    from oracles import build_oracle
    from oracles.registry import OracleContext, parse_oracle_settings
    from solvers.cell_scores import CellScores

    torch.set_num_threads(threads)
    cls, _ = parse_oracle_settings({"kind": oracle})
    if not getattr(cls, "per_cell", True):
        return {"oracle": oracle, "skipped": "not built per cell in this tree"}
    L = 4 * math.pi
    g = torch.Generator().manual_seed(0)
    z = torch.cat([torch.rand(n, 1, generator=g, dtype=torch.float64) * L,
                   torch.randn(n, d, generator=g, dtype=torch.float64)], 1)
    context = OracleContext(dim=d, generator=g)
    build = lambda: build_oracle({"kind": oracle}, context)  # noqa: E731
    operator = CellLandau(-float(d), 0.05, L, cells)
    warm, warm_scores = z[:2000], CellScores(build, L, cells)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)       # few particles per cell in the warm-up
        warm_scores.prepare(warm, 0.0)
        operator.velocity(warm[:, 1:], warm_scores.score(warm, 0.0), operator.segments(warm[:, 0]))
    scores = CellScores(build, L, cells)
    t0 = time.perf_counter()
    scores.prepare(z, 0.0)
    prepare = time.perf_counter() - t0
    best_s = best_u = (math.inf, math.inf)          # (wall, CPU) seconds of the fastest
    for _ in range(steps):
        t1, c1 = time.perf_counter(), time.process_time()
        s = scores.score(z, 0.0)
        t2, c2 = time.perf_counter(), time.process_time()
        U = operator.velocity(z[:, 1:], s, operator.segments(z[:, 0]))
        t3, c3 = time.perf_counter(), time.process_time()
        best_s, best_u = min(best_s, (t2 - t1, c2 - c1)), min(best_u, (t3 - t2, c3 - c2))
    return {"oracle": oracle, "n": n, "cells": cells, "d": d, "threads": threads, "prepare_s": prepare,
            "scores_s": best_s[0], "operator_s": best_u[0], "step_s": best_s[0] + best_u[0],
            "step_cpu_s": best_s[1] + best_u[1],
            "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "mean_abs_U": float(U.norm(dim=1).mean()), "batched": scores.instances is None,
            "source": str(Path(landau.__file__).resolve().parents[1])}


def run_one(tree: Path, args: argparse.Namespace, threads: int, oracle: str) -> dict:
    """:func:`measure` in a subprocess importing the package from ``tree``."""
    env = {**os.environ, "PYTHONPATH": str(tree), "OMP_NUM_THREADS": str(threads),
           "MKL_NUM_THREADS": str(threads), "NUMBA_NUM_THREADS": str(threads)}
    code = (f"import json, runpy; m = runpy.run_path({str(Path(__file__).resolve())!r}); "
            f"print('RESULT', json.dumps(m['measure']({args.n}, {args.cells}, {args.dim}, {threads}, "
            f"{oracle!r}, {args.steps})))")
    try:
        proc = subprocess.run([sys.executable, "-c", code], cwd=tree, env=env, capture_output=True, text=True,
                              timeout=args.timeout)
    except subprocess.TimeoutExpired:
        return {"oracle": oracle, "threads": threads, "error": f"ran past --timeout {args.timeout} s"}
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        return {"oracle": oracle, "threads": threads, "error": proc.stderr.strip().splitlines()[-1:]}
    return json.loads(lines[-1][len("RESULT "):])


def extract(rev: str, into: Path) -> Path:
    """The tree of git revision ``rev`` under ``into`` (git archive)."""
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", rev], check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--cells", type=int, default=100)
    parser.add_argument("--dim", type=int, default=2)
    parser.add_argument("--threads", type=int, nargs="+", default=[2])
    parser.add_argument("--oracle", action="append", help="oracle name (repeatable; default blob)")
    parser.add_argument("--steps", type=int, default=1, help="timed sub-steps per configuration (fastest reported)")
    parser.add_argument("--timeout", type=float, default=1800, help="seconds per configuration")
    parser.add_argument("--baseline", help="also measure this git revision (BEFORE), side by side")
    parser.add_argument("--json", type=Path, help="also write the records to this file")
    args = parser.parse_args()
    from oracles.registry import available
    oracles = args.oracle or ["blob"]
    unknown = [o for o in oracles if o not in available()]
    if unknown:
        print(f"error: --oracle: unknown oracle {unknown[0]!r} (one of {', '.join(available())})", file=sys.stderr)
        sys.exit(2)
    print(f"n = {args.n}, M = {args.cells}, d = {args.dim}, float64, gamma = -{args.dim}; "
          f"load average before: {[round(x, 2) for x in os.getloadavg()]}", flush=True)
    records = []
    with tempfile.TemporaryDirectory() as tmp:
        trees = [("this tree", ROOT)]
        if args.baseline:
            trees.insert(0, (f"baseline {args.baseline}", extract(args.baseline, Path(tmp))))
        for oracle in oracles:
            for threads in args.threads:
                for label, tree in trees:
                    r = {**run_one(tree, args, threads, oracle), "tree": label}
                    records.append(r)
                    if "step_s" in r:
                        print(f"{label:>18} | {oracle:>11} | threads {threads} | scores {r['scores_s']:7.2f} s | "
                              f"operator {r['operator_s']:6.2f} s | sub-step {r['step_s']:7.2f} s "
                              f"(CPU {r['step_cpu_s']:7.2f} s) | prepare {r['prepare_s']:6.2f} s | peak RSS {r['peak_rss_mib']:5.0f} MiB | "
                              f"{'batched' if r['batched'] else 'one oracle per cell'} | mean |U| "
                              f"{r['mean_abs_U']:.6g}", flush=True)
                    else:
                        print(f"{label:>18} | {oracle:>11} | threads {threads} | {r.get('skipped') or r.get('error')}",
                              flush=True)
    print(f"load average after: {[round(x, 2) for x in os.getloadavg()]} "
          "(anchor: about 16 s per step and 448 MB on an RTX 6000 GPU)")
    if args.json:
        args.json.write_text(json.dumps(records, indent=1))


if __name__ == "__main__":
    main()
