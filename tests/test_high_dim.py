"""High dimension (the paper's d = 100 test): the 2-mode diagonal prior, the moment head, the
closed-form Stein correction, the matrix-product distance path of the pair sums, the evaluation."""
from __future__ import annotations

import math

import pytest
import torch

from landau import pairs
from oracles.blob import blob_epsilon, blob_score
from oracles.discoformer.data import PRIORS, held_out, random_two_mode_diagonal, step_plan, step_sets
from oracles.discoformer.evaluate_two_mode import best_kde, errors, hidden_sample
from oracles.discoformer.model import DiScoFormer, ModelConfig
from oracles.discoformer.moments import V_MIN, MomentHead
from oracles.discoformer.stein import stein_corrected
from oracles.discoformer.train import get_args, train, warm_start
from oracles.expfam import score_matching_fit
from oracles.kde import kde_log_density, kde_score

torch.set_num_threads(1)


# --- the prior --------------------------------------------------------------------------------

def test_two_mode_diagonal_prior_draws_the_stated_family():
    g = torch.Generator().manual_seed(0)
    m = random_two_mode_diagonal(3, 7, g)
    assert torch.allclose(m.log_w.exp(), torch.full((3, 2), 0.5))
    var = torch.diagonal(m.M, dim1=-2, dim2=-1) ** 2
    assert torch.equal(m.M, torch.diag_embed(torch.diagonal(m.M, dim1=-2, dim2=-1)))      # axis-aligned
    assert var.min() >= 0.2 - 1e-6 and var.max() <= 1.0 + 1e-6 and m.shift.abs().max() <= 1.0
    x = m.sample(4000, g)
    assert x.shape == (3, 4000, 7) and torch.isfinite(m.score(x)).all()
    assert PRIORS["two-mode-diagonal"] is random_two_mode_diagonal
    density, sample = held_out(2, 7, 50, 5, prior="two-mode-diagonal")
    assert sample.shape == (2, 50, 7) and density.shift.shape == (2, 2, 7)


def test_step_sets_draw_every_set_from_the_given_prior():
    plan = step_plan(256, (64, 128), 0, 3, gmm_fraction=0.0)
    batch = step_sets(plan, 4, 8, 0, 3, range(plan.sets), prior="two-mode-diagonal")
    assert batch.x.shape == (plan.sets, plan.n_x, 4) and batch.y.shape == (plan.sets, 8, 4)
    assert torch.isfinite(batch.score_x).all()


# --- the moment head ----------------------------------------------------------------------------

def test_moment_head_starts_as_the_fitted_gaussian():
    """W_q = 0: uniform attention, mu = 0, v = 1 + V_MIN on the whitened sample, so the score is
    the fitted Gaussian's -C^-1 (x - m) up to the whitening's regulariser and V_MIN (~1e-3)."""
    torch.manual_seed(0)
    model = DiScoFormer(ModelConfig(6, width=16, layers=1, heads=2, ffn=32, dropout=0.0, moment_head=True)).double()
    x = held_out(1, 6, 500, 1, prior="two-mode-diagonal")[1][0].double()
    logf, score = model(x)
    m, C = x.mean(0), torch.cov(x.T, correction=0)
    gauss = -(x - m) @ torch.linalg.inv(C)
    assert (score - gauss).norm() / gauss.norm() < 3e-3
    logf_gauss = torch.distributions.MultivariateNormal(m, C).log_prob(x)
    assert (logf - logf_gauss).abs().max() < 0.05


def test_moment_head_attending_within_modes_gives_each_mode_its_own_diagonal_gaussian():
    """Tokens that label the mode (one-hot) and q = k = 20 x: attention is uniform inside the
    query's mode, so mu and v are that mode's sample mean and variance per coordinate."""
    g = torch.Generator().manual_seed(2)
    d, n = 5, 400
    label = torch.arange(n) % 2
    centres, scales = torch.tensor([[4.0] * d, [-4.0] * d]), torch.rand(2, d, generator=g) + 0.3
    x = (centres[label] + scales[label] * torch.randn(n, d, generator=g)).double()[None]
    h = torch.nn.functional.one_hot(label, 2).double()[None]
    head = MomentHead(2, d, key_dim=2).double()
    with torch.no_grad():
        for lin in (head.q, head.k):
            lin.weight.copy_(20 * torch.eye(2))
            lin.bias.zero_()
        head.k_frame.weight.zero_()
    log_g, s_g = head(h, x, h, x, torch.eye(d, dtype=x.dtype)[None])
    for k in range(2):
        xk = x[0, label == k]
        mu, v = xk.mean(0), xk.var(0, unbiased=False) + V_MIN
        torch.testing.assert_close(s_g[0, label == k], -(xk - mu) / v, rtol=1e-9, atol=1e-9)
        ref = -0.5 * ((xk - mu) ** 2 / v + torch.log(2 * math.pi * v)).sum(-1)
        torch.testing.assert_close(log_g[0, label == k], ref, rtol=1e-9, atol=1e-9)


