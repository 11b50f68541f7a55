"""Gaussian kernel density estimate and its score.

With a per-coordinate bandwidth h (d,) and samples x_j (j = 1..n),

    f_h(y) = (1/n) sum_j prod_k N(y_k; x_jk, h_k^2)
    s_h(y) = grad log f_h(y) = sum_j w_j(y) (x_j - y) / h^2,   w_j = K_h(y - x_j) / sum_l K_h(y - x_l)

Bandwidth rules (sigma_k the standard deviation of coordinate k, from the 1/n sample covariance):
Scott h_k = sigma_k n^(-1/(d+4)); Silverman h_k = sigma_k (4 / ((d+2) n))^(1/(d+4)).
Sums over the samples go through ``landau.pairs`` (compiled CPU kernels or torch blocks over
query rows); softmax weights and the log-density shift by the row maximum (logsumexp).

Many independent samples at once (the velocities of each cell of a phase-space run,
``score_groups``): each group is its own KDE, its bandwidth h_c by the rule from the group's
current particles, every sum over its own particles. CPU: one compiled call for all groups,
parallel over groups; without leave-one-out the pair (p, p) makes the row maximum 0, the kernel
symmetric and each unordered pair is evaluated once.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch

from landau import pairs
from landau.cell_collisions import Segments
from landau.diagnostics import mean_and_covariance
from landau.pairs import auto_tile, map_rows
from oracles.base import ScoreOracle
from oracles.registry import register
from oracles.settings import SettingsError


def bandwidth(x: torch.Tensor, rule: str | float) -> torch.Tensor:
    """Per-coordinate bandwidth h (d,) by Scott's or Silverman's rule, or a fixed value."""
    n, d = x.shape
    if not isinstance(rule, str):
        return torch.full((d,), float(rule), dtype=x.dtype, device=x.device)
    return torch.diagonal(mean_and_covariance(x)[1]).sqrt() * _rule_factor(n, d, rule)


def _rule_factor(n, d: int, rule: str):
    """h_k / sigma_k of the rule for n samples (an int, or a tensor of sample counts)."""
    if rule == "scott":
        return n ** (-1.0 / (d + 4))
    if rule == "silverman":
        return (4.0 / ((d + 2) * n)) ** (1.0 / (d + 4))
    raise ValueError(f"unknown bandwidth rule {rule!r} (scott, silverman or a number)")


class _Scaled:
    """Queries and samples in bandwidth units, centred on the samples' mean (shift invariant)."""

    def __init__(self, y: torch.Tensor, x: torch.Tensor, h: torch.Tensor) -> None:
        c = x.mean(0)
        self.yz, self.xz = (y - c) / h, (x - c) / h
        self.xzT = self.xz.T.contiguous()

    def half_sq(self, r: slice, work: pairs.Workspace) -> torch.Tensor:
        """-|y - x|^2_h / 2 for the query rows r against all samples, one (b, n) array."""
        b = r.stop - r.start
        return pairs.sq_dist(self.yz[r], self.xzT, out=work.get(0, b), tmp=work.get(1, b)).mul_(-0.5)

    def workspace(self, tile: int) -> pairs.Workspace:
        return pairs.Workspace(2, min(tile, max(1, len(self.yz))), len(self.xz), self.xz.dtype, self.xz.device)

    def compiled(self, compiled, loo: bool, score: bool) -> torch.Tensor:
        """The compiled CPU kernels' rows: h times the score (``score``) or log sum_q K (n_y,)."""
        yz, xzT = pairs.as_numpy(self.yz), pairs.as_numpy(self.xzT)
        n_y, d = self.yz.shape
        acc0 = compiled.zeros(d)

        def rows(lo: int, hi: int) -> torch.Tensor:
            out = torch.empty((hi - lo, d) if score else (hi - lo,), dtype=self.yz.dtype)
            if score:
                compiled.kde_rows(yz, xzT, acc0, loo, lo, hi, out.numpy())
            else:
                compiled.kde_log_rows(yz, xzT, acc0, lo, hi, out.numpy())
            return out

        return pairs.shard_rows(rows, n_y)


def kde_log_density(y: torch.Tensor, x: torch.Tensor, h: torch.Tensor,
                    tile: int | None = None) -> torch.Tensor:
    """log f_h(y) at queries y (n_y, d) from samples x (n, d): a logsumexp over the samples."""
    n, d = x.shape
    sc = _Scaled(y, x, h)
    const = -torch.log(h).sum() - 0.5 * d * math.log(2 * math.pi) - math.log(n)
    compiled = pairs.kernels(y, x, h)
    if compiled is not None:
        return sc.compiled(compiled, loo=False, score=False) + const
    tile = auto_tile(n, 1, x.dtype, x.device, tile)
    work = sc.workspace(tile)
    return map_rows(lambda r: torch.logsumexp(sc.half_sq(r, work), dim=1), len(y), tile) + const


