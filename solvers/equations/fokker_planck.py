"""Fokker-Planck equations in probability-flow form (``equation: {kind: fokker_planck, drift, diffusion}``).

    d_t f = -div(b f) + div(D grad f),   particles move with U = b(x) - D s(x).

Drifts: ``{kind: linear, A, c}`` (b = -A x + c) and ``{kind: double_well, a}``. For a linear drift
the mean and covariance of any solution obey m' = -A m + c, Sigma' = -A Sigma - Sigma A^T + 2D,
and a Gaussian initial density stays Gaussian (the exact solution).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Literal

import numpy as np

from landau import (DoubleWellDrift, FokkerPlanckEquation, GaussianFPSolution, GaussianMixture,
                    LinearDrift, linear_fp_moments)
from landau.settings import SettingsError, parse_settings
from solvers.equations import EQUATIONS, CovarianceLaw, Equation, Tensorize
from solvers.shapes import matrix, vector


@dataclass
class LinearDriftSettings:
    kind: Literal["linear"]
    A: float | list
    c: float | list = 0.0


@dataclass
class DoubleWellSettings:
    kind: Literal["double_well"]
    a: float = 1.0


DRIFTS = {"linear": LinearDriftSettings, "double_well": DoubleWellSettings}


@EQUATIONS.register
class FokkerPlanck(Equation):
    name = "fokker_planck"

    @dataclass
    class Settings:
        drift: dict
        diffusion: float | list = 1.0

    def validate(self) -> None:
        s, d = self.settings, self.dim
        kind = s.drift.get("kind")
        if not isinstance(kind, str) or kind not in DRIFTS:
            raise SettingsError(f"equation.drift.kind: expected one of {', '.join(DRIFTS)}, got {kind!r}")
        drift = parse_settings(DRIFTS[kind], s.drift, "equation.drift")
        if isinstance(drift, LinearDriftSettings):
            drift.A = matrix(drift.A, d, "equation.drift.A", spd=False).tolist()
            drift.c = vector(drift.c, d, "equation.drift.c").tolist()
        D = matrix(s.diffusion, d, "equation.diffusion", spd=True)
        s.drift = dataclasses.asdict(drift)
        s.diffusion = float(D[0, 0]) if np.allclose(D, D[0, 0] * np.eye(d)) else D.tolist()

    @property
    def linear(self) -> bool:
        return self.settings.drift["kind"] == "linear"

    def _D(self) -> np.ndarray:
        D = self.settings.diffusion
        return np.asarray(D) if isinstance(D, list) else D * np.eye(self.dim)

    def build(self, tensor: Tensorize) -> FokkerPlanckEquation:
        dr, D = self.settings.drift, self.settings.diffusion
        drift = LinearDrift(tensor(dr["A"]), tensor(dr["c"])) if self.linear else DoubleWellDrift(dr["a"])
        return FokkerPlanckEquation(drift, tensor(D) if isinstance(D, list) else D)

    def covariance_law(self, t0: float) -> CovarianceLaw | None:
        if not self.linear:
            return None
        A, c, D = np.asarray(self.settings.drift["A"]), np.asarray(self.settings.drift["c"]), self._D()

        def law(m0, c0, t):
            cov = linear_fp_moments(A, c, D, m0.cpu().double().numpy(), c0.cpu().double().numpy(), t - t0)[1]
            return c0.new_tensor(cov)
        return law

    def exact_solution(self, initial, t0: float, tensor: Tensorize):
        """N(m(t), Sigma(t)) when the drift is linear and the initial density a single Gaussian."""
        if not (self.linear and isinstance(initial, GaussianMixture) and len(initial.weights) == 1):
            return None
        return GaussianFPSolution(tensor(self.settings.drift["A"]), tensor(self.settings.drift["c"]),
                                  tensor(self._D()), initial.means[0], initial.covs[0], t0)
