"""Exact covariance laws.

Maxwell molecules (gamma = 0), any initial density (Landau conserves mean and energy):

    dSigma/dt = 4B ( tr(Sigma) I - d Sigma ),
    Sigma(t) = Sigma_inf - (Sigma_inf - Sigma_0) exp(-4 d B (t - t0)),   Sigma_inf = tr(Sigma_0)/d I.

For any gamma the equilibrium is the Maxwellian with Sigma_inf = tr(Sigma_0)/d I.
"""
from __future__ import annotations

import math

import torch


def equilibrium_covariance(cov0: torch.Tensor) -> torch.Tensor:
    d = cov0.shape[0]
    return torch.trace(cov0) / d * torch.eye(d, dtype=cov0.dtype, device=cov0.device)


def maxwell_covariance(cov0: torch.Tensor, t: float, t0: float, B: float) -> torch.Tensor:
    d = cov0.shape[0]
    inf = equilibrium_covariance(cov0)
    return inf - (inf - cov0) * math.exp(-4 * d * B * (t - t0))
