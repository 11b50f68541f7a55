"""The run loop: advance particles, write frames at output times, checkpoint at step boundaries.

    x (n, d) -> oracle.score(x, t) -> s -> equation.velocity(x, s, t) -> U -> stepper -> x'

The score at X_k is evaluated once (first stage), used for the step and stored with X_k. The loop's
only resting point is the step boundary after the frame of step k was written: checkpoints are
taken there, and a stop request (SIGINT/SIGTERM) ends the run there, so a resumed run repeats
exactly the computations the uninterrupted one would have done.
"""
from __future__ import annotations

import time as wallclock
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch
from tqdm import tqdm

from landau import diagnostics, equilibrium_covariance
from oracles import ScoreOracle
from solvers.case import Problem
from solvers.checkpoint import Checkpoint, rng_state, set_rng_state
from solvers.metrics import FrameMetrics
from solvers.output import NetCDFWriter
from solvers.steppers import STEPPERS


class BlowUp(RuntimeError):
    """The particles or scores became NaN/Inf."""

    def __init__(self, step: int, t: float) -> None:
        super().__init__(f"non-finite particles or scores at step {step} (t = {t:.6g})")
        self.step, self.t = step, t


class Stopped(RuntimeError):
    """The run stopped on request at a step boundary after writing a checkpoint."""

    def __init__(self, step: int, t: float, checkpoint: Path) -> None:
        super().__init__(f"stopped at step {step} (t = {t:.6g}); checkpoint {checkpoint}")
        self.step, self.t, self.checkpoint = step, t, checkpoint


def _local(flag: bool) -> bool:
    return flag


@dataclass
class Control:
    """How the loop checkpoints, and whether a stop was requested (set by signal handlers).

    ``checkpoint_path`` None: this process writes no checkpoints (non-writing distributed ranks).
    ``agree(flag)``: the stop decision shared by all processes (any rank's request stops every
    rank at the same step boundary); the identity for a single process.
    """

    checkpoint_path: Path | None
    checkpoint_every: int | None = None     # steps
    stop_requested: bool = False
    agree: Callable[[bool], bool] = _local


class FrameRecorder:
    """Computes the diagnostics of one frame and writes it (``writer=None``: count only)."""

    def __init__(self, problem: Problem, writer: NetCDFWriter | None) -> None:
        self.problem, self.writer = problem, writer
        self.frames = writer.frames if writer else 0
        self.mean0: torch.Tensor | None = None
        self.cov0: torch.Tensor | None = None
        self.metrics = FrameMetrics(problem)
        if writer is not None and writer.frames == 0:
            writer.add_variables(self.metrics.variables())

    def state_dict(self) -> dict[str, Any]:
        return {"mean0": self.mean0, "cov0": self.cov0, "metrics": self.metrics.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.mean0, self.cov0 = state["mean0"], state["cov0"]
        self.metrics.load_state_dict(state["metrics"])

    def __call__(self, t: float, x: torch.Tensor, s: torch.Tensor, u: torch.Tensor,
                 oracle: ScoreOracle) -> None:
        p = self.problem
        self.frames += 1
        cov = diagnostics.covariance(x)
        frame: dict[str, Any] = {"time": t, "x": x, "score": s, "mean": diagnostics.mean(x),
                                 "covariance": cov, "energy": diagnostics.energy(x),
                                 "oracle_loss": oracle.last_loss}
        if self.writer is not None:
            frame.update(self.metrics(t, x, s, oracle, first=self.cov0 is None))
        if self.cov0 is None:
            self.mean0, self.cov0 = diagnostics.mean(x), cov
            if p.is_landau:
                frame["covariance_equilibrium"] = equilibrium_covariance(cov)
        if p.is_landau:
            frame["entropy_production"] = diagnostics.entropy_production(u, s)
        if p.covariance_law is not None:
            frame["covariance_exact"] = p.covariance_law(self.mean0, self.cov0, t)
        if self.writer is not None:
            self.writer.write(frame)


def simulate(problem: Problem, oracle: ScoreOracle, record: FrameRecorder, control: Control,
             progress: bool = False, resume: Checkpoint | None = None) -> float:
    """Run (or continue) the case to t1; return the wall time in seconds.

    Raises :class:`BlowUp` on NaN/Inf and :class:`Stopped` after a requested stop.
    """
    p = problem
    every = p.case["output"]["every"]
    stepper = STEPPERS[p.case["time"]["integrator"]]
    start = wallclock.perf_counter()

    def rhs(y: torch.Tensor, t: float, first: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        s = oracle.score(y, t) if first else oracle.stage_score(y, t)
        return p.equation.velocity(y, s, t), s

    if resume is None:
        k, x = 0, p.sample_initial()
        oracle.prepare(x, p.t0)
        u, s = rhs(x, p.t0, first=True)
    else:
        k = resume.step
        x, u, s = (a.to(p.device) for a in (resume.x, resume.u, resume.s))
        oracle.load_state_dict(resume.oracle)
        record.load_state_dict(resume.recorder)
        set_rng_state(p.generator, resume.rng)

    def checkpoint() -> None:
        if control.checkpoint_path is None:
            return
        Checkpoint(step=k, t=t, x=x.cpu(), u=u.cpu(), s=s.cpu(), frames=record.frames,
                   oracle=oracle.state_dict(), rng=rng_state(p.generator),
                   recorder=record.state_dict(), case=p.case).save(control.checkpoint_path)

    with tqdm(total=p.steps, initial=k, disable=not progress, unit="step", leave=False) as bar:
        while True:
            t = p.t0 + k * p.dt
            if resume is None or k != resume.step:          # a resumed step was already recorded
                if not (torch.isfinite(x).all() and torch.isfinite(s).all()):
                    raise BlowUp(k, t)
                if k % every == 0 or k == p.steps:
                    record(t, x, s, u, oracle)
                if k == p.steps:
                    break
                if control.agree(control.stop_requested):
                    checkpoint()
                    raise Stopped(k, t, control.checkpoint_path)
                if control.checkpoint_every and k % control.checkpoint_every == 0 and k > 0:
                    checkpoint()
            elif k == p.steps:
                break
            x = stepper(x, t, p.dt, u, rhs)
            k += 1
            u, s = rhs(x, p.t0 + k * p.dt, first=True)
            bar.update()
    return wallclock.perf_counter() - start
