"""Integrators: convergence order on a scalar ODE, score evaluations per step, the exact Euler energy
increment for the Landau field, and the energy drift of a Landau run decreasing with the order."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import xarray as xr

from conftest import case_path, run_main
from landau import maxwell_field
from landau.diagnostics import energy
from solvers.steppers import STAGES, STEPPERS


def integrate(name: str, steps: int, T: float = 1.0) -> float:
    """y' = -y (1 + t) cos(y) from y(0) = 1 (non-autonomous and nonlinear)."""
    def rhs(y, t):
        u = -y * (1 + t) * torch.cos(y)
        return u, torch.zeros_like(y)
    y = torch.tensor([1.0], dtype=torch.float64)
    dt = T / steps
    for k in range(steps):
        t = k * dt
        y = STEPPERS[name](y, t, dt, rhs(y, t)[0], rhs)
    return float(y)


@pytest.mark.parametrize("name,order", [("euler", 1), ("heun", 2), ("rk4", 4)])
def test_convergence_order(name, order):
    ref = integrate("rk4", 4096)
    e1, e2 = abs(integrate(name, 32) - ref), abs(integrate(name, 64) - ref)
    observed = math.log2(e1 / e2)
    # halving dt divides the error by 2^order up to O(dt) corrections: +-0.25 in the exponent
    assert abs(observed - order) < 0.25, observed


@pytest.mark.parametrize("name", ["euler", "heun", "rk4"])
def test_one_score_evaluation_per_stage(name):
    calls = []

    def rhs(y, t):
        calls.append(t)
        return -y, torch.zeros_like(y)
    y = torch.ones(3, 2, dtype=torch.float64)
    STEPPERS[name](y, 0.5, 0.1, -y, rhs)
    assert len(calls) == STAGES[name] - 1          # the first stage is handed in
    expected = {"euler": [], "heun": [0.6], "rk4": [0.55, 0.55, 0.6]}[name]
    assert calls == pytest.approx(expected)


def test_euler_energy_increment_is_dt2_sum_u2():
    """Since sum X.U = 0, one Euler step changes E = (1/2n) sum |X|^2 by exactly dt^2 sum|U|^2 / (2n)."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(300, 3, generator=g, dtype=torch.float64)
    s = -x + 0.3 * torch.randn(300, 3, generator=g, dtype=torch.float64)
    u = maxwell_field(x, s, 1 / 24)
    dt = 0.1
    x1 = STEPPERS["euler"](x, 0.0, dt, u, None)
    de = float(energy(x1) - energy(x))
    expected = dt**2 * float((u * u).sum()) / (2 * len(x))
    assert de > 0
    assert abs(de - expected) < 1e-10 * expected


def test_energy_drift_decreases_with_order(tmp_path, capsys):
    """landau_maxwell, n = 100, blob oracle, 10 steps of dt = 0.1, same seed for all three.

    Measured relative energy drift max_t |E(t) - E(0)| / E(0): Euler 1.0e-3, Heun 4.7e-7,
    RK4 4.2e-9 (ratios 2200 and 110). Local energy error per step is O(dt^2) for Euler (exactly
    dt^2 sum|U|^2/2n), O(dt^3) for Heun and O(dt^5) for RK4; the margins asserted (x30, x10)
    are well inside the measured ratios yet fail if a stepper degrades by one order.
    """
    drift = {}
    for integrator in ["euler", "heun", "rk4"]:
        out = tmp_path / f"{integrator}.nc"
        code, _, err = run_main([case_path("landau_maxwell"), "--quiet", "--oracle", "blob", "--out", out,
                                 "--set", "particles=100", "--set", "time.dt=0.1", "--set", "time.end=1.0",
                                 "--set", f"time.integrator={integrator}", "--set", "output.every=1"], capsys)
        assert code == 0, err
        with xr.open_dataset(out) as ds:
            e = ds["energy"].values
            assert len(e) == 11
            assert np.all(ds["entropy_production"].values < 0)
            mean = ds["mean"].values
        # momentum: exact in every stepper (each stage has sum U = 0): 1e-12 relative to the spread
        assert np.abs(mean - mean[0]).max() < 1e-12 * math.sqrt(2 * e[0])
        drift[integrator] = float(np.abs(e - e[0]).max() / e[0])
    assert drift["euler"] > 30 * drift["heun"], drift
    assert drift["heun"] > 10 * drift["rk4"], drift
    assert drift["euler"] < 1e-2 and drift["rk4"] < 1e-7, drift
