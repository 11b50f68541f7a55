"""Command line: ``python -m solvers.run CASE.yaml [--oracle NAME ...] [--set key=value ...]``.

Exit status:
  0  success
  1  the run blew up (NaN/Inf); the frames written so far are kept
  2  bad input: one line on stderr naming the problem; nothing is written or overwritten
  3  stopped by SIGINT/SIGTERM: the current step was finished, its frame and a checkpoint written;
     continue with ``--resume``
  128 + signal number  a second signal aborted at once; the file keeps every completed frame
"""
from __future__ import annotations

import argparse
import os
import platform
import signal
import subprocess
import sys
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import numpy as np
import torch
import yaml

from oracles import ScoreOracle, SettingsError, build_oracle, parse_oracle_settings
from solvers.case import Problem, build_problem, read_case
from solvers.checkpoint import Checkpoint, case_differences, default_path, truncate_frames
from solvers import distributed
from solvers.compare import format_table, summarize
from solvers.output import NetCDFWriter
from solvers.resources import check_resources
from solvers.simulation import BlowUp, Control, FrameRecorder, Stopped, simulate

EXIT_BLOWUP, EXIT_USAGE, EXIT_STOPPED = 1, 2, 3


def package_version() -> str:
    try:
        return metadata.version("landau-particles")
    except metadata.PackageNotFoundError:
        return "0+unknown"


def git_revision() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5,
                             cwd=Path(__file__).resolve().parent)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True,
                               text=True, timeout=5, cwd=Path(__file__).resolve().parent).stdout.strip()
        return out.stdout.strip() + ("-dirty" if dirty else "") if out.returncode == 0 else "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


@dataclass
class Run:
    problem: Problem
    oracle: ScoreOracle
    path: Path
    resume: Checkpoint | None = None


def plan_runs(case_path: str, overrides: list[str], oracle_names: list[str], out: str | None = None,
              device: str | None = None, resume: str | bool | None = None) -> list[Run]:
    """Validate everything (case, oracles, outputs, checkpoints, resources) before anything is written."""
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
        parse_oracle_settings(spec, f"--oracle {name}" if oracle_names else "oracle")
        specs.append(spec)
    if isinstance(resume, str) and len(specs) > 1:
        raise SettingsError("--resume: give no checkpoint path when several oracles run")
    base = Path(case["output"]["path"])
    runs = []
    for spec in specs:
        path = base if len(specs) == 1 else base.with_name(f"{base.stem}_{spec['kind']}{base.suffix}")
        resolved = {**case, "oracle": dict(spec), "output": {**case["output"], "path": str(path)}}
        problem = build_problem(resolved)
        oracle = build_oracle(spec, problem.oracle_context())
        check_writable(path)
        checkpoint = None
        if resume:
            checkpoint = Checkpoint.load(resume if isinstance(resume, str) else default_path(path))
            changed = case_differences(checkpoint.case, problem.case)
            if changed:
                raise SettingsError(f"--resume: the case differs from the checkpoint's in {', '.join(changed)}")
            if not path.exists():
                raise SettingsError(f"--resume: output file {path} is missing")
        problem_frames = problem.steps // problem.case["output"]["every"] + 2
        reason = check_resources(problem.n, problem.dim, problem.dtype, problem.device,
                                 problem.case["time"]["integrator"], spec["kind"], problem_frames, path)
        if reason:
            raise SettingsError(reason)
        runs.append(Run(problem, oracle, path, checkpoint))
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
            "oracle": run.oracle.name, "package_version": package_version(), "git_revision": git_revision(),
            "seed": p.case["seed"], "torch_version": torch.__version__, "numpy_version": np.__version__,
            "python_version": platform.python_version(), "device": str(p.device),
            "dtype": str(p.dtype).removeprefix("torch."), "threads": torch.get_num_threads()}


