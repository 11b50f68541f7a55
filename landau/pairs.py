"""Tiled pair reductions: the one place where O(n^2) sums over particle pairs are evaluated.

A pair sum R_p = sum_q phi(X_p, X_q) over n columns is computed one block of rows at a time, so
the largest temporaries are a few (tile, n) arrays and memory stays O(n * tile), never (n, n) or
(n, n, d). The Landau field and the blob and KDE scores all go through :func:`map_rows`, so CPU,
GPU and distributed evaluation differ in this file only:

* **tile size** -- :func:`auto_tile` picks the rows per block from the device: on CPU so that one
  (tile, n) block array is about the per-core L2 size (read from sysfs; measured best on the
  2-core EPYC dev box, see ``results/benchmarks/cpu.md``), on CUDA a fraction of device memory.
  ``tile=`` (case files: ``equation.tile``, ``oracle.tile``) overrides it.
* **backend** -- ``"torch"`` (default; the blocks above, CPU and CUDA) or ``"keops"`` (optional,
  needs ``pykeops``; one fused map-reduce per pair sum, no (tile, n) arrays at all; chosen with
  :func:`set_backend` or the environment variable ``LANDAU_PAIR_BACKEND=keops``). Measured on the
  2-core CPU box it is about as fast as the torch blocks (see ``results/benchmarks/cpu.md``); its
  case is the GPU, where it is a fused CUDA kernel. The leave-one-out KDE always uses torch.
* **distributed rows** -- when ``torch.distributed`` is initialised with world size K > 1 (e.g.
  under ``torchrun``, see ``solvers/distributed.py``), :func:`map_rows` evaluates only this rank's
  contiguous, balanced block of rows [lo, hi) and an ``all_gather`` rebuilds the full (n, ...)
  result on every rank. Inputs must be identical on all ranks (the particle state is
  replicated), and every rank must make the same calls in the same order (collectives).
"""
from __future__ import annotations

import functools
import os
import warnings
from pathlib import Path
from typing import Callable

import torch

#: bytes one (tile, n_cols) block array may take; ~5 such arrays live at once inside a block.
#: CPU: the per-core L2 size (1 MiB on the dev box: tile 6 at n = 20 000, 26 at n = 5 000,
#: float64); a sweep of tiles there gave the best times for arrays of 0.6 - 1.3 MiB, Python
#: overhead dominating below, cache misses above. Blocking the columns too gained < 10 %.
#: CUDA: 1/64 of the device memory, at most 1 GiB (big blocks amortise kernel launches).
CPU_FALLBACK_L2 = 1 << 20


@functools.lru_cache(maxsize=None)
def _cpu_l2_bytes() -> int:
    """Per-core L2 cache size from sysfs (Linux), else 1 MiB."""
    try:
        for index in sorted(Path("/sys/devices/system/cpu/cpu0/cache").glob("index*")):
            if (index / "level").read_text().strip() == "2":
                text = (index / "size").read_text().strip().upper()
                scale = {"K": 1 << 10, "M": 1 << 20}.get(text[-1], 1)
                return int(text.rstrip("KM")) * scale
    except (OSError, ValueError):
        pass
    return CPU_FALLBACK_L2


