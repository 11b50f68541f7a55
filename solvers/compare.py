"""Summaries of output files: ``python -m solvers.compare OUT1.nc OUT2.nc ... [--plot FILE.png]``.

Per file: oracle, n, final Frobenius covariance error against ``covariance_exact`` (where the case
has a law), its maximum over time, distance to the equilibrium covariance (Landau), momentum
drift max_t |m(t) - m(0)|, relative energy drift |E(T) - E(0)| / E(0), and wall time.
"""
from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import numpy as np
import xarray as xr

COLUMNS = ["file", "oracle", "n", "cov_err_final", "cov_err_max", "eq_dist_final",
           "momentum_drift", "energy_drift", "wall_s"]


def summarize(path: str | Path) -> dict:
    with xr.open_dataset(path) as ds:
        cov = ds["covariance"].values
        row = {"file": str(path), "oracle": ds.attrs.get("oracle", "?"), "n": ds.sizes["particle"],
               "cov_err_final": math.nan, "cov_err_max": math.nan, "eq_dist_final": math.nan}
        if "covariance_exact" in ds:
            err = np.linalg.norm(cov - ds["covariance_exact"].values, axis=(1, 2))
            row["cov_err_final"], row["cov_err_max"] = float(err[-1]), float(err.max())
        if "covariance_equilibrium" in ds:
            row["eq_dist_final"] = float(np.linalg.norm(cov[-1] - ds["covariance_equilibrium"].values))
        mean, energy = ds["mean"].values, ds["energy"].values
        row["momentum_drift"] = float(np.abs(mean - mean[0]).max())
        row["energy_drift"] = float(abs(energy[-1] - energy[0]) / abs(energy[0]))
        row["wall_s"] = float(ds.attrs.get("wall_time_s", math.nan))
    return row


def format_table(rows: list[dict]) -> str:
    """A Markdown table of summaries."""
    def fmt(v: object) -> str:
        return f"{v:.4g}" if isinstance(v, float) else str(v)
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(fmt(r[c]) for c in COLUMNS) + " |" for r in rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m solvers.compare", description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="+", help="NetCDF outputs of solvers.run")
    parser.add_argument("--plot", metavar="FILE.png",
                        help="draw Sigma_11(t), Sigma_22(t) against the exact law, conservation and entropy production")
    args = parser.parse_args(argv)
    rows = []
    for f in args.files:
        try:
            rows.append(summarize(f))
        except (OSError, KeyError, ValueError) as exc:
            print(f"error: {f}: not a readable solver output ({exc.__class__.__name__}: {exc})", file=sys.stderr)
            return 2
    print(format_table(rows))
    if args.plot:
        from solvers.figures import covariance_figure
        covariance_figure(args.files, args.plot)
        print(f"wrote {args.plot}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
