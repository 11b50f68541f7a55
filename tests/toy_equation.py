"""A complete new equation in one file, as a user would add one: linear relaxation dX/dt = -k X
(a velocity that ignores the score), with its exact covariance law C(t) = C_0 exp(-2k (t - t0))."""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from oracles import SettingsError
from solvers.equations import EQUATIONS, Equation


class Relaxation:
    def __init__(self, k: float) -> None:
        self.k = k

    def velocity(self, x: torch.Tensor, s: torch.Tensor, t: float) -> torch.Tensor:
        return -self.k * x


@EQUATIONS.register
class ToyRelaxation(Equation):
    name = "toy_relaxation"

    @dataclass
    class Settings:
        k: float = 1.0

    def validate(self) -> None:
        if self.settings.k <= 0:
            raise SettingsError(f"equation.k: must be positive, got {self.settings.k}")

    def build(self, tensor):
        return Relaxation(self.settings.k)

    def covariance_law(self, t0: float):
        k = self.settings.k
        return lambda m0, c0, t: c0 * math.exp(-2 * k * (t - t0))
