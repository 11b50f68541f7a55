"""SBTM oracle: loss functions, settings validation, warm start, determinism, exact state, BKW accuracy.

Run with one thread (``OMP_NUM_THREADS=1``); the default (not slow) set takes well under 90 s.
"""
from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import netCDF4
import pytest
import torch
import yaml

from landau import BKW, LandauEquation, gaussian
from oracles import OracleContext, SettingsError, available, build_oracle
from oracles.sbtm import (MLP, SBTMOracle, denoising_loss, divergence, ism_exact_loss,
                          ism_hutchinson_loss)

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}
F64 = torch.float64


def linear_score(A: torch.Tensor, b: torch.Tensor):
    return lambda x: x @ A.T + b


def spd(d: int, gen: torch.Generator) -> torch.Tensor:
    m = torch.randn(d, d, generator=gen, dtype=F64)
    return m @ m.T / d + 0.5 * torch.eye(d, dtype=F64)


def bkw_setup(n: int, dtype=F64, seed: int = 0):
    bkw = BKW(3, 1 / 24)
    gen = torch.Generator().manual_seed(seed)
    x = bkw.sample(n, 5.5, gen, dtype)
    return bkw, x, OracleContext(dim=3, dtype=dtype, generator=gen, exact=bkw, initial=bkw)


def rel_err(s: torch.Tensor, ref: torch.Tensor) -> float:
    return float(((s - ref) ** 2).sum() / (ref ** 2).sum())


# ----------------------------------------------------------------------------- losses
def test_registered() -> None:
    assert "sbtm" in available()


def test_denoising_loss_estimates_fisher_plus_divergence_for_linear_score() -> None:
    """For s = A x + b the difference quotient is exact, (s(x+az) - s(x-az)).z/a = 2 z^T A z, whose
    mean over z ~ N(0, I) is 2 tr A = 2 div s: the loss is within sampling error of
    (1/n) sum |s|^2 + 2 div s (the relative standard deviation here is about 1%, bound 10%)."""
    gen = torch.Generator().manual_seed(1)
    d, n = 3, 4000
    A = -torch.linalg.inv(spd(d, gen))
    b = torch.randn(d, generator=gen, dtype=F64) * 0.3
    s = linear_score(A, b)
    x = torch.randn(n, d, generator=gen, dtype=F64)
    exact = float((s(x) ** 2).sum(1).mean() + 2 * torch.trace(A))
    for a in (0.4, 0.05):  # the noise scale does not matter for a linear field
        z = torch.randn(n, d, generator=gen, dtype=F64)
        est = float(denoising_loss(s, x, z, a))
        assert abs(est - exact) <= 0.1 * abs(exact), (a, est, exact)
    # antithetic: for a linear field the loss does not depend on a at fixed z
    z = torch.randn(n, d, generator=gen, dtype=F64)
    assert float(denoising_loss(s, x, z, 0.4)) == pytest.approx(float(denoising_loss(s, x, z, 0.01)), rel=1e-10)


def test_exact_divergence_loss_equals_analytic_value_for_linear_score() -> None:
    gen = torch.Generator().manual_seed(2)
    d, n = 4, 300
    A = torch.randn(d, d, generator=gen, dtype=F64)   # any matrix: div(Ax + b) = tr A
    b = torch.randn(d, generator=gen, dtype=F64)
    s = linear_score(A, b)
    x = torch.randn(n, d, generator=gen, dtype=F64)
    analytic = float((s(x) ** 2).sum(1).mean() + 2 * torch.trace(A))
    assert float(ism_exact_loss(s, x).detach()) == pytest.approx(analytic, rel=1e-12, abs=1e-12)
    _, div = divergence(s, x)
    assert torch.allclose(div, torch.full((n,), float(torch.trace(A)), dtype=F64), atol=1e-12)


def test_exact_divergence_of_a_network_matches_finite_differences() -> None:
    net = MLP(3, 16, 2, "softsign", F64, torch.device("cpu"))
    net.initialize(torch.Generator().manual_seed(0))
    x = torch.randn(20, 3, generator=torch.Generator().manual_seed(1), dtype=F64)
    _, div = divergence(net, x)
    h = 1e-6
    fd = sum((net(x + h * e)[:, k] - net(x - h * e)[:, k]) / (2 * h)
             for k, e in enumerate(torch.eye(3, dtype=F64)))
    assert torch.allclose(div.detach(), fd.detach(), atol=1e-7)


