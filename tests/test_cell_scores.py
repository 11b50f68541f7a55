"""Scores per cell of a phase-space run (solvers/cell_scores.py): the transformer batched over the
cells, SBTM as one network s(x, v), the small-cell policies and their warnings, short
Vlasov-Poisson-Landau runs with each, and the exact resume of the phase-space SBTM."""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
import xarray as xr

from oracles import OracleContext, build_oracle
from oracles.base import ScoreOracle
from oracles.registry import ORACLES
from solvers import simulate
from solvers.cell_scores import CellScores

L = 4 * math.pi
F64 = torch.float64


def context(seed: int = 1) -> OracleContext:
    return OracleContext(dim=2, dtype=F64, generator=torch.Generator().manual_seed(seed))


def cells_of(sizes: list[int], seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Velocities (n, 2) in shuffled order and their cell, cell c drawn from N(0.3 c, (1 + 0.2 c)^2 I)."""
    g = torch.Generator().manual_seed(seed)
    group = torch.cat([torch.full((k,), c) for c, k in enumerate(sizes)])
    group = group[torch.randperm(len(group), generator=g)]
    v = torch.randn(len(group), 2, generator=g, dtype=F64) * (1 + 0.2 * group[:, None]) + 0.3 * group[:, None]
    return v, group


# ----------------------------------------------------------------------------- discoformer
@pytest.mark.parametrize("spec", [{}, {"context": 500}])
def test_discoformer_cells_in_batched_passes_equal_separate_calls(spec: dict) -> None:
    """Cells of 550-1300 particles (several size buckets, padding and masks): the batched scores
    equal a separate call per cell to float32 rounding (measured 1e-6 of the largest score; 0 with
    a 500-point context subset, drawn per cell in the same order; every cell then also gets its
    own kernel correction)."""
    v, group = cells_of([600, 900, 1300, 700, 550, 1000])
    oracle = build_oracle({"kind": "discoformer", **spec}, context())
    oracle.generator.manual_seed(9)
    batched = oracle.score_groups(v, group, 6, 0.0)
    oracle.generator.manual_seed(9)
    separate = torch.empty_like(v)
    for c in range(6):
        separate[group == c] = oracle.evaluate(v[group == c])[1]
    assert float((batched - separate).abs().max()) < 1e-5 * float(separate.abs().max())


def test_discoformer_small_cell_warns_and_is_scored_with_its_neighbours() -> None:
    """A cell of 100 particles (below the 512 of the d = 2 weights' training range) is scored as
    part of the sample of cells 0, 1, 2; the others alone."""
    sizes = [600, 100, 700, 650]
    v, group = cells_of(sizes)
    oracle = build_oracle({"kind": "discoformer"}, context())
    with pytest.warns(RuntimeWarning, match="1 of 4 cells hold fewer than 512"):
        s = oracle.score_groups(v, group, 4, 0.0)
    merged = oracle.evaluate(torch.cat([v[group == c] for c in (0, 1, 2)]))[1][600:700]
    torch.testing.assert_close(s[group == 1], merged, rtol=0, atol=1e-5 * float(merged.abs().max()))
    torch.testing.assert_close(s[group == 3], oracle.evaluate(v[group == 3])[1], rtol=0, atol=1e-5 * float(s.abs().max()))


# ----------------------------------------------------------------------------- sbtm in phase space
def local_maxwellian(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """z = (x, v) with v | x ~ N(u(x), T(x) I), T = 1 + 0.4 cos(2 pi x / L), u_1 = 0.5 sin(2 pi x / L);
    and the exact score -(v - u(x)) / T(x)."""
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, generator=g, dtype=F64) * L
    T = 1 + 0.4 * torch.cos(2 * math.pi * x / L)
    u = torch.stack([0.5 * torch.sin(2 * math.pi * x / L), torch.zeros_like(x)], 1)
    v = u + T.sqrt()[:, None] * torch.randn(n, 2, generator=g, dtype=F64)
    return torch.cat([x[:, None], v], 1), -(v - u) / T[:, None]


def rel(s: torch.Tensor, ref: torch.Tensor) -> float:
    return float(((s - ref) ** 2).sum() / (ref ** 2).sum()) ** 0.5


def test_phase_space_sbtm_learns_an_x_dependent_maxwellian() -> None:
    """n = 3000, implicit score matching, 150 steps at lr 1e-3 from the Gaussian of all particles
    (relative error 0.37, the x dependence missing): relative L2 error on held-out particles
    below 0.2 (measured 0.16 at n = 4000; it rises again after about 200 steps as the network fits
    the sample, see oracles/sbtm_phase_space.py)."""
    z, _ = local_maxwellian(3000, 0)
    held, exact = local_maxwellian(3000, 1)
    cells = CellScores(lambda: build_oracle({"kind": "sbtm", "loss": "ism_exact", "net_dtype": "float32",
                                             "init_fit": "score_matching", "init_max_steps": 150}, context(3)),
                       L, 16)
    cells.prepare(z, 0.0)
    with torch.no_grad():
        learned = rel(cells.joint.model(held.float()).double(), exact)
    gaussian = rel(-held[:, 1:] @ torch.linalg.inv(torch.cov(held[:, 1:].T)), exact)
    assert learned < 0.2 and learned < 0.6 * gaussian


def test_phase_space_sbtm_state_dict_resumes_bit_for_bit() -> None:
    z, _ = local_maxwellian(500, 0)
    build = lambda: build_oracle({"kind": "sbtm", "init_max_steps": 5, "steps": 3}, context(3))  # noqa: E731
    a = CellScores(build, L, 8)
    a.prepare(z, 0.0)
    a.score(z, 0.0)
    state = a.state_dict()
    z1 = z + 0.01
    first = a.score(z1, 0.1)
    b = CellScores(build, L, 8)
    b.load_state_dict(state)
    assert torch.equal(b.score(z1, 0.1), first) and b.last_loss == a.last_loss


# ----------------------------------------------------------------------------- small cells, refusal
class StandardNormal(ScoreOracle):
    """A per-instance oracle (no score_groups): the score of N(0, I)."""

    def score(self, x: torch.Tensor, t: float) -> torch.Tensor:
        return -x


def test_per_instance_oracle_warns_about_cells_with_few_particles() -> None:
    g = torch.Generator().manual_seed(0)
    x = torch.cat([torch.rand(400, generator=g, dtype=F64) * 0.75 * L, torch.full((3,), 0.9 * L, dtype=F64)])
    z = torch.cat([x[:, None], torch.randn(len(x), 2, generator=g, dtype=F64)], 1)
    cells = CellScores(StandardNormal, L, 4)
    with pytest.warns(RuntimeWarning, match="1 of 4 cells hold fewer than 6 particles"):
        cells.prepare(z, 0.0)


def test_oracle_not_built_per_cell_is_refused(capsys, monkeypatch) -> None:
    from conftest import run_main

    class Homogeneous(ScoreOracle):
        name, per_cell = "homogeneous_only", False

        @dataclass
        class Settings:
            pass

    monkeypatch.setitem(ORACLES._classes, Homogeneous.name, Homogeneous)
    code, _, err = run_main(["cases/vpl_landau_damping.yaml", "--oracle", Homogeneous.name], capsys)
    assert code == 2 and "per cell" in err and len(err.strip().splitlines()) == 1


def test_sbtm_takes_its_phase_space_defaults_in_a_vlasov_poisson_case() -> None:
    from solvers.case import read_case
    phase = read_case("cases/vpl_landau_damping.yaml", ["oracle.kind=sbtm", "oracle.steps=10"])["oracle"]
    assert (phase["loss"], phase["batch_size"], phase["net_dtype"], phase["steps"]) == ("ism_exact", 4096, "float32", 10)
    homogeneous = read_case("cases/landau_bkw.yaml", ["oracle.kind=sbtm"])["oracle"]
    assert (homogeneous["loss"], homogeneous["batch_size"], homogeneous["net_dtype"]) == ("denoising", None, "auto")


# ----------------------------------------------------------------------------- short runs
def vpl(oracle: dict) -> dict:
    return {"name": "vpl", "dim": 2, "space": {"length": L, "cells": 4}, "particles": 2400,
            "equation": {"kind": "vlasov_poisson", "collisions": {"gamma": -2.0, "B": 0.25}},
            "initial": {"kind": "perturbed_maxwellian", "k": 0.5, "alpha": 0.1, "cov": [1.5, 0.5]},
            "oracle": oracle, "time": {"end": 0.1, "dt": 0.05}, "output": {"every": 1}}


@pytest.mark.parametrize("oracle", [{"kind": "discoformer"},
                                    {"kind": "sbtm", "init_max_steps": 10, "steps": 3}])
def test_collisional_run_with_each_new_oracle_conserves_momentum(oracle: dict) -> None:
    """Two steps: the collision operator conserves momentum per cell whatever the scores, so the
    total momentum moves only by rounding (the bound of tests/test_vlasov_poisson_landau.py)."""
    ds = simulate(vpl(oracle))
    p = ds.momentum.values
    assert np.isfinite(ds.velocity.values).all()
    assert np.abs(p - p[0]).max() < 1e-12 * L


def test_phase_space_sbtm_run_stopped_and_resumed_is_identical(tmp_path: Path, capsys) -> None:
    from conftest import run_main
    from solvers.api import EXIT_STOPPED, execute
    from solvers.run import plan_runs
    from solvers.trackers import StopOnSignal

    class StopAtStep2(StopOnSignal):
        def handle(self, state) -> None:
            self.requested = state.step == 2
            super().handle(state)

    case = tmp_path / "vpl.yaml"
    case.write_text(str(vpl({"kind": "sbtm", "init_max_steps": 10, "steps": 3})).replace("'", '"'))
    overrides = ["time.end=0.2", "output.every=1"]
    full, cut = tmp_path / "full.nc", tmp_path / "cut.nc"
    (run,) = plan_runs(str(case), overrides, [], out=str(full))
    assert execute(run).status == 0
    (run,) = plan_runs(str(case), overrides, [], out=str(cut))
    assert execute(run, stop=StopAtStep2()).status == EXIT_STOPPED
    code, _, err = run_main([case, "--quiet", "--out", cut, "--resume", *sum((["--set", o] for o in overrides), [])],
                            capsys)
    assert code == 0, err
    with xr.open_dataset(full) as a, xr.open_dataset(cut) as b:
        assert np.array_equal(a.velocity.values, b.velocity.values)
