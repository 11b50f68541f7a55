"""Phase-space initial densities: a cosine density perturbation times a Maxwellian mixture,

    f0(x, v) = (1 + alpha cos(k x)) / L  *  sum_s w_s N(v; m_s, C_s),     x in [0, L),

which covers the perturbed Maxwellian (Landau damping), two drifting beams (two-stream) and the
bump on tail. Sampling maps points u in [0, 1)^D to phase space: x = F^-1(u_0) with
F(x) = (x + (alpha/k) sin(k x)) / L (Newton), the component by u_1 against the cumulative
weights (mixtures only), v = m_s + L_s Phi^-1(u_rest) (L_s L_s^T = C_s).

* ``quiet``: a Hammersley-type set: u_0 = (i + c) / N on a regular grid (positions by the inverse
  CDF, c a random offset) and the other coordinates from a scrambled Halton sequence
  (scipy.stats.qmc), a low-discrepancy set in phase space. The sampling noise of the density and
  field is then far below the random one (measured, unperturbed Maxwellian, N = 2e5, L = 4 pi,
  M = 128: field energy 1e-7 to 7e-7 at t = 5 to 20 against 1e-4 to 4e-4 for a random start),
  so weak damping stays visible; the
  points are then put in a random order, so that the first K particles (``output.particles``)
  are a fair subset and not a slab of the box;
* ``random``: independent uniforms from the run's generator (Monte Carlo).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from scipy.special import ndtri
from scipy.stats import qmc

from landau.densities import GaussianMixture
from landau.dispersion import Drifting


@dataclass
class PerturbedMixture:
    length: float
    k: float
    alpha: float
    weights: np.ndarray            # (S,)
    means: np.ndarray              # (S, d)
    covs: np.ndarray               # (S, d, d)

    @property
    def dim(self) -> int:
        return self.means.shape[1]

    def velocity_score(self, v: torch.Tensor) -> torch.Tensor:
        """grad_v log f0(x, v) = grad log sum_s w_s N(v; m_s, C_s), the same at every x (the
        perturbation only scales the density), for velocities v (n, d)."""
        as_t = lambda a: torch.as_tensor(a, dtype=v.dtype, device=v.device)  # noqa: E731
        return GaussianMixture(as_t(self.weights), as_t(self.means), as_t(self.covs)).score(v)

    def components_v1(self) -> list[Drifting]:
        """The v_1 marginal as drifting Maxwellians (for the dispersion relation)."""
        return [Drifting(float(w), float(m[0]), math.sqrt(c[0, 0]))
                for w, m, c in zip(self.weights, self.means, self.covs)]

    def positions(self, u: np.ndarray) -> np.ndarray:
        """x = F^-1(u) for the density (1 + alpha cos(k x)) / L. The box holds m = k L / (2 pi)
        periods of the same mass, so u m = j + w picks period j and the fraction w of it, and
        x = j lambda + G^-1(w) with G(y) = (y + (alpha/k) sin(k y)) / lambda on one period
        (lambda = 2 pi / k), strictly increasing (G' >= (1 - alpha) / lambda > 0). G^-1 by Newton's
        method safeguarded by bisection: the bracket [lo, hi] shrinks every iteration, and a Newton
        step that leaves it is replaced by the midpoint."""
        k, a = self.k, self.alpha
        lam = 2 * np.pi / k
        periods = round(k * self.length / (2 * np.pi))
        j, w = np.divmod(u * periods, 1.0)
        target = w * lam
        lo, hi, y = np.zeros_like(target), np.full_like(target, lam), target.copy()
        for _ in range(100):
            g = y + (a / k) * np.sin(k * y) - target
            lo, hi = np.where(g < 0, y, lo), np.where(g > 0, y, hi)
            step = y - g / (1 + a * np.cos(k * y))
            y = np.where((step > lo) & (step < hi), step, 0.5 * (lo + hi))
            if np.max(hi - lo) < 1e-14 * lam or np.max(np.abs(g)) < 1e-15 * lam:
                break
        x = j * lam + y
        return np.where(x >= self.length, x - self.length, x)

    def from_uniform(self, u: np.ndarray) -> np.ndarray:
        """Phase-space points (N, 1 + d) from points u in [0, 1)^D, D = 1 + (S > 1) + d."""
        eps = np.finfo(float).eps
        x = self.positions(u[:, 0])
        if len(self.weights) > 1:
            comp = np.searchsorted(np.cumsum(self.weights) / self.weights.sum(), u[:, 1], side="right")
            comp = np.minimum(comp, len(self.weights) - 1)
            g = ndtri(np.clip(u[:, 2:], eps, 1 - eps))
        else:
            comp = np.zeros(len(u), dtype=int)
            g = ndtri(np.clip(u[:, 1:], eps, 1 - eps))
        chol = np.linalg.cholesky(self.covs)
        v = self.means[comp] + np.einsum("nij,nj->ni", chol[comp], g)
        return np.concatenate([x[:, None], v], axis=1)

    def uniforms(self, n: int, generator: torch.Generator, quiet: bool) -> np.ndarray:
        D = 1 + (len(self.weights) > 1) + self.dim
        if quiet:
            seed = int(torch.randint(0, 2**62, (1,), generator=generator))
            offset = float(torch.rand(1, generator=generator, dtype=torch.float64))
            rest = qmc.Halton(D - 1, scramble=True, seed=seed).random(n)
            u = np.concatenate([((np.arange(n) + offset) / n)[:, None], rest], axis=1)
            return u[torch.randperm(n, generator=generator).numpy()]
        return torch.rand(n, D, generator=generator, dtype=torch.float64).numpy()

    def sample(self, n: int, generator: torch.Generator, quiet: bool) -> torch.Tensor:
        """n phase-space points (float64, CPU) [x | v]."""
        return torch.from_numpy(self.from_uniform(self.uniforms(n, generator, quiet)))
