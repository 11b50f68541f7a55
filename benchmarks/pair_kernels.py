"""Benchmark of the O(n^2) pair kernels: naive dense vs tiled vs moment form (vs KeOps, distributed).

    .venv/bin/python benchmarks/pair_kernels.py                       # CPU sweep + acceptance points
    .venv/bin/python benchmarks/pair_kernels.py --device cuda --dtype float32 --n 1000 10000 100000

Writes ``<out>/<device>.md`` (Markdown tables) and ``<out>/<device>.png`` (log-log plot), and
``<out>/<device>.json`` (raw records). Not part of the test run.

What is measured
----------------
* time per evaluation: minimum over ``--repeats`` evaluations after one warm-up evaluation
  (wall clock; on CUDA with synchronisation);
* pairs per second: n^2 / time (the blob score makes two passes; still counted as n^2 pairs);
* GFLOP/s from a fixed count of flops per pair (see FLOPS_PER_PAIR; counted for the direct
  difference form a fused kernel has to execute, not for whatever a method happens to run), and on
  CUDA the fraction of the device's float32 peak (``--peak-tflops``, default the H100 SXM's 67);
* peak memory: each measurement runs in a fresh subprocess; CPU peak = ru_maxrss after the first
  evaluation minus ru_maxrss after building the inputs (resident memory the evaluation added, from
  ``resource.getrusage``); CUDA peak = torch.cuda.max_memory_allocated minus the inputs.
  The naive dense methods are only run where their memory, computed exactly beforehand (live
  tensor bytes tracked on the meta device, no memory used), stays under ``--max-dense-gb``;
  larger n are reported with that computed figure only.
* ratios for the acceptance points are timed side by side in ONE process, alternating the two
  methods ``--repeats`` times (A B A B ...), so background load hits both alike.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import platform
import resource
import subprocess
import sys
import time
import weakref
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402
from torch.utils._python_dispatch import TorchDispatchMode  # noqa: E402

B, GAMMA = 1.0 / 24, -3.0


def flops_per_pair(kernel: str, d: int) -> int:
    """Flops per (p, q) pair, counting +, -, *, / , exp, rsqrt as one each.

    landau (gamma=-3): z, s_p-s_q (2d), |z|^2 and z.ds (2(2d-1)), rsqrt and cube (3),
      w|z|^2 and w z.ds (2), accumulate a ds - b z into U_p (4d)          -> 10d + 3
    blob: pass 1 z, |z|^2, /eps, exp, +=  (3d + 2); pass 2 the same kernel (3d + 1),
      1/Z_p + 1/Z_q and the product (2), accumulate w z (2d)               -> 8d + 5
    kde: (y-x)/h (2d), |.|^2 (2d-1), *-1/2, exp (2), accumulate w and w z (2d + 1) -> 6d + 2
    moments: O(n d^2), not a pair kernel (no pair flops).
    """
    return {"landau": 10 * d + 3, "blob": 8 * d + 5, "kde": 6 * d + 2}.get(kernel, 0)


# ----------------------------------------------------------------------------- the contenders
def naive_landau(x, s):
    """The textbook (n, n, d) broadcast."""
    z = x[:, None] - x[None]
    ds = s[:, None] - s[None]
    r2 = (z * z).sum(-1)
    c = (z * ds).sum(-1)
    w = torch.where(r2 > 0, r2, 1.0) ** (GAMMA / 2) * (r2 > 0)
    return -(B / len(x)) * ((w * r2)[..., None] * ds - (w * c)[..., None] * z).sum(1)


def naive_blob(x, eps):
    z = x[:, None] - x[None]
    k = torch.exp(-(z * z).sum(-1) / eps)
    zs = k.sum(1)
    w = k * (1 / zs[:, None] + 1 / zs[None, :])
    return (-(2 / eps) * z * w[..., None]).sum(1)


def naive_kde(x, h):
    z = (x[None] - x[:, None]) / h
    w = torch.softmax(-0.5 * (z * z).sum(-1), 1)
    return (w[..., None] * z).sum(1) / h


def previous_landau(x, s, tile=None):
    """The repository's previous tiled version: (tile, n, d) temporaries, 4 MiB blocks."""
    n, d = x.shape
    tile = tile or max(1, (4 << 20) // (n * d * x.element_size()))
    out = []
    for i in range(0, n, tile):
        z = x[i:i + tile, None] - x[None]
        ds = s[i:i + tile, None] - s[None]
        r2 = (z * z).sum(-1)
        w = torch.where(r2 > 0, r2, 1.0) ** (GAMMA / 2) * (r2 > 0)
        zds = (z * ds).sum(-1)
        out.append(((w * r2)[..., None] * ds - (w * zds)[..., None] * z).sum(1))
    return -(B / n) * torch.cat(out)


def keops_landau(x, s):
    from pykeops.torch import LazyTensor
    xi, xj = LazyTensor(x[:, None, :]), LazyTensor(x[None, :, :])
    si, sj = LazyTensor(s[:, None, :]), LazyTensor(s[None, :, :])
    z, ds = xi - xj, si - sj
    r2 = (z ** 2).sum(-1)
    a = r2.rsqrt()                      # KeOps' rsqrt(0) = 0: self pairs drop out
    c = (z * ds).sum(-1)
    return -(B / len(x)) * (a * ds - (a * a * a * c) * z).sum(1)


def make_call(kernel: str, method: str, x, s, tile):
    from landau.collision import landau_field_direct, maxwell_field
    from oracles.blob import blob_epsilon, blob_score
    from oracles.kde import bandwidth, kde_score
    if kernel == "landau":
        return {"naive": lambda: naive_landau(x, s), "previous": lambda: previous_landau(x, s),
                "tiled": lambda: landau_field_direct(x, s, GAMMA, B, tile=tile),
                "keops": lambda: keops_landau(x, s)}[method]
    if kernel == "moments":
        return lambda: maxwell_field(x, s, B)
    if kernel == "blob":
        eps = blob_epsilon(x[:2000])
        return {"naive": lambda: naive_blob(x, eps), "tiled": lambda: blob_score(x, eps, tile)}[method]
    h = bandwidth(x, "scott")
    return {"naive": lambda: naive_kde(x, h), "tiled": lambda: kde_score(x, x, h, tile)}[method]


def inputs(n: int, d: int, dtype, device, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=g, dtype=torch.float64) * torch.linspace(0.6, 1.4, d, dtype=torch.float64)
    s = -x + 0.1 * torch.randn(n, d, generator=g, dtype=torch.float64)
    return x.to(device, dtype), s.to(device, dtype)


# ----------------------------------------------------------------------------- exact dense memory
class LiveBytes(TorchDispatchMode):
    """Peak of the bytes held by live tensors that ops produce (meta device: nothing allocated)."""

    def __init__(self):
        super().__init__()
        self.live = self.peak = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in out if isinstance(out, (tuple, list)) else [out]:
            if isinstance(t, torch.Tensor) and not t._is_view() and t.untyped_storage().nbytes():
                nbytes = t.untyped_storage().nbytes()
                self.live += nbytes
                self.peak = max(self.peak, self.live)
                weakref.finalize(t, self._free, nbytes)
        return out

    def _free(self, nbytes):
        self.live -= nbytes


def dense_bytes(kernel: str, n: int, d: int, dtype) -> int:
    """Exact peak bytes of the naive dense method's temporaries (run on the meta device)."""
    x = torch.empty(n, d, dtype=dtype, device="meta")
    s = torch.empty(n, d, dtype=dtype, device="meta")
    h = torch.ones(d, dtype=dtype, device="meta")
    with LiveBytes() as spy:
        {"landau": lambda: naive_landau(x, s), "blob": lambda: naive_blob(x, 0.5),
         "kde": lambda: naive_kde(x, h)}[kernel]()
    return spy.peak


# ----------------------------------------------------------------------------- one measurement
def sync(device):
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def worker(spec: dict) -> dict:
    """Runs in a fresh process: time and peak memory of one (kernel, method, n, d)."""
    torch.set_num_threads(spec["threads"])
    dtype = getattr(torch, spec["dtype"])
    device = torch.device(spec["device"])
    x, s = inputs(spec["n"], spec["d"], dtype, device)
    call = make_call(spec["kernel"], spec["method"], x, s, spec.get("tile"))
    sync(device)
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
        base_cuda = torch.cuda.memory_allocated()
    t0 = time.perf_counter()
    call()
    sync(device)
    first = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - base
    if device.type == "cuda":
        peak = torch.cuda.max_memory_allocated() - base_cuda
    tracked = None
    if spec["method"] == "naive":                     # exact, computed on the meta device
        tracked = dense_bytes(spec["kernel"], spec["n"], spec["d"], dtype)
    elif spec["method"] != "keops":
        with LiveBytes() as spy:                        # exact live tensor bytes (slow: one extra call)
            call()
        tracked = spy.peak
    times = [first] if spec["repeats"] == 0 else []
    for _ in range(spec["repeats"]):
        t0 = time.perf_counter()
        call()
        sync(device)
        times.append(time.perf_counter() - t0)
    return {**spec, "time": min(times), "times": times, "first": first, "peak_bytes": max(peak, 0),
            "tensor_bytes": tracked}


def measure(spec: dict, timeout: float = 900) -> dict:
    proc = subprocess.run([sys.executable, __file__, "--worker", json.dumps(spec)], capture_output=True,
                          text=True, timeout=timeout, env={**os.environ, "OMP_NUM_THREADS": str(spec["threads"])})
    if proc.returncode != 0:
        return {**spec, "error": proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else "failed"}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def paired(spec_a: dict, spec_b: dict, repeats: int) -> dict:
    """Ratio time(a) / time(b) timed alternately in one process (run via --paired)."""
    proc = subprocess.run([sys.executable, __file__, "--paired", json.dumps([spec_a, spec_b, repeats])],
                          capture_output=True, text=True, timeout=1800,
                          env={**os.environ, "OMP_NUM_THREADS": str(spec_a["threads"])})
    if proc.returncode != 0:
        return {"error": proc.stderr.strip().splitlines()[-1]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def paired_worker(spec_a: dict, spec_b: dict, repeats: int) -> dict:
    torch.set_num_threads(spec_a["threads"])
    calls = []
    for spec in (spec_a, spec_b):
        x, s = inputs(spec["n"], spec["d"], getattr(torch, spec["dtype"]), torch.device(spec["device"]))
        calls.append((make_call(spec["kernel"], spec["method"], x, s, spec.get("tile")), spec["device"]))
    times = [[], []]
    for c, dev in calls:
        c()
        sync(dev)
    for _ in range(repeats):
        for i, (c, dev) in enumerate(calls):
            t0 = time.perf_counter()
            c()
            sync(dev)
            times[i].append(time.perf_counter() - t0)
    return {"a": spec_a, "b": spec_b, "times_a": times[0], "times_b": times[1],
            "ratio_min": min(times[0]) / min(times[1]),
            "ratio_median": sorted(times[0])[repeats // 2] / sorted(times[1])[repeats // 2]}


# ----------------------------------------------------------------------------- distributed
def _dist_rank(rank: int, size: int, port: int, spec: dict, out: str) -> None:
    import torch.distributed as dist
    torch.set_num_threads(spec["threads"])
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=size)
    x, s = inputs(spec["n"], spec["d"], getattr(torch, spec["dtype"]), torch.device("cpu"))
    call = make_call(spec["kernel"], "tiled", x, s, spec.get("tile"))
    call()
    times = []
    for _ in range(spec["repeats"]):
        dist.barrier()
        t0 = time.perf_counter()
        call()
        dist.barrier()
        times.append(time.perf_counter() - t0)
    if rank == 0:
        Path(out).write_text(json.dumps(times))
    dist.destroy_process_group()


def distributed_worker(spec: dict) -> dict:
    import socket
    import tempfile
    import torch.multiprocessing as mp
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with tempfile.TemporaryDirectory() as tmp:
        out = f"{tmp}/times.json"
        mp.spawn(_dist_rank, args=(spec["ranks"], port, spec, out), nprocs=spec["ranks"], join=True)
        times = json.loads(Path(out).read_text())
    return {**spec, "method": f"gloo x{spec['ranks']}", "time": min(times), "times": times, "peak_bytes": None}


def measure_distributed(spec: dict) -> dict:
    proc = subprocess.run([sys.executable, __file__, "--distributed-worker", json.dumps(spec)],
                          capture_output=True, text=True, timeout=1800,
                          env={**os.environ, "OMP_NUM_THREADS": str(spec["threads"])})
    if proc.returncode != 0:
        return {**spec, "error": proc.stderr.strip().splitlines()[-1]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


# ----------------------------------------------------------------------------- report
def fmt_bytes(b) -> str:
    if b is None:
        return "-"
    return f"{b / 2**20:.0f} MiB" if b < 2**30 else f"{b / 2**30:.2f} GiB"


def label(r: dict) -> str:
    return r["method"] + (f" ({r['threads']} threads)" if r.get("threads", 1) > 1 else "")


def row(r: dict, peak_tflops: float | None) -> str:
    if "error" in r:
        return f"| {r['kernel']} | {r['method']} | {r['d']} | {r['n']} | error: {r['error'][:60]} | | | | | |"
    pairs = r["n"] ** 2
    fl = flops_per_pair(r["kernel"], r["d"]) * pairs / r["time"]
    frac = f"{fl / (peak_tflops * 1e12):.1%}" if peak_tflops and fl else "-"
    pps = f"{pairs / r['time']:.3g}" if r["kernel"] != "moments" else "-"
    gfl = f"{fl / 1e9:.2f}" if fl else "-"
    return (f"| {r['kernel']} | {label(r)} | {r['d']} | {r['n']} | {r['time']:.4g} | {pps} | {gfl} | {frac} "
            f"| {fmt_bytes(r.get('tensor_bytes'))} | {fmt_bytes(r.get('peak_bytes'))} |")


HEADER = ("| kernel | method | d | n | time / eval (s) | pairs / s | GFLOP/s (counted) | of fp32 peak "
          "| peak tensor memory | RSS growth |\n|---|---|---|---|---|---|---|---|---|---|")


def plot(records: list[dict], path: Path, title: str) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    kernels = ["landau", "blob", "kde", "moments"]
    fig, axes = plt.subplots(1, 4, figsize=(18, 4.5))
    styles = {"naive": "o:", "previous": "^--", "tiled": "s-", "moments": "d-", "keops": "v-."}
    colors = {2: "C0", 3: "C1", 10: "C2"}
    for ax, kernel in zip(axes, kernels):
        for (method, d) in sorted({(label(r), r["d"]) for r in records if r["kernel"] == kernel}):
            pts = sorted((r["n"], r["time"]) for r in records
                         if r["kernel"] == kernel and label(r) == method and r["d"] == d and "time" in r)
            if pts:
                ax.loglog(*zip(*pts), styles.get(method, "x-"), color=colors.get(d, "k"), label=f"{method} d={d}")
        ax.set_title(kernel if kernel != "landau" else "landau (gamma=-3)")
        ax.set_xlabel("n")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
    axes[0].set_ylabel("time per evaluation (s)")
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, nargs="+", default=[1000, 3000, 10000])
    ap.add_argument("--d", type=int, nargs="+", default=[2, 3, 10])
    ap.add_argument("--kernels", nargs="+", default=["landau", "blob", "kde", "moments"])
    ap.add_argument("--dtype", default="float64", choices=["float32", "float64"])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--tile", type=int, default=None, help="override the automatic tile")
    ap.add_argument("--max-dense-gb", type=float, default=4.0, help="run naive dense only below this")
    ap.add_argument("--previous-max-n", type=int, default=3000, help="largest n for the previous kernel")
    ap.add_argument("--moments-n", type=int, nargs="+", default=[10**4, 10**5, 10**6])
    ap.add_argument("--no-acceptance", action="store_true", help="skip the acceptance measurements")
    ap.add_argument("--acceptance-n", type=int, default=20000, help="n of the acceptance points")
    ap.add_argument("--thread-n", type=int, default=10000, help="n of the thread / distributed comparison")
    ap.add_argument("--peak-tflops", type=float, default=None,
                    help="device float32 peak for the 'of peak' column (default: 67 on CUDA, none on CPU)")
    ap.add_argument("--out", default=str(ROOT / "results" / "benchmarks"))
    ap.add_argument("--from-json", help="only rewrite the report and plot from a previous run's JSON")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--paired", help=argparse.SUPPRESS)
    ap.add_argument("--distributed-worker", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        print(json.dumps(worker(json.loads(args.worker))))
        return
    if args.paired:
        print(json.dumps(paired_worker(*json.loads(args.paired))))
        return
    if args.distributed_worker:
        print(json.dumps(distributed_worker(json.loads(args.distributed_worker))))
        return

    if args.from_json:
        saved = json.loads(Path(args.from_json).read_text())
        sys.argv = saved["argv"]
        if len(saved["acceptance"]) > 1:                  # JSON turned the thread-count keys into strings
            saved["acceptance"][1][6] = {int(k): v for k, v in saved["acceptance"][1][6].items()}
        write_report(args, saved["records"], saved["skipped"], saved["acceptance"], saved["device_name"],
                     saved["cpu_model"], saved["peak_tflops"], saved["keops"], saved["wall"], saved["when"])
        return
    device = torch.device(args.device)
    peak_tflops = args.peak_tflops or (67.0 if device.type == "cuda" else None)
    try:
        import pykeops  # noqa: F401
        have_keops = True
    except ImportError:
        have_keops = False
    dname = (torch.cuda.get_device_name(device) if device.type == "cuda"
             else (platform.processor() or platform.machine()))
    try:
        cpu_model = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        cpu_model = platform.machine()
    dtype = getattr(torch, args.dtype)
    base = {"dtype": args.dtype, "device": args.device, "threads": args.threads,
            "repeats": args.repeats, "tile": args.tile}
    itemsize = torch.empty((), dtype=dtype).element_size()
    limit = args.max_dense_gb * 2**30
    records, skipped = [], []
    started = time.perf_counter()

    def add(r):
        records.append(r)
        print(row(r, peak_tflops), flush=True)

    for kernel in [k for k in args.kernels if k != "moments"]:
        for d in args.d:
            for n in args.n:
                methods = ["naive", "tiled"] + (["previous"] if kernel == "landau" and n <= args.previous_max_n else [])
                methods += ["keops"] if kernel == "landau" and have_keops else []
                for method in methods:
                    if method == "naive":
                        need = dense_bytes(kernel, n, d, dtype)
                        if need > limit:
                            skipped.append({"kernel": kernel, "d": d, "n": n, "bytes": need})
                            continue
                    add(measure({**base, "kernel": kernel, "method": method, "n": n, "d": d}))
    if "moments" in args.kernels:
        for n in args.moments_n:
            add(measure({**base, "kernel": "moments", "method": "moments", "n": n, "d": 3}))

    acceptance = []
    if not args.no_acceptance and device.type == "cpu":
        acc = {**base, "threads": args.threads}
        n_big = args.acceptance_n
        # 1. Coulomb field, n = 20 000, d = 3: tiled time and memory; naive memory exact; ratio
        tiled = measure({**acc, "kernel": "landau", "method": "tiled", "n": n_big, "d": 3, "repeats": 2})
        add(tiled)
        need = dense_bytes("landau", n_big, 3, dtype)
        n_fit = max(n for n in (500, 1000, 2000, 3000, 4000, 5000, 6000, 8000, 10000)
                    if dense_bytes("landau", n, 3, dtype) <= limit)
        naive_fit = measure({**acc, "kernel": "landau", "method": "naive", "n": n_fit, "d": 3, "repeats": 2})
        add(naive_fit)
        pr = paired({**acc, "kernel": "landau", "method": "naive", "n": n_fit, "d": 3},
                    {**acc, "kernel": "landau", "method": "tiled", "n": n_fit, "d": 3}, args.repeats)
        prev = paired({**acc, "kernel": "landau", "method": "previous", "n": n_big, "d": 3},
                      {**acc, "kernel": "landau", "method": "tiled", "n": n_big, "d": 3}, 1)
        acceptance.append(("Coulomb field n=20000 d=3 " + args.dtype, tiled, need, n_fit, naive_fit, pr, prev))
        # 2. Maxwell moment form, n = 10^6
        mom = next((r for r in records if r["kernel"] == "moments" and r["n"] == 10**6), None)
        if mom is None:
            mom = measure({**acc, "kernel": "moments", "method": "moments", "n": 10**6, "d": 3})
            add(mom)
        # 3. blob, n = 20 000
        btiled = measure({**acc, "kernel": "blob", "method": "tiled", "n": n_big, "d": 3, "repeats": 2})
        add(btiled)
        bneed = dense_bytes("blob", n_big, 3, dtype)
        bn_fit = max(n for n in (500, 1000, 2000, 3000, 4000, 5000, 6000, 8000, 10000)
                     if dense_bytes("blob", n, 3, dtype) <= limit)
        bpr = paired({**acc, "kernel": "blob", "method": "naive", "n": bn_fit, "d": 3},
                     {**acc, "kernel": "blob", "method": "tiled", "n": bn_fit, "d": 3}, args.repeats)
        # 4. threads: 1 vs 2 on the tiled Coulomb kernel, n = 10 000 (paired, same process)
        thr = {}
        for t in (1, 2):
            thr[t] = measure({**acc, "threads": t, "kernel": "landau", "method": "tiled", "n": args.thread_n, "d": 3})
            add(thr[t])
        # 5. distributed: 2 gloo ranks x 1 thread vs 1 process x 1 thread
        dist_r = measure_distributed({**acc, "threads": 1, "ranks": 2, "kernel": "landau",
                                      "n": args.thread_n, "d": 3})
        add({**dist_r, "kernel": "landau"})
        acceptance.append(("extras", mom, btiled, bneed, bn_fit, bpr, thr, dist_r))

    write_report(args, records, skipped, acceptance, dname, cpu_model, peak_tflops, have_keops,
                 time.perf_counter() - started)


def write_report(args, records, skipped, acceptance, dname, cpu_model, peak_tflops, have_keops, wall, when=None):
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    tag = torch.device(args.device).type
    when = when or time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    lines = [f"# Pair-kernel benchmark ({tag})", "",
             f"Device: {dname if tag == 'cuda' else cpu_model}, {os.cpu_count()} logical cores; "
             f"torch {torch.__version__}; dtype {args.dtype}; {args.threads} thread(s) per process unless noted; "
             f"measured {when}, wall {wall / 60:.1f} min.",
             f"KeOps: {'installed' if have_keops else 'not installed (column absent)'}.", "",
             "Command: `.venv/bin/python benchmarks/pair_kernels.py " + " ".join(sys.argv[1:]) + "`", "",
             "The machine is shared (other jobs were running), so absolute times are noisy; ratios are taken "
             "side by side in one process (alternating A B A B, min over repeats). Time: min over repeats "
             "after a warm-up. Peak memory: extra resident memory of one evaluation in a fresh process "
             "(ru_maxrss after minus before; a high-water mark, so small blocks read 0) and peak tensor memory "
             "(bytes of live tensors the evaluation creates, tracked op by op; for naive dense computed exactly on "
             "the meta device). Flop counts per pair: Landau 10d+3, "
             "blob 8d+5 (two passes), KDE 6d+2 (see `flops_per_pair`).", ""]
    if acceptance:
        (_, tiled, need, n_fit, naive_fit, pr, prev) = acceptance[0]
        (_, mom, btiled, bneed, bn_fit, bpr, thr, dist_r) = acceptance[1]
        ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        lines += ["## Acceptance points", "",
                  "| check | measured | target |", "|---|---|---|"]
        if "time" in tiled:
            lines.append(f"| Coulomb field n={args.acceptance_n} d=3 {args.dtype}, tiled: time / peak tensor memory / "
                         f"RSS growth | {tiled['time']:.2f} s / {fmt_bytes(tiled['tensor_bytes'])} / "
                         f"{fmt_bytes(tiled['peak_bytes'])} | < 1 GB |")
        lines.append(f"| naive dense (n,n,d) Coulomb at n={args.acceptance_n}: peak memory (computed exactly, meta device) | "
                     f"{fmt_bytes(need)}{' (more than this machine has: ' + fmt_bytes(ram) + ')' if need > ram else ''} | reported |")
        if "time" in naive_fit:
            lines.append(f"| naive dense Coulomb at n={n_fit} (largest under {args.max_dense_gb:g} GiB): time / peak memory "
                         f"(computed {fmt_bytes(dense_bytes('landau', n_fit, 3, getattr(torch, args.dtype)))}) | "
                         f"{naive_fit['time']:.2f} s / {fmt_bytes(naive_fit['peak_bytes'])} measured | |")
        if "ratio_min" in pr:
            lines.append(f"| Coulomb speed-up tiled vs naive dense, n={n_fit} (paired) | "
                         f"{pr['ratio_min']:.1f}x (median {pr['ratio_median']:.1f}x) | >= 3x |")
        if "ratio_min" in prev:
            lines.append(f"| Coulomb speed-up tiled vs previous (tile,n,d) kernel, n={args.acceptance_n} (paired, 1 repeat) | "
                         f"{prev['ratio_min']:.1f}x ({min(prev['times_a']):.3g} s vs {min(prev['times_b']):.3g} s) | |")
        if mom and "time" in mom:
            lines.append(f"| Maxwell moment form n=10^6 d=3 | {mom['time']:.3f} s | < 1 s |")
        if "time" in btiled:
            lines.append(f"| blob score n={args.acceptance_n} d=3, tiled: time / peak tensor memory / RSS growth | "
                         f"{btiled['time']:.2f} s / {fmt_bytes(btiled['tensor_bytes'])} / {fmt_bytes(btiled['peak_bytes'])} | |")
        lines.append(f"| naive dense (n,n,d) blob at n={args.acceptance_n}: peak memory (computed exactly) | {fmt_bytes(bneed)} | |")
        if "ratio_min" in bpr:
            lines.append(f"| blob speed-up tiled vs naive dense, n={bn_fit} (paired) | {bpr['ratio_min']:.1f}x "
                         f"(median {bpr['ratio_median']:.1f}x) | >= 2x |")
        if all("time" in thr[t] for t in (1, 2)):
            lines.append(f"| tiled Coulomb n={args.thread_n}: 1 thread vs 2 threads | {thr[1]['time']:.2f} s vs "
                         f"{thr[2]['time']:.2f} s | (report) |")
        if "time" in dist_r:
            one = thr[1]["time"] if "time" in thr[1] else float("nan")
            lines.append(f"| tiled Coulomb n={args.thread_n}: 2 gloo ranks x 1 thread vs 1 process x 1 thread | "
                         f"{dist_r['time']:.2f} s vs {one:.2f} s | (report) |")
        lines.append("")
    lines += ["## Sweep", "", HEADER] + [row(r, peak_tflops) for r in records] + [""]
    if skipped:
        lines += ["Naive dense runs skipped (computed peak memory above the limit): " +
                  "; ".join(f"{s['kernel']} d={s['d']} n={s['n']}: {fmt_bytes(s['bytes'])}" for s in skipped), ""]
    lines += [f"![log-log plot]({tag}.png)", ""]
    (out / f"{tag}.md").write_text("\n".join(lines))
    (out / f"{tag}.json").write_text(json.dumps(
        {"records": records, "skipped": skipped, "acceptance": acceptance, "argv": sys.argv, "device_name": dname,
         "cpu_model": cpu_model, "peak_tflops": peak_tflops, "keops": have_keops, "wall": wall, "when": when},
        indent=1, default=str))
    plot(records, out / f"{tag}.png", f"pair kernels, {args.dtype}, {tag}: {dname if tag == 'cuda' else cpu_model}")
    print(f"wrote {out / f'{tag}.md'}")


if __name__ == "__main__":
    main()
