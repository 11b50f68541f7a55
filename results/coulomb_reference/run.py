"""A reference covariance law S(t) for Example 5.4 (Coulomb, gamma = -3, IC normal, t in [0, 40]); issue 23, item 3.

    python results/coulomb_reference/run.py        # runs into out/coulomb_reference/, writes example_5_4_reference.nc here

Binary collisions (Nanbu, the smaller step bias) at n = 2e5, dt = 0.05, seeds 0 and 1, and the deterministic
method with the expfam oracle at n = 2e4 (Heun, dt = 1, seed 0). The file holds time, covariance (the mean of
the binary seeds), covariance_seed_sd (their spread / sqrt 2), covariance_binary_dt (the same at dt = 0.1,
seed 0, for the step bias) and covariance_deterministic; read by
``python -m solvers.compare RUN.nc --reference-law example_5_4_reference.nc``.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import xarray as xr

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
OUT, HERE = ROOT / "out" / "coulomb_reference", Path(__file__).resolve().parent
BINARY = ["equation.method=binary", "equation.scheme=nanbu", "particles=200000", "output.particles=none"]
RUNS = {"binary_s0": BINARY + ["time.dt=0.05", "output.every=20", "seed=0"],
        "binary_s1": BINARY + ["time.dt=0.05", "output.every=20", "seed=1"],
        "binary_dt01": BINARY + ["time.dt=0.1", "output.every=10", "seed=0"],
        "expfam_n20000": ["particles=20000", "time.integrator=heun", "output.particles=none", "seed=0"]}


def run(name: str, overrides: list[str]) -> xr.Dataset:
    from solvers import simulate
    path = OUT / f"{name}.nc"
    if not path.exists():
        binary = name.startswith("binary")
        case = str(ROOT / "cases" / ("landau_coulomb_binary.yaml" if binary else "landau_coulomb.yaml"))
        simulate(case, oracle=None if binary else "expfam", set=overrides + [f"output.path={path}"], output=str(path))
        print(f"{name}: done", flush=True)
    return xr.open_dataset(path)


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    ds = {k: run(k, v) for k, v in RUNS.items()}
    t = ds["binary_s0"].time.values
    pick = lambda d: d.covariance.values[np.isin(np.round(d.time.values, 9), np.round(t, 9))]  # noqa: E731
    b0, b1 = pick(ds["binary_s0"]), pick(ds["binary_s1"])
    ref = xr.Dataset(
        {"covariance": (("time", "dim", "dim2"), 0.5 * (b0 + b1),
                        {"long_name": "reference covariance: binary collisions (Nanbu), n = 2e5, dt = 0.05, mean of seeds 0, 1",
                         "units": "1"}),
         "covariance_seed_sd": (("time", "dim", "dim2"), np.abs(b0 - b1) / 2,
                                {"long_name": "standard error of the seed mean, |S_0 - S_1| / 2", "units": "1"}),
         "covariance_binary_dt": (("time", "dim", "dim2"), pick(ds["binary_dt01"]),
                                  {"long_name": "binary collisions at dt = 0.1, seed 0 (step bias)", "units": "1"}),
         "covariance_deterministic": (("time", "dim", "dim2"), pick(ds["expfam_n20000"]),
                                      {"long_name": "score method, expfam oracle, n = 2e4, Heun dt = 1, seed 0",
                                       "units": "1"})},
        coords={"time": ("time", t, {"units": "1"}), "dim": np.arange(3), "dim2": np.arange(3)},
        attrs={"title": "Example 5.4 reference covariance law (issue 23 item 3)", "Conventions": "CF-1.8",
               "command": "python results/coulomb_reference/run.py"})
    ref.to_netcdf(HERE / "example_5_4_reference.nc")
    inc = lambda a: a - a[0]  # noqa: E731  (increments: each run from its own initial covariance)
    for name in ("covariance_binary_dt", "covariance_deterministic"):
        e = np.linalg.norm(inc(ref[name].values) - inc(ref.covariance.values), axis=(1, 2))
        print(name, "increment vs reference, Frobenius, t = 10, 20, 40:", np.round(e[[10, 20, 40]], 5))
    e = np.linalg.norm(np.abs(inc(b0) - inc(b1)) / 2, axis=(1, 2))
    print("seed standard error of the increments, t = 10, 20, 40:", np.round(e[[10, 20, 40]], 5))


if __name__ == "__main__":
    main()
