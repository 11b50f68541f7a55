"""The BKW exact solution of the Maxwell-molecule Landau equation (``initial: {kind: bkw, C}``).

    f(t, v) = (2 pi K)^(-d/2) exp(-|v|^2 / 2K) (P + Q |v|^2),   K(t) = 1 - C exp(-2 B (d-1) t),

a density from the positivity time t0 on (the default ``time.start``); see :class:`landau.BKW`.
"""
from __future__ import annotations

from dataclasses import dataclass

from landau import BKW
from landau.settings import SettingsError
from solvers.equations import Tensorize
from solvers.initial import INITIALS, Initial


@INITIALS.register
class BKWInitial(Initial):
    name = "bkw"

    @dataclass
    class Settings:
        C: float = 1.0

    def validate(self) -> None:
        eq = self.equation
        if not (eq.name == "landau" and eq.settings.gamma == 0):
            raise SettingsError(f"{self.key}.kind: 'bkw' is an exact solution of the Landau equation with gamma = 0 only")
        if not 0 < self.settings.C <= 1:
            raise SettingsError(f"{self.key}.C: must be in (0, 1], got {self.settings.C}")

    @property
    def solution(self) -> BKW:
        return BKW(self.dim, self.equation.settings.B, self.settings.C)

    def default_start(self) -> float:
        return self.solution.t0()

    def check_start(self, t0: float) -> None:
        if self.solution.PQ(t0)[0] < 0:
            raise SettingsError(f"time.start: BKW is not a density before t0 = {self.solution.t0()}")

    def build(self, tensor: Tensorize, t0: float) -> BKW:
        return self.solution

    def exact_solution(self, density: BKW, t0: float) -> BKW:
        return density


    def sample(self, density: BKW, n: int, generator, t0: float, dtype, device):
        return density.sample(n, t0, generator, dtype, device)
