"""Training data: random densities with closed-form log-density and score.

Every density is a ``landau.densities.Mixture``: a mixture of K affinely mapped base densities
(Gaussian, BKW, shell, Student-t, Laplace) with exact log f and score, see that module.

The prior (``random_density``) draws, per sample set, one of
* the paper's GMM prior (``random_gmm``): K ~ U{1..10}, mu_k ~ U[-3, 3]^d, sigma_k^2 ~ U[0.2, 1]^d,
  Haar rotations per component and for the whole mixture, Dirichlet(1) or uniform weights;
* a kinetic density: K = 1 (half of the time) or K ~ U{2..4} components of random families
  (probabilities FAMILY_PROBS; BKW parameter a = u^2, u ~ U[0, 1]) with
  random affine maps M_k = diag(sigma_k) R_k, anisotropic with variance ratios up to 1:20 (a
  general log-uniform diagonal, or bi-Maxwellian: one axis apart from the others), means spread
  U[-3, 3]^d for K > 1.
The paper's high-dimensional test family (``random_two_mode_diagonal``: two equally weighted
axis-aligned Gaussians) is a third prior, chosen by name from ``PRIORS`` (``train.py --prior``).
Everything is drawn from one ``torch.Generator``, so a batch is reproducible from its state. The
training stream (``step_plan``, ``step_sets``) seeds one generator per (seed, step, sample set),
so a step's global batch is the same however its sets are split across distributed ranks.
"""
from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, fields

import torch
from torch import Tensor

from landau.densities import Mixture

P_MAX, NU_RANGE = 8.0, (3, 12)  # shell exponent p <= P_MAX; Student-t nu in NU_RANGE
# family probabilities of a kinetic component (order of landau.densities.FAMILIES): BKW weighted
# up, with a = u^2 (u uniform), so that shapes near the zero-at-origin shell of BKW at t0 are frequent
FAMILY_PROBS = (0.2, 0.3, 0.2, 0.15, 0.15)


def random_rotation(shape: tuple[int, ...], d: int, generator: torch.Generator,
                    dtype: torch.dtype = torch.float32) -> Tensor:
    """Haar-distributed orthogonal matrices (*shape, d, d): QR of a Gaussian, signs fixed by diag(R)."""
    g = torch.randn(*shape, d, d, generator=generator, dtype=dtype, device=generator.device)
    q, r = torch.linalg.qr(g)
    return q * torch.sign(torch.diagonal(r, dim1=-2, dim2=-1)).unsqueeze(-2)


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
    probs = torch.tensor(FAMILY_PROBS, device=dev).expand(batch * max_modes, -1)
    family = torch.multinomial(probs, 1, generator=generator).view(batch, max_modes)
    a, p = u(batch, max_modes), torch.randint(int(2 * P_MAX) + 1, (batch, max_modes), generator=generator,
                                              device=dev) / 2
    nu = torch.randint(NU_RANGE[0], NU_RANGE[1] + 1, (batch, max_modes), generator=generator, device=dev)
    theta = torch.stack([torch.zeros_like(a), a * a, p.to(dtype), nu.to(dtype), torch.zeros_like(a)])
    theta = theta.gather(0, family[None]).squeeze(0)
    log_var = math.log(max_ratio) * (u(batch, max_modes, dim) - 0.5)                 # general anisotropy
    bimax = math.log(max_ratio) * (u(batch, max_modes, 1) - 0.5) * 2 * (torch.arange(dim, device=dev) == 0)
    log_var = torch.where(u(batch, max_modes, 1) < 0.5, log_var, bimax)
    M = torch.exp(log_var / 2)[..., None] * random_rotation((batch, max_modes), dim, generator, dtype)
    shift = 3.0 * (2 * u(batch, max_modes, dim) - 1) * (modes > 1)[:, None, None]
    return Mixture(log_w, family, theta, M, shift)


