"""The kernel correction of the transformer's score (oracles/discoformer/kernel_correction.py) and
the kernel-weighted means it is made of (oracles.kde.kernel_means)."""
import math

import pytest
import torch

from landau import pairs
from oracles.discoformer.data import relative_score_mse
from oracles.discoformer.evaluate import gmm_sample
from oracles.discoformer.kernel_correction import EXACT_TRACE_DIM, RIDGES, Choice, best_choice, kernel_corrected, local_fits
from oracles.kde import bandwidth, kernel_means, kernel_moments
from oracles.registry import OracleContext, build_oracle


@pytest.mark.parametrize("d", [2, 3, 12])
def test_kernel_means_equal_direct_sums_on_both_paths(d):
    """Compiled and torch paths (d = 12: the matrix-product distances) against the double loop,
    with and without a left-out sample per row."""
    g = torch.Generator().manual_seed(d)
    x = torch.randn(300, d, generator=g, dtype=torch.float64)
    c = torch.randn(300, 4, generator=g, dtype=torch.float64)
    h = 0.6 * bandwidth(x, "scott")
    skip = torch.randperm(300, generator=g)[:120]
    y = x[skip]
    w = torch.exp(-0.5 * (((y[:, None] - x[None]) / h) ** 2).sum(-1))
    direct = (w @ c) / w.sum(1, keepdim=True)
    w[torch.arange(120), skip] = 0
    direct_loo = (w @ c) / w.sum(1, keepdim=True)
    for backend in ("auto", "torch"):
        with pairs.use_backend(backend):
            torch.testing.assert_close(kernel_means(y, x, h, c), direct, rtol=1e-12, atol=1e-12)
            torch.testing.assert_close(kernel_means(y, x, h, c, skip=skip, tile=32), direct_loo, rtol=1e-12, atol=1e-12)


