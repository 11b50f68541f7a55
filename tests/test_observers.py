"""Diagnostics observe without touching: how often frames are written never changes the run.

The frame metrics ask the oracle for its log-density (entropy) and read its last loss. Neither may
draw from the run's generator, train, or change the oracle in any other way, so the particles at
the frames that several cadences share are the same, bit for bit, whatever ``output.every`` is.
"""
from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
import xarray as xr

import oracles.discoformer  # noqa: F401  (registers the oracle)
from oracles import available
from oracles.registry import OracleContext, build_oracle
from solvers import simulate

torch.set_num_threads(1)

STEPS = 11                     # frames at steps 0..11 (every 1), 0, 7, 11 (every 7), 0, 10, 11 (every 10)
CASE = ["particles=48", "time.end=5.61", "dtype=float64"]          # BKW d = 3 from t0 = 5.5, dt = 0.01
SBTM = {"kind": "sbtm", "width": 16, "steps": 2, "init_max_steps": 5}
TRANSFORMER = {"kind": "discoformer", "context": 32, "rotations": 2, "subsets": 2, "ttt_steps": 1,
               "ttt_queries": 16, "query_batch": None}
ORACLES = {
    "blob": "blob", "kde": "kde", "gaussian": "gaussian", "expfam": "expfam", "exact": "exact",
    "sbtm": SBTM,
    "discoformer": "discoformer",                       # defaults: the whole sample, Stein correction
    "discoformer-averaged-ttt": TRANSFORMER,            # random frames and subsets, test-time training
}


def frames_by_step(oracle, every: int) -> dict[int, np.ndarray]:
    ds = simulate("cases/landau_bkw.yaml", oracle=copy.deepcopy(oracle), set=CASE + [f"output.every={every}"])
    steps = np.rint((ds.time.values - ds.time.values[0]) / 0.01).astype(int)
    assert steps[-1] == STEPS
    return {int(k): ds.x.values[i] for i, k in enumerate(steps)} | {"entropy": ds.entropy.values}


@pytest.mark.parametrize("name", [k for k in ORACLES if k.split("-")[0] in available()])
def test_the_trajectory_does_not_depend_on_how_often_frames_are_written(name: str) -> None:
    runs = {every: frames_by_step(ORACLES[name], every) for every in (1, 7, 10)}
    every_step = runs[1]
    assert sorted(k for k in every_step if k != "entropy") == list(range(STEPS + 1))
    for every in (7, 10):
        steps = [k for k in runs[every] if k != "entropy"]
        assert steps == [0, every, STEPS]
        for k in steps:
            assert np.array_equal(runs[every][k], every_step[k]), (name, every, k)
        entropy_at = dict(zip(steps, runs[every]["entropy"]))         # NaN (no log-density) matches NaN
        assert all(np.array_equal(entropy_at[k], every_step["entropy"][k], equal_nan=True) for k in steps)


def _twins(spec) -> tuple:
    """Two oracles built alike, each with its own generator seeded alike, prepared on the same x0."""
    ctx = lambda: OracleContext(dim=3, dtype=torch.float64, generator=torch.Generator().manual_seed(1),
                                exact=None)
    a, b = build_oracle(copy.deepcopy(spec), ctx()), build_oracle(copy.deepcopy(spec), ctx())
    return a, b, (a.context.generator, b.context.generator)


@pytest.mark.parametrize("name", [k for k in ORACLES if k != "exact" and k.split("-")[0] in available()])
def test_log_density_and_last_loss_change_nothing(name: str) -> None:
    """Asking for log f (at the particles and elsewhere) and for the last loss between two scores
    leaves the next score, the oracle's state and the shared generator as if it had not been asked."""
    g = torch.Generator().manual_seed(0)
    x0, x1, other = (torch.randn(40, 3, generator=g, dtype=torch.float64) for _ in range(3))
    watched, alone, (gen_w, gen_a) = _twins(ORACLES[name])
    for oracle in (watched, alone):
        oracle.prepare(x0, 0.0)
        oracle.score(x0, 0.0)
    if watched.has_log_density:
        at_particles = watched.log_density(x0, 0.0)
        watched.log_density(other, 0.0)
        torch.testing.assert_close(watched.log_density(x0, 0.0), at_particles, rtol=0, atol=0)
    _ = watched.last_loss
    assert torch.equal(gen_w.get_state(), gen_a.get_state())
    assert torch.equal(watched.score(x1, 0.01), alone.score(x1, 0.01))
    assert torch.equal(gen_w.get_state(), gen_a.get_state())


def test_a_resumed_transformer_run_writes_the_frames_of_the_uninterrupted_one(tmp_path, capsys) -> None:
    """The log-density kept from the last score pass is part of the oracle's checkpointed state: the
    frame a resumed run writes again at its checkpoint (and every later one) is the uninterrupted
    run's, entropy included, with random frames, context subsets and test-time training."""
    from conftest import case_path, run_main

    spec = "discoformer:" + ",".join(f"{k}={v}" for k, v in TRANSFORMER.items() if k not in ("kind", "query_batch"))
    args = [case_path("landau_bkw"), "--oracle", spec, "--set", "particles=48", "--set", "output.every=1",
            "--set", "output.checkpoint_every=1", "--quiet"]
    full, cut = tmp_path / "full.nc", tmp_path / "cut.nc"
    assert run_main(args + ["--set", "time.end=5.54", "--out", full], capsys)[0] == 0
    assert run_main(args + ["--set", "time.end=5.52", "--out", cut], capsys)[0] == 0
    assert run_main(args + ["--set", "time.end=5.54", "--out", cut, "--resume"], capsys)[0] == 0
    with xr.open_dataset(full) as a, xr.open_dataset(cut) as b:
        assert a.sizes["time"] == b.sizes["time"] == 5
        for name in ("x", "score", "entropy"):
            assert np.array_equal(a[name].values, b[name].values), name
        assert np.isfinite(a.entropy.values).all()
