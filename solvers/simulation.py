"""The run loop: advance particles, and at output times hand a frame to the writer.

    x (n, d) -> oracle.score(x, t) -> s -> equation.velocity(x, s, t) -> U -> stepper -> x'

The score at X_k is evaluated once (first stage), used for the step and stored with X_k.
"""
from __future__ import annotations

import time as wallclock
from typing import Any

import torch
from tqdm import tqdm

from landau import diagnostics, equilibrium_covariance
from oracles import ScoreOracle
from solvers.case import Problem
from solvers.output import NetCDFWriter
from solvers.steppers import STEPPERS


class BlowUp(RuntimeError):
    """The particles or scores became NaN/Inf."""

    def __init__(self, step: int, t: float) -> None:
        super().__init__(f"non-finite particles or scores at step {step} (t = {t:.6g})")
        self.step, self.t = step, t


class FrameRecorder:
    """Computes the diagnostics of one frame and writes it."""

    def __init__(self, problem: Problem, writer: NetCDFWriter) -> None:
        self.problem, self.writer = problem, writer
        self.mean0: torch.Tensor | None = None
        self.cov0: torch.Tensor | None = None

    def __call__(self, t: float, x: torch.Tensor, s: torch.Tensor, u: torch.Tensor,
                 oracle: ScoreOracle) -> None:
        p = self.problem
        cov = diagnostics.covariance(x)
        frame: dict[str, Any] = {"time": t, "x": x, "score": s, "mean": diagnostics.mean(x),
                                 "covariance": cov, "energy": diagnostics.energy(x),
                                 "oracle_loss": oracle.last_loss}
        if self.cov0 is None:
            self.mean0, self.cov0 = diagnostics.mean(x), cov
            if p.is_landau:
                frame["covariance_equilibrium"] = equilibrium_covariance(cov)
        if p.is_landau:
            frame["entropy_production"] = diagnostics.entropy_production(u, s)
        if p.covariance_law is not None:
            frame["covariance_exact"] = p.covariance_law(self.mean0, self.cov0, t)
        self.writer.write(frame)


def simulate(problem: Problem, oracle: ScoreOracle, record: FrameRecorder, every: int,
             progress: bool = False) -> float:
    """Run the case from t0 to t1; return the wall time in seconds. Raises :class:`BlowUp`."""
    p = problem
    start = wallclock.perf_counter()
    x = p.sample_initial()
    oracle.prepare(x, p.t0)
    stepper = STEPPERS[p.case["time"]["integrator"]]

    def rhs(y: torch.Tensor, t: float, first: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        s = oracle.score(y, t) if first else oracle.stage_score(y, t)
        return p.equation.velocity(y, s, t), s

    u, s = rhs(x, p.t0, first=True)
    with tqdm(total=p.steps, disable=not progress, unit="step", leave=False) as bar:
        for k in range(p.steps + 1):
            t = p.t0 + k * p.dt
            if not (torch.isfinite(x).all() and torch.isfinite(s).all()):
                raise BlowUp(k, t)
            if k % every == 0 or k == p.steps:
                record(t, x, s, u, oracle)
            if k == p.steps:
                break
            x = stepper(x, t, p.dt, u, rhs)
            u, s = rhs(x, p.t0 + (k + 1) * p.dt, first=True)
            bar.update()
    return wallclock.perf_counter() - start
