"""Output files: documented variables, dimensions and attributes, frame consistency, the exact
covariance at t0, and what an interrupted run leaves behind (NaN blow-up: exit 1 with the frames so
far; kill -9: a readable file with the completed frames, the writer syncs after each frame)."""
from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
import xarray as xr
import yaml

from conftest import case_path, cli_env, load_case, run_cli, run_main, write_case
from landau import BKW
from solvers.case import read_case

COMMON = {"time", "x", "score", "mean", "covariance", "energy", "oracle_loss"}
LANDAU = {"entropy_production", "covariance_equilibrium"}
ATTRS = {"case", "oracle", "oracle_settings", "package_version", "seed", "Conventions"}


def check_frames(ds: xr.Dataset, landau: bool) -> None:
    """Every stored frame is complete and self-consistent: diagnostics recomputed from x."""
    x = ds["x"].values.astype(np.float64)
    n = x.shape[1]
    assert np.isfinite(x).all() and np.isfinite(ds["score"].values).all()
    mean = x.mean(1)
    dx = x - mean[:, None, :]
    cov = np.einsum("tpi,tpj->tij", dx, dx) / n
    energy = 0.5 * (x**2).sum((1, 2)) / n
    tol = 1e-10 if ds["x"].dtype == np.float64 else 1e-5
    np.testing.assert_allclose(ds["mean"].values, mean, rtol=0, atol=tol * max(1, np.abs(x).max()))
    np.testing.assert_allclose(ds["covariance"].values, cov, rtol=tol, atol=tol)
    np.testing.assert_allclose(ds["energy"].values, energy, rtol=tol)
    if landau:
        assert (ds["entropy_production"].values <= 0).all()


def test_landau_output_variables_dims_attributes(tmp_path, capsys):
    out = tmp_path / "m.nc"
    raw = load_case("landau_maxwell")
    raw.update(particles=50, oracle={"kind": "blob"})
    raw["time"].update(end=0.7, dt=0.05)                       # 14 steps
    raw["output"] = {"path": str(out), "every": 4}
    case_file = write_case(tmp_path, raw)
    code, _, err = run_main([case_file, "--quiet"], capsys)
    assert code == 0, err
    with xr.open_dataset(out) as ds:
        assert COMMON | LANDAU | {"covariance_exact"} <= set(ds.variables)
        assert dict(ds.sizes) == {"time": 5, "particle": 50, "dim": 3, "dim2": 3}
        # frames at steps 0, 4, 8, 12 and the last step 14
        np.testing.assert_allclose(ds["time"].values, [0.0, 0.2, 0.4, 0.6, 0.7], atol=1e-12)
        assert ds["x"].dims == ("time", "particle", "dim") and ds["score"].dims == ("time", "particle", "dim")
        assert ds["covariance"].dims == ("time", "dim", "dim2")
        assert ds["covariance_exact"].dims == ("time", "dim", "dim2")
        assert ds["covariance_equilibrium"].dims == ("dim", "dim2")
        for v in ["mean"]:
            assert ds[v].dims == ("time", "dim")
        for v in ["energy", "entropy_production", "oracle_loss"]:
            assert ds[v].dims == ("time",)
        assert ds["x"].dtype == np.float64
        assert ATTRS <= set(ds.attrs)
        assert ds.attrs["oracle"] == "blob"
        assert ds.attrs["seed"] == 0
        assert str(ds.attrs["Conventions"]).startswith("CF")
        assert ds.attrs["package_version"]
        # the stored case parses back to the resolved case (a file says exactly how it was made)
        stored = yaml.safe_load(ds.attrs["case"])
        assert stored == read_case(case_file)
        settings = yaml.safe_load(ds.attrs["oracle_settings"])
        assert settings["kind"] == "blob" and settings["eps_used"] > 0
        # covariance_exact starts from the particles' own covariance
        np.testing.assert_allclose(ds["covariance_exact"].values[0], ds["covariance"].values[0], rtol=1e-14, atol=1e-15)
        c0 = ds["covariance"].values[0]
        np.testing.assert_allclose(ds["covariance_equilibrium"].values, np.trace(c0) / 3 * np.eye(3), rtol=1e-14)
        assert np.isnan(ds["oracle_loss"].values).all()          # blob does not train
        check_frames(ds, landau=True)
        # trace of the covariance (energy about the mean) is conserved by the Maxwell law
        tr = np.trace(ds["covariance_exact"].values, axis1=1, axis2=2)
        np.testing.assert_allclose(tr, tr[0], rtol=1e-12)


def test_fp_output_and_score_stored_with_its_positions(tmp_path, capsys):
    """FP file: no Landau-only variables; the stored score is the oracle's score at the stored x
    at the stored time (exact oracle: the closed-form Gaussian score), not one step stale."""
    out = tmp_path / "ou.nc"
    code, _, err = run_main([case_path("fp_ou"), "--quiet", "--oracle", "exact", "--out", out,
                             "--set", "particles=30", "--set", "output.every=25"], capsys)
    assert code == 0, err
    with xr.open_dataset(out) as ds:
        assert COMMON | {"covariance_exact"} <= set(ds.variables)
        assert not (LANDAU & set(ds.variables))
        assert ds.attrs["oracle"] == "exact"
        t, x, s = ds["time"].values, ds["x"].values, ds["score"].values
        np.testing.assert_allclose(t, [0.1, 0.35, 0.6, 0.85, 1.1], atol=1e-12)
        np.testing.assert_allclose(ds["covariance_exact"].values[0], ds["covariance"].values[0], rtol=1e-14, atol=1e-15)
        check_frames(ds, landau=False)
    for k in range(len(t)):
        var = 1 - math.exp(-2 * t[k])                            # OU: N(0, (1 - e^-2t) I)
        np.testing.assert_allclose(s[k], -x[k] / var, rtol=1e-10)