def test_the_principal_frame_lets_a_fixed_head_separate_two_distant_modes():
    """Logits 2 u_1(y) u_1(x_j) on the first principal coordinate (``init_principal(2)``): on a
    2-mode diagonal GMM in d = 40 the score error halves against the fitted Gaussian's (measured
    0.5x in d = 100 as well), whatever the direction between the means. A rotated copy of the
    sample gives the same logits (the frame rotates along), but its modes are no longer
    axis-aligned, so the per-coordinate variances miss and it is only as good as the Gaussian."""
    torch.manual_seed(0)
    d = 40
    model = DiScoFormer(ModelConfig(d, width=16, layers=1, heads=2, ffn=32, dropout=0.0, moment_head=True)).double()
    model.moments.init_principal(2.0)
    x, _, score_true = hidden_sample(d, 1000, 7)
    m, C = x.mean(0), torch.cov(x.T, correction=0)
    gauss = ((-(x - m) @ torch.linalg.inv(C) - score_true) ** 2).sum(-1).mean()
    with torch.no_grad():
        score = model(x)[1]
        q = torch.linalg.qr(torch.randn(d, d, dtype=x.dtype)).Q
        rotated = model(x @ q)[1] @ q.T                      # the same density, rotated, and back
    assert ((score - score_true) ** 2).sum(-1).mean() < 0.6 * gauss
    assert ((rotated - score_true) ** 2).sum(-1).mean() < 1.1 * gauss


def test_training_with_the_prior_and_the_moment_head_and_a_warm_start(tmp_path):
    """A tiny run with --prior two-mode-diagonal --moment-head: the options reach the weights file
    and the validation; a warm start from a file without the head leaves both heads at zero."""
    run = ("--dim 3 --steps 2 --width 16 --layers 1 --heads 2 --ffn 32 --points 64 --n-min 32 --n-max 32 "
           "--n-query 8 --val-gmms 1 --val-n 64 --val-bkw 1 --val-bkw-n 64 --warmup 1 --dropout 0 --threads 1 "
           "--prior two-mode-diagonal --moment-head").split()
    files = ["--ckpt", str(tmp_path / "c.pt"), "--out", str(tmp_path / "w.pt")]
    assert len(train(get_args(run + files))) == 2
    w = torch.load(tmp_path / "w.pt", weights_only=True)
    assert w["config"]["moment_head"] and w["train"]["prior"] == "two-mode-diagonal"
    assert "two-mode-diagonal_score_pct" in w["validation"]
    plain = run[:run.index("--prior")] + ["--ckpt", str(tmp_path / "p.pt"), "--out", str(tmp_path / "p_w.pt")]
    train(get_args(plain))
    model = DiScoFormer(ModelConfig(3, width=16, layers=1, heads=2, ffn=32, dropout=0.0, moment_head=True))
    warm_start(model, str(tmp_path / "p_w.pt"))
    for head in (model.head_logf, model.head_score):
        assert not head.weight.any() and not head.bias.any()


# --- the closed-form Stein correction -------------------------------------------------------------

@pytest.mark.parametrize("degree", [1, 2])
def test_closed_form_stein_correction_equals_the_general_fit(degree):
    g = torch.Generator().manual_seed(3)
    x = torch.randn(2000, 4, generator=g, dtype=torch.float64) @ torch.randn(4, 4, generator=g, dtype=torch.float64)
    s = -x + 0.3 * torch.randn(2000, 4, generator=g, dtype=torch.float64)
    y, sy = x[:50] + 0.1, s[:50]
    fit = score_matching_fit(x, degree, 1e-10, base=s, isotropic=True, refine=2)
    ref = sy + fit.gradient(y)
    # the general fit carries a ridge of 1e-10 (relative); measured agreement ~1e-8
    assert (stein_corrected(x, s, y, sy, degree) - ref).abs().max() < 1e-6 * ref.abs().max()


