"""Fokker-Planck equations in probability-flow (transport) form.

    d_t f = -div( b f ) + div( D grad f )   =   -div( f U ),    U(x) = b(x) - D grad log f(x),

so particles move with U = b(x) - D s(x) for the score s = grad log f and a constant diffusion D
(scalar or symmetric positive-definite matrix). Drifts:

* linear        b(x) = -A x + c            (any A, non-symmetric allowed)
* double_well   b(x) = -grad V,  V(x) = a (x_1^2 - 1)^2 / 4 + sum_{k>=2} x_k^2 / 2,
  whose stationary density for scalar D is proportional to exp(-V/D).
"""
from __future__ import annotations

import torch


class LinearDrift:
    """b(x) = -A x + c."""

    kind = "linear"

    def __init__(self, A: torch.Tensor, c: torch.Tensor) -> None:
        self.A, self.c = A, c

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return -x @ self.A.T + self.c


class DoubleWellDrift:
    """b(x) = -grad V for V(x) = a (x_1^2 - 1)^2 / 4 + sum_{k>=2} x_k^2 / 2."""

    kind = "double_well"

    def __init__(self, a: float) -> None:
        self.a = a

    def potential(self, x: torch.Tensor) -> torch.Tensor:
        return self.a * (x[:, 0] ** 2 - 1) ** 2 / 4 + (x[:, 1:] ** 2).sum(1) / 2

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        b = -x.clone()
        b[:, 0] = -self.a * (x[:, 0] ** 2 - 1) * x[:, 0]
        return b


class FokkerPlanckEquation:
    """velocity(x, s, t) = b(x) - D s, with D a scalar or a symmetric (d, d) matrix."""

    kind = "fokker_planck"

    def __init__(self, drift: LinearDrift | DoubleWellDrift, diffusion: float | torch.Tensor) -> None:
        self.drift, self.diffusion = drift, diffusion

    def velocity(self, x: torch.Tensor, s: torch.Tensor, t: float) -> torch.Tensor:
        D = self.diffusion
        return self.drift(x) - (s @ D if isinstance(D, torch.Tensor) else D * s)
