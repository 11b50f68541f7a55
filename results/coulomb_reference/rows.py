"""Example 5.4 rows against the reference law (issue 23 items 3 and 5, small): each method's covariance
error against results/coulomb_reference/example_5_4_reference.nc, its initial-rate error and wall time.

    python results/coulomb_reference/rows.py      # runs into out/coulomb_rows/, prints the table (rows.md here)
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import xarray as xr

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
OUT, HERE = ROOT / "out" / "coulomb_rows", Path(__file__).resolve().parent
LAW = HERE / "example_5_4_reference.nc"
COMMON = ["output.particles=none", "time.end=40"]
RUNS = [(f"{o}", "landau_coulomb.yaml", o, n, [f"particles={n}"]) for n in (2000, 8000)
        for o in ("gaussian", "expfam", "blob", "kde")] + \
       [(f"binary:{s}", "landau_coulomb_binary.yaml", None, n, [f"particles={n}", f"equation.scheme={s}", "time.dt=0.05",
                                                                "output.every=20"])
        for n in (2000, 20000) for s in ("takizuka_abe", "nanbu")]


def main() -> None:
    from solvers import simulate
    from solvers.compare import initial_rate_error, reference_law_error
    OUT.mkdir(parents=True, exist_ok=True)
    points = {}
    lines = ["| method | n | seeds | ref_err_final (t = 40) | ref_err_max | rate0_err | wall s per run |", "|---|---|---|---|---|---|---|"]
    for label, case, oracle, n, over in RUNS:
        res = []
        for seed in (0, 1, 2):
            path = OUT / f"{label.replace(':', '_')}_n{n}_s{seed}.nc"
            if not path.exists():
                simulate(str(ROOT / "cases" / case), oracle=oracle, output=str(path),
                         set=COMMON + over + [f"seed={seed}", f"output.path={path}"])
            with xr.open_dataset(path) as ds:
                res.append((*reference_law_error(ds, LAW), initial_rate_error(ds), float(ds.attrs["wall_time_s"])))
        a = np.array(res)
        ms = lambda k, f=".4f": f"{a[:, k].mean():{f}} ± {a[:, k].std():{f}}"  # noqa: E731
        lines.append(f"| {label} | {n} | 3 | {ms(0)} | {ms(1)} | {ms(2)} | {ms(3, '.1f')} |")
        points.setdefault(label, []).append((n, a[:, 3].mean(), a[:, 0].mean(), a[:, 0].std()))
        print(lines[-1], flush=True)
    (HERE / "rows.md").write_text("\n".join(lines) + "\n")
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    for (label, pts), color in zip(points.items(), plt.cm.tab10.colors):
        n, w, e, sd = map(np.array, zip(*pts))
        ax.errorbar(w, e, yerr=sd, color=color, marker="o", capsize=3, label=label)
        for ni, wi, ei in zip(n, w, e):
            ax.annotate(f"n={ni}", (wi, ei), fontsize=7, xytext=(3, 3), textcoords="offset points")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("wall time per run, s (shared 2-core CPU, one thread)")
    ax.set_ylabel("covariance error vs reference at t = 40 (Frobenius)")
    ax.set_title("Example 5.4 (Coulomb): accuracy against cost, 3 seeds")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(HERE / "pareto.png", dpi=120)


if __name__ == "__main__":
    main()