def test_bkw_score_stored_is_exact_score(tmp_path, capsys):
    out = tmp_path / "bkw.nc"
    code, _, err = run_main([case_path("landau_bkw"), "--quiet", "--oracle", "exact", "--out", out,
                             "--set", "particles=40", "--set", "time.end=5.8", "--set", "output.every=10"], capsys)
    assert code == 0, err
    bkw = BKW(3, 1 / 24)
    with xr.open_dataset(out) as ds:
        for k, t in enumerate(ds["time"].values):
            x = torch.as_tensor(ds["x"].values[k])
            np.testing.assert_allclose(ds["score"].values[k], bkw.score(x, float(t)).numpy(), rtol=1e-12)


def test_same_seed_same_particles(tmp_path, capsys):
    paths = [tmp_path / "a.nc", tmp_path / "b.nc", tmp_path / "c.nc"]
    for p, seed in zip(paths, [3, 3, 4]):
        assert run_main([case_path("landau_maxwell"), "--quiet", "--out", p, "--set", "particles=20",
                         "--set", f"seed={seed}", "--set", "time.end=0.02"], capsys)[0] == 0
    xs = []
    for p in paths:
        with xr.open_dataset(p) as ds:
            xs.append(ds["x"].values)
    np.testing.assert_array_equal(xs[0], xs[1])
    assert not np.array_equal(xs[0][0], xs[2][0])


def test_nan_blowup_exit_1_keeps_frames(tmp_path):
    """An unstable drift b = 10^6 x (Euler factor 10^4 per step): the particles overflow to inf by
    step ~77 and the state turns non-finite; exit 1, the frames before are kept and readable.
    (With b = 100 x the positions stay finite, |x| < 1e31, and so does an accurately summed score.)"""
    out = tmp_path / "nan.nc"
    proc = run_cli([case_path("fp_ou"), "--quiet", "--out", out, "--set", "particles=50",
                    "--set", "equation.drift.A=-1e6", "--set", "output.every=5"], cwd=tmp_path)
    assert proc.returncode == 1, (proc.returncode, proc.stderr)
    assert "Traceback" not in proc.stderr
    assert "non-finite" in proc.stderr and "kept" in proc.stderr
    with xr.open_dataset(out) as ds:
        n_frames = ds.sizes["time"]
        assert 2 <= n_frames < 21                                 # some frames, not the full run
        np.testing.assert_allclose(ds["time"].values, 0.1 + 0.05 * np.arange(n_frames), atol=1e-12)
        assert ds.attrs["status"].startswith("failed")
        check_frames(ds, landau=False)
    assert not (tmp_path / "nan.nc.tmp").exists()


def test_oracle_numerical_failure_is_a_blowup_that_keeps_frames(tmp_path):
    """An oracle whose linear algebra fails on wild but finite particles (SBTM's eigh at |x| ~ 1e89)
    ends the run like a blow-up: a one-line error naming the step, the frames before it kept."""
    from oracles import ScoreOracle
    from solvers import simulate

    class Failing(ScoreOracle):
        name = "failing"

        def score(self, x, t):
            if t > 0.25:
                torch.linalg.cholesky(-torch.eye(2, dtype=x.dtype))      # not positive definite
            return -x

    out = tmp_path / "fail.nc"
    with pytest.raises(RuntimeError, match=r"the score oracle failed \(.*\) at step 8 "):
        simulate(case_path("fp_ou"), oracle=Failing(), output=out,
                 set=["particles=30", "output.every=5", "time.dt=0.02"])
    with xr.open_dataset(out) as ds:
        assert ds.sizes["time"] == 2 and ds.attrs["status"].startswith("failed")
    assert not (tmp_path / "fail.nc.tmp").exists()


def test_kill_9_leaves_readable_file_with_completed_frames(tmp_path):
    """kill -9 a Coulomb run (one frame per step) once its first checkpoint shows 3 frames are written:
    the file opens with xarray, holds >= 2 complete, self-consistent frames on the time grid, and is
    not marked complete. (Frames are a small part of each step, so the kill lands between frames.)"""
    out = tmp_path / "killed.nc"
    args = [sys.executable, "-m", "solvers.run", case_path("landau_coulomb"), "--quiet", "--out", out,
            "--set", "particles=1500", "--set", "output.every=1", "--set", "time.end=1000",
            "--set", "output.checkpoint_every=2"]
    proc = subprocess.Popen([str(a) for a in args], cwd=tmp_path, env=cli_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        checkpoint = tmp_path / "killed.nc.ckpt"                  # written at step 2, after frame 2
        while not checkpoint.exists():
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "no checkpoint after 120 s"
            time.sleep(0.02)
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.communicate()
    assert proc.returncode == -signal.SIGKILL
    with xr.open_dataset(out) as ds:
        n_frames = ds.sizes["time"]
        assert 2 <= n_frames < 1000
        np.testing.assert_allclose(ds["time"].values, np.arange(n_frames, dtype=float), atol=1e-12)
        assert ds.attrs.get("status") != "complete"
        check_frames(ds, landau=True)
