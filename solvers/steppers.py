"""Fixed-step explicit integrators for dX/dt = U(X, t), where U needs the score at every stage.

``rhs(x, t) -> (U, s)`` evaluates the oracle's score s at the stage positions and the velocity U.
Each stepper receives the first stage (U_k, s_k at X_k) already evaluated -- the run loop needs s_k
for output anyway -- so every stage costs exactly one score evaluation:

    euler: X' = X + dt U(X, t)
    heun:  k1 = U(X, t), k2 = U(X + dt k1, t + dt);                   X' = X + dt (k1 + k2) / 2
    rk4:   k1..k4 at t, t + dt/2, t + dt/2, t + dt;                   X' = X + dt (k1 + 2k2 + 2k3 + k4) / 6
"""
from __future__ import annotations

from typing import Callable

import torch

Rhs = Callable[[torch.Tensor, float], tuple[torch.Tensor, torch.Tensor]]


def euler(x: torch.Tensor, t: float, dt: float, k1: torch.Tensor, rhs: Rhs) -> torch.Tensor:
    return x + dt * k1


def heun(x: torch.Tensor, t: float, dt: float, k1: torch.Tensor, rhs: Rhs) -> torch.Tensor:
    k2, _ = rhs(x + dt * k1, t + dt)
    return x + 0.5 * dt * (k1 + k2)


def rk4(x: torch.Tensor, t: float, dt: float, k1: torch.Tensor, rhs: Rhs) -> torch.Tensor:
    k2, _ = rhs(x + 0.5 * dt * k1, t + 0.5 * dt)
    k3, _ = rhs(x + 0.5 * dt * k2, t + 0.5 * dt)
    k4, _ = rhs(x + dt * k3, t + dt)
    return x + dt / 6.0 * (k1 + 2 * k2 + 2 * k3 + k4)


STEPPERS: dict[str, Callable[..., torch.Tensor]] = {"euler": euler, "heun": heun, "rk4": rk4}
#: score evaluations per step (leapfrog: the phase-space equations' own kick-drift-kick step,
#: ``Equation.advance``, one field solve per step)
STAGES = {"euler": 1, "heun": 2, "rk4": 4, "leapfrog": 1}
