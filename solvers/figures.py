"""Figures from output files (matplotlib, no screen needed).

* :func:`covariance_figure` -- the DiScoFormer paper's Fig. 11 for several runs: Sigma_11(t) and
  Sigma_22(t) of each run against the exact law, plus conservation (momentum and energy drift)
  and entropy-production panels, and the oracle-ranking metrics over time: score error against
  the exact score and radial W1 to the exact law (where the runs have them).
* :func:`temperature_figure` -- multi-species runs: temperatures against the exact law, exchange
  rates against the Maxwellian rate, conservation.
* :func:`run_figure` -- one run: covariance entries, energy, and a 2D histogram of the final
  particles (first two coordinates) with score arrows.

Curves are labelled by :func:`run_labels`: the oracle's kind and the settings in which runs of
the same kind differ ("expfam (degree 4)", "expfam (degree 6)"), and n where the runs' n differ
(else n is in the title). Log axes draw only values above :data:`LOG_FLOOR`: an exact zero or a
rounding-level value (the exact oracle's score error, a momentum conserved to 1e-17) would
stretch the axis over 15 decades and flatten every other curve.
"""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import xarray as xr  # noqa: E402
import yaml  # noqa: E402

#: values at or below this are not drawn on log axes (rounding level of the relative quantities)
LOG_FLOOR = 1e-12


def _case(ds: xr.Dataset) -> dict:
    try:
        case = yaml.safe_load(ds.attrs.get("case", "")) or {}
    except yaml.YAMLError:
        case = {}
    return case if isinstance(case, dict) else {}


def oracle_spec(ds: xr.Dataset) -> dict:
    """The run's oracle as ``{kind: NAME, **settings}``, from the resolved case stored in the file."""
    spec = _case(ds).get("oracle")
    if isinstance(spec, str):
        spec = {"kind": spec}
    if not isinstance(spec, dict) or "kind" not in spec:
        spec = {"kind": ds.attrs.get("oracle", "?")}
    return spec


def _value(v) -> str:
    if isinstance(v, float):
        return f"{v:g}"
    if isinstance(v, str) and ("/" in v or v.endswith(".pt")):
        return Path(v).name
    return str(v)


def run_labels(specs: list[dict], ns: list[int]) -> list[str]:
    """One label per run: the oracle's kind, then the settings in which the runs of that kind
    differ ("expfam (degree 4)"), then "n=N" if the runs' particle numbers differ."""
    labels = []
    for spec in specs:
        same = [s for s in specs if s.get("kind") == spec.get("kind")]
        keys = list(dict.fromkeys(k for s in same for k in s if k not in ("kind", "label")))
        differ = [k for k in keys if len({_value(s.get(k)) for s in same}) > 1]
        labels.append(str(spec.get("kind", "?")) + (" (" + ", ".join(f"{k} {_value(spec.get(k))}" for k in differ)
                                                    + ")" if differ else ""))
    if len(set(ns)) > 1:
        labels = [f"{label} n={n}" for label, n in zip(labels, ns)]
    return labels


def log_plot(ax, t, y, fmt: str | None = None, floor: float = LOG_FLOOR, **kwargs) -> bool:
    """``ax.semilogy`` of the values of y above ``floor`` (the others -- exact zeros, rounding-level
    values, NaN -- left out as gaps, so they do not stretch the axis); False if none is left."""
    y = np.array(y, dtype=float)
    y[~(np.isfinite(y) & (y > floor))] = np.nan
    if np.isnan(y).all():
        return False
    ax.semilogy(t, y, *([fmt] if fmt else []), **kwargs)
    return True


def _title(datasets: list[xr.Dataset]) -> str:
    names = {str(_case(ds).get("name", ds.attrs.get("title", ""))) for ds in datasets}
    ns = {ds.sizes["particle"] for ds in datasets}
    seeds = {str(ds.attrs.get("seed", "?")) for ds in datasets}
    parts = [", ".join(sorted(names))] + ([f"n = {ns.pop()}"] if len(ns) == 1 else []) \
        + ([f"seed {seeds.pop()}"] if len(seeds) == 1 else [])
    return ", ".join(p for p in parts if p)


def covariance_figure(paths: list[str | Path], out: str | Path) -> None:
    datasets = [xr.open_dataset(path) for path in paths]
    try:
        fig = draw_covariance_figure(datasets)
        fig.savefig(out, dpi=120)
        plt.close(fig)
    finally:
        for ds in datasets:
            ds.close()