def test_hutchinson_loss() -> None:
    gen = torch.Generator().manual_seed(3)
    d, n = 3, 4000
    x = torch.randn(n, d, generator=gen, dtype=F64)
    v = torch.randint(0, 2, (2, n, d), generator=gen).to(F64) * 2 - 1
    # diagonal A: v^T A v = tr A for every Rademacher v, so the estimate is exact
    D = torch.diag(torch.tensor([-1.0, -2.0, 0.5], dtype=F64))
    s = linear_score(D, torch.zeros(d, dtype=F64))
    exact = float((s(x) ** 2).sum(1).mean() + 2 * torch.trace(D))
    assert float(ism_hutchinson_loss(s, x, v).detach()) == pytest.approx(exact, rel=1e-12)
    # a full matrix: unbiased, within sampling error
    A = -torch.linalg.inv(spd(d, gen))
    s = linear_score(A, torch.zeros(d, dtype=F64))
    exact = float((s(x) ** 2).sum(1).mean() + 2 * torch.trace(A))
    assert float(ism_hutchinson_loss(s, x, v).detach()) == pytest.approx(exact, rel=0.05)


# ----------------------------------------------------------------------------- settings
@pytest.mark.parametrize("key, value, message", [
    ("lr", -1.0, "oracle.lr: must be positive"),
    ("steps", -1, "oracle.steps: must be >= 0"),
    ("width", 0, "oracle.width: must be >= 1"),
    ("noise_scale", 0.0, "oracle.noise_scale: must be positive"),
    ("batch_size", 0, "oracle.batch_size"),
    ("foo", 1, "oracle.foo: unknown setting"),
    ("activation", "relu6", "oracle.activation"),
])
def test_bad_settings_name_the_key(key: str, value, message: str) -> None:
    with pytest.raises(SettingsError, match=message.replace(".", r"\.")):
        build_oracle({"kind": "sbtm", key: value}, OracleContext(dim=2))


def test_supervised_fit_needs_a_known_initial_score() -> None:
    with pytest.raises(SettingsError, match="oracle.init_fit"):
        build_oracle({"kind": "sbtm", "init_fit": "supervised"}, OracleContext(dim=2))


def test_cli_unknown_setting_exits_2_with_one_line_and_no_output(tmp_path: Path) -> None:
    out = tmp_path / "o.nc"
    r = subprocess.run([sys.executable, "-m", "solvers.run", "cases/fp_ou.yaml", "--set", "oracle.kind=sbtm",
                        "--set", "oracle.foo=1", "--out", str(out), "--quiet"],
                       cwd=ROOT, env=ENV, capture_output=True, text=True)
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "oracle.foo" in lines[0] and "unknown setting" in lines[0], r.stderr
    assert not out.exists() and not list(tmp_path.iterdir())


# ----------------------------------------------------------------------------- warm start
def test_save_and_warm_start(tmp_path: Path) -> None:
    gen = torch.Generator().manual_seed(0)
    g = gaussian(torch.zeros(2, dtype=F64), torch.diag(torch.tensor([1.0, 0.5], dtype=F64)))
    x = g.sample(300, gen)
    ctx = OracleContext(dim=2, generator=gen, initial=g)
    a = build_oracle({"kind": "sbtm", "width": 32}, ctx)
    a.prepare(x, 0.0)
    assert a.init_info["init_fit_used"] == "supervised" and a.init_info["init_fit_rel_error"] <= 1e-4
    path = tmp_path / "net.pt"
    a.save(path)
    b = build_oracle({"kind": "sbtm", "width": 32, "init_weights": str(path)},
                     OracleContext(dim=2, generator=torch.Generator().manual_seed(5), initial=g))
    b.prepare(x, 0.0)   # auto -> no initial fit: the loaded weights are used as they are
    assert b.init_info["init_fit_used"] == "none"
    assert torch.equal(a._evaluate(x), b._evaluate(x))
    # wrong architecture, wrong dim, garbage file, missing file: SettingsError naming the key
    with pytest.raises(SettingsError, match="oracle.init_weights: .*width"):
        build_oracle({"kind": "sbtm", "width": 16, "init_weights": str(path)}, OracleContext(dim=2))
    with pytest.raises(SettingsError, match="oracle.init_weights: .*dim"):
        build_oracle({"kind": "sbtm", "width": 32, "init_weights": str(path)}, OracleContext(dim=3))
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a torch file")
    with pytest.raises(SettingsError, match="oracle.init_weights: cannot read"):
        build_oracle({"kind": "sbtm", "init_weights": str(bad)}, OracleContext(dim=2))
    torch.save({"something": 1}, bad)
    with pytest.raises(SettingsError, match="not an SBTM network file"):
        build_oracle({"kind": "sbtm", "init_weights": str(bad)}, OracleContext(dim=2))
    with pytest.raises(SettingsError, match="no such file"):
        build_oracle({"kind": "sbtm", "init_weights": str(tmp_path / "none.pt")}, OracleContext(dim=2))


