"""The diagnostics written with every output frame of a phase-space (particle-in-cell) run.

With N particles of weight w = L / N at (x_p, v_p), E_j the field at the cell centres x_j:

    field_energy      W = (1/2) int E^2 dx = (dx/2) sum_j E_j^2
    kinetic_energy    K = (w/2) sum_p |v_p|^2,      total_energy = K + W
    momentum          P = w sum_p v_p
    efield, charge_density (1 - n_e) on the grid; efield_mode: |E_hat_m| for the first modes,
    normalised so that E = A cos(k_m x + phase) gives A
    cell_mean_velocity, cell_temperature: the mean and (1/d) mean |v - u_c|^2 of the particles
    whose position lies in cell c (NaN for an empty cell)
    cell_anisotropy: T_1 / T_perp - 1 in each cell, T_1 the variance of v_1 (the field direction)
    and T_perp the mean variance of the other components (d >= 2)
    entropy_production (collisional runs): w sum_p U_p . s_p of the collision operator with the
    scores of the state (<= 0), the operator evaluated again from the state (no oracle call).
    entropy (collisional runs with an oracle that has a log-density): -(1/N) sum_p log f(x_p, v_p),
    f(x, v) = (rho_c / L) f_c(v) with f_c the oracle's velocity density of the particle's cell
    (``CellScores.log_density``); NaN for the other oracles.
    score_error (collisional runs): sum_p |s_p - s*_p|^2 / sum_p |s*_p|^2 against the initial
    density's velocity score s* = grad_v log f0(x_p, v_p) (the local Maxwellian, or Maxwellian
    mixture, of the initial data) at the first frame; NaN at the others.

Everything is computed from the particles alone (the field is solved again from the positions):
no random number, no oracle, so the output cadence never changes the run.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from landau.cell_collisions import cell_index
from landau.metrics import score_error
from solvers.output import Variable
from solvers.problem import Problem

#: Fourier modes of E written per frame (at most M/2 - 1)
MODES = 8


class PhaseSpaceDiagnostics:
    def __init__(self, problem: Problem) -> None:
        self.problem, self.vp = problem, problem.equation
        self.modes = min(MODES, self.vp.cells // 2 - 1)

    def coords(self) -> dict[str, tuple[np.ndarray, Variable]]:
        """The grid and mode coordinates of the output file."""
        dx = self.vp.length / self.vp.cells
        return {"x_grid": ((np.arange(self.vp.cells) + 0.5) * dx, Variable(("x_grid",), "cell centre position")),
                "mode": (np.arange(1, self.modes + 1, dtype=np.int32),
                         Variable(("mode",), "Fourier mode index m of the field (wavenumber 2 pi m / L)", fmt="i4"))}

    def variables(self) -> dict[str, Variable]:
        collisional = {} if not self.vp.score_collisions else {
            "entropy_production": Variable(("time",), "estimated entropy production w sum U.s of the collision "
                                                      "operator (<= 0)"),
            "score_error": Variable(("time",), "relative squared score error sum|s - s*|^2 / sum|s*|^2 against "
                                               "grad_v log f0 at the first frame (NaN at the others)"),
            "entropy": Variable(("time",), "entropy estimate -(1/N) sum log f(x, v), f = (rho_c / L) f_c(v) "
                                           "from the oracle's log-density per cell (NaN where it has none)")}
        if self.problem.dim >= 2:
            collisional["cell_anisotropy"] = Variable(("time", "x_grid"), "temperature anisotropy T_1 / T_perp - 1 "
                                                                          "in each cell (1: the field direction)")
        return {**collisional,
            "field_energy": Variable(("time",), "electric field energy (1/2) int E^2 dx"),
            "kinetic_energy": Variable(("time",), "kinetic energy (w/2) sum |v|^2, w = L / N"),
            "total_energy": Variable(("time",), "kinetic plus field energy"),
            "momentum": Variable(("time", "dim"), "total momentum w sum v"),
            "efield": Variable(("time", "x_grid"), "electric field E at the cell centres"),
            "charge_density": Variable(("time", "x_grid"), "charge density 1 - n_e at the cell centres"),
            "efield_mode": Variable(("time", "mode"), "amplitude |E_hat_m| of Fourier mode m of E"),
            "wavenumber": Variable(("mode",), "wavenumber k_m = 2 pi m / L of each mode"),
            "cell_mean_velocity": Variable(("time", "x_grid", "dim"), "mean velocity of the particles in each cell"),
            "cell_temperature": Variable(("time", "x_grid"), "temperature (1/d) mean |v - u_c|^2 in each cell"),
        }

    def __call__(self, state: Any) -> dict[str, Any]:
        vp, z = self.vp, state.x
        x, v = z[:, 0], z[:, 1:]
        rho = vp.charge_density(vp.shape.deposit(x), x.shape[0])
        e = vp.poisson.efield(rho)
        w = vp.length / z.shape[0]
        field, kinetic = vp.field_energy(e), vp.kinetic_energy(v)
        mean, variance = self.cell_moments(x, v)
        temperature = variance.mean(1)
        k = vp.poisson.wavenumbers(torch.float64, torch.device("cpu"))[1:self.modes + 1]
        collisional = {} if not vp.score_collisions else {
            "entropy_production": w * (vp.collision_velocity(z, state.s) * state.s).sum(),
            "score_error": score_error(state.s, self.problem.initial_density.velocity_score(v))
            if state.step == 0 else math.nan,
            "entropy": self.entropy(x, z, state) if state.oracle.has_log_density else math.nan}
        if v.shape[1] >= 2:
            collisional["cell_anisotropy"] = variance[:, 0] / variance[:, 1:].mean(1) - 1.0
        return {**collisional, "field_energy": field, "kinetic_energy": kinetic, "total_energy": field + kinetic,
                "momentum": w * v.sum(0), "efield": e, "charge_density": rho,
                "efield_mode": vp.poisson.modes(e, self.modes), "wavenumber": k,
                "cell_mean_velocity": mean, "cell_temperature": temperature}

    def entropy(self, x: torch.Tensor, z: torch.Tensor, state: Any) -> torch.Tensor:
        """-(1/N) sum_p [log(rho_c / L) + log f_c(v_p)], rho_c = N_c M / N."""
        M, n = self.vp.cells, x.shape[0]
        cell = cell_index(x, self.vp.length, M)
        rho = torch.bincount(cell, minlength=M).to(x.dtype) * (M / n)
        return -(torch.log(rho[cell] / self.vp.length) + state.oracle.log_density(z, state.t)).mean()

    def cell_moments(self, x: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The mean u_c (M, d) and the variance of each component (M, d) of the velocities in each cell."""
        M = self.vp.cells
        cell = cell_index(x, self.vp.length, M)
        count = torch.zeros(M, dtype=v.dtype, device=v.device).index_add_(0, cell, torch.ones_like(x))[:, None]
        mean = torch.zeros(M, v.shape[1], dtype=v.dtype, device=v.device).index_add_(0, cell, v) / count
        dev = v - mean[cell]
        return mean, torch.zeros_like(mean).index_add_(0, cell, dev * dev) / count

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """No state: every frame is computed from the particles alone."""
