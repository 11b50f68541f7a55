"""The compiled CPU pair kernels (landau/pair_kernels_numba.py) against the torch path, their
exponential, the thread policy and the fallbacks when numba or its cache is unavailable.

Tolerance: both paths evaluate the same sums in float64, in different orders (SIMD lanes vs
matrix products over blocks); rounding differences are ~1e-16 times the condition of the sum,
so agreement to 1e-12 relative (max-norm) leaves about three decades of margin, while any slip in
a term (a missing pair, a wrong weight or sign) changes results at the 1e-3 level or more.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from landau import pairs
from landau.collision import landau_field_direct, landau_pair_sum
from oracles.blob import blob_score
from oracles.kde import bandwidth, kde_log_density, kde_score

ROOT = Path(__file__).resolve().parents[1]


def clustered(n, d, seed):
    """Two clusters with a coincident pair (any scores: dropped) and a pair 1e-3 apart whose scores
    differ by O(1e-3), as a score's do (smooth: the Coulomb summand stays bounded), the hard pairs
    for gamma < 0 (closer pairs make the field itself ill-conditioned: a rounding of s_p - s_q
    of 1e-16 is amplified by |z|^-1, in any implementation)."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=g, dtype=torch.float64) * torch.linspace(0.3, 1.2, d, dtype=torch.float64)
    x[: n // 3] += 2.5
    x[5] = x[9]
    x[7] = x[11] + 1e-3
    s = -x**3 / 3 + torch.randn(n, d, generator=g, dtype=torch.float64)
    s[7], s[11] = -x[7]**3 / 3, -x[11]**3 / 3
    return x, s


def rel(a, b):
    return float((a - b).abs().max() / b.abs().max())


def both(fn):
    with pairs.use_backend("numba"):
        compiled = fn()
    with pairs.use_backend("torch"):
        reference = fn()
    return compiled, reference


@pytest.mark.parametrize("d", [2, 3, 5])
@pytest.mark.parametrize("gamma,delta", [(-3, 0.0), (-3, 0.02), (-2, 0.0), (-1, 0.0), (-2.5, 0.0),
                                         (0, 0.0), (1, 0.0), (2, 0.0)])
def test_landau_compiled_equals_torch(d, gamma, delta):
    x, s = clustered(300, d, seed=d)
    u, ref = both(lambda: landau_field_direct(x, s, gamma, 1 / 24, delta))
    assert rel(u, ref) < 1e-12
    y, t = clustered(170, d, seed=d + 10)
    w = torch.linspace(0.2, 3.0, 170, dtype=torch.float64)
    r, ref = both(lambda: landau_pair_sum(x[:90], s[:90], y, t, gamma, delta, col_weights=w))
    assert r.shape == (90, d) and rel(r, ref) < 1e-12


@pytest.mark.parametrize("d", [1, 3, 10])
def test_blob_and_kde_compiled_equal_torch(d):
    x, _ = clustered(400, d, seed=20 + d)
    y, _ = clustered(50, d, seed=30 + d)
    h = bandwidth(x, "silverman")
    for fn in (lambda: blob_score(x, 0.2), lambda: blob_score(x, 5.0),
               lambda: kde_score(x, x, h), lambda: kde_score(x, x, h, leave_one_out=True),
               lambda: kde_score(y, x, h), lambda: kde_log_density(y, x, h),
               lambda: kde_log_density(y + 30.0, x, h)):       # far queries: every kernel < 1e-300
        got, ref = both(fn)
        assert got.shape == ref.shape and rel(got, ref) < 1e-12


def test_float32_compiled_close_to_float64():
    x, s = clustered(300, 3, seed=1)
    h = bandwidth(x, "scott")
    with pairs.use_backend("numba"):
        ref = [landau_field_direct(x, s, -3, 1 / 24, 0.01), blob_score(x, 0.3), kde_score(x, x, h)]
        low = [landau_field_direct(x.float(), s.float(), -3, 1 / 24, 0.01), blob_score(x.float(), 0.3),
               kde_score(x.float(), x.float(), h.float())]
    for a, b in zip(low, ref):
        assert a.dtype == torch.float32
        assert rel(a.double(), b) < 1e-5          # float32 inputs (eps 6e-8), float64 arithmetic


def test_exp_neg_accuracy():
    """exp_neg (vectorisable exp for x <= 0) within 2 ulp of libm down to -708; 0 below; NaN kept."""
    from landau.pair_kernels_numba import exp_neg
    import numba

    @numba.njit
    def apply(v):
        out = np.empty_like(v)
        for i in range(len(v)):
            out[i] = exp_neg(v[i])
        return out

    v = -np.concatenate([np.linspace(0, 1, 5001), np.geomspace(1e-12, 708, 20001)])
    got, ref = apply(v), np.exp(v)
    assert np.all(np.abs(got - ref) <= 2 * np.spacing(ref)), np.max(np.abs(got - ref) / np.spacing(ref))
    assert apply(np.array([0.0]))[0] == 1.0
    assert np.all(apply(-np.concatenate([np.linspace(708.5, 5000, 50), [np.inf]])) == 0.0)
    assert np.isnan(apply(np.array([np.nan]))[0])


def test_thread_policy(monkeypatch):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2, 3}, raising=False)
    monkeypatch.setattr(torch, "get_num_threads", lambda: 8)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.delenv("LOCAL_WORLD_SIZE", raising=False)
    assert pairs.cpu_threads() == 4                       # the affinity mask caps torch's count
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "2")
    assert pairs.cpu_threads() == 2                       # torchrun: a share of the mask per process
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "8")
    assert pairs.cpu_threads() == 1
    monkeypatch.setenv("OMP_NUM_THREADS", "3")            # explicit setting: torch's count (follows it)
    monkeypatch.setattr(torch, "get_num_threads", lambda: 3)
    assert pairs.cpu_threads() == 3


FALLBACK = """
import sys, warnings
{setup}
import torch
from landau import pairs
from landau.collision import landau_field_direct
from oracles.blob import blob_score
g = torch.Generator().manual_seed(0)
x = torch.randn(64, 3, generator=g, dtype=torch.float64)
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    u = [landau_field_direct(x, -x**3, -3, 1 / 24) for _ in range(2)]
    b = blob_score(x, 0.5)
with pairs.use_backend("torch"):
    ref_u, ref_b = landau_field_direct(x, -x**3, -3, 1 / 24), blob_score(x, 0.5)
assert float((u[0] - ref_u).abs().max() / ref_u.abs().max()) < 1e-12
assert float((b - ref_b).abs().max() / ref_b.abs().max()) < 1e-12
print("WARNINGS", sum("numba" in str(w.message) for w in caught), repr([str(w.message) for w in caught]))
"""


@pytest.mark.parametrize("case", ["no_numba", "no_cache"])
def test_fallback_runs_and_warns_once(case):
    setup = {
        # numba not installed: the import fails, the torch path runs
        "no_numba": "sys.modules['numba'] = None",
        # no writable cache directory: numba raises when a cached function is defined
        "no_cache": ("import numba.core.dispatcher as d\n"
                     "def refuse(self):\n"
                     "    raise RuntimeError('cannot cache function: no locator available')\n"
                     "d.Dispatcher.enable_caching = refuse"),
    }[case]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    env.pop("LANDAU_NUMBA_CACHE", None)
    out = subprocess.run([sys.executable, "-c", FALLBACK.format(setup=setup)], env=env, cwd=ROOT,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert "WARNINGS 1 " in out.stdout, out.stdout
    assert ("torch path" if case == "no_numba" else "compiled in memory") in out.stdout
