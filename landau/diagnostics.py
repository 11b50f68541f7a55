"""Diagnostics of a particle ensemble X (n, d) with equal weights 1/n.

mean m = (1/n) sum X_p;  covariance (of the empirical measure) C = (1/n) sum (X_p - m)(X_p - m)^T;
energy E = (1/(2n)) sum |X_p|^2;  estimated entropy production (Landau) (1/n) sum U_p . s_p <= 0.
"""
from __future__ import annotations

import torch


def mean(x: torch.Tensor) -> torch.Tensor:
    return x.mean(0)


def covariance(x: torch.Tensor) -> torch.Tensor:
    dx = x - x.mean(0)
    return dx.T @ dx / len(x)


def energy(x: torch.Tensor) -> torch.Tensor:
    return 0.5 * (x * x).sum() / len(x)


def entropy_production(u: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
    return (u * s).sum() / len(u)
