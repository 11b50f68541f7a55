"""Kernel correction of the network's score: accuracy that keeps improving with n.

The network attends to at most m points (``context``), so beyond m its error stops falling with
the sample size n (results/discoformer_eval.md). The correction adds, around each query y, an
affine field (symmetric slope: the gradient of a quadratic potential) that minimises the
score-matching objective of S + c localised by the kernel K_h(y - .): Stein's identity with the
test function K_h(y - X) (Hyvarinen's objective weighted by the kernel, integrated by parts).
In units of the bandwidth (per coordinate h, Scott's rule, so the units are anisotropic),
z = (x - xbar) / h, sigma = h S (the score in z), zeta = z(y), c(z) = a + B (z - zeta), the
objective over the sample X_1..X_n, z_j = z(X_j), K_j = K_h(y - X_j), is

    J_y(a, B) = sum_j K_j ( |sigma_j + c(z_j)|^2 / 2 + tr B - (z_j - zeta) . c(z_j) ) + rho |B|_F^2 / 2

(grad_z log K = -(z - zeta); norms and the ridge in z units: the correction in x units is a / h,
its slope H^-1 B H^-1, H = diag(h)), and the corrected score is s_h(y) = S(y) + a / h:
local-linear score matching. The ridge acts on the unnormalised sums, so relative to the local
data it is rho / W, W = sum_j K_j (with K_h(0) = 1, about the number of neighbours within h):
where y has few neighbours the fit falls back to local-constant; rho = inf is the local-constant
fit, B = 0. With the weights w_j = K_j / W, mu = E_w[z], V = Cov_w(z, z), G = sym Cov_w(z, sigma)
and m = mu - zeta (the KDE score at h, in z units) the minimiser is

    (V B + B V) / 2 + (rho / W) B = V - I - G,        a = m - E_w[sigma] - B m,

solved in the eigenbasis of V. For the exact score of a Gaussian the local moments give B = 0
and a = 0. With B = 0, s_h = S + s_KDE,h - K_h * S: the KDE score plus the network's detail finer
than h; the slope B removes that fit's smoothing bias to first order, which matters where the
kernel is wide compared with the density's curvature (d = 10: the local-linear fit chose wider
kernels, 2-4 h_Scott against 1-2 for the local-constant one, and lowered the error on 7 of 8
tuning GMMs at n = 4096, 8.27 % against 10.27 % on average, raising it on one from 2.06 % to
2.08 %; results/discoformer_eval.md). At a sample point y = X_i the sums leave X_i out (with it,
the point's own weight shrinks the estimate where it has few neighbours). As n grows and h shrinks, s_h -> s whatever S is; as h -> infinity,
s_h -> the network's score with its mean removed. The Stein correction of degree 2 (``stein.py``)
is applied after this one, so the sample's Stein identities of degree 2 hold exactly as before.

**Bandwidth and ridge**: h = c h_Scott (``oracles.kde.bandwidth``), c from ``FACTORS``, rho from
``RIDGES``, or no correction (the network alone), chosen by leave-one-out score matching on up to
``CV_ROWS`` sample points X_i (evenly spread over the sample's order: no random draw):

    CV(c, rho) = mean_i [ |s_h^(-i)(X_i)|^2 / 2 + div a^(-i)(X_i) ],

Hyvarinen's objective up to div S (the same for every candidate), the divergence of the left-out
correction differentiated through the kernel weights (:func:`local_fits`: exact for
d <= ``EXACT_TRACE_DIM``, Hutchinson's estimate beyond). Replacing it by the local fit's own
slope tr B, which costs nothing, biased the choice towards narrow kernels and small ridges: with
the exact score as S the plain minimum of that proxy picked a correction that added 1.75 % of
error on a d = 2 GMM (n = 3000), where the left-out divergence keeps the network alone (tests).
The candidate with the largest lower confidence bound on its gain over the network alone wins
(:func:`best_choice`). Cost per candidate bandwidth: one kernel pass of CV_ROWS x n pairs
carrying k = d (d + 3) columns (d + 1 times as many for the exact divergence, twice as many for
Hutchinson's; ``oracles.kde.kernel_moments``, torch blocks); then one pass of n^2 pairs with k
columns for the output at the sample when n > CV_ROWS (at n <= CV_ROWS the choice's own
left-out scores are the output).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from oracles.kde import bandwidth, kernel_moments

#: candidate bandwidths in units of Scott's rule
FACTORS = (0.71, 1.0, 1.41, 2.0, 2.83, 4.0)
#: candidate ridges rho on the slope B (inf: the local-constant fit, B = 0)
RIDGES = (1.0, 4.0, 16.0, 64.0, math.inf)
#: sample points of the leave-one-out choice
CV_ROWS = 4096
#: up to this dimension the divergence in the choice is exact, beyond it Hutchinson's estimate
EXACT_TRACE_DIM = 3


@dataclass(frozen=True)
class Choice:
    """The chosen correction: bandwidth factor (inf: none) and ridge; ``at_sample``: the corrected
    score at every sample point, when the choice already computed it (n <= CV_ROWS)."""
    factor: float
    ridge: float = math.inf
    at_sample: Tensor | None = None


@dataclass(frozen=True)
class LocalFit:
    """One ridge's fit at the queries, in bandwidth units: a (n_y, d), B (n_y, d, d); ``div``: the
    correction's divergence in y (x units), exact or Hutchinson's estimate (:func:`local_fits`)."""
    a: Tensor
    b: Tensor
    div: Tensor | None


def local_fits(x: Tensor, score_x: Tensor, y: Tensor, factor: float, ridges: tuple[float, ...],
               skip: Tensor | None = None, divergence: bool = False) -> list[LocalFit]:
    """The fits of the module docstring at the queries y for each ridge; ``skip``: the sample index
    left out of each query's sums. ``divergence``: also div_y of the correction a(y) / h, from the
    derivatives of the weighted means, d E_w[c] / d z(y)_k = E_w[c z_k] - E_w[c] E_w[z_k]: along
    every axis (exact; the columns c z_k in the same kernel pass) for d <= ``EXACT_TRACE_DIM``,
    else along one Rademacher vector v per row from a fixed seed (Hutchinson's v^T J v, unbiased,
    one more product of the kernel block whatever d)."""
    d = x.shape[1]
    h = factor * bandwidth(x, "scott")
    centre = x.mean(0)
    z, sigma, zeta = (x - centre) / h, score_x * h, (y - centre) / h
    i, j = torch.triu_indices(d, d, device=x.device)
    columns = torch.cat([z, sigma, z[:, i] * z[:, j], z[:, i] * sigma[:, j] + z[:, j] * sigma[:, i]], 1)
    sizes, k = [d, d, len(i), len(i)], columns.shape[1]
    axes = divergence and d <= EXACT_TRACE_DIM
    probe = None
    if divergence and not axes:
        probe = (2 * torch.randint(0, 2, (len(y), d), generator=torch.Generator().manual_seed(0)) - 1).to(x)
    if axes:
        with_one = torch.cat([torch.ones_like(z[:, :1]), columns], 1)
        columns = torch.cat([columns, *(with_one * z[:, a:a + 1] for a in range(d))], 1)
    log_w, means, tilted = kernel_moments(y, x, h, columns, skip=skip, tilt=probe)
    if axes:
        means, tilted = means[:, :k], means[:, k:].reshape(len(y), d, k + 1).transpose(0, 1)
        directions = torch.eye(d, dtype=x.dtype, device=x.device)[:, None, :].expand(d, len(y), d)
    elif divergence:
        tilted, directions = tilted[None], probe[None]

    def symmetric(upper: Tensor) -> Tensor:
        out = upper.new_zeros(len(upper), d, d)
        out[:, i, j] = upper
        out[:, j, i] = upper
        return out

    outer = lambda u, w: u[:, :, None] * w[:, None, :]  # noqa: E731
    mu, s_bar, zz, zs = means.split(sizes, 1)
    v = symmetric(zz) - outer(mu, mu)
    g = symmetric(zs) / 2 - (outer(mu, s_bar) + outer(s_bar, mu)) / 2
    lam, q = torch.linalg.eigh(v)
    lam = lam.clamp_min(0)
    eye = torch.eye(d, dtype=x.dtype, device=x.device)
    rotate = lambda mat: q.transpose(1, 2) @ mat @ q  # noqa: E731
    back = lambda mat: q @ mat @ q.transpose(1, 2)  # noqa: E731
    rhs = rotate(v - eye - g)
    m = mu - zeta
    derivs = []   # per direction u: (u, d s_bar, d V, d G, d m) along u
    for u, t in zip(directions, tilted) if divergence else ():
        dmu, ds, dzz, dzs = (t[:, 1:] - means * t[:, :1]).split(sizes, 1)
        dv = symmetric(dzz) - outer(dmu, mu) - outer(mu, dmu)
        dg = symmetric(dzs) / 2 - (outer(dmu, s_bar) + outer(s_bar, dmu) + outer(mu, ds) + outer(ds, mu)) / 2
        derivs.append((u, ds, dv, dg, dmu - u))
    fits = []
    for rho in ridges:
        ridge = rho * torch.exp(-log_w)[:, None, None]
        denom = (lam[:, :, None] + lam[:, None, :]) / 2 + ridge
        b = torch.zeros_like(v) if math.isinf(rho) else back(rhs / denom)
        a = m - s_bar - (b @ m[:, :, None])[:, :, 0]
        div = 0 if divergence else None
        for u, ds, dv, dg, dm in derivs:
            da = dm - ds
            if not math.isinf(rho):
                dridge = -ridge * (u * m).sum(1)[:, None, None]
                db = back(rotate(dv - dg - (dv @ b + b @ dv) / 2 - dridge * b) / denom)
                da = da - (db @ m[:, :, None] + b @ dm[:, :, None])[:, :, 0]
            div = div + (u * da / h**2).sum(1)
        fits.append(LocalFit(a, b, div))
    return fits


def kernel_corrected(x: Tensor, score_x: Tensor, y: Tensor, score_y: Tensor, choice: Choice) -> Tensor:
    """s_h(y) of the module docstring at queries y (network score ``score_y``) from the sample x
    (network score ``score_x``); at the sample's own points (y is x) each point is left out of its
    own sums. ``choice.factor`` inf: ``score_y`` unchanged."""
    if math.isinf(choice.factor):
        return score_y
    if y is x and score_y is score_x and choice.at_sample is not None:
        return choice.at_sample
    skip = torch.arange(len(x), device=x.device) if y is x else None
    fit, = local_fits(x, score_x, y, choice.factor, (choice.ridge,), skip)
    return score_y + fit.a / (choice.factor * bandwidth(x, "scott"))


def cv_rows(n: int) -> Tensor:
    """The sample points of the choice: all of them up to CV_ROWS, else CV_ROWS spread evenly
    (index k n // CV_ROWS)."""
    return torch.arange(min(n, CV_ROWS)) * n // min(n, CV_ROWS)


def cv_terms(x: Tensor, score_x: Tensor, factor: float) -> tuple[Tensor, list[Tensor]]:
    """The terms of CV(factor, rho) (module docstring) at the points :func:`cv_rows`, one row per
    ridge of ``RIDGES`` (ridges, rows), and the corrected scores there, one per ridge (the same
    probes for every candidate: paired differences)."""
    at = cv_rows(len(x)).to(x.device)
    h = factor * bandwidth(x, "scott")
    fits = local_fits(x, score_x, x[at], factor, RIDGES, skip=at, divergence=True)
    scores = [score_x[at] + fit.a / h for fit in fits]
    return torch.stack([0.5 * (s**2).sum(1) + fit.div for s, fit in zip(scores, fits)]), scores


def best_choice(x: Tensor, score_x: Tensor) -> Choice:
    """The (factor, ridge) of ``FACTORS`` x ``RIDGES`` whose gain over the network alone, the mean of
    the paired differences of CV terms, is largest after subtracting its standard error (a lower
    confidence bound), or the network alone if no bound is positive. The terms are noisy (a few
    thousand of order one, noisier for narrow kernels), and the plain minimum picks whichever
    candidate's noise is most favourable: on a d = 2 GMM at n = 16384 it chose h = 0.71 h_Scott
    (3.41 %) where the bound chooses h_Scott (2.34 %, the best of the grid 2.33 %)."""
    at = cv_rows(len(x)).to(x.device)
    alone = 0.5 * (score_x[at] ** 2).sum(1)
    best = (0.0, Choice(math.inf))
    for factor in FACTORS:
        terms, scores = cv_terms(x, score_x, factor)
        gain = alone - terms
        bound = gain.mean(1) - gain.std(1) / math.sqrt(len(at))
        k = int(bound.argmax())
        if bound[k] > best[0]:
            best = (bound[k].item(), Choice(factor, RIDGES[k], scores[k] if len(at) == len(x) else None))
    return best[1]
