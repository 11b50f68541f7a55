"""A bump on the tail, f0 = (1 + alpha cos(k x)) / L * ((1 - b) N(v; 0, cov) + b N(v; u e_1, bump_cov))
(``initial: {kind: bump_on_tail, k, alpha, fraction, drift, cov, bump_cov, sampling}``, b = ``fraction``,
u = ``drift``); the classic parameters b = 0.1, u = 4.5, bump spread 0.5 (bump_cov 0.25)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from landau.settings import SettingsError
from solvers.initial import INITIALS
from solvers.initial.phase_space import PhaseSpaceInitial
from solvers.shapes import matrix


@INITIALS.register
class BumpOnTail(PhaseSpaceInitial):
    name = "bump_on_tail"

    @dataclass
    class Settings:
        k: float
        alpha: float = 0.04
        fraction: float = 0.1
        drift: float = 4.5
        cov: float | list = 1.0
        bump_cov: float | list = 0.25
        sampling: Literal["quiet", "random"] = "quiet"

    def components(self):
        s, d = self.settings, self.dim
        if not 0 < s.fraction < 1:
            raise SettingsError(f"{self.key}.fraction: must be in (0, 1), got {s.fraction}")
        means = np.zeros((2, d))
        means[1, 0] = s.drift
        covs = np.stack([matrix(s.cov, d, f"{self.key}.cov", spd=True),
                         matrix(s.bump_cov, d, f"{self.key}.bump_cov", spd=True)])
        return np.array([1 - s.fraction, s.fraction]), means, covs
