"""Binary-collision Monte Carlo (``equation: {kind: landau, method: binary, scheme: ...}``)."""
from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pytest
import torch

from landau import pairs
from landau.binary_collisions import BinaryCollisions, collide_torch, collision_draws, mean_sin2

F64 = dict(dtype=torch.float64)
BI_MAXWELLIAN = dict(name="bi", dim=3, particles=100_000, seed=3,
                     equation=dict(kind="landau", gamma=-3, B=1 / 24, method="binary"),
                     initial=dict(kind="gaussian", mean=[0.1, 0, 0], cov=[0.6, 0.6, 1.2]),
                     time=dict(start=0.0, end=0.2, dt=0.05), output=dict(path=None, every=1, particles="none"))


def totals(x):
    return x.sum(0), (x * x).sum()


@pytest.mark.parametrize("scheme,d,n", [("takizuka_abe", 3, 2001), ("nanbu", 3, 2000), ("takizuka_abe", 2, 999)])
@pytest.mark.parametrize("backend", ["compiled", "torch"])
def test_momentum_and_energy_exact_per_step(scheme, d, n, backend):
    g = torch.Generator().manual_seed(1)
    x = torch.randn(n, d, generator=g, **F64) * torch.tensor([1.5, 0.4, 1.0][:d], **F64) + 0.3
    p0, e0 = totals(x)
    eq = BinaryCollisions(-3.0, 1 / 24, scheme)
    with pairs.use_backend("torch" if backend == "torch" else "auto"):
        for _ in range(20):
            eq.step(x, 0.5, g)
    p, e = totals(x)
    assert float((p - p0).abs().max()) < 1e-12 * float(x.abs().sum())
    assert abs(float(e / e0) - 1) < 1e-12


def test_compiled_equals_torch_with_the_same_draws():
    for scheme, n in (("takizuka_abe", 1001), ("nanbu", 1000)):
        g = torch.Generator().manual_seed(2)
        x = torch.randn(n, 3, generator=g, **F64)
        perm, r1, r2 = collision_draws(n, g, scheme)
        a = collide_torch(x.clone(), perm, r1, r2, 8 * 2 / 24 * 0.3, -3.0, scheme)
        b = x.clone()
        pairs.load_compiled("landau.binary_kernels_numba").collide(b.numpy(), perm.numpy(), r1.numpy(), r2.numpy(),
                                                                   8 * 2 / 24 * 0.3, -3.0, ("takizuka_abe", "nanbu").index(scheme))
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("scheme", ["takizuka_abe", "nanbu"])
@pytest.mark.parametrize("var", [1e-3, 0.3, 5.0])
def test_angle_distribution_has_the_stated_mean_sin2(scheme, var):
    """n pairs with the same u: the sampled E[sin^2 theta] against the closed form used by the
    expected-rate diagnostic, and E[1 - cos theta] ~ var/2 for small angles."""
    n = 200_000
    v = torch.zeros(n, 3, **F64)
    v[0::2, 2], v[1::2, 2] = 0.5, -0.5                                   # u = e_z, |u| = 1
    g = torch.Generator().manual_seed(3)
    perm = torch.arange(n)
    m = n // 2
    r1 = (torch.randn if scheme == "takizuka_abe" else torch.rand)(m, generator=g, **F64)
    r2 = torch.rand(m, generator=g, **F64)
    collide_torch(v, perm, r1, r2, var, 0.0, scheme)                     # coef |u|^0 = var
    cos = (v[0::2] - v[1::2])[:, 2]
    sin2 = 1 - cos * cos
    expected = float(mean_sin2(torch.tensor([var], **F64), scheme))
    assert abs(float(sin2.mean()) - expected) < 4 * float(sin2.std()) / math.sqrt(m)
    if var < 0.01:
        assert abs(float((1 - cos).mean()) / (var / 2) - 1) < 0.05


@pytest.mark.parametrize("scheme", ["takizuka_abe", "nanbu"])
def test_initial_parallel_temperature_rate_of_a_bi_maxwellian(scheme):
    """n = 1e5, gamma = -3, dt = 0.05 (nu dt ~ 1e-3): the first frames' covariance_rate (the step's
    expected dS/dt) within 5 % of the exact rate; the step bias shrinks like dt^(2/3)."""
    from solvers import simulate
    case = dict(BI_MAXWELLIAN, equation=dict(BI_MAXWELLIAN["equation"], scheme=scheme))
    ds = simulate(case)
    exact = ds.covariance_rate_exact.values[0]
    rate = ds.covariance_rate.values[:3].mean(0)                         # the first steps
    assert abs(rate[2, 2] / exact[2, 2] - 1) < 0.05
    assert abs(rate[0, 0] / exact[0, 0] - 1) < 0.05
    p, e = ds["mean"].values, ds.energy.values
    assert np.abs(p - p[0]).max() < 1e-14 and abs(e[-1] / e[0] - 1) < 1e-12
    assert "entropy_production" not in ds and "score" not in ds


def test_resume_is_bit_exact(tmp_path):
    from solvers import simulate
    from solvers.api import prepare, execute
    from solvers.case import read_case
    from solvers.checkpoint import Checkpoint, default_path
    case = dict(BI_MAXWELLIAN, particles=501, time=dict(start=0.0, end=1.0, dt=0.1),
                equation=dict(BI_MAXWELLIAN["equation"], scheme="nanbu"), output=dict(path=None, every=1))
    full = simulate(case)
    out = tmp_path / "r.nc"
    half = read_case(dict(case, time=dict(case["time"], end=0.5), output=dict(path=str(out), every=1,
                                                                               checkpoint_every=5)))
    execute(prepare(half, out))
    rest = read_case(dict(case, output=dict(path=str(out), every=1, checkpoint_every=5)))
    execute(prepare(rest, out, resume=Checkpoint.load(default_path(out)), checkpoint_path=default_path(out)))
    import xarray as xr
    with xr.open_dataset(out) as ds:
        np.testing.assert_array_equal(ds.x.values, full.x.values)


def test_oracle_refused_with_one_line_and_bad_settings_name_the_key(tmp_path):
    r = subprocess.run([sys.executable, "-m", "solvers.run", "cases/landau_coulomb_binary.yaml", "--set", "particles=50",
                        "--set", "time.end=1", "--out", str(tmp_path / "o.nc"), "--oracle", "blob"],
                       capture_output=True, text=True)
    assert r.returncode == 2 and r.stderr.strip().count("\n") == 0 and "oracle" in r.stderr
    assert not (tmp_path / "o.nc").exists()
    from oracles import SettingsError
    from solvers.case import read_case
    for edit, key in ((["equation.scheme=nope"], "equation.scheme"), (["time.integrator=heun"], "time.integrator"),
                      (["equation.delta=0.1"], "equation.delta"), (["dim=4", "initial.mean=0", "initial.cov=1"], "dim"),
                      (["equation.method=auto"], "equation.scheme")):
        with pytest.raises(SettingsError, match=key.replace(".", r"\.")):
            read_case("cases/landau_coulomb_binary.yaml", edit)
    read_case("cases/landau_coulomb_binary.yaml", ["equation.scheme=nanbu"])
