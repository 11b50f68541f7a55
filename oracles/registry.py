"""Name -> oracle class registry, used by case files and ``--oracle NAME``.

Each oracle class carries a ``Settings`` dataclass; :func:`build_oracle` validates a case-file
mapping ``{kind: NAME, ...}`` against it and constructs the oracle with an :class:`OracleContext`
(what the oracle may know about the problem: dimension, device, dtype, a seeded generator and,
where the case has them, the exact solution and the initial density).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Protocol

import torch

from oracles.base import ScoreOracle
from oracles.settings import Registry


class TimeDensity(Protocol):
    """A density known in closed form at every time (BKW, Gaussian FP)."""

    def score(self, x: torch.Tensor, t: float) -> torch.Tensor: ...

    def log_density(self, x: torch.Tensor, t: float) -> torch.Tensor: ...


@dataclass
class OracleContext:
    dim: int
    device: torch.device = torch.device("cpu")
    dtype: torch.dtype = torch.float64
    generator: torch.Generator | None = None
    exact: TimeDensity | None = None      # analytic solution f(t, x), where the case has one
    initial: TimeDensity | None = None    # analytic initial density f(t0, x), where known


#: the oracles that ship with the package, by name -> the module that registers it; a module is
#: imported when its name is first looked up, so importing this registry imports no oracle
BUILTIN = {name: f"oracles.{name}" for name in ("blob", "discoformer", "exact", "expfam", "gaussian", "kde", "sbtm")}
ORACLES = Registry("oracle", builtin=BUILTIN)
register = ORACLES.register
available = ORACLES.available


def parse_oracle_settings(spec: Any, key: str = "oracle") -> tuple[type[ScoreOracle], Any]:
    """Validate ``{kind: NAME, **settings}``; return the class and its typed settings."""
    return ORACLES.parse(spec, key)


def build_oracle(spec: Any, context: OracleContext, key: str = "oracle") -> ScoreOracle:
    cls, settings = parse_oracle_settings(spec, key)
    factory: Callable[..., ScoreOracle] = cls
    return factory(settings, context)
