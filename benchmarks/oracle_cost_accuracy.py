"""Accuracy against cost of the score oracles in the solver loop: d = 3, n = 2000 ... 32768.

    NUMBA_NUM_THREADS=1 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 \\
        .venv/bin/python benchmarks/oracle_cost_accuracy.py [--n 2000 4096 ...] [--seeds 2]
        [--oracle SPEC --oracle SPEC ...] [--beyond] [--report] [--load-note "..."]

For every n, sample and seed the particles X (n, 3) are drawn i.i.d. from a density with a
closed-form score s*, the oracle is built from its spec (``NAME:key=value,...`` as ``--oracle`` of
``solvers.run``), ``prepare(X, t)`` is called, then one ``score(X, t)`` is timed and its error

    e = sum_p |s_p - s*(X_p)|^2 / sum_p |s*(X_p)|^2

recorded. Samples: ``bkw``, the BKW solution (``landau/bkw.py``, B = 1/24, C = 1) at its initial
time t0 = 5.5, where f vanishes at the origin to first order (the start of ``cases/landau_bkw.yaml``);
``mixture``, a fixed anisotropic three-component Gaussian mixture (``MIXTURE``; each covariance has
condition number 10 in its own rotated frame). Cost: one thread (torch.set_num_threads(1); numba
kernels with NUMBA_NUM_THREADS=1 set before import), the minimum over the calls at that n (samples
x seeds, all of the same size; the timings do not depend on the sample) of the process CPU time
(time.process_time: on a shared, overloaded machine the wall clock counts the waits for a core) and,
beside it, of the wall clock. Every oracle kind is called once at n = 256 first (numba compilation,
weight loading, allocator warm-up). Error: the mean over seeds per sample.

Settings with a ``max_n`` (the full-context transformer, O(n^2); the gradient heads, a backward
pass) are run only up to it. Results are appended to ``<out>/oracle_cost_accuracy.json`` after
every call (a rerun skips what is there); ``--report`` rewrites ``oracle_cost_accuracy.md`` (tables,
the crossover n where the transformer's default becomes cheaper than blob per call, the
recommended setting) and ``oracle_cost_accuracy.png`` (error against CPU time, one panel per n)
from the JSON alone. Not part of the test run.
"""
from __future__ import annotations

import os

for _var in ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import platform  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from landau.bkw import BKW  # noqa: E402
from landau.densities import GaussianMixture  # noqa: E402
from oracles.registry import OracleContext, build_oracle  # noqa: E402
from solvers.case import parse_oracle_spec  # noqa: E402

D = 3
DEFAULT_N = (2000, 4096, 8192, 16384, 32768)
#: (spec, largest n it is run at or None); the first discoformer spec is the shipped default
DEFAULT_SPECS: tuple[tuple[str, int | None], ...] = (
    ("blob", None), ("kde", None), ("expfam", None), ("gaussian", None),
    ("discoformer", None), ("discoformer:kernel_correction=false", None),
    ("discoformer:context=256", None), ("discoformer:context=512", None),
    ("discoformer:context=1024", None), ("discoformer:context=2048", None),
    ("discoformer:context=null", 16384),
    ("discoformer:context=1024,subsets=2", None), ("discoformer:context=1024,subsets=4", None),
    ("discoformer:context=1024,rotations=2", None), ("discoformer:rotations=2", None),
    ("discoformer:stein_degree=0", None), ("discoformer:context=1024,stein_degree=0", None),
    ("discoformer:heads=mean", 8192), ("discoformer:heads=gradient", 8192),
)
#: ``--beyond``: one n past the grid, for the settings whose crossover with blob lies near it
BEYOND_N = 65536
BEYOND_SPECS = ("blob", "kde", "expfam", "gaussian", "discoformer", "discoformer:kernel_correction=false",
                "discoformer:context=512",
                "discoformer:context=1024", "discoformer:context=2048")
DEFAULT_TRANSFORMER, BASELINE = "discoformer", "blob"
BKW_LAW = BKW(D, B=1 / 24)
#: how far beyond the grid a crossover is extrapolated (power laws through the last two points)
EXTRAPOLATE = 8
#: relative CPU-time difference treated as a tie by the recommendation (call-to-call spread here)
COST_TIE = 0.10
#: the hand-written reading below this line of an existing report is kept when --report rewrites it
READING = "<!-- reading: kept by --report -->"


