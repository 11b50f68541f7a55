"""The Landau collision operator local in space: particles collide with those of their own cell.

For N particles of weight w = L / N in the periodic box [0, L) on M cells, cell c holding N_c
particles (density relative to the mean rho_c = N_c M / N), velocities v_p and velocity scores
s_p ~ grad_v log f(x_p, v_p):

    U_p = -B (rho_c / N_c) sum_{q in c(p)} Phi(v_p - v_q) (s_p - s_q),   Phi(z) = |z|^gamma (|z|^2 I - z z^T),

so rho_c / N_c = M / N for every cell, and a spatially uniform plasma (rho_c = 1) gets in each cell
exactly the homogeneous operator -(B / N_c) sum_q of that cell's particles. Within a cell the
operator is the homogeneous one: sum_{p in c} U_p = 0 and sum_{p in c} v_p . U_p = 0 for any scores
(momentum and kinetic energy conserved per cell by the semi-discrete system), and the entropy
production (w) sum_p U_p . s_p <= 0.

Evaluation: particles are sorted by cell (a stable argsort of the cell index); the pair sums run
in one compiled loop, parallel over cells, each unordered pair once (the pair term is
antisymmetric: ``pair_kernels_numba.landau_segment_pairs``, cost sum_c N_c^2 / 2); under torchrun
(inside ``pairs.sharded()``) each rank takes a cost-balanced block of cells
(``pairs.shard_segments``). Maxwell molecules (gamma = 0) use the
exact moment form per cell, O(N d^2), with the cell moments summed by ``index_add`` (no loop over
cells). The torch path (CUDA, and the tests' reference) runs :func:`landau.collision.landau_pair_sum`
per cell.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from landau import pairs
from landau.collision import landau_pair_sum


def cell_index(x: torch.Tensor, length: float, cells: int) -> torch.Tensor:
    """The cell c = floor(x M / L) of each position x in [0, L)."""
    return torch.clamp((x * (cells / length)).long(), 0, cells - 1)


@dataclass
class Segments:
    """Particles grouped by cell: ``order`` sorts them by cell (stable), ``counts`` N_c, ``offsets``
    the first sorted index of each cell (M + 1 entries), ``cell`` the cell of each particle."""

    cell: torch.Tensor
    order: torch.Tensor
    counts: torch.Tensor
    offsets: torch.Tensor
    x: torch.Tensor | None = None        # the positions (for the hat weights)

    @classmethod
    def of(cls, cell: torch.Tensor, cells: int, x: torch.Tensor | None = None) -> "Segments":
        order = torch.argsort(cell, stable=True)
        counts = torch.bincount(cell, minlength=cells)
        offsets = torch.zeros(cells + 1, dtype=torch.long, device=cell.device)
        offsets[1:] = torch.cumsum(counts, 0)
        return cls(cell, order, counts, offsets, x)

    def per_particle(self, values: torch.Tensor) -> torch.Tensor:
        """A per-cell array indexed at each particle's cell."""
        return values[self.cell]


def segment_pair_sum(v: torch.Tensor, s: torch.Tensor, seg: Segments, gamma: float, delta: float) -> torch.Tensor:
    """R_p = sum_{q in c(p)} |z|^gamma (|z|^2 (s_p - s_q) - (z . (s_p - s_q)) z), z = v_p - v_q."""
    vs, ss = v[seg.order], s[seg.order]
    compiled = pairs.kernels(vs, ss)
    out = torch.zeros_like(vs)

    def segments(c0: int, c1: int) -> None:
        if compiled is not None:
            compiled.landau_segment_pairs(pairs.as_numpy(vs), pairs.as_numpy(ss), pairs.as_numpy(seg.offsets[c0:c1 + 1]),
                                          compiled.zeros(v.shape[1]), compiled.static(compiled.weight_form(gamma)),
                                          float(gamma), float(delta) ** 2, out.numpy())
            return
        for c in range(c0, c1):
            r = slice(int(seg.offsets[c]), int(seg.offsets[c + 1]))
            if r.stop > r.start:
                out[r] = landau_pair_sum(vs[r], ss[r], vs[r], ss[r], gamma, delta)

    pairs.shard_segments(segments, seg.counts ** 2, out)
    result = torch.empty_like(out)
    result[seg.order] = out
    return result


def hat_weights(x_rows: torch.Tensor, x_cols: torch.Tensor, length: float, width: float) -> torch.Tensor:
    """h_pq = max(0, 1 - |x_p - x_q| / eta) (rows, cols), the distance periodic on [0, L)."""
    r = x_rows[:, None] - x_cols[None, :]
    r = r - length * torch.round(r / length)
    return torch.clamp(1.0 - r.abs() / width, min=0.0)


