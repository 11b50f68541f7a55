"""The homogeneous Landau equation (``equation: {kind: landau, gamma, B, delta, method, tile}``).

    d_t f = div_v Int A(v - w) (grad log f(v) - grad log f(w)) f(v) f(w) dw,
    A(z) = B |z|^gamma (|z|^2 I - z z^T);

the particle field is :class:`landau.LandauEquation`. For Maxwell molecules (gamma = 0) the
covariance obeys dSigma/dt = 4B (tr Sigma I - d Sigma) from any initial data. A case with
``species:`` gets :class:`landau.species.SpeciesLandauEquation` (c_ab = B e_a^2 e_b^2 L_ab, with
``coulomb_log`` the matrix L; see ``solvers/species.py``).

``method: binary`` (with ``scheme: takizuka_abe | nanbu``) replaces the particle velocity field by
binary-collision Monte Carlo (:class:`landau.binary_collisions.BinaryCollisions`, angle variance
from the same B and gamma): no score oracle, the equation steps itself with the problem's seeded
generator; same output, checkpoints and compare. With ``species:``,
:class:`landau.binary_collisions.SpeciesBinaryCollisions` (masses and charges; equal particle weights).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import torch

from landau import GaussianMixture, LandauEquation, maxwell_covariance
from landau.binary_collisions import SCHEMES, BinaryCollisions, SpeciesBinaryCollisions
from landau.species import Species, SpeciesLandauEquation
from landau.settings import SettingsError
from solvers.equations import EQUATIONS, CovarianceLaw, Equation, Tensorize
from solvers.output import Variable


@EQUATIONS.register
class Landau(Equation):
    name = "landau"
    collisional = True

    @dataclass
    class Settings:
        gamma: float = 0.0
        B: float = 1.0 / 24
        delta: float = 0.0                      # |z|^gamma -> (|z|^2 + delta^2)^(gamma/2)
        method: Literal["auto", "moments", "direct", "binary"] = "auto"
        tile: int | None = None
        coulomb_log: list | None = None         # L_ab of a multi-species case (default all ones)
        scheme: str | None = None               # method: binary: takizuka_abe (default) | nanbu

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
        if s.method != "binary":
            if s.scheme is not None:
                raise SettingsError("equation.scheme: only for method: binary (binary-collision Monte Carlo)")
            return
        s.scheme = s.scheme or "takizuka_abe"
        if s.scheme not in SCHEMES:
            raise SettingsError(f"equation.scheme: expected one of {', '.join(SCHEMES)}, got {s.scheme!r}")
        if self.dim not in (2, 3) or (s.scheme == "nanbu" and self.dim != 3):
            raise SettingsError(f"dim: binary collisions ({s.scheme}) exist for d = "
                                f"{'3' if s.scheme == 'nanbu' else '2 and 3'}, got {self.dim}")
        if s.delta != 0:
            raise SettingsError("equation.delta: binary collisions use the unregularised |u|^gamma (delta: 0)")

    @property
    def binary(self) -> bool:
        return self.settings.method == "binary"

    @property
    def uses_score(self) -> bool:                   # type: ignore[override]
        """Binary collisions need no score (``--oracle`` is refused)."""
        return not self.binary

    @property
    def steps_itself(self) -> bool:                 # type: ignore[override]
        """Binary collisions step themselves (``BinaryCollisions.advance``)."""
        return self.binary

    @property
    def integrators(self) -> tuple[str, ...]:       # type: ignore[override]
        """Binary collisions: one first-order collision step per dt, named ``euler``."""
        return ("euler",) if self.binary else ("euler", "heun", "rk4")

    def resolved(self) -> dict:
        """The settings; ``coulomb_log`` only where given (single-species cases are unchanged)."""
        out = super().resolved()
        if out["coulomb_log"] is None:
            del out["coulomb_log"]
        if out["scheme"] is None:
            del out["scheme"]
        return out

    def state_variables(self) -> dict[str, Variable]:
        """Binary collisions have no score: ``x`` only."""
        out = super().state_variables()
        if self.binary:
            del out["score"]
        return out

    def build(self, tensor: Tensorize) -> LandauEquation | BinaryCollisions:
        s = self.settings
        if self.binary:
            return BinaryCollisions(s.gamma, s.B, s.scheme)
        return LandauEquation(s.gamma, s.B, s.delta, s.method, s.tile)

    def build_species(self, species: list[Species]) -> SpeciesLandauEquation | SpeciesBinaryCollisions:
        """The multi-species operator for a case with ``species:`` (binary collisions: species of equal
        particle weights wherever they collide)."""
        s = self.settings
        if self.binary:
            try:
                return SpeciesBinaryCollisions(species, s.gamma, s.B, s.coulomb_log, s.scheme)
            except ValueError as exc:
                raise SettingsError(f"species: {exc}") from None
        return SpeciesLandauEquation(species, s.gamma, s.B, s.coulomb_log, s.delta, s.method, s.tile)

    def maxwell_moments_B(self) -> float | None:
        return self.settings.B if self.settings.gamma == 0 else None

    def initial_covariance_rate(self, density: Any) -> torch.Tensor | None:
        """The exact dS/dt at t0 of the Landau operator (delta = 0) for a ``gaussian`` or
        ``gaussian_mixture`` initial density (:mod:`landau.gaussian_rates`), else None."""
        from landau.gaussian_rates import mixture_covariance_rate   # deferred: scipy.special
        s = self.settings
        if not isinstance(density, GaussianMixture) or s.delta != 0:
            return None
        rate = mixture_covariance_rate(density.weights.cpu().double().numpy(), density.means.cpu().double().numpy(),
                                       density.covs.cpu().double().numpy(), s.gamma, s.B)
        return torch.as_tensor(rate).to(density.means)

    def covariance_law(self, t0: float) -> CovarianceLaw | None:
        if self.settings.gamma != 0:
            return None
        B = self.settings.B
        return lambda m0, c0, t: maxwell_covariance(c0, t, t0, B)
