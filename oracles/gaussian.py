"""Score of the Gaussian fitted to the particles: the floor every score oracle must beat.

With the particles' mean m and covariance C = (1/n) sum_p (X_p - m)(X_p - m)^T (the 1/n
normalisation of the output's ``covariance``),

    s(x) = -C^(-1) (x - m),      log f(x) = -(1/2)(x - m)^T C^(-1) (x - m) - (1/2) log det(2 pi C).

Cost O(n d^2 + d^3). It knows nothing about the particles but their first two moments, and it
satisfies the empirical Stein identities of degree <= 1 exactly:

    (1/n) sum_p s_p = 0,      (1/n) sum_p s_p (X_p - m)^T = -I.
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import torch

from landau import diagnostics
from oracles.base import ScoreOracle
from oracles.registry import register


def fitted_gaussian(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(m, L) with m the mean and L L^T = C the Cholesky factor of the 1/n covariance of x."""
    m, C = diagnostics.mean_and_covariance(x)
    return m, torch.linalg.cholesky(C)


@register
class GaussianOracle(ScoreOracle):
    """s = -C^(-1)(x - m) of the particles' own mean and 1/n covariance; no settings."""

    name = "gaussian"

    @dataclass
    class Settings:
        pass

    def __init__(self, settings: "GaussianOracle.Settings | None" = None, context=None) -> None:
        super().__init__(settings or self.Settings(), context)

    def score(self, x: torch.Tensor, t: float) -> torch.Tensor:
        m, L = fitted_gaussian(x)
        return -torch.cholesky_solve((x - m).T, L).T

    def score_groups(self, x: torch.Tensor, group: torch.Tensor, groups: int, t: float) -> torch.Tensor:
        """The fitted Gaussian of every group at once (local Maxwellians of the cells): group means
        and 1/N_c covariances by ``index_add``, one batched Cholesky. A group of at most d
        particles has no positive-definite covariance: it gets the covariance of all particles
        (about its own mean), with a warning."""
        n, d = x.shape
        count = torch.bincount(group, minlength=groups).to(x.dtype)
        mean = torch.zeros(groups, d, dtype=x.dtype, device=x.device).index_add_(0, group, x)
        mean = mean / count.clamp(min=1)[:, None]
        y = x - mean[group]
        cov = torch.zeros(groups, d, d, dtype=x.dtype, device=x.device).index_add_(0, group, y[:, :, None] * y[:, None, :])
        cov = cov / count.clamp(min=1)[:, None, None]
        small = count <= d
        if bool(small.any()):
            warnings.warn(f"gaussian: {int(small.sum())} of {groups} groups have at most d = {d} particles; "
                          "they use the covariance of all particles", RuntimeWarning, stacklevel=2)
            cov[small] = diagnostics.mean_and_covariance(x)[1]
        L = torch.linalg.cholesky(cov)
        return -torch.cholesky_solve(y[:, :, None], L[group])[:, :, 0]

    def log_density(self, x: torch.Tensor, t: float) -> torch.Tensor:
        m, L = fitted_gaussian(x)
        y = torch.linalg.solve_triangular(L, (x - m).T, upper=False)        # L^-1 (x - m)
        logdet = 2 * torch.log(torch.diagonal(L)).sum()
        return -0.5 * (y * y).sum(0) - 0.5 * logdet - 0.5 * x.shape[1] * math.log(2 * math.pi)