def segment_hat_sum(v: torch.Tensor, s: torch.Tensor, seg: Segments, gamma: float, delta: float,
                    length: float) -> torch.Tensor:
    """R_p = sum_q h_pq |z|^gamma (|z|^2 (s_p - s_q) - (z . (s_p - s_q)) z), z = v_p - v_q, with the hat
    h_pq = max(0, 1 - |x_p - x_q| / eta) of width eta = L / M (:func:`hat_weights`): the pairs of a
    particle's own cell and its two neighbours (periodic; M >= 4). Compiled CPU path
    (``pair_kernels_numba.landau_hat_pairs``): each unordered pair once, the blocks within cells and
    between neighbours parallel over cells; torch path (CUDA, the tests' reference): rows of cell c
    against the columns of cells c - 1, c, c + 1 (:func:`landau.collision.landau_pair_sum` with pair
    weights). Under torchrun cells are sharded as in :func:`segment_pair_sum` (cost
    N_c (N_c-1 + N_c + N_c+1))."""
    M = len(seg.counts)
    vs, ss, xs = v[seg.order], s[seg.order], seg.x[seg.order]
    compiled = pairs.kernels(vs, ss)
    out = torch.zeros_like(vs)
    neighbours = [sorted({(c - 1) % M, c, (c + 1) % M}) for c in range(M)]
    span = lambda c: slice(int(seg.offsets[c]), int(seg.offsets[c + 1]))  # noqa: E731

    def segments(c0: int, c1: int) -> None:
        if compiled is not None:
            compiled.landau_hat_pairs(pairs.as_numpy(vs), pairs.as_numpy(ss), pairs.as_numpy(xs.to(vs.dtype)),
                                      pairs.as_numpy(seg.offsets), c0, c1, compiled.zeros(v.shape[1]),
                                      compiled.static(compiled.weight_form(gamma)), float(gamma), float(delta) ** 2,
                                      M / length, float(length), out.numpy())
            return
        for c in range(c0, c1):
            rows = span(c)
            if rows.stop == rows.start:
                continue
            cols = torch.cat([torch.arange(span(b).start, span(b).stop, device=v.device) for b in neighbours[c]])
            x_rows, x_cols = xs[rows], xs[cols]
            out[rows] = landau_pair_sum(vs[rows], ss[rows], vs[cols], ss[cols], gamma, delta,
                                        pair_weights=lambda r: hat_weights(x_rows[r], x_cols, length, length / M))

    counts = seg.counts
    pairs.shard_segments(segments, counts * (counts.roll(1) + counts + counts.roll(-1)), out)
    result = torch.empty_like(out)
    result[seg.order] = out
    return result


def maxwell_cell_sum(v: torch.Tensor, s: torch.Tensor, seg: Segments) -> torch.Tensor:
    """The gamma = 0 pair sum of :func:`segment_pair_sum` from cell moments, exact in O(N d^2)
    (the moment form of :func:`landau.collision.maxwell_field` with every sum over q restricted
    to the particle's cell and n -> N_c; positions and scores centred per cell)."""
    M, d = len(seg.counts), v.shape[1]
    zeros = lambda *shape: torch.zeros(M, *shape, dtype=v.dtype, device=v.device)  # noqa: E731
    n_c = seg.counts.to(v.dtype)
    safe = torch.clamp(n_c, min=1.0)[:, None]
    x = v - seg.per_particle(zeros(d).index_add_(0, seg.cell, v) / safe)
    s = s - seg.per_particle(zeros(d).index_add_(0, seg.cell, s) / safe)
    xx, xs = (x * x).sum(1), (x * s).sum(1)
    m_xx = zeros(d, d).index_add_(0, seg.cell, x[:, :, None] * x[:, None, :])
    m_xs = zeros(d, d).index_add_(0, seg.cell, x[:, :, None] * s[:, None, :])
    s2 = zeros().index_add_(0, seg.cell, xx)
    v1 = zeros(d).index_add_(0, seg.cell, xx[:, None] * s)
    v2 = zeros(d).index_add_(0, seg.cell, xs[:, None] * x)
    c = torch.diagonal(m_xs, dim1=1, dim2=2).sum(1)
    n_p, Mxx, Mxs = seg.per_particle(n_c), seg.per_particle(m_xx), seg.per_particle(m_xs)
    t1 = s * (n_p * xx + seg.per_particle(s2))[:, None] + 2.0 * torch.einsum("pij,pi->pj", Mxs, x) \
        - seg.per_particle(v1)
    t2 = (n_p * xs)[:, None] * x + torch.einsum("pij,pj->pi", Mxx, s) + seg.per_particle(c)[:, None] * x \
        + torch.einsum("pij,pj->pi", Mxs, x) - seg.per_particle(v2)
    return t1 - t2


@dataclass(frozen=True)
class CellLandau:
    """The operator U_p = -B (M / N) sum_{q in c(p)} Phi(v_p - v_q)(s_p - s_q) on ``cells`` cells
    of the box [0, ``length``) (``locality`` "cell"), or with the hat in space
    U_p = -B (M / N) sum_q h_pq Phi(v_p - v_q)(s_p - s_q) (``locality`` "hat", the anchor's
    w sum_q psi_eta(x_p - x_q) with psi_eta = h / eta, eta = L / M, w = L / N; the hat has
    integral eta, so a uniform plasma gets the homogeneous operator in expectation);
    ``delta`` regularises |z|^gamma as for the homogeneous operator."""

    gamma: float
    B: float
    length: float
    cells: int
    delta: float = 0.0
    locality: str = "cell"

    def segments(self, x: torch.Tensor) -> Segments:
        return Segments.of(cell_index(x, self.length, self.cells), self.cells, x)

    def velocity(self, v: torch.Tensor, s: torch.Tensor, seg: Segments) -> torch.Tensor:
        """U (N, d) for the velocities v and scores s of particles grouped by ``seg``."""
        if self.locality == "hat":
            total = segment_hat_sum(v, s, seg, self.gamma, self.delta, self.length)
        elif self.gamma == 0:
            total = maxwell_cell_sum(v, s, seg)
        else:
            total = segment_pair_sum(v, s, seg, self.gamma, self.delta)
        return -(self.B * self.cells / v.shape[0]) * total
