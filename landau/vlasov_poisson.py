"""The 1D-1V..3V electrostatic Vlasov-Poisson system as a particle-in-cell method.

Normalised units (electron plasma frequency 1, Debye length 1 for unit thermal spread):

    df/dt + v_1 df/dx - E df/dv_1 = 0,      dE/dx = 1 - n_e(x),      n_e = int f dv,  mean n_e = 1,

for electrons (charge -1, mass 1) on a fixed neutralising background in the periodic box [0, L).
N particles of equal weight w = L / N carry phase-space points z_p = (x_p, v_p), stored as one
(N, 1 + d) tensor [x | v]; the field acts on v_1. One step of the leapfrog (kick-drift-kick,
second order, stable for omega_p dt < 2) is composed of sub-steps:

    kick(dt/2):   v_1 <- v_1 + (dt/2) a(x),          a(x_p) = -E(x_p)
    drift(dt):    x   <- x + dt v_1   (mod L)
    field:        n_e -> E on the grid -> a(x) at the particles      (deposit, Poisson, gather)
    kick(dt/2):   v_1 <- v_1 + (dt/2) a(x)

run as two passes over the particles (kick-drift-deposit, then gather-kick after the field solve,
:class:`landau.particle_shapes.ParticleShape`), so that a collision sub-step can be put around it by Strang splitting. The phase-space velocity
dz/dt = (v_1, a(x) e_1) at the step boundary is what the run loop keeps as the first stage
(``velocity``); the leapfrog reuses it for its first half kick, so each step solves the field once.

Energies: kinetic (w/2) sum_p |v_p|^2, field (1/2) int E^2 dx = (dx/2) sum_j E_j^2; their sum is
conserved up to the time-stepping and grid errors. Momentum w sum_p v_p is conserved to rounding
(same shape for deposit and gather, antisymmetric field solve).
"""
from __future__ import annotations

from typing import Callable

import torch

from landau.cell_binary import CellBinaryCollisions
from landau.cell_collisions import CellLandau
from landau.particle_shapes import ParticleShape
from landau.poisson import SpectralPoisson1D

#: ``rhs(z, t) -> (dz/dt, s)``: the phase-space velocity and the scores at a stage
Rhs = Callable[[torch.Tensor, float], tuple[torch.Tensor, torch.Tensor]]
#: an explicit stepper ``(z, t, h, k1, rhs) -> z'`` from its first stage k1 (solvers.steppers)
Stepper = Callable[[torch.Tensor, float, float, torch.Tensor, Rhs], torch.Tensor]


