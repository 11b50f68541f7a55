"""Collisional Landau damping per score oracle: the fitted damping rate against the collision
strength B (the anchor's C) with seeds, beside the collisionless root and the anchor's prediction
beta - B sqrt(2 / (9 pi)) (beta: our collisionless rate at the same resolution).

Runs ``cases/vpl_landau_damping.yaml`` at the table's size (``--particles``, ``--cells``, ``--dt``)
for every oracle x B x seed (``binary``: binary-collision Monte Carlo per cell, no score), one process each (``python -m solvers.run``, one thread), skipping
outputs that exist (rerunning resumes the matrix), then writes the per-run rows (CSV) and the
aggregated table (Markdown) into ``--out``. B = 0 runs once per seed (the operator is zero: no
oracle is used).

    python results/vlasov_poisson_landau/oracle_table.py --oracles gaussian blob kde expfam discoformer sbtm
"""
from __future__ import annotations

import argparse
import csv
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import xarray as xr

from solvers.compare import phase_space_row

CASE = "cases/vpl_landau_damping.yaml"
ANCHOR_SLOPE = math.sqrt(2 / (9 * math.pi))


def run(path: Path, oracle: str, B: float, seed: int, args: argparse.Namespace) -> None:
    if path.exists():
        return
    part = path.with_suffix(".part.nc")              # renamed when complete: a rerun skips only finished runs
    if B == 0:                                       # collisionless (equal to the collisional path at B = 0)
        method = ["--set", "equation.collisions=null", "--set", "oracle=null"]
    elif oracle == "binary":
        method = ["--set", "equation.collisions.method=binary", "--set", "oracle=null"]
    else:
        method = ["--oracle", oracle]
    cmd = [sys.executable, "-m", "solvers.run", CASE, "--quiet", *method, "--out", str(part),
           "--set", f"particles={args.particles}", "--set", f"space.cells={args.cells}",
           "--set", f"time.dt={args.dt}", "--set", "output.every=1", "--set", f"seed={seed}",
           *([] if B == 0 else ["--set", f"equation.collisions.B={B}",
                                "--set", f"equation.collisions.integrator={args.integrator}"])]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "NUMBA_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    t0 = time.time()
    done = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        print(f"FAILED {path.name}: {done.stderr.strip().splitlines()[-1:]}", flush=True)
        return
    part.rename(path)
    print(f"{path.name}: {time.time() - t0:.0f} s", flush=True)


def row(path: Path, oracle: str, B: float, seed: int) -> dict:
    r = phase_space_row(path)
    with xr.open_dataset(path) as ds:
        r["score_error_t0"] = float(ds.score_error.values[0]) if "score_error" in ds else math.nan
    return {"oracle": oracle, "B": B, "seed": seed, **r}


def aggregate(rows: list[dict], oracles: list[str], Bs: list[float]) -> str:
    beta_seed = {r["seed"]: r["rate_fit"] for r in rows if r["B"] == 0}
    beta_runs = list(beta_seed.values())
    beta = float(np.mean(beta_runs))
    omega = rows[0]["omega_theory"]
    lines = [f"Collisionless: fitted rate {beta:.4f} (mean of {len(beta_runs)} seeds, spread "
             f"{np.ptp(beta_runs):.1e}); linear root omega = {omega}.", "",
             "| oracle | B | seeds | damping rate (mean) | spread (max - min) | rate - rate(B = 0), same seed | "
             "anchor beta - B sqrt(2/(9 pi)) | score error t = 0 | energy drift | momentum drift | wall (s) |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for oracle in oracles:
        for B in Bs:
            mine = [r for r in rows if r["oracle"] == (oracle if B else "none") and r["B"] == B]
            if not mine:
                continue
            rate = np.array([r["rate_fit"] for r in mine])
            extra = np.array([r["rate_fit"] - beta_seed[r["seed"]] for r in mine])
            lines.append(
                f"| {oracle if B else '(collisionless path)'} | {B:g} | {len(mine)} | {rate.mean():.4f} | "
                f"{np.ptp(rate):.1e} | {extra.mean():+.4f} ({extra.min():+.4f} .. {extra.max():+.4f}) | "
                f"{beta - B * ANCHOR_SLOPE:.4f} | "
                f"{np.nanmean([r['score_error_t0'] for r in mine]):.2e} | "
                f"{max(r['energy_drift'] for r in mine):.1e} | {max(r['momentum_drift'] for r in mine):.1e} | "
                f"{np.mean([r['wall_s'] for r in mine]):.0f} |")
        if oracle == oracles[0]:
            Bs = [B for B in Bs if B]                # the collisionless rows once, under the first oracle
    return "\n".join(lines) + "\n"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--oracles", nargs="+", default=["gaussian", "blob", "kde", "expfam", "discoformer", "sbtm", "binary"])
    p.add_argument("--B", nargs="+", type=float, default=[0.0, 0.01, 0.05, 0.1])
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1])
    p.add_argument("--particles", type=int, default=20000)
    p.add_argument("--cells", type=int, default=32)
    p.add_argument("--dt", type=float, default=0.1)
    p.add_argument("--integrator", default="euler")
    p.add_argument("--out", type=Path, default=Path("out/vpl_oracle_table"))
    p.add_argument("--report", action="store_true", help="only tabulate the finished runs")
    args = p.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    rows = []
    for seed in args.seeds:
        for B in args.B:
            for oracle in args.oracles if B else ["none"]:
                path = args.out / f"{oracle}_B{B:g}_s{seed}.nc"
                if not args.report:
                    run(path, "gaussian" if oracle == "none" else oracle, B, seed, args)
                try:
                    rows.append(row(path, oracle, B, seed))
                except (FileNotFoundError, OSError, ValueError) as e:     # missing, being written, or unfit
                    print(f"skipped {path.name}: {type(e).__name__}", flush=True)
    with open(args.out / "rows.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    table = aggregate(rows, args.oracles, args.B)
    (args.out / "table.md").write_text(table)
    print(table)


if __name__ == "__main__":
    main()
