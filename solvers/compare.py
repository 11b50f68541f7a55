"""Summaries of output files: ``python -m solvers.compare OUT1.nc OUT2.nc ... [--reference REF.nc]
[--reference-law LAW.nc] [--plot FILE.png]``.

Per file: oracle, n; the covariance metrics (final Frobenius error against ``covariance_exact``
where the case has a law, its maximum over time, distance to the equilibrium covariance for
Landau), the initial-rate error

    ||R(t0) - R_exact||_F / ||R_exact||_F,

R(t0) the first frame's ``covariance_rate`` (the particle system's dS/dt; for binary collisions the
step's expected rate; a file without it, the first step's (S(t1) - S(t0)) / (t1 - t0)) and R_exact the file's ``covariance_rate_exact`` (Gaussian and Gaussian-mixture initial
data, any gamma), and for ``gaussian`` initial data ``rate0_err_own``, the same against the exact rate
of the Gaussian with the particles' own initial covariance (it removes the sampling error of the
draw, as ``covariance_exact`` does for the Maxwell law); the oracle-ranking metrics of :mod:`solvers.metrics` (score error against the exact score,
mean over the frames where one exists; relative fourth-moment error |moment4 - moment4_exact| /
moment4_exact and radial W1 to the exact law at the end; largest entropy production, which must
be <= 0); with ``--reference``, the pathwise deviation at the last common frame,

    sqrt( sum_p |X_p - X_ref,p|^2 / sum_p |X_ref,p|^2 ),

from a reference run of the same case and seed (e.g. the ``exact`` oracle's, same initial
particles); with ``--reference-law LAW.nc``, ``ref_err_final`` and ``ref_err_max``, the Frobenius
distance of the covariance to a reference law S_ref(t) (a file with ``time`` and ``covariance``, linear
interpolation in t, started from the run's own first covariance; results/coulomb_reference/ for
Example 5.4); conservation (momentum drift max_t |m(t) - m(0)|, relative energy drift
|E(T) - E(0)| / E(0)) and wall time.
"""
from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import numpy as np
import xarray as xr
import yaml

COLUMNS = ["file", "oracle", "n", "cov_err_final", "cov_err_max", "eq_dist_final", "rate0_err", "rate0_err_own", "score_err_mean",
           "m4_rel_err_final", "radial_w1_final", "path_dev_final", "entropy_prod_max",
           "momentum_drift", "energy_drift", "wall_s"]
#: columns of multi-species files: per-species temperatures against the exact law (gamma = 0) and
#: the initial temperature-exchange rate against the Maxwellian (NRL/Spitzer) rate
#: columns of phase-space files: the fitted rate beside the root of the dispersion relation
#: (``solvers.rates``), conservation relative to the initial total energy and to L v_th
PHASE_SPACE_COLUMNS = ["file", "n", "k", "omega_theory", "rate_fit", "rate_rel_err", "freq_fit", "freq_rel_err",
                       "window", "late_rate_fit", "energy_drift", "momentum_drift", "wall_s"]
SPECIES_COLUMNS = ["file", "oracle", "n", "species", "T_final", "T_exact_final", "T_rel_err_max",
                   "dTdt_t0", "dTdt_maxwellian_t0", "entropy_prod_max", "momentum_drift", "energy_drift", "wall_s"]