def kde_score(y: torch.Tensor, x: torch.Tensor, h: torch.Tensor,
              tile: int | None = None, leave_one_out: bool = False) -> torch.Tensor:
    """grad log f_h(y) at queries y (n_y, d); ``leave_one_out`` drops pair (i, i) (needs y is x).

    Both paths shift the log-kernel of a row by its maximum before exponentiating (softmax
    weights). Torch path: the weights' mean of the samples, :func:`kernel_means`. CPU: one fused
    kernel per row.
    """
    sc = _Scaled(y, x, h)
    compiled = pairs.kernels(y, x, h)
    if compiled is not None:
        return sc.compiled(compiled, loo=leave_one_out, score=True) / h
    skip = torch.arange(len(y), device=y.device) if leave_one_out else None
    return (kernel_means(y, x, h, sc.xz, skip, tile) - sc.yz) / h


def kernel_means(y: torch.Tensor, x: torch.Tensor, h: torch.Tensor, columns: torch.Tensor,
                 skip: torch.Tensor | None = None, tile: int | None = None) -> torch.Tensor:
    """Means of the samples' ``columns`` c (n, k) under the kernel weights of each query y_i (n_y, d):

        sum_j w_ij c_j,   w_ij = K_h(y_i - x_j) / sum_l K_h(y_i - x_l)   -> (n_y, k),

    ``skip`` (n_y,) the index j left out of row i's sums (leave-one-out; None: none). Torch blocks
    on every device: one matrix product per block of rows carries all k columns (a compiled row
    loop with the columns in registers was measured 1.6x faster at k <= 12 without ``skip``, but
    slower with it, 1.5x, and 13-50x slower at d = 10, k = 20-40)."""
    return kernel_moments(y, x, h, columns, skip, tile=tile)[1]


