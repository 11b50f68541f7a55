"""The diagnostics written with every output frame.

    mean m = (1/n) sum X_p,  covariance C = (1/n) sum (X_p - m)(X_p - m)^T,  energy (1/2n) sum |X_p|^2,
    collisional equations: entropy production (1/n) sum U_p . s_p and Sigma_inf = tr(C_0)/d I,
    covariance_exact: the case's exact covariance law started from the particles' own (m_0, C_0),
    covariance_rate: the particle system's dS/dt = (1/n) sum_p [U_p (X_p - m)^T + (X_p - m) U_p^T]
        from the velocities U_p already evaluated (exact for the semi-discrete system, for any U:
        the mean's own rate cancels because sum_p (X_p - m) = 0); binary collisions (no velocity
        field): the expected rate of one collision step over the angles and partners
        (``BinaryCollisions.expected_covariance_rate``, no random numbers),
    covariance_rate_exact: the exact dS/dt of the equation at t0 for a closed-form initial density
        (Landau, gaussian and gaussian_mixture; landau/gaussian_rates.py): first frame only, NaN at
        the others, so that ``ds.covariance_rate_exact.isel(time=0)`` pairs with ``ds.covariance_rate``.

A provider of frame values declares its output variables (:meth:`variables`), computes one
frame from the loop state (``__call__``) and keeps what it must remember between frames in a
state dict, so a resumed run continues it exactly.
"""
from __future__ import annotations

import math
from typing import Any

import torch

from landau import diagnostics, equilibrium_covariance
from solvers.output import Variable
from solvers.problem import Problem


class FrameDiagnostics:
    """Mean, covariance, energy, entropy production and the exact covariance law."""

    def __init__(self, problem: Problem) -> None:
        self.problem = problem
        self.mean0: torch.Tensor | None = None
        self.cov0: torch.Tensor | None = None
        self.rate0 = (problem.entry.initial_covariance_rate(problem.initial_density)
                      if problem.initial_density is not None else None)

    def variables(self) -> dict[str, Variable]:
        p = self.problem
        out = {"mean": Variable(("time", "dim"), "mean of the particles (momentum)"),
               "covariance": Variable(("time", "dim", "dim2"), "covariance of the empirical measure"),
               "energy": Variable(("time",), "energy (1/2n) sum |x|^2"),
               "oracle_loss": Variable(("time",), "training loss of the score oracle (NaN if none)")}
        if p.collisional and p.entry.uses_score:
            out["entropy_production"] = Variable(("time",), "estimated entropy production (1/n) sum U.s")
        if p.collisional:
            out["covariance_equilibrium"] = Variable(("dim", "dim2"),
                                                     "equilibrium covariance tr(C0)/d I of the initial particles")
        if p.covariance_law is not None:
            out["covariance_exact"] = Variable(("time", "dim", "dim2"),
                                               "exact covariance law started from the particles' own initial covariance")
        if p.entry.uses_score:
            out["covariance_rate"] = Variable(("time", "dim", "dim2"), "covariance rate of the particle system "
                                              "(1/n) sum [U (x - m)^T + (x - m) U^T]")
        elif hasattr(p.equation, "expected_covariance_rate"):
            out["covariance_rate"] = Variable(("time", "dim", "dim2"), "expected covariance rate of one binary-"
                                              "collision step (over angles and partners; no random numbers)")
        if self.rate0 is not None:
            out["covariance_rate_exact"] = Variable(("time", "dim", "dim2"), "exact covariance rate dS/dt of the "
                                                    "equation for the initial density (first frame; NaN elsewhere)")
        return out

    def __call__(self, state: Any) -> dict[str, Any]:
        p, x = self.problem, state.x
        cov = diagnostics.covariance(x)
        frame: dict[str, Any] = {"mean": diagnostics.mean(x), "covariance": cov,
                                 "energy": diagnostics.energy(x), "oracle_loss": state.oracle.last_loss}
        if self.rate0 is not None:
            frame["covariance_rate_exact"] = self.rate0 if self.cov0 is None else torch.full_like(cov, math.nan)
        if self.cov0 is None:
            self.mean0, self.cov0 = diagnostics.mean(x), cov
            if p.collisional:
                frame["covariance_equilibrium"] = equilibrium_covariance(cov)
        if p.entry.uses_score:
            frame["covariance_rate"] = diagnostics.covariance_rate(x, state.u)
        elif hasattr(p.equation, "expected_covariance_rate"):
            frame["covariance_rate"] = p.equation.expected_covariance_rate(x, p.dt)
        if p.collisional and p.entry.uses_score:
            frame["entropy_production"] = diagnostics.entropy_production(state.u, state.s)
        if p.covariance_law is not None:
            frame["covariance_exact"] = p.covariance_law(self.mean0, self.cov0, state.t)
        return frame

    def state_dict(self) -> dict[str, Any]:
        return {"mean0": self.mean0, "cov0": self.cov0}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.mean0, self.cov0 = state["mean0"], state["cov0"]