def test_stein_correction_in_d_100_is_cheap_and_meets_the_identities():
    g = torch.Generator().manual_seed(4)
    x = torch.randn(1024, 100, generator=g, dtype=torch.float64) * torch.linspace(0.5, 2, 100, dtype=torch.float64)
    s = -x + 0.2 * torch.randn(1024, 100, generator=g, dtype=torch.float64)
    out = stein_corrected(x, s, x, s, 2)
    N = out.T @ (x - x.mean(0)) / len(x)
    assert out.mean(0).abs().max() < 1e-10
    assert (N + N.T + 2 * torch.eye(100, dtype=x.dtype)).abs().max() < 1e-8


# --- the matrix-product distance path -------------------------------------------------------------

def test_matmul_distances_agree_with_the_coordinate_sum():
    g = torch.Generator().manual_seed(5)
    x = torch.randn(40, 100, generator=g, dtype=torch.float64) + 3.0
    y = torch.randn(60, 100, generator=g, dtype=torch.float64) + 3.0
    ref = ((x[:, None] - y[None]) ** 2).sum(-1)
    out, tmp = torch.empty(40, 60, dtype=x.dtype), torch.empty(40, 60, dtype=x.dtype)
    torch.testing.assert_close(pairs.sq_dist_matmul(x, y.T.contiguous(), out), ref, rtol=1e-13, atol=1e-11)
    torch.testing.assert_close(pairs.sq_dist(x, y.T.contiguous(), out, tmp), ref, rtol=1e-13, atol=1e-11)
    same = pairs.sq_dist_matmul(x, x.T.contiguous(), torch.empty(40, 40, dtype=x.dtype))
    assert same.diagonal().min() >= 0 and same.diagonal().max() < 1e-10 * (x * x).sum(1).max()


def test_large_d_dispatch_and_both_paths_agree_to_rounding(monkeypatch):
    """From MATMUL_MIN_DIM on, pair sums skip the compiled loops (the compiled kernels at d >= 11
    were compared in benchmarks/pair_distance_dim.py: 4e-15 relative at d = 12 and 16); the KDE and
    blob scores and the KDE log-density of the matmul path equal the coordinate-sum path's to
    rounding (no numba compilation here: the torch backend)."""
    d = 40
    x = torch.randn(300, d, generator=torch.Generator().manual_seed(6), dtype=torch.float64)
    assert d >= pairs.MATMUL_MIN_DIM and pairs.kernels(x) is None
    h = 3 * x.std(0)                                # weights spread over many pairs at this d
    eps = blob_epsilon(x)
    with pairs.use_backend("torch"):
        fast = kde_score(x, x, h), kde_log_density(x, x, h), blob_score(x, eps)
        monkeypatch.setattr(pairs, "MATMUL_MIN_DIM", 10**9)   # distances coordinate by coordinate
        slow = kde_score(x, x, h), kde_log_density(x, x, h), blob_score(x, eps)
    for a, b in zip(fast, slow):
        assert (a - b).abs().max() <= 1e-10 * b.abs().max()


# --- the evaluation --------------------------------------------------------------------------------

@pairs.use_backend("torch")  # no numba compilation for d = 6
def test_two_mode_evaluation_pieces():
    x, logf, score = hidden_sample(6, 300, 1)
    assert x.dtype == torch.float64 and x.shape == (300, 6)
    e = errors(logf, score, logf, score)
    assert e["score_mse"] == e["logf_mse"] == 0.0
    zero = errors(logf + 1, 0 * score, logf, score)
    assert zero["score_rel_pct"] == pytest.approx(100) and zero["logf_mse"] == pytest.approx(1)
    assert zero["score_mse_sum"] == pytest.approx(6 * zero["score_mse"])
    grid = [0.3, 1.0, 3.0]
    best = best_kde(x, logf, score, grid)
    sigma = x.std(0, unbiased=False)
    for c in grid:
        assert best["score_mse"] <= errors(kde_log_density(x, x, c * sigma), kde_score(x, x, c * sigma),
                                           logf, score)["score_mse"] + 1e-12