def random_two_mode_diagonal(batch: int, dim: int, generator: torch.Generator, mean_range: float = 1.0,
                             var_range: tuple[float, float] = (0.2, 1.0), dtype: torch.dtype = torch.float32
                             ) -> Mixture:
    """The paper's high-dimensional test family (d = 100, REFERENCE.md section 4): two equally weighted
    axis-aligned Gaussians, f = 1/2 N(mu_1, diag(sigma_1^2)) + 1/2 N(mu_2, diag(sigma_2^2)),
    mu_k ~ U[-mean_range, mean_range]^d, sigma_k,i^2 ~ U[var_range]. The paper names the family
    (2 modes, diagonal) but not these ranges: the variances are its GMM prior's, the means unit."""
    u = _uniform(generator, dtype)
    lo, hi = var_range
    std = torch.sqrt(lo + (hi - lo) * u(batch, 2, dim))
    mean = mean_range * (2 * u(batch, 2, dim) - 1)
    log_w = torch.full((batch, 2), -math.log(2.0), dtype=dtype, device=generator.device)
    zeros = torch.zeros(batch, 2, dtype=torch.long, device=generator.device)
    return Mixture(log_w, zeros, zeros.to(dtype), torch.diag_embed(std), mean)


#: the sample-set priors by name (``train.py --prior``; none there: the GMM / kinetic mix)
PRIORS = {"gmm": random_gmm, "kinetic": random_kinetic, "two-mode-diagonal": random_two_mode_diagonal}


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


def stream_seed(seed: int, *key) -> int:
    """A 63-bit hash of (seed, *key): the seed of an independent random stream per (step, set, ...)."""
    digest = hashlib.blake2b(",".join(map(str, (seed, *key))).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") & (2**63 - 1)


def seeded_generator(seed: int, *key, device: torch.device | str = "cpu") -> torch.Generator:
    """A generator on ``device`` seeded with ``stream_seed(seed, *key)``."""
    return torch.Generator(device).manual_seed(stream_seed(seed, *key))


@dataclass(frozen=True)
class StepPlan:
    """The shape of one global training batch: context size n_x, number of sample sets B (over
    all ranks) and the prior it is drawn from (paper GMMs or kinetic densities)."""

    n_x: int
    sets: int
    gmm: bool


def step_plan(points: int, n_range: tuple[int, int], seed: int, step: int,
              gmm_fraction: float = 0.5) -> StepPlan:
    """n_x log-uniform in n_range, B = max(1, points // n_x), the prior's choice: a function of
    (seed, step) alone (the generator ``seeded_generator(seed, step, "plan")``)."""
    g = seeded_generator(seed, step, "plan")
    lo, hi = math.log(n_range[0]), math.log(n_range[1])
    n_x = int(round(math.exp(lo + (hi - lo) * float(torch.rand(1, generator=g)))))
    gmm = float(torch.rand(1, generator=g)) < gmm_fraction
    return StepPlan(n_x, max(1, points // n_x), gmm)


def step_sets(plan: StepPlan, dim: int, n_query: int, seed: int, step: int, sets: range,
              device: torch.device | str = "cpu", prior: str | None = None) -> Batch:
    """Sample sets ``sets`` (indices into the global batch of ``plan``) of training step ``step``:
    set i's density, context and queries are drawn from its own generator, seeded by
    (seed, step, i), on ``device``. So the global batch of a step does not depend on how its sets
    are split across ranks: K ranks taking disjoint index ranges see together what one process
    sees (``training_batch`` draws a whole batch from one running generator instead).
    ``prior`` (a key of ``PRIORS``): every set drawn from it instead of the plan's GMM / kinetic choice."""
    draw = PRIORS[prior] if prior else random_gmm if plan.gmm else random_kinetic
    densities, points = [], []
    for i in sets:  # the random draws, set by set; the exact targets below, for all sets at once
        g = seeded_generator(seed, step, i, device=device)
        densities.append(draw(1, dim, g))
        points.append(densities[-1].sample(plan.n_x + n_query, g))
    density = Mixture(*(torch.cat([getattr(m, f.name) for m in densities]) for f in fields(Mixture)))
    x, y = torch.cat(points).split([plan.n_x, n_query], dim=1)
    return Batch(x, y, density.log_density(x), density.score(x), density.log_density(y), density.score(y))


def relative_score_mse(score: Tensor, target: Tensor) -> Tensor:
    """Relative score MSE in percent, per sample set: sum |s - s*|^2 / sum |s*|^2 * 100 -> (B,)."""
    return 100 * ((score - target) ** 2).sum((-2, -1)) / (target**2).sum((-2, -1))


def held_out(count: int, dim: int, n: int, seed: int, prior: str = "gmm") -> tuple[Mixture, Tensor]:
    """``count`` fixed densities of ``prior`` (a key of ``PRIORS``, default the paper's GMMs; from
    their own seeded generator) and n samples of each, (count, n, d)."""
    g = torch.Generator().manual_seed(seed)
    density = PRIORS[prior](count, dim, g)
    return density, density.sample(n, g)