class VlasovPoisson:
    #: charge over mass of the electrons (normalised units)
    CHARGE_MASS = -1.0

    def __init__(self, shape: ParticleShape, poisson: SpectralPoisson1D,
                 collisions: CellLandau | CellBinaryCollisions | None = None,
                 splitting: str = "strang", collision_step: Stepper | None = None) -> None:
        self.shape, self.poisson, self.collisions, self.splitting = shape, poisson, collisions, splitting
        self.collision_step = collision_step               # required with the score-based operator
        self.generator: torch.Generator | None = None      # the run's, for binary collisions
        self.length, self.cells = shape.length, shape.cells
        self._last: tuple[torch.Tensor, int, torch.Tensor] | None = None   # (z, its version, u) of the last solve

    # ------------------------------------------------------------------ the field
    def charge_density(self, counts: torch.Tensor, n: int) -> torch.Tensor:
        """1 - n_e at the nodes, n_e = counts M / N (``counts``: the shape-weighted particle count
        per node of N particles)."""
        return 1.0 - counts * (self.cells / n)

    def efield_from_counts(self, counts: torch.Tensor, n: int) -> torch.Tensor:
        """E at the nodes from Gauss's law."""
        return self.poisson.efield(self.charge_density(counts, n))

    def efield(self, x: torch.Tensor) -> torch.Tensor:
        return self.efield_from_counts(self.shape.deposit(x), x.shape[0])

    def _velocity_buffer(self, z: torch.Tensor) -> torch.Tensor:
        """An (n, 1 + d) buffer whose column 1 holds a(x_p) = (q/m) E(x_p) for z. The last one is kept with the very
        tensor it was made for (and its in-place version counter): the leapfrog's closing half kick
        and the next step's opening one need the field at the same positions."""
        last = self._last
        if last is not None and last[0] is z and last[1] == z._version:
            return last[2]
        x, u = z[:, 0], torch.empty_like(z)
        u[:, 1] = self.CHARGE_MASS * self.shape.gather(self.efield(x), x)
        self._last = (z, z._version, u)
        return u

    # ------------------------------------------------------------------ the run loop's interface
    @property
    def score_collisions(self) -> bool:
        """Collisions by the score-based operator (a velocity field from scores), not binary Monte Carlo."""
        return isinstance(self.collisions, CellLandau)

    def collision_velocity(self, z: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        """The collision operator's velocity field U(v) in each cell (scores s per cell)."""
        return self.collisions.velocity(z[:, 1:], s, self.collisions.segments(z[:, 0]))

    def velocity(self, z: torch.Tensor, s: torch.Tensor, t: float) -> torch.Tensor:
        """dz/dt = (v_1, a(x) e_1 + U(v)): the phase-space velocity, U the collision operator's
        field from the scores s (collisionless: s is not used)."""
        u = self._velocity_buffer(z)
        u[:, 0] = z[:, 1]
        u[:, 2:] = 0.0
        if not self.score_collisions:
            return u
        total = u.clone()
        total[:, 1:] += self.collision_velocity(z, s)
        return total

    def collide(self, z: torch.Tensor, t: float, h: float, U: torch.Tensor, rhs: Rhs) -> None:
        """The collision sub-step dv/dt = U(v) at fixed positions over [t, t + h], in place on z, by
        ``collision_step`` (euler, heun or rk4) from its first stage U (at z); the further stages
        evaluate the scores at their velocities through ``rhs`` and keep only the collision field."""
        def collision_rhs(zs: torch.Tensor, ts: float) -> tuple[torch.Tensor, torch.Tensor]:
            u, s = rhs(zs, ts)
            return self._phase_space(self._collision_part(u, self._velocity_buffer(zs))), s
        z.copy_(self.collision_step(z, t, h, self._phase_space(U), collision_rhs))

    @staticmethod
    def _phase_space(U: torch.Tensor) -> torch.Tensor:
        """(0, U): a velocity-only field as a phase-space one (positions do not move)."""
        return torch.cat([torch.zeros_like(U[:, :1]), U], 1)

    def advance(self, z: torch.Tensor, t: float, dt: float, u: torch.Tensor, rhs) -> torch.Tensor:
        """One step from z with its phase-space velocity u = dz/dt(z), in place on z and u (the
        run loop replaces its state by the results; at n = 1e7 fresh arrays each step cost more
        in page faults than the step itself). Vlasov part, the leapfrog: kick dt/2, drift dt and
        deposit in one pass; field; gather and kick dt/2 in a second pass, a(x) written into u's
        column 1. With collisions, by splitting: Strang C(dt/2) V(dt) C(dt/2), the first half with
        the collision field in u (scores at z_k), the second with scores at the new state from
        ``rhs`` (one more score evaluation); Lie V(dt) after C(dt). The collision sub-steps use
        ``collision_step``: forward Euler (first order in the collision part, one score per
        sub-step), Heun (second order, two) or RK4 (fourth order, four); Strang splitting is then
        second order overall with Heun or RK4."""
        if self.collisions is None:
            return self._vlasov(z, dt, u)
        field = self._velocity_buffer(z)                 # a(x_k) (the positions do not collide)
        h = (0.5 if self.splitting == "strang" else 1.0) * dt
        self._collisions(z, t, h, lambda: u, field, rhs)
        z = self._vlasov(z, dt, field)
        if self.splitting == "strang":                   # C(dt/2) V(dt) C(dt/2)
            field = self._velocity_buffer(z)
            self._collisions(z, t + h, h, lambda: rhs(z, t + dt)[0], field, rhs)
            self._last = (z, z._version, field)          # collisions move no position: the field stands
        return z

    def _collisions(self, z: torch.Tensor, t: float, h: float, velocity: Callable[[], torch.Tensor],
                    field: torch.Tensor, rhs: Rhs) -> None:
        """One collision sub-step over h in place: binary Monte Carlo per cell (no score), or the
        score-based operator from the phase-space velocity ``velocity()`` at z."""
        if self.score_collisions:
            self.collide(z, t, h, self._collision_part(velocity(), field), rhs)
        else:
            self.collisions.step(z[:, 1:], z[:, 0], h, self.generator)

    @staticmethod
    def _collision_part(u: torch.Tensor, field: torch.Tensor) -> torch.Tensor:
        """U(v) from the phase-space velocity u = (v_1, a e_1 + U) and the field buffer (a in column 1)."""
        U = u[:, 1:].clone()
        U[:, 0] -= field[:, 1]
        return U

    def _vlasov(self, z: torch.Tensor, dt: float, u: torch.Tensor) -> torch.Tensor:
        """Kick-drift-kick in place, u[:, 1] = a(x) on entry, a at the new positions on exit."""
        counts = self.shape.kick_drift_deposit(z, u[:, 1], 0.5 * dt, dt)
        self.shape.gather_kick(z, self.efield_from_counts(counts, z.shape[0]), self.CHARGE_MASS, 0.5 * dt, u[:, 1])
        self._last = (z, z._version, u)
        return z

    # ------------------------------------------------------------------ diagnostics
    def field_energy(self, e: torch.Tensor) -> torch.Tensor:
        return 0.5 * self.shape.dx * (e * e).sum()

    def kinetic_energy(self, v: torch.Tensor) -> torch.Tensor:
        return 0.5 * (self.length / v.shape[0]) * (v * v).sum()