# ----------------------------------------------------------------------------- runs
def run_bkw(n: int, steps: int, settings: dict, dtype=F64, seed: int = 0, t_stages: bool = False):
    """Euler on Maxwell-Landau from the BKW solution at t0 = 5.5, dt = 0.01; scores and errors."""
    bkw, x, ctx = bkw_setup(n, dtype, seed)
    oracle = build_oracle({"kind": "sbtm", **settings}, ctx)
    eq = LandauEquation(0.0, 1 / 24)
    oracle.prepare(x, 5.5)
    scores, errors, losses = [], [], []
    for k in range(steps + 1):
        t = 5.5 + 0.01 * k
        s = oracle.score(x, t)
        scores.append(s)
        errors.append(rel_err(s, bkw.score(x, t)))
        losses.append(oracle.last_loss)
        x = x + 0.01 * eq.velocity(x, s, t)
    return oracle, scores, errors, losses


def test_bkw_score_error_small_run() -> None:
    """n = 500, 15 Euler steps from t0 = 5.5 (the acceptance run, results/sbtm.md, uses n = 2000 for
    100 steps and stays below 0.05). Score matching on fewer particles drifts faster from the exact
    score: measured on seeds 0, 1, 2 the error grows from about 0.002-0.003 after the (capped) initial
    fit to 0.017 / 0.028 / 0.017 after 15 steps. The bound 0.06 leaves a factor 2; the blob score on
    the same particles is far worse (0.17), which the test also checks."""
    from oracles.blob import blob_epsilon, blob_score
    oracle, scores, errors, losses = run_bkw(500, 15, {"init_max_steps": 400})
    assert max(errors) < 0.06, errors
    assert all(math.isfinite(v) for v in losses)
    bkw, x, _ = bkw_setup(500)
    blob = rel_err(blob_score(x, blob_epsilon(x)), bkw.score(x, 5.5))
    assert max(errors) < blob
    assert oracle.calls == 16


def test_deterministic_and_resumable() -> None:
    settings = {"width": 32, "steps": 5, "init_max_steps": 50, "batch_size": 100}
    _, s1, _, l1 = run_bkw(200, 4, settings, seed=3)
    _, s2, _, l2 = run_bkw(200, 4, settings, seed=3)
    assert all(torch.equal(a, b) for a, b in zip(s1, s2)) and l1 == l2
    _, s3, _, _ = run_bkw(200, 4, settings, seed=4)
    assert not torch.equal(s1[-1], s3[-1])

    # state_dict captures everything: continuing from a copy gives identical results
    bkw, x, ctx = bkw_setup(200, seed=3)
    oracle = build_oracle({"kind": "sbtm", **settings}, ctx)
    oracle.prepare(x, 5.5)
    oracle.score(x, 5.5)
    x = x * 1.01
    state = oracle.state_dict()
    first = [oracle.score(x, 5.51), oracle.score(x * 0.99, 5.52)]
    other = build_oracle({"kind": "sbtm", **settings}, OracleContext(dim=3, dtype=F64))
    other.load_state_dict(state)
    second = [other.score(x, 5.51), other.score(x * 0.99, 5.52)]
    assert all(torch.equal(a, b) for a, b in zip(first, second))
    assert other.last_loss == oracle.last_loss


def test_stage_score_reuses_or_trains() -> None:
    bkw, x, ctx = bkw_setup(200)
    for train in (False, True):
        oracle = build_oracle({"kind": "sbtm", "width": 16, "steps": 3, "init_max_steps": 20,
                               "train_stages": train}, bkw_setup(200)[2])
        oracle.prepare(x, 5.5)
        s = oracle.score(x, 5.5)
        before = [p.clone() for p in oracle.net.parameters()]
        loss = oracle.last_loss
        y = x * 1.01
        st = oracle.stage_score(y, 5.505)
        changed = any(not torch.equal(a, b) for a, b in zip(before, oracle.net.parameters()))
        assert changed == train and oracle.last_loss == loss
        if not train:
            assert torch.equal(st, oracle._evaluate(y)) and s.shape == st.shape


@pytest.mark.parametrize("loss", ["denoising", "ism_exact", "ism_hutchinson"])
def test_float32_runs_and_losses(loss: str) -> None:
    oracle, scores, errors, losses = run_bkw(300, 3, {"loss": loss, "width": 32, "init_max_steps": 150},
                                             dtype=torch.float32)
    assert all(s.dtype == torch.float32 and torch.isfinite(s).all() for s in scores)
    assert oracle.net_dtype == torch.float32
    assert all(math.isfinite(v) for v in losses)
    assert max(errors) < 0.2, errors


