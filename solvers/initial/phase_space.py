"""Base of the phase-space initial densities (1 + alpha cos(k x)) / L * (a Maxwellian mixture in v):
the settings every one of them has, their checks and their sampling (``quiet`` or ``random``,
:class:`landau.phase_space.PerturbedMixture`). Entries: ``perturbed_maxwellian``, ``two_stream``,
``bump_on_tail``."""
from __future__ import annotations

import math
from typing import ClassVar

import numpy as np
import torch

from landau.phase_space import PerturbedMixture
from landau.settings import SettingsError
from solvers.equations import Tensorize
from solvers.initial import Initial


class PhaseSpaceInitial(Initial):
    """Settings of subclasses have ``k``, ``alpha`` and ``sampling``; ``components()`` gives the
    velocity mixture as (weights (S,), means (S, d), covariances (S, d, d))."""

    phase_space: ClassVar[bool] = True

    def validate(self) -> None:
        s, L = self.settings, self.equation.space.length
        modes = s.k * L / (2 * math.pi)
        if not (s.k > 0 and round(modes) >= 1 and abs(modes - round(modes)) < 1e-9 * max(1.0, modes)):
            raise SettingsError(f"{self.key}.k: must be a positive multiple of 2 pi / L = {2 * math.pi / L:.10g} "
                                f"(space.length = {L}), got {s.k}")
        if not 0 <= s.alpha < 1:
            raise SettingsError(f"{self.key}.alpha: must be in [0, 1), got {s.alpha}")
        self.components()                   # shape checks of the velocity settings

    def components(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        raise NotImplementedError

    def build(self, tensor: Tensorize, t0: float) -> PerturbedMixture:
        s = self.settings
        return PerturbedMixture(self.equation.space.length, s.k, s.alpha, *self.components())

    def sample(self, density: PerturbedMixture, n: int, generator: torch.Generator, t0: float,
               dtype: torch.dtype, device: torch.device) -> torch.Tensor:
        return density.sample(n, generator, self.settings.sampling == "quiet").to(dtype=dtype, device=device)
