"""A Gaussian initial density N(mean, cov) (``initial: {kind: gaussian, mean, cov}``)."""
from __future__ import annotations

from dataclasses import dataclass

from landau import GaussianMixture, gaussian
from solvers.equations import Tensorize
from solvers.initial import INITIALS, Initial
from solvers.shapes import matrix, vector


@INITIALS.register
class Gaussian(Initial):
    name = "gaussian"

    @dataclass
    class Settings:
        mean: float | list = 0.0
        cov: float | list = 1.0

    def validate(self) -> None:
        s = self.settings
        s.mean = vector(s.mean, self.dim, f"{self.key}.mean").tolist()
        s.cov = matrix(s.cov, self.dim, f"{self.key}.cov", spd=True).tolist()

    def build(self, tensor: Tensorize, t0: float) -> GaussianMixture:
        return gaussian(tensor(self.settings.mean), tensor(self.settings.cov))
