"""Training data: random Gaussian mixtures with closed-form log-density and score.

A batch holds B mixtures (padded to ``max_modes`` components; unused ones get weight 0)

    f(x) = sum_k w_k N(x; mu_k, Sigma_k),   Sigma_k = R_k diag(sigma_k^2) R_k^T,

with K ~ U{1..max_modes}, mu_k ~ U[-3, 3]^d, sigma_k^2 ~ U[0.2, 1]^d, R_k a Haar-random rotation
per component, then the whole mixture rotated by one more Haar rotation Q (mu_k -> Q mu_k,
Sigma_k -> Q Sigma_k Q^T) so that no direction of the cube of means is special.
Weights: Dirichlet(1, ..., 1) (normalised Exp(1) draws) or uniform 1/K, chosen per mixture.

Targets, computed in log space (stable far in the tails):

    l_k(x)   = log w_k - |L_k^-1 (x - mu_k)|^2 / 2 - log det L_k - (d/2) log 2 pi,   L_k = R_k diag(sigma_k)
    log f(x) = logsumexp_k l_k(x)
    s(x)     = sum_k r_k(x) (-Sigma_k^-1 (x - mu_k)),   r_k = softmax_k l_k(x).

Everything is drawn from one ``torch.Generator``, so a batch is reproducible from its state.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor


def random_rotation(shape: tuple[int, ...], d: int, generator: torch.Generator,
                    dtype: torch.dtype = torch.float32) -> Tensor:
    """Haar-distributed orthogonal matrices (*shape, d, d): QR of a Gaussian, signs fixed by diag(R)."""
    g = torch.randn(*shape, d, d, generator=generator, dtype=dtype, device=generator.device)
    q, r = torch.linalg.qr(g)
    return q * torch.sign(torch.diagonal(r, dim1=-2, dim2=-1)).unsqueeze(-2)


@dataclass
class GMM:
    """B Gaussian mixtures with K (padded) components in d dimensions.

    log_w (B, K) log-weights (-inf for padding), mean (B, K, d), rot (B, K, d, d) the R_k
    (columns = principal axes), std (B, K, d) the sigma_k.
    """

    log_w: Tensor
    mean: Tensor
    rot: Tensor
    std: Tensor

    def sample(self, n: int, generator: torch.Generator) -> Tensor:
        """n i.i.d. points from each mixture, (B, n, d)."""
        B, K, d = self.mean.shape
        comp = torch.multinomial(self.log_w.exp(), n, replacement=True, generator=generator)  # (B, n)
        z = torch.randn(B, n, d, generator=generator, dtype=self.mean.dtype, device=self.mean.device)
        b = torch.arange(B, device=comp.device)[:, None]
        # x = mu_k + R_k (sigma_k * z) with k the component drawn for each point
        return self.mean[b, comp] + torch.einsum("bnij,bnj->bni", self.rot[b, comp], self.std[b, comp] * z)

    def _component_terms(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """l_k(x) (B, n, K) and the whitened offsets u = diag(1/sigma_k) R_k^T (x - mu_k) (B, n, K, d)."""
        d = x.shape[-1]
        diff = x[:, :, None, :] - self.mean[:, None]                               # (B, n, K, d)
        u = torch.einsum("bkji,bnkj->bnki", self.rot, diff) / self.std[:, None]
        log_norm = -torch.log(self.std).sum(-1) - 0.5 * d * math.log(2 * math.pi)  # (B, K)
        return self.log_w[:, None] + log_norm[:, None] - 0.5 * (u * u).sum(-1), u

    def log_density(self, x: Tensor) -> Tensor:
        """log f at x (B, n, d) -> (B, n)."""
        return torch.logsumexp(self._component_terms(x)[0], dim=-1)

    def score(self, x: Tensor) -> Tensor:
        """grad log f at x (B, n, d) -> (B, n, d)."""
        l, u = self._component_terms(x)
        r = torch.softmax(l, dim=-1)                                                 # (B, n, K)
        # -Sigma_k^-1 (x - mu_k) = -R_k diag(1/sigma_k) u
        comp = -torch.einsum("bkij,bnkj->bnki", self.rot, u / self.std[:, None])
        return (r[..., None] * comp).sum(-2)


def random_gmm(batch: int, dim: int, generator: torch.Generator, max_modes: int = 10,
               mean_range: float = 3.0, var_range: tuple[float, float] = (0.2, 1.0),
               dtype: torch.dtype = torch.float32) -> GMM:
    """Draw ``batch`` random mixtures as described in the module docstring."""
    dev = generator.device
    u = lambda *s: torch.rand(*s, generator=generator, dtype=dtype, device=dev)
    modes = torch.randint(1, max_modes + 1, (batch,), generator=generator, device=dev)
    active = torch.arange(max_modes, device=dev)[None] < modes[:, None]            # (B, K)
    dirichlet = -torch.log(u(batch, max_modes))                                     # Exp(1) draws
    uniform = torch.ones_like(dirichlet)
    raw = torch.where(u(batch, 1) < 0.5, dirichlet, uniform) * active
    log_w = torch.log(raw / raw.sum(-1, keepdim=True))                              # -inf on padding
    mean = mean_range * (2 * u(batch, max_modes, dim) - 1)
    lo, hi = var_range
    std = torch.sqrt(lo + (hi - lo) * u(batch, max_modes, dim))
    rot = random_rotation((batch, max_modes), dim, generator, dtype)
    q = random_rotation((batch,), dim, generator, dtype)
    return GMM(log_w, torch.einsum("bij,bkj->bki", q, mean), q[:, None] @ rot, std)


@dataclass
class Batch:
    """Context x (B, n_x, d) and queries y (B, n_y, d), drawn independently from the same mixtures,
    with exact targets log f and score at both."""

    x: Tensor
    y: Tensor
    logf_x: Tensor
    score_x: Tensor
    logf_y: Tensor
    score_y: Tensor


def make_batch(gmm: GMM, n_context: int, n_query: int, generator: torch.Generator) -> Batch:
    """Sample context and query sets from ``gmm`` and attach the exact targets."""
    x, y = gmm.sample(n_context, generator), gmm.sample(n_query, generator)
    return Batch(x, y, gmm.log_density(x), gmm.score(x), gmm.log_density(y), gmm.score(y))


def training_batch(batch: int, dim: int, n_range: tuple[int, int], n_query: int,
                   generator: torch.Generator, max_modes: int = 10) -> Batch:
    """Fresh mixtures and a context size n_x ~ U{n_range} shared by the batch."""
    n_x = int(torch.randint(n_range[0], n_range[1] + 1, (1,), generator=generator, device=generator.device))
    return make_batch(random_gmm(batch, dim, generator, max_modes), n_x, n_query, generator)


def relative_score_mse(score: Tensor, target: Tensor) -> Tensor:
    """Relative score MSE in percent, per sample set: sum |s - s*|^2 / sum |s*|^2 * 100 -> (B,)."""
    return 100 * ((score - target) ** 2).sum((-2, -1)) / (target**2).sum((-2, -1))


def held_out(count: int, dim: int, n: int, seed: int) -> tuple[GMM, Tensor]:
    """``count`` fixed mixtures (from their own seeded generator) and n samples of each, (count, n, d)."""
    g = torch.Generator().manual_seed(seed)
    gmm = random_gmm(count, dim, g)
    return gmm, gmm.sample(n, g)
