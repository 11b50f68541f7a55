"""Damping and growth rates fitted from a phase-space run's output, beside linear theory.

* **Damping** (Landau damping): the field energy W(t) = (1/2) int E^2 dx oscillates at twice the
  wave frequency under an envelope exp(2 gamma t). Its local maxima (refined by a parabola through
  the three samples around each, in log W) are spaced pi / Re(omega); a straight line through
  (t_i, log W_i) has slope 2 gamma. The window starts at the second maximum (the first still
  carries the non-modal transient of the initial perturbation) and ends at the last maximum of the
  clean wave: lower than its predecessor, spaced within 30 % of the first spacing, and followed by
  a trough at least a factor e^1.5 below it (a wave's energy drops to near zero twice a period;
  noise does not).
* **Nonlinear phases** (nonlinear Landau damping, particle trapping): the early damping is the
  line through every maximum from the first to the lowest one, the later growth the line through
  the maxima from the lowest to the highest one after it (reported when they rise by more than e^2).
* **Growth** (two-stream, bump on tail): log |E_hat_m|(t) of the seeded mode m = k L / (2 pi) is
  fitted by a line over the exponential window, chosen automatically: from the time it first
  exceeds its initial value by a factor e (the growing mode dominates) to the time it first comes
  within a factor e of its maximum (saturation).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import xarray as xr
import yaml

from landau.dispersion import least_damped_root


@dataclass
class Fit:
    rate: float                 # gamma (amplitude rate): > 0 growth, < 0 damping
    frequency: float            # Re(omega) from the spacing of the maxima (NaN for growth fits)
    window: tuple[float, float]
    points: int


def peaks(t: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Interior local maxima of log w, refined by a parabola through three samples."""
    y = np.log(w)
    i = np.flatnonzero((y[1:-1] > y[:-2]) & (y[1:-1] >= y[2:])) + 1
    a, b, c = y[i - 1], y[i], y[i + 1]
    h = t[1] - t[0]
    denom = a - 2 * b + c
    shift = np.where(denom != 0, 0.5 * (a - c) / np.where(denom != 0, denom, 1), 0.0)
    return t[i] + shift * h, b - 0.25 * (a - c) * shift


def _line(t: np.ndarray, y: np.ndarray) -> float:
    return float(np.polyfit(t, y, 1)[0])


def fit_damping(t: np.ndarray, field_energy: np.ndarray) -> tuple[Fit, Fit | None]:
    """(early damping fit, later growth fit or None) from the maxima of the field energy."""
    tp, yp = peaks(t, field_energy)
    if len(tp) < 3:
        raise ValueError("fewer than 3 maxima of the field energy: run longer or write frames more often")
    y = np.log(field_energy)
    depth = [yp[i] - y[(t > tp[i]) & (t < (tp[i + 1] if i + 1 < len(tp) else t[-1]))].min(initial=yp[i])
             for i in range(len(tp))]
    spacing = tp[2] - tp[1]
    stop = 2
    while (stop < len(tp) and yp[stop] < yp[stop - 1] and depth[stop] > 1.5
           and abs(tp[stop] - tp[stop - 1] - spacing) < 0.3 * spacing):
        stop += 1
    if stop - 1 < 2:
        raise ValueError("the field energy does not decay over its first maxima")
    return _peak_fit(tp, yp, 1, stop), fit_phases(t, field_energy)[1]


def _peak_fit(tp: np.ndarray, yp: np.ndarray, lo: int, hi: int) -> Fit:
    """The line through the maxima lo .. hi - 1: half its slope, the frequency from their spacing."""
    sel = slice(lo, hi)
    return Fit(0.5 * _line(tp[sel], yp[sel]), math.pi / float(np.mean(np.diff(tp[sel]))),
               (float(tp[lo]), float(tp[hi - 1])), hi - lo)


def fit_phases(t: np.ndarray, field_energy: np.ndarray) -> tuple[Fit | None, Fit | None]:
    """(early damping, later growth) of a nonlinear run from the maxima of the field energy:
    first to lowest maximum, lowest to highest maximum after it (None where fewer than 3 maxima,
    or a rise of less than e^2)."""
    tp, yp = peaks(t, field_energy)
    low = int(np.argmin(yp))
    early = _peak_fit(tp, yp, 0, low + 1) if low >= 2 else None
    high = low + int(np.argmax(yp[low:]))
    late = _peak_fit(tp, yp, low, high + 1) if high - low >= 2 and yp[high] - yp[low] > 2.0 else None
    return early, late


def fit_growth(t: np.ndarray, amplitude: np.ndarray) -> Fit:
    """Exponential growth rate of a mode amplitude over its automatic window."""
    y = np.log(amplitude)
    top = int(np.argmax(y))
    start = int(np.argmax(y[:top + 1] > y[0] + 1.0)) if np.any(y[:top + 1] > y[0] + 1.0) else 0
    end = int(np.argmax(y[:top + 1] > y[top] - 1.0))
    if end - start < 3:
        raise ValueError("no exponential window: fewer than 4 frames between growth by e and saturation "
                         "(write frames more often or seed a smaller perturbation)")
    return Fit(_line(t[start:end + 1], y[start:end + 1]), math.nan, (float(t[start]), float(t[end])),
               end - start + 1)


def theory(case: dict) -> tuple[float, complex]:
    """(k, omega) of the least damped or fastest growing root for the case's initial data."""
    from solvers.case import SpaceSettings
    from solvers.equations import EQUATIONS
    from solvers.initial import INITIALS
    eq_cls, eq_settings = EQUATIONS.parse(case["equation"], "equation")
    entry = eq_cls(eq_settings, case["dim"], SpaceSettings(**case["space"]))
    init_cls, init_settings = INITIALS.parse(case["initial"], "initial")
    initial = init_cls(init_settings, case["dim"], entry)
    density = initial.build(None, 0.0)
    return initial.settings.k, least_damped_root(initial.settings.k, density.components_v1())


def rates(ds: xr.Dataset) -> dict:
    """The fitted rates of a phase-space output beside the theory root."""
    case = yaml.safe_load(ds.attrs["case"])
    k, omega = theory(case)
    t = ds.time.values
    row = {"k": k, "omega_theory": omega}
    if omega.imag < 0:
        early, late = fit_damping(t, ds.field_energy.values)
        row.update(fit=early, late=late)
    else:
        m = round(k * case["space"]["length"] / (2 * math.pi))
        if m not in ds.mode.values:
            raise ValueError(f"the seeded mode m = {m} is not among the written modes 1..{int(ds.mode.values[-1])}")
        row.update(fit=fit_growth(t, ds.efield_mode.sel(mode=m).values), late=None)
    return row
