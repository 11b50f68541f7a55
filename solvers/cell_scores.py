"""Velocity scores per cell: any ScoreOracle applied to the velocities of each cell of a
phase-space run, s_p ~ grad_v log f(x_p, v_p), the local velocity distribution at x_p.

Oracles stay velocity-only and know nothing of cells; this wrapper groups the particles by cell
(``landau.cell_collisions.cell_index``) and

* hands the phase-space points z = (x, v) (n, 1 + d) to one oracle for all cells where the oracle
  has a phase-space form: a method ``in_phase_space(length) -> ScoreOracle`` whose result takes z
  and returns the velocity scores (n, d) (``sbtm``: one network s(x, v) with periodic features
  of x, ``oracles/sbtm_phase_space.py``);
* calls ``score_groups`` once for all cells where the oracle batches them (``gaussian``: the
  local Maxwellians, one batched Cholesky; ``discoformer``: batched passes of the transformer,
  one sample per cell);
* otherwise scores each cell with its own instance of the oracle, prepared on that cell's initial
  velocities (blob and KDE bandwidths, expfam fits per cell). A cell with fewer than
  2 (d + 1) particles (:meth:`CellScores.min_particles`) at the start is prepared on all initial velocities
  instead (a warning says how many); a cell with fewer than 2 particles at a step gets a zero
  score (it has no pair to collide with).

Cells with few particles, by oracle (each warns when it happens, except sbtm, which needs nothing):

* ``gaussian``: a cell of at most d particles has no covariance; it uses the covariance of all
  particles about its own mean;
* ``discoformer``: a cell below the smallest sample the weights were trained on (512 in d = 2) is
  scored with its neighbouring cells as the sample (c - r .. c + r, the smallest r that reaches
  it), read at its own particles;
* ``sbtm``: one network of (x, v) fitted to all particles, smooth in x (a few Fourier modes): a
  cell with few particles, or none, is scored like any other; no minimum, no warning;
* one instance per cell (expfam, and any oracle without ``score_groups``): the rule above
  (prepared on all initial velocities below 2 (d + 1) particles; zero score below 2).
"""
from __future__ import annotations

import math
import warnings
from typing import Any, Callable

import torch

from landau.cell_collisions import cell_index
from oracles import ScoreOracle


class CellScores(ScoreOracle):
    name = "cells"

    def __init__(self, build: Callable[[], ScoreOracle], length: float, cells: int) -> None:
        super().__init__()
        self.build, self.length, self.cells = build, length, cells
        self.proto = build()
        self.name = self.proto.name
        self.instances: list[ScoreOracle] | None = None     # None: batched by score_groups
        in_phase_space = getattr(self.proto, "in_phase_space", None)
        self.joint: ScoreOracle | None = in_phase_space(length) if in_phase_space else None   # of z = (x, v)

    def min_particles(self, d: int) -> int:
        return 2 * (d + 1)

    def _groups(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return cell_index(z[:, 0], self.length, self.cells), z[:, 1:]

    def prepare(self, x0: torch.Tensor, t0: float) -> None:
        if self.joint is not None:
            self.joint.prepare(x0, t0)
            return
        cell, v = self._groups(x0)
        self.proto.prepare(v, t0)
        if self.proto.batches_groups:
            self.proto.prepare_groups(v, cell, self.cells, t0)
            return
        self.instances, few = [], 0
        for c in range(self.cells):
            oracle, mine = self.build(), v[cell == c]
            if len(mine) < self.min_particles(v.shape[1]):
                mine, few = v, few + 1
            oracle.prepare(mine, t0)
            self.instances.append(oracle)
        if few:
            warnings.warn(f"{self.name} per cell: {few} of {self.cells} cells hold fewer than "
                          f"{self.min_particles(v.shape[1])} particles at the start and are prepared on all "
                          "initial velocities", RuntimeWarning, stacklevel=2)

    def score(self, x: torch.Tensor, t: float) -> torch.Tensor:
        if self.joint is not None:
            return self.joint.score(x, t)
        cell, v = self._groups(x)
        if self.instances is None:
            return self.proto.score_groups(v, cell, self.cells, t)
        s = torch.zeros_like(v)
        order = torch.argsort(cell, stable=True)
        bounds = torch.cumsum(torch.bincount(cell, minlength=self.cells), 0).tolist()
        lo = 0
        for oracle, hi in zip(self.instances, bounds):
            if hi - lo >= 2:
                idx = order[lo:hi]
                s[idx] = oracle.score(v[idx], t)
            lo = hi
        return s

    @property
    def has_log_density(self) -> bool:
        if self.joint is not None:
            return self.joint.has_log_density
        if self.instances is None:
            return hasattr(self.proto, "log_density_groups")
        return self.proto.has_log_density

    def log_density(self, x: torch.Tensor, t: float) -> torch.Tensor:
        """log f_c(v_p): each particle's velocity log-density in its own cell (the cell's sample
        normalised on its own), for the entropy of the run; observes without touching (the
        oracles keep the value of their last score pass)."""
        if self.joint is not None:
            return self.joint.log_density(x, t)
        cell, v = self._groups(x)
        if self.instances is None:
            return self.proto.log_density_groups(v, cell, self.cells, t)
        out = torch.full_like(v[:, 0], math.nan)
        for c, oracle in enumerate(self.instances):
            mine = cell == c
            if int(mine.sum()) >= 2:
                out[mine] = oracle.log_density(v[mine], t)
        return out

    @property
    def last_loss(self) -> float:
        return math.nan if self.joint is None else self.joint.last_loss

    @last_loss.setter
    def last_loss(self, value: float) -> None:
        pass

    def state_dict(self) -> dict[str, Any]:
        if self.joint is not None:
            return {"joint": self.joint.state_dict()}
        if self.instances is None:
            return {"proto": self.proto.state_dict()}
        return {"cells": [o.state_dict() for o in self.instances]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a resumed run (no ``prepare`` then): the phase-space oracle, the batched
        oracle, or one per cell."""
        if "joint" in state:
            self.joint.load_state_dict(state["joint"])
            return
        if "proto" in state:
            self.proto.load_state_dict(state["proto"])
            return
        self.instances = [self.build() for _ in state["cells"]]
        for oracle, saved in zip(self.instances, state["cells"]):
            oracle.load_state_dict(saved)

    def describe(self) -> dict[str, Any]:
        if self.joint is not None:
            return {**self.joint.describe(), "per_cell": "one oracle of (x, v)"}
        return {**self.proto.describe(), "per_cell": "batched" if self.instances is None else "one oracle per cell"}
