"""The tiled pair kernels (landau.pairs + Landau field, blob, KDE) against dense references.

The references below are the textbook (n, n, d) broadcast formulas, written independently of the
kernels (torch: (tile, n) scalar blocks and matrix products; compiled: one fused loop per row);
float64 agreement to ~1e-12 relative means only rounding differs. Every test runs on both
backends (``backend`` fixture). Odd tiles and n not a multiple of the tile exercise the last
partial block of the torch path (the compiled path ignores ``tile``).
"""
from __future__ import annotations

import math

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from landau import pairs
from landau.collision import LandauEquation, landau_field_direct, maxwell_field
from oracles.blob import blob_epsilon, blob_score
from oracles.kde import bandwidth, kde_log_density, kde_score

B = 1.0 / 24
TILES = [1, 7, 13, 64, None, 1000]


@pytest.fixture(params=["numba", "torch"], autouse=True)
def backend(request):
    """Run each test on the compiled CPU kernels and on the torch blocks."""
    with pairs.use_backend(request.param):
        yield request.param


def dense_landau(x, s, gamma, delta=0.0):
    z = x[:, None] - x[None]
    ds = s[:, None] - s[None]
    r2 = (z * z).sum(-1)
    if delta > 0:
        w = (r2 + delta**2) ** (gamma / 2)
    elif gamma == 0:
        w = torch.ones_like(r2)
    else:
        w = torch.where(r2 > 0, r2, 1.0) ** (gamma / 2) * (r2 > 0)
    zds = (z * ds).sum(-1)
    return -(B / len(x)) * ((w * r2)[..., None] * ds - (w * zds)[..., None] * z).sum(1)


def dense_blob(x, eps):
    z = x[:, None] - x[None]
    k = torch.exp(-(z * z).sum(-1) / eps)
    zs = k.sum(1)
    w = k * (1 / zs[:, None] + 1 / zs[None, :])
    return (-(2 / eps) * z * w[..., None]).sum(1)


def dense_kde(y, x, h, loo=False):
    z = (x[None] - y[:, None]) / h                       # (n_y, n, d)
    logk = -0.5 * (z * z).sum(-1)
    if loo:
        logk.fill_diagonal_(-math.inf)
    w = torch.softmax(logk, 1)
    return (w[..., None] * z).sum(1) / h


def dense_kde_logdens(y, x, h):
    z = (x[None] - y[:, None]) / h
    logk = -0.5 * (z * z).sum(-1) - torch.log(h).sum() - 0.5 * x.shape[1] * math.log(2 * math.pi)
    return torch.logsumexp(logk, 1) - math.log(len(x))


def particles(n, d, seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=g, dtype=dtype) * torch.linspace(0.5, 1.5, d, dtype=dtype) + 2.0
    s = -x**3 / 4 + torch.randn(n, d, generator=g, dtype=dtype)
    return x, s


def rel(a, b):
    return float((a - b).abs().max() / b.abs().max())


@pytest.mark.parametrize("d", [2, 3, 10])
@pytest.mark.parametrize("gamma,delta", [(0, 0.0), (-3, 0.0), (-2, 0.1), (-2, 0.0), (-1, 0.0),
                                         (-2.5, 0.0), (1, 0.0), (-3, 0.05)])
def test_landau_tiled_equals_dense(d, gamma, delta):
    x, s = particles(101, d)
    ref = dense_landau(x, s, gamma, delta)
    for tile in TILES:
        assert rel(landau_field_direct(x, s, gamma, B, delta, tile), ref) < 1e-11, tile


def test_landau_rows_and_duplicates():
    x, s = particles(90, 3)
    x[17] = x[40]                                        # a coincident pair: dropped like self pairs
    ref = dense_landau(x, s, -3)
    u = landau_field_direct(x, s, -3, B, tile=6, rows=slice(11, 60))
    assert rel(u, ref[11:60]) < 1e-11
    assert torch.isfinite(u).all()


def test_landau_conservation_and_moment_form():
    x, s = particles(203, 3)
    u = landau_field_direct(x, s, -3, B, tile=17)
    assert float(u.sum(0).abs().max()) < 1e-13 * float(u.abs().sum())
    assert abs(float((x * u).sum())) < 1e-12 * float((x * u).abs().sum())
    assert rel(maxwell_field(x, s, B), landau_field_direct(x, s, 0, B, tile=9)) < 1e-12
    assert LandauEquation(0, B).method == "moments"      # the moment form stays the default


def test_float32_kernels_close_to_float64():
    x, s = particles(400, 3)
    ref = dense_landau(x, s, -3)
    assert rel(landau_field_direct(x.float(), s.float(), -3, B, tile=37).double(), ref) < 2e-4
    eps = blob_epsilon(x)
    assert rel(blob_score(x.float(), eps, tile=37).double(), dense_blob(x, eps)) < 2e-4
    h = bandwidth(x, "scott")
    assert rel(kde_score(x.float(), x.float(), h.float(), tile=37).double(), dense_kde(x, x, h)) < 2e-4