def mixture() -> GaussianMixture:
    """Weights (0.5, 0.3, 0.2); covariances Q_k diag(lambda_k) Q_k^T with spectra of condition 10
    ((1, 0.3, 0.1) times 1, 0.6, 0.4) in frames Q_k drawn once from a fixed seed."""
    g = torch.Generator().manual_seed(20261202)
    means = torch.tensor([[-1.5, 0.0, 0.0], [1.5, 0.5, 0.0], [0.0, -1.0, 1.5]], dtype=torch.float64)
    spectrum = torch.tensor([1.0, 0.3, 0.1], dtype=torch.float64)
    covs = []
    for scale in (1.0, 0.6, 0.4):
        q, _ = torch.linalg.qr(torch.randn(D, D, generator=g, dtype=torch.float64))
        covs.append(scale * (q * spectrum) @ q.T)
    return GaussianMixture(torch.tensor([0.5, 0.3, 0.2], dtype=torch.float64), means, torch.stack(covs))


MIXTURE = mixture()


def draw(sample: str, n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor, float]:
    """(X, s*(X), t) for a sample name."""
    g = torch.Generator().manual_seed(1000 + seed)
    if sample == "bkw":
        t = BKW_LAW.t0()
        x = BKW_LAW.sample(n, t, g)
        return x, BKW_LAW.score(x, t), t
    if sample == "mixture":
        x = MIXTURE.sample(n, g)
        return x, MIXTURE.score(x), 0.0
    raise ValueError(f"unknown sample {sample!r} (bkw, mixture)")


def one_call(spec: str, x: torch.Tensor, t: float, seed: int) -> tuple[torch.Tensor, float, float]:
    """(score, CPU seconds, wall seconds) of one score call after prepare."""
    oracle = build_oracle(parse_oracle_spec(spec), OracleContext(dim=D, generator=torch.Generator().manual_seed(seed)))
    oracle.prepare(x, t)
    c0, w0 = time.process_time(), time.perf_counter()
    s = oracle.score(x, t)
    return s, time.process_time() - c0, time.perf_counter() - w0


