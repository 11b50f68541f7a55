"""Multi-process runs through PyTorch's own distributed engine (``torch.distributed``).

Launch any case with torchrun; K processes share the O(n^2) pair sums:

    torchrun --standalone --nproc-per-node K -m solvers.run CASE.yaml [options]

Design: the particle state is replicated and identical on every rank. Inside :func:`scope`
(which the run opens around its loop) each pair sum (Landau direct field, blob and KDE scores) is
evaluated by ``landau.pairs`` for this rank's contiguous block of ~n/K rows only, then an
``all_gather`` rebuilds the full result on every rank. Outside it pair sums are never sharded,
even with a process group initialised (``landau.pairs.sharded``).
Everything else (moment form, steppers, SBTM, diagnostics) runs unchanged and redundantly on
all ranks; rank 0 alone writes the NetCDF file and prints. Backend: gloo on CPU, NCCL on CUDA
(each rank uses the GPU ``LOCAL_RANK``). Without torchrun's environment (``WORLD_SIZE`` unset
or 1) nothing here does anything and the run is a plain single-process run.

It pays off when the O(n^2) pair sums dominate a step (Coulomb/any gamma != 0 direct field,
blob/KDE scores) and n is large enough that the per-stage all_gather of n x d numbers is small
against n^2 / K pair evaluations: on CPU with one process per core from n of a few thousand, on
GPUs from n ~ 10^5. Maxwell runs with the moment form and a non-pair oracle gain nothing.
"""
from __future__ import annotations

import atexit
import contextlib
import datetime
import os

import torch
import torch.distributed as dist

from landau import pairs


def launched() -> bool:
    """True when started by torchrun (or an equivalent launcher) with more than one process."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def setup(device: str | None = None) -> bool:
    """Initialise the default process group from torchrun's environment; return True if it did.

    Reads RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT (set by torchrun). Backend:
    NCCL when CUDA is available and the run is not forced to the CPU (``device='cpu'``), else gloo.
    With NCCL the current CUDA device is set to LOCAL_RANK.
    """
    if not launched() or not dist.is_available():
        return False
    if dist.is_initialized():
        return True
    use_cuda = torch.cuda.is_available() and device != "cpu"
    if use_cuda:
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    dist.init_process_group(backend="nccl" if use_cuda else "gloo",
                            timeout=datetime.timedelta(minutes=30))
    atexit.register(teardown)
    return True


def scope() -> contextlib.AbstractContextManager:
    """The context a run's loop executes in: ``pairs.sharded()`` over the default process group
    when this process belongs to a multi-process group (torchrun), else a null context."""
    return pairs.sharded() if world_size() > 1 else contextlib.nullcontext()


def teardown() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def rank() -> int:
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def world_size() -> int:
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def is_writer() -> bool:
    """Only rank 0 writes files and prints."""
    return rank() == 0


def barrier() -> None:
    if world_size() > 1:
        dist.barrier()


def agree(code: int) -> int:
    """The largest exit status over all ranks (so every rank exits alike)."""
    if world_size() == 1:
        return code
    t = torch.tensor([code], dtype=torch.int64)
    if dist.get_backend() == "nccl":
        t = t.cuda()
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return int(t.item())


def any_rank(flag: bool) -> bool:
    """True on every rank if it is True on any rank (a stop request reaches all ranks)."""
    return bool(agree(int(flag)))