def test_kernel_moments_normaliser_and_tilt_equal_direct_sums():
    """log sum_j K_h(y_i - x_j) and the tilted means sum_j w_ij c_j (v_i . z_j), z = (x - mean x) / h,
    against the double loop, left-out rows included."""
    g = torch.Generator().manual_seed(5)
    x = torch.randn(300, 3, generator=g, dtype=torch.float64)
    c = torch.randn(300, 2, generator=g, dtype=torch.float64)
    h = 0.8 * bandwidth(x, "scott")
    skip = torch.randperm(300, generator=g)[:40]
    y = x[skip]
    v = torch.randn(40, 3, generator=g, dtype=torch.float64)
    k = torch.exp(-0.5 * (((y[:, None] - x[None]) / h) ** 2).sum(-1))
    k[torch.arange(40), skip] = 0
    w = k / k.sum(1, keepdim=True)
    z = (x - x.mean(0)) / h
    log_w, means, tilted = kernel_moments(y, x, h, c, skip=skip, tilt=v, tile=16)
    torch.testing.assert_close(log_w, k.sum(1).log(), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(means, w @ c, rtol=1e-12, atol=1e-12)
    tw = w * (v @ z.T)
    torch.testing.assert_close(tilted, torch.cat([tw.sum(1, keepdim=True), tw @ c], 1), rtol=1e-10, atol=1e-12)


def _dense_fit(x: torch.Tensor, s: torch.Tensor, y: torch.Tensor, factor: float, rho: float,
               left_out: int | None) -> tuple[torch.Tensor, torch.Tensor]:
    """(a, B) at one query y written out with explicit weights (differentiable in y): the normal
    equations of J_y, B from the Kronecker form of (V B + B V) / 2 + (rho / W) B = V - I - G."""
    d = x.shape[1]
    h = factor * bandwidth(x, "scott")
    z, sigma, zeta = (x - x.mean(0)) / h, s * h, (y - x.mean(0)) / h
    logk = -0.5 * ((z - zeta) ** 2).sum(1)
    if left_out is not None:
        logk = torch.cat([logk[:left_out], logk.new_full((1,), -math.inf), logk[left_out + 1:]])
    w = torch.softmax(logk, 0)
    mu, s_bar = w @ z, w @ sigma
    v = (w[:, None] * z).T @ z - torch.outer(mu, mu)
    g = (w[:, None] * z).T @ sigma - torch.outer(mu, s_bar)
    g = (g + g.T) / 2
    eye = torch.eye(d, dtype=x.dtype)
    if math.isinf(rho):
        b = torch.zeros(d, d, dtype=x.dtype)
    else:
        op = (torch.kron(eye, v) + torch.kron(v, eye)) / 2 + rho / torch.exp(logk).sum() * torch.eye(d * d, dtype=x.dtype)
        b = torch.linalg.solve(op, (v - eye - g).reshape(-1)).reshape(d, d)
    m = mu - zeta
    return m - s_bar - b @ m, b


def _objective(x, s, y, factor, a, p, rho, left_out) -> torch.Tensor:
    """J_y(a, B) of the module docstring divided by W = sum_j K_h, in bandwidth units, written
    out: B = (P + P^T) / 2, c(z) = a + B (z - zeta), grad_z log K(z - zeta) = -(z - zeta)."""
    h = factor * bandwidth(x, "scott")
    z, sigma, zeta = (x - x.mean(0)) / h, s * h, (y - x.mean(0)) / h
    b = (p + p.T) / 2
    r = z - zeta
    k = torch.exp(-0.5 * (r**2).sum(1))
    if left_out is not None:
        k = torch.cat([k[:left_out], k.new_zeros(1), k[left_out + 1:]])
    c = a + r @ b.T
    data = (k * (0.5 * ((sigma + c) ** 2).sum(1) + torch.trace(b) - (r * c).sum(1))).sum()
    return (data + rho * (b * b).sum() / 2) / k.sum()


def _sample(d: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(d)
    x = torch.randn(200, d, generator=g, dtype=torch.float64) * torch.linspace(0.5, 2.0, d, dtype=torch.float64)
    return x, -x + 0.3 * torch.sin(2 * x)


@pytest.mark.parametrize("d", [2, 3])
def test_local_fit_minimises_the_localised_score_matching_objective(d):
    """The closed form (a, B) is the minimiser of J_y over a and symmetric B (gradient zero by
    autograd) for finite ridges, at a left-out sample point and at a query off the sample."""
    x, s = _sample(d)
    factor, ridges = 1.7, (0.0, 4.0)
    for y, skip, left_out in ((x[7:8], torch.tensor([7]), 7), (x[:1] + 0.2, None, None)):
        for rho, fit in zip(ridges, local_fits(x, s, y, factor, ridges, skip=skip)):
            a0, p0 = fit.a[0].clone().requires_grad_(True), fit.b[0].clone().requires_grad_(True)
            grads = torch.autograd.grad(_objective(x, s, y[0], factor, a0, p0, rho, left_out), (a0, p0))
            assert max(gr.abs().max().item() for gr in grads) < 1e-10


@pytest.mark.parametrize("d", [2, 3, 5])
def test_divergence_of_the_fitted_correction(d):
    """div_y of the correction a(y) / h against autograd through the dense fit (the left-out sums,
    the ridge's 1 / W): exact for d <= EXACT_TRACE_DIM; beyond, Hutchinson's estimate along the
    fixed Rademacher probe u of each row, sum_kl u_k u_l (h_l / h_k) J_kl (z units: mean tr J)."""
    x, s = _sample(d)
    factor = 1.3
    rows = torch.tensor([3, 50, 111])
    h = factor * bandwidth(x, "scott")
    u = (2 * torch.randint(0, 2, (len(rows), d), generator=torch.Generator().manual_seed(0)) - 1).to(x)
    for k_rho, rho in enumerate(RIDGES):
        div = local_fits(x, s, x[rows], factor, RIDGES, skip=rows, divergence=True)[k_rho].div
        for row, i in enumerate(rows.tolist()):
            jac = torch.autograd.functional.jacobian(lambda y: _dense_fit(x, s, y, factor, rho, i)[0] / h, x[i])
            fit = local_fits(x, s, x[i:i + 1], factor, (rho,), skip=torch.tensor([i]))[0]
            torch.testing.assert_close(fit.a[0], _dense_fit(x, s, x[i], factor, rho, i)[0], rtol=1e-10, atol=1e-12)
            if d <= EXACT_TRACE_DIM:
                expected = torch.trace(jac)
            else:
                expected = (u[row][:, None] * u[row][None, :] * (h[None, :] / h[:, None]) * jac).sum()
            torch.testing.assert_close(div[row], expected, rtol=1e-8, atol=1e-10)


def test_choice_reuses_the_corrected_scores_of_the_cv_and_infinity_keeps_the_network():
    """At n <= CV_ROWS the choice carries the corrected score at every sample point; it equals the
    correction computed afresh (left-out at the sample's own points)."""
    x, _, s = gmm_sample(2, 1500, 4)
    x, s = x.double(), s.double()
    noisy = s + 0.5 * torch.sin(3 * x)
    choice = best_choice(x, noisy)
    assert math.isfinite(choice.factor) and choice.at_sample is not None
    fresh = kernel_corrected(x, noisy, x, noisy, Choice(choice.factor, choice.ridge))
    torch.testing.assert_close(choice.at_sample, fresh, rtol=1e-12, atol=1e-12)
    other = noisy + 0.1                        # another network score at the same points: not reused
    torch.testing.assert_close(kernel_corrected(x, noisy, x, other, choice), fresh + 0.1, rtol=1e-12, atol=1e-12)
    assert kernel_corrected(x, s, x, s, Choice(math.inf)) is s


def test_correction_lowers_the_error_of_a_subsampled_network_and_keeps_the_stein_identities():
    """d = 2 GMM, n = 8000, the network on a context of 512 points: the kernel correction (on by
    default) lowers the relative score error; after it the Stein identities of degree 2
    (mean(s) = 0, sym(N) = -I) hold to rounding."""
    x, _, s_true = gmm_sample(2, 8000, 31_000_001)
    x = x.double()
    context = OracleContext(dim=2, generator=torch.Generator().manual_seed(0))
    runs = {k: build_oracle({"kind": "discoformer", "context": 512, "kernel_correction": k}, context)
            for k in (True, False)}
    for oracle in runs.values():
        oracle.generator.manual_seed(0)
    corrected, plain = (runs[k].score(x, 0.0) for k in (True, False))
    err = {k: relative_score_mse(s[None], s_true[None].double()).item() for k, s in (("on", corrected), ("off", plain))}
    assert err["on"] < 0.8 * err["off"], err
    n_mat = corrected.T @ (x - x.mean(0)) / len(x)
    assert corrected.mean(0).abs().max() < 1e-10
    torch.testing.assert_close((n_mat + n_mat.T) / 2, -torch.eye(2, dtype=torch.float64), rtol=0, atol=1e-10)
    assert build_oracle({"kind": "discoformer"}, OracleContext(dim=2)).settings.kernel_correction is True


def test_choice_keeps_the_exact_score():
    """With the exact score as the network's no candidate is measurably better than the network
    alone (the left-out divergence makes each candidate's expected gain negative): the choice is
    no correction, on three samples."""
    for seed in (7, 8, 9):
        x, _, s = gmm_sample(2, 3000, seed)
        assert math.isinf(best_choice(x.double(), s.double()).factor)


def test_kernel_refresh_reuses_the_choice_between_score_calls_and_keeps_it_in_the_state(monkeypatch):
    """kernel_refresh: 3: score calls 0 and 3 choose on their own sample, calls 1 and 2 reuse call
    0's choice (equal to the rule evaluated with that choice); log_density calls leave the choice
    and the count alone; a copy loaded from the state dict continues identically."""
    samples = [gmm_sample(2, 3000, 31_000_010 + k)[0].double() for k in range(5)]
    settings = {"kind": "discoformer", "context": 256, "kernel_refresh": 3}

    def build(extra: dict | None = None):
        return build_oracle({**settings, **(extra or {})},
                            OracleContext(dim=2, generator=torch.Generator().manual_seed(0)))

    import oracles.discoformer.oracle as module
    made = []
    monkeypatch.setattr(module, "best_choice", lambda x, s: made.append(len(x)) or best_choice(x, s))
    oracle, fresh = build(), build({"kernel_refresh": 1})
    choices = []
    for k, x in enumerate(samples[:4]):
        oracle.generator.manual_seed(k)
        out = oracle.score(x, 0.0)
        fresh.generator.manual_seed(k)
        if k in (1, 2):
            expected = fresh.evaluate(x, choose=lambda *_: choices[0])[1]
            torch.testing.assert_close(out, expected, rtol=0, atol=0)
        else:
            assert math.isfinite(oracle.kernel_choice.factor)
            torch.testing.assert_close(out, fresh.score(x, 0.0), rtol=0, atol=0)
        choices.append(oracle.kernel_choice)
        oracle.log_density(samples[4], 0.0)
    assert oracle.kernel_calls == 4 and choices[1] == choices[2] == choices[0]
    assert len(made) == 2 + 2        # calls 0 and 3 of `oracle`, calls 0 and 3 of `fresh`
    copy = build()
    copy.load_state_dict(oracle.state_dict())
    for o in (oracle, copy):
        o.generator.manual_seed(9)
    torch.testing.assert_close(copy.score(samples[4], 0.0), oracle.score(samples[4], 0.0), rtol=0, atol=0)
    with pytest.raises(Exception, match="kernel_refresh"):
        build({"kernel_refresh": 0})


def test_log_density_skips_the_score_corrections_and_equals_the_full_rule(monkeypatch):
    """log f away from the last scored particles comes from a pass without the score's corrections
    (no correction is computed: they change only the score); it equals the full rule's log f,
    homogeneous and per cell."""
    import oracles.discoformer.averaging as averaging
    import oracles.discoformer.oracle as module
    x = gmm_sample(2, 1200, 31_000_020)[0].double()
    oracle = build_oracle({"kind": "discoformer", "context": 256}, OracleContext(dim=2))
    private = lambda: torch.Generator().manual_seed(oracle.OBSERVER_SEED)  # noqa: E731
    full = oracle.evaluate(x, generator=private(), adapt=False)[0]
    group = (torch.arange(len(x)) % 3)
    full_cells = oracle._groups_pass(x, group, 3, private())[0]
    calls = []
    for where in (averaging, module):
        real = where.corrected
        monkeypatch.setattr(where, "corrected", lambda *a, real=real: calls.append(1) or real(*a))
    torch.testing.assert_close(oracle.log_density(x, 0.0), full, rtol=0, atol=0)
    torch.testing.assert_close(oracle.log_density_groups(x, group, 3, 0.0), full_cells, rtol=0, atol=0)
    assert not calls
    oracle.score(x, 0.0)                       # the score path still corrects
    assert calls


def test_bad_setting_is_one_message():
    with pytest.raises(Exception, match="kernel_correction"):
        build_oracle({"kind": "discoformer", "kernel_correction": "sometimes"}, OracleContext(dim=2))
