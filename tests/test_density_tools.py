"""Plug-in density tools against Gaussian closed forms."""
from __future__ import annotations

import math

import pytest
import torch

from oracles.density_tools import (Estimate, entropy, fisher_information, from_kde, from_oracle,
                                   relative_fisher_information, sd_kde)
from oracles.kde import KDEOracle
from oracles.registry import OracleContext, build_oracle

torch.set_num_threads(1)
D = torch.float64


def gaussian(mean: list[float], var: list[float]) -> tuple[Estimate, torch.Tensor, torch.Tensor]:
    """Exact estimate of N(mean, diag(var)) and the tensors mean, var."""
    m, v = torch.tensor(mean, dtype=D), torch.tensor(var, dtype=D)
    logf = lambda y: -0.5 * ((y - m) ** 2 / v).sum(-1) - 0.5 * torch.log(2 * math.pi * v).sum()
    return Estimate(score=lambda y: -(y - m) / v, log_density=logf), m, v


def draw(m: torch.Tensor, v: torch.Tensor, n: int, seed: int = 0) -> torch.Tensor:
    return m + v.sqrt() * torch.randn(n, len(m), dtype=D, generator=torch.Generator().manual_seed(seed))


def test_entropy_and_fisher_information_of_a_gaussian():
    """H = (1/2) sum log(2 pi e v_k),  I = sum 1/v_k; Monte Carlo within 5 standard errors."""
    f, m, v = gaussian([1.0, -2.0, 0.5], [0.5, 2.0, 1.0])
    n = 20000
    x = draw(m, v, n)
    h_exact = 0.5 * torch.log(2 * math.pi * math.e * v).sum()
    # Var(-log f) = d/2 for a Gaussian; Var |s|^2 = 2 sum 1/v_k^2
    assert abs(entropy(f, x) - h_exact) < 5 * math.sqrt(1.5 / n)
    assert abs(fisher_information(f, x) - (1 / v).sum()) < 5 * math.sqrt(2 * (v**-2).sum() / n)


def test_relative_fisher_information_of_two_gaussians():
    """s_f - s_g = M x - c with M = diag(1/v_g - 1/v_f), c = m_g / v_g (m_f = 0):
    I(f|g) = tr(M^2 V_f) + |c|^2."""
    f, mf, vf = gaussian([0.0, 0.0], [1.0, 0.5])
    g, mg, vg = gaussian([0.3, -0.2], [2.0, 0.5])
    x = draw(mf, vf, 20000, seed=1)
    M = 1 / vg - 1 / vf
    exact = (M**2 * vf).sum() + ((mg / vg) ** 2).sum()
    assert relative_fisher_information(f, g, x).item() == pytest.approx(exact.item(), rel=0.05)
    assert relative_fisher_information(f, f, x).item() == 0.0


def test_kde_plug_in_estimates_are_close_and_sd_kde_is_sharper():
    """KDE estimates of H and I approach the closed forms; SD-KDE with the exact score (bias O(h^4)
    instead of O(h^2), so a larger bandwidth) has a smaller log-density error than the Scott KDE."""
    f, m, v = gaussian([0.0, 0.0], [1.0, 0.3])
    x = draw(m, v, 2000, seed=2)
    kde = from_kde(x, "scott")
    assert entropy(kde, x).item() == pytest.approx(entropy(f, x).item(), rel=0.1)
    assert fisher_information(kde, x).item() == pytest.approx((1 / v).sum().item(), rel=0.2)
    y = draw(m, v, 2000, seed=3)  # fresh points
    err = lambda est: (est.log_density(y) - f.log_density(y)).pow(2).mean().item()
    debiased = sd_kde(x, f.score)
    assert err(debiased) < 0.5 * err(kde)
    # at the same (larger) bandwidth the plain KDE is worse still; the score may be given as values
    h = x.std(0, correction=0) * len(x) ** (-1 / 10)
    assert err(debiased) < 0.5 * err(from_kde(x, h))
    torch.testing.assert_close(sd_kde(x, f.score(x), h).log_density(y), debiased.log_density(y))


def test_from_oracle_at_the_sample_and_at_queries():
    f, m, v = gaussian([0.0, 0.0], [1.0, 1.0])
    x = draw(m, v, 500, seed=4)
    kde_oracle = from_oracle(KDEOracle(), x)
    torch.testing.assert_close(kde_oracle.score(x), from_kde(x).score(x))
    with pytest.raises(ValueError, match="own sample"):
        kde_oracle.score(x[:10])
    net = from_oracle(build_oracle({"kind": "discoformer"}, OracleContext(dim=2)), x)
    y = draw(m, v, 50, seed=5)
    assert net.score(y).shape == (50, 2) and net.log_density(y).shape == (50,)
    torch.testing.assert_close(net.score(x[:50].clone()), net.score(x)[:50], rtol=1e-4, atol=1e-4)
    assert relative_fisher_information(net, f, x) < 0.2 * fisher_information(f, x)
