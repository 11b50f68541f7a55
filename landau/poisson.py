"""Gauss's law on a periodic 1D grid, solved spectrally.

Normalised electrostatics of electrons (charge -1) on a uniform neutralising background:

    dE/dx = rho = 1 - n_e,        E = -d phi / dx,

so E_hat(k_m) = rho_hat(k_m) / (i k_m) for the modes k_m = 2 pi m / L, m = 1 .. M/2 - 1; the mean
field (m = 0) is zero (periodic box, no net charge) and, for even M, so is the Nyquist mode,
whose derivative symbol is not odd on the grid. The discrete operator rho -> E is then real and
antisymmetric, sum_j rho_j E_j = 0, which with the same deposit and gather shape conserves total
momentum (:mod:`landau.particle_shapes`).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class SpectralPoisson1D:
    length: float
    cells: int

    def wavenumbers(self, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
        """k_m = 2 pi m / L for the rfft modes m = 0 .. M/2."""
        m = torch.arange(self.cells // 2 + 1, dtype=dtype, device=device)
        return 2 * torch.pi * m / self.length

    def efield(self, rho: torch.Tensor) -> torch.Tensor:
        """E_j at the nodes from the charge density rho_j."""
        rho_hat = torch.fft.rfft(rho)
        k = self.wavenumbers(rho.dtype, rho.device)
        e_hat = torch.zeros_like(rho_hat)
        top = self.cells // 2 if self.cells % 2 == 0 else self.cells // 2 + 1
        e_hat[1:top] = rho_hat[1:top] / (1j * k[1:top])
        return torch.fft.irfft(e_hat, n=self.cells)

    def modes(self, e: torch.Tensor, count: int) -> torch.Tensor:
        """|E_hat_m| for m = 1 .. count, normalised so that E = A cos(k_m x + p) gives A."""
        return torch.fft.rfft(e)[1:count + 1].abs() * (2.0 / self.cells)
