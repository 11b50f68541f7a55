"""Distributed pair sums: 2 gloo processes on one machine against the single-process result.

Each rank evaluates its contiguous block of rows and an all_gather rebuilds the full result, so
every row is computed by the same operations as in one process; only the row-block boundaries
(and hence the matrix-product shapes BLAS sees) differ. Results may thus differ by
floating-point reassociation only: ~1e-16 relative per evaluation, a few ulps after a few steps.
"""
from __future__ import annotations

import os
import time
import signal
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

ROOT = Path(__file__).resolve().parents[1]

CASE = """\
name: dist_coulomb
dim: 3
particles: 200
seed: 3
dtype: float64
device: cpu
equation: {kind: landau, gamma: -3, B: 0.041666666666666664, delta: 0.0, tile: 7}
initial: {kind: gaussian, mean: [0, 0, 0], cov: [1.8, 0.2, 1.0]}
time: {start: 0.0, end: 3.0, dt: 1.0, integrator: heun}
oracle: {kind: blob}
output: {every: 1}
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _kernels(x, s, h):
    """Every pair kernel on one input, with tiles and row counts that leave ranks partial blocks."""
    from landau.cell_collisions import Segments, cell_index, segment_hat_sum, segment_pair_sum
    pos = (x[:, 1] * 1.7) % 7.0                     # positions in a box of 7 cells of unit width
    from landau.collision import landau_field_direct, landau_pair_sum
    from oracles.blob import blob_score
    from oracles.kde import kde_log_density, kde_score
    return {"landau": landau_field_direct(x, s, -3, 1 / 24, tile=6),
            "pair_sum": landau_pair_sum(x[:7], s[:7], x, s, -2.5, col_weights=x[:, 0].abs()),
            "blob": blob_score(x, 0.5, tile=5),
            "kde": kde_score(x, x, h, tile=9, leave_one_out=True),
            "logdens": kde_log_density(x[:3], x, h, tile=2),   # fewer rows than tile x ranks
            # cells of unequal sizes (one empty): ranks take cost-balanced blocks of cells
            "segments": segment_pair_sum(x, s, Segments.of(torch.clamp((x[:, 0].abs() * 3).long(), max=5), 7),
                                         -3.0, 0.0),
            "hat": segment_hat_sum(x, s, Segments.of(cell_index(pos, 7.0, 7), 7, pos), -3.0, 0.0, 7.0)}


def _inputs(seed):
    from oracles.kde import bandwidth
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(101, 3, generator=g, dtype=torch.float64)
    s = -x + 0.3 * torch.randn(101, 3, generator=g, dtype=torch.float64)
    return x, s, bandwidth(x, "scott")


def _worker(rank: int, size: int, port: int, out: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=size)
    try:
        from landau import pairs
        result = {}
        for backend in ("numba", "torch"):
            with pairs.use_backend(backend):
                with pairs.sharded():
                    assert pairs.world() == (rank, size)   # sharding is active: each rank its rows
                    result[backend] = _kernels(*_inputs(0))
                # outside the scope, a user's own data per rank: no sharding, no collectives
                assert pairs.world() == (0, 1)
                result[f"{backend}_local"] = _kernels(*_inputs(100 + rank))
        torch.save(result, f"{out}/rank{rank}.pt")
    finally:
        dist.destroy_process_group()


def test_sharded_kernels_equal_single_process(tmp_path):
    """Inside pairs.sharded() 2 ranks equal one process; outside it each rank computes its own
    (different) particles in full, although a process group is initialised."""
    mp.spawn(_worker, args=(2, free_port(), str(tmp_path)), nprocs=2, join=True)
    from landau import pairs
    for rank in range(2):
        got = torch.load(tmp_path / f"rank{rank}.pt")
        for backend in ("numba", "torch"):
            with pairs.use_backend(backend):
                single, local = _kernels(*_inputs(0)), _kernels(*_inputs(100 + rank))
            for key in single:
                assert got[backend][key].shape == single[key].shape
                torch.testing.assert_close(got[backend][key], single[key], rtol=1e-13, atol=1e-15)
                torch.testing.assert_close(got[f"{backend}_local"][key], local[key], rtol=1e-13, atol=1e-15)


VPL_CASE = {"name": "vpl_sharded", "dim": 2, "space": {"length": 12.566370614359172, "cells": 8}, "particles": 1200,
            "equation": {"kind": "vlasov_poisson", "collisions": {"gamma": -2.0, "B": 0.5, "integrator": "heun"}},
            "initial": {"kind": "perturbed_maxwellian", "k": 0.5, "alpha": 0.1, "cov": [1.5, 0.5]},
            "oracle": "blob", "time": {"end": 0.3, "dt": 0.1}, "output": {"every": 3}}


def _vpl_worker(rank: int, size: int, port: int, out: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=size)
    try:
        from landau import pairs
        from solvers import simulate
        with pairs.sharded():
            ds = simulate(VPL_CASE)
        if rank == 0:
            torch.save(torch.from_numpy(ds.velocity.values), f"{out}/velocity.pt")
    finally:
        dist.destroy_process_group()


@pytest.mark.slow          # 10 s; the sharded segment sums themselves: test_sharded_kernels_equal_single_process
def test_phase_space_collisions_sharded_by_cell_equal_single_process(tmp_path):
    """A Vlasov-Poisson-Landau run (Coulomb per cell, blob scores per cell, Heun sub-steps) on 2
    gloo ranks, each evaluating a cost-balanced block of cells, writes the single process's
    velocities to rounding (the ranks' blocks are summed by all_reduce)."""
    mp.spawn(_vpl_worker, args=(2, free_port(), str(tmp_path)), nprocs=2, join=True)
    from solvers import simulate
    single = torch.from_numpy(simulate(VPL_CASE).velocity.values)
    torch.testing.assert_close(torch.load(tmp_path / "velocity.pt"), single, rtol=1e-12, atol=1e-13)


def _run(args: list[str], cwd: Path, timeout: float = 240) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


@pytest.mark.parametrize("oracle", ["blob", pytest.param("kde", marks=pytest.mark.slow)])   # kde: the same path, 8 s
def test_torchrun_two_gloo_ranks_match_single_process(tmp_path, oracle):
    """The real CLI under torchrun (2 CPU ranks): rank 0 writes the file, x and score match. KDE:
    its log-density (the entropy diagnostic) is a sharded pair sum that every rank must join."""
    netCDF4 = pytest.importorskip("netCDF4")
    case = tmp_path / "case.yaml"
    case.write_text(CASE.replace("oracle: {kind: blob}", f"oracle: {{kind: {oracle}}}"))
    one = _run([sys.executable, "-m", "solvers.run", str(case), "--quiet", "--out", "single.nc"], tmp_path)
    assert one.returncode == 0, one.stderr
    two = _run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
                "-m", "solvers.run", str(case), "--out", "dist.nc"], tmp_path)
    assert two.returncode == 0, two.stderr
    assert two.stdout.count("wrote dist.nc") == 1           # rank 0 alone prints ...
    assert not list(tmp_path.glob("*.tmp"))                  # ... and writes
    with netCDF4.Dataset(tmp_path / "single.nc") as a, netCDF4.Dataset(tmp_path / "dist.nc") as b:
        assert b.getncattr("status") == "complete"
        assert a["x"].shape == b["x"].shape == (4, 200, 3)
        for var in ("x", "score", "covariance", "entropy_production", "entropy"):
            np.testing.assert_allclose(b[var][:], a[var][:], rtol=1e-10, atol=1e-12, err_msg=var)


