"""Command line: ``python -m solvers.run CASE.yaml [--oracle NAME ...] [--set key=value ...]``.

Exit status: 0 success; 1 the run blew up (NaN/Inf; frames written so far are kept);
2 bad input (one line on stderr naming the problem; nothing written).
"""
from __future__ import annotations

import argparse
import os
import platform
import sys
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import numpy as np
import torch
import yaml

from oracles import ScoreOracle, SettingsError, build_oracle, parse_oracle_settings
from solvers.case import Problem, build_problem, read_case
from solvers.compare import format_table, summarize
from solvers.output import NetCDFWriter
from solvers.simulation import BlowUp, FrameRecorder, simulate

EXIT_BLOWUP, EXIT_USAGE = 1, 2


def package_version() -> str:
    try:
        return metadata.version("landau-particles")
    except metadata.PackageNotFoundError:
        return "0+unknown"


@dataclass
class Run:
    problem: Problem
    oracle: ScoreOracle
    path: Path


def plan_runs(case_path: str, overrides: list[str], oracle_names: list[str], out: str | None,
              device: str | None) -> list[Run]:
    """Validate everything (case, oracles, output paths) before anything is written."""
    overrides = list(overrides)
    if device:
        overrides.append(f"device={device}")
    if out:
        overrides.append(f"output.path={out}")
    case = read_case(case_path, overrides)
    if len(set(oracle_names)) != len(oracle_names):
        raise SettingsError("--oracle: the same oracle is named twice")
    specs = []
    for name in oracle_names or [case["oracle"]["kind"]]:
        spec = case["oracle"] if name == case["oracle"]["kind"] else {"kind": name}
        cls, _ = parse_oracle_settings(spec, f"--oracle {name}" if oracle_names else "oracle")
        specs.append(spec)
    base = Path(case["output"]["path"])
    runs = []
    for spec in specs:
        resolved = {**case, "oracle": dict(spec)}
        path = base if len(specs) == 1 else base.with_name(f"{base.stem}_{spec['kind']}{base.suffix}")
        resolved["output"] = {**case["output"], "path": str(path)}
        problem = build_problem(resolved)
        oracle = build_oracle(spec, problem.oracle_context())
        check_writable(path)
        runs.append(Run(problem, oracle, path))
    return runs


def check_writable(path: Path) -> None:
    parent = path.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SettingsError(f"output.path: cannot create directory {parent} ({exc.strerror})") from None
    if path.is_dir() or not os.access(parent, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise SettingsError(f"output.path: cannot write {path}")


def provenance(run: Run) -> dict:
    p = run.problem
    return {"title": f"{p.case['name']} ({run.oracle.name})", "case": yaml.safe_dump(p.case, sort_keys=False),
            "oracle": run.oracle.name, "package_version": package_version(), "seed": p.case["seed"],
            "torch_version": torch.__version__, "numpy_version": np.__version__,
            "python_version": platform.python_version(), "device": str(p.device),
            "dtype": str(p.dtype).removeprefix("torch."), "threads": torch.get_num_threads()}


def execute(run: Run, progress: bool) -> tuple[int, str]:
    """Run one case; return (exit status, message)."""
    p = run.problem
    writer = NetCDFWriter(run.path, p.n, p.dim, p.dtype, provenance(run), p.is_landau,
                          p.covariance_law is not None)
    try:
        wall = simulate(p, run.oracle, FrameRecorder(p, writer), p.case["output"]["every"], progress)
        writer.ds.setncatts({"wall_time_s": wall, "status": "complete",
                             "oracle_settings": yaml.safe_dump(run.oracle.describe(), sort_keys=False)})
        return 0, f"wrote {run.path} ({writer.frames} frames, {wall:.1f} s)"
    except BlowUp as exc:
        writer.ds.setncatts({"status": f"failed: {exc}"})
        return EXIT_BLOWUP, f"error: {exc}; kept {writer.frames} frames in {run.path}"
    finally:
        writer.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m solvers.run", description="Run a particle-solver case file.")
    parser.add_argument("case", help="YAML case file")
    parser.add_argument("--oracle", action="append", default=[], metavar="NAME",
                        help="score oracle to use (repeat to compare several; one output file each)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a case setting, e.g. --set particles=500 --set time.end=1")
    parser.add_argument("--out", help="output NetCDF path (overrides output.path)")
    parser.add_argument("--device", choices=["auto", "cpu", "cuda"], help="override the case's device")
    parser.add_argument("--quiet", action="store_true", help="no progress bar and no summary")
    args = parser.parse_args(argv)
    try:
        runs = plan_runs(args.case, args.set, args.oracle, args.out, args.device)
    except SettingsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    status = 0
    for run in runs:
        code, message = execute(run, progress=not args.quiet and sys.stderr.isatty())
        print(message, file=sys.stderr if code else sys.stdout)
        status = status or code
    if not args.quiet:
        print(format_table([summarize(r.path) for r in runs if r.path.exists()]))
    return status


if __name__ == "__main__":
    sys.exit(main())
