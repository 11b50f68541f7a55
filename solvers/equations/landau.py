"""The homogeneous Landau equation (``equation: {kind: landau, gamma, B, delta, method, tile}``).

    d_t f = div_v Int A(v - w) (grad log f(v) - grad log f(w)) f(v) f(w) dw,
    A(z) = B |z|^gamma (|z|^2 I - z z^T);

the particle field is :class:`landau.LandauEquation`. For Maxwell molecules (gamma = 0) the
covariance obeys dSigma/dt = 4B (tr Sigma I - d Sigma) from any initial data. A case with
``species:`` gets :class:`landau.species.SpeciesLandauEquation` (c_ab = B e_a^2 e_b^2 L_ab, with
``coulomb_log`` the matrix L; see ``solvers/species.py``).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from landau import LandauEquation, maxwell_covariance
from landau.species import Species, SpeciesLandauEquation
from landau.settings import SettingsError
from solvers.equations import EQUATIONS, CovarianceLaw, Equation, Tensorize


@EQUATIONS.register
class Landau(Equation):
    name = "landau"
    collisional = True

    @dataclass
    class Settings:
        gamma: float = 0.0
        B: float = 1.0 / 24
        delta: float = 0.0                      # |z|^gamma -> (|z|^2 + delta^2)^(gamma/2)
        method: Literal["auto", "moments", "direct"] = "auto"
        tile: int | None = None
        coulomb_log: list | None = None         # L_ab of a multi-species case (default all ones)

    def validate(self) -> None:
        s = self.settings
        if self.dim < 2:
            raise SettingsError(f"dim: the Landau equation needs dim >= 2, got {self.dim}")
        if s.B <= 0:
            raise SettingsError(f"equation.B: must be positive, got {s.B}")
        if s.delta < 0:
            raise SettingsError(f"equation.delta: must be >= 0, got {s.delta}")
        if s.method == "moments" and s.gamma != 0:
            raise SettingsError("equation.method: 'moments' exists for gamma = 0 only")
        if s.tile is not None and s.tile < 1:
            raise SettingsError(f"equation.tile: must be >= 1, got {s.tile}")

    def resolved(self) -> dict:
        """The settings; ``coulomb_log`` only where given (single-species cases are unchanged)."""
        out = super().resolved()
        if out["coulomb_log"] is None:
            del out["coulomb_log"]
        return out

    def build(self, tensor: Tensorize) -> LandauEquation:
        s = self.settings
        return LandauEquation(s.gamma, s.B, s.delta, s.method, s.tile)

    def build_species(self, species: list[Species]) -> SpeciesLandauEquation:
        """The multi-species operator for a case with ``species:``."""
        s = self.settings
        return SpeciesLandauEquation(species, s.gamma, s.B, s.coulomb_log, s.delta, s.method, s.tile)

    def maxwell_moments_B(self) -> float | None:
        return self.settings.B if self.settings.gamma == 0 else None

    def covariance_law(self, t0: float) -> CovarianceLaw | None:
        if self.settings.gamma != 0:
            return None
        B = self.settings.B
        return lambda m0, c0, t: maxwell_covariance(c0, t, t0, B)
