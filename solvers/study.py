"""Parameter sweeps: ``python -m solvers.study --cases A.yaml B.yaml --oracles blob sbtm
--particles 500 1000 --seeds 0 1 2 --out results/covariance``.

Runs every (case, oracle, n, seed), one NetCDF file each under ``--workdir`` (a completed file is
reused, so an interrupted study continues where it stopped), then writes ``table.md`` (mean and
spread over seeds of the final covariance error against the exact law, or of the distance to the
equilibrium covariance where no law exists, plus wall time) and one Fig.-11-style figure per case.
"""
from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np
import xarray as xr

from oracles import SettingsError
from solvers.compare import summarize
from solvers.figures import covariance_figure
from solvers.api import execute
from solvers.run import plan_runs


def completed(path: Path) -> bool:
    try:
        with xr.open_dataset(path) as ds:
            return ds.attrs.get("status") == "complete"
    except (OSError, ValueError):
        return False


def run_one(case: str, oracle: str, n: int, seed: int, path: Path, extra: list[str]) -> None:
    if completed(path):
        return
    (run,) = plan_runs(case, [f"particles={n}", f"seed={seed}", *extra], [oracle], out=str(path))
    result = execute(run)
    print(result.message, flush=True)
    if result.status:
        raise RuntimeError(result.message)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m solvers.study", description=__doc__.splitlines()[0])
    parser.add_argument("--cases", nargs="+", required=True)
    parser.add_argument("--oracles", nargs="+", required=True)
    parser.add_argument("--particles", nargs="+", type=int, required=True)
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override for every run")
    parser.add_argument("--workdir", default="out/study", help="where the NetCDF files go")
    parser.add_argument("--out", default="results/covariance", help="where table.md and figures go")
    parser.add_argument("--figure-n", type=int, help="n of the runs drawn in the figures (default: largest)")
    args = parser.parse_args(argv)
    work, out = Path(args.workdir), Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows: dict[tuple[str, str, int], list[dict]] = defaultdict(list)
    try:
        for case in args.cases:
            for oracle in args.oracles:
                for n in args.particles:
                    for seed in args.seeds:
                        path = work / f"{Path(case).stem}_{oracle}_n{n}_s{seed}.nc"
                        run_one(case, oracle, n, seed, path, args.set)
                        rows[(Path(case).stem, oracle, n)].append(summarize(path))
    except SettingsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    lines = ["| case | oracle | n | seeds | final cov. error vs exact law (mean ± std) | "
             "distance to equilibrium cov. (mean ± std) | energy drift (mean) | wall s (mean) |",
             "|---|---|---|---|---|---|---|---|"]
    for (case, oracle, n), rs in rows.items():
        err = np.array([r["cov_err_final"] for r in rs])
        eq = np.array([r["eq_dist_final"] for r in rs])
        ms = lambda a: "n/a" if np.isnan(a).all() else f"{a.mean():.4f} ± {a.std():.4f}"  # noqa: E731
        lines.append(f"| {case} | {oracle} | {n} | {len(rs)} | {ms(err)} | {ms(eq)} | "
                     f"{np.mean([r['energy_drift'] for r in rs]):.2e} | {np.mean([r['wall_s'] for r in rs]):.1f} |")
    (out / "table.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    fig_n = args.figure_n or max(args.particles)
    for case in args.cases:
        stem = Path(case).stem
        files = [work / f"{stem}_{o}_n{fig_n}_s{args.seeds[0]}.nc" for o in args.oracles]
        covariance_figure([f for f in files if f.exists()], out / f"{stem}_n{fig_n}.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
