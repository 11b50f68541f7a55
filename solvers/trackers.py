"""Trackers: objects that watch the run loop at step boundaries (in the spirit of py-pde).

Each tracker has an ``interval`` in steps and ``initialize / handle / finalize``; ``due(state)``
says whether it handles the current boundary (by default every ``interval`` steps). What a tracker
must remember across a restart goes into ``state_dict`` and is stored in the checkpoint under
its ``name``. The run builds the list in this order:

    BlowUpGuard -> StopOnSignal -> Checkpointer -> FrameWriter -> ProgressBar

so a checkpoint never holds non-finite particles, a stop request is agreed before the checkpoint
is taken, and the checkpoint of step k is taken before the frame of step k is written (a resumed
run truncates the file to the checkpoint's frames and writes frame k again, identically).
"""
from __future__ import annotations

import signal
import sys
from pathlib import Path
from typing import Any, Callable

import torch
from tqdm import tqdm

from solvers.checkpoint import Checkpoint, rng_state
from solvers.output import NetCDFWriter


class Tracker:
    """Base class: handles every ``interval`` steps; no state."""

    name = "tracker"
    interval: int | None = 1

    def due(self, state) -> bool:
        return bool(self.interval) and state.step % self.interval == 0

    def initialize(self, state) -> None:
        """Called once before the first boundary (fresh or resumed run)."""

    def handle(self, state) -> None:
        """Called at every boundary where :meth:`due` is true."""

    def finalize(self, state) -> None:
        """Called once when the loop ends, normally or by an exception."""

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned."""


class BlowUp(RuntimeError):
    """The particles or scores became NaN/Inf, or the oracle failed numerically on them."""

    def __init__(self, step: int, t: float, what: str = "non-finite particles or scores") -> None:
        super().__init__(f"{what} at step {step} (t = {t:.6g})")
        self.step, self.t = step, t


class BlowUpGuard(Tracker):
    """Raise :class:`BlowUp` as soon as X_k or s_k is not finite."""

    name = "guard"

    def handle(self, state) -> None:
        if not (torch.isfinite(state.x).all() and torch.isfinite(state.s).all()):
            raise BlowUp(state.step, state.t)


def _local(flag: bool) -> bool:
    return flag


class StopOnSignal(Tracker):
    """First SIGINT/SIGTERM: stop at the next step boundary (after its checkpoint and frame);
    second: exit at once with status 128 + signal. ``agree(flag)`` shares the decision between
    processes (any rank's request stops every rank at the same boundary). The handlers are
    installed by ``with stop:`` around the whole run (command line), so a signal during the
    start-up (sampling, initial fits) stops the run at its first boundary too."""

    name = "signals"

    def __init__(self, agree: Callable[[bool], bool] = _local) -> None:
        self.agree, self.requested = agree, False
        self.previous: dict[int, Any] = {}

    def __call__(self, signum: int, frame: object) -> None:
        if self.requested:
            raise SystemExit(128 + signum)
        self.requested = True
        print(f"\nreceived {signal.Signals(signum).name}: finishing the current step "
              "(send again to abort at once)", file=sys.stderr)

    def __enter__(self) -> "StopOnSignal":
        self.previous = {s: signal.signal(s, self) for s in (signal.SIGINT, signal.SIGTERM)}
        return self

    def __exit__(self, *exc: object) -> None:
        for s, h in self.previous.items():
            signal.signal(s, h)

    def handle(self, state) -> None:
        state.stopping = self.agree(self.requested)


class Checkpointer(Tracker):
    """Write a :class:`Checkpoint` every ``interval`` steps (not at step 0) and when stopping."""

    name = "checkpoint"

    def __init__(self, path: Path, interval: int | None) -> None:
        self.path, self.interval = path, interval

    def due(self, state) -> bool:
        return state.stopping or (super().due(state) and state.step > 0)

    def handle(self, state) -> None:
        Checkpoint(step=state.step, t=state.t, x=state.x.cpu(), u=state.u.cpu(), s=state.s.cpu(),
                   oracle=state.oracle.state_dict(), rng=rng_state(state.problem.generator),
                   trackers={tr.name: tr.state_dict() for tr in state.trackers},
                   case=state.problem.case).save(self.path)


class FrameWriter(Tracker):
    """Compute the frame diagnostics and write them every ``interval`` steps, at the last step and
    when stopping. ``providers`` declare variables and compute values (see ``solvers.frames``);
    the particle states (``Equation.state_frame``: x and score, or position and velocity in phase
    space) are stored for the first ``stored`` particles."""

    name = "frames"

    def __init__(self, writer: NetCDFWriter | None, providers: list[Any], interval: int, stored: int,
                 state_frame: Callable[[Any, Any], dict[str, Any]]) -> None:
        """``writer=None``: compute the frames without writing them (the non-writing ranks of a
        distributed run, whose diagnostics may take part in collective pair sums)."""
        self.writer, self.providers, self.interval, self.stored = writer, providers, interval, stored
        self.state_frame = state_frame

    def due(self, state) -> bool:
        return super().due(state) or state.final or state.stopping

    def handle(self, state) -> None:
        frame: dict[str, Any] = {"time": state.t, **self.state_frame(state.x[:self.stored], state.s[:self.stored])}
        for provider in self.providers:
            frame.update(provider(state))
        if self.writer is not None:
            self.writer.write(frame)

    def state_dict(self) -> dict[str, Any]:
        return {"frames": self.writer.frames if self.writer else 0,
                "providers": [p.state_dict() for p in self.providers]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for provider, saved in zip(self.providers, state["providers"]):
            provider.load_state_dict(saved)


class ProgressBar(Tracker):
    """A tqdm bar over the steps (silent unless ``enabled``)."""

    name = "progress"

    def __init__(self, total: int, enabled: bool) -> None:
        self.total, self.enabled, self.bar = total, enabled, None

    def initialize(self, state) -> None:
        self.bar = tqdm(total=self.total, initial=state.step, disable=not self.enabled, unit="step", leave=False)

    def handle(self, state) -> None:
        self.bar.update(state.step - self.bar.n)

    def finalize(self, state) -> None:
        self.bar.close()
