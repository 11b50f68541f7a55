"""The electrostatic Vlasov-Poisson system in a periodic box (``equation: {kind: vlasov_poisson}``
with a ``space: {length, cells, shape}`` section), solved by particle in cell.

    df/dt + v_1 df/dx - E df/dv_1 = 0,    dE/dx = 1 - n_e,

electrons on a neutralising background, velocities in d = 1, 2 or 3 dimensions (the field acts
on v_1); see :class:`landau.vlasov_poisson.VlasovPoisson`. Collisionless: no score oracle. The
leapfrog is the only integrator (stable for omega_p dt < 2, omega_p = 1).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from landau.particle_shapes import SHAPES, ParticleShape
from landau.poisson import SpectralPoisson1D
from landau.vlasov_poisson import VlasovPoisson as VlasovPoissonPIC
from landau.settings import SettingsError
from solvers.equations import EQUATIONS, Equation, Tensorize
from solvers.output import Variable

#: the leapfrog's stability limit omega_p dt < 2 (omega_p = 1 in these units)
LEAPFROG_LIMIT = 2.0


@EQUATIONS.register
class VlasovPoisson(Equation):
    name = "vlasov_poisson"
    phase_space = True
    uses_score = False
    integrators = ("leapfrog",)

    @dataclass
    class Settings:
        pass

    def validate(self) -> None:
        sp = self.space
        if sp is None:
            raise SettingsError("space: the vlasov_poisson equation needs a space: {length, cells} section")
        if not 1 <= self.dim <= 3:
            raise SettingsError(f"dim: the velocity dimension of vlasov_poisson must be 1, 2 or 3, got {self.dim}")
        if not sp.length > 0:
            raise SettingsError(f"space.length: must be positive, got {sp.length}")
        if sp.cells < 4:
            raise SettingsError(f"space.cells: need at least 4 cells, got {sp.cells}")

    def check_time(self, time) -> None:
        super().check_time(time)
        if time.dt >= LEAPFROG_LIMIT:
            raise SettingsError(f"time.dt: {time.dt} is above the leapfrog limit (omega_p dt < 2, omega_p = 1)")

    def state_variables(self) -> dict[str, Variable]:
        return {"position": Variable(("time", "particle"), "particle position x in [0, L)", fmt="state"),
                "velocity": Variable(("time", "particle", "dim"), "particle velocity v", fmt="state")}

    def state_frame(self, z: torch.Tensor, s: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"position": z[:, 0], "velocity": z[:, 1:]}

    def build(self, tensor: Tensorize) -> VlasovPoissonPIC:
        sp = self.space
        return VlasovPoissonPIC(ParticleShape(SHAPES[sp.shape], sp.length, sp.cells),
                                SpectralPoisson1D(sp.length, sp.cells))
