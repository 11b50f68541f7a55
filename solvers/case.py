"""Case files: YAML -> validated, resolved settings (plain data) -> a :class:`Problem` of objects.

Every section is a typed dataclass (``oracles.settings.parse_settings`` rejects unknown keys and
wrong types); shapes, positive-definiteness and ranges are checked here. The resolved case (all
defaults filled in) is what output files store and ``--print-case`` prints.
"""
from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Literal

import numpy as np
import torch
import yaml

from landau import (BKW, DoubleWellDrift, FokkerPlanckEquation, GaussianFPSolution, GaussianMixture,
                    LandauEquation, LinearDrift, equilibrium_covariance, linear_fp_moments,
                    maxwell_covariance)
from oracles import OracleContext, SettingsError, parse_oracle_settings
from oracles.settings import parse_settings


class CaseLoader(yaml.SafeLoader):
    """YAML 1.1 loader that also reads ``1e-3`` (exponent without a dot) as a number."""


CaseLoader.add_implicit_resolver("tag:yaml.org,2002:float",
                                 re.compile(r"^[-+]?[0-9][0-9_]*(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
                                 list("-+0123456789"))


def load_yaml(text: str) -> Any:
    return yaml.load(text, Loader=CaseLoader)


#: largest dimension accepted (d x d matrices are built densely)
MAX_DIM = 1024


# ----------------------------------------------------------------------------- settings classes
@dataclass
class CaseSettings:
    name: str
    dim: int
    particles: int
    equation: dict
    initial: dict
    time: dict
    seed: int = 0
    dtype: Literal["auto", "float32", "float64"] = "auto"
    device: Literal["auto", "cpu", "cuda"] = "auto"
    oracle: dict | str = field(default_factory=lambda: {"kind": "blob"})
    output: dict = field(default_factory=dict)


@dataclass
class LandauSettings:
    kind: Literal["landau"]
    gamma: float = 0.0
    B: float = 1.0 / 24
    delta: float = 0.0                      # |z|^gamma -> (|z|^2 + delta^2)^(gamma/2)
    method: Literal["auto", "moments", "direct"] = "auto"
    tile: int | None = None


@dataclass
class FokkerPlanckSettings:
    kind: Literal["fokker_planck"]
    drift: dict
    diffusion: float | list = 1.0


@dataclass
class LinearDriftSettings:
    kind: Literal["linear"]
    A: float | list
    c: float | list = 0.0


@dataclass
class DoubleWellSettings:
    kind: Literal["double_well"]
    a: float = 1.0


@dataclass
class GaussianSettings:
    kind: Literal["gaussian"]
    mean: float | list = 0.0
    cov: float | list = 1.0


@dataclass
class MixtureSettings:
    kind: Literal["gaussian_mixture"]
    weights: list
    means: list
    covs: list


@dataclass
class BKWSettings:
    kind: Literal["bkw"]
    C: float = 1.0


@dataclass
class TimeSettings:
    end: float
    dt: float
    start: float | None = None
    integrator: Literal["euler", "heun", "rk4"] = "euler"


@dataclass
class OutputSettings:
    path: str | None = None
    every: int = 10
    checkpoint_every: int | None = None         # steps
    checkpoint_every_time: float | None = None  # simulated time


def _kind_of(section: Any, key: str, choices: dict[str, type]) -> type:
    if not isinstance(section, dict) or not isinstance(section.get("kind"), str) or section["kind"] not in choices:
        got = section.get("kind") if isinstance(section, dict) else section
        raise SettingsError(f"{key}.kind: expected one of {', '.join(choices)}, got {got!r}")
    return choices[section["kind"]]


# ----------------------------------------------------------------------------- shape checks
def vector(value: Any, d: int, key: str) -> np.ndarray:
    """A scalar (broadcast) or a length-d list of numbers."""
    try:
        a = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        raise SettingsError(f"{key}: expected a number or a list of {d} numbers, got {value!r}") from None
    if a.ndim == 0:
        a = np.full(d, float(a))
    if a.shape != (d,) or not np.all(np.isfinite(a)):
        raise SettingsError(f"{key}: expected {d} finite numbers, got {value!r}")
    return a


def matrix(value: Any, d: int, key: str, spd: bool) -> np.ndarray:
    """A scalar (times I), a length-d diagonal or a d x d matrix; ``spd`` demands symmetric PD."""
    try:
        a = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        raise SettingsError(f"{key}: expected a number, {d} numbers or a {d}x{d} matrix, got {value!r}") from None
    if a.ndim == 0:
        a = float(a) * np.eye(d)
    elif a.ndim == 1 and a.shape == (d,):
        a = np.diag(a)
    if a.shape != (d, d) or not np.all(np.isfinite(a)):
        raise SettingsError(f"{key}: expected a number, {d} numbers or a {d}x{d} matrix, got {value!r}")
    if spd:
        if not np.allclose(a, a.T, rtol=1e-12, atol=1e-12):
            raise SettingsError(f"{key}: matrix must be symmetric")
        if np.linalg.eigvalsh(a).min() <= 0:
            raise SettingsError(f"{key}: matrix must be positive definite (eigenvalues {np.linalg.eigvalsh(a).round(6).tolist()})")
    return a


# ----------------------------------------------------------------------------- resolve
def resolve_case(raw: Any) -> dict:
    """Validate a raw case mapping; return it with every default filled in (plain data)."""
    if not isinstance(raw, dict):
        raise SettingsError(f"case: expected a mapping at the top level, got {type(raw).__name__}")
    case = parse_settings(CaseSettings, raw, "case")
    if not 1 <= case.dim <= MAX_DIM:
        raise SettingsError(f"dim: must be between 1 and {MAX_DIM}, got {case.dim}")
    if case.particles < 2:
        raise SettingsError(f"particles: must be >= 2, got {case.particles}")
    if not 0 <= case.seed < 2**63:
        raise SettingsError(f"seed: must be in [0, 2^63), got {case.seed}")
    d = case.dim

    eq_cls = _kind_of(case.equation, "equation", {"landau": LandauSettings, "fokker_planck": FokkerPlanckSettings})
    eq = parse_settings(eq_cls, case.equation, "equation")
    if isinstance(eq, LandauSettings):
        if d < 2:
            raise SettingsError(f"dim: the Landau equation needs dim >= 2, got {d}")
        if eq.B <= 0:
            raise SettingsError(f"equation.B: must be positive, got {eq.B}")
        if eq.delta < 0:
            raise SettingsError(f"equation.delta: must be >= 0, got {eq.delta}")
        if eq.method == "moments" and eq.gamma != 0:
            raise SettingsError("equation.method: 'moments' exists for gamma = 0 only")
        if eq.tile is not None and eq.tile < 1:
            raise SettingsError(f"equation.tile: must be >= 1, got {eq.tile}")
        equation = dataclasses.asdict(eq)
    else:
        dr_cls = _kind_of(eq.drift, "equation.drift", {"linear": LinearDriftSettings, "double_well": DoubleWellSettings})
        drift = parse_settings(dr_cls, eq.drift, "equation.drift")
        if isinstance(drift, LinearDriftSettings):
            drift.A = matrix(drift.A, d, "equation.drift.A", spd=False).tolist()
            drift.c = vector(drift.c, d, "equation.drift.c").tolist()
        D = matrix(eq.diffusion, d, "equation.diffusion", spd=True)
        diffusion = float(D[0, 0]) if np.allclose(D, D[0, 0] * np.eye(d)) else D.tolist()
        equation = {"kind": eq.kind, "drift": dataclasses.asdict(drift), "diffusion": diffusion}

    init_cls = _kind_of(case.initial, "initial", {"gaussian": GaussianSettings,
                                                 "gaussian_mixture": MixtureSettings, "bkw": BKWSettings})
    init = parse_settings(init_cls, case.initial, "initial")
    if isinstance(init, GaussianSettings):
        init.mean = vector(init.mean, d, "initial.mean").tolist()
        init.cov = matrix(init.cov, d, "initial.cov", spd=True).tolist()
    elif isinstance(init, MixtureSettings):
        k = len(init.weights)
        w = vector(init.weights, k, "initial.weights") if k else np.zeros(0)
        if k == 0 or (w <= 0).any():
            raise SettingsError("initial.weights: expected a non-empty list of positive numbers")
        if len(init.means) != k or len(init.covs) != k:
            raise SettingsError(f"initial: weights, means and covs must have the same length ({k})")
        init.weights = (w / w.sum()).tolist()
        init.means = [vector(m, d, f"initial.means[{i}]").tolist() for i, m in enumerate(init.means)]
        init.covs = [matrix(c, d, f"initial.covs[{i}]", spd=True).tolist() for i, c in enumerate(init.covs)]
    else:
        if not (isinstance(eq, LandauSettings) and eq.gamma == 0):
            raise SettingsError("initial.kind: 'bkw' is an exact solution of the Landau equation with gamma = 0 only")
        if not 0 < init.C <= 1:
            raise SettingsError(f"initial.C: must be in (0, 1], got {init.C}")

    time = parse_settings(TimeSettings, case.time, "time")
    if time.start is None:
        time.start = BKW(d, eq.B, init.C).t0() if isinstance(init, BKWSettings) else 0.0
    if isinstance(init, BKWSettings):
        P, _ = BKW(d, eq.B, init.C).PQ(time.start)
        if P < 0:
            raise SettingsError(f"time.start: BKW is not a density before t0 = {BKW(d, eq.B, init.C).t0()}")
    if time.dt <= 0:
        raise SettingsError(f"time.dt: must be positive, got {time.dt}")
    if time.end <= time.start:
        raise SettingsError(f"time.end: must be greater than time.start = {time.start}, got {time.end}")
    steps = (time.end - time.start) / time.dt
    if abs(steps - round(steps)) > 1e-6 * max(1.0, steps):
        raise SettingsError(f"time.dt: {time.dt} does not divide end - start = {time.end - time.start}")

    oracle_cls, oracle_settings = parse_oracle_settings(case.oracle, "oracle")
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
    if out.path is None:
        out.path = f"out/{case.name}.nc"

    return {"name": case.name, "dim": d, "particles": case.particles, "seed": case.seed,
            "dtype": case.dtype, "device": case.device, "equation": equation,
            "initial": dataclasses.asdict(init), "time": dataclasses.asdict(time),
            "oracle": {"kind": oracle_cls.name, **dataclasses.asdict(oracle_settings)},
            "output": dataclasses.asdict(out)}


def apply_override(raw: dict, assignment: str) -> None:
    """Apply ``key.path=value`` (value parsed as YAML) to the raw case in place."""
    key, sep, text = assignment.partition("=")
    if not sep or not key:
        raise SettingsError(f"--set: expected key.path=value, got {assignment!r}")
    try:
        value = load_yaml(text) if text else None
    except yaml.YAMLError as exc:
        raise SettingsError(f"--set {key}: value is not valid YAML ({exc.__class__.__name__})") from None
    node = raw
    parts = key.split(".")
    for i, part in enumerate(parts[:-1]):
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise SettingsError(f"--set {key}: {'.'.join(parts[:i + 1])} is not a mapping")
    node[parts[-1]] = value


def read_case(path: str | Path, overrides: list[str] = ()) -> dict:
    """Read a YAML case file, apply overrides, validate; return the resolved case."""
    path = Path(path)
    try:
        raw = load_yaml(path.read_text())
    except FileNotFoundError:
        raise SettingsError(f"case file not found: {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SettingsError(f"cannot read case file {path}: {exc}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise SettingsError(f"{path}: not valid YAML{where}") from None
    if not isinstance(raw, dict):
        raise SettingsError(f"{path}: expected a mapping of case settings at the top level")
    for assignment in overrides:
        apply_override(raw, assignment)
    return resolve_case(raw)


# ----------------------------------------------------------------------------- build
@dataclass
class Problem:
    """A resolved case turned into objects: what the run loop needs."""

    case: dict
    dim: int
    n: int
    dtype: torch.dtype
    device: torch.device
    generator: torch.Generator
    equation: LandauEquation | FokkerPlanckEquation
    sample_initial: Callable[[], torch.Tensor]
    initial_density: Any
    exact: Any
    t0: float
    t1: float
    dt: float
    steps: int
    covariance_law: Callable[[torch.Tensor, torch.Tensor, float], torch.Tensor] | None
    is_landau: bool

    def oracle_context(self) -> OracleContext:
        return OracleContext(dim=self.dim, device=self.device, dtype=self.dtype, generator=self.generator,
                             exact=self.exact, initial=self.initial_density)


def select_device(name: str) -> torch.device:
    if name == "cuda" and not torch.cuda.is_available():
        raise SettingsError("device: cuda requested but CUDA is not available on this machine")
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(name)


def build_problem(case: dict) -> Problem:
    d = case["dim"]
    device = select_device(case["device"])
    dtype = {"float32": torch.float32, "float64": torch.float64,
             "auto": torch.float64 if device.type == "cpu" else torch.float32}[case["dtype"]]
    tensor = lambda a: torch.as_tensor(np.asarray(a, dtype=float), dtype=dtype, device=device)  # noqa: E731
    gen = torch.Generator(device="cpu").manual_seed(case["seed"])
    eq, ini, tm = case["equation"], case["initial"], case["time"]
    t0, t1, dt = tm["start"], tm["end"], tm["dt"]

    if eq["kind"] == "landau":
        equation = LandauEquation(eq["gamma"], eq["B"], eq["delta"], eq["method"], eq["tile"])
        law = ((lambda m0, c0, t: maxwell_covariance(c0, t, t0, eq["B"])) if eq["gamma"] == 0 else None)
    else:
        dr = eq["drift"]
        drift = (LinearDrift(tensor(dr["A"]), tensor(dr["c"])) if dr["kind"] == "linear"
                 else DoubleWellDrift(dr["a"]))
        D = eq["diffusion"]
        equation = FokkerPlanckEquation(drift, tensor(D) if isinstance(D, list) else D)
        law = None
        if dr["kind"] == "linear":
            Dm = np.asarray(D) if isinstance(D, list) else D * np.eye(d)
            A, c = np.asarray(dr["A"]), np.asarray(dr["c"])
            law = lambda m0, c0, t: tensor(linear_fp_moments(  # noqa: E731
                A, c, Dm, m0.cpu().double().numpy(), c0.cpu().double().numpy(), t - t0)[1])

    exact = None
    if ini["kind"] == "bkw":
        density = BKW(d, eq["B"], ini["C"])
        exact = density
        sample = lambda: density.sample(case["particles"], t0, gen, dtype, device)  # noqa: E731
    else:
        if ini["kind"] == "gaussian":
            density = GaussianMixture(tensor([1.0]), tensor([ini["mean"]]), tensor([ini["cov"]]))
        else:
            density = GaussianMixture(tensor(ini["weights"]), tensor(ini["means"]), tensor(ini["covs"]))
        sample = lambda: density.sample(case["particles"], gen).to(device)  # noqa: E731
        if eq["kind"] == "fokker_planck" and eq["drift"]["kind"] == "linear" and ini["kind"] == "gaussian":
            Dm = tensor(eq["diffusion"]) if isinstance(eq["diffusion"], list) else eq["diffusion"] * torch.eye(d, dtype=dtype, device=device)
            exact = GaussianFPSolution(tensor(eq["drift"]["A"]), tensor(eq["drift"]["c"]), Dm,
                                       density.means[0], density.covs[0], t0)

    return Problem(case=case, dim=d, n=case["particles"], dtype=dtype, device=device, generator=gen,
                   equation=equation, sample_initial=sample, initial_density=density, exact=exact,
                   t0=t0, t1=t1, dt=dt, steps=round((t1 - t0) / dt), covariance_law=law,
                   is_landau=eq["kind"] == "landau")
