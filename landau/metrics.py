"""Metrics that rank score oracles (pure tensor maths; the solver writes them per frame).

For particles X (n, d) with equal weights 1/n, scores s_p ~ grad log f(X_p) and mean m:

    score_error        = sum_p |s_p - s*(X_p)|^2 / sum_p |s*(X_p)|^2     against an exact score s*,
    moment4            = (1/n) sum_p |X_p - m|^4,
    fisher_information = (1/n) sum_p |s_p|^2                            (the oracle's own estimate of E|grad log f|^2),
    entropy            = -(1/n) sum_p log f(X_p)                         (Monte Carlo -Int f log f, for oracles with a density),
    radial_w1          = W1( law of |X_p - m|, exact radial law ) = Int_0^inf |F_n(r) - F(r)| dr.

The Landau equation makes the entropy grow: d/dt (-Int f log f) = -(1/n) sum_p U_p . s_p, minus the
output's ``entropy_production``.
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import torch


def score_error(s: torch.Tensor, s_exact: torch.Tensor) -> float:
    return float(((s - s_exact) ** 2).sum() / (s_exact ** 2).sum())


def moment4(x: torch.Tensor) -> float:
    r2 = ((x - x.mean(0)) ** 2).sum(1)
    return float((r2 * r2).mean())


def fisher_information(s: torch.Tensor) -> float:
    return float((s * s).sum(1).mean())


def entropy(log_f: torch.Tensor) -> float:
    return float(-log_f.mean())


def radial_w1(r: np.ndarray, partial_moment: Callable[[np.ndarray, float], np.ndarray]) -> float:
    """Int_0^inf |F_n(r) - F(r)| dr between the empirical law of the radii r >= 0 and an exact law.

    ``partial_moment(R, a)`` = E[r^a; r < R] of the exact law (a = 0: its CDF F; a = 1: its
    partial mean). With G(R) = Int_0^R F = R F(R) - E[r; r < R], on each gap [r_(i), r_(i+1)] of
    the sorted radii F_n = i/n and, F being increasing, |i/n - F| changes sign once, at the
    quantile rho_i = F^-1(i/n) clipped to the gap, found by 24 bisections (the integral is stationary
    in rho at the crossing, so an error delta in rho costs only f(rho) delta^2 <= f gap^2 2^-48):

        Int |i/n - F| = i/n (2 rho - a - b) - 2 G(rho) + G(a) + G(b),    a = r_(i), b = r_(i+1),

    and beyond the largest radius Int_(r_(n))^inf (1 - F) = E r - E[r; r < r_(n)] - r_(n)(1 - F(r_(n))).
    Exact up to rounding (no quadrature grid).
    """
    r = np.sort(np.asarray(r, dtype=float))
    n = len(r)
    a, b = np.concatenate([[0.0], r[:-1]]), r
    level = np.arange(n) / n
    lo, hi = a.copy(), b.copy()
    for _ in range(24):                     # bisection for F(rho) = level within [a, b]
        mid = 0.5 * (lo + hi)
        below = partial_moment(mid, 0.0) < level
        lo, hi = np.where(below, mid, lo), np.where(below, hi, mid)
    rho = np.where(partial_moment(a, 0.0) >= level, a, np.where(partial_moment(b, 0.0) <= level, b, 0.5 * (lo + hi)))
    G = lambda R: R * partial_moment(R, 0.0) - partial_moment(R, 1.0)  # noqa: E731
    inner = level * (2 * rho - a - b) - 2 * G(rho) + G(a) + G(b)
    last = r[-1:]
    tail = partial_moment(np.array([np.inf]), 1.0) - partial_moment(last, 1.0) - last * (1 - partial_moment(last, 0.0))
    return float(inner.sum() + tail[0])
