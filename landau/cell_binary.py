"""Binary-collision Monte Carlo per cell: the collision step PIC codes use (Takizuka & Abe 1977;
Nanbu 1997), a reference for the score-based operator of :mod:`landau.cell_collisions` that needs
no score.

In each cell c the N_c particles are paired at random and every pair is scattered as in
:class:`landau.binary_collisions.BinaryCollisions` (relative velocity rotated, |u| kept, momentum and
energy conserved by every collision; an odd cell collides one triple at half weight). The cell's
operator U_p = -B (rho_c / N_c) sum_{q in c} Phi(v_p - v_q)(s_p - s_q) is the homogeneous one with
strength B rho_c, rho_c = N_c M / N, so the angle variance of a step dt is

    <theta^2> = 8 (d - 1) B rho_c |u|^gamma dt          (docs/binary_collisions.md),

and the step converges to the same Vlasov-Poisson-Landau equation as dt -> 0, with the
statistical noise of N_c particles per cell. Random numbers: the run's generator, cell by cell.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from landau.binary_collisions import BinaryCollisions
from landau.cell_collisions import Segments, cell_index


@dataclass(frozen=True)
class CellBinaryCollisions:
    gamma: float
    B: float
    length: float
    cells: int
    scheme: str = "takizuka_abe"

    def step(self, v: torch.Tensor, x: torch.Tensor, dt: float, generator: torch.Generator) -> None:
        """Collide every particle of every cell once, in place on the velocities v (N, d)."""
        n, d = v.shape
        binary = BinaryCollisions(self.gamma, self.B, self.scheme)
        seg = Segments.of(cell_index(x, self.length, self.cells), self.cells)
        vs = v[seg.order].contiguous()
        bounds = seg.offsets.tolist()
        for lo, hi in zip(bounds[:-1], bounds[1:]):
            if hi - lo >= 2:
                rho = (hi - lo) * self.cells / n
                binary.collide(vs[lo:hi], 8 * (d - 1) * self.B * rho * dt, generator)
        v[seg.order] = vs
