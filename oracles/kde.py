"""Gaussian kernel density estimate and its score.

With a per-coordinate bandwidth h (d,) and samples x_j (j = 1..n),

    f_h(y) = (1/n) sum_j prod_k N(y_k; x_jk, h_k^2)
    s_h(y) = grad log f_h(y) = sum_j w_j(y) (x_j - y) / h^2,   w_j = K_h(y - x_j) / sum_l K_h(y - x_l)

Bandwidth rules (sigma_k the sample standard deviation of coordinate k):
Scott h_k = sigma_k n^(-1/(d+4)); Silverman h_k = sigma_k (4 / ((d+2) n))^(1/(d+4)).
Sums are tiled over query rows (``landau.pairs``), softmax weights use logsumexp.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch

from landau.pairs import auto_tile, map_rows
from oracles.base import ScoreOracle
from oracles.registry import register
from oracles.settings import SettingsError


def bandwidth(x: torch.Tensor, rule: str | float) -> torch.Tensor:
    """Per-coordinate bandwidth h (d,) by Scott's or Silverman's rule, or a fixed value."""
    n, d = x.shape
    if not isinstance(rule, str):
        return torch.full((d,), float(rule), dtype=x.dtype, device=x.device)
    sigma = x.std(dim=0)
    if rule == "scott":
        return sigma * n ** (-1.0 / (d + 4))
    if rule == "silverman":
        return sigma * (4.0 / ((d + 2) * n)) ** (1.0 / (d + 4))
    raise ValueError(f"unknown bandwidth rule {rule!r} (scott, silverman or a number)")


def _log_kernel(y: torch.Tensor, x: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
    """log prod_k N(y_k; x_k, h_k^2) for all pairs, shape (n_y, n_x)."""
    d = x.shape[1]
    yz, xz = y / h, x / h
    sq = (yz * yz).sum(1)[:, None] - 2.0 * yz @ xz.T + (xz * xz).sum(1)[None, :]
    return -0.5 * sq.clamp_min(0.0) - torch.log(h).sum() - 0.5 * d * math.log(2 * math.pi)


def kde_log_density(y: torch.Tensor, x: torch.Tensor, h: torch.Tensor,
                    tile: int | None = None) -> torch.Tensor:
    """log f_h(y) at queries y (n_y, d) from samples x (n, d)."""
    tile = auto_tile(len(x), 1, x.dtype, x.device, tile)
    return map_rows(lambda r: torch.logsumexp(_log_kernel(y[r], x, h), dim=1) - math.log(len(x)),
                    len(y), tile)


def kde_score(y: torch.Tensor, x: torch.Tensor, h: torch.Tensor,
              tile: int | None = None, leave_one_out: bool = False) -> torch.Tensor:
    """grad log f_h(y) at queries y (n_y, d); ``leave_one_out`` drops pair (i, i) (needs y is x)."""
    tile = auto_tile(len(x), 1, x.dtype, x.device, tile)

    def block(r: slice) -> torch.Tensor:
        logk = _log_kernel(y[r], x, h)
        if leave_one_out:
            idx = torch.arange(r.start, r.stop, device=x.device)
            logk[idx - r.start, idx] = -math.inf
        w = torch.softmax(logk, dim=1)
        return (w @ x - y[r]) / h**2

    return map_rows(block, len(y), tile)


@register
class KDEOracle(ScoreOracle):
    """Score of a Gaussian KDE of the current particles; bandwidth recomputed at every call."""

    name = "kde"

    @dataclass
    class Settings:
        bandwidth: Literal["scott", "silverman"] | float = "scott"
        leave_one_out: bool = False
        tile: int | None = None

    def __init__(self, settings: "KDEOracle.Settings | None" = None, context=None) -> None:
        super().__init__(settings or self.Settings(), context)
        if not isinstance(self.settings.bandwidth, str) and self.settings.bandwidth <= 0:
            raise SettingsError(f"oracle.bandwidth: must be positive, got {self.settings.bandwidth}")

    def score(self, x: torch.Tensor, t: float) -> torch.Tensor:
        h = bandwidth(x, self.settings.bandwidth)
        return kde_score(x, x, h, self.settings.tile, self.settings.leave_one_out)

    def log_density(self, x: torch.Tensor, t: float) -> torch.Tensor:
        return kde_log_density(x, x, bandwidth(x, self.settings.bandwidth), self.settings.tile)
