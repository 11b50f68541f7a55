"""Figures from output files (matplotlib, no screen needed).

* :func:`covariance_figure` -- the DiScoFormer paper's Fig. 11 for several runs: Sigma_11(t) and
  Sigma_22(t) of each run against the exact law, plus conservation (momentum and energy drift)
  and entropy-production panels, and the oracle-ranking metrics over time: score error against
  the exact score and radial W1 to the exact law (where the runs have them).
* :func:`temperature_figure` -- multi-species runs: temperatures against the exact law, exchange
  rates against the Maxwellian rate, conservation.
* :func:`run_figure` -- one run: covariance entries, energy, and a 2D histogram of the final
  particles (first two coordinates) with score arrows.
"""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import xarray as xr  # noqa: E402


def _label(ds: xr.Dataset) -> str:
    return f"{ds.attrs.get('oracle', '?')} n={ds.sizes['particle']}"


def covariance_figure(paths: list[str | Path], out: str | Path) -> None:
    fig, axes = plt.subplots(3, 2, figsize=(11, 12))
    (a11, a22), (acons, aent), (ascore, aw1) = axes
    for i, path in enumerate(paths):
        with xr.open_dataset(path) as ds:
            t, cov, color = ds.time.values, ds.covariance.values, f"C{i}"
            a11.plot(t, cov[:, 0, 0], color=color, label=_label(ds))
            a22.plot(t, cov[:, 1, 1], color=color, label=_label(ds))
            if "covariance_exact" in ds:  # the law from this run's own initial covariance
                ex = ds.covariance_exact.values
                label = "exact law (dashed, per run)" if i == 0 else None
                a11.plot(t, ex[:, 0, 0], "--", color=color, lw=0.9, label=label)
                a22.plot(t, ex[:, 1, 1], "--", color=color, lw=0.9, label=label)
            mean, energy = ds["mean"].values, ds.energy.values
            acons.semilogy(t, np.abs(mean - mean[0]).max(1) + 1e-18, color=color, ls=":",
                           label=f"{_label(ds)} |m(t)-m(0)|")
            acons.semilogy(t, np.abs(energy - energy[0]) / energy[0] + 1e-18, color=color,
                           label=f"{_label(ds)} |E(t)-E(0)|/E(0)")
            if "entropy_production" in ds:
                aent.plot(t, ds.entropy_production.values, color=color, label=_label(ds))
            if "score_error" in ds and np.isfinite(ds.score_error.values).any():
                ascore.semilogy(t, ds.score_error.values + 1e-18, ".-", color=color, label=_label(ds))
            if "radial_w1" in ds:
                aw1.plot(t, ds.radial_w1.values, color=color, label=_label(ds))
    for ax, title in ((a11, "Sigma_11(t)"), (a22, "Sigma_22(t)"),
                      (acons, "momentum and energy drift"), (aent, "entropy production (1/n) sum U.s"),
                      (ascore, "score error sum|s - s*|^2 / sum|s*|^2"), (aw1, "radial W1 to the exact law")):
        ax.set_title(title)
        ax.set_xlabel("t")
        if ax.lines:
            ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)


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
        fig.suptitle(f"{ds.attrs.get('title', Path(path).name)}")
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
            acons.semilogy(t, np.abs(p - p[0]).max(1) + 1e-18, ":", color=f"C{i}", label="|P(t) - P(0)|")
            acons.semilogy(t, np.abs(e - e[0]) / e[0] + 1e-18, color=f"C{i}", label="|E(t) - E(0)| / E(0)")
    for ax, title in ((atemp, "temperature T_a(t)"), (arate, "dT_a/dt"), (acons, "total momentum and energy")):
        ax.set_title(title)
        ax.set_xlabel("t")
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)
