"""Two counter-streaming beams, f0 = (1 + alpha cos(k x)) / L * (N(v; +u e_1, cov) + N(v; -u e_1, cov)) / 2
(``initial: {kind: two_stream, k, alpha, drift, cov, sampling}``, ``drift`` = u)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from landau.settings import SettingsError
from solvers.initial import INITIALS
from solvers.initial.phase_space import PhaseSpaceInitial
from solvers.shapes import matrix


@INITIALS.register
class TwoStream(PhaseSpaceInitial):
    name = "two_stream"

    @dataclass
    class Settings:
        k: float
        alpha: float = 0.0001
        drift: float = 2.4
        cov: float | list = 1.0
        sampling: Literal["quiet", "random"] = "quiet"

    def components(self):
        s, d = self.settings, self.dim
        if not s.drift > 0:
            raise SettingsError(f"{self.key}.drift: must be positive, got {s.drift}")
        cov = matrix(s.cov, d, f"{self.key}.cov", spd=True)
        means = np.zeros((2, d))
        means[:, 0] = (s.drift, -s.drift)
        return np.full(2, 0.5), means, np.stack([cov, cov])
