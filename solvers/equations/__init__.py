"""Equations a case file can name (``equation: {kind: NAME, ...}``), one file each.

An entry is a class registered in :data:`EQUATIONS` with a ``name``, a typed ``Settings``
dataclass and the few things the run needs to know about its equation:

* ``validate()`` -- checks beyond types (ranges, shapes); raise ``SettingsError`` naming
  ``equation.<key>``; may normalise ``self.settings`` (the resolved case stores them);
* ``build(tensor)`` -- the equation object, whose ``velocity(x, s, t)`` moves the particles
  (``tensor`` turns case-file numbers into tensors of the run's dtype and device); an equation
  that accepts ``species:`` cases also has ``build_species(species)`` (``solvers/species.py``);
* ``collisional`` -- a collision operator conserving momentum and energy (the output then has
  the entropy production and the equilibrium covariance tr(C_0)/d I);
* ``initial_covariance_rate(density)`` -- the exact dS/dt at t0 for the closed-form initial density, if known;
* ``covariance_law(t0)`` -- the exact covariance Sigma(t) from the particles' own (m_0, C_0), if known;
* ``maxwell_moments_B()`` -- B of a Maxwell-molecule operator whose closed moment equations
  (``landau/maxwell_moments.py``) give the exact fourth moment from any initial data, else None;
* ``exact_solution(initial, t0)`` -- the exact solution f(t, x) started from the closed-form
  initial density ``initial``, if known (an object with ``score(x, t)``, ``log_density(x, t)``);
* ``phase_space`` -- particles carry positions in a periodic box (``space:``) as well as
  velocities; the state is one (n, 1 + d) tensor [x | v] and the equation object steps itself
  (``advance``, a composition of sub-steps) with the integrators in ``integrators``;
* ``uses_score`` -- the equation needs a score oracle (collisionless ones refuse ``oracle:``; it may
  depend on the settings: Landau with ``method: binary`` uses none);
* ``steps_itself`` -- the equation object takes whole steps (``advance``) instead of the integrator;
* ``check_time(time)`` -- the integrator and time step suit the equation.

Adding an equation: write ``solvers/equations/NAME.py`` with an :class:`Equation` subclass
decorated by ``@EQUATIONS.register`` and import it below (or anywhere before the case is read).
"""
from __future__ import annotations

import dataclasses
from typing import Any, Callable, ClassVar

import torch

from landau.settings import Registry, SettingsError
from solvers.output import Variable

EQUATIONS = Registry("equation")

Tensorize = Callable[[Any], torch.Tensor]
CovarianceLaw = Callable[[torch.Tensor, torch.Tensor, float], torch.Tensor]


class Equation:
    """Base of equation entries: holds the validated settings and the dimension."""

    name: ClassVar[str]
    Settings: ClassVar[type]
    collisional: ClassVar[bool] = False
    phase_space: ClassVar[bool] = False
    uses_score: ClassVar[bool] = True
    integrators: ClassVar[tuple[str, ...]] = ("euler", "heun", "rk4")

    @property
    def steps_itself(self) -> bool:
        """The equation object takes whole steps itself (``advance(x, t, dt, u, rhs)``) instead of
        the case's integrator: phase-space equations, Landau's binary collisions."""
        return self.phase_space

    def __init__(self, settings: Any, dim: int, space: Any = None) -> None:
        self.settings, self.dim, self.space = settings, dim, space
        if space is not None and not self.phase_space:
            raise SettingsError(f"space: the {self.name} equation is space-homogeneous and takes no space: section")
        self.validate()

    def validate(self) -> None:
        """Range and shape checks beyond the settings' types."""

    def resolved(self) -> dict:
        """The settings as plain data, for the resolved case."""
        return {"kind": self.name, **dataclasses.asdict(self.settings)}

    def build(self, tensor: Tensorize) -> Any:
        raise NotImplementedError

    def state_variables(self) -> dict[str, Variable]:
        """The particle states every output frame stores (for the first ``output.particles``)."""
        return {"x": Variable(("time", "particle", "dim"), "particle position (velocity for Landau)", fmt="state"),
                "score": Variable(("time", "particle", "dim"), "score grad log f used at the particles", fmt="state")}

    def state_frame(self, x: torch.Tensor, s: torch.Tensor) -> dict[str, torch.Tensor]:
        """The values of :meth:`state_variables` from the state rows x and their scores s."""
        return {"x": x, "score": s}

    def check_time(self, time: Any) -> None:
        """Refuse an integrator that is not meant for this equation (``time`` resolved settings)."""
        if time.integrator not in self.integrators:
            raise SettingsError(f"time.integrator: {time.integrator!r} is not meant for the {self.name} "
                                f"equation (use {' or '.join(self.integrators)})")

    def covariance_law(self, t0: float) -> CovarianceLaw | None:
        return None

    def initial_covariance_rate(self, density: Any) -> torch.Tensor | None:
        """The exact dS/dt at t0 from the closed-form initial ``density``, if known (else None)."""
        return None

    def maxwell_moments_B(self) -> float | None:
        """B of Maxwell molecules (the closed moment equations hold), else None."""
        return None

    def exact_solution(self, initial: Any, t0: float, tensor: Tensorize) -> Any:
        return None


from solvers.equations import fokker_planck, landau, vlasov_poisson  # noqa: E402,F401  (register the built-in equations)
