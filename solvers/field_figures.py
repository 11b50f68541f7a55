"""Figures of phase-space (Vlasov-Poisson) runs (matplotlib, no screen needed).

* :func:`field_energy_figure` -- log field energy against t for each run, with the line of the
  dispersion root's rate 2 Im(omega) through the first fitted maximum, the fitted window marked,
  and the relative drift of the total energy;
* :func:`phase_space_figure` -- snapshots of the stored particles, x against v_1 (2D histograms),
  at a few times;
* :func:`profiles_figure` -- the temperature and (collisional runs, d >= 2) the temperature
  anisotropy T_1 / T_perp - 1 of each cell against x, at a few times, one colour per run.
"""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import xarray as xr  # noqa: E402

from solvers.rates import rates  # noqa: E402


def field_energy_figure(paths: list[str | Path], out: str | Path) -> None:
    fig, (ax, ax_e) = plt.subplots(1, 2, figsize=(12, 4.5), gridspec_kw={"width_ratios": [2, 1]})
    for path in paths:
        with xr.open_dataset(path) as ds:
            r, t, w = rates(ds), ds.time.values, ds.field_energy.values
            fit, omega = r["fit"], r["omega_theory"]
            (line,) = ax.semilogy(t, w, lw=0.8, label=f"{Path(path).stem} (fit {fit.rate:.4f})")
            t0, t1 = fit.window
            i0 = int(np.argmin(np.abs(t - t0)))
            span = np.linspace(t0, t1, 2)
            ax.semilogy(span, w[i0:i0 + 3].max() * np.exp(2 * omega.imag * (span - t0)), "k--", lw=1.2,
                        label=f"theory 2 Im(omega) = {2 * omega.imag:.4f}")
            ax.axvspan(t0, t1, color=line.get_color(), alpha=0.08)
            e = ds.total_energy.values
            ax_e.plot(t, np.abs(e - e[0]) / abs(e[0]), color=line.get_color())
    ax.set(xlabel="t", ylabel="field energy (1/2) int E^2 dx", title="field energy; dashed: linear theory")
    ax.legend(fontsize=8)
    ax_e.set(xlabel="t", ylabel="|E_tot(t) - E_tot(0)| / E_tot(0)", title="total energy drift")
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)


def phase_space_figure(path: str | Path, out: str | Path, times: list[float]) -> None:
    with xr.open_dataset(path) as ds:
        length = float(ds.x_grid.values[0] + ds.x_grid.values[-1])
        vmax = float(np.abs(ds.velocity.isel(time=0, dim=0)).max())
        fig, axes = plt.subplots(1, len(times), figsize=(4 * len(times), 3.6), sharey=True)
        for ax, t in zip(np.atleast_1d(axes), times):
            frame = ds.sel(time=t, method="nearest")
            ax.hist2d(frame.position.values, frame.velocity.values[:, 0], bins=[64, 64],
                      range=[[0, length], [-vmax, vmax]], cmap="viridis")
            ax.set(xlabel="x", title=f"t = {float(frame.time):.3g}")
        np.atleast_1d(axes)[0].set_ylabel("v_1")
        fig.suptitle(f"{ds.attrs.get('title', Path(path).stem)}: stored particles, x against v_1")
        fig.tight_layout()
        fig.savefig(out, dpi=110)
        plt.close(fig)


def profiles_figure(paths: list[str | Path], out: str | Path, times: list[float]) -> None:
    names = ["cell_temperature", "cell_anisotropy"]
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.2))
    styles = ["-", "--", ":", "-."]
    for i, path in enumerate(paths):
        with xr.open_dataset(path) as ds:
            for ax, name in zip(axes, names):
                if name not in ds:
                    continue
                for t, style in zip(times, styles):
                    frame = ds[name].sel(time=t, method="nearest")
                    ax.plot(ds.x_grid.values, frame.values, style, color=f"C{i}", lw=1,
                            label=f"{Path(path).stem}, t = {float(frame.time):.3g}")
    axes[0].set(xlabel="x", ylabel="T = (1/d) <|v - u_c|^2>", title="temperature per cell")
    axes[1].set(xlabel="x", ylabel="T_1 / T_perp - 1", title="temperature anisotropy per cell")
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
