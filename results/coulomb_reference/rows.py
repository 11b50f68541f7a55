"""Example 5.4 (Coulomb) rows against the reference law: the scoreboard's Coulomb group (issue 23, items 1, 3, 5).

    python results/coulomb_reference/rows.py      # runs into out/coulomb_rows/; writes results/scoreboard/coulomb.md,
                                                  # results/scoreboard/coulomb_rate_convergence.png and pareto.png here

Every score oracle (gaussian, expfam, blob, kde, discoformer, sbtm; the case's Euler dt = 1) at n = 500, 1000,
2000, 4000, 8000 and binary collisions (dt = 0.05; Takizuka-Abe and Nanbu at n = 2000, 2e4, Nanbu at 2e5),
t in [0, 40], seeds 0, 1, 2. Columns (:func:`solvers.compare.summarize`): ``rate0_err`` and ``rate0_err_own``
(initial covariance rate against the exact rate of the initial Gaussian, and of the Gaussian with the
particles' own covariance), ``ref_err_final`` / ``ref_err_max`` (Frobenius distance to
example_5_4_reference.nc, increments from the run's own initial covariance), distance to Sigma_inf, largest
entropy production, relative energy drift, wall time (one thread; the shared machine's load moved it by 2-5x
between runs), and ``cpu_s``: the CPU seconds of one run at one thread (measured apart, immune to the load: runs to
t = 2 and t = 6, extrapolated linearly to t = 40, seed 0; cached in out/coulomb_rows/cost.json), the cost axis of
pareto.png.
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np
import xarray as xr

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
OUT, HERE, BOARD = ROOT / "out" / "coulomb_rows", Path(__file__).resolve().parent, ROOT / "results" / "scoreboard"
LAW = HERE / "example_5_4_reference.nc"
ORACLES = ("gaussian", "expfam", "blob", "kde", "discoformer", "sbtm")
NS = (500, 1000, 2000, 4000, 8000)
SEEDS = (0, 1, 2)
BINARY = ["time.dt=0.05", "output.every=20"]
#: (label, case, oracle, n, overrides)
RUNS = [(o, "landau_coulomb.yaml", o, n, [f"particles={n}"]) for n in NS for o in ORACLES] + \
       [(f"binary:{s}", "landau_coulomb_binary.yaml", None, n, [f"particles={n}", f"equation.scheme={s}", *BINARY])
        for n in (2000, 20000) for s in ("takizuka_abe", "nanbu")] + \
       [("binary:nanbu", "landau_coulomb_binary.yaml", None, 200000, ["particles=200000", "equation.scheme=nanbu",
                                                                      *BINARY])]
#: the Pareto figure's points (their cpu_s measured)
PARETO_NS = (500, 2000, 4000, 8000, 20000, 200000)
COLUMNS = [("rate0_err", ".4f"), ("rate0_err_own", ".4f"), ("ref_err_final", ".4f"), ("ref_err_max", ".4f"),
           ("eq_dist_final", ".4f"), ("entropy_prod_max", ".2e"), ("energy_drift", ".1e"), ("wall_s", ".1f"),
           ("cpu_s", ".1f")]


def rows() -> dict[tuple[str, int], list[dict]]:
    from solvers import simulate
    from solvers.compare import summarize
    OUT.mkdir(parents=True, exist_ok=True)
    out: dict[tuple[str, int], list[dict]] = {}
    for label, case, oracle, n, over in RUNS:
        for seed in SEEDS:
            path = OUT / f"{label.replace(':', '_')}_n{n}_s{seed}.nc"
            if not path.exists():
                simulate(str(ROOT / "cases" / case), oracle=oracle, output=str(path),
                         set=["output.particles=none", "time.end=40", *over, f"seed={seed}", f"output.path={path}"])
            out.setdefault((label, n), []).append(summarize(path, reference_law=LAW))
        print(label, n, "done", flush=True)
    costs = cpu_costs()
    for (label, n), rs in out.items():
        for r in rs:
            r["cpu_s"] = costs.get(f"{label} {n}", float("nan"))
    return out


def cpu_costs() -> dict[str, float]:
    """CPU seconds of one run to t = 40 per (method, n): process time of runs to t = 2 and t = 6 (seed 0),
    extrapolated linearly (start-up such as SBTM's initial fit counted once), after a warm-up run at n = 100."""
    from solvers import simulate
    path = OUT / "cost.json"
    costs = json.loads(path.read_text()) if path.exists() else {}
    for label, case, oracle, n, over in RUNS:
        key = f"{label} {n}"
        if key in costs or n not in PARETO_NS:
            continue
        simulate(str(ROOT / "cases" / case), oracle=oracle, set=["output.particles=none", *over, "particles=100",
                                                                 "time.end=1"])          # warm-up: imports, compiled kernels
        spent = []
        for end in (2, 6):
            t = time.process_time()
            simulate(str(ROOT / "cases" / case), oracle=oracle,
                     set=["output.particles=none", *over, f"time.end={end}", "output.every=1000000", "seed=0"])
            spent.append(time.process_time() - t)
        costs[key] = spent[0] + (spent[1] - spent[0]) / 4 * 38
        path.write_text(json.dumps(costs, indent=1))
        print("cost", key, round(costs[key], 2), flush=True)
    return costs


def table(res: dict[tuple[str, int], list[dict]]) -> str:
    def ms(vals: list[float], fmt: str) -> str:
        a = np.array(vals, dtype=float)
        if np.isnan(a).all():
            return "n/a"
        return f"{a[0]:{fmt}}" if (a == a[0]).all() else f"{np.nanmean(a):{fmt}} ± {np.nanstd(a):{fmt}}"
    lines = ["| method | n | seeds | " + " | ".join(c for c, _ in COLUMNS) + " |", "|---|---|---|" + "---|" * len(COLUMNS)]
    for (label, n), rs in sorted(res.items(), key=lambda kv: (kv[0][0].startswith("binary"), kv[0][0], kv[0][1])):
        lines.append(f"| {label} | {n} | {len(rs)} | " + " | ".join(ms([r[c] for r in rs], f) for c, f in COLUMNS) + " |")
    return "\n".join(lines) + "\n"


def figures(res: dict[tuple[str, int], list[dict]]) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    labels = list(dict.fromkeys(label for label, _ in res))
    colors = dict(zip(labels, plt.cm.tab10.colors))
    get = lambda label, key: [(n, np.array([r[key] for r in rs])) for (lb, n), rs in res.items() if lb == label]  # noqa: E731
    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    for label in ORACLES:
        pts = get(label, "rate0_err")
        own = get(label, "rate0_err_own")
        ax.errorbar([n for n, _ in pts], [a.mean() for _, a in pts], yerr=[a.std() for _, a in pts], color=colors[label],
                    marker="o", capsize=3, label=label)
        ax.plot([n for n, _ in own], [a.mean() for _, a in own], color=colors[label], linestyle=":", marker=".")
    ax.plot(NS, [np.sqrt(2 / n) for n in NS], "k--", linewidth=0.8, label="sqrt(2/n)")
    ax.set(xscale="log", yscale="log", xlabel="n", ylabel="initial covariance-rate error (Frobenius, relative)")
    ax.set_title("Example 5.4, t = 0, 3 seeds: solid vs exact rate, dotted vs own-covariance rate", fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(BOARD / "coulomb_rate_convergence.png", dpi=120)
    fig, ax = plt.subplots(figsize=(7, 4.8))
    for label in labels:
        cpu = dict(get(label, "cpu_s"))
        err = [(n, a) for n, a in get(label, "ref_err_final") if np.isfinite(a).all() and np.isfinite(cpu[n]).all()]
        ax.errorbar([cpu[n].mean() for n, _ in err], [a.mean() for _, a in err], yerr=[a.std() for _, a in err],
                    color=colors[label], marker="s" if label.startswith("binary") else "o", capsize=3, label=label)
        for n, a in err:
            ax.annotate(f"{n:g}", (cpu[n].mean(), a.mean()), fontsize=6, xytext=(3, 3), textcoords="offset points")
    ax.set(xscale="log", yscale="log", xlabel="CPU seconds per run (one thread)",
           ylabel="covariance error vs reference at t = 40 (Frobenius)")
    ax.set_title("Example 5.4 (Coulomb): accuracy against cost, 3 seeds (labels: n)", fontsize=10)
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(HERE / "pareto.png", dpi=120)


def main() -> None:
    res = rows()
    text = table(res)
    (BOARD / "coulomb.md").write_text(
        "# Scoreboard, Coulomb group: Example 5.4 against the reference law, with the initial-rate column\n\n"
        "`python results/coulomb_reference/rows.py` (columns: its docstring; reference: "
        "results/coulomb_reference/README.md). Mean ± std over seeds 0, 1, 2; t = 40; cpu_s measured once per (method, n); "
        "wall_s on a shared, loaded machine.\n\n" + text)
    print(text)
    figures(res)


if __name__ == "__main__":
    main()
