"""The Python front door: run a case and get an ``xarray.Dataset`` back.

    from solvers import simulate
    ds = simulate("cases/landau_maxwell.yaml", oracle="blob", set=["particles=500", "time.end=1"])
    ds.covariance.sel(dim=0, dim2=0).plot()

``simulate`` prints nothing, installs no signal handlers and writes no file unless ``output`` is
a path. The command line (``solvers.run``) is a thin layer over :func:`prepare` and
:func:`execute`, so the file it writes holds exactly the dataset ``simulate`` returns.
"""
from __future__ import annotations

import os
import platform
import subprocess
import time as wallclock
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import torch
import xarray as xr
import yaml

from oracles import ScoreOracle, SettingsError
from solvers import distributed
from solvers.case import read_case
from solvers.checkpoint import (Checkpoint, case_differences, check_resumable, default_path, set_rng_state,
                                truncate_frames)
from solvers.field_frames import PhaseSpaceDiagnostics
from solvers.frames import FrameDiagnostics
from solvers.loop import State, Stopped, run
from solvers.metrics import FrameMetrics
from solvers.output import NetCDFWriter
from solvers.problem import Problem, build_problem
from solvers.resources import check_resources
from solvers.species import SpeciesDiagnostics
from solvers.trackers import BlowUp, BlowUpGuard, Checkpointer, FrameWriter, ProgressBar, StopOnSignal

EXIT_OK, EXIT_BLOWUP, EXIT_USAGE, EXIT_STOPPED = 0, 1, 2, 3


@dataclass
class Run:
    """A validated run: nothing has been written yet."""

    problem: Problem
    oracle: ScoreOracle
    path: Path | None                    # None: frames are kept in memory
    resume: Checkpoint | None = None

    @property
    def stored(self) -> int:
        """Particles whose x and score each frame stores (``output.particles``)."""
        k = self.problem.case["output"]["particles"]
        return {"all": self.problem.n, "none": 0}.get(k, k) if isinstance(k, str) else k


@dataclass
class Result:
    status: int                          # EXIT_OK, EXIT_BLOWUP or EXIT_STOPPED
    message: str
    dataset: xr.Dataset | None = None    # the frames, for in-memory runs


def prepare(case: dict, path: Path | None, oracle: ScoreOracle | None = None,
            resume: Checkpoint | None = None, checkpoint_path: Path | None = None) -> Run:
    """Build and check one run of the resolved ``case`` (objects, output path, checkpoint,
    resources) before anything is written; ``oracle`` replaces the case's oracle."""
    if resume is not None:
        changed = case_differences(resume.case, case)
        if changed:
            raise SettingsError(f"--resume: the case differs from the checkpoint's in {', '.join(changed)}")
        problem = build_problem(case, dtype=resume.x.dtype if case["dtype"] == "auto" else None)
        if resume.step > problem.steps:
            raise SettingsError(f"time.end: the checkpoint is at t = {resume.t:.6g} (step {resume.step}), "
                                f"after time.end = {problem.t1:.6g}; give time.end >= {resume.t:.6g}")
        if path is None or not path.exists():
            raise SettingsError(f"--resume: output file {path} is missing")
        check_resumable(path, resume, str(checkpoint_path or default_path(path)))
    else:
        problem = build_problem(case)
    if oracle is None:
        oracle = problem.build_oracle()
    if path is not None:
        check_writable(path)
    r = Run(problem, oracle, path, resume)
    frames = problem.steps // case["output"]["every"] + 2
    kinds = [sp["oracle"]["kind"] for sp in case["species"] if "oracle" in sp] if problem.species else \
        [case["oracle"]["kind"]] if "oracle" in case else []
    reason = check_resources(problem.n, problem.dim, problem.dtype, problem.device, case["time"]["integrator"],
                             kinds, frames, r.stored, path)
    if reason:
        raise SettingsError(reason)
    return r


def check_writable(path: Path) -> None:
    parent = path.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SettingsError(f"output.path: cannot create directory {parent} ({exc.strerror})") from None
    if path.is_dir() or not os.access(parent, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise SettingsError(f"output.path: cannot write {path}")


def package_version() -> str:
    try:
        return metadata.version("landau-particles")
    except metadata.PackageNotFoundError:
        return "0+unknown"


def git_revision() -> str:
    here = Path(__file__).resolve().parent
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, cwd=here)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True,
                               text=True, timeout=5, cwd=here).stdout.strip()
        return out.stdout.strip() + ("-dirty" if dirty else "") if out.returncode == 0 else "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def provenance(r: Run) -> dict[str, Any]:
    """Global attributes of the output: how the file was made."""
    p = r.problem
    return {"title": f"{p.case['name']} ({r.oracle.name})", "case": yaml.safe_dump(p.case, sort_keys=False),
            "oracle": r.oracle.name, "package_version": package_version(), "git_revision": git_revision(),
            "seed": p.case["seed"], "torch_version": torch.__version__, "numpy_version": np.__version__,
            "python_version": platform.python_version(), "device": str(p.device),
            "dtype": str(p.dtype).removeprefix("torch."), "threads": torch.get_num_threads()}


def restore(r: Run, trackers: list[Any]) -> State:
    """The loop state saved in the run's checkpoint; oracle, random generators and trackers restored."""
    ck, p = r.resume, r.problem
    r.oracle.load_state_dict(ck.oracle)
    set_rng_state(p.generator, ck.rng)
    for tracker in trackers:
        tracker.load_state_dict(ck.trackers.get(tracker.name, {}))
    x, s, u = (a.to(device=p.device, dtype=p.dtype) for a in (ck.x, ck.s, ck.u))
    return State(p, r.oracle, ck.step, x, s, u)


