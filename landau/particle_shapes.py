"""Particle shapes on a periodic 1D grid: charge deposition and field interpolation.

A particle at x in [0, L) spreads over the nodes x_j = (j + 1/2) dx (the cell centres, dx = L/M)
with the weights of a B-spline S of order 1 (``cic``, cloud in cell) or 2 (``quadratic``):

    number density   n_j = (w / dx) sum_p S(x_j - x_p),      w = L / N  (mean density 1)
    field at x_p     E(x_p) = sum_j E_j S(x_j - x_p).

Deposit and gather use the same S, so the total force on the particles equals the force on the
grid charge, sum_p E(x_p) = sum_j E_j sum_p S(x_j - x_p), and vanishes with a field solver whose
discrete derivative is antisymmetric (:mod:`landau.poisson`): total momentum is conserved to
rounding. The weights are written out in :mod:`landau.pic_kernels_numba`.

CPU tensors go through the compiled loops (O(n), parallel); CUDA tensors, CPU tensors when numba
is not importable or under ``landau.pairs.use_backend("torch")``, through the torch path below
(``index_add_`` and indexing).
"""
from __future__ import annotations

import importlib
import warnings
from dataclasses import dataclass
from functools import lru_cache
from types import ModuleType

import torch

#: case-file names of the shapes -> B-spline order
SHAPES = {"cic": 1, "quadratic": 2}
#: chunks of the compiled deposition (fixed, so the summation order does not depend on threads)
MAX_CHUNKS = 64


@lru_cache(maxsize=None)
def _compiled() -> ModuleType | None:
    try:
        return importlib.import_module("landau.pic_kernels_numba")
    except ImportError as err:
        warnings.warn(f"numba is not available ({err}): particle-in-cell loops run on the torch path",
                      RuntimeWarning, stacklevel=3)
        return None


def compiled(x: torch.Tensor) -> ModuleType | None:
    """The compiled loops for the CPU tensor x (threads set), or None: the torch path."""
    from landau.pairs import backend
    if backend() == "torch" or x.device.type != "cpu" or x.requires_grad or x.dtype not in (torch.float32, torch.float64):
        return None
    module = _compiled()
    if module is not None:
        from landau.pairs import cpu_threads
        import numba
        numba.set_num_threads(min(cpu_threads(), numba.config.NUMBA_NUM_THREADS))
    return module


@dataclass(frozen=True)
class ParticleShape:
    """The B-spline shape of ``order`` (1 or 2) on a periodic grid of ``cells`` nodes over [0, length)."""

    order: int
    length: float
    cells: int

    @property
    def dx(self) -> float:
        return self.length / self.cells

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

    def deposit(self, x: torch.Tensor) -> torch.Tensor:
        """sum_p S(x_j - x_p) for every node j (the particle count per node, shape-weighted)."""
        k = compiled(x)
        if k is None:
            out = torch.zeros(self.cells, dtype=x.dtype, device=x.device)
            for j, w in zip(*self._stencil(x)):
                out.index_add_(0, j, w)
            return out
        chunks = max(1, min(MAX_CHUNKS, x.shape[0] // 8192))
        rows = torch.zeros(chunks, self.cells, dtype=torch.float64)
        k.deposit(x.detach().numpy(), 1.0 / self.dx, self.cells, self.order, rows.numpy())
        return rows.sum(0).to(x.dtype)

    def gather(self, grid: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """sum_j grid_j S(x_j - x_p) for every particle p."""
        k = compiled(x)
        if k is None:
            idx, w = self._stencil(x)
            return sum(grid[j] * wj for j, wj in zip(idx, w))
        out = torch.empty_like(x)
        k.gather(x.detach().numpy(), grid.detach().to(x.dtype).contiguous().numpy(),
                 1.0 / self.dx, self.order, out.numpy())
        return out
