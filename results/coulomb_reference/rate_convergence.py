"""Initial covariance-rate error of each oracle on Example 5.4 against n (issue 23 item 1: the Coulomb
group's rate column and its convergence plot). First frame only (time.end = 1), seeds 0, 1, 2.

    python results/coulomb_reference/rate_convergence.py     # prints the table (rate_convergence.md), draws rate_convergence.png
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
HERE = Path(__file__).resolve().parent
ORACLES = ("gaussian", "expfam", "discoformer", "blob", "kde")
NS = (500, 1000, 2000, 4000, 8000)


def main() -> None:
    from solvers import simulate
    from solvers.compare import initial_rate_error, initial_rate_error_own
    res = {}
    for oracle in ORACLES:
        for n in NS:
            errs = []
            for seed in (0, 1, 2):
                ds = simulate(str(ROOT / "cases" / "landau_coulomb.yaml"), oracle=oracle,
                              set=[f"particles={n}", f"seed={seed}", "time.end=1", "output.particles=none"])
                errs.append((initial_rate_error(ds), initial_rate_error_own(ds)))
            res[oracle, n] = np.array(errs)
            print(oracle, n, res[oracle, n].mean(0).round(4), flush=True)
    lines = ["| oracle | " + " | ".join(f"n = {n}" for n in NS) + " |", "|---|" + "---|" * len(NS)]
    for oracle in ORACLES:
        lines.append(f"| {oracle} | " + " | ".join(f"{res[oracle, n][:, 0].mean():.4f} ({res[oracle, n][:, 1].mean():.4f})"
                                                 for n in NS) + " |")
    (HERE / "rate_convergence.md").write_text(
        "rate0_err, mean of seeds 0-2 (in brackets rate0_err_own: against the exact rate of the particles' own "
        "initial covariance)\n\n" + "\n".join(lines) + "\n")
    print("\n".join(lines))
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(6, 4))
    for oracle, color in zip(ORACLES, plt.cm.tab10.colors):
        e = np.array([res[oracle, n][:, 0] for n in NS])
        o = np.array([res[oracle, n][:, 1] for n in NS])
        ax.errorbar(NS, e.mean(1), yerr=e.std(1), color=color, marker="o", capsize=3, label=oracle)
        ax.plot(NS, o.mean(1), color=color, linestyle=":", marker=".")
    ax.plot(NS, [np.sqrt(2 / n) for n in NS], "k--", linewidth=0.8, label="sqrt(2/n)")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("n")
    ax.set_ylabel("initial covariance-rate error (Frobenius, relative)")
    ax.set_title("Example 5.4, t = 0: solid vs exact rate, dotted vs own-covariance rate", fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(HERE / "rate_convergence.png", dpi=120)


if __name__ == "__main__":
    main()
