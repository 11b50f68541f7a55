"""Isotropisation of a bi-Maxwellian (issue 23, item 4): every score oracle and binary collisions, against the
exact initial rate and a binary-collision reference.

    python results/isotropisation/run.py            # writes out/isotropisation/*.nc, this folder's table and PNG

Case: cases/landau_bimaxwellian.yaml (T_perp = 0.5, T_par = 1, gamma = -3, B = 1/24, t in [0, 60]), seed 0.
Deterministic runs: n = 4000, Heun dt = 1, oracles gaussian, expfam, blob, kde, discoformer, sbtm. Binary
collisions: n = 1e5, dt = 0.1, Takizuka-Abe and Nanbu. Reference: binary collisions (Nanbu), n = 2e5,
dt = 0.05, mean of seeds 1 and 2 (independent of every row's seed-0 draw). T_par = S_zz,
T_perp = (S_xx + S_yy)/2 (m = 1); a(t) = (T_par - T_perp)(t) / (T_par - T_perp)(0) removes the offset of each
run's initial draw, and "a err" is max_t |a(t) - a_ref(t)| over the reference's frames.
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
BINARY = ["equation.method=binary", "oracle=null", "time.integrator=euler"]
RUNS = {**{o: ["particles=4000"] for o in ("gaussian", "expfam", "blob", "kde", "discoformer", "sbtm")},
        **{f"binary:{s}": ["particles=100000", f"equation.scheme={s}", "time.dt=0.1", "output.every=10", *BINARY]
           for s in ("takizuka_abe", "nanbu")}}
REFERENCE = {f"reference_s{s}": ["particles=200000", "equation.scheme=nanbu", "time.dt=0.05", "output.every=20",
                                 f"seed={s}", *BINARY] for s in (1, 2)}


def run(label: str, overrides: list[str]) -> Path:
    from solvers import simulate
    path = OUT / f"{label.replace(':', '_')}.nc"
    if not path.exists():
        oracle = None if label.startswith(("binary", "reference")) else label
        simulate(CASE, oracle=oracle, set=overrides + [f"output.path={path}"], output=str(path))
    return path


def anisotropy(ds: xr.Dataset) -> tuple[np.ndarray, np.ndarray]:
    c = ds.covariance.values
    a = c[:, 2, 2] - 0.5 * (c[:, 0, 0] + c[:, 1, 1])
    return ds.time.values, a / a[0]


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    from solvers.compare import initial_rate, initial_rate_error, initial_rate_error_own, particles
    refs = []
    for label, overrides in REFERENCE.items():
        with xr.open_dataset(run(label, overrides)) as ds:
            refs.append(anisotropy(ds))
    t_ref = refs[0][0]
    a_ref = np.mean([a for _, a in refs], 0)
    ref_sd = np.abs(refs[0][1] - refs[1][1]).max() / 2
    rows, curves = [], {}
    for label, overrides in RUNS.items():
        with xr.open_dataset(run(label, overrides)) as ds:
            t, a = anisotropy(ds)
            exact, rate = ds.covariance_rate_exact.values[0], initial_rate(ds)
            curves[label] = (t, a)
            at = {T: float(np.interp(T, t, a)) for T in (10, 30, 60)}
            err = np.abs(np.interp(t_ref, t, a) - a_ref).max()
            rows.append(f"| {label} | {particles(ds)} | {rate[2, 2]:.5f} | {exact[2, 2]:.5f} | "
                        f"{rate[2, 2] / exact[2, 2] - 1:+.3f} | {initial_rate_error(ds):.3f} | "
                        f"{initial_rate_error_own(ds):.3f} | {at[10]:.4f} | {at[30]:.4f} | {at[60]:.4f} | {err:.4f} | "
                        f"{float(ds.attrs.get('wall_time_s', np.nan)):.0f} |")
    ref_at = {T: float(np.interp(T, t_ref, a_ref)) for T in (10, 30, 60)}
    rows.append(f"| reference (binary:nanbu, dt = 0.05, seeds 1, 2) | 200000 | | | | | | {ref_at[10]:.4f} | "
                f"{ref_at[30]:.4f} | {ref_at[60]:.4f} | ±{ref_sd:.4f} (seed s.e.) | |")
    table = ["| method | n | dT_par/dt at t0 | exact | rel. error | rate0_err (Frobenius) | rate0_err_own | a(10) | "
             "a(30) | a(60) | a err vs reference (max over t) | wall s |", "|" + "---|" * 12] + rows
    (HERE / "table.md").write_text("\n".join(table) + "\n")
    print("\n".join(table))

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for (label, (t, a)), color in zip(curves.items(), plt.cm.tab10.colors):
        ax.plot(t, a, color=color, label=label, linewidth=1)
    ax.plot(t_ref, a_ref, "k-", linewidth=2, alpha=0.5, label="reference (binary, n = 2e5, dt = 0.05)")
    with xr.open_dataset(OUT / "gaussian.nc") as ds:
        slope = ds.covariance_rate_exact.values[0, 2, 2]
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
