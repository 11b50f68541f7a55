"""Diagnostics of a particle ensemble X (n, d) with equal weights 1/n.

mean m = (1/n) sum X_p;  covariance (of the empirical measure) C = (1/n) sum (X_p - m)(X_p - m)^T;
energy E = (1/(2n)) sum |X_p|^2;  covariance rate of particles moving with U_p
(1/n) sum U_p (X_p - m)^T + (X_p - m) U_p^T;  estimated entropy production (Landau) (1/n) sum U_p . s_p <= 0.
"""
from __future__ import annotations

import torch


def mean_and_covariance(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(m, C) of the points x (..., n, d): m = (1/n) sum X_p (..., d) and the 1/n covariance
    C = (1/n) sum (X_p - m)(X_p - m)^T (..., d, d). The one definition of the sample mean and
    covariance: the output's ``mean`` and ``covariance``, whitening, the fitted Gaussian, the kernel
    bandwidths and SBTM's Gaussian part all use it."""
    m = x.mean(-2)
    dx = x - m[..., None, :]
    return m, dx.mT @ dx / x.shape[-2]


def mean(x: torch.Tensor) -> torch.Tensor:
    return x.mean(0)


def covariance(x: torch.Tensor) -> torch.Tensor:
    return mean_and_covariance(x)[1]


def covariance_rate(x: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """dC/dt of the particles X moving with velocities U: (1/n) sum [U_p (X_p - m)^T + (X_p - m) U_p^T].
    Exact for any U (the rate of m drops out: sum_p (X_p - m) = 0)."""
    g = u.mT @ (x - x.mean(0)) / len(x)
    return g + g.mT


def energy(x: torch.Tensor) -> torch.Tensor:
    return 0.5 * (x * x).sum() / len(x)


def entropy_production(u: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
    return (u * s).sum() / len(u)