def pathwise_deviation(path: str | Path, reference: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """(times, deviation) at the frames common to both files (same particle count required)."""
    with xr.open_dataset(path) as ds, xr.open_dataset(reference) as ref:
        if ds.sizes["particle"] != ref.sizes["particle"]:
            raise ValueError(f"{path} has {ds.sizes['particle']} particles, the reference {ref.sizes['particle']}")
        times = np.intersect1d(np.round(ds.time.values, 9), np.round(ref.time.values, 9))
        pick = lambda d: d.x.values[np.isin(np.round(d.time.values, 9), times)]  # noqa: E731
        x, xr_ = pick(ds), pick(ref)
    dev = np.sqrt(((x - xr_) ** 2).sum((1, 2)) / (xr_ ** 2).sum((1, 2)))
    return times, dev


def _last(ds: xr.Dataset, name: str) -> float:
    return float(ds[name].values[-1]) if name in ds else math.nan


def particles(ds: xr.Dataset) -> int:
    """n of the run (all species), from the resolved case (the file may store fewer particles)."""
    case = yaml.safe_load(ds.attrs["case"])
    return case["particles"] if "particles" in case else sum(s["particles"] for s in case["species"])


def species_rows(path: str | Path) -> list[dict]:
    """One row per species of a multi-species file (:data:`SPECIES_COLUMNS`)."""
    with xr.open_dataset(path) as ds:
        T = ds.temperature.values
        law = ds.temperature_exact.values if "temperature_exact" in ds else np.full_like(T, np.nan)
        p, e = ds.momentum.values, ds.energy.values
        common = {"file": str(path), "oracle": ds.attrs.get("oracle", "?"), "n": particles(ds),
                  "entropy_prod_max": float(ds.entropy_production.max()) if "entropy_production" in ds else math.nan,
                  "momentum_drift": float(np.abs(p - p[0]).max() / max(np.abs(p[0]).max(), 1e-300)),
                  "energy_drift": float(abs(e[-1] - e[0]) / abs(e[0])),
                  "wall_s": float(ds.attrs.get("wall_time_s", math.nan))}
        return [{**common, "species": str(name), "T_final": float(T[-1, a]), "T_exact_final": float(law[-1, a]),
                 "T_rel_err_max": float(np.abs(T[:, a] / law[:, a] - 1).max()),
                 "dTdt_t0": float(ds.temperature_rate.values[0, a]),
                 "dTdt_maxwellian_t0": float(ds.temperature_rate_maxwellian.values[0, a])}
                for a, name in enumerate(ds.species_name.values)]


def initial_rate(ds: xr.Dataset) -> np.ndarray | None:
    """The particles' dS/dt at t0: the first frame's ``covariance_rate``, or (a run without a
    velocity field) the finite difference of the first two frames' covariances."""
    if "covariance_rate" in ds:
        return ds["covariance_rate"].values[0]
    if ds.sizes["time"] >= 2:
        t, cov = ds["time"].values, ds["covariance"].values
        return (cov[1] - cov[0]) / (t[1] - t[0])
    return None


def initial_rate_error(ds: xr.Dataset) -> float:
    """||R(t0) - R_exact||_F / ||R_exact||_F (NaN without ``covariance_rate_exact``)."""
    rate = initial_rate(ds)
    if "covariance_rate_exact" not in ds or rate is None:
        return math.nan
    exact = ds["covariance_rate_exact"].values[0]
    return float(np.linalg.norm(rate - exact) / np.linalg.norm(exact))


def initial_rate_error_own(ds: xr.Dataset) -> float:
    """||R(t0) - R_own||_F / ||R_own||_F, R_own the exact Landau rate of N(m_0, C_0) with the particles'
    own first-frame covariance C_0 (``gaussian`` initial data, delta = 0; NaN otherwise)."""
    case = yaml.safe_load(ds.attrs["case"])
    eq, init = case.get("equation", {}), case.get("initial", {})
    rate = initial_rate(ds)
    if eq.get("kind") != "landau" or init.get("kind") != "gaussian" or eq.get("delta", 0) != 0 or rate is None:
        return math.nan
    from landau.gaussian_rates import mixture_covariance_rate
    c0 = ds["covariance"].values[0]
    own = mixture_covariance_rate([1.0], np.zeros((1, len(c0))), c0[None], eq["gamma"], eq["B"])
    return float(np.linalg.norm(rate - own) / np.linalg.norm(own))


def reference_law_error(ds: xr.Dataset, law: str | Path) -> tuple[float, float]:
    """(final, max) Frobenius distance of the file's covariance to a reference law S_ref(t) (a NetCDF
    file with ``time`` and ``covariance``, e.g. results/coulomb_reference/example_5_4_reference.nc),
    linearly interpolated in t, over the file's frames inside the reference's time range. The law is
    started from the run's own first covariance, S_ref(t) - S_ref(t_first) + S(t_first) (as
    ``covariance_exact`` is), so the sampling error of the run's initial draw does not count."""
    with xr.open_dataset(law) as ref:
        tr, cr = ref.time.values, ref.covariance.values
    t, cov = ds.time.values, ds.covariance.values
    inside = (t >= tr[0] - 1e-9) & (t <= tr[-1] + 1e-9)
    if not inside.any():
        return math.nan, math.nan
    interp = np.stack([np.interp(t[inside], tr, cr[:, i, j]) for i in range(cr.shape[1])
                       for j in range(cr.shape[2])], -1).reshape(-1, *cr.shape[1:])
    err = np.linalg.norm(cov[inside] - cov[inside][0] - (interp - interp[0]), axis=(1, 2))
    return float(err[-1]), float(err.max())


def summarize(path: str | Path, reference: str | Path | None = None, reference_law: str | Path | None = None) -> dict:
    with xr.open_dataset(path) as ds:
        cov = ds["covariance"].values
        eq = yaml.safe_load(ds.attrs["case"]).get("equation", {})
        label = f"binary:{eq.get('scheme')}" if eq.get("method") == "binary" else ds.attrs.get("oracle", "?")
        row = {"file": str(path), "oracle": label, "n": particles(ds),
               "cov_err_final": math.nan, "cov_err_max": math.nan, "eq_dist_final": math.nan}
        if "covariance_exact" in ds:
            err = np.linalg.norm(cov - ds["covariance_exact"].values, axis=(1, 2))
            row["cov_err_final"], row["cov_err_max"] = float(err[-1]), float(err.max())
        if "covariance_equilibrium" in ds:
            row["eq_dist_final"] = float(np.linalg.norm(cov[-1] - ds["covariance_equilibrium"].values))
        row["rate0_err"], row["rate0_err_own"] = initial_rate_error(ds), initial_rate_error_own(ds)
        se = ds["score_error"].values if "score_error" in ds else np.full(1, np.nan)
        row["score_err_mean"] = math.nan if np.isnan(se).all() else float(np.nanmean(se))
        row["m4_rel_err_final"] = abs(_last(ds, "moment4") / _last(ds, "moment4_exact") - 1)
        row["radial_w1_final"] = _last(ds, "radial_w1")
        row["entropy_prod_max"] = float(ds["entropy_production"].max()) if "entropy_production" in ds else math.nan
        mean, energy = ds["mean"].values, ds["energy"].values
        row["momentum_drift"] = float(np.abs(mean - mean[0]).max())
        row["energy_drift"] = float(abs(energy[-1] - energy[0]) / abs(energy[0]))
        row["wall_s"] = float(ds.attrs.get("wall_time_s", math.nan))
        if reference_law is not None:
            row["ref_err_final"], row["ref_err_max"] = reference_law_error(ds, reference_law)
    row["path_dev_final"] = float(pathwise_deviation(path, reference)[1][-1]) if reference else math.nan
    return row


def format_table(rows: list[dict], columns: list[str] = COLUMNS) -> str:
    """A Markdown table of summaries."""
    def fmt(v: object) -> str:
        return f"{v:.4g}" if isinstance(v, float) else str(v)
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(fmt(r[c]) for c in columns) + " |" for r in rows]
    return "\n".join(lines)


