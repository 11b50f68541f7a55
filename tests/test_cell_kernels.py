"""Scores and the Landau operator per cell, batched over all cells in one compiled call
(``landau/pair_kernels_numba.py``: blob_segment_scores, kde_segment_scores, landau_segment_pairs),
against one oracle per cell and against the torch path.

Tolerance: the batched kernels evaluate each unordered pair once (the per-oracle kernels each
ordered pair) and the torch path sums by matrix products over blocks: the same float64 sums in
other orders, rounding differences ~1e-16 times the condition of the sum. 1e-12 relative
(max-norm) leaves three decades of margin; a wrong bandwidth, a pair summed across two cells or a
missing pair changes the scores at the 1e-3 level or more.
"""
from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from landau import pairs
from landau.cell_collisions import Segments, segment_pair_sum
from oracles.blob import BlobOracle, blob_epsilon
from oracles.kde import KDEOracle
from solvers.cell_scores import CellScores

M = 7


def grouped(n: int = 1200, d: int = 2, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Velocities in M groups of unequal sizes with a different spread per group, group 3 empty,
    group 5 a single particle, group 6 four particles (under the 2 (d + 1) = 6 of a bandwidth)."""
    g = torch.Generator().manual_seed(seed)
    group = torch.randint(0, 5, (n,), generator=g)
    group[group == 3] = 4
    group[:5] = torch.tensor([5, 6, 6, 6, 6])
    scale = torch.linspace(0.5, 2.0, M, dtype=torch.float64)[group, None]
    return torch.randn(n, d, generator=g, dtype=torch.float64) * scale + group[:, None], group


def one_per_group(x: torch.Tensor, group: torch.Tensor, make, min_size: int) -> torch.Tensor:
    """The per-cell path of ``CellScores``: one oracle per group, prepared on its own initial
    particles (on all of them for a group under ``min_size``), groups under 2 particles scored 0."""
    out = torch.zeros_like(x)
    for c in range(M):
        idx = torch.nonzero(group == c).flatten()
        oracle = make()
        oracle.prepare(x[idx] if len(idx) >= min_size else x, 0.0)
        if len(idx) >= 2:
            out[idx] = oracle.score(x[idx], 0.0)
    return out


def rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).abs().max() / b.abs().max())


def test_blob_groups_equal_one_blob_oracle_per_group_on_both_paths() -> None:
    x, group = grouped()
    oracle = BlobOracle()
    with pytest.warns(RuntimeWarning, match="3 of 7 groups hold fewer than 6"):
        oracle.prepare_groups(x, group, M, 0.0)
    assert float(oracle.eps_groups[6]) == blob_epsilon(x)            # too few: the eps of all particles
    assert float(oracle.eps_groups[0]) == blob_epsilon(x[group == 0])
    reference = one_per_group(x, group, BlobOracle, 6)
    assert rel(oracle.score_groups(x, group, M, 0.0), reference) < 1e-12
    with pairs.use_backend("torch"):
        assert rel(oracle.score_groups(x, group, M, 0.0), reference) < 1e-12


def test_blob_groups_fixed_eps_and_first_call_fixes_the_bandwidths() -> None:
    x, group = grouped(seed=1)
    fixed = BlobOracle(BlobOracle.Settings(eps=0.3))
    reference = one_per_group(x, group, lambda: BlobOracle(BlobOracle.Settings(eps=0.3)), 6)
    assert rel(fixed.score_groups(x, group, M, 0.0), reference) < 1e-12
    lazy = BlobOracle()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        first = lazy.score_groups(x, group, M, 0.0)
    later = lazy.score_groups(x * 2.0, group, M, 0.1)                # eps kept from the first call
    assert rel(first, one_per_group(x, group, BlobOracle, 6)) < 1e-12
    assert not torch.allclose(later, 0.5 * first)                    # a rescaled eps would give exactly this
    with pytest.raises(ValueError, match="prepared for 7 groups, called with 8"):
        lazy.score_groups(x, group, M + 1, 0.0)


@pytest.mark.parametrize("leave_one_out", [False, True])
@pytest.mark.parametrize("rule", ["scott", "silverman", 0.4])
def test_kde_groups_equal_one_kde_oracle_per_group_on_both_paths(leave_one_out: bool, rule) -> None:
    x, group = grouped(seed=2)
    settings = KDEOracle.Settings(bandwidth=rule, leave_one_out=leave_one_out)
    reference = one_per_group(x, group, lambda: KDEOracle(settings), 6)
    batched = KDEOracle(settings).score_groups(x, group, M, 0.0)
    assert bool(torch.isfinite(batched).all()) and bool((batched[group == 5] == 0).all())
    assert rel(batched, reference) < 1e-12
    with pairs.use_backend("torch"):
        assert rel(KDEOracle(settings).score_groups(x, group, M, 0.0), reference) < 1e-12


def test_kde_log_density_per_group_is_each_groups_own_kde() -> None:
    """The entropy diagnostic of a phase-space run with KDE scores per cell (CellScores.log_density):
    each group's own KDE at its own particles, NaN where a group has fewer than 2."""
    x, group = grouped(seed=7)
    oracle = KDEOracle()
    values = oracle.log_density_groups(x, group, M, 0.0)
    for c in range(M):
        mine = group == c
        if int(mine.sum()) >= 2:
            assert rel(values[mine], KDEOracle().log_density(x[mine], 0.0)) < 1e-14
        else:
            assert bool(values[mine].isnan().all())


@pytest.mark.parametrize("kind", ["blob", "kde"])
def test_cell_scores_batch_blob_and_kde_and_resume_from_the_state(kind: str) -> None:
    g = torch.Generator().manual_seed(3)
    n, L, cells = 1500, 2.0, 5
    z = torch.cat([torch.rand(n, 1, generator=g, dtype=torch.float64) * L,
                   torch.randn(n, 2, generator=g, dtype=torch.float64)], 1)
    make = BlobOracle if kind == "blob" else KDEOracle
    scores = CellScores(make, L, cells)
    scores.prepare(z, 0.0)
    assert scores.instances is None and scores.describe()["per_cell"] == "batched"
    assert scores.has_log_density == (kind == "kde")
    cell = (z[:, 0] * cells / L).long()
    z1 = z.clone()
    z1[:, 1:] *= 1.1
    reference = torch.zeros(n, 2, dtype=torch.float64)
    for c in range(cells):
        oracle, mine = make(), cell == c
        oracle.prepare(z[mine, 1:], 0.0)
        reference[mine] = oracle.score(z1[mine, 1:], 0.1)
    assert rel(scores.score(z1, 0.1), reference) < 1e-12
    resumed = CellScores(make, L, cells)
    resumed.load_state_dict(scores.state_dict())
    assert torch.equal(resumed.score(z1, 0.1), scores.score(z1, 0.1))


def test_segmented_kernels_on_a_block_of_segments_touch_only_its_rows() -> None:
    """A rank's block of cells (``offsets`` a slice, as ``pairs.shard_segments`` passes it):
    its rows equal those of the full call, every other row stays exactly 0."""
    x, group = grouped(seed=4)
    seg = Segments.of(group, M)
    xs = pairs.as_numpy(x[seg.order])
    ss = pairs.as_numpy(-x[seg.order] ** 3)
    compiled = pairs.kernels(x)
    offsets = pairs.as_numpy(seg.offsets)
    lo, hi = int(offsets[1]), int(offsets[4])
    args = (compiled.zeros(2), compiled.static(compiled.weight_form(-2.0)), -2.0, 0.0)
    full, part = np.zeros_like(xs), np.zeros_like(xs)
    compiled.landau_segment_pairs(xs, ss, offsets, *args, full)
    compiled.landau_segment_pairs(xs, ss, offsets[1:5], *args, part)
    assert np.array_equal(part[lo:hi], full[lo:hi]) and not part[:lo].any() and not part[hi:].any()
    inv_eps = np.linspace(1.0, 3.0, M)
    full, part = np.zeros_like(xs), np.zeros_like(xs)
    compiled.blob_segment_scores(xs, offsets, inv_eps, compiled.zeros(2), full)
    compiled.blob_segment_scores(xs, offsets[1:5], inv_eps[1:4], compiled.zeros(2), part)
    assert np.array_equal(part[lo:hi], full[lo:hi]) and not part[:lo].any() and not part[hi:].any()


@pytest.mark.parametrize("gamma", [-3.0, -2.0, -1.5, 1.0])
def test_landau_segment_pairs_equals_the_torch_path_per_cell(gamma: float) -> None:
    """Unequal cells (the thread schedule pairs large and small ones), an empty and a single-particle
    cell; against ``landau.collision.landau_pair_sum`` of each cell (the torch path)."""
    x, group = grouped(seed=5)
    s = -x ** 3 / 3 + torch.sin(3 * x)
    seg = Segments.of(group, M)
    compiled = segment_pair_sum(x, s, seg, gamma, 0.0)
    with pairs.use_backend("torch"):
        reference = segment_pair_sum(x, s, seg, gamma, 0.0)
    assert rel(compiled, reference) < 1e-12


@pytest.mark.slow            # compiles the float32 specialisation of the blob kernel (~10 s cold)
def test_float32_inputs_are_summed_in_float64() -> None:
    x, group = grouped(seed=6)
    oracle = BlobOracle(BlobOracle.Settings(eps=0.5))
    single = oracle.score_groups(x.float(), group, M, 0.0)
    assert single.dtype == torch.float32
    assert rel(single.double(), oracle.score_groups(x.float().double(), group, M, 0.0)) < 1e-6
