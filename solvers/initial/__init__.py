"""Initial densities a case file can name (``initial: {kind: NAME, ...}``), one file each.

An entry is a class registered in :data:`INITIALS` with a ``name``, a typed ``Settings``
dataclass and

* ``validate()`` -- checks beyond types; it sees the case's equation entry (``self.equation``),
  e.g. BKW exists for Maxwell-molecule Landau only; may normalise ``self.settings``; errors name
  ``self.key`` (``initial``, or ``species.<i>.initial`` in a multi-species case);
* ``default_start()`` -- the start time when ``time.start`` is omitted (0 unless the density
  is a solution that starts later, such as BKW);
* ``check_start(t0)`` -- reject start times where the density does not exist;
* ``build(tensor, t0)`` -- the density object, with ``score(x, t)`` and ``log_density(x, t)``;
* ``sample(density, n, generator, t0, dtype, device)`` -- n draws at t0;
* ``exact_solution(density, t0)`` -- the density itself when it is an exact solution of the
  equation at every time (BKW), else None;
* ``phase_space`` -- a density in (x, v) for phase-space equations (``solvers/initial/phase_space.py``),
  sampled as (n, 1 + d) points [x | v]; velocity-only densities are for homogeneous equations.

Adding an initial density: write ``solvers/initial/NAME.py`` with an :class:`Initial` subclass
decorated by ``@INITIALS.register`` and import it below.
"""
from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

import torch

from landau.settings import Registry, SettingsError
from solvers.equations import Equation, Tensorize

INITIALS = Registry("initial density")


class Initial:
    """Base of initial-density entries."""

    name: ClassVar[str]
    Settings: ClassVar[type]
    phase_space: ClassVar[bool] = False

    def __init__(self, settings: Any, dim: int, equation: Equation, key: str = "initial") -> None:
        self.settings, self.dim, self.equation, self.key = settings, dim, equation, key
        if self.phase_space != equation.phase_space:
            need = "a phase-space density" if equation.phase_space else "a velocity density"
            raise SettingsError(f"{key}.kind: the {equation.name} equation needs {need}, got {self.name!r}")
        self.validate()

    def validate(self) -> None:
        """Range and shape checks beyond the settings' types."""

    def resolved(self) -> dict:
        return {"kind": self.name, **dataclasses.asdict(self.settings)}

    def default_start(self) -> float:
        return 0.0

    def check_start(self, t0: float) -> None:
        """Raise ``SettingsError`` (key ``time.start``) if the density does not exist at t0."""

    def build(self, tensor: Tensorize, t0: float) -> Any:
        raise NotImplementedError

    def sample(self, density: Any, n: int, generator: torch.Generator, t0: float, dtype: torch.dtype,
               device: torch.device) -> torch.Tensor:
        """n draws from ``density`` at t0 (random numbers from ``generator``)."""
        return density.sample(n, generator).to(device)

    def exact_solution(self, density: Any, t0: float) -> Any:
        return None


from solvers.initial import (bkw, bump_on_tail, gaussian, gaussian_mixture, perturbed_maxwellian,  # noqa: E402,F401
                             two_stream)  # (register the built-ins)
