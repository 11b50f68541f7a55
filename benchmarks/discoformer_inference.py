"""DiScoFormer inference at scale: time and memory of one oracle evaluation (queries = context).

    .venv/bin/python benchmarks/discoformer_inference.py [--device cpu] [--n 1000 4000 ...]

A randomly initialised network of the paper's size (width 128, 4 layers, 8 heads, FFN 512) is
timed -- inference cost does not depend on the weights. Three modes per n:
full context (fused scaled-dot-product attention over all n particles, O(n^2) time),
subsampled context (m particles, O(n m)) and subsampled context with query batching.
Peak memory: extra resident memory (CPU, ru_maxrss growth in a fresh process) or
torch.cuda.max_memory_allocated (GPU); an (n, n) attention matrix would show up as n^2 * 4 bytes
per head and batch. Writes ``<out>/discoformer_<device>.md``. Not part of the test run.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402


def worker(spec: dict) -> dict:
    from oracles.discoformer.model import DiScoFormer, ModelConfig
    torch.set_num_threads(spec["threads"])
    device = torch.device(spec["device"])
    torch.manual_seed(0)
    model = DiScoFormer(ModelConfig(dim=spec["d"])).to(device).eval().requires_grad_(False)
    x = torch.randn(spec["n"], spec["d"], device=device)
    g = torch.Generator(device="cpu").manual_seed(0)
    kw = {"context_size": spec["m"], "generator": g, "query_batch": spec["qb"]}
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base_cuda = torch.cuda.memory_allocated()
    times = []
    with torch.inference_mode():
        for _ in range(spec["repeats"] + 1):
            t0 = time.perf_counter()
            model(x, **kw)
            if device.type == "cuda":
                torch.cuda.synchronize()
            times.append(time.perf_counter() - t0)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - base
    if device.type == "cuda":
        peak = torch.cuda.max_memory_allocated() - base_cuda
    return {**spec, "time": min(times[1:]) if len(times) > 1 else times[0], "peak_bytes": peak}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--d", type=int, default=3)
    ap.add_argument("--n", type=int, nargs="+", default=[1000, 4000, 16000, 100000])
    ap.add_argument("--full-max-n", type=int, default=4000, help="largest n with the full context")
    ap.add_argument("--m", type=int, default=1024, help="subsampled context size")
    ap.add_argument("--query-batch", type=int, default=4096)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--out", default=str(ROOT / "results" / "benchmarks"))
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        print(json.dumps(worker(json.loads(args.worker))))
        return
    rows = []
    for n in args.n:
        modes = ([("full context", None, None)] if n <= args.full_max_n else []) + \
                [(f"context m={args.m}", args.m, None),
                 (f"context m={args.m}, query batch {args.query_batch}", args.m, args.query_batch)]
        for name, m, qb in modes:
            spec = {"device": args.device, "d": args.d, "n": n, "m": m, "qb": qb, "threads": args.threads,
                    "repeats": args.repeats, "mode": name}
            proc = subprocess.run([sys.executable, __file__, "--worker", json.dumps(spec)], capture_output=True,
                                  text=True, timeout=1800, env={**os.environ, "OMP_NUM_THREADS": str(args.threads)})
            r = json.loads(proc.stdout.strip().splitlines()[-1]) if proc.returncode == 0 else \
                {**spec, "error": (proc.stderr.strip().splitlines() or ["failed"])[-1]}
            rows.append(r)
            print(r, flush=True)
    dev = torch.cuda.get_device_name() if args.device == "cuda" else "CPU (2 shared cores)"
    lines = [f"# DiScoFormer inference ({args.device})", "",
             f"Device: {dev}; torch {torch.__version__}; float32; {args.threads} thread(s); paper-size network "
             f"(width 128, 4 layers, 8 heads), random weights; d = {args.d}; queries = context = n particles. "
             "Time: min over repeats after a warm-up. Memory: ru_maxrss growth of a fresh process (CPU) / "
             "max_memory_allocated (GPU).", "",
             f"Command: `.venv/bin/python benchmarks/discoformer_inference.py {' '.join(sys.argv[1:])}`", "",
             "| n | mode | time (s) | peak memory | n x n float32 per head would be |", "|---|---|---|---|---|"]
    for r in rows:
        t = f"{r['time']:.3f}" if "time" in r else r["error"][:60]
        mem = f"{r['peak_bytes'] / 2**20:.0f} MiB" if "peak_bytes" in r else "-"
        lines.append(f"| {r['n']} | {r['mode']} | {t} | {mem} | {r['n'] ** 2 * 4 / 2**20:.0f} MiB |")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    tag = torch.device(args.device).type
    (out / f"discoformer_{tag}.md").write_text("\n".join(lines) + "\n")
    print(f"wrote {out / f'discoformer_{tag}.md'}")


if __name__ == "__main__":
    main()
