"""Where the pair sums switch to matrix-product distances: KDE and blob scores against d.

    .venv/bin/python benchmarks/pair_distance_dim.py                      # n = 2048, ~5 min on a busy core
    .venv/bin/python benchmarks/pair_distance_dim.py --n 1024 --dims 8 32 100

Three paths of the same pair sum (``landau/pairs.py``), side by side, one thread:

* ``compiled`` -- the numba per-pair loops (the CPU default below ``pairs.MATMUL_MIN_DIM``);
* ``loop``     -- the torch blocks with |x - y|^2 summed coordinate by coordinate;
* ``matmul``   -- the torch blocks with |x - y|^2 = |x|^2 + |y|^2 - 2 x.y (``pairs.sq_dist_matmul``,
  the default from ``pairs.MATMUL_MIN_DIM`` on).

Samples: N(0, I_d); KDE bandwidth h = 4 sigma (wide enough that the weights do not collapse onto
the self pair at d = 100, where Scott's h ~ sigma gives scores of ~1e-20 and a meaningless
comparison), the blob bandwidth (blob). Time: minimum over
--repeats rounds in which the paths alternate (the machine's load hits all alike). Also the
largest relative difference of the matmul path from the compiled one. Prints a markdown table.
"""
from __future__ import annotations

import argparse
import contextlib
import time

import torch

from landau import pairs
from oracles.blob import blob_epsilon, blob_score
from oracles.kde import kde_score


@contextlib.contextmanager
def path(name: str):
    """Force one path: the backend and the dimension from which distances are matrix products."""
    saved = pairs.MATMUL_MIN_DIM
    pairs.MATMUL_MIN_DIM = 1 if name == "matmul" else 10**9
    try:
        with pairs.use_backend("numba" if name == "compiled" else "torch"):
            yield
    finally:
        pairs.MATMUL_MIN_DIM = saved


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=2048)
    p.add_argument("--dims", type=int, nargs="+", default=[4, 8, 10, 12, 16, 32, 100])
    p.add_argument("--kernels", nargs="+", default=["kde", "blob"], choices=["kde", "blob"])
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args()
    torch.set_num_threads(1)
    names = ("compiled", "loop", "matmul")
    print(f"n = {args.n}, float64, 1 thread; seconds per score call (min of {args.repeats})\n", flush=True)
    print("| kernel | d | compiled | torch loop | torch matmul | compiled / matmul | max rel. diff matmul |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for kernel in args.kernels:
        for d in args.dims:
            x = torch.randn(args.n, d, generator=torch.Generator().manual_seed(d), dtype=torch.float64)
            h, eps = 4 * x.std(0), blob_epsilon(x)
            call = (lambda: kde_score(x, x, h)) if kernel == "kde" else (lambda: blob_score(x, eps))
            best, out = {k: float("inf") for k in names}, {}
            for k in names:  # warm-up (numba compilation) and the results
                with path(k):
                    out[k] = call()
            for _ in range(args.repeats):
                for k in names:
                    with path(k):
                        t0 = time.perf_counter()
                        call()
                        best[k] = min(best[k], time.perf_counter() - t0)
            diff = ((out["matmul"] - out["compiled"]).norm(dim=1).max() / out["compiled"].norm(dim=1).max()).item()
            print(f"| {kernel} | {d} | {best['compiled']:.3f} | {best['loop']:.3f} | {best['matmul']:.3f} "
                  f"| {best['compiled'] / best['matmul']:.1f} | {diff:.1e} |", flush=True)


if __name__ == "__main__":
    main()