def phase_space_row(path: str | Path) -> dict:
    """One row of :data:`PHASE_SPACE_COLUMNS` for a phase-space (Vlasov-Poisson) output."""
    from solvers.rates import rates
    with xr.open_dataset(path) as ds:
        r = rates(ds)
        fit, late, omega = r["fit"], r["late"], r["omega_theory"]
        energy, p, kinetic = ds.total_energy.values, ds.momentum.values, float(ds.kinetic_energy.values[0])
        length, d = yaml.safe_load(ds.attrs["case"])["space"]["length"], ds.sizes["dim"]
        v_th = math.sqrt(2 * kinetic / (length * d))
        growth = omega.imag > 0
        return {"file": str(path), "n": particles(ds), "k": r["k"], "omega_theory": f"{omega.real:.7g}{omega.imag:+.7g}i",
                "rate_fit": fit.rate, "rate_rel_err": abs(fit.rate / omega.imag - 1),
                "freq_fit": fit.frequency, "freq_rel_err": math.nan if growth else abs(fit.frequency / omega.real - 1),
                "window": f"{fit.window[0]:.3g}-{fit.window[1]:.3g} ({fit.points})",
                "late_rate_fit": late.rate if late else math.nan,
                "energy_drift": float(np.abs(energy - energy[0]).max() / abs(energy[0])),
                "momentum_drift": float(np.abs(p - p[0]).max() / (length * v_th)),
                "wall_s": float(ds.attrs.get("wall_time_s", math.nan))}


