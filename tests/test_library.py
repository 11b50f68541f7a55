"""The Python API (simulate -> xarray), registries, output options and CF attributes."""
from __future__ import annotations

import math
import tomllib

import numpy as np
import pytest
import torch
import xarray as xr
from packaging.requirements import Requirement
from packaging.version import Version

from conftest import ROOT, case_path, load_case, run_main
from oracles import ScoreOracle, SettingsError
from solvers import simulate

SMALL = ["particles=200", "time.end=0.3", "output.every=5"]


def test_simulate_in_memory_equals_the_cli_file(tmp_path, capsys):
    """The dataset simulate() returns equals the CLI's file frame by frame, bit for bit."""
    path = tmp_path / "cli.nc"
    code, _, err = run_main([case_path("landau_maxwell"), "--oracle", "blob", "--quiet", "--out", path,
                             *sum((["--set", s] for s in SMALL), [])], capsys)
    assert code == 0, err
    mem = simulate(case_path("landau_maxwell"), oracle="blob", set=SMALL)
    with xr.open_dataset(path) as disk:
        assert set(mem.variables) == set(disk.variables) and mem.sizes == disk.sizes
        for name in disk.variables:
            np.testing.assert_array_equal(mem[name].values, disk[name].values, err_msg=name)
            assert mem[name].attrs == disk[name].attrs, name
        skip = {"case", "wall_time_s"}    # the case records the output path; wall time differs
        assert {k: v for k, v in mem.attrs.items() if k not in skip} == \
               {k: v for k, v in disk.attrs.items() if k not in skip}
    assert mem.attrs["status"] == "complete" and len(mem.time) == 7


def test_simulate_takes_yaml_text_a_mapping_and_writes_a_file_on_request(tmp_path):
    text = case_path("fp_ou").read_text()
    a = simulate(text, set=["particles=100", "time.end=0.2"])
    raw = load_case("fp_ou")
    raw.update(particles=100, time={**raw["time"], "end": 0.2})
    out = tmp_path / "b.nc"
    b = simulate(raw, output=out)
    assert out.exists()
    np.testing.assert_array_equal(a.x.values, b.x.values)
    with pytest.raises(SettingsError, match="particles"):
        simulate(raw, set=["particles=1"])


class FittedGaussian(ScoreOracle):
    """A user's oracle, passed as an object: the score of the Gaussian fitted to the particles."""

    name = "my_gaussian"

    def score(self, x: torch.Tensor, t: float) -> torch.Tensor:
        dx = x - x.mean(0)
        return -torch.linalg.solve(dx.T @ dx / len(x), dx.T).T


def test_custom_oracle_object():
    ds = simulate(case_path("landau_maxwell"), oracle=FittedGaussian(), set=SMALL)
    assert ds.attrs["oracle"] == "my_gaussian"
    x, s = ds.x.isel(time=0).values, ds.score.isel(time=0).values
    dx = x - x.mean(0)
    np.testing.assert_allclose(s, -dx @ np.linalg.inv(dx.T @ dx / len(x)), rtol=1e-10)


def test_toy_equation_registered_from_one_file_runs_end_to_end():
    import toy_equation  # noqa: F401  (registers equation kind 'toy_relaxation')
    case = {"name": "toy", "dim": 2, "particles": 500, "equation": {"kind": "toy_relaxation", "k": 0.5},
            "initial": {"kind": "gaussian", "cov": [2.0, 0.5]}, "time": {"end": 1.0, "dt": 0.01},
            "oracle": "kde"}
    ds = simulate(case, set=["output.every=50"])
    # Euler on dX/dt = -k X: X_k = (1 - k dt)^k X_0 exactly, whatever the score
    x0, x1 = ds.x.isel(time=0).values, ds.x.isel(time=-1).values
    np.testing.assert_allclose(x1, (1 - 0.5 * 0.01) ** 100 * x0, rtol=1e-12)
    # its covariance law is written and is the continuous-time law: O(dt) from the Euler particles
    c1, law = ds.covariance.isel(time=-1).values, ds.covariance_exact.isel(time=-1).values
    np.testing.assert_allclose(law, ds.covariance.isel(time=0).values * math.exp(-1.0), rtol=1e-12)
    assert np.abs(c1 - law).max() < 0.01 * np.abs(law).max()
    assert "entropy_production" not in ds          # not a collision operator
    with pytest.raises(SettingsError, match="equation.k"):
        simulate({**case, "equation": {"kind": "toy_relaxation", "k": -1}})


@pytest.mark.parametrize("particles,stored", [("none", 0), (7, 7)])
def test_output_particles_subset_keeps_full_diagnostics(particles, stored):
    full = simulate(case_path("landau_maxwell"), oracle="blob", set=SMALL)
    part = simulate(case_path("landau_maxwell"), oracle="blob", set=SMALL + [f"output.particles={particles}"])
    if stored:
        np.testing.assert_array_equal(part.x.values, full.x.values[:, :stored])
        np.testing.assert_array_equal(part.score.values, full.score.values[:, :stored])
    else:
        assert "x" not in part and "score" not in part and "particle" not in part.dims
    for name in ("covariance", "energy", "entropy_production", "covariance_exact"):
        np.testing.assert_array_equal(part[name].values, full[name].values, err_msg=name)


def test_output_particles_rejects_more_than_the_run_has():
    with pytest.raises(SettingsError, match="output.particles"):
        simulate(case_path("landau_maxwell"), set=SMALL + ["output.particles=201"])


def test_cf_attributes():
    """CF-1.8: every variable has a valid UDUNITS unit and a long_name; time is a coordinate with
    unit '1' (the case's normalised time), dim/dim2 are index coordinates."""
    ds = simulate(case_path("landau_maxwell"), oracle="blob", set=SMALL)
    assert ds.attrs["Conventions"] == "CF-1.8"
    for name, var in ds.variables.items():
        assert var.attrs.get("units") == "1" and var.attrs.get("long_name"), name
    assert {"time", "dim", "dim2"} <= set(ds.coords)
    np.testing.assert_array_equal(ds.dim.values, np.arange(3))


def test_torch_requirement_covers_the_apis_used():
    """torch.nn.attention.sdpa_kernel (DiScoFormer) exists from torch 2.3."""
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    torch_req = next(Requirement(d) for d in deps if Requirement(d).name == "torch")
    assert not torch_req.specifier.contains(Version("2.2.2")) and torch_req.specifier.contains(Version("2.3.0"))
