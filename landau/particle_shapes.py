"""Particle shapes on a periodic 1D grid: charge deposition and field interpolation.

A particle at x in [0, L) spreads over the nodes x_j = (j + 1/2) dx (the cell centres, dx = L/M)
with the weights of a B-spline S of order 1 (``cic``, cloud in cell) or 2 (``quadratic``):

    number density   n_j = (w / dx) sum_p S(x_j - x_p),      w = L / N  (mean density 1)
    field at x_p     E(x_p) = sum_j E_j S(x_j - x_p).

Deposit and gather use the same S, so the total force on the particles equals the force on the
grid charge, sum_p E(x_p) = sum_j E_j sum_p S(x_j - x_p), and vanishes with a field solver whose
discrete derivative is antisymmetric (:mod:`landau.poisson`): total momentum is conserved to
rounding. The weights are written out in :mod:`landau.pic_kernels_numba`.

Besides the plain deposit and gather, the two fused passes of a leapfrog step over phase-space
rows z = [x | v] (kick-drift-deposit, gather-kick) live here, in place, so that the step reads
and writes the particles twice and allocates nothing of size n, as a plain C loop. CPU tensors go through the compiled loops (O(n),
parallel); CUDA tensors, CPU tensors when numba is not importable or under
``landau.pairs.use_backend("torch")``, through the torch path below (``index_add_`` and indexing).
"""
from __future__ import annotations

from dataclasses import dataclass
from types import ModuleType

import torch

#: case-file names of the shapes -> B-spline order
SHAPES = {"cic": 1, "quadratic": 2}
#: chunks of the compiled deposition (fixed, so the summation order does not depend on threads)
MAX_CHUNKS = 64


def compiled(x: torch.Tensor) -> ModuleType | None:
    """The compiled loops for the CPU tensor x (numba configured and its threads set at first
    use, as for the pair kernels), or None: the torch path."""
    from landau.pairs import backend, load_compiled
    if backend() == "torch" or x.device.type != "cpu" or x.requires_grad or x.dtype not in (torch.float32, torch.float64):
        return None
    return load_compiled("landau.pic_kernels_numba")


@dataclass(frozen=True)
class ParticleShape:
    """The B-spline shape of ``order`` (1 or 2) on a periodic grid of ``cells`` nodes over [0, length)."""

    order: int
    length: float
    cells: int

    @property
    def dx(self) -> float:
        return self.length / self.cells

    def wrap(self, x: torch.Tensor) -> torch.Tensor:
        """x mod L in [0, L) (a remainder that rounds up to L is folded back to 0)."""
        x = torch.remainder(x, self.length)
        return torch.where(x >= self.length, x - self.length, x)

    def _stencil(self, x: torch.Tensor) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """Node indices and weights of every particle (torch path)."""
        M, s = self.cells, x / self.dx - 0.5
        if self.order == 1:
            j = torch.floor(s)
            f = s - j
            j = j.long() % M
            return [j, (j + 1) % M], [1 - f, f]
        c = torch.floor(s + 0.5)
        g = s - c
        j = (c.long() - 1) % M
        return [j, (j + 1) % M, (j + 2) % M], [0.5 * (0.5 - g) ** 2, 0.75 - g * g, 0.5 * (0.5 + g) ** 2]

    def _rows(self, n: int) -> torch.Tensor:
        return torch.zeros(max(1, min(MAX_CHUNKS, n // 8192)), self.cells, dtype=torch.float64)

    def deposit(self, x: torch.Tensor) -> torch.Tensor:
        """sum_p S(x_j - x_p) for every node j (the particle count per node, shape-weighted)."""
        k = compiled(x)
        if k is None:
            out = torch.zeros(self.cells, dtype=x.dtype, device=x.device)
            for j, w in zip(*self._stencil(x)):
                out.index_add_(0, j, w)
            return out
        rows = self._rows(x.shape[0])
        k.deposit(x.detach().numpy(), 1.0 / self.dx, self.cells, self.order, rows.numpy())
        return rows.sum(0).to(x.dtype)

    def gather(self, grid: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """sum_j grid_j S(x_j - x_p) for every particle p."""
        k = compiled(x)
        if k is None:
            idx, w = self._stencil(x)
            return sum(grid[j] * wj for j, wj in zip(idx, w))
        out = torch.empty_like(x)
        k.gather(x.detach().numpy(), grid.detach().to(x.dtype).contiguous().numpy(), 1.0 / self.dx, self.order,
                 out.numpy())
        return out

    def kick_drift_deposit(self, z: torch.Tensor, a: torch.Tensor, kick: float, drift: float) -> torch.Tensor:
        """In place on the rows z = [x | v]: v_1 += kick a, x += drift v_1 (mod L); returns the
        deposit of the new positions (as :meth:`deposit`)."""
        k = compiled(z)
        if k is None:
            z[:, 1] += kick * a
            z[:, 0] = self.wrap(z[:, 0] + drift * z[:, 1])
            return self.deposit(z[:, 0])
        rows = self._rows(z.shape[0])
        k.kick_drift_deposit(z.detach().numpy(), a.detach().contiguous().numpy(), kick, drift, self.length,
                             1.0 / self.dx, self.order, rows.numpy())
        return rows.sum(0).to(z.dtype)

    def gather_kick(self, z: torch.Tensor, grid: torch.Tensor, charge_mass: float, kick: float,
                    a: torch.Tensor) -> None:
        """a = (q/m) E(x) at the rows z (written to ``a``), then v_1 += kick a, in place."""
        k = compiled(z)
        if k is None:
            a.copy_(charge_mass * self.gather(grid, z[:, 0]))
            z[:, 1] += kick * a
            return
        k.gather_kick(z.detach().numpy(), grid.detach().to(z.dtype).contiguous().numpy(), 1.0 / self.dx,
                      self.order, charge_mass, kick, a.numpy())
