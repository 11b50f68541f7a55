"""f0 = (1 + alpha cos(k x)) / L * N(v; mean, cov) (``initial: {kind: perturbed_maxwellian, k, alpha,
mean, cov, sampling}``): Landau damping."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from solvers.initial import INITIALS
from solvers.initial.phase_space import PhaseSpaceInitial
from solvers.shapes import matrix, vector


@INITIALS.register
class PerturbedMaxwellian(PhaseSpaceInitial):
    name = "perturbed_maxwellian"

    @dataclass
    class Settings:
        k: float
        alpha: float = 0.01
        mean: float | list = 0.0
        cov: float | list = 1.0
        sampling: Literal["quiet", "random"] = "quiet"

    def components(self):
        s, d = self.settings, self.dim
        mean = vector(s.mean, d, f"{self.key}.mean")
        cov = matrix(s.cov, d, f"{self.key}.cov", spd=True)
        return np.ones(1), mean[None], cov[None]