def test_net_dtype_setting_and_standalone_use() -> None:
    oracle = SBTMOracle(SBTMOracle.Settings(width=16, steps=2, init_max_steps=50, net_dtype="float32"))
    x = torch.randn(100, 2, generator=torch.Generator().manual_seed(0), dtype=F64)
    s = oracle.score(x, 0.0)   # no context: score-matching initial fit, network built from x
    assert s.dtype == F64 and s.shape == x.shape and oracle.net_dtype == torch.float32
    assert oracle.init_info["init_fit_used"] == "score_matching"


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_cuda() -> None:
    bkw, x, _ = bkw_setup(500)
    ctx = OracleContext(dim=3, device=torch.device("cuda"), dtype=F64,
                        generator=torch.Generator().manual_seed(0), initial=bkw)
    oracle = build_oracle({"kind": "sbtm", "init_max_steps": 200}, ctx)
    xc = x.cuda()
    oracle.prepare(xc, 5.5)
    s = oracle.score(xc * 1.001, 5.51)
    assert s.is_cuda and torch.isfinite(s).all()


def test_cli_run_writes_loss_and_settings(tmp_path: Path) -> None:
    out = tmp_path / "ou.nc"
    r = subprocess.run([sys.executable, "-m", "solvers.run", "cases/fp_ou.yaml", "--oracle", "sbtm",
                        "--set", "particles=300", "--set", "time.end=0.2", "--set", "output.every=2",
                        "--set", "time.integrator=heun", "--out", str(out), "--quiet"],
                       cwd=ROOT, env=ENV, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    with netCDF4.Dataset(out) as ds:
        loss = ds["oracle_loss"][:]
        attrs = yaml.safe_load(ds.getncattr("oracle_settings"))
    assert len(loss) == 6 and all(math.isfinite(float(v)) for v in loss)
    assert attrs["kind"] == "sbtm" and attrs["width"] == 100 and attrs["init_fit_used"] == "supervised"


@pytest.mark.slow
def test_bkw_acceptance_n2000() -> None:
    """The acceptance run of issues 3 and 20 with the default settings: n = 2000, t 5.5 -> 8.5
    (300 Euler steps); the relative score error averaged over every 10th step (the frames of
    cases/landau_bkw.yaml) is at most 0.05 (measured with the CLI on seeds 0, 1, 2, 7, 91:
    results/sbtm.md), and below 0.05 at every such frame of the first time unit."""
    _, _, errors, _ = run_bkw(2000, 300, {})
    frames = errors[::10]
    assert sum(frames) / len(frames) <= 0.05, frames
    assert max(frames[:11]) < 0.05, frames


def test_init_max_steps_default_depends_on_the_fit() -> None:
    """``init_max_steps: null`` means 200 L-BFGS evaluations for the supervised fit (more built a
    steep, long-lived feature at v = 0 on BKW: results/sbtm.md) and 2000 Adam steps for the
    score-matching fit; the value used is recorded."""
    bkw, x, ctx = bkw_setup(300)
    oracle = build_oracle({"kind": "sbtm", "width": 16}, ctx)
    oracle.prepare(x, 5.5)   # the BKW score at t0 is nearly singular: the fit stops at the cap
    info = oracle.init_info
    assert info["init_max_steps_used"] == 200 and 150 <= info["init_fit_steps"] <= 201, info
    sm = SBTMOracle(SBTMOracle.Settings(width=8, init_fit="score_matching"))
    sm.prepare(torch.randn(50, 2, generator=torch.Generator().manual_seed(0), dtype=F64), 0.0)
    assert sm.init_info["init_max_steps_used"] == 2000 == sm.init_info["init_fit_steps"]
    with pytest.raises(SettingsError, match="oracle.init_max_steps: must be >= 0"):
        build_oracle({"kind": "sbtm", "init_max_steps": -1}, OracleContext(dim=2))


def test_softsign_first_and_second_derivatives() -> None:
    from oracles.sbtm import softsign
    x = torch.randn(50, generator=torch.Generator().manual_seed(0), dtype=F64, requires_grad=True)
    assert torch.equal(softsign(x), torch.nn.functional.softsign(x))
    assert torch.autograd.gradcheck(softsign, (x,))
    assert torch.autograd.gradgradcheck(softsign, (x,))


def test_init_fit_none_needs_initial_weights() -> None:
    """Bug (h): ``init_fit: none`` without ``init_weights`` ran an untrained network at t0."""
    with pytest.raises(SettingsError, match="oracle.init_fit: 'none' .*init_weights"):
        build_oracle({"kind": "sbtm", "init_fit": "none"}, OracleContext(dim=2))