def tree_state() -> str:
    """HEAD's short hash, with the files under oracles/ that differ from it (other work in progress)."""
    git = ["git", "-C", str(ROOT)]
    rev = subprocess.run([*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run([*git, "diff", "--name-only", "HEAD", "--", "oracles"], capture_output=True,
                           text=True).stdout.split()
    return rev + (f" + uncommitted {', '.join(dirty)}" if dirty else "")


def cpu_model() -> str:
    cpuinfo = Path("/proc/cpuinfo")
    names = [ln.split(":", 1)[1].strip() for ln in (cpuinfo.read_text().splitlines() if cpuinfo.exists() else [])
             if ln.startswith("model name")]
    return names[0] if names else platform.machine()


def load(path: Path) -> list[dict]:
    return json.loads(path.read_text()) if path.exists() else []


def measure(args: argparse.Namespace, path: Path) -> None:
    specs = [(s, None) for s in args.oracle] if args.oracle else list(DEFAULT_SPECS)
    if args.beyond:
        specs = [(s, None) for s in BEYOND_SPECS]
    records = load(path)
    tree = tree_state()
    done = {(r["spec"], r["n"], r["sample"], r["seed"]) for r in records}
    kinds = list(dict.fromkeys(s.partition(":")[0] for s, _ in specs))
    kinds += ["discoformer:kernel_correction=true"] if "discoformer" in kinds else []  # its compiled kernel
    for kind in kinds:                                                    # warm-up, untimed
        x, _, t = draw("bkw", 256, 0)
        one_call(kind, x, t, 0)
    for n in [BEYOND_N] if args.beyond else args.n:
        for spec, max_n in specs:
            if max_n is not None and n > max_n:
                continue
            for sample in args.samples:
                for seed in range(args.seeds):
                    if (spec, n, sample, seed) in done:
                        continue
                    x, exact, t = draw(sample, n, seed)
                    s, cpu, wall = one_call(spec, x, t, seed)
                    err = ((s - exact).square().sum() / exact.square().sum()).item()
                    records.append({"spec": spec, "n": n, "sample": sample, "seed": seed,
                                    "cpu_s": cpu, "wall_s": wall, "error": err, "tree": tree})
                    path.write_text(json.dumps(records, indent=1))
                    print(f"n={n:6d} {spec:42s} {sample:8s} seed {seed}: cpu {cpu:8.3f} s  wall {wall:8.3f} s  "
                          f"error {err:.4g}", flush=True)


# ----------------------------------------------------------------------------- report


def summary(records: list[dict]) -> dict[tuple[str, int], dict]:
    """Per (spec, n): min CPU and wall time over the calls, mean error per sample."""
    out: dict[tuple[str, int], dict] = {}
    for r in records:
        row = out.setdefault((r["spec"], r["n"]), {"cpu": math.inf, "wall": math.inf, "errors": {}})
        row["cpu"], row["wall"] = min(row["cpu"], r["cpu_s"]), min(row["wall"], r["wall_s"])
        row["errors"].setdefault(r["sample"], []).append(r["error"])
    for row in out.values():
        row["error"] = {k: sum(v) / len(v) for k, v in row["errors"].items()}
        row["mean_error"] = sum(row["error"].values()) / len(row["error"])
    return out


def crossover(rows: dict, spec: str, base: str, ns: list[int]) -> str:
    """The n above which ``spec`` costs less CPU time per call than ``base``: the first sign change
    of log(t_spec / t_base), linear in log n between grid points; beyond the grid, the power laws
    t ~ n^p through the last two grid points of each, up to ``EXTRAPOLATE`` times the largest n,
    marked as an extrapolation."""
    pts = [(n, math.log(rows[spec, n]["cpu"] / rows[base, n]["cpu"])) for n in ns
           if (spec, n) in rows and (base, n) in rows]
    if not pts:
        return "not measured"
    if pts[0][1] < 0:
        return f"cheaper already at n = {pts[0][0]} (ratio {math.exp(pts[0][1]):.2f})"
    for (n0, r0), (n1, r1) in zip(pts, pts[1:]):
        if r1 < 0:
            ln = math.log(n0) + r0 / (r0 - r1) * (math.log(n1) - math.log(n0))
            return f"n ≈ {math.exp(ln):.0f} (between {n0} and {n1}, interpolated in log n)"
    out = f"none up to {pts[-1][0]} (ratio at n = {pts[-1][0]}: {math.exp(pts[-1][1]):.2f})"
    if len(pts) > 1:
        (n0, r0), (n1, r1) = pts[-2:]
        slope = (r1 - r0) / (math.log(n1) - math.log(n0))      # p_spec - p_base
        n_cross = math.exp(math.log(n1) - r1 / slope) if slope < 0 else math.inf
        out += f"; extrapolated: n ≈ {n_cross:.0f}" if n_cross <= EXTRAPOLATE * n1 else \
            f"; not within {EXTRAPOLATE} x {n1} by extrapolation"
    return out


def recommend(rows: dict, ns: list[int], tolerance: float) -> tuple[str, list[str]]:
    """Among the transformer's settings measured at every n: those whose mean error is within
    ``tolerance`` (relative) of the best transformer setting at every n, cheapest first (total CPU
    time over ``ns``); the recommendation is the most accurate (sum of mean errors) of those costing
    at most ``COST_TIE`` more than the cheapest: timings differ by that much from call to call here."""
    specs = [s for s in dict.fromkeys(s for s, _ in rows) if s.startswith("discoformer")
             and all((s, n) in rows for n in ns)]
    if not specs:
        return "", []
    best = {n: min(rows[s, n]["mean_error"] for s in specs) for n in ns}
    cost = {s: sum(rows[s, n]["cpu"] for n in ns) for s in specs}
    ok = sorted((s for s in specs if all(rows[s, n]["mean_error"] <= (1 + tolerance) * best[n] for n in ns)),
                key=cost.__getitem__)
    if not ok:
        return "", []
    tied = [s for s in ok if cost[s] <= (1 + COST_TIE) * cost[ok[0]]]
    return min(tied, key=lambda s: sum(rows[s, n]["mean_error"] for n in ns)), ok


def pareto(points: list[tuple[float, float, str]]) -> set[str]:
    """Labels of the points no other point beats in both time and error."""
    return {lab for t, e, lab in points if not any(t2 <= t and e2 <= e and (t2, e2) != (t, e) for t2, e2, _ in points)}


def figure(rows: dict, ns: list[int], specs: list[str], path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    markers = "osD^v<>phH*Xd8P+x1234"
    style = {s: (markers[i % len(markers)], plt.cm.tab20(i % 20)) for i, s in enumerate(specs)}
    cols = min(3, len(ns))
    rows_ = -(-len(ns) // cols)
    fig, axes = plt.subplots(rows_, cols, figsize=(4.6 * cols, 3.9 * rows_ + 1.6), sharey=True, squeeze=False)
    for ax in axes.flat[len(ns):]:
        ax.set_visible(False)
    for ax, n in zip(axes.flat, ns):
        pts = [(rows[s, n]["cpu"], rows[s, n]["mean_error"], s) for s in specs if (s, n) in rows]
        front = sorted((p for p in pts if p[2] in pareto(pts)), key=lambda p: p[0])
        ax.plot([p[0] for p in front], [p[1] for p in front], "-", color="0.7", lw=1, zorder=0)
        for t, e, s in pts:
            m, c = style[s]
            key = s in (DEFAULT_TRANSFORMER, BASELINE)
            ax.scatter(t, e, marker=m, color=c, s=70 if key else 40, edgecolor="k" if key else None,
                       zorder=3 if key else 2, label=s)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_title(f"n = {n}")
        ax.set_xlabel("CPU time per score call (s, 1 thread)")
        ax.grid(True, which="both", alpha=0.3)
    for row in axes:
        row[0].set_ylabel("relative score error\n(mean of BKW t0, mixture)")
    handles = {h.get_label(): h for ax in axes.flat for h in ax.collections}
    fig.legend([handles[s] for s in specs if s in handles], [s for s in specs if s in handles],
               loc="lower center", ncol=3, fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 1.5 / (3.9 * rows_ + 1.6), 1, 1))
    fig.savefig(path, dpi=110)


def report(args: argparse.Namespace, path: Path) -> None:
    records = load(path)
    rows = summary(records)
    ns = sorted({n for _, n in rows})
    specs = list(dict.fromkeys(r["spec"] for r in records))
    samples = list(dict.fromkeys(r["sample"] for r in records))
    seeds = sorted({r["seed"] for r in records})
    cross = crossover(rows, DEFAULT_TRANSFORMER, BASELINE, ns)
    grid = [n for n in args.n if n in ns]      # the recommendation's grid (--n); ns may hold more
    rec, ok = recommend(rows, grid, args.tolerance)
    rec_cross = crossover(rows, rec, BASELINE, ns) if rec else "-"
    load_now = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    trees = ", ".join(dict.fromkeys(r.get("tree", "?") for r in records))
    lines = [
        "# Score oracles in the solver loop: accuracy against cost (d = 3)", "",
        "Generated by `benchmarks/oracle_cost_accuracy.py` (its docstring states the protocol).", "",
        "    export NUMBA_NUM_THREADS=1 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1",
        "    .venv/bin/python benchmarks/oracle_cost_accuracy.py            # the grid, every setting",
        f"    .venv/bin/python benchmarks/oracle_cost_accuracy.py --beyond   # n = {BEYOND_N}: "
        + ", ".join(BEYOND_SPECS),
        "    .venv/bin/python benchmarks/oracle_cost_accuracy.py --report"
        + (f' --load-note "{args.load_note}"' if args.load_note else ""), "",
        f"Machine: {cpu_model()}, {os.cpu_count()} cores shared with other "
        f"jobs; torch {torch.__version__}; tree at the measurement: {trees}. One thread. Load: {args.load_note or '-'}; "
        f"at report time `{load_now}`. Under such load the wall clock includes waits for a core, so the cost "
        "column is the process CPU time (min over the calls at that n); the wall clock is beside it. "
        "Both are noisy at the 10-30 % level here; ratios within one row of n were measured in the same run.", "",
        f"Samples: {', '.join(samples)} (BKW at t0 = {BKW_LAW.t0()}, the anisotropic Gaussian mixture of "
        f"the script); seeds {seeds}. Error: sum |s - s*|^2 / sum |s*|^2, mean over seeds. "
        "Transformer default: `discoformer` = context `trained` (4096 points for the shipped d = 3 "
        "weights; all particles below that), 1 subset, 1 rotation, heads `auto` (score head in d = 3), "
        "Stein correction of degree 2.", "",
        f"**Crossover** (the default transformer's CPU time per call below blob's): {cross}.", "",
        f"**Recommended transformer setting** (least total CPU time over the grid {grid} among the settings "
        f"whose mean error is within {args.tolerance:.0%} of the best transformer setting at every n; "
        f"costs within {COST_TIE:.0%} count as a tie, won by the lower error): "
        f"`{rec or 'none'}`; its crossover with blob: {rec_cross}. Settings passing the error rule, "
        f"cheapest first: {', '.join(f'`{s}`' for s in ok) or 'none'}.", "",
        "![accuracy against cost](oracle_cost_accuracy.png)", "",
        f"Cost ratio to blob and crossover n of every transformer setting measured at every n of the grid {grid}:", "",
        "| setting | " + " | ".join(f"CPU / blob at {n}" for n in ns) + " | cheaper than blob above |",
        "|---|" + "---:|" * (len(ns) + 1),
    ]
    for s in specs:
        if s.startswith("discoformer") and all((s, n) in rows for n in grid):
            ratios = " | ".join(f"{rows[s, n]['cpu'] / rows[BASELINE, n]['cpu']:.2f}"
                                if (BASELINE, n) in rows and (s, n) in rows else "-" for n in ns)
            lines.append(f"| `{s}` | {ratios} | {crossover(rows, s, BASELINE, ns)} |")
    lines += ["", "In the tables below ★ marks the settings on the Pareto front at that n (no other setting "
              "is both cheaper and more accurate in mean error).", ""]
    for n in ns:
        base = rows.get((BASELINE, n))
        lines += [f"## n = {n}", "",
                  "| oracle | CPU s / call | wall s / call | CPU / blob | " + " | ".join(f"error {s}" for s in samples)
                  + " | mean error |", "|---|---:|---:|---:|" + "---:|" * (len(samples) + 1)]
        front = pareto([(rows[s, n]["cpu"], rows[s, n]["mean_error"], s) for s in specs if (s, n) in rows])
        for s in sorted((s for s in specs if (s, n) in rows), key=lambda s: rows[s, n]["cpu"]):
            r = rows[s, n]
            ratio = f"{r['cpu'] / base['cpu']:.2f}" if base else "-"
            errs = " | ".join(f"{r['error'][k]:.4f}" if k in r["error"] else "-" for k in samples)
            lines.append(f"| `{s}`{' ★' if s in front else ''} | {r['cpu']:.3f} | {r['wall']:.3f} | {ratio} | {errs} | {r['mean_error']:.4f} |")
        lines.append("")
    md = path.parent / "oracle_cost_accuracy.md"
    old = md.read_text() if md.exists() else ""
    reading = old[old.index(READING):] if READING in old else READING + "\n"
    md.write_text("\n".join(lines) + "\n" + reading)
    figure(rows, ns, specs, path.parent / "oracle_cost_accuracy.png")
    print("\n".join(lines[:20]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, nargs="+", default=list(DEFAULT_N))
    ap.add_argument("--samples", nargs="+", default=["bkw", "mixture"])
    ap.add_argument("--seeds", type=int, default=2)
    ap.add_argument("--oracle", action="append", help="NAME or NAME:key=value,... (default: the built-in list)")
    ap.add_argument("--tolerance", type=float, default=0.10, help="error rule of the recommendation")
    ap.add_argument("--load-note", default="", help="what else ran (goes into the report)")
    ap.add_argument("--out", default=str(ROOT / "results" / "benchmarks"))
    ap.add_argument("--beyond", action="store_true", help=f"measure BEYOND_SPECS at n = {BEYOND_N} instead")
    ap.add_argument("--report", action="store_true", help="only rewrite the .md and .png from the JSON")
    args = ap.parse_args()
    torch.set_num_threads(1)
    path = Path(args.out) / "oracle_cost_accuracy.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    if not args.report:
        measure(args, path)
    report(args, path)


if __name__ == "__main__":
    main()
