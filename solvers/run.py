"""Command line: ``python -m solvers.run CASE.yaml [--oracle SPEC ...] [--set key=value ...]``.

A thin layer over :mod:`solvers.api`: every run (one per ``--oracle``) is validated before any is
started, then executed with a stop-on-signal tracker.

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
import re
import signal
import sys
from pathlib import Path

import yaml

from oracles import SettingsError
from solvers import distributed
from solvers.api import EXIT_STOPPED, EXIT_USAGE, Run, execute, prepare
from solvers.case import parse_oracle_spec, read_case
from solvers.checkpoint import Checkpoint, default_path, output_state
from solvers.compare import tables
from solvers.trackers import StopOnSignal


def output_suffixes(specs: list[dict]) -> list[str]:
    """Output-name suffix of each compared oracle: its kind, or with the settings it was given when
    a kind repeats (``blob:eps=0.2`` -> ``blob-eps0.2``); the very same spec twice is an error."""
    kinds = [s["kind"] for s in specs]
    out = [s["kind"] if kinds.count(s["kind"]) == 1 else
           "-".join([s["kind"], *(re.sub(r"[^A-Za-z0-9.+]", "", f"{k}{v}") for k, v in s.items() if k != "kind")])
           for s in specs]
    if len(set(out)) != len(out):
        raise SettingsError("--oracle: the same oracle (and settings) is named twice")
    return out


def plan_runs(case_path: str, overrides: list[str], oracles: list[str], out: str | None = None,
              device: str | None = None, resume: str | bool | None = None) -> list[Run]:
    """Validate everything (case, oracles, outputs, checkpoints, resources) before anything is written."""
    overrides = list(overrides) + ([f"device={device}"] if device else []) + ([f"output.path={out}"] if out else [])
    suffixes = output_suffixes([parse_oracle_spec(o) for o in oracles])
    if isinstance(resume, str) and len(oracles) > 1:
        raise SettingsError("--resume: give no checkpoint path when several oracles run")
    runs = []
    for spec, suffix in zip(oracles or [None], suffixes or [None]):
        case = read_case(case_path, overrides, oracle=spec)
        path = Path(case["output"]["path"])
        if len(oracles) > 1:
            path = path.with_name(f"{path.stem}_{suffix}{path.suffix}")
            case["output"]["path"] = str(path)
        ckpt = Path(resume) if isinstance(resume, str) else default_path(path)
        checkpoint = None
        if resume:          # a stopped comparison: finished runs stay, the stopped one resumes, the rest start
            if len(oracles) > 1 and output_state(path)[2] == "complete":
                continue
            if len(oracles) <= 1 or ckpt.exists():
                checkpoint = Checkpoint.load(ckpt)
        runs.append(prepare(case, path, resume=checkpoint, checkpoint_path=ckpt))
    return runs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m solvers.run", description="Run a particle-solver case file.")
    parser.add_argument("case", help="YAML case file")
    parser.add_argument("--oracle", action="append", default=[], metavar="SPEC",
                        help="score oracle: NAME, NAME:key=value,key=value or '{kind: NAME, key: value}' "
                             "(repeat to compare several; one output file each)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a case setting, e.g. --set particles=500 --set time.end=1 "
                             "(oracle.* keys apply to each --oracle)")
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
        for r in runs:
            print(yaml.safe_dump(r.problem.case, sort_keys=False), end="")
        return 0
    status = 0
    writer = distributed.is_writer()
    # signal handlers from the first run's start-up to the last line printed (a second signal
    # always aborts at once); under torchrun pair sums shard their rows
    with StopOnSignal(agree=distributed.any_rank) as stop, distributed.scope():
        for r in runs:
            result = execute(r, progress=not args.quiet and sys.stderr.isatty(), stop=stop)
            if writer:
                print(result.message, file=sys.stderr if result.status else sys.stdout)
            status = status or result.status
            if result.status == EXIT_STOPPED:
                break
        if not args.quiet and writer:
            print(tables([r.path for r in runs if r.path.exists()]))
    return status


def cli() -> None:
    """The executable: exit with :func:`main`'s status. Outside the runs (before the first one
    starts, and after the last) a signal ends the process at once with status 128 + signal. The
    process exits without the interpreter's slow shutdown, during which signals would kill it
    with their default action: every file is closed and the output flushed by then."""
    for s in (signal.SIGINT, signal.SIGTERM):
        signal.signal(s, lambda signum, frame: os._exit(128 + signum))
    status = main()
    distributed.teardown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)


if __name__ == "__main__":
    cli()
