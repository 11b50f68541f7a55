"""Resource guard: estimate a run's memory and disk needs before it starts.

Memory is dominated by per-particle state and by the pair-sum blocks of ``landau.pairs``:

* particle state: x, U, s and the stepper's stage copies, ~ (4 + 3 * stages) n d bytes/value;
* pair blocks: a few (tile, n, d) temporaries, each at most max(block budget, n d) values;
* learning / transformer oracles: activations linear in n (width x depth per particle), as each
  oracle class declares (``ScoreOracle.memory_per_particle``).

The estimate is deliberately generous (x 1.5); a run is refused when it exceeds 80 % of the
memory available on the device, or when the output file would not fit on its disk.
"""
from __future__ import annotations

import shutil
from pathlib import Path

import torch

from landau.pairs import block_bytes
from oracles.registry import ORACLES
from solvers.steppers import STAGES


def oracle_bytes_per_particle(oracle: str | type | object, itemsize: int) -> int:
    """What an oracle declares (``memory_per_particle``): by registered kind name, or the oracle's
    class or object itself; an unregistered name (an object given to ``simulate``) counts 0."""
    if isinstance(oracle, str):
        if oracle not in ORACLES:
            return 0
        oracle = ORACLES.get(oracle, "oracle")
    per_particle = getattr(oracle, "memory_per_particle", None)
    return per_particle(itemsize) if per_particle is not None else 0


def estimate_memory(n: int, d: int, itemsize: int, device: torch.device, integrator: str,
                    oracles: list) -> int:
    """Bytes a run of n particles needs (``oracles``: the kinds, classes or objects in use; the
    largest buffers count)."""
    state = (4 + 3 * STAGES[integrator]) * n * d * itemsize
    block = max(block_bytes(device), n * d * itemsize)
    pairs = 8 * block
    learned = max((oracle_bytes_per_particle(k, itemsize) for k in oracles), default=0) * n
    return int(1.5 * (state + pairs + learned)) + 64 * 2**20


def available_memory(device: torch.device) -> int:
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0]
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 2**62  # unknown: do not refuse


def output_bytes(n: int, d: int, itemsize: int, frames: int) -> int:
    return frames * (2 * n * d * itemsize + 8 * (d * d + d + 4))


def check_resources(n: int, d: int, dtype: torch.dtype, device: torch.device, integrator: str,
                    oracles: list[str], frames: int, stored: int, output: Path | None) -> str | None:
    """None if the run fits, else a one-line reason with the largest n that fits. ``stored``:
    particles whose states each frame stores; ``output=None``: the frames are kept in memory."""
    itemsize = torch.empty((), dtype=dtype).element_size()
    avail = 0.8 * available_memory(device)
    size = output_bytes(stored, d, itemsize, frames)
    if output is None and size > 0.8 * available_memory(torch.device("cpu")):
        return (f"output.particles: {frames} in-memory frames of {stored} particles need about "
                f"{size / 2**30:.1f} GiB; store fewer particles or write a file")
    need = estimate_memory(n, d, itemsize, device, integrator, oracles)
    if need > avail:
        lo, hi = 1, n
        while lo < hi:  # largest n with estimate <= avail
            mid = (lo + hi + 1) // 2
            lo, hi = (mid, hi) if estimate_memory(mid, d, itemsize, device, integrator, oracles) <= avail else (lo, mid - 1)
        return (f"particles: {n} particles need about {need / 2**30:.1f} GiB on {device}, "
                f"{avail / 2**30:.1f} GiB usable; at most about {lo} particles fit")
    if output is None:
        return None
    disk = shutil.disk_usage(output.parent).free
    if size > disk:
        return f"output.path: the output needs about {size / 2**30:.1f} GiB, {disk / 2**30:.1f} GiB free on its disk"
    return None
