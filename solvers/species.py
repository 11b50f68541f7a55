"""Multi-species cases: the ``species:`` list, one score oracle per species, per-species diagnostics.

A case with ``species:`` lists each species with ``name``, ``mass`` m_a, ``charge`` e_a,
``density`` n_a, ``particles`` N_a, ``initial`` (any registered initial density) and ``oracle``
(its own kind and settings; default blob; none with ``equation.method: binary``, whose collisions
between species need equal particle weights n_a/N_a). The particles of all species are concatenated in list order; the
equation (:class:`landau.species.SpeciesLandauEquation`) sees them all, each oracle sees its own
species only (:class:`SpeciesOracle`). Output (:class:`SpeciesDiagnostics`), with
Theta_a = m_a <(v - u_a)(v - u_a)^T>_a and T_a = tr(Theta_a)/d:

    species_id(particle), species_name/mass/charge/density(species),
    species_mean(time, species, dim) = u_a,  temperature(time, species) = T_a,
    temperature_tensor(time, species, dim, dim2) = Theta_a,
    momentum(time, dim) = sum_a m_a n_a u_a,  energy(time) = sum_a (m_a n_a / 2) <|v|^2>_a,
    entropy_production(time) = sum_a n_a <U . s_a>_a,
    temperature_rate(time, species) = dT_a/dt of the particle system (from U; binary collisions: the
        step's expected rate, ``SpeciesBinaryCollisions.expected_temperature_rate``, and no entropy_production),
    temperature_rate_maxwellian(time, species): dT_a/dt if every species were the Maxwellian with
        its current mean and temperature (NRL/Spitzer for Coulomb; exact at t0 for Maxwellian data),
    gamma = 0: species_mean_exact, temperature_exact, temperature_tensor_exact (closed moment law
        started from the particles' own initial moments).
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from landau.species import (Species, SpeciesLandauEquation, energy, entropy_production, moment_rates, momentum,
                            species_id, species_mean, temperature_tensor)
from landau.binary_collisions import SpeciesBinaryCollisions
from landau.species_laws import MaxwellSpeciesLaw, maxwellian_exchange_rates
from oracles import ScoreOracle, SettingsError, parse_oracle_settings
from oracles.settings import parse_settings
from solvers.equations import Equation
from solvers.initial import INITIALS, Initial
from solvers.output import LABEL_LENGTH, Variable


@dataclass
class SpeciesSettings:
    name: str
    mass: float
    charge: float
    density: float
    particles: int
    initial: dict
    oracle: dict | str | None = None            # default blob; none for binary collisions


def resolve_species(raw: Any, dim: int, equation: Equation) -> tuple[list[dict], list[Initial]]:
    """Validate the ``species:`` list; return it resolved (plain data, defaults filled in) and the
    species' initial-density entries."""
    if not isinstance(raw, list) or not raw:
        raise SettingsError("species: expected a non-empty list of species")
    if not hasattr(equation, "build_species"):
        raise SettingsError(f"species: equation {equation.name!r} has no multi-species form (landau has)")
    out, initials, names = [], [], set()
    for i, entry in enumerate(raw):
        key = f"species.{i}"
        sp = parse_settings(SpeciesSettings, entry, key)
        if not sp.name.strip() or sp.name in names or len(sp.name.encode()) > LABEL_LENGTH:
            raise SettingsError(f"{key}.name: species names must be non-empty, unique and at most "
                                f"{LABEL_LENGTH} bytes, got {sp.name!r}")
        names.add(sp.name)
        for field, value in (("mass", sp.mass), ("density", sp.density)):
            if value <= 0:
                raise SettingsError(f"{key}.{field}: must be positive, got {value}")
        if sp.particles < 2:
            raise SettingsError(f"{key}.particles: must be >= 2, got {sp.particles}")
        init_cls, init_settings = INITIALS.parse(sp.initial, f"{key}.initial")
        initial = init_cls(init_settings, dim, equation, key=f"{key}.initial")
        initials.append(initial)
        out.append({"name": sp.name, "mass": sp.mass, "charge": sp.charge, "density": sp.density,
                    "particles": sp.particles, "initial": initial.resolved()})
        if equation.uses_score:
            oracle_cls, oracle_settings = parse_oracle_settings(sp.oracle or "blob", f"{key}.oracle")
            out[-1]["oracle"] = {"kind": oracle_cls.name, **dataclasses.asdict(oracle_settings)}
        elif sp.oracle is not None:
            raise SettingsError(f"{key}.oracle: the {equation.name} equation with method: binary uses no score oracle")
    L = equation.settings.coulomb_log
    if L is not None:
        a = np.asarray(L, dtype=float) if _numeric(L) else None
        if a is None or a.shape != (len(out), len(out)) or not np.all(np.isfinite(a)) \
                or not np.allclose(a, a.T) or (a < 0).any():
            raise SettingsError(f"equation.coulomb_log: expected a symmetric non-negative "
                                f"{len(out)} x {len(out)} matrix (one row per species), got {L!r}")
    return out, initials


