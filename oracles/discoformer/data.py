"""Training data: random densities with closed-form log-density and score.

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
             theta = p in {0, 1/2, ..., P_MAX}: a ring / shell of radius ~ sqrt(2p + d - 1)
                                                                   s = (2p / r^2 - 1) z
    student  g = Gamma((nu+d)/2) / (Gamma(nu/2) (nu pi)^(d/2)) (1 + r^2/nu)^(-(nu+d)/2), theta = nu
                                                                   s = -(nu + d) z / (nu + r^2)
    laplace  g = 2^-d exp(-sum_i |z_i|)                            s = -sign(z)

Samplers: gauss z ~ N(0, I); shell z = u sqrt(chi^2_(d+2p)) with u uniform on the sphere; bkw is
gauss with probability a and the p = 1 shell otherwise; student z = N(0, I) / sqrt(chi^2_nu / nu);
laplace z = E1 - E2 with E Exp(1). chi^2_k for integer k is a sum of k squared normals.

The prior (``random_density``) draws, per sample set, one of
* the paper's GMM prior (``random_gmm``): K ~ U{1..10}, mu_k ~ U[-3, 3]^d, sigma_k^2 ~ U[0.2, 1]^d,
  Haar rotations per component and for the whole mixture, Dirichlet(1) or uniform weights;
* a kinetic density: K = 1 (half of the time) or K ~ U{2..4} components of random families with
  random affine maps M_k = diag(sigma_k) R_k, anisotropic with variance ratios up to 1:20 (a
  general log-uniform diagonal, or bi-Maxwellian: one axis apart from the others), means spread
  U[-3, 3]^d for K > 1.
Everything is drawn from one ``torch.Generator``, so a batch is reproducible from its state.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

FAMILIES = ("gauss", "bkw", "shell", "student", "laplace")
P_MAX, NU_RANGE = 8.0, (3, 12)  # shell exponent p <= P_MAX; Student-t nu in NU_RANGE


def random_rotation(shape: tuple[int, ...], d: int, generator: torch.Generator,
                    dtype: torch.dtype = torch.float32) -> Tensor:
    """Haar-distributed orthogonal matrices (*shape, d, d): QR of a Gaussian, signs fixed by diag(R)."""
    g = torch.randn(*shape, d, d, generator=generator, dtype=dtype, device=generator.device)
    q, r = torch.linalg.qr(g)
    return q * torch.sign(torch.diagonal(r, dim1=-2, dim2=-1)).unsqueeze(-2)


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
        e = -torch.log(torch.rand(2, m, d, generator=generator, dtype=dtype, device=dev))
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

    def sample(self, n: int, generator: torch.Generator) -> Tensor:
        """n i.i.d. points from each mixture, (B, n, d)."""
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


def _uniform(generator: torch.Generator, dtype: torch.dtype):
    return lambda *s: torch.rand(*s, generator=generator, dtype=dtype, device=generator.device)


def _random_weights(batch: int, modes: Tensor, max_modes: int, u) -> Tensor:
    """Log-weights (B, K): Dirichlet(1) or uniform over the first ``modes`` components, -inf after."""
    active = torch.arange(max_modes, device=modes.device)[None] < modes[:, None]
    dirichlet = -torch.log(u(batch, max_modes))                                     # Exp(1) draws
    raw = torch.where(u(batch, 1) < 0.5, dirichlet, 1.0) * active
    return torch.log(raw / raw.sum(-1, keepdim=True))


def random_gmm(batch: int, dim: int, generator: torch.Generator, max_modes: int = 10,
               mean_range: float = 3.0, var_range: tuple[float, float] = (0.2, 1.0),
               dtype: torch.dtype = torch.float32) -> Mixture:
    """The paper's GMM prior (module docstring): M_k = diag(sigma_k) R_k^T Q^T, b_k = mu_k Q^T."""
    dev, u = generator.device, _uniform(generator, dtype)
    modes = torch.randint(1, max_modes + 1, (batch,), generator=generator, device=dev)
    log_w = _random_weights(batch, modes, max_modes, u)
    mean = mean_range * (2 * u(batch, max_modes, dim) - 1)
    lo, hi = var_range
    std = torch.sqrt(lo + (hi - lo) * u(batch, max_modes, dim))
    rot = random_rotation((batch, max_modes), dim, generator, dtype)
    q = random_rotation((batch,), dim, generator, dtype)
    M = std[..., None] * (q[:, None] @ rot).mT
    zeros = torch.zeros(batch, max_modes, dtype=torch.long, device=dev)
    return Mixture(log_w, zeros, zeros.to(dtype), M, torch.einsum("bij,bkj->bki", q, mean))


