"""A resolved case turned into the objects a run needs: equation, initial density, exact references.

    case (plain data) --build_problem--> Problem(equation.velocity, sample_initial, exact, ...)

The equation and initial-density entries come from their registries (``solvers.equations``,
``solvers.initial``), so this file knows no equation by name.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import torch

from landau.species import Species
from oracles import OracleContext, ScoreOracle, SettingsError, build_oracle
from solvers.case import SpaceSettings
from solvers.cell_scores import CellScores
from solvers.equations import EQUATIONS, CovarianceLaw, Equation
from solvers.initial import INITIALS
from solvers.species import SpeciesOracle, species_of
from solvers.steppers import STEPPERS


@dataclass
class Problem:
    """What the run loop and its trackers need to know about a case."""

    case: dict
    dim: int
    n: int
    dtype: torch.dtype
    device: torch.device
    generator: torch.Generator
    entry: Equation                      # the registry entry (settings, collisional, laws)
    equation: Any                        # the velocity field: equation.velocity(x, s, t)
    sample_initial: Callable[[], torch.Tensor]
    initial_density: Any                 # closed-form f(t0, x): score(x, t), log_density(x, t)
    exact: Any                           # closed-form f(t, x) at every t, or None
    t0: float
    t1: float
    dt: float
    steps: int
    covariance_law: CovarianceLaw | None
    species: list[Species] | None = None         # multi-species cases
    species_densities: list[Any] | None = None   # their closed-form initial densities

    def __post_init__(self) -> None:
        if hasattr(self.equation, "generator"):      # a Monte Carlo step draws from the seeded generator
            self.equation.generator = self.generator

    @property
    def collisional(self) -> bool:
        return self.entry.collisional

    def oracle_context(self, initial: Any = None) -> OracleContext:
        return OracleContext(dim=self.dim, device=self.device, dtype=self.dtype, generator=self.generator,
                             exact=self.exact, initial=initial or self.initial_density)

    @property
    def phase_space(self) -> bool:
        return self.entry.phase_space

    def stepper(self) -> Callable[..., torch.Tensor]:
        """The step X_k -> X_(k+1): the equation's own composition of sub-steps (phase space, binary
        collisions) or the case's integrator."""
        return self.equation.advance if self.entry.steps_itself else STEPPERS[self.case["time"]["integrator"]]

    def build_oracle(self) -> ScoreOracle:
        """The case's oracle; for a multi-species case one per species (:class:`SpeciesOracle`);
        :class:`NoScore` for an equation that uses none."""
        if not self.entry.uses_score:
            return NoScore()
        if self.phase_space:
            space = self.case["space"]
            return CellScores(lambda: build_oracle(self.case["oracle"], self.oracle_context()),
                              space["length"], space["cells"])
        if self.species is None:
            return build_oracle(self.case["oracle"], self.oracle_context())
        oracles = [build_oracle(sp["oracle"], self.oracle_context(density), f"species.{a}.oracle")
                   for a, (sp, density) in enumerate(zip(self.case["species"], self.species_densities))]
        return SpeciesOracle(oracles, self.equation.slices)


class NoScore(ScoreOracle):
    """The oracle of an equation that needs no score (collisionless Vlasov-Poisson): an empty (n, 0) score."""

    name = "none"

    def score(self, x: torch.Tensor, t: float) -> torch.Tensor:
        return x.new_zeros(x.shape[0], 0)


def select_device(name: str) -> torch.device:
    if name == "cuda" and not torch.cuda.is_available():
        raise SettingsError("device: cuda requested but CUDA is not available on this machine")
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(name)


def select_dtype(name: str, device: torch.device) -> torch.dtype:
    """``auto``: float64 on the CPU, float32 on CUDA."""
    if name == "auto":
        return torch.float64 if device.type == "cpu" else torch.float32
    return {"float32": torch.float32, "float64": torch.float64}[name]


def build_problem(case: dict, dtype: torch.dtype | None = None) -> Problem:
    """Objects for the resolved ``case``; ``dtype`` overrides the case's (a resumed run keeps the
    checkpoint's precision whatever ``dtype: auto`` means on the new device)."""
    d = case["dim"]
    device = select_device(case["device"])
    dtype = dtype or select_dtype(case["dtype"], device)
    tensor = lambda a: torch.as_tensor(np.asarray(a, dtype=float), dtype=dtype, device=device)  # noqa: E731
    generator = torch.Generator(device="cpu").manual_seed(case["seed"])
    tm = case["time"]
    t0, t1, dt = tm["start"], tm["end"], tm["dt"]

    eq_cls, eq_settings = EQUATIONS.parse(case["equation"], "equation")
    entry = eq_cls(eq_settings, d, SpaceSettings(**case["space"]) if "space" in case else None)
    common = dict(case=case, dim=d, dtype=dtype, device=device, generator=generator, entry=entry, t0=t0, t1=t1,
                  dt=dt, steps=round((t1 - t0) / dt))
    if "species" in case:
        return _build_species(common, tensor)
    init_cls, init_settings = INITIALS.parse(case["initial"], "initial")
    initial = init_cls(init_settings, d, entry)
    density = initial.build(tensor, t0)
    exact = initial.exact_solution(density, t0) or entry.exact_solution(density, t0, tensor)

    def sample() -> torch.Tensor:
        return initial.sample(density, case["particles"], generator, t0, dtype, device)

    return Problem(**common, n=case["particles"], equation=entry.build(tensor), sample_initial=sample,
                   initial_density=density, exact=exact, covariance_law=entry.covariance_law(t0))


def _build_species(common: dict, tensor: Any) -> Problem:
    """A multi-species case: the particles of all species concatenated in list order; no
    single-density exact solution or covariance law (the species laws are per-species outputs)."""
    case, entry, d, t0 = common["case"], common["entry"], common["dim"], common["t0"]
    initials = [INITIALS.parse(sp["initial"], f"species.{a}.initial") for a, sp in enumerate(case["species"])]
    initials = [cls(settings, d, entry, f"species.{a}.initial") for a, (cls, settings) in enumerate(initials)]
    densities = [init.build(tensor, t0) for init in initials]
    species = species_of(case)

    def sample() -> torch.Tensor:
        return torch.cat([init.sample(f, sp.particles, common["generator"], t0, common["dtype"], common["device"])
                          for init, f, sp in zip(initials, densities, species)])

    return Problem(**common, n=sum(sp.particles for sp in species), equation=entry.build_species(species),
                   sample_initial=sample, initial_density=None, exact=None, covariance_law=None,
                   species=species, species_densities=densities)
