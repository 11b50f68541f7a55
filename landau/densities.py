"""Closed-form initial densities: Gaussian and Gaussian mixture, with sampling, log f and score.

A mixture f = sum_k w_k N(mu_k, S_k) has score
    grad log f(x) = sum_k r_k(x) S_k^(-1) (mu_k - x),   r_k = w_k N_k(x) / f(x)  (softmax of logs).
"""
from __future__ import annotations

import math

import torch


class GaussianMixture:
    """f(x) = sum_k w_k N(x; mu_k, S_k); time-independent (``t`` is accepted and ignored)."""

    def __init__(self, weights: torch.Tensor, means: torch.Tensor, covs: torch.Tensor) -> None:
        self.weights = weights / weights.sum()
        self.means, self.covs = means, covs                     # (K, d), (K, d, d)
        self.chol = torch.linalg.cholesky(covs)
        self.prec = torch.cholesky_inverse(self.chol)
        self.logdet = 2 * torch.log(torch.diagonal(self.chol, dim1=-2, dim2=-1)).sum(-1)

    @property
    def mean(self) -> torch.Tensor:
        return self.weights @ self.means

    @property
    def cov(self) -> torch.Tensor:
        m = self.mean
        dev = self.means - m
        return (self.weights[:, None, None] * (self.covs + dev[:, :, None] * dev[:, None, :])).sum(0)

    def _component_logs(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        diff = x[:, None, :] - self.means[None]                 # (n, K, d)
        sol = torch.einsum("kij,nkj->nki", self.prec, diff)     # S_k^-1 (x - mu_k)
        d = x.shape[1]
        logn = -0.5 * ((diff * sol).sum(-1) + self.logdet + d * math.log(2 * math.pi))
        return torch.log(self.weights) + logn, sol

    def log_density(self, x: torch.Tensor, t: float = 0.0) -> torch.Tensor:
        return torch.logsumexp(self._component_logs(x)[0], dim=1)

    def score(self, x: torch.Tensor, t: float = 0.0) -> torch.Tensor:
        logs, sol = self._component_logs(x)
        r = torch.softmax(logs, dim=1)
        return -(r[..., None] * sol).sum(1)

    def sample(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """n draws; the random numbers come from ``generator`` (on its own device)."""
        k = torch.multinomial(self.weights.to(generator.device), n, replacement=True, generator=generator)
        eps = torch.randn(n, self.means.shape[1], generator=generator, dtype=self.means.dtype,
                          device=generator.device)
        k, eps = k.to(self.means.device), eps.to(self.means.device)
        return self.means[k] + torch.einsum("nij,nj->ni", self.chol[k], eps)


def gaussian(mean: torch.Tensor, cov: torch.Tensor) -> GaussianMixture:
    """N(mean, cov) as a one-component mixture."""
    return GaussianMixture(torch.ones(1, dtype=mean.dtype, device=mean.device), mean[None], cov[None])
