"""Isotropisation of a bi-Maxwellian (issue 23, item 4): score oracles against binary collisions.

    python results/isotropisation/run.py            # writes out/isotropisation/*.nc, this folder's README table and PNG

Reported: the normalised anisotropy a(t) = (T_par - T_perp)(t) / (T_par - T_perp)(0), which removes the
offset of each run's initial draw, and the initial rates against the exact one. Case: cases/landau_bimaxwellian.yaml (T_perp = 0.5, T_par = 1, gamma = -3, B = 1/24, t in [0, 60]).
Deterministic runs: n = 4000, Heun dt = 1, oracles gaussian, expfam, blob. Binary collisions:
n = 1e5, dt = 0.1, Takizuka-Abe and Nanbu. Seed 0. T_par = S_zz, T_perp = (S_xx + S_yy)/2 (m = 1).
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import xarray as xr

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
OUT, HERE = ROOT / "out" / "isotropisation", Path(__file__).resolve().parent
CASE = str(ROOT / "cases" / "landau_bimaxwellian.yaml")

RUNS = {"gaussian": ["particles=4000"], "expfam": ["particles=4000"], "blob": ["particles=4000"],
        "binary:takizuka_abe": ["particles=100000", "equation.method=binary", "equation.scheme=takizuka_abe",
                                "oracle=null", "time.dt=0.1", "time.integrator=euler", "output.every=10"],
        "binary:nanbu": ["particles=100000", "equation.method=binary", "equation.scheme=nanbu",
                         "oracle=null", "time.dt=0.1", "time.integrator=euler", "output.every=10"]}


def run(label: str, overrides: list[str]) -> Path:
    from solvers import simulate
    path = OUT / f"{label.replace(':', '_')}.nc"
    if not path.exists():
        oracle = None if label.startswith("binary") else label
        simulate(CASE, oracle=oracle, set=overrides + [f"output.path={path}"], output=str(path))
    return path


def temperatures(ds: xr.Dataset) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    c = ds.covariance.values
    return ds.time.values, c[:, 2, 2], 0.5 * (c[:, 0, 0] + c[:, 1, 1])


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    from solvers.compare import initial_rate, initial_rate_error, particles
    rows, curves = [], {}
    for label, overrides in RUNS.items():
        with xr.open_dataset(run(label, overrides)) as ds:
            t, tpar, tperp = temperatures(ds)
            exact = ds.covariance_rate_exact.values[0]
            rate = initial_rate(ds)
            curves[label] = (t, tpar, tperp)
            aniso = (tpar - tperp) / (tpar[0] - tperp[0])          # removes the initial draw's offset
            at = {T: float(np.interp(T, t, aniso)) for T in (10, 30, 60)}
            rows.append(f"| {label} | {particles(ds)} | "
                        f"{rate[2, 2]:.5f} | {exact[2, 2]:.5f} | {rate[2, 2] / exact[2, 2] - 1:+.3f} | "
                        f"{initial_rate_error(ds):.3f} | {at[10]:.4f} | {at[30]:.4f} | {at[60]:.4f} | "
                        f"{float(ds.attrs.get('wall_time_s', np.nan)):.0f} |")
            slope = exact[2, 2]
    table = ["| method | n | dT_par/dt at t0 | exact | rel. error | rate0_err (Frobenius) | a(10) | a(30) | "
             "a(60) | wall s |", "|" + "---|" * 10] + rows
    (HERE / "table.md").write_text("\n".join(table) + "\n")
    print("\n".join(table))

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for (label, (t, tpar, tperp)), color in zip(curves.items(), plt.cm.tab10.colors):
        ax.plot(t, (tpar - tperp) / (tpar[0] - tperp[0]), color=color, label=label)
    t0 = np.linspace(0, 20, 2)
    ax.plot(t0, 1.0 + 1.5 * slope * t0 / 0.5, "k:", label="exact initial slope (NRL rate)")
    ax.set_xlabel("t")
    ax.set_ylabel("(T_par - T_perp)(t) / (T_par - T_perp)(0)")
    ax.set_title("bi-Maxwellian isotropisation, gamma = -3, B = 1/24, seed 0")
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(HERE / "isotropisation.png", dpi=120)


if __name__ == "__main__":
    main()