def kernel_moments(y: torch.Tensor, x: torch.Tensor, h: torch.Tensor, columns: torch.Tensor,
                   skip: torch.Tensor | None = None, tilt: torch.Tensor | None = None,
                   tile: int | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """:func:`kernel_means` with the log of the weights' normaliser, log sum_j K_h(y_i - x_j)
    (K_h(0) = 1, so the normaliser counts the neighbours within about h), and, for directions v_i
    (``tilt``, (n_y, d)), the weighted means of c_j (v_i . z_j), z_j = (x_j - mean x) / h: the
    derivative of a weighted mean along v_i is E_w[c (v . z)] - E_w[c] E_w[v . z] (in units of h).
    Returns (log normaliser (n_y,), means (n_y, k), tilted means (n_y, 1 + k) or None), the tilted
    means' first column that of c = 1. Per block of rows the log-kernel is formed in place, shifted
    by its row maximum, and one matrix product K @ [1, c] gives the normaliser and the means."""
    sc = _Scaled(y, x, h)
    tile = auto_tile(len(sc.xz), 2 if tilt is not None else 1, sc.xz.dtype, sc.xz.device, tile)
    rhs = torch.cat([torch.ones_like(sc.xz[:, :1]), columns.to(sc.xz)], 1)      # (n, 1 + k)
    work = sc.workspace(tile)

    def block(r: slice) -> torch.Tensor:
        logk = sc.half_sq(r, work)
        if skip is not None and r.stop > r.start:
            logk[torch.arange(r.stop - r.start, device=logk.device), skip[r]] = -math.inf
        top = logk.amax(1, keepdim=True)
        logk.sub_(top).exp_()
        m = logk @ rhs
        parts = [top + m[:, :1].log(), m[:, 1:] / m[:, :1]]
        if tilt is not None:
            parts.append((logk.mul_(tilt[r].to(sc.xz) @ sc.xzT) @ rhs) / m[:, :1])
        return torch.cat(parts, 1)

    out = map_rows(block, len(sc.yz), tile)
    k = columns.shape[1]
    return out[:, 0], out[:, 1:1 + k], out[:, 1 + k:] if tilt is not None else None


def kde_group_scores(x: torch.Tensor, seg: Segments, rule: str | float, tile: int | None = None,
                     leave_one_out: bool = False) -> torch.Tensor:
    """The score of each group's own KDE at its own particles, h_c = ``bandwidth`` (group c, rule)
    (:func:`kde_score` of each group, which the torch path calls); a group of fewer than 2
    particles gets 0 (no bandwidth). Compiled path: every group's mean and 1/N_c variances by
    ``index_add`` (no loop over groups), the particles centred per group and divided by their
    group's h. Under ``pairs.sharded`` each rank scores its block of groups (``pairs.shard_segments``)."""
    xs = x[seg.order]
    compiled = pairs.kernels(xs)
    out = torch.zeros_like(xs)
    if compiled is not None:
        groups, d = len(seg.counts), x.shape[1]
        member = torch.repeat_interleave(torch.arange(groups, device=x.device), seg.counts)
        count = seg.counts.to(x.dtype).clamp(min=2)[:, None]         # < 2: no bandwidth, score 0
        centred = xs - (torch.zeros(groups, d, dtype=x.dtype).index_add_(0, member, xs) / count)[member]
        if isinstance(rule, str):
            var = torch.zeros(groups, d, dtype=x.dtype).index_add_(0, member, centred * centred) / count
            h = (var.sqrt() * _rule_factor(count, d, rule))[member]
        else:
            h = torch.full_like(xs, float(rule))
        h[seg.counts[member] < 2] = 1.0
        scaled = centred / h

    def segments(c0: int, c1: int) -> None:
        if compiled is not None:
            compiled.kde_segment_scores(pairs.as_numpy(scaled), pairs.as_numpy(seg.offsets[c0:c1 + 1]),
                                        compiled.zeros(x.shape[1]), leave_one_out, out.numpy())
            out[int(seg.offsets[c0]):int(seg.offsets[c1])] /= h[int(seg.offsets[c0]):int(seg.offsets[c1])]
            return
        for c in range(c0, c1):
            lo, hi = int(seg.offsets[c]), int(seg.offsets[c + 1])
            if hi - lo >= 2:
                out[lo:hi] = kde_score(xs[lo:hi], xs[lo:hi], bandwidth(xs[lo:hi], rule), tile, leave_one_out)

    pairs.shard_segments(segments, seg.counts ** 2, out)
    result = torch.empty_like(out)
    result[seg.order] = out
    return result


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
        # provenance only (describe): h at the initial particles and h of the last score call
        self.h_initial: torch.Tensor | None = None
        self.h_last: torch.Tensor | None = None

    def prepare(self, x0: torch.Tensor, t0: float) -> None:
        self.h_initial = bandwidth(x0, self.settings.bandwidth)

    def score(self, x: torch.Tensor, t: float) -> torch.Tensor:
        h = bandwidth(x, self.settings.bandwidth)
        self.h_last = h
        return kde_score(x, x, h, self.settings.tile, self.settings.leave_one_out)

    def score_groups(self, x: torch.Tensor, group: torch.Tensor, groups: int, t: float) -> torch.Tensor:
        """Each group's own KDE score, its bandwidth from its particles at this call."""
        return kde_group_scores(x, Segments.of(group, groups), self.settings.bandwidth, self.settings.tile,
                                self.settings.leave_one_out)

    def state_dict(self) -> dict:
        return {} if self.h_initial is None else {"bandwidth_initial": self.h_initial}

    def load_state_dict(self, state: dict) -> None:
        self.h_initial = state.get("bandwidth_initial")

    def describe(self) -> dict:
        """The settings and the per-coordinate bandwidths the rule gave: ``bandwidth_initial``
        (at the initial particles) and ``bandwidth_last`` (at the last score call)."""
        as_list = lambda h: None if h is None else [float(v) for v in h]
        return {**super().describe(), "bandwidth_initial": as_list(self.h_initial),
                "bandwidth_last": as_list(self.h_last)}

    def log_density(self, x: torch.Tensor, t: float) -> torch.Tensor:
        return kde_log_density(x, x, bandwidth(x, self.settings.bandwidth), self.settings.tile)

    def log_density_groups(self, x: torch.Tensor, group: torch.Tensor, groups: int, t: float) -> torch.Tensor:
        """log f_c(x_p) of each group's own KDE (its h_c from its particles) at its particles, one
        :meth:`log_density` per group; NaN in groups of fewer than 2 particles."""
        seg = Segments.of(group, groups)
        xs, bounds = x[seg.order], seg.offsets.tolist()
        values = torch.full_like(xs[:, 0], math.nan)
        for c in range(groups):
            if bounds[c + 1] - bounds[c] >= 2:
                values[bounds[c]:bounds[c + 1]] = self.log_density(xs[bounds[c]:bounds[c + 1]], t)
        out = torch.empty_like(values)
        out[seg.order] = values
        return out
