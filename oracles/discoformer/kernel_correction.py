"""Kernel correction of the network's score: accuracy that keeps improving with n.

The network attends to at most m points (``context``), so beyond m its error stops falling with
the sample size n (results/discoformer_eval.md). The correction adds, at each query y, the
constant c(y) that minimises the score-matching objective of S + c localised by the kernel
K_h(y - .). Stein's identity with the test function K_h(y - X) (Hyvarinen's objective weighted by
the kernel, integrated by parts) gives

    J_y(c) = E_f[ K_h(y - X) |S(X) + c|^2 / 2 + grad_X K_h(y - X) . (S(X) + c) ] + const,

minimised by c(y) = -E_f[K_h S + grad_X K_h] / E_f[K_h]. On the sample X_1..X_n, with the kernel
weights w_j(y) = K_h(y - X_j) / sum_l K_h(y - X_l) (Gaussian, per-coordinate bandwidth h):

    s_h(y) = S(y) + sum_j w_j(y) [ (X_j - y) / h^2 - S(X_j) ] = S(y) + s_KDE,h(y) - (K_h * S)(y),

the KDE score plus the network's detail finer than h. The KDE's smoothing bias s - K_h * s becomes
that of the network's error, e - K_h * e with e = s - S: the kernel corrects the network on scales
coarser than h and the network keeps what is finer, so h can be wider than the KDE's own and the
variance smaller. At a sample point y = X_i the sums leave X_i out: with it, its own weight
w_i = K_h(0) / sum_l K_h(X_i - X_l) would shrink the estimate to (1 - w_i) times the left-out one,
towards zero where the point has few neighbours within h (a d = 10 GMM at n = 16384, h = h_Scott:
17.0 % relative error with X_i in, 10.1 % left out; the bandwidth choice below measures the
left-out form). As n grows and h shrinks, s_h -> s whatever S is (a consistent estimator); as
h -> infinity, s_h -> S - mean(S) (the network alone). This is the local-constant member of the
family whose global polynomial member is the Stein correction of ``stein.py``, which is applied
after this one, so the sample's Stein identities of degree 2 hold exactly as before.

**Bandwidth** h = c h_Scott (``oracles.kde.bandwidth``), c from ``FACTORS`` and infinity (no
correction), chosen by leave-one-out score matching on up to ``CV_ROWS`` sample points X_i (every
(n / CV_ROWS)-th: no random draw) with the one-standard-error rule (:func:`best_factor`):

    CV(c) = mean_i [ |s_h^(-i)(X_i)|^2 / 2 + div (s_KDE,h - K_h * S)^(-i)(X_i) ],

Hyvarinen's objective up to the term div S, which does not depend on h. In units z = X / h,

    div s_KDE,h = sum_k (Var_w(z_k) - 1) / h_k^2,    div (K_h * S) = sum_k Cov_w(z_k, S_k) / h_k,

moments under the weights w_j(y). Cost: (|FACTORS| CV_ROWS + n) n kernel evaluations
(``oracles.kde.kernel_means``, torch blocks).
"""
from __future__ import annotations

import math

import torch
from torch import Tensor

from oracles.kde import bandwidth, kernel_means

#: candidate bandwidths in units of Scott's rule (with infinity: the network's score unchanged);
#: with 0.5, 4 and 8 also in the grid, 6 held-out d = 2 GMMs at n = 16384 and 65536 chose 1.41-2,
#: the same as this grid does, at 1.2-2.2x its cost per call (measured with the in-sample form of
#: the correction, before the left-out form below)
FACTORS = (0.71, 1.0, 1.41, 2.0, 2.83)
#: sample points of the leave-one-out bandwidth choice
CV_ROWS = 4096


def kernel_corrected(x: Tensor, score_x: Tensor, y: Tensor, score_y: Tensor, factor: float) -> Tensor:
    """s_h(y) of the module docstring at queries y (network score ``score_y``) from the sample x
    (network score ``score_x``), h = ``factor`` h_Scott(x); ``factor`` inf: ``score_y``. At the
    sample's own points (y is x) each point is left out of its own sums (module docstring)."""
    if math.isinf(factor):
        return score_y
    h = factor * bandwidth(x, "scott")
    skip = torch.arange(len(x), device=x.device) if y is x else None
    means = kernel_means(y, x, h, torch.cat([x, score_x], 1), skip=skip)
    mean_x, mean_s = means.split(x.shape[1], 1)
    return score_y + (mean_x - y) / h**2 - mean_s


def cv_terms(x: Tensor, score_x: Tensor, factor: float, rows: int | None = None) -> Tensor:
    """The terms of CV(factor) (module docstring), one per sample point X_i, every (n / rows)-th."""
    n, rows = len(x), rows or CV_ROWS
    at = torch.arange(0, n, max(1, n // rows), device=x.device)[:rows]
    if math.isinf(factor):
        return 0.5 * (score_x[at] ** 2).sum(1)
    h = factor * bandwidth(x, "scott")
    z = (x - x.mean(0)) / h
    ez, ez2, es, ezs = kernel_means(x[at], x, h, torch.cat([z, z * z, score_x, z * score_x], 1),
                                    skip=at).split(x.shape[1], 1)
    s = score_x[at] + (ez - z[at]) / h - es
    div = ((ez2 - ez**2 - 1) / h**2).sum(1) - ((ezs - ez * es) / h).sum(1)
    return 0.5 * (s**2).sum(1) + div


def best_factor(x: Tensor, score_x: Tensor) -> float:
    """The bandwidth factor, of ``FACTORS`` and infinity, by the one-standard-error rule: the widest
    whose CV exceeds the smallest CV by at most the standard error of that difference (the mean of
    paired terms over the same points). The minimum itself is noisy (a few thousand terms of
    order one); the rule keeps the network alone unless a correction is measurably better."""
    candidates = (*FACTORS, math.inf)
    terms = torch.stack([cv_terms(x, score_x, c) for c in candidates])
    best = int(terms.mean(1).argmin())
    gap = terms - terms[best]
    within = gap.mean(1) <= gap.std(1) / math.sqrt(terms.shape[1])
    return candidates[int(torch.nonzero(within).max())]