def _numeric(value: Any) -> bool:
    try:
        np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        return False
    return True


def species_of(case: dict) -> list[Species]:
    return [Species(s["name"], s["particles"], s["mass"], s["charge"], s["density"]) for s in case["species"]]


class SpeciesOracle(ScoreOracle):
    """One score oracle per species, each asked about its own particles only:
    s = concat_a oracle_a.score(x[rows of a], t); ``last_loss`` is the mean of theirs."""

    name = "species"

    def __init__(self, oracles: list[ScoreOracle], slices: list[slice]) -> None:
        super().__init__(None, None)
        self.oracles, self.slices = oracles, slices
        self.name = "+".join(o.name for o in oracles)

    def prepare(self, x0: torch.Tensor, t0: float) -> None:
        for oracle, sl in zip(self.oracles, self.slices):
            oracle.prepare(x0[sl], t0)

    def score(self, x: torch.Tensor, t: float) -> torch.Tensor:
        s = torch.cat([o.score(x[sl], t) for o, sl in zip(self.oracles, self.slices)])
        losses = [o.last_loss for o in self.oracles if not math.isnan(o.last_loss)]
        self.last_loss = sum(losses) / len(losses) if losses else math.nan
        return s

    def stage_score(self, x: torch.Tensor, t: float) -> torch.Tensor:
        return torch.cat([o.stage_score(x[sl], t) for o, sl in zip(self.oracles, self.slices)])

    def state_dict(self) -> dict[str, Any]:
        return {"species": [o.state_dict() for o in self.oracles]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for oracle, saved in zip(self.oracles, state["species"]):
            oracle.load_state_dict(saved)

    def inputs(self) -> dict[str, str]:
        return {f"species.{a}.{key}": v for a, o in enumerate(self.oracles) for key, v in o.inputs().items()}

    def describe(self) -> dict[str, Any]:
        return {"kind": "species", "species": [o.describe() for o in self.oracles]}


class SpeciesDiagnostics:
    """Per-species moments, conserved totals and the exact references (module docstring)."""

    def __init__(self, problem: Any, stored: int) -> None:
        self.problem, self.stored = problem, stored
        self.eq: SpeciesLandauEquation | SpeciesBinaryCollisions = problem.equation
        self.binary = isinstance(self.eq, SpeciesBinaryCollisions)
        self.law: MaxwellSpeciesLaw | None = None
        self.started = False

    def variables(self) -> dict[str, Variable]:
        S, T, D, D2 = "species", "time", "dim", "dim2"
        out = {"species_id": Variable(("particle",), "species index of each stored particle", fmt="i4"),
               "species_name": Variable((S,), "species name", units=None, fmt="S1"),
               "mass": Variable((S,), "species mass m_a"),
               "charge": Variable((S,), "species charge e_a"),
               "density": Variable((S,), "species number density n_a"),
               "species_mean": Variable((T, S, D), "species mean velocity u_a = <v>_a"),
               "temperature": Variable((T, S), "species temperature T_a = (m_a/d) <|v - u_a|^2>_a"),
               "temperature_tensor": Variable((T, S, D, D2), "temperature tensor m_a <(v - u_a)(v - u_a)^T>_a"),
               "momentum": Variable((T, D), "total momentum sum_a m_a n_a u_a"),
               "energy": Variable((T,), "total energy sum_a (m_a n_a / 2) <|v|^2>_a"),
               "entropy_production": Variable((T,), "estimated entropy production sum_a n_a <U . s_a>_a"),
               "temperature_rate": Variable((T, S), "dT_a/dt of the particle system, (2 m_a/d) <(v - u_a) . U>_a" +
                                            (" (binary collisions: the step's expected rate)" if self.binary else "")),
               "temperature_rate_maxwellian": Variable(
                   (T, S), "dT_a/dt if each species were the Maxwellian of its current mean and temperature "
                           "(Coulomb, d = 3: the NRL/Spitzer equilibration rate)"),
               "oracle_loss": Variable((T,), "mean training loss of the species' score oracles (NaN if none)")}
        if self.binary:
            del out["entropy_production"]
        if self.eq.gamma == 0:
            out["species_mean_exact"] = Variable((T, S, D), "exact mean velocities (Maxwell molecules)")
            out["temperature_exact"] = Variable((T, S), "exact temperatures (Maxwell molecules)")
            out["temperature_tensor_exact"] = Variable((T, S, D, D2), "exact temperature tensors (Maxwell molecules)")
        return out

    def __call__(self, state: Any) -> dict[str, Any]:
        sp, x, u, d = self.eq.species, state.x, state.u, state.x.shape[1]
        theta = temperature_tensor(x, sp)
        mean, temp = species_mean(x, sp), torch.diagonal(theta, dim1=-2, dim2=-1).sum(-1) / d
        frame: dict[str, Any] = {"species_mean": mean, "temperature": temp, "temperature_tensor": theta,
                                 "momentum": momentum(x, sp), "energy": energy(x, sp), "oracle_loss": state.oracle.last_loss}
        if self.binary:
            frame["temperature_rate"] = self.eq.expected_temperature_rate(x, self.problem.dt)
        else:
            _, dtheta = moment_rates(x, u, sp)
            frame["entropy_production"] = entropy_production(u, state.s, sp)
            frame["temperature_rate"] = torch.diagonal(dtheta, dim1=-2, dim2=-1).sum(-1) / d
        frame["temperature_rate_maxwellian"] = (maxwellian_exchange_rates(mean, temp, sp, self.eq.c, self.eq.gamma)[1]
                                                if d + self.eq.gamma + 1 > 0 else torch.full_like(temp, math.nan))
        if not self.started:
            self.started = True
            frame.update(species_id=species_id(sp)[:self.stored], species_name=np.array([s.name for s in sp]),
                         mass=[s.mass for s in sp], charge=[s.charge for s in sp], density=[s.density for s in sp])
            if self.eq.gamma == 0:
                self.law = MaxwellSpeciesLaw.from_particles(x, self.eq, state.t)
        if self.law is not None:
            th = self.law.temperature_tensor(state.t)
            frame.update(species_mean_exact=self.law.mean(state.t), temperature_tensor_exact=th,
                         temperature_exact=torch.diagonal(th, dim1=-2, dim2=-1).sum(-1) / d)
        return frame

    def state_dict(self) -> dict[str, Any]:
        law = self.law
        return {"started": self.started, "law": None if law is None else
                {"mean0": law.mean0, "theta0": law.theta0, "t0": law.t0}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.started = state["started"]
        saved = state["law"]
        self.law = None if saved is None else MaxwellSpeciesLaw(self.eq.species, self.eq.c, saved["mean0"],
                                                                saved["theta0"], saved["t0"])
