"""The score-oracle protocol.

An oracle answers one question: given the particles X (n, d) at time t, what is the score
s_p ~ grad log f(X_p) of the distribution they sample?  It knows nothing about case files,
integrators or output files, so it can be used on its own:

    oracle = BlobOracle()
    oracle.prepare(x0, t0)
    s = oracle.score(x, t)

The protocol (in the spirit of scikit-learn's estimator protocol):

* ``prepare(x0, t0)`` -- once before a run (bandwidth rules, initial fits, loading weights);
* ``score(x, t) -> s`` -- the score at the particles X_k at the start of a step; stateful
  oracles may train here;
* ``score_groups(x, group, groups, t) -> s`` -- optional: many independent samples at once
  (velocities per cell of a phase-space run), for oracles that batch them (``batches_groups``),
  after ``prepare_groups(x0, group, groups, t0)``;
* ``in_phase_space(length) -> oracle`` -- optional: the oracle's phase-space form, which takes
  z = (x, v) (n, 1 + d) and returns velocity scores s_p ~ grad_v log f(x_p, v_p) (one model of
  all cells, e.g. SBTM's network s(x, v)); ``PhaseSpaceSettings`` -- optional: the settings
  class whose defaults apply in phase-space cases (``solvers/case.py``);
* ``stage_score(x, t) -> s`` -- the score at an intermediate stage of a multi-stage step
  (Heun, RK4); by default the same as ``score``, learning oracles may reuse their fit instead;
* ``log_density(x, t) -> log f`` -- optional, for oracles that have a density. Frame diagnostics
  call it (and read ``last_loss``), so it must observe without touching: no draw from the run's
  generator, no training, no change of the oracle's state (``tests/test_observers.py``);
* ``state_dict()`` / ``load_state_dict(state)`` -- whatever is needed to resume a run exactly;
* ``last_loss`` -- the training loss of the last ``score`` call (NaN for non-learning oracles);
* ``settings`` -- the typed settings the oracle was built with (written into output files);
* ``inputs()`` -- digests of the files the settings load (weights), so that a run is identified
  by what it loads and not only by a path (output attributes, ``solvers.study``'s run keys).
"""
from __future__ import annotations

import dataclasses
import math
from typing import Any, ClassVar

import torch


class ScoreOracle:
    """Base class of all score oracles; subclasses implement :meth:`score`."""

    name: ClassVar[str] = "base"
    #: the oracle may be applied to each cell of a phase-space run (one instance per cell, or
    #: batched by ``score_groups``); False where that is not built yet
    per_cell: ClassVar[bool] = True

    def __init__(self, settings: Any = None, context: Any = None) -> None:
        self.settings = settings
        self.context = context  # an oracles.registry.OracleContext, or None when used standalone
        self.last_loss: float = math.nan

    def prepare(self, x0: torch.Tensor, t0: float) -> None:
        """Called once with the initial particles before the first :meth:`score`."""

    def score(self, x: torch.Tensor, t: float) -> torch.Tensor:
        """Return s (n, d) with s_p ~ grad log f(X_p) at time t."""
        raise NotImplementedError

    def stage_score(self, x: torch.Tensor, t: float) -> torch.Tensor:
        """Score at an intermediate stage of a step (default: :meth:`score`)."""
        return self.score(x, t)

    def score_groups(self, x: torch.Tensor, group: torch.Tensor, groups: int, t: float) -> torch.Tensor | None:
        """Scores of ``groups`` independent samples in one call (particle p belongs to sample
        ``group[p]``; phase space: the velocities of each cell), for oracles that can batch them;
        None where the oracle cannot (the caller then scores each group with its own oracle)."""
        return None

    @property
    def batches_groups(self) -> bool:
        """Whether :meth:`score_groups` scores groups (else it returns None)."""
        return type(self).score_groups is not ScoreOracle.score_groups

    def prepare_groups(self, x0: torch.Tensor, group: torch.Tensor, groups: int, t0: float) -> None:
        """Called once with the initial particles and their groups before the first
        :meth:`score_groups` (per-group bandwidths; default: nothing)."""

    def log_density(self, x: torch.Tensor, t: float) -> torch.Tensor:
        """Return log f at the points x (n,), where the oracle has a density."""
        raise NotImplementedError(f"oracle {self.name!r} has no log-density")

    @classmethod
    def memory_per_particle(cls, itemsize: int) -> int:
        """Bytes per particle of the oracle's own buffers (activations, gradients) in a run whose
        values take ``itemsize`` bytes; the resource guard (``solvers/resources.py``) adds the
        largest among a run's oracles to its estimate. 0: nothing beyond a few (n, d) arrays."""
        return 0

    @property
    def has_log_density(self) -> bool:
        return type(self).log_density is not ScoreOracle.log_density

    def state_dict(self) -> dict[str, Any]:
        """State needed to resume a run bit for bit (empty for stateless oracles)."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned."""

    def inputs(self) -> dict[str, str]:
        """SHA-256 digests of the files the settings load, by setting (none by default)."""
        return {}

    def describe(self) -> dict[str, Any]:
        """Name, settings and input digests as plain values, for output-file attributes."""
        out: dict[str, Any] = {"kind": self.name}
        if dataclasses.is_dataclass(self.settings):
            out.update(dataclasses.asdict(self.settings))
        return {**out, **{f"{key}_sha256": digest for key, digest in self.inputs().items()}}
