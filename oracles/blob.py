"""Blob score (Carrillo, Craig & Patacchini; Ilin, Hu & Wang 2025).

With the Gaussian mollifier K(z) = exp(-|z|^2 / eps) and Z_p = sum_r K(X_p - X_r),

    s_p = sum_q grad K(X_p - X_q) (1/Z_p + 1/Z_q),      grad K(z) = -(2/eps) z K(z),

the gradient of the first variation of the regularised entropy  Int f log(psi_eps * f).
The bandwidth is fixed once from the initial particles,

    eps = 4 det(Cov(X_0))^(1/d) n^(-2/(d+4)),

unless overridden (Cov the 1/n sample covariance, det(Cov)^(1/d) by slogdet, so that a nearly
singular or tiny cloud gives a finite positive bandwidth rather than NaN or 0). Two passes over
the pairs (``landau.pairs``): one for Z, one for s.

Many independent samples at once (the velocities of each cell of a phase-space run,
``score_groups``): each group c has its own eps_c, fixed by the rule from its initial particles
(``prepare_groups``, or the first ``score_groups`` call), and every sum over q runs over the group
of p only. CPU: one compiled call
for all groups, parallel over groups, each unordered pair once per pass (K symmetric, the score's
term antisymmetric).
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import torch

from landau import pairs
from landau.cell_collisions import Segments
from landau.diagnostics import mean_and_covariance
from landau.pairs import auto_tile, map_rows
from oracles.base import ScoreOracle
from oracles.registry import register
from oracles.settings import SettingsError


def blob_epsilon(x0: torch.Tensor) -> float:
    """eps = 4 det(Cov(X_0))^(1/d) n^(-2/(d+4)), Cov the 1/n covariance, the determinant's log by
    slogdet (its absolute value: a cloud singular to rounding may give a tiny negative one)."""
    n, d = x0.shape
    logdet = torch.linalg.slogdet(mean_and_covariance(x0)[1]).logabsdet
    eps = 4.0 * math.exp(float(logdet) / d) * n ** (-2.0 / (d + 4))
    if not (math.isfinite(eps) and eps > 0):
        raise SettingsError(f"oracle.eps: the blob bandwidth rule needs a non-singular covariance of the "
                            f"initial particles (log det = {float(logdet)}); give oracle.eps")
    return eps


def _kernel_block(xr: torch.Tensor, xT: torch.Tensor, eps: float, work: pairs.Workspace) -> torch.Tensor:
    """K_pq = exp(-|x_p - x_q|^2 / eps) for a block of rows, formed in place in the workspace."""
    b = len(xr)
    return pairs.sq_dist(xr, xT, out=work.get(0, b), tmp=work.get(1, b)).mul_(-1.0 / eps).exp_()


def blob_score(x: torch.Tensor, eps: float, tile: int | None = None) -> torch.Tensor:
    """The blob score s (n, d) of the particles x (n, d) at bandwidth eps.

    Two passes over the pairs: Z = K 1, then s. CPU (compiled kernels): both passes fused loops,
    s_p = -(2/eps) sum_q (x_p - x_q) K_pq (1/Z_p + 1/Z_q). Torch path: per (tile, n) block of
    K formed in place, with y_q = 1/Z_q one matrix product K @ [1, x, y, y x] gives

        s_p = -(2/eps) [ (x_p (K1)_p - (Kx)_p) / Z_p + x_p (Ky)_p - (K(yx))_p ].
    """
    n, d = x.shape
    compiled = pairs.kernels(x)
    if compiled is not None:
        return _blob_compiled(compiled, x, eps)
    x = x - x.mean(0)                       # translation invariant; limits cancellation
    xT = x.T.contiguous()
    tile = auto_tile(n, 1, x.dtype, x.device, tile)
    work = pairs.Workspace(2, min(tile, n), n, x.dtype, x.device)
    z = map_rows(lambda r: _kernel_block(x[r], xT, eps, work).sum(1), n, tile)
    inv_z = 1.0 / z
    rhs = torch.cat([torch.ones_like(z)[:, None], x, inv_z[:, None], inv_z[:, None] * x], 1)

    def block(r: slice) -> torch.Tensor:
        m = _kernel_block(x[r], xT, eps, work) @ rhs             # (b, 2 + 2d)
        xr = x[r]
        t1 = (xr * m[:, :1] - m[:, 1:1 + d]) * inv_z[r, None]
        t2 = xr * m[:, 1 + d:2 + d] - m[:, 2 + d:]
        return -(2.0 / eps) * (t1 + t2)

    return map_rows(block, n, tile)


def _blob_compiled(compiled, x: torch.Tensor, eps: float) -> torch.Tensor:
    """The blob score by the compiled CPU kernels (Z, then s), rows sharded by ``pairs.shard_rows``."""
    n, d = x.shape
    xn, xT = pairs.as_numpy(x), pairs.as_numpy(x.T)
    acc0 = compiled.zeros(d)

    def normaliser(lo: int, hi: int) -> torch.Tensor:
        out = torch.empty(hi - lo, dtype=x.dtype)
        compiled.blob_normaliser(xn, xT, acc0, 1.0 / eps, lo, hi, out.numpy())
        return out

    inv_z = pairs.as_numpy(1.0 / pairs.shard_rows(normaliser, n))

    def rows(lo: int, hi: int) -> torch.Tensor:
        out = torch.empty(hi - lo, d, dtype=x.dtype)
        compiled.blob_rows(xn, xT, inv_z, acc0, 1.0 / eps, lo, hi, out.numpy())
        return out

    return pairs.shard_rows(rows, n)


def blob_group_scores(x: torch.Tensor, seg: Segments, eps: torch.Tensor, tile: int | None = None) -> torch.Tensor:
    """The blob score of every group of ``seg`` at once, group c at bandwidth eps[c] and summing
    over its own particles only (:func:`blob_score` of each group, which the torch path calls).
    Under ``pairs.sharded`` each rank scores its block of groups (``pairs.shard_segments``)."""
    xs = x[seg.order]
    compiled = pairs.kernels(xs)
    out = torch.zeros_like(xs)
    bounds = seg.offsets.tolist()
    inv_eps = pairs.as_numpy((1.0 / eps).to(torch.float64))

    def segments(c0: int, c1: int) -> None:
        if compiled is not None:
            compiled.blob_segment_scores(pairs.as_numpy(xs), pairs.as_numpy(seg.offsets[c0:c1 + 1]), inv_eps[c0:c1],
                                         compiled.zeros(x.shape[1]), out.numpy())
            return
        for c in range(c0, c1):
            if bounds[c + 1] > bounds[c]:
                out[bounds[c]:bounds[c + 1]] = blob_score(xs[bounds[c]:bounds[c + 1]], float(eps[c]), tile)

    pairs.shard_segments(segments, seg.counts ** 2, out)
    result = torch.empty_like(out)
    result[seg.order] = out
    return result


@register
class BlobOracle(ScoreOracle):
    """Blob score with the bandwidth fixed at t0 (``eps`` overrides the rule)."""

    name = "blob"

    @dataclass
    class Settings:
        eps: float | None = None
        tile: int | None = None

    def __init__(self, settings: "BlobOracle.Settings | None" = None, context=None) -> None:
        super().__init__(settings or self.Settings(), context)
        if self.settings.eps is not None and self.settings.eps <= 0:
            raise SettingsError(f"oracle.eps: must be positive, got {self.settings.eps}")
        self.eps: float | None = self.settings.eps
        self.eps_groups: torch.Tensor | None = None          # per group (score_groups), float64

    def prepare(self, x0: torch.Tensor, t0: float) -> None:
        if self.settings.eps is None:
            self.eps = blob_epsilon(x0)

    def prepare_groups(self, x0: torch.Tensor, group: torch.Tensor, groups: int, t0: float,
                       min_size: int | None = None) -> None:
        """eps_c of each group by the rule from its own initial particles (``eps`` overrides). A group
        of fewer than ``min_size`` particles (default 2 (d + 1), the threshold of
        ``solvers.cell_scores``) gets the eps of all the particles, with a warning."""
        if self.settings.eps is not None:
            self.eps_groups = torch.full((groups,), self.settings.eps, dtype=torch.float64)
            return
        min_size = 2 * (x0.shape[1] + 1) if min_size is None else min_size
        seg = Segments.of(group, groups)
        xs, bounds = x0[seg.order], seg.offsets.tolist()
        few = {c for c in range(groups) if bounds[c + 1] - bounds[c] < min_size}
        whole = blob_epsilon(x0) if few else math.nan
        self.eps_groups = torch.tensor([whole if c in few else blob_epsilon(xs[bounds[c]:bounds[c + 1]])
                                        for c in range(groups)], dtype=torch.float64)
        if few:
            warnings.warn(f"blob per group: {len(few)} of {groups} groups hold fewer than {min_size} particles "
                          "at the start and use the bandwidth of all initial particles", RuntimeWarning, stacklevel=2)

    def score_groups(self, x: torch.Tensor, group: torch.Tensor, groups: int, t: float) -> torch.Tensor:
        """Each group's blob score at its own eps_c; the first call fixes the eps_c from its particles
        (:meth:`prepare_groups`) unless that ran before, as :meth:`score` fixes eps."""
        if self.eps_groups is None:
            self.prepare_groups(x, group, groups, t)
        if len(self.eps_groups) != groups:
            raise ValueError(f"blob: bandwidths prepared for {len(self.eps_groups)} groups, called with {groups}")
        return blob_group_scores(x, Segments.of(group, groups), self.eps_groups, self.settings.tile)

    def score(self, x: torch.Tensor, t: float) -> torch.Tensor:
        if self.eps is None:
            self.prepare(x, t)
        return blob_score(x, self.eps, self.settings.tile)

    def state_dict(self) -> dict:
        return {"eps": self.eps, "eps_groups": self.eps_groups}

    def load_state_dict(self, state: dict) -> None:
        self.eps, self.eps_groups = state["eps"], state.get("eps_groups")

    def describe(self) -> dict:
        groups = None if self.eps_groups is None else \
            {"min": float(self.eps_groups.min()), "max": float(self.eps_groups.max())}
        return {**super().describe(), "eps_used": self.eps, "eps_groups": groups}
