"""A reference covariance law S(t) for Example 5.4 (Coulomb, gamma = -3, IC normal, t in [0, 40]); issue 23, item 3.

    python results/coulomb_reference/run.py        # runs into out/coulomb_reference/, writes example_5_4_reference.nc here
    python results/coulomb_reference/run.py NAME   # only the run NAME (of RUNS; to run several at once)

Binary collisions (Nanbu, the smaller step bias) at n = 1e6, dt = 0.05, seeds 0, 1, 2; the same at dt = 0.1
(seed 0) for the step bias; and the deterministic method with the expfam oracle (the most accurate score
method on this case, rows.md) at n = 2e4, Heun dt = 1, seeds 0 and 1. The file holds time (t = 0, 1, ..., 40),
``covariance`` (the mean of the binary seeds), ``covariance_seed_sd`` (the standard error of that mean),
``covariance_binary_dt01`` and ``covariance_deterministic`` (mean of its seeds) with
``covariance_deterministic_sd``; read by ``python -m solvers.compare RUN.nc --reference-law example_5_4_reference.nc``.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import xarray as xr

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
OUT, HERE = ROOT / "out" / "coulomb_reference", Path(__file__).resolve().parent
BINARY = ["equation.method=binary", "equation.scheme=nanbu", "particles=1000000", "output.particles=none"]
SEEDS = (0, 1, 2)
RUNS = {**{f"binary_n1e6_dt005_s{s}": BINARY + ["time.dt=0.05", "output.every=20", f"seed={s}"] for s in SEEDS},
        "binary_n1e6_dt01_s0": BINARY + ["time.dt=0.1", "output.every=10", "seed=0"],
        **{f"expfam_n20000_s{s}": ["particles=20000", "time.integrator=heun", "output.particles=none", f"seed={s}"]
           for s in (0, 1)}}


def run(name: str, overrides: list[str]) -> xr.Dataset:
    from solvers import simulate
    path = OUT / f"{name}.nc"
    if not path.exists():
        binary = name.startswith("binary")
        case = str(ROOT / "cases" / ("landau_coulomb_binary.yaml" if binary else "landau_coulomb.yaml"))
        simulate(case, oracle=None if binary else "expfam", set=overrides + [f"output.path={path}"], output=str(path))
        print(f"{name}: done", flush=True)
    return xr.open_dataset(path)


def main(names: list[str]) -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    if names:
        for name in names:
            run(name, RUNS[name])
        return
    ds = {k: run(k, v) for k, v in RUNS.items()}
    t = np.arange(41.0)
    pick = lambda d: d.covariance.values[np.isin(np.round(d.time.values, 9), t)]  # noqa: E731
    b = np.stack([pick(ds[f"binary_n1e6_dt005_s{s}"]) for s in SEEDS])
    e = np.stack([pick(ds[f"expfam_n20000_s{s}"]) for s in (0, 1)])
    var = lambda name, a, text: (name, (("time", "dim", "dim2"), a, {"long_name": text, "units": "1"}))  # noqa: E731
    ref = xr.Dataset(
        dict([var("covariance", b.mean(0), "reference covariance: binary collisions (Nanbu), n = 1e6, dt = 0.05, "
                                           "mean of seeds 0, 1, 2"),
              var("covariance_seed_sd", b.std(0, ddof=1) / np.sqrt(len(SEEDS)), "standard error of the seed mean"),
              var("covariance_binary_dt01", pick(ds["binary_n1e6_dt01_s0"]),
                  "binary collisions (Nanbu), n = 1e6, dt = 0.1, seed 0 (step bias)"),
              var("covariance_deterministic", e.mean(0), "score method, expfam oracle, n = 2e4, Heun dt = 1, "
                                                         "mean of seeds 0, 1"),
              var("covariance_deterministic_sd", e.std(0, ddof=1) / np.sqrt(2),
                  "standard error of the deterministic seed mean")]),
        coords={"time": ("time", t, {"units": "1"}), "dim": np.arange(3), "dim2": np.arange(3)},
        attrs={"title": "Example 5.4 reference covariance law (issue 23 item 3)", "Conventions": "CF-1.8",
               "command": "python results/coulomb_reference/run.py"})
    ref.to_netcdf(HERE / "example_5_4_reference.nc")
    inc = lambda a: a - a[..., :1, :, :]  # noqa: E731  (increments: each run from its own initial covariance)
    fro = lambda a: np.linalg.norm(a, axis=(-2, -1))[..., [10, 20, 40]]  # noqa: E731
    print("||S(t) - S(0)|| of the reference, t = 10, 20, 40:", np.round(fro(inc(b.mean(0))), 5))
    print("seed standard error of the binary increments:", np.round(fro(inc(b).std(0, ddof=1) / np.sqrt(3)), 5))
    print("binary seeds against their mean:", np.round(fro(inc(b) - inc(b).mean(0)), 5).tolist())
    print("binary dt = 0.1 against dt = 0.05 (seed 0 both):", np.round(fro(inc(pick(ds["binary_n1e6_dt01_s0"]))
                                                                          - inc(b[0])), 5))
    print("seed standard error of the deterministic increments:", np.round(fro(inc(e).std(0, ddof=1) / np.sqrt(2)), 5))
    print("deterministic (expfam n = 2e4, mean of 2 seeds) against the reference:",
          np.round(fro(inc(e.mean(0)) - inc(b.mean(0))), 5))
    print("deterministic seeds against the reference:", np.round(fro(inc(e) - inc(b.mean(0))), 5).tolist())


if __name__ == "__main__":
    main(sys.argv[1:])