def execute(run: Run, control: Control, progress: bool) -> tuple[int, str]:
    """Run (or resume) one case; return (exit status, message)."""
    p = run.problem
    if not distributed.is_writer():         # torchrun rank > 0: same loop, writes nothing
        return execute_replica(run, control)
    if run.resume is not None:
        truncate_frames(run.path, run.resume.frames)
        writer = NetCDFWriter.append(run.path)
    else:
        writer = NetCDFWriter(run.path, p.n, p.dim, p.dtype, provenance(run), p.is_landau,
                              p.covariance_law is not None)
    try:
        wall = simulate(p, run.oracle, FrameRecorder(p, writer), control, progress, run.resume)
        if run.resume is not None:
            wall += float(writer.ds.getncattr("wall_time_s")) if "wall_time_s" in writer.ds.ncattrs() else 0.0
        writer.ds.setncatts({"wall_time_s": wall, "status": "complete",
                             "oracle_settings": yaml.safe_dump(run.oracle.describe(), sort_keys=False)})
        return 0, f"wrote {run.path} ({writer.frames} frames, {wall:.1f} s)"
    except BlowUp as exc:
        writer.ds.setncatts({"status": f"failed: {exc}"})
        return EXIT_BLOWUP, f"error: {exc}; kept {writer.frames} frames in {run.path}"
    except Stopped as exc:
        writer.ds.setncatts({"status": f"stopped: {exc}"})
        return EXIT_STOPPED, f"{exc}; {writer.frames} frames in {run.path}; continue with --resume"
    finally:
        writer.close()


def execute_replica(run: Run, control: Control) -> tuple[int, str]:
    """A non-writing rank of a distributed run: the same loop, no file and no checkpoint; it
    stops with rank 0 (``control.agree``) when any rank received SIGINT/SIGTERM."""
    try:
        simulate(run.problem, run.oracle, FrameRecorder(run.problem, None), control, False, run.resume)
    except BlowUp as exc:
        return EXIT_BLOWUP, str(exc)
    except Stopped as exc:
        return EXIT_STOPPED, str(exc)
    return 0, ""


class SignalHandler:
    """First SIGINT/SIGTERM: request a stop at the next step boundary; second: abort at once."""

    def __init__(self, control: Control) -> None:
        self.control = control

    def __call__(self, signum: int, frame: object) -> None:
        if self.control.stop_requested:
            raise SystemExit(128 + signum)
        self.control.stop_requested = True
        print(f"\nreceived {signal.Signals(signum).name}: finishing the current step "
              "(send again to abort at once)", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m solvers.run", description="Run a particle-solver case file.")
    parser.add_argument("case", help="YAML case file")
    parser.add_argument("--oracle", action="append", default=[], metavar="NAME",
                        help="score oracle to use (repeat to compare several; one output file each)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a case setting, e.g. --set particles=500 --set time.end=1")
    parser.add_argument("--out", help="output NetCDF path (overrides output.path)")
    parser.add_argument("--device", choices=["auto", "cpu", "cuda"], help="override the case's device")
    parser.add_argument("--resume", nargs="?", const=True, metavar="CHECKPOINT",
                        help="continue from a checkpoint (default: OUTPUT.ckpt beside the output file)")
    parser.add_argument("--print-case", action="store_true", help="print the resolved case and exit")
    parser.add_argument("--quiet", action="store_true", help="no progress bar and no summary")
    args = parser.parse_args(argv)
    distributed.setup(args.device)          # under torchrun: join the process group
    try:
        runs = plan_runs(args.case, args.set, args.oracle, args.out, args.device, args.resume)
    except SettingsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if args.print_case:
        for run in runs:
            print(yaml.safe_dump(run.problem.case, sort_keys=False), end="")
        return 0
    status = 0
    with distributed.scope():               # under torchrun: pair sums shard their rows
        for run in runs:
            every = run.problem.case["output"]["checkpoint_every"]
            control = Control(checkpoint_path=default_path(run.path) if distributed.is_writer() else None,
                              checkpoint_every=every, agree=distributed.any_rank)
            handler = SignalHandler(control)
            previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
            try:
                code, message = execute(run, control, progress=not args.quiet and sys.stderr.isatty())
            finally:
                for s, h in previous.items():
                    signal.signal(s, h)
            if distributed.is_writer():
                print(message, file=sys.stderr if code else sys.stdout)
            status = status or code
            if code == EXIT_STOPPED:
                break
    if not args.quiet and distributed.is_writer():
        print(format_table([summarize(r.path) for r in runs if r.path.exists()]))
    return status


if __name__ == "__main__":
    sys.exit(main())
