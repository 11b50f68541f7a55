"""The kernel correction of the transformer's score (oracles/discoformer/kernel_correction.py) and
the kernel-weighted means it is made of (oracles.kde.kernel_means)."""
import math

import pytest
import torch

from landau import pairs
from oracles.discoformer.data import relative_score_mse
from oracles.discoformer.evaluate import gmm_sample
from oracles.discoformer.kernel_correction import FACTORS, best_factor, cv_terms, kernel_corrected
from oracles.kde import bandwidth, kde_score, kernel_means
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


def test_zero_network_score_gives_the_kde_score_and_infinity_the_network():
    """s_h = S + s_KDE,h - K_h * S: S = 0 leaves the KDE score at bandwidth h, leave-one-out at the
    sample's own points; h = inf leaves S."""
    x, _, s = gmm_sample(2, 500, 4)
    x, s = x.double(), s.double()
    h, zero = 1.4 * bandwidth(x, "scott"), torch.zeros_like(x)
    torch.testing.assert_close(kernel_corrected(x, zero, x, zero, 1.4), kde_score(x, x, h, leave_one_out=True),
                               rtol=1e-12, atol=1e-12)
    y = x[:50] + 0.1
    torch.testing.assert_close(kernel_corrected(x, zero, y, zero[:50], 1.4), kde_score(y, x, h), rtol=1e-12, atol=1e-12)
    assert kernel_corrected(x, s, x, s, math.inf) is s


def test_cv_objective_is_leave_one_out_score_matching():
    """The terms of CV(c): |s^(-i)(X_i)|^2 / 2 + div s^(-i)(X_i) - div S(X_i), the divergence by autograd
    of the corrected score built without X_i, for the network score S(y) = -y (div S = -d)."""
    g = torch.Generator().manual_seed(1)
    x = torch.randn(90, 2, generator=g, dtype=torch.float64) * torch.tensor([1.0, 2.0], dtype=torch.float64)
    factor, h = 1.4, 1.4 * bandwidth(x, "scott")
    terms = []
    for i in range(90):
        others = torch.cat([x[:i], x[i + 1:]])

        def field(y: torch.Tensor) -> torch.Tensor:
            w = torch.softmax(-0.5 * (((y - others) / h) ** 2).sum(1), 0)
            return -y + w @ ((others - y) / h**2) - w @ (-others)

        y = x[i].clone().requires_grad_(True)
        s = field(y)
        div = sum(torch.autograd.grad(s[k], y, retain_graph=True)[0][k] for k in range(2))
        terms.append(0.5 * (s.detach() ** 2).sum() + div + 2)
    torch.testing.assert_close(cv_terms(x, -x, factor), torch.stack(terms), rtol=1e-10, atol=1e-12)


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


def test_best_factor_picks_the_network_when_it_is_exact():
    """With the exact score as the network's, no finite bandwidth improves the score-matching
    objective by more than its sampling noise: the choice is a wide kernel or none."""
    x, _, s = gmm_sample(2, 3000, 7)
    assert best_factor(x.double(), s.double()) >= FACTORS[-2]


def test_bad_setting_is_one_message():
    with pytest.raises(Exception, match="kernel_correction"):
        build_oracle({"kind": "discoformer", "kernel_correction": "sometimes"}, OracleContext(dim=2))
