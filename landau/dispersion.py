"""Linear theory of electrostatic waves: the dielectric function of drifting Maxwellians.

Electrons on a neutralising background (plasma frequency 1), their v_1 distribution a sum of
drifting Maxwellians with weights w_s (sum 1), drifts u_s and spreads sigma_s:

    eps(omega, k) = 1 + sum_s w_s / (k^2 sigma_s^2) [1 + zeta_s Z(zeta_s)],
    zeta_s = (omega - k u_s) / (sqrt(2) k sigma_s),       Z(zeta) = i sqrt(pi) w(zeta)

with w the Faddeeva function (scipy.special.wofz), entire, so damped roots (Im omega < 0) need no
separate analytic continuation. Z' = -2 (1 + zeta Z). A mode of the field goes as
exp(-i omega t): its amplitude as exp(Im(omega) t), its energy as exp(2 Im(omega) t).

References: Maxwellian sigma = 1, k = 0.5: omega = 1.4156619 - 0.1533595 i; k = 0.3:
1.1598465 - 0.0126204 i; two beams at +/- 2.4 with sigma = 1, k = 0.2: growth 0.2258443 (tests).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.special import wofz


@dataclass(frozen=True)
class Drifting:
    """One Maxwellian of the v_1 distribution: weight, drift and spread."""

    weight: float
    drift: float
    sigma: float


def plasma_z(zeta: complex) -> complex:
    """The plasma dispersion function Z(zeta) = i sqrt(pi) w(zeta)."""
    return 1j * math.sqrt(math.pi) * complex(wofz(zeta))


def dielectric(omega: complex, k: float, components: list[Drifting]) -> tuple[complex, complex]:
    """(eps(omega, k), d eps / d omega)."""
    eps, deps = 1.0 + 0j, 0j
    for c in components:
        scale = math.sqrt(2.0) * k * c.sigma
        zeta = (omega - k * c.drift) / scale
        z = plasma_z(zeta)
        pre = c.weight / (k * c.sigma) ** 2
        eps += pre * (1 + zeta * z)
        deps += pre * (z - 2 * zeta * (1 + zeta * z)) / scale
    return eps, deps


def dispersion_root(k: float, components: list[Drifting], guess: complex, tol: float = 1e-13,
                    max_iter: int = 100) -> complex | None:
    """A root of eps(omega, k) = 0 by Newton's method from ``guess``; None if it does not converge."""
    omega = complex(guess)
    for _ in range(max_iter):
        eps, deps = dielectric(omega, k, components)
        if deps == 0 or not np.isfinite(abs(eps)):
            return None
        step = eps / deps
        omega -= step
        if abs(step) < tol * max(1.0, abs(omega)):
            return omega if abs(dielectric(omega, k, components)[0]) < 1e-9 else None
    return None


def least_damped_root(k: float, components: list[Drifting]) -> complex:
    """The root with the largest Im(omega) (the fastest growing or least damped mode) and
    Re(omega) >= 0, from Newton's method started on a grid of guesses around the Bohm-Gross
    frequency and the beam Doppler shifts."""
    spread = max(abs(c.drift) for c in components) + 3 * max(c.sigma for c in components)
    res = np.linspace(0.0, max(2.0, k * spread + math.sqrt(1 + 3 * k * k)), 17)
    ims = np.linspace(-1.0, 1.0, 11)
    roots = [r for r in (dispersion_root(k, components, complex(a, b)) for a in res for b in ims)
             if r is not None and r.real >= -1e-9]
    if not roots:
        raise ValueError(f"no root of the dispersion relation found at k = {k}")
    best = max(roots, key=lambda r: r.imag)
    return complex(abs(best.real), best.imag)
