"""Case files: load (a path, YAML text or a mapping), apply overrides, validate -> the resolved case.

Every section is a typed dataclass (``oracles.settings.parse_settings`` rejects unknown keys and
wrong types). The equation and the initial density are looked up in their registries
(``solvers.equations``, ``solvers.initial``), whose entries check their own settings. The resolved
case (plain data, every default filled in) is what output files store and ``--print-case``
prints; :func:`solvers.problem.build_problem` turns it into objects.
"""
from __future__ import annotations

import copy
import dataclasses
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from oracles import SettingsError, parse_oracle_settings
from oracles.settings import parse_settings
from solvers.equations import EQUATIONS
from solvers.initial import INITIALS
from solvers.species import resolve_species


class CaseLoader(yaml.SafeLoader):
    """YAML 1.1 loader that also reads ``1e-3`` (exponent without a dot) as a number."""


CaseLoader.add_implicit_resolver("tag:yaml.org,2002:float",
                                 re.compile(r"^[-+]?[0-9][0-9_]*(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
                                 list("-+0123456789"))


def load_yaml(text: str) -> Any:
    return yaml.load(text, Loader=CaseLoader)


#: largest dimension accepted (d x d matrices are built densely)
MAX_DIM = 1024
#: key order of a resolved case (single-species cases have particles/initial/oracle, others species)
RESOLVED_ORDER = ("name", "dim", "space", "particles", "seed", "dtype", "device", "equation", "initial", "time",
                  "oracle", "species", "output")


# ----------------------------------------------------------------------------- settings classes
@dataclass
class CaseSettings:
    name: str
    dim: int
    equation: dict
    time: dict
    particles: int | None = None          # single species; with species: per species
    initial: dict | None = None
    oracle: dict | str | None = None
    species: list | None = None           # multi-species cases (solvers.species)
    space: dict | None = None             # phase-space equations: the periodic box
    seed: int = 0
    dtype: Literal["auto", "float32", "float64"] = "auto"
    device: Literal["auto", "cpu", "cuda"] = "auto"
    output: dict = field(default_factory=dict)


@dataclass
class TimeSettings:
    end: float
    dt: float
    start: float | None = None
    integrator: Literal["euler", "heun", "rk4", "leapfrog"] | None = None   # None: the equation's first


@dataclass
class SpaceSettings:
    """Phase-space equations: the periodic box [0, length) on ``cells`` grid cells and the particle
    shape of deposit and gather (``cic`` or ``quadratic``)."""

    length: float
    cells: int
    shape: Literal["cic", "quadratic"] = "cic"


@dataclass
class OutputSettings:
    path: str | None = None
    every: int = 10
    checkpoint_every: int | None = None         # steps
    checkpoint_every_time: float | None = None  # simulated time
    particles: int | Literal["all", "none"] = "all"   # how many particles' x and score to store


# ----------------------------------------------------------------------------- resolve
def resolve_case(raw: Any) -> dict:
    """Validate a raw case mapping; return it with every default filled in (plain data)."""
    if not isinstance(raw, dict):
        raise SettingsError(f"case: expected a mapping at the top level, got {type(raw).__name__}")
    case = parse_settings(CaseSettings, raw, "case")
    if not 1 <= case.dim <= MAX_DIM:
        raise SettingsError(f"dim: must be between 1 and {MAX_DIM}, got {case.dim}")
    if not 0 <= case.seed < 2**63:
        raise SettingsError(f"seed: must be in [0, 2^63), got {case.seed}")
    d = case.dim
    space = parse_settings(SpaceSettings, case.space, "space") if case.space is not None else None
    eq_cls, eq_settings = EQUATIONS.parse(case.equation, "equation")
    equation = eq_cls(eq_settings, d, space)
    time = parse_settings(TimeSettings, case.time, "time")
    if time.integrator is None:
        time.integrator = equation.integrators[0]
    if case.oracle is not None and not equation.uses_score:
        raise SettingsError(f"oracle: the {equation.name} equation uses no score oracle")

    if case.species is not None:
        for key in ("particles", "initial", "oracle"):
            if getattr(case, key) is not None:
                raise SettingsError(f"{key}: a case with species: gives it per species (species.<i>.{key})")
        species, initials = resolve_species(case.species, d, equation)
        if time.start is None:
            time.start = max(init.default_start() for init in initials)
        for init in initials:
            init.check_start(time.start)
        n_total = sum(s["particles"] for s in species)
        body: dict[str, Any] = {"species": species}
    else:
        if case.particles is None:
            raise SettingsError("particles: required setting is missing")
        if case.initial is None:
            raise SettingsError("initial: required setting is missing")
        if case.particles < 2:
            raise SettingsError(f"particles: must be >= 2, got {case.particles}")
        if getattr(equation.settings, "coulomb_log", None) is not None:
            raise SettingsError("equation.coulomb_log: only for cases with species:")
        init_cls, init_settings = INITIALS.parse(case.initial, "initial")
        initial = init_cls(init_settings, d, equation)
        if time.start is None:
            time.start = initial.default_start()
        initial.check_start(time.start)
        n_total = case.particles
        body = {"particles": n_total, "initial": initial.resolved()}
        if equation.uses_score:
            oracle_cls, oracle_settings = parse_oracle_settings(case.oracle or "blob", "oracle")
            if equation.phase_space and not oracle_cls.per_cell:
                raise SettingsError(f"oracle: {oracle_cls.name} is not available per cell in phase space yet")
            if equation.phase_space and hasattr(oracle_cls, "PhaseSpaceSettings"):   # its defaults in phase space
                spec = case.oracle if isinstance(case.oracle, dict) else {}
                oracle_settings = parse_settings(oracle_cls.PhaseSpaceSettings,
                                                 {k: v for k, v in spec.items() if k != "kind"}, "oracle")
            body["oracle"] = {"kind": oracle_cls.name, **dataclasses.asdict(oracle_settings)}

    if time.dt <= 0:
        raise SettingsError(f"time.dt: must be positive, got {time.dt}")
    equation.check_time(time)
    if time.end <= time.start:
        raise SettingsError(f"time.end: must be greater than time.start = {time.start}, got {time.end}")
    steps = (time.end - time.start) / time.dt
    if abs(steps - round(steps)) > 1e-6 * max(1.0, steps):
        raise SettingsError(f"time.dt: {time.dt} does not divide end - start = {time.end - time.start}")

    out = parse_settings(OutputSettings, case.output, "output")
    if out.every < 1:
        raise SettingsError(f"output.every: must be >= 1, got {out.every}")
    if out.checkpoint_every is not None and out.checkpoint_every < 1:
        raise SettingsError(f"output.checkpoint_every: must be >= 1 step, got {out.checkpoint_every}")
    if out.checkpoint_every_time is not None:
        if out.checkpoint_every is not None:
            raise SettingsError("output.checkpoint_every_time: give checkpoint_every (steps) or "
                                "checkpoint_every_time (simulated time), not both")
        if out.checkpoint_every_time < time.dt:
            raise SettingsError(f"output.checkpoint_every_time: must be >= time.dt = {time.dt}")
        out.checkpoint_every = round(out.checkpoint_every_time / time.dt)
    if isinstance(out.particles, int) and not 0 <= out.particles <= n_total:
        raise SettingsError(f"output.particles: expected all, none or a count in [0, {n_total}], "
                            f"got {out.particles}")
    if out.path is None:
        out.path = f"out/{case.name}.nc"

    values = {"name": case.name, "dim": d, "seed": case.seed,
              **({"space": dataclasses.asdict(space)} if space is not None else {}), "dtype": case.dtype, "device": case.device,
              "equation": equation.resolved(), "time": dataclasses.asdict(time), "output": dataclasses.asdict(out),
              **body}
    return {key: values[key] for key in RESOLVED_ORDER if key in values}


def apply_override(raw: dict, assignment: str) -> None:
    """Apply ``key.path=value`` (value parsed as YAML) to the raw case in place."""
    key, sep, text = assignment.partition("=")
    if not sep or not key:
        raise SettingsError(f"--set: expected key.path=value, got {assignment!r}")
    try:
        value = load_yaml(text) if text else None
    except yaml.YAMLError as exc:
        raise SettingsError(f"--set {key}: value is not valid YAML ({exc.__class__.__name__})") from None
    node: Any = raw
    parts = key.split(".")
    for i, part in enumerate(parts):
        where = ".".join(parts[:i + 1])
        if isinstance(node, list):                    # species.0.mass: list items by index
            if not (part.isdigit() and int(part) < len(node)):
                raise SettingsError(f"--set {key}: {where}: no item {part} in a list of {len(node)}")
            part = int(part)
        elif not isinstance(node, dict):
            raise SettingsError(f"--set {key}: {'.'.join(parts[:i])} is not a mapping")
        if i == len(parts) - 1:
            node[part] = value
        else:
            if isinstance(node, dict):
                node.setdefault(part, {})
            node = node[part]


def read_raw(source: str | Path | dict) -> dict:
    """The raw case mapping from a file path, YAML text or a mapping (copied, never modified)."""
    if isinstance(source, dict):
        return copy.deepcopy(source)
    text, name = None, str(source)
    if isinstance(source, str) and ("\n" in source or source.lstrip().startswith("{")):
        text, name = source, "case text"
    else:
        path = Path(source)
        try:
            text = path.read_text()
        except FileNotFoundError:
            raise SettingsError(f"case file not found: {path}") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise SettingsError(f"cannot read case file {path}: {exc}") from None
    try:
        raw = load_yaml(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise SettingsError(f"{name}: not valid YAML{where}") from None
    if not isinstance(raw, dict):
        raise SettingsError(f"{name}: expected a mapping of case settings at the top level")
    return raw


def parse_oracle_spec(text: str) -> dict:
    """``NAME``, ``NAME:key=value,key=value`` (values parsed as YAML) or a YAML mapping
    ``{kind: NAME, key: value}`` -> ``{kind: NAME, key: value, ...}``."""
    text = text.strip()
    if text.startswith("{"):
        try:
            spec = load_yaml(text)
        except yaml.YAMLError:
            spec = None
        if not isinstance(spec, dict) or "kind" not in spec:
            raise SettingsError(f"--oracle {text}: expected a YAML mapping with a 'kind'")
        return spec
    name, _, rest = text.partition(":")
    spec: dict[str, Any] = {"kind": name.strip()}
    depth, items = 0, [""]
    for ch in rest:                       # split at commas outside brackets
        depth += (ch in "[{") - (ch in "]}")
        if ch == "," and depth == 0:
            items.append("")
        else:
            items[-1] += ch
    for assignment in filter(str.strip, items):
        key, sep, value = assignment.partition("=")
        if not sep or not key.strip():
            raise SettingsError(f"--oracle {text}: expected NAME:key=value,key=value, got {assignment!r}")
        try:
            spec[key.strip()] = load_yaml(value) if value else None
        except yaml.YAMLError:
            raise SettingsError(f"--oracle {text}: value of {key.strip()} is not valid YAML") from None
    return spec


def with_oracle(raw: dict, oracle: str | dict) -> dict:
    """The raw case with its oracle replaced by ``oracle`` (a spec string or mapping). The case's
    own settings are kept when it already uses an oracle of that kind; the spec's settings win."""
    if "species" in raw:
        raise SettingsError("--oracle: a case with species: sets one oracle per species "
                            "(--set species.0.oracle=NAME)")
    spec = parse_oracle_spec(oracle) if isinstance(oracle, str) else dict(oracle)
    current = raw.get("oracle", {"kind": "blob"})
    current = {"kind": current} if isinstance(current, str) else current
    base = dict(current) if isinstance(current, dict) and current.get("kind") == spec.get("kind") else {}
    return {**raw, "oracle": {**base, **spec}}


def read_case(source: str | Path | dict, overrides: list[str] = (), oracle: str | dict | None = None) -> dict:
    """Load a case (path, YAML text or mapping), replace its oracle, apply ``key=value``
    overrides (after the oracle, so ``--set oracle.eps=0.1`` edits the chosen oracle), validate;
    return the resolved case."""
    raw = read_raw(source)
    if oracle is not None:
        raw = with_oracle(raw, oracle)
    for assignment in overrides:
        apply_override(raw, assignment)
    return resolve_case(raw)