def draw_covariance_figure(datasets: list[xr.Dataset]) -> plt.Figure:
    """The figure of :func:`covariance_figure` for open datasets (not saved, not closed)."""
    fig, axes = plt.subplots(3, 2, figsize=(11, 12))
    (a11, a22), (acons, aent), (ascore, aw1) = axes
    labels = run_labels([oracle_spec(ds) for ds in datasets], [ds.sizes["particle"] for ds in datasets])
    not_drawn: list[str] = []                     # score error <= LOG_FLOOR at every frame
    flat: list[str] = []                          # conserved to <= LOG_FLOOR at every frame
    for i, (ds, label) in enumerate(zip(datasets, labels)):
        t, cov, color = ds.time.values, ds.covariance.values, f"C{i}"
        a11.plot(t, cov[:, 0, 0], color=color, label=label)
        a22.plot(t, cov[:, 1, 1], color=color, label=label)
        if "covariance_exact" in ds:  # the law from this run's own initial covariance
            ex = ds.covariance_exact.values
            law = "exact law (dashed, per run)" if i == 0 else None
            a11.plot(t, ex[:, 0, 0], "--", color=color, lw=0.9, label=law)
            a22.plot(t, ex[:, 1, 1], "--", color=color, lw=0.9, label=law)
        mean, energy = ds["mean"].values, ds.energy.values
        if not log_plot(acons, t, np.abs(mean - mean[0]).max(1), color=color, ls=":", label=f"{label} |m(t)-m(0)|"):
            flat.append(f"momentum of {label}")
        if not log_plot(acons, t, np.abs(energy - energy[0]) / energy[0], color=color,
                        label=f"{label} |E(t)-E(0)|/E(0)"):
            flat.append(f"energy of {label}")
        if "entropy_production" in ds:
            aent.plot(t, ds.entropy_production.values, color=color, label=label)
        if "score_error" in ds and np.isfinite(ds.score_error.values).any():
            if not log_plot(ascore, t, ds.score_error.values, ".-", color=color, label=label):
                not_drawn.append(label)
        if "radial_w1" in ds:
            aw1.plot(t, ds.radial_w1.values, color=color, label=label)
    score_title = "score error sum|s - s*|^2 / sum|s*|^2" + (
        f"\n(<= {LOG_FLOOR:g}, not drawn: {', '.join(not_drawn)})" if not_drawn else "")
    for ax, title in ((a11, "Sigma_11(t)"), (a22, "Sigma_22(t)"),
                      (acons, "momentum and energy drift" + (
                          f"\n(<= {LOG_FLOOR:g}, not drawn: momentum of every run)" if len(
                              [f for f in flat if f.startswith("momentum")]) == len(datasets)
                          and len(flat) == len(datasets) else
                          f"\n(<= {LOG_FLOOR:g}, not drawn: {', '.join(flat)})" if flat else "")),
                      (aent, "entropy production (1/n) sum U.s"),
                      (ascore, score_title), (aw1, "radial W1 to the exact law")):
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("t")
        if ax.lines:
            ax.legend(fontsize=7)
        else:
            ax.text(0.5, 0.5, "not measured in these runs", ha="center", va="center", transform=ax.transAxes)
    fig.suptitle(_title(datasets))
    fig.tight_layout()
    return fig


def run_figure(path: str | Path, out: str | Path, frame: int = -1) -> None:
    with xr.open_dataset(path) as ds:
        t, cov = ds.time.values, ds.covariance.values
        d = ds.sizes["dim"]
        fig, (acov, aen, ahist) = plt.subplots(1, 3, figsize=(15, 4.5))
        for i in range(d):
            for j in range(i, d):
                line, = acov.plot(t, cov[:, i, j], label=f"C_{i + 1}{j + 1}")
                if "covariance_exact" in ds:
                    acov.plot(t, ds.covariance_exact.values[:, i, j], "--", color=line.get_color(), lw=0.8)
        acov.set_title("covariance (dashed: exact law)")
        acov.legend(fontsize=7, ncol=2)
        aen.plot(t, ds.energy.values)
        aen.set_title("energy (1/2n) sum |x|^2")
        x, s = ds.x.values[frame], ds.score.values[frame]
        ahist.hist2d(x[:, 0], x[:, 1], bins=60, cmap="Greys")
        step = max(1, len(x) // 300)
        ahist.quiver(x[::step, 0], x[::step, 1], s[::step, 0], s[::step, 1], color="C3", angles="xy",
                     scale_units="xy", scale=8, width=0.003)
        ahist.set_title(f"particles and scores, t = {t[frame]:.3g}")
        for ax in (acov, aen):
            ax.set_xlabel("t")
        spec = oracle_spec(ds)
        settings = ", ".join(f"{k} {_value(v)}" for k, v in spec.items() if k != "kind" and v is not None)
        fig.suptitle(f"{_title([ds]) or Path(path).name}: {spec['kind']}" + (f" ({settings})" if settings else ""),
                     fontsize=10)
        fig.tight_layout()
        fig.savefig(out, dpi=120)
        plt.close(fig)


def temperature_figure(paths: list[str | Path], out: str | Path) -> None:
    """Multi-species runs: T_a(t) against the exact law (Maxwell molecules), the particle system's
    temperature-exchange rate against the Maxwellian (NRL/Spitzer) rate, and conservation."""
    fig, (atemp, arate, acons) = plt.subplots(1, 3, figsize=(16, 4.5))
    for i, path in enumerate(paths):
        with xr.open_dataset(path) as ds:
            t, T = ds.time.values, ds.temperature.values
            for a, name in enumerate(ds.species_name.values):
                color, label = f"C{2 * i + a}", f"{ds.attrs.get('oracle', '?')} {name}"
                atemp.plot(t, T[:, a], color=color, label=label)
                if "temperature_exact" in ds:
                    atemp.plot(t, ds.temperature_exact.values[:, a], "k--", lw=0.9,
                               label="exact law (dashed)" if i == a == 0 else None)
                arate.plot(t, ds.temperature_rate.values[:, a], color=color, label=f"{label}: particles")
                arate.plot(t, ds.temperature_rate_maxwellian.values[:, a], ":", color=color,
                           label=f"{label}: Maxwellian rate")
            p, e = ds.momentum.values, ds.energy.values
            log_plot(acons, t, np.abs(p - p[0]).max(1), ":", color=f"C{i}", label="|P(t) - P(0)|")
            log_plot(acons, t, np.abs(e - e[0]) / e[0], color=f"C{i}", label="|E(t) - E(0)| / E(0)")
    for ax, title in ((atemp, "temperature T_a(t)"), (arate, "dT_a/dt"),
                      (acons, f"total momentum and energy (values <= {LOG_FLOOR:g} not drawn)")):
        ax.set_title(title)
        ax.set_xlabel("t")
        if ax.lines:
            ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)
