"""DiScoFormer: equivariance, exact GMM targets, training, checkpoints, TTT and the oracle."""
from __future__ import annotations

import copy
import json
import math
import shutil

import pytest
import torch
from torch import Tensor

import oracles.discoformer  # noqa: F401  (registers the oracle)
from landau.densities import FAMILIES, Mixture
from oracles.discoformer.data import (held_out, make_batch, random_density, random_gmm, random_kinetic,
                                      random_rotation, relative_score_mse, training_batch)
from oracles.discoformer.model import DiScoFormer, ModelConfig, whiten
from oracles.discoformer.oracle import WEIGHTS_DIR, load_model, shipped_dims
from oracles.discoformer.train import get_args, loss_fn, train
from oracles.discoformer.ttt import consistency_loss, adapt_at_test_time
from oracles.kde import bandwidth, kde_score
from oracles.registry import OracleContext, available, build_oracle
from oracles.settings import SettingsError

torch.set_num_threads(1)


def tiny(dim: int = 2, dtype: torch.dtype = torch.float64, dropout: float = 0.0) -> DiScoFormer:
    torch.manual_seed(0)
    return DiScoFormer(ModelConfig(dim, width=16, layers=2, heads=2, ffn=32, dropout=dropout)).to(dtype).eval()


def sample(n: int = 64, dim: int = 2, seed: int = 0, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    return held_out(1, dim, n, seed)[1][0].to(dtype)


# --- equivariance ---------------------------------------------------------------------------

def test_permutation_equivariance():
    model, x = tiny(), sample()
    perm = torch.randperm(len(x), generator=torch.Generator().manual_seed(1))
    logf, s = model(x)
    logf_p, s_p = model(x[perm])
    torch.testing.assert_close(logf_p, logf[perm], rtol=0, atol=1e-12)
    torch.testing.assert_close(s_p, s[perm], rtol=0, atol=1e-12)


@pytest.mark.parametrize("c", [1e-3, 0.37, 25.0])
def test_translation_and_isotropic_scaling_equivariance(c):
    """x -> c x + b:  log f -> log f - d log c,  s -> s / c (exact by the whitening)."""
    model, x = tiny(), sample()
    y = 3 * torch.randn(20, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    b = torch.tensor([5.0, -7.0], dtype=torch.float64)
    for q, q_t in ((None, None), (y, c * y + b)):  # queries = context, and independent queries
        logf, s = model(x, q)
        logf_t, s_t = model(c * x + b, q_t)
        torch.testing.assert_close(logf_t, logf - 2 * math.log(c), rtol=1e-9, atol=1e-9)
        torch.testing.assert_close(s_t * c, s, rtol=1e-9, atol=1e-9)


def test_whitening_is_a_symmetric_inverse_square_root():
    x = sample(200)[None] @ torch.tensor([[2.0, 0.5], [0.0, 0.3]], dtype=torch.float64)
    w = whiten(x, 0.0)
    xw = w.apply(x)[0]
    torch.testing.assert_close(torch.cov(xw.T, correction=0), torch.eye(2, dtype=torch.float64))  # 1/n
    torch.testing.assert_close(w.A, w.A.mT)
    torch.testing.assert_close(w.A @ w.A_inv, torch.eye(2, dtype=torch.float64)[None])
    torch.testing.assert_close(w.logdet, -0.5 * torch.logdet(torch.cov(x[0].T, correction=0))[None])


def test_queries_at_context_points_chunks_and_batches_agree():
    model, x = tiny(), sample()
    logf, s = model(x)
    logf_q, s_q = model(x, x.clone(), query_batch=7)   # cross-attention path, in chunks
    torch.testing.assert_close(logf_q, logf, rtol=0, atol=1e-12)
    torch.testing.assert_close(s_q, s, rtol=0, atol=1e-12)
    xb = torch.stack([x, 2 * x + 1])
    logf_b, s_b = model(xb)
    torch.testing.assert_close(logf_b[0], logf, rtol=0, atol=1e-12)
    torch.testing.assert_close(s_b[1], model(2 * x + 1)[1], rtol=0, atol=1e-12)


def test_context_subsampling_queries_every_point():
    model, x = tiny(), sample(100)
    g = torch.Generator().manual_seed(3)
    logf, s = model(x, context_size=30, generator=g, query_batch=16)
    assert logf.shape == (100,) and s.shape == (100, 2) and torch.isfinite(s).all()


# --- training data -------------------------------------------------------------------------

def test_gmm_targets_match_autograd():
    g = torch.Generator().manual_seed(4)
    gmm = random_gmm(5, 3, g, dtype=torch.float64)
    x = gmm.sample(50, g).requires_grad_(True)
    logf = gmm.log_density(x)
    (grad,) = torch.autograd.grad(logf.sum(), x)
    torch.testing.assert_close(gmm.score(x.detach()), grad, rtol=1e-10, atol=1e-10)
    assert gmm.log_w.exp().sum(-1).sub(1).abs().max() < 1e-12
    far = 1e3 * torch.ones(5, 1, 3, dtype=torch.float64)        # logsumexp: finite far in the tails
    assert torch.isfinite(gmm.log_density(far)).all() and torch.isfinite(gmm.score(far)).all()


def test_gmm_density_integrates_to_one_in_1d():
    g = torch.Generator().manual_seed(5)
    gmm = random_gmm(8, 1, g, dtype=torch.float64)
    grid = torch.linspace(-15, 15, 30001, dtype=torch.float64)
    f = gmm.log_density(grid.expand(8, -1)[..., None]).exp()
    torch.testing.assert_close(torch.trapezoid(f, grid), torch.ones(8, dtype=torch.float64), rtol=1e-8, atol=1e-8)
    # and the samples follow it: sample mean vs the mixture mean
    x = gmm.sample(20000, g)
    mean = (gmm.log_w.exp()[..., None] * gmm.shift).sum(1)
    assert (x.mean(1) - mean).abs().max() < 0.1


def test_generator_is_reproducible():
    a = random_density(3, 2, torch.Generator().manual_seed(6))
    b = random_density(3, 2, torch.Generator().manual_seed(6))
    assert torch.equal(a.M, b.M) and torch.equal(a.theta, b.theta) and torch.equal(a.log_w, b.log_w)


def one_family(family: int, theta: list[float], dim: int) -> Mixture:
    """len(theta) single-component densities of one family, each under a random affine map."""
    g = torch.Generator().manual_seed(10 + family)
    B, f64 = len(theta), torch.float64
    M = random_rotation((B, 1), dim, g, f64) * (0.5 + torch.rand(B, 1, dim, 1, generator=g, dtype=f64))
    return Mixture(torch.zeros(B, 1, dtype=f64), torch.full((B, 1), family), torch.tensor(theta, dtype=f64)[:, None],
                   M, torch.randn(B, 1, dim, generator=g, dtype=f64))


FAMILY_THETAS = {"gauss": [0.0], "bkw": [0.0, 0.3, 1.0], "shell": [0.5, 3.0, 8.0], "student": [3.0, 12.0],
                 "laplace": [0.0]}


@pytest.mark.parametrize("dim", [2, 3])
@pytest.mark.parametrize("name", FAMILIES)
def test_family_score_is_the_gradient_of_its_log_density(name, dim):
    """Central differences of log f (h = 1e-5 in float64: truncation h^2 |f'''| + rounding 1e-16 / h,
    both far below the 1e-5 tolerance) against the analytic score."""
    mix = one_family(FAMILIES.index(name), FAMILY_THETAS[name], dim)
    x = mix.sample(200, torch.Generator().manual_seed(1))
    h, eye = 1e-5, torch.eye(dim, dtype=torch.float64)
    fd = torch.stack([(mix.log_density(x + h * e) - mix.log_density(x - h * e)) / (2 * h) for e in eye], -1)
    torch.testing.assert_close(mix.score(x), fd, rtol=1e-5, atol=1e-5)


def test_laplace_sampler_is_finite_when_the_uniform_draw_is_zero(monkeypatch):
    """torch.rand returns exactly 0 with probability 2^-24 per float32 draw; -log(U) then gave an
    infinite particle (it stopped d = 10 training at step 981). Force U = 0 and U -> 1."""
    mix = one_family(FAMILIES.index("laplace"), [0.0, 0.0], 10).to("cpu")
    for value in (0.0, 1.0 - 2.0 ** -24):
        monkeypatch.setattr(torch, "rand", lambda *a, value=value, **k: torch.full(a, value, dtype=k.get("dtype")))
        x = mix.sample(50, torch.Generator().manual_seed(0))
        assert torch.isfinite(x).all() and torch.isfinite(mix.score(x)).all()


def cauchy_proposal(dim: int, scale: float) -> Mixture:
    """The isotropic Cauchy (Student-t, nu = 1) of the given scale: heavier tails than every family."""
    f64 = torch.float64
    return Mixture(torch.zeros(1, 1, dtype=f64), torch.full((1, 1), FAMILIES.index("student")),
                   torch.ones(1, 1, dtype=f64), scale * torch.eye(dim, dtype=f64)[None, None],
                   torch.zeros(1, 1, dim, dtype=f64))


def importance_mass(mix: Mixture, q: Mixture, n: int, g: torch.Generator) -> tuple[Tensor, Tensor]:
    """Weights f/q at n draws y ~ q, (B, n), with the draws; E_q[f/q] = int f."""
    y = q.sample(n, g)
    return (mix.log_density(y.expand(mix.log_w.shape[0], -1, -1)) - q.log_density(y)).exp(), y


def standard_error(v: Tensor) -> Tensor:
    return v.std(-1) / math.sqrt(v.shape[-1])


@pytest.mark.parametrize("dim", [2, 3])
@pytest.mark.parametrize("name", FAMILIES)
def test_family_integrates_to_one_and_its_sampler_follows_it(name, dim):
    """Monte Carlo with a Cauchy proposal q (f/q bounded, so the estimates have finite variance):
    int f = E_q[f/q] = 1, and E_f|x|^2 from the sampler equals E_q[|x|^2 f/q]; both within
    5 standard errors (a false alarm has probability ~1e-6 per check)."""
    mix = one_family(FAMILIES.index(name), FAMILY_THETAS[name], dim)
    g = torch.Generator().manual_seed(2)
    w, y = importance_mass(mix, cauchy_proposal(dim, 6.0), 200_000, g)
    assert ((w.mean(-1) - 1).abs() < 5 * standard_error(w)).all(), (w.mean(-1), standard_error(w))
    r2_q, r2_f = w * y.pow(2).sum(-1), mix.sample(200_000, g).pow(2).sum(-1)
    tol = 5 * (standard_error(r2_q) ** 2 + standard_error(r2_f) ** 2).sqrt()
    assert ((r2_q.mean(-1) - r2_f.mean(-1)).abs() < tol).all(), (r2_q.mean(-1), r2_f.mean(-1), tol)


def test_prior_mixtures_have_finite_targets_and_unit_mass():
    """Whole prior draws (kinetic mixtures and the paper's GMMs): finite targets, int f = 1 as above."""
    g = torch.Generator().manual_seed(3)
    for mix in (random_kinetic(6, 2, g, dtype=torch.float64), random_gmm(6, 2, g, dtype=torch.float64)):
        x = mix.sample(500, g)
        assert torch.isfinite(mix.log_density(x)).all() and torch.isfinite(mix.score(x)).all()
        w = importance_mass(mix, cauchy_proposal(2, 15.0), 100_000, g)[0]
        assert ((w.mean(-1) - 1).abs() < 5 * standard_error(w)).all(), w.mean(-1)


def test_training_batches_keep_the_points_per_step_about_constant():
    g = torch.Generator().manual_seed(8)
    sizes = [training_batch(2048, 2, (128, 2048), 8, g).x.shape[:2] for _ in range(30)]
    assert all(B == max(1, 2048 // n) for B, n in sizes)
    assert min(n for _, n in sizes) < 256 and max(n for _, n in sizes) > 1024


# --- training -------------------------------------------------------------------------------

TINY_RUN = ("--dim 2 --steps 6 --width 16 --layers 1 --heads 2 --ffn 32 --points 64 --n-min 16 --n-max 32 "
            "--n-query 8 --val-gmms 2 --val-n 64 --val-bkw 1 --val-bkw-n 64 --warmup 2 --dropout 0.1 "
            "--threads 1").split()


def test_a_few_training_steps_reduce_the_loss():
    g = torch.Generator().manual_seed(7)
    batch = make_batch(random_gmm(4, 2, g), 128, 32, g)
    model = tiny(dtype=torch.float32).train()
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    first = loss_fn(model, batch, 0.2, "whitened").item()
    for _ in range(30):
        loss = loss_fn(model, batch, 0.2, "whitened")
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.7 * first


def test_checkpoint_resume_is_bit_for_bit(tmp_path):
    files = lambda name: ["--ckpt", str(tmp_path / f"{name}_ckpt.pt"), "--out", str(tmp_path / f"{name}.pt")]
    straight = train(get_args(TINY_RUN + files("a")))
    first = train(get_args(TINY_RUN + files("b") + ["--stop-after", "3", "--log-interval", "1"]))
    with open(tmp_path / "b_ckpt.jsonl", "a") as log:      # as if killed after step 3's checkpoint
        log.write('{"step": 4, "loss": 1.0}\n')
    rest = train(get_args(files("b") + ["--resume", str(tmp_path / "b_ckpt.pt")]))  # the run's own options
    steps = [json.loads(r)["step"] for r in (tmp_path / "b_ckpt.jsonl").read_text().splitlines()]
    assert steps == sorted(set(steps)) and steps[-1] == 6
    assert len(straight) == 6 and first + rest == straight
    a = torch.load(tmp_path / "a.pt", weights_only=True)
    b = torch.load(tmp_path / "b.pt", weights_only=True)
    assert a["steps"] == b["steps"] == 6 and a["dim"] == 2 and (tmp_path / "a.json").is_file()
    for k, v in a["state_dict"].items():
        assert torch.equal(v, b["state_dict"][k]), k
    assert load_model(tmp_path / "a.pt", 2).cfg.width == 16


# --- test-time training ---------------------------------------------------------------------

def test_ttt_leaves_the_model_untouched_and_lowers_the_consistency_loss():
    model, x = tiny(dtype=torch.float32), sample(64, dtype=torch.float32)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    adapted = adapt_at_test_time(model, x, steps=5, lr=1e-3)
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), k
    assert any(not torch.equal(v, before[k]) for k, v in adapted.state_dict().items())
    assert consistency_loss(adapted, x, x).item() < consistency_loss(model, x, x).item()


# --- the oracle -----------------------------------------------------------------------------

def test_oracle_is_registered():
    assert "discoformer" in available()


@pytest.mark.parametrize("dim", [2, 3, 5, 10])
def test_shipped_weights_give_a_sensible_gaussian_score(dim):
    """N(0, diag(1.8, 0.2, 1, 1, ...)[:d]), n = 1000. Score: the network must beat the Scott KDE (12-13 %
    relative MSE in d = 2, 23-25 % in d = 3 on this sample) and stay below 10 % (the zero predictor
    scores 100 %; the shipped weights give 3-4 % in d = 2 and 2-3 % in d = 3 on such samples).
    log f: the MSE must stay below a quarter of Var(log f*) = d/2, i.e. the estimate explains
    at least 75 % of the variation of the exact log-density over the sample."""
    x = torch.randn(1000, dim, dtype=torch.float64, generator=torch.Generator().manual_seed(8))
    var = torch.tensor([1.8, 0.2] + [1.0] * (dim - 2), dtype=torch.float64)
    x = x * var.sqrt()
    exact = -x / var
    oracle = build_oracle({"kind": "discoformer"}, OracleContext(dim=dim))
    s = oracle.score(x, 0.0)
    assert s.dtype == torch.float64 and s.shape == x.shape
    err = relative_score_mse(s[None], exact[None]).item()
    kde = relative_score_mse(kde_score(x, x, bandwidth(x, "scott"))[None], exact[None]).item()
    assert err < 10.0 and err < kde, (err, kde)
    logf = oracle.log_density(x, 0.0)
    exact_logf = -0.5 * (x**2 / var).sum(1) - 0.5 * torch.log(2 * math.pi * var).sum()
    assert (logf - exact_logf).pow(2).mean() < 0.25 * dim / 2


def test_oracle_subsampled_context_and_ttt_run():
    x = torch.randn(300, 2, dtype=torch.float32, generator=torch.Generator().manual_seed(9))
    ctx = OracleContext(dim=2, dtype=torch.float32, generator=torch.Generator().manual_seed(0))
    oracle = build_oracle({"kind": "discoformer", "context": 100, "ttt_steps": 2, "query_batch": 128}, ctx)
    before = {k: v.clone() for k, v in oracle.model.state_dict().items()}
    s = oracle.score(x, 0.0)
    assert s.shape == x.shape and torch.isfinite(s).all()
    assert all(torch.equal(v, before[k]) for k, v in oracle.model.state_dict().items())


def test_warm_ttt_continues_across_calls_and_resumes_from_its_state():
    x = torch.randn(300, 2, dtype=torch.float32, generator=torch.Generator().manual_seed(9))
    make = lambda: build_oracle({"kind": "discoformer", "ttt_steps": 1, "ttt_lr": 1e-3, "ttt_queries": 64},
                                OracleContext(dim=2, dtype=torch.float32, generator=torch.Generator().manual_seed(0)))
    a, b = make(), make()
    a.score(x, 0.0)
    first = {k: v.clone() for k, v in a.adapter.model.state_dict().items()}
    b.load_state_dict(copy.deepcopy(a.state_dict()))              # as if read back from a checkpoint file
    b.generator.set_state(a.generator.get_state())
    s_a, s_b = a.score(x, 0.0), b.score(x, 0.0)
    torch.testing.assert_close(s_a, s_b, rtol=0, atol=0)                  # resumed bit for bit
    assert any(not torch.equal(v, first[k]) for k, v in a.adapter.model.state_dict().items())  # kept adapting
    assert make().state_dict() == {}


def test_default_context_is_the_trained_maximum_and_subsets_average(tmp_path):
    """By default a sample larger than the weights' largest training context m (``train.n_max`` of
    the file; here a copy of the shipped d = 2 weights that says m = 60) is subsampled to m (one
    random subset per call, so two calls differ), a smaller one is used whole (deterministic);
    ``subsets: k`` averages k subset predictions (before the corrections); null uses every point."""
    blob = torch.load(WEIGHTS_DIR / "discoformer_d2.pt", weights_only=True)
    m = 60
    torch.save({**blob, "train": {**blob.get("train", {}), "n_max": m}}, tmp_path / "w.pt")
    make = lambda **kw: build_oracle({"kind": "discoformer", "weights": str(tmp_path / "w.pt"), **kw},
                                     OracleContext(dim=2, dtype=torch.float32, generator=torch.Generator().manual_seed(0)))
    oracle = make()
    assert oracle.context_size == m
    x = torch.randn(m + 100, 2, dtype=torch.float32, generator=torch.Generator().manual_seed(9))
    assert not torch.equal(oracle.score(x, 0.0), oracle.score(x, 0.0))
    torch.testing.assert_close(oracle.score(x[:m - 10], 0.0), oracle.score(x[:m - 10], 0.0), rtol=0, atol=0)
    full = make(context=None, stein_degree=0)
    torch.testing.assert_close(full.score(x, 0.0), oracle.model(x)[1], rtol=0, atol=0)
    g = torch.Generator().manual_seed(0)
    expected = sum(oracle.model(x, context_size=m, generator=g)[1] for _ in range(3)) / 3
    torch.testing.assert_close(make(subsets=3, stein_degree=0, kernel_correction=False).score(x, 0.0), expected,
                               rtol=1e-6, atol=1e-6)


def test_a_frame_is_the_network_on_the_rotated_sample_rotated_back():
    """rotation=Q runs the network on X_w Q^T and returns s Q: the same as feeding the rotated
    sample X Q^T (its whitening is the rotated whitening) and rotating the score back; an untrained
    network is not rotation equivariant, so the frame changes the answer."""
    model, g = tiny(3), torch.Generator().manual_seed(4)
    x = torch.randn(200, 3, dtype=torch.float64, generator=g) @ torch.diag(torch.tensor([2.0, 1.0, 0.3], dtype=torch.float64))
    q = random_rotation((), 3, g, torch.float64)
    logf_q, s_q = model(x, rotation=q)
    logf_r, s_r = model(x @ q.T)
    torch.testing.assert_close(logf_q, logf_r)
    torch.testing.assert_close(s_q, s_r @ q)
    assert (s_q - model(x)[1]).abs().max() > 1e-3


def test_rotations_average_the_identity_and_random_frames():
    """``rotations: r``: the mean over the identity frame and r - 1 Haar-random frames drawn from the
    oracle's generator (after its context subsets), log f and score alike."""
    make = lambda **kw: build_oracle({"kind": "discoformer", **kw}, OracleContext(
        dim=2, dtype=torch.float32, generator=torch.Generator().manual_seed(0)))
    x = torch.randn(300, 2, dtype=torch.float32, generator=torch.Generator().manual_seed(9))
    oracle = make(rotations=3, stein_degree=0)
    g = torch.Generator().manual_seed(0)
    frames = [None] + [random_rotation((), 2, g) for _ in range(2)]
    outs = [oracle.model(x, rotation=q) for q in frames]
    expected = [sum(o) / 3 for o in zip(*outs)]
    torch.testing.assert_close(oracle.log_density(x, 0.0), expected[0], rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(make(rotations=3, stein_degree=0).score(x, 0.0), expected[1], rtol=1e-6, atol=1e-6)
    assert not torch.allclose(expected[1], outs[0][1], rtol=0, atol=1e-7)


def test_missing_weights_name_the_available_dims():
    with pytest.raises(SettingsError, match=r"dim=7.*dim \[2, 3, 5, 10\]"):
        build_oracle({"kind": "discoformer"}, OracleContext(dim=7))
    assert shipped_dims() == [2, 3, 5, 10]


def test_wrong_dimension_is_a_settings_error():
    path = str(WEIGHTS_DIR / "discoformer_d3.pt")
    with pytest.raises(SettingsError, match=r"trained for dim=3.*dim=2.*\[2, 3, 5, 10\]"):
        build_oracle({"kind": "discoformer", "weights": path}, OracleContext(dim=2))


def test_truncated_or_foreign_weights_are_settings_errors(tmp_path):
    good = (WEIGHTS_DIR / "discoformer_d2.pt").read_bytes()
    (tmp_path / "cut.pt").write_bytes(good[: len(good) // 2])
    with pytest.raises(SettingsError, match="truncated or corrupt"):
        build_oracle({"kind": "discoformer", "weights": str(tmp_path / "cut.pt")}, OracleContext(dim=2))
    blob = torch.load(WEIGHTS_DIR / "discoformer_d2.pt", weights_only=True)
    torch.save({**blob, "format_version": 99}, tmp_path / "v99.pt")
    with pytest.raises(SettingsError, match="format version 99"):
        build_oracle({"kind": "discoformer", "weights": str(tmp_path / "v99.pt")}, OracleContext(dim=2))
    shutil.copy(WEIGHTS_DIR / "discoformer_d2.json", tmp_path / "not_weights.pt")
    with pytest.raises(SettingsError, match="cannot read"):
        build_oracle({"kind": "discoformer", "weights": str(tmp_path / "not_weights.pt")}, OracleContext(dim=2))


def test_bad_settings_are_rejected():
    with pytest.raises(SettingsError, match="context"):
        build_oracle({"kind": "discoformer", "context": 0}, OracleContext(dim=2))
    with pytest.raises(SettingsError, match="subsets"):
        build_oracle({"kind": "discoformer", "subsets": 0}, OracleContext(dim=2))
    with pytest.raises(SettingsError, match="rotations"):
        build_oracle({"kind": "discoformer", "rotations": 0}, OracleContext(dim=2))
    with pytest.raises(SettingsError, match="unknown setting"):
        build_oracle({"kind": "discoformer", "bandwidth": 1.0}, OracleContext(dim=2))


def test_held_out_shapes_have_consistent_targets():
    """Evaluation samplers: the score is the gradient of log f (autograd), and the super-Gaussian's
    log f integrates to 1 (trapezoid rule on [-3, 3]^2, where exp(-|x|^4) < 1e-35 outside)."""
    from oracles.discoformer.evaluate import DISTRIBUTIONS, super_gaussian_sample
    for name, draw in DISTRIBUTIONS.items():
        x, logf, s = draw(2, 200, 0)
        assert x.shape == s.shape == (200, 2) and logf.shape == (200,), name
    x, _, s = super_gaussian_sample(2, 100, 1)
    x = x.double().requires_grad_(True)
    r2 = x.pow(2).sum(1)
    (grad,) = torch.autograd.grad((-r2**2).sum(), x)
    torch.testing.assert_close(s.double(), grad, rtol=1e-4, atol=1e-4)
    t = torch.linspace(-3, 3, 1201, dtype=torch.float64)
    grid = torch.stack(torch.meshgrid(t, t, indexing="ij"), -1).reshape(-1, 2)
    x0, logf0, _ = super_gaussian_sample(2, 1, 0)
    minus_log_z = logf0[0].double() + x0.double().pow(2).sum() ** 2           # log f = -|x|^4 - log Z
    f = torch.exp(-grid.pow(2).sum(1) ** 2 + minus_log_z).reshape(1201, 1201)
    assert abs(torch.trapezoid(torch.trapezoid(f, t), t).item() - 1) < 1e-5


def test_resume_keeps_writing_where_the_run_wrote(tmp_path) -> None:
    """``--resume CKPT`` without --ckpt/--out/--log continues into the run's own files (it used to
    fall back to out/), and given paths still win."""
    saved = {"dim": 3, "ckpt": str(tmp_path / "run.pt"), "out": str(tmp_path / "w.pt"), "log": str(tmp_path / "run.jsonl"),
             "stop_after": 10, "threads": 4}
    torch.save({"args": saved}, tmp_path / "run.pt")
    args = get_args(["--resume", str(tmp_path / "run.pt")])
    assert (args.ckpt, args.out, args.log) == (saved["ckpt"], saved["out"], saved["log"])
    assert args.stop_after is None and args.threads is None          # this invocation's runtime options
    args = get_args(["--resume", str(tmp_path / "run.pt"), "--log", str(tmp_path / "other.jsonl")])
    assert args.log == str(tmp_path / "other.jsonl") and args.ckpt == saved["ckpt"]


def test_paper_table_rows_and_published_numbers(capsys):
    """``evaluate --paper``: one row per (d, n), the ratio column equals its two neighbours' ratio,
    and the published numbers appear where the paper has them (d = 2, n = 256)."""
    from oracles.discoformer.evaluate import main as evaluate

    evaluate(["--paper", str(WEIGHTS_DIR / "discoformer_d2.pt"), str(WEIGHTS_DIR / "discoformer_d3.pt"),
              "--n", "256", "300", "--trials", "1"])
    rows = [r.split("|")[1:-1] for r in capsys.readouterr().out.splitlines()[2:]]
    assert [(int(r[0]), int(r[1])) for r in rows] == [(2, 256), (2, 300), (3, 256), (3, 300)]
    for r in rows:
        net, scott = float(r[2]), float(r[3])
        assert 0 < net < 100 and 0 < scott < 100 and float(r[5]) == pytest.approx(net / scott, abs=0.006)
    assert [float(v) for v in rows[0][6:8]] == [14.67, 43.8] and rows[1][6].strip() == "-"


def test_warm_start_from_another_dimension_copies_the_trunk():
    """--init with the d = 5 weights into a d = 10 model: every dimension-free tensor is copied,
    the d-sized embedding and score head keep their fresh values; another width is refused."""
    from oracles.discoformer.train import warm_start

    source = load_model(WEIGHTS_DIR / "discoformer_d5.pt", 5).state_dict()
    cfg = dict(width=64, layers=3, heads=4, ffn=256, dropout=0.0)
    model = DiScoFormer(ModelConfig(10, **cfg))
    fresh = {k: v.clone() for k, v in model.state_dict().items()}
    warm_start(model, str(WEIGHTS_DIR / "discoformer_d5.pt"))
    for k, v in model.state_dict().items():
        if k.startswith(("embed.", "head_score.")):
            assert torch.equal(v, fresh[k])
        else:
            assert torch.equal(v, source[k]), k
    with pytest.raises(SettingsError, match="--init"):
        warm_start(DiScoFormer(ModelConfig(10, **{**cfg, "width": 32, "ffn": 128})), str(WEIGHTS_DIR / "discoformer_d5.pt"))
