"""The 1D-1V..3V electrostatic Vlasov-Poisson system as a particle-in-cell method.

Normalised units (electron plasma frequency 1, Debye length 1 for unit thermal spread):

    df/dt + v_1 df/dx - E df/dv_1 = 0,      dE/dx = 1 - n_e(x),      n_e = int f dv,  mean n_e = 1,

for electrons (charge -1, mass 1) on a fixed neutralising background in the periodic box [0, L).
N particles of equal weight w = L / N carry phase-space points z_p = (x_p, v_p), stored as one
(N, 1 + d) tensor [x | v]; the field acts on v_1. One step of the leapfrog (kick-drift-kick,
second order, stable for omega_p dt < 2) is composed of sub-steps:

    kick(dt/2):   v_1 <- v_1 + (dt/2) a(x),          a(x_p) = -E(x_p)
    drift(dt):    x   <- x + dt v_1   (mod L)                         (one pass with the kick: ``push``)
    field:        n_e -> E on the grid -> a(x) at the particles      (deposit, Poisson, gather)
    kick(dt/2):   v_1 <- v_1 + (dt/2) a(x)

so that a collision sub-step can be put around it by Strang splitting. The phase-space velocity
dz/dt = (v_1, a(x) e_1) at the step boundary is what the run loop keeps as the first stage
(``velocity``); the leapfrog reuses it for its first half kick, so each step solves the field once.

Energies: kinetic (w/2) sum_p |v_p|^2, field (1/2) int E^2 dx = (dx/2) sum_j E_j^2; their sum is
conserved up to the time-stepping and grid errors. Momentum w sum_p v_p is conserved to rounding
(same shape for deposit and gather, antisymmetric field solve).
"""
from __future__ import annotations

import torch

from landau.particle_shapes import ParticleShape, compiled
from landau.poisson import SpectralPoisson1D


class VlasovPoisson:
    def __init__(self, shape: ParticleShape, poisson: SpectralPoisson1D) -> None:
        self.shape, self.poisson = shape, poisson
        self.length, self.cells = shape.length, shape.cells
        self._last: tuple[torch.Tensor, int, torch.Tensor] | None = None   # (z, its version, a) of the last solve

    # ------------------------------------------------------------------ the field
    def density(self, x: torch.Tensor) -> torch.Tensor:
        """Electron number density n_e at the nodes: (w / dx) sum_p S(x_j - x_p), w = L / N."""
        return self.shape.deposit(x) * (self.cells / x.shape[0])

    def efield(self, x: torch.Tensor) -> torch.Tensor:
        """E at the nodes from Gauss's law with the charge density 1 - n_e."""
        return self.poisson.efield(1.0 - self.density(x))

    def acceleration(self, z: torch.Tensor) -> torch.Tensor:
        """a(x_p) = -E(x_p) for the phase-space rows z. The last solve is kept with the very tensor
        it was made for (and its in-place version counter), since the leapfrog's closing half kick
        and the next step's opening one need the field at the same positions."""
        last = self._last
        if last is not None and last[0] is z and last[1] == z._version:
            return last[2]
        x = z[:, 0]
        a = -self.shape.gather(self.efield(x), x)
        self._last = (z, z._version, a)
        return a

    # ------------------------------------------------------------------ sub-steps
    def wrap(self, x: torch.Tensor) -> torch.Tensor:
        """x mod L in [0, L) (a remainder that rounds up to L is folded back to 0)."""
        x = torch.remainder(x, self.length)
        return torch.where(x >= self.length, x - self.length, x)

    def push(self, z: torch.Tensor, a: torch.Tensor, kick: float, drift: float) -> None:
        """In place: kick v_1 += kick * a, then drift x += drift * v_1 (mod L); one compiled pass
        over the particles on the CPU."""
        k = compiled(z)
        if k is not None:       # numpy writes do not bump z's version counter: forget a field of z
            k.push(z.numpy(), a.contiguous().numpy(), kick, drift, self.length)
            if drift and self._last is not None and self._last[0] is z:
                self._last = None
            return
        z[:, 1] += kick * a
        if drift:
            z[:, 0] = self.wrap(z[:, 0] + drift * z[:, 1])

    # ------------------------------------------------------------------ the run loop's interface
    def velocity(self, z: torch.Tensor, s: torch.Tensor, t: float) -> torch.Tensor:
        """dz/dt = (v_1, a(x), 0, ...): the phase-space velocity (``s`` is not used)."""
        u = torch.zeros_like(z)
        u[:, 0] = z[:, 1]
        u[:, 1] = self.acceleration(z)
        return u

    def advance(self, z: torch.Tensor, t: float, dt: float, u: torch.Tensor, rhs) -> torch.Tensor:
        """One leapfrog step from z with its phase-space velocity u = dz/dt(z)."""
        z = z.clone()
        self.push(z, u[:, 1], 0.5 * dt, dt)                          # kick dt/2, drift dt
        self.push(z, self.acceleration(z), 0.5 * dt, 0.0)            # field, kick dt/2
        self._last = (z, z._version, self._last[2])                 # the field is that of z's positions
        return z

    # ------------------------------------------------------------------ diagnostics
    def field_energy(self, e: torch.Tensor) -> torch.Tensor:
        return 0.5 * self.shape.dx * (e * e).sum()

    def kinetic_energy(self, v: torch.Tensor) -> torch.Tensor:
        return 0.5 * (self.length / v.shape[0]) * (v * v).sum()
