"""Whitening of a point cloud, shared by the transformer (affine equivariance) and SBTM.

For points x (…, n, d) with mean m and covariance C = cov(x) + eps (tr cov(x) / d) I, cov(x) the
1/n sample covariance of ``landau.diagnostics.mean_and_covariance`` (eps relative, so translation
and isotropic scaling leave the whitened points unchanged),

    A = C^(-1/2) (symmetric),   x_w = (x - m) A,   log|det A| = -(1/2) log det C,

from the eigendecomposition C = V diag(lam) V^T: A = V diag(lam^-1/2) V^T, A^-1 = V diag(lam^1/2) V^T.
"""
from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

from landau.diagnostics import mean_and_covariance


class Whitening(NamedTuple):
    """m (…, 1, d), A = C^(-1/2) and A^-1 = C^(1/2) (…, d, d), log|det A| (…,)."""

    mean: Tensor
    A: Tensor
    A_inv: Tensor
    logdet: Tensor

    def apply(self, z: Tensor) -> Tensor:
        return (z - self.mean) @ self.A


def whiten(x: Tensor, eps: float) -> Whitening:
    """Whitening of the points x (…, n, d), see the module docstring."""
    d = x.shape[-1]
    m, cov = mean_and_covariance(x)
    m = m[..., None, :]
    scale = torch.diagonal(cov, dim1=-2, dim2=-1).mean(-1).clamp_min(torch.finfo(x.dtype).tiny)
    c = cov + eps * scale[..., None, None] * torch.eye(d, dtype=x.dtype, device=x.device)
    lam, v = torch.linalg.eigh(c)
    lam = lam.clamp_min(torch.finfo(x.dtype).tiny)
    A = (v * lam.rsqrt()[..., None, :]) @ v.mT
    A_inv = (v * lam.sqrt()[..., None, :]) @ v.mT
    return Whitening(m, A, A_inv, -0.5 * torch.log(lam).sum(-1))
