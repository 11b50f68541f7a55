"""Closed-form densities with sampling, log f and score: affine mixtures of five base families.

Every density is a mixture of K affinely mapped base densities g (one family per component):

    f(x) = sum_k w_k |det M_k|^-1 g_k(z_k),   z_k = (x - b_k) M_k^-1   (x = z M_k + b_k, row vectors)
    log f(x) = logsumexp_k l_k(x),   l_k = log w_k + log g_k(z_k) - log|det M_k|
    s(x) = grad log f(x) = sum_k r_k(x) s_gk(z_k) M_k^-T,   r_k = softmax_k l_k(x).

Base families in d dimensions (each normalised, with parameter theta; r = |z|):

    gauss    g = (2 pi)^(-d/2) exp(-r^2/2)                         s = -z
    bkw      g = gauss(z) (a + (1 - a) r^2 / d),  theta = a in [0, 1] s = -z + 2 (1-a)/d z / (a + (1-a) r^2/d)
             (the BKW solution f ∝ exp(-r^2/2K)(P + Q r^2) after scaling by sqrt K; a = 0 is the
             zero-at-origin shell)
    shell    g = r^(2p) exp(-r^2/2) / Z_p,  Z_p = 2^(p+d/2) pi^(d/2) Gamma(p+d/2)/Gamma(d/2),
             theta = p in {0, 1/2, 1, ...}: a ring / shell of radius ~ sqrt(2p + d - 1)
                                                                   s = (2p / r^2 - 1) z
    student  g = Gamma((nu+d)/2) / (Gamma(nu/2) (nu pi)^(d/2)) (1 + r^2/nu)^(-(nu+d)/2), theta = nu
                                                                   s = -(nu + d) z / (nu + r^2)
    laplace  g = 2^-d exp(-sum_i |z_i|)                            s = -sign(z)

Samplers: gauss z ~ N(0, I); shell z = u sqrt(chi^2_(d+2p)) with u uniform on the sphere; bkw is
gauss with probability a and the p = 1 shell otherwise; student z = N(0, I) / sqrt(chi^2_nu / nu);
laplace z = E1 - E2 with E = -log(1 - U) ~ Exp(1). chi^2_k for integer k is a sum of k squared normals.

``GaussianMixture`` (the solvers' initial data) is the Gaussian case with M_k = L_k^T, the
Cholesky factor of S_k = L_k L_k^T, and score sum_k r_k(x) S_k^(-1) (mu_k - x).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, fields

import torch
from torch import Tensor

FAMILIES = ("gauss", "bkw", "shell", "student", "laplace")


def base_log_density_and_score(family: int, z: Tensor, th: Tensor) -> tuple[Tensor, Tensor]:
    """log g(z) (m, n) and s_g(z) (m, n, d) of one family for z (m, n, d), parameters th (m,)."""
    d = z.shape[-1]
    r2 = (z * z).sum(-1)
    th = th[:, None]
    gauss = -r2 / 2 - d / 2 * math.log(2 * math.pi)
    if family == 0:
        return gauss, -z
    if family == 1:
        q = th + (1 - th) * r2 / d
        return gauss + torch.log(q), z * (2 * (1 - th) / d / q - 1)[..., None]
    if family == 2:
        log_z = ((th + d / 2) * math.log(2) + d / 2 * math.log(math.pi) + torch.lgamma(th + d / 2)
                 - math.lgamma(d / 2))
        return torch.xlogy(th, r2) - r2 / 2 - log_z, z * (2 * th / r2 - 1)[..., None]
    if family == 3:
        log_z = torch.lgamma(th / 2) - torch.lgamma((th + d) / 2) + d / 2 * torch.log(th * math.pi)
        return -(th + d) / 2 * torch.log1p(r2 / th) - log_z, -z * ((th + d) / (th + r2))[..., None]
    return -z.abs().sum(-1) - d * math.log(2), -torch.sign(z)


def _chi2(dof: Tensor, generator: torch.Generator, dtype: torch.dtype) -> Tensor:
    """chi^2 draws with integer degrees of freedom dof (m,): masked sums of squared normals."""
    k = int(dof.max()) if len(dof) else 0
    g = torch.randn(len(dof), k, generator=generator, dtype=dtype, device=generator.device)
    return (g * g * (torch.arange(k, device=dof.device) < dof[:, None])).sum(-1)


def base_sample(family: int, th: Tensor, d: int, generator: torch.Generator, dtype: torch.dtype) -> Tensor:
    """One draw z (m, d) of the family for each parameter in th (m,)."""
    m, dev = len(th), generator.device
    z = torch.randn(m, d, generator=generator, dtype=dtype, device=dev)
    if family == 1:  # gauss with probability a, else the p = 1 shell
        th = 1.0 * (torch.rand(m, generator=generator, dtype=dtype, device=dev) >= th)
    if family in (1, 2):
        r = _chi2((d + 2 * th).round().long(), generator, dtype).sqrt()
        return z * (r / z.norm(dim=-1))[:, None]
    if family == 3:
        return z / (_chi2(th.round().long(), generator, dtype) / th).sqrt()[:, None]
    if family == 4:
        # E = -log(1 - U), U ~ U[0, 1): finite even when rand returns exactly 0 (-log(U) gave inf)
        e = -torch.log1p(-torch.rand(2, m, d, generator=generator, dtype=dtype, device=dev))
        return e[0] - e[1]
    return z


@dataclass
class Mixture:
    """B mixtures of K (padded) components in d dimensions, see the module docstring.

    log_w (B, K) log-weights (-inf for padding), family (B, K) index into FAMILIES, theta (B, K),
    M (B, K, d, d), shift b (B, K, d).
    """

    log_w: Tensor
    family: Tensor
    theta: Tensor
    M: Tensor
    shift: Tensor

    def to(self, device: torch.device | str) -> "Mixture":
        return Mixture(*(getattr(self, f.name).to(device) for f in fields(self)))

    def sample(self, n: int, generator: torch.Generator) -> Tensor:
        """n i.i.d. points from each mixture, (B, n, d), on the generator's device."""
        B, K, d = self.shift.shape
        comp = torch.multinomial(self.log_w.exp(), n, replacement=True, generator=generator)  # (B, n)
        b = torch.arange(B, device=comp.device)[:, None]
        fam, th = self.family[b, comp].flatten(), self.theta[b, comp].flatten()
        z = torch.empty(B * n, d, dtype=self.M.dtype, device=self.M.device)
        for f in range(len(FAMILIES)):
            sel = (fam == f).nonzero().squeeze(-1)
            z[sel] = base_sample(f, th[sel], d, generator, self.M.dtype)
        return torch.einsum("bni,bnij->bnj", z.view(B, n, d), self.M[b, comp]) + self.shift[b, comp]

    def _component_terms(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """l_k(x) (B, n, K) and the component scores s_gk(z_k) M_k^-T (B, n, K, d)."""
        B, K, d = self.shift.shape
        M_inv = torch.linalg.inv(self.M)
        z = torch.einsum("bnkj,bkji->bkni", x[:, :, None] - self.shift[:, None], M_inv).reshape(B * K, -1, d)
        log_g, s_g = torch.empty(z.shape[:2], dtype=z.dtype, device=z.device), torch.empty_like(z)
        fam, th = self.family.flatten(), self.theta.flatten()
        for f in range(len(FAMILIES)):
            sel = (fam == f).nonzero().squeeze(-1)
            log_g[sel], s_g[sel] = base_log_density_and_score(f, z[sel], th[sel])
        log_det = torch.linalg.slogdet(self.M).logabsdet                          # (B, K)
        l = log_g.view(B, K, -1).transpose(1, 2) + (self.log_w - log_det)[:, None]
        s = torch.einsum("bkni,bkji->bnkj", s_g.view(B, K, -1, d), M_inv)
        return l, s

    def log_density(self, x: Tensor) -> Tensor:
        """log f at x (B, n, d) -> (B, n)."""
        return torch.logsumexp(self._component_terms(x)[0], dim=-1)

    def score(self, x: Tensor) -> Tensor:
        """grad log f at x (B, n, d) -> (B, n, d)."""
        l, s = self._component_terms(x)
        return (torch.softmax(l, dim=-1)[..., None] * s).sum(-2)


class GaussianMixture:
    """f(x) = sum_k w_k N(x; mu_k, S_k) for x (n, d); time-independent (``t`` is accepted and ignored)."""

    def __init__(self, weights: Tensor, means: Tensor, covs: Tensor) -> None:
        self.weights = weights / weights.sum()
        self.means, self.covs = means, covs                     # (K, d), (K, d, d)
        K = len(weights)
        zeros = torch.zeros(1, K, dtype=means.dtype, device=means.device)
        self.mixture = Mixture(torch.log(self.weights)[None], zeros.long(), zeros,
                               torch.linalg.cholesky(covs).mT[None], means[None])

    @property
    def mean(self) -> Tensor:
        return self.weights @ self.means

    @property
    def cov(self) -> Tensor:
        dev = self.means - self.mean
        return (self.weights[:, None, None] * (self.covs + dev[:, :, None] * dev[:, None, :])).sum(0)

    def log_density(self, x: Tensor, t: float = 0.0) -> Tensor:
        return self.mixture.log_density(x[None])[0]

    def score(self, x: Tensor, t: float = 0.0) -> Tensor:
        return self.mixture.score(x[None])[0]

    def sample(self, n: int, generator: torch.Generator) -> Tensor:
        """n draws; the random numbers come from ``generator`` (on its own device)."""
        return self.mixture.to(generator.device).sample(n, generator)[0].to(self.means.device)


def gaussian(mean: Tensor, cov: Tensor) -> GaussianMixture:
    """N(mean, cov) as a one-component mixture."""
    return GaussianMixture(torch.ones(1, dtype=mean.dtype, device=mean.device), mean[None], cov[None])