def test_torchrun_sigterm_stops_all_ranks_and_resumes(tmp_path):
    """SIGTERM to torchrun reaches both ranks; they agree to stop at one step boundary, rank 0
    writes the checkpoint, and a torchrun --resume completes the run like a single process."""
    netCDF4 = pytest.importorskip("netCDF4")
    case = tmp_path / "case.yaml"
    case.write_text(CASE)
    longer = ["--set", "time.end=60", "--set", "particles=1500", "--set", "equation.tile=null",
              "--set", "output.checkpoint_every=2"]
    one = _run([sys.executable, "-m", "solvers.run", str(case), "--quiet", "--out", "single.nc", *longer], tmp_path)
    assert one.returncode == 0, one.stderr
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    launch = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
              "-m", "solvers.run", str(case), "--quiet", "--out", "dist.nc", *longer]
    proc = subprocess.Popen(launch, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while not (tmp_path / "dist.nc.ckpt").exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert "stopped at step" in err, err          # rank 0 stopped at a step boundary
    with netCDF4.Dataset(tmp_path / "dist.nc") as b:
        assert 3 <= len(b.dimensions["time"]) < 61
    resumed = _run(launch + ["--resume"], tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    with netCDF4.Dataset(tmp_path / "single.nc") as a, netCDF4.Dataset(tmp_path / "dist.nc") as b:
        assert b.getncattr("status") == "complete"
        assert a["x"].shape == b["x"].shape
        for var in ("time", "x", "score"):
            np.testing.assert_allclose(b[var][:], a[var][:], rtol=1e-10, atol=1e-12, err_msg=var)


@pytest.mark.skipif(shutil.which("nvidia-smi") is None or not torch.cuda.is_available()
                    or torch.cuda.device_count() < 2, reason="needs 2 CUDA devices (NCCL)")
def test_torchrun_two_nccl_ranks(tmp_path):
    case = tmp_path / "case.yaml"
    case.write_text(CASE.replace("device: cpu", "device: cuda"))
    one = _run([sys.executable, "-m", "solvers.run", str(case), "--quiet", "--out", "single.nc"], tmp_path)
    two = _run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
                "-m", "solvers.run", str(case), "--quiet", "--out", "dist.nc"], tmp_path)
    assert one.returncode == 0 and two.returncode == 0, two.stderr
