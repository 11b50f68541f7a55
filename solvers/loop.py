"""The run loop: advance the particles one step at a time; trackers watch every step boundary.

    x (n, d) -> oracle.score(x, t) -> s -> equation.velocity(x, s, t) -> U -> stepper -> x'

The score at X_k is evaluated once (first stage), used for the step and kept with X_k in the
:class:`State`. At each step boundary every tracker whose interval is due handles the state, in
order (guard, stop request, checkpoint, frame, progress); a resumed run starts from a restored
state and runs the very same loop.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import torch

from oracles import ScoreOracle
from solvers.problem import Problem
from solvers.trackers import BlowUp


class Stopped(RuntimeError):
    """The run stopped on request at a step boundary (after its checkpoint and frame)."""

    def __init__(self, step: int, t: float) -> None:
        super().__init__(f"stopped at step {step} (t = {t:.6g})")
        self.step, self.t = step, t


@dataclass
class State:
    """The particle state at a step boundary: X_k, its score s_k and velocity U_k = U(X_k, s_k)."""

    problem: Problem
    oracle: ScoreOracle
    step: int
    x: torch.Tensor
    s: torch.Tensor
    u: torch.Tensor
    stopping: bool = False                       # set by a tracker: stop after this boundary
    trackers: list = field(default_factory=list)

    @property
    def t(self) -> float:
        return self.problem.t0 + self.step * self.problem.dt

    @property
    def final(self) -> bool:
        return self.step == self.problem.steps

    def rhs(self, y: torch.Tensor, t: float, first: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """(U, s) at positions y: the oracle's score (first stage: ``score``, else ``stage_score``)."""
        s = self.oracle.score(y, t) if first else self.oracle.stage_score(y, t)
        return self.problem.equation.velocity(y, s, t), s

    def advance(self, stepper: Callable[..., torch.Tensor]) -> None:
        """X_k -> X_(k+1) and its first-stage velocity and score (not asked of the oracle when
        X_(k+1) is not finite: the blow-up guard reports it at this boundary). A numerical failure
        of the oracle on finite but wild particles (a linear-algebra error) is a blow-up too."""
        try:
            self.x = stepper(self.x, self.t, self.problem.dt, self.u, self.rhs)
            self.step += 1
            if torch.isfinite(self.x).all():
                self.u, self.s = self.rhs(self.x, self.t, first=True)
        except torch.linalg.LinAlgError as exc:
            raise BlowUp(self.step, self.t, f"the score oracle failed ({exc})") from None

    @classmethod
    def initial(cls, problem: Problem, oracle: ScoreOracle) -> "State":
        """Fresh start: sample X_0, prepare the oracle, evaluate the first stage."""
        x = problem.sample_initial()
        oracle.prepare(x, problem.t0)
        state = cls(problem, oracle, 0, x, x, x)
        state.u, state.s = state.rhs(x, problem.t0, first=True)
        return state


def run(state: State, trackers: list[Any]) -> State:
    """Advance ``state`` to the problem's last step; raise :class:`Stopped` if a tracker asks to stop."""
    state.trackers = trackers
    stepper = state.problem.stepper()
    for tracker in trackers:
        tracker.initialize(state)
    try:
        while True:
            for tracker in trackers:
                if tracker.due(state):
                    tracker.handle(state)
            if state.final:
                return state
            if state.stopping:
                raise Stopped(state.step, state.t)
            state.advance(stepper)
    finally:
        for tracker in trackers:
            tracker.finalize(state)
