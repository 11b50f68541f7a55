"""Particle-in-cell push rate: one leapfrog step of the 1D Vlasov-Poisson system (deposit, field,
interpolation and push) in particles per second, side by side in one run with a plain C loop of
the same step (``benchmarks/pic_step.c``, compiled here with ``cc -O3 -march=native``, one thread).

Timed per (n, path, threads): the equation-level step as the run loop calls it,
``VlasovPoisson.advance`` then ``velocity`` at the new state (two fused compiled passes over the
particles on the CPU, one FFT Poisson solve on M = 128 cells), float64, d = 1; the median of
``--repeats`` steps after one warm-up step (compilation excluded). Paths: ``numba`` (the CPU
default) and ``torch`` (the CUDA path, here on the CPU). The C anchor runs ``--repeats`` steps.
Rate = n / seconds per step; per core = rate / threads.

    .venv/bin/python benchmarks/pic_push.py                          # n = 1e6 and 1e7 (~2 min)
    .venv/bin/python benchmarks/pic_push.py --n 1000000 --repeats 5 --load-note "..."

Writes ``results/benchmarks/pic.md`` and ``pic.json``.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import numba
import torch

from landau.pairs import use_backend
from landau.particle_shapes import ParticleShape
from landau.poisson import SpectralPoisson1D
from landau.vlasov_poisson import VlasovPoisson

ROOT = Path(__file__).resolve().parents[1]
L, M, DT = 4 * math.pi, 128, 0.05


def step_seconds(n: int, threads: int, path: str, repeats: int) -> float:
    torch.set_num_threads(threads)
    numba.set_num_threads(threads)
    g = torch.Generator().manual_seed(0)
    z = torch.stack([torch.rand(n, generator=g, dtype=torch.float64) * L,
                     torch.randn(n, generator=g, dtype=torch.float64)], 1)
    vp = VlasovPoisson(ParticleShape(1, L, M), SpectralPoisson1D(L, M))
    with use_backend("torch" if path == "torch" else "auto"):
        u = vp.velocity(z, None, 0.0)
        times = []
        for i in range(repeats + 1):
            start = time.perf_counter()
            z = vp.advance(z, 0.0, DT, u, None)
            u = vp.velocity(z, None, 0.0)
            if i:
                times.append(time.perf_counter() - start)
    return statistics.median(times)


def c_anchor(n: int, repeats: int, exe: Path) -> float:
    out = subprocess.run([str(exe), str(n), str(repeats)], capture_output=True, text=True, check=True).stdout
    return float(out.split()[2]) / repeats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, nargs="+", default=[1_000_000, 10_000_000])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--load-note", default="")
    parser.add_argument("--out", default=str(ROOT / "results" / "benchmarks"))
    args = parser.parse_args()
    load0 = os.getloadavg()
    cores = len(os.sched_getaffinity(0))
    exe = Path(tempfile.mkdtemp()) / "pic_step"
    subprocess.run(["cc", "-O3", "-march=native", "-o", str(exe), str(ROOT / "benchmarks" / "pic_step.c"), "-lm"],
                   check=True)
    rows = []
    for n in args.n:
        c = c_anchor(n, args.repeats, exe)
        rows.append({"n": n, "path": "C anchor (-O3 -march=native)", "threads": 1, "s_per_step": c})
        for path, threads in [("numba", 1), ("numba", min(2, cores)), ("torch", 1)]:
            if path == "torch" and n > 1_000_000:
                continue
            rows.append({"n": n, "path": path, "threads": threads,
                         "s_per_step": step_seconds(n, threads, path, args.repeats)})
        for r in rows:
            if r["n"] == n:
                r["rate"] = n / r["s_per_step"]
                r["rate_per_core"] = r["rate"] / r["threads"]
                r["of_C_per_core"] = r["rate_per_core"] / (n / c)
    load1 = os.getloadavg()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "pic.json").write_text(json.dumps({"rows": rows, "load": [load0, load1]}, indent=1))
    lines = ["# Particle-in-cell push rate (cpu)", "",
             f"Machine: {platform.processor() or platform.machine()}, {cores} cores in the affinity mask; torch "
             f"{torch.__version__}, numba {numba.__version__}; float64, d = 1, M = {M} cells, CIC; measured "
             f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}.",
             f"Load average (1/5/15 min) before: {[f'{x:.2f}' for x in load0]}, after: {[f'{x:.2f}' for x in load1]}"
             + (f" ({args.load_note})." if args.load_note else "."), "",
             "Command: `python benchmarks/pic_push.py " + " ".join(
                 [f"--n {' '.join(map(str, args.n))}", f"--repeats {args.repeats}"]) + "`", "",
             "One step = kick dt/2, drift, deposit, FFT Poisson solve, gather, kick dt/2 (what the run loop "
             "calls per step: `advance`, then `velocity` at the new state). Median of the repeats after a "
             "warm-up step. The C anchor is one thread; 'of C per core' = (rate / threads) / C rate.", "",
             "| n | path | threads | s per step | particles/s | per core | of C per core |",
             "|---|---|---|---|---|---|---|"]
    lines += [f"| {r['n']:.0e} | {r['path']} | {r['threads']} | {r['s_per_step']:.4f} | {r['rate']:.3g} | "
              f"{r['rate_per_core']:.3g} | {r['of_C_per_core']:.2f} |" for r in rows]
    (out / "pic.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