def block_bytes(device: torch.device | str) -> int:
    """Budget in bytes for one (tile, n_cols) array on ``device``."""
    device = torch.device(device)
    if device.type == "cuda":
        total = torch.cuda.get_device_properties(device).total_memory
        return min(total // 64, 1 << 30)
    return _cpu_l2_bytes()


def auto_tile(n_cols: int, width: int, dtype: torch.dtype, device: torch.device,
              tile: int | None = None) -> int:
    """Rows per block so that one (tile, n_cols, width) array fits the device's block budget.

    The kernels here keep ``width = 1`` arrays (pairwise scalars; coordinates go through matrix
    products), so the block is (tile, n_cols). ``tile`` overrides the choice.
    """
    device = torch.device(device)
    if device.type == "cuda" and dtype == torch.float32 and torch.backends.cuda.matmul.allow_tf32:
        warnings.warn("TF32 matmuls are enabled: the pair kernels form |x_p - x_q|^2 by a matrix "
                      "product and lose accuracy with TF32; set torch.backends.cuda.matmul.allow_tf32 "
                      "= False (the PyTorch default)", RuntimeWarning, stacklevel=3)
    if tile is not None:
        if tile < 1:
            raise ValueError(f"tile must be positive, got {tile}")
        return int(tile)
    itemsize = torch.empty((), dtype=dtype).element_size()
    per_row = max(1, n_cols * width * itemsize)
    return max(1, min(block_bytes(device) // per_row, 1 << 16))


class Workspace:
    """``count`` reusable (tile, n_cols) arrays; ``get(i, b)`` is array i's first b rows.

    The block loops write every (tile, n) temporary into these (``out=`` / in place), so the hot
    loop allocates nothing large: besides saving time this matters on glibc, whose dynamic mmap
    threshold otherwise lets ~1 MiB blocks, allocated and freed thousands of times, fragment
    the heap (measured: +2 GiB resident at n = 20 000 for 13 MiB of live tensors).
    """

    def __init__(self, count: int, tile: int, n_cols: int, dtype: torch.dtype, device: torch.device) -> None:
        self.arrays = [torch.empty(tile, n_cols, dtype=dtype, device=device) for _ in range(count)]
        self.mask = torch.empty(tile, n_cols, dtype=torch.bool, device=device)

    def get(self, i: int, b: int) -> torch.Tensor:
        return self.arrays[i][:b]


def sq_dist(xr: torch.Tensor, yT: torch.Tensor, out: torch.Tensor, tmp: torch.Tensor) -> torch.Tensor:
    """|x_p - y_q|^2 for a block of rows xr (b, d) against all columns yT (d, n), into ``out`` (b, n).

    Summed coordinate by coordinate from the differences (``tmp`` (b, n) holds x_pk - y_qk), not
    expanded as |x|^2 + |y|^2 - 2 x.y: coincident points give exactly 0 and near pairs keep full
    relative accuracy, which the singular Landau weights |z|^gamma need. The one |x - y|^2 block of
    the torch path, shared by the Landau field and the blob and KDE kernels.
    """
    out.zero_()
    for k in range(xr.shape[1]):
        zk = torch.sub(xr[:, k, None], yT[k], out=tmp)
        out.addcmul_(zk, zk)
    return out


# ----------------------------------------------------------------------------- backend
BACKENDS = ("torch", "keops")
_BACKEND = os.environ.get("LANDAU_PAIR_BACKEND", "torch")


def set_backend(name: str) -> None:
    """Select how pair sums are evaluated: 'torch' (default) or 'keops' (needs pykeops)."""
    global _BACKEND
    if name not in BACKENDS:
        raise ValueError(f"unknown pair backend {name!r} (one of {', '.join(BACKENDS)})")
    if name == "keops" and not keops_available():
        raise ImportError("pair backend 'keops' needs the optional package pykeops (pip install pykeops)")
    _BACKEND = name


def backend() -> str:
    """The active pair backend ('keops' only if requested and importable)."""
    if _BACKEND not in BACKENDS:
        raise ValueError(f"LANDAU_PAIR_BACKEND={_BACKEND!r}: expected one of {', '.join(BACKENDS)}")
    return "keops" if _BACKEND == "keops" and keops_available() else "torch"


@functools.lru_cache(maxsize=None)
def keops_available() -> bool:
    try:
        import pykeops.torch  # noqa: F401
    except ImportError:
        return False
    return True


def lazy_pairs(rows: torch.Tensor, cols: torch.Tensor):
    """KeOps symbolic (i, j) views of row and column variables: (b, 1, k) and (1, n, k)."""
    from pykeops.torch import LazyTensor
    return LazyTensor(rows[:, None, :].contiguous()), LazyTensor(cols[None, :, :].contiguous())


# ----------------------------------------------------------------------------- distribution
def world() -> tuple[int, int]:
    """(rank, world size) of the active process group used for row sharding, else (0, 1)."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


def row_range(n_rows: int, rank: int, size: int) -> tuple[int, int]:
    """Balanced contiguous block [lo, hi) of ``n_rows`` owned by ``rank`` of ``size``."""
    base, extra = divmod(n_rows, size)
    lo = rank * base + min(rank, extra)
    return lo, lo + base + (rank < extra)


def gather_rows(local: torch.Tensor, n_rows: int, size: int) -> torch.Tensor:
    """all_gather every rank's row block (padded to equal length) into the full (n_rows, ...)."""
    dist = torch.distributed
    pad = -(-n_rows // size)
    backend = dist.get_backend()
    if backend == "gloo" and local.device.type != "cpu":
        send = local.cpu()                       # gloo gathers host tensors
    elif backend == "nccl" and local.device.type != "cuda":
        send = local.cuda()                      # NCCL gathers device tensors
    else:
        send = local
    padded = send.new_zeros((pad, *send.shape[1:]))
    padded[:len(send)] = send
    parts = [torch.empty_like(padded) for _ in range(size)]
    dist.all_gather(parts, padded)
    full = torch.cat([p[:hi - lo] for p, (lo, hi) in
                      zip(parts, (row_range(n_rows, r, size) for r in range(size)))])
    return full.to(local.device)


def map_rows(block_fn: Callable[[slice], torch.Tensor], n_rows: int, tile: int) -> torch.Tensor:
    """Concatenate ``block_fn(rows)`` over consecutive row blocks of size ``tile``.

    Under an initialised process group of size K > 1 this rank evaluates only its own rows and
    the result is all-gathered, so every rank returns the same full tensor.
    """
    rank, size = world()
    lo, hi = row_range(n_rows, rank, size) if size > 1 else (0, n_rows)
    parts = [block_fn(slice(i, min(i + tile, hi))) for i in range(lo, hi, tile)]
    local = torch.cat(parts) if parts else block_fn(slice(lo, lo))
    return gather_rows(local, n_rows, size) if size > 1 else local