def random_kinetic(batch: int, dim: int, generator: torch.Generator, max_modes: int = 4,
                   max_ratio: float = 20.0, dtype: torch.dtype = torch.float32) -> Mixture:
    """Mixtures of the five families with random affine maps (module docstring)."""
    dev, u = generator.device, _uniform(generator, dtype)
    single = u(batch) < 0.5
    modes = torch.where(single, 1, torch.randint(2, max_modes + 1, (batch,), generator=generator, device=dev))
    log_w = _random_weights(batch, modes, max_modes, u)
    family = torch.randint(len(FAMILIES), (batch, max_modes), generator=generator, device=dev)
    a, p = u(batch, max_modes), torch.randint(int(2 * P_MAX) + 1, (batch, max_modes), generator=generator,
                                              device=dev) / 2
    nu = torch.randint(NU_RANGE[0], NU_RANGE[1] + 1, (batch, max_modes), generator=generator, device=dev)
    theta = torch.stack([torch.zeros_like(a), a, p.to(dtype), nu.to(dtype), torch.zeros_like(a)])
    theta = theta.gather(0, family[None]).squeeze(0)
    log_var = math.log(max_ratio) * (u(batch, max_modes, dim) - 0.5)                 # general anisotropy
    bimax = math.log(max_ratio) * (u(batch, max_modes, 1) - 0.5) * 2 * (torch.arange(dim, device=dev) == 0)
    log_var = torch.where(u(batch, max_modes, 1) < 0.5, log_var, bimax)
    M = torch.exp(log_var / 2)[..., None] * random_rotation((batch, max_modes), dim, generator, dtype)
    shift = 3.0 * (2 * u(batch, max_modes, dim) - 1) * (modes > 1)[:, None, None]
    return Mixture(log_w, family, theta, M, shift)


def random_density(batch: int, dim: int, generator: torch.Generator, gmm_fraction: float = 0.5,
                   dtype: torch.dtype = torch.float32) -> Mixture:
    """The training prior: the paper's GMMs with probability ``gmm_fraction``, else kinetic densities
    (the choice is made per batch, so that all sets of a batch share one padded shape)."""
    if float(torch.rand(1, generator=generator, device=generator.device)) < gmm_fraction:
        return random_gmm(batch, dim, generator, dtype=dtype)
    return random_kinetic(batch, dim, generator, dtype=dtype)


@dataclass
class Batch:
    """Context x (B, n_x, d) and queries y (B, n_y, d), drawn independently from the same densities,
    with exact targets log f and score at both."""

    x: Tensor
    y: Tensor
    logf_x: Tensor
    score_x: Tensor
    logf_y: Tensor
    score_y: Tensor


def make_batch(density: Mixture, n_context: int, n_query: int, generator: torch.Generator) -> Batch:
    """Sample context and query sets from ``density`` and attach the exact targets."""
    x, y = density.sample(n_context, generator), density.sample(n_query, generator)
    return Batch(x, y, density.log_density(x), density.score(x), density.log_density(y), density.score(y))


def training_batch(points: int, dim: int, n_range: tuple[int, int], n_query: int,
                   generator: torch.Generator, gmm_fraction: float = 0.5) -> Batch:
    """Context size n_x log-uniform in n_range, shared by the batch; B = max(1, points // n_x) sets,
    so that the number of context points per step is about constant."""
    lo, hi = math.log(n_range[0]), math.log(n_range[1])
    u = float(torch.rand(1, generator=generator, device=generator.device))
    n_x = int(round(math.exp(lo + (hi - lo) * u)))
    density = random_density(max(1, points // n_x), dim, generator, gmm_fraction)
    return make_batch(density, n_x, n_query, generator)


def relative_score_mse(score: Tensor, target: Tensor) -> Tensor:
    """Relative score MSE in percent, per sample set: sum |s - s*|^2 / sum |s*|^2 * 100 -> (B,)."""
    return 100 * ((score - target) ** 2).sum((-2, -1)) / (target**2).sum((-2, -1))


def held_out(count: int, dim: int, n: int, seed: int) -> tuple[Mixture, Tensor]:
    """``count`` fixed paper-prior GMMs (from their own seeded generator) and n samples of each, (count, n, d)."""
    g = torch.Generator().manual_seed(seed)
    gmm = random_gmm(count, dim, g)
    return gmm, gmm.sample(n, g)