@pytest.mark.parametrize("d", [2, 3, 10])
def test_blob_tiled_equals_dense(d):
    x, _ = particles(103, d, seed=1)
    eps = blob_epsilon(x)
    ref = dense_blob(x, eps)
    for tile in TILES:
        assert rel(blob_score(x, eps, tile), ref) < 1e-12, tile


@pytest.mark.parametrize("d", [2, 3, 10])
def test_kde_tiled_equals_dense(d):
    x, _ = particles(97, d, seed=2)
    y, _ = particles(31, d, seed=3)
    h = bandwidth(x, "scott")
    for tile in TILES:
        assert rel(kde_score(x, x, h, tile), dense_kde(x, x, h)) < 1e-12, tile
        assert rel(kde_score(x, x, h, tile, leave_one_out=True), dense_kde(x, x, h, loo=True)) < 1e-12
        assert rel(kde_score(y, x, h, tile), dense_kde(y, x, h)) < 1e-12
        assert rel(kde_log_density(y, x, h, tile), dense_kde_logdens(y, x, h)) < 1e-13


# ----------------------------------------------------------------------------- tiles and memory
def test_auto_tile_respects_budget_and_override():
    for n in (10, 1000, 20_000, 10**6):
        for dtype in (torch.float32, torch.float64):
            t = pairs.auto_tile(n, 1, dtype, torch.device("cpu"))
            itemsize = torch.empty((), dtype=dtype).element_size()
            assert t >= 1 and (t == 1 or t * n * itemsize <= pairs.block_bytes("cpu"))
    assert pairs.auto_tile(10**6, 1, torch.float64, torch.device("cpu"), tile=5) == 5
    with pytest.raises(ValueError):
        pairs.auto_tile(10, 1, torch.float64, torch.device("cpu"), tile=0)


def test_row_range_balanced_cover():
    for n in (0, 1, 5, 101, 1000):
        for k in (1, 2, 3, 7):
            blocks = [pairs.row_range(n, r, k) for r in range(k)]
            assert blocks[0][0] == 0 and blocks[-1][1] == n
            assert all(a[1] == b[0] for a, b in zip(blocks, blocks[1:]))
            sizes = [hi - lo for lo, hi in blocks]
            assert max(sizes) - min(sizes) <= 1


class LargestTensor(TorchDispatchMode):
    """Records the largest number of elements of any tensor an op produces."""

    def __init__(self):
        super().__init__()
        self.largest = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in out if isinstance(out, (tuple, list)) else [out]:
            if isinstance(t, torch.Tensor):
                self.largest = max(self.largest, t.numel())
        return out


@pytest.mark.parametrize("kernel", ["landau", "blob", "kde"])
def test_no_temporary_larger_than_a_tile(kernel, backend):
    n, d, tile = 600, 3, 8
    x, s = particles(n, d)
    run = {"landau": lambda: landau_field_direct(x, s, -3, B, tile=tile),
           "blob": lambda: blob_score(x, 0.3, tile=tile),
           "kde": lambda: kde_score(x, x, bandwidth(x, "scott"), tile=tile)}[kernel]
    with LargestTensor() as spy:
        run()
    assert spy.largest <= max(tile * n, n * (2 * d + 2)), spy.largest   # never (n, n) or (n, n, d)
    if backend == "numba":
        assert spy.largest <= n * (2 * d + 2)                            # no (tile, n) block either


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_cuda_matches_cpu(dtype):
    x, s = particles(1000, 3)
    ref = landau_field_direct(x, s, -3, B)
    u = landau_field_direct(x.to("cuda", dtype), s.to("cuda", dtype), -3, B).cpu().double()
    assert rel(u, ref) < (1e-4 if dtype == torch.float32 else 1e-11)
    eps = blob_epsilon(x)
    b = blob_score(x.to("cuda", dtype), eps).cpu().double()
    assert rel(b, blob_score(x, eps)) < (1e-4 if dtype == torch.float32 else 1e-11)
    assert pairs.auto_tile(10**5, 1, torch.float32, torch.device("cuda")) > 1


# ----------------------------------------------------------------------------- backend selection
def test_backend_switch_validates():
    with pytest.raises(ValueError):
        pairs.set_backend("keops")
    with pairs.use_backend("torch"):
        assert pairs.kernels(torch.zeros(3, 2)) is None
    with pairs.use_backend("auto"):
        assert pairs.kernels(torch.zeros(3, 2, dtype=torch.float64)) is not None  # compiled on CPU
        assert pairs.kernels(torch.zeros(3, 2, dtype=torch.int64)) is None
        # tensors needing gradients never go to the compiled kernels (which would detach them)
        assert pairs.kernels(torch.rand(20, 3, dtype=torch.float64, requires_grad=True)) is None
