"""The electrostatic Vlasov-Poisson(-Landau) system in a periodic box (``equation: {kind:
vlasov_poisson, collisions: {gamma, B, delta, locality, splitting}}`` with a ``space: {length,
cells, shape}`` section), solved by particle in cell.

    df/dt + v_1 df/dx - E df/dv_1 = B Q(f, f),    dE/dx = 1 - n_e,

electrons on a neutralising background, velocities in d = 1, 2 or 3 dimensions (the field acts
on v_1); see :class:`landau.vlasov_poisson.VlasovPoisson`. Without ``collisions`` the system is
collisionless and uses no score oracle. With it, the Landau operator acts in each cell
(:class:`landau.cell_collisions.CellLandau`) on scores from the case's oracle applied per cell
(:class:`solvers.cell_scores.CellScores`), by Strang (default) or Lie splitting with a forward
Euler (default), Heun or RK4 collision sub-step (``collisions.integrator``); or, with
``collisions.method: binary``, by binary-collision Monte Carlo per cell
(:class:`landau.cell_binary.CellBinaryCollisions`, no score oracle). The leapfrog is the only
integrator (stable for omega_p dt < 2, omega_p = 1).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Literal

import torch

from landau.cell_binary import CellBinaryCollisions
from landau.cell_collisions import CellLandau
from landau.particle_shapes import SHAPES, ParticleShape
from landau.poisson import SpectralPoisson1D
from landau.vlasov_poisson import VlasovPoisson as VlasovPoissonPIC
from landau.settings import SettingsError, parse_settings
from solvers.equations import EQUATIONS, Equation, Tensorize
from solvers.output import Variable
from solvers.steppers import STEPPERS

#: the leapfrog's stability limit omega_p dt < 2 (omega_p = 1 in these units)
LEAPFROG_LIMIT = 2.0


@EQUATIONS.register
class VlasovPoisson(Equation):
    name = "vlasov_poisson"
    phase_space = True
    integrators = ("leapfrog",)

    @dataclass
    class Settings:
        collisions: dict | None = None          # CollisionSettings; None: collisionless

    @dataclass
    class CollisionSettings:
        gamma: float = 0.0
        B: float = 1.0 / 24
        delta: float = 0.0                      # |z|^gamma -> (|z|^2 + delta^2)^(gamma/2)
        locality: Literal["cell", "hat"] = "cell"
        splitting: Literal["strang", "lie"] = "strang"
        integrator: Literal["euler", "heun", "rk4"] = "euler"   # of the collision sub-steps
        method: Literal["landau", "binary"] = "landau"          # binary: Monte Carlo per cell, no score
        scheme: Literal["takizuka_abe", "nanbu"] = "takizuka_abe"   # of method: binary

    @property
    def uses_score(self) -> bool:               # type: ignore[override]
        c = self.settings.collisions
        return c is not None and c.get("method", "landau") != "binary"

    def resolved(self) -> dict:
        out = super().resolved()
        if out["collisions"] is None:
            del out["collisions"]
        return out

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
        if self.settings.collisions is not None:
            c = parse_settings(self.CollisionSettings, self.settings.collisions, "equation.collisions")
            if self.dim < 2:
                raise SettingsError(f"equation.collisions: the Landau operator needs dim >= 2, got {self.dim}")
            if c.B < 0:
                raise SettingsError(f"equation.collisions.B: must be >= 0, got {c.B}")
            if c.delta < 0:
                raise SettingsError(f"equation.collisions.delta: must be >= 0, got {c.delta}")
            if c.method == "binary":
                if c.locality != "cell" or c.delta != 0:
                    raise SettingsError("equation.collisions.method: binary collisions pair particles within "
                                        "a cell (locality: cell) with the unregularised |u|^gamma (delta: 0)")
                if c.scheme == "nanbu" and self.dim != 3:
                    raise SettingsError(f"equation.collisions.scheme: nanbu exists for dim 3, got {self.dim}")
            self.settings.collisions = dataclasses.asdict(c)

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
        sp, c = self.space, self.settings.collisions
        if c is None:
            collisions = None
        elif c["method"] == "binary":
            collisions = CellBinaryCollisions(c["gamma"], c["B"], sp.length, sp.cells, c["scheme"])
        else:
            collisions = CellLandau(c["gamma"], c["B"], sp.length, sp.cells, c["delta"], c["locality"])
        return VlasovPoissonPIC(ParticleShape(SHAPES[sp.shape], sp.length, sp.cells),
                                SpectralPoisson1D(sp.length, sp.cells), collisions,
                                "strang" if c is None else c["splitting"],
                                None if c is None else STEPPERS[c["integrator"]])