def is_phase_space(path: str | Path) -> bool:
    with xr.open_dataset(path) as ds:
        return "field_energy" in ds


def is_species(path: str | Path) -> bool:
    with xr.open_dataset(path) as ds:
        return "species_name" in ds


def tables(paths: list[str | Path], reference: str | Path | None = None,
           reference_law: str | Path | None = None) -> str:
    """The summary tables of ``paths``: single-species files, then multi-species files per species.
    Raises ValueError naming the first file that is not a readable solver output."""
    rows, species, phase = [], [], []
    for path in paths:
        try:
            if is_phase_space(path):
                phase.append(phase_space_row(path))
            elif is_species(path):
                species += species_rows(path)
            else:
                rows.append(summarize(path, reference, reference_law))
        except (OSError, KeyError, ValueError) as exc:
            raise ValueError(f"{path}: not a readable solver output ({exc.__class__.__name__}: {exc})") from None
    columns = COLUMNS if reference_law is None else COLUMNS[:6] + ["ref_err_final", "ref_err_max"] + COLUMNS[6:]
    out = ([format_table(rows, columns)] if rows else []) + ([format_table(species, SPECIES_COLUMNS)] if species else []) \
        + ([format_table(phase, PHASE_SPACE_COLUMNS)] if phase else [])
    return "\n\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m solvers.compare", description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="+", help="NetCDF outputs of solvers.run")
    parser.add_argument("--reference", metavar="REF.nc",
                        help="run of the same case and seed (e.g. the exact oracle's) for the pathwise deviation")
    parser.add_argument("--reference-law", metavar="LAW.nc",
                        help="reference covariance law S(t) (time, covariance), e.g. "
                             "results/coulomb_reference/example_5_4_reference.nc: adds ref_err_final/max (Frobenius)")
    parser.add_argument("--plot", metavar="FILE.png",
                        help="draw Sigma_11(t), Sigma_22(t) against the exact law, conservation, entropy "
                             "production, score error and radial W1 (multi-species files: temperatures "
                             "against the exact law and exchange rates; phase-space files: log field "
                             "energy against t with the theory slope, total energy drift)")
    args = parser.parse_args(argv)
    try:
        print(tables(args.files, args.reference, args.reference_law))
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.plot:
        from solvers.figures import covariance_figure, temperature_figure
        phase = [f for f in args.files if is_phase_space(f)]
        species = [f for f in args.files if is_species(f)]
        if phase:
            from solvers.field_figures import field_energy_figure
            field_energy_figure(phase, args.plot)
        else:
            (temperature_figure if species else covariance_figure)(species or args.files, args.plot)
        print(f"wrote {args.plot}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