def execute(r: Run, progress: bool = False, stop: StopOnSignal | None = None) -> Result:
    """Run (or resume) ``r``. Only the writing process (rank 0 under torchrun) writes frames and
    checkpoints; the others run the same loop. ``stop``: a signal tracker (command line)."""
    p, case = r.problem, r.problem.case
    writes = distributed.is_writer()
    trackers: list[Any] = [BlowUpGuard()] + ([stop] if stop else [])
    if p.phase_space:
        diagnostics: list[Any] = [PhaseSpaceDiagnostics(p)]
    elif p.species is None:
        diagnostics = [FrameDiagnostics(p), FrameMetrics(p)]
    else:
        diagnostics = [SpeciesDiagnostics(p, r.stored)]
    writer = None
    if writes:
        if r.resume is not None:
            truncate_frames(r.path, r.resume.frames)
            writer = NetCDFWriter.append(r.path)
            # the resumed run's case and device: time.end and the other resumable keys may differ
            writer.set_attributes({"case": yaml.safe_dump(case, sort_keys=False), "device": str(p.device)})
        else:
            variables = {**p.entry.state_variables(), **{k: v for d in diagnostics for k, v in d.variables().items()}}
            sizes = {"particle": r.stored, "dim": p.dim, "dim2": p.dim, "species": len(p.species or ())}
            coords = {k: c for d in diagnostics if hasattr(d, "coords") for k, c in d.coords().items()}
            writer = NetCDFWriter(r.path, sizes, p.dtype, provenance(r), variables, coords)
        if r.path is not None:
            trackers.append(Checkpointer(default_path(r.path), case["output"]["checkpoint_every"]))
    trackers.append(FrameWriter(writer, diagnostics, case["output"]["every"], r.stored, p.entry.state_frame))
    trackers.append(ProgressBar(p.steps, progress and writes))
    start = wallclock.perf_counter()                  # wall time includes sampling and initial fits
    where = f" in {r.path}" if r.path else ""
    try:
        run(State.initial(p, r.oracle) if r.resume is None else restore(r, trackers), trackers)
        status, outcome = EXIT_OK, "complete"
    except BlowUp as exc:
        status, outcome = EXIT_BLOWUP, f"failed: {exc}"
    except Stopped as exc:
        status, outcome = EXIT_STOPPED, f"stopped: {exc}"
    except BaseException:                             # keep the frames written; no stray .tmp file
        if writer is not None:
            writer.close()
        raise
    if writer is None:
        return Result(status, outcome)
    try:
        wall = wallclock.perf_counter() - start + (float(writer.attribute("wall_time_s", 0.0)) if r.resume else 0.0)
        writer.set_attributes({"wall_time_s": wall, "status": outcome,
                               "oracle_settings": yaml.safe_dump(r.oracle.describe(), sort_keys=False)})
        dataset = writer.to_xarray() if r.path is None else None
    finally:
        writer.close()
    message = {EXIT_OK: f"wrote {r.path or 'memory'} ({writer.frames} frames, {wall:.1f} s)",
               EXIT_BLOWUP: f"error: {outcome.removeprefix('failed: ')}; kept {writer.frames} frames{where}",
               EXIT_STOPPED: f"{outcome.removeprefix('stopped: ')}; checkpoint {default_path(r.path) if r.path else 'none'}; "
                             f"{writer.frames} frames{where}; continue with --resume"}[status]
    return Result(status, message, dataset)


def simulate(case: str | Path | dict, *, oracle: str | dict | ScoreOracle | None = None,
             set: list[str] | tuple[str, ...] | None = None, output: str | Path | None = None,
             progress: bool = False) -> xr.Dataset | None:
    """Run a case and return its frames as an ``xarray.Dataset`` (the variables and attributes of
    the NetCDF file the command line writes).

    case:     a path to a YAML case file, YAML text, or a mapping.
    oracle:   a registered oracle (``"blob"``, ``"sbtm:lr=2e-4"``, ``{"kind": "kde", "bandwidth": 0.3}``)
              or a :class:`~oracles.ScoreOracle` object; default: the case's oracle.
    set:      ``key.path=value`` overrides, as ``--set`` on the command line.
    output:   None keeps the frames in memory; a path writes the NetCDF file there as well.
    progress: show a tqdm progress bar.

    Under torchrun (or inside a process group with ``landau.pairs.sharded``) every rank runs the
    same loop and only rank 0 gets the Dataset; the other ranks get None.

    Raises ``SettingsError`` for invalid input and ``RuntimeError`` if the run blows up (NaN/Inf).
    """
    custom = oracle if isinstance(oracle, ScoreOracle) else None
    resolved = read_case(case, list(set or ()), oracle=None if custom else oracle)
    if custom is not None and "species" in resolved:
        raise SettingsError("oracle: a case with species: takes one registered oracle per species "
                            "(species.<i>.oracle), not an oracle object")
    path = Path(output) if output is not None else None
    resolved["output"] = {**resolved["output"], "path": str(path) if path else None}
    if custom is not None:
        resolved["oracle"] = custom.describe()
    r = prepare(resolved, path, custom)
    result = execute(r, progress=progress)
    if result.status != EXIT_OK:
        raise RuntimeError(result.message)
    if not distributed.is_writer():
        return None                              # under torchrun the frames are rank 0's
    if result.dataset is not None:
        return result.dataset
    with xr.open_dataset(path) as ds:
        return ds.load()
