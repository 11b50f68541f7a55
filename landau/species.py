"""Multi-species homogeneous Landau equation: species as data, one operator for all of them.

Species a has mass m_a, charge e_a, number density n_a and N_a particles v_p^a of weight n_a / N_a
sampling its normalised velocity density f_a, with scores s_a = grad log f_a. The particles of all
species are concatenated in species order into one (n_total, d) tensor; ``species_id`` (n_total,)
says which species each row belongs to. Each particle moves with

    U_p^a = - sum_b (c_ab / m_a) (n_b / N_b) sum_q Phi(v_p^a - v_q^b) (s_a(v_p^a) / m_a - s_b(v_q^b) / m_b),
    Phi(z) = |z|^gamma (|z|^2 I - z z^T),      c_ab = B e_a^2 e_b^2 L_ab,

the particle form of d_t f_a = sum_b (c_ab / m_a) div_v Int n_b Phi(v - w) (f_b grad f_a / m_a
- f_a grad f_b / m_b) dw (physical SI units: B = 1 / (8 pi eps0^2), L_ab = ln Lambda_ab). The
Coulomb-logarithm matrix L (default all ones) must be symmetric and non-negative, so c_ab = c_ba >= 0.
One species with m = e = n = L = 1 is the single-species operator U = -(B/N) sum_q Phi(z)(s_p - s_q)
and is evaluated by the same code (:func:`landau.collision.landau_field_direct`,
:func:`landau.collision.maxwell_field`), bit for bit.

Block (a, b) is -(c_ab n_b / (m_a N_b)) R^ab with the pair sum
R_p^ab = sum_q Phi(v_p^a - v_q^b) (sigma_p - tau_q), sigma = s_a / m_a, tau = s_b / m_b:
for a = b the single-species field with B_aa = c_aa n_a / m_a^2; for a != b
:func:`landau.collision.landau_pair_sum` (tiled, any gamma) or, for gamma = 0, the exact O(N d^2)
moment form :func:`maxwell_cross_sum`.

Properties of the semi-discrete system for ANY scores (c symmetric): with <g>_a = (1/N_a) sum_p g(v_p^a),

    total momentum   sum_a m_a n_a <v>_a            : rate sum_a m_a n_a <U>_a = 0 (antisymmetry),
    total energy     sum_a (m_a n_a / 2) <|v|^2>_a   : rate sum_a m_a n_a <v . U>_a = 0 (Phi(z) z = 0),
    entropy          sum_a n_a <log f_a>_a           : rate sum_a n_a <U . s_a>_a
                   = -(1/2) sum_ab c_ab (n_a n_b / (N_a N_b)) sum_pq D^T Phi D <= 0,
                     D = s_a(v_p^a) / m_a - s_b(v_q^b) / m_b  (Phi positive semi-definite).

The entropy is weighted by the densities n_a (not m_a n_a): d/dt Int f_a log f_a = <U^a . s_a>_a.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch

from landau.collision import landau_field_direct, landau_pair_sum, maxwell_field


@dataclass(frozen=True)
class Species:
    """One species: ``name``, ``particles`` N_a, ``mass`` m_a > 0, ``charge`` e_a, ``density`` n_a > 0."""

    name: str
    particles: int
    mass: float = 1.0
    charge: float = 1.0
    density: float = 1.0

    def __post_init__(self) -> None:
        if self.particles < 1:
            raise ValueError(f"species {self.name!r}: particles must be >= 1, got {self.particles}")
        if not self.mass > 0:
            raise ValueError(f"species {self.name!r}: mass must be positive, got {self.mass}")
        if not self.density > 0:
            raise ValueError(f"species {self.name!r}: density must be positive, got {self.density}")


def species_slices(species: Sequence[Species]) -> list[slice]:
    """Row slice of each species in the concatenated particle tensor (species order)."""
    out, start = [], 0
    for sp in species:
        out.append(slice(start, start + sp.particles))
        start += sp.particles
    return out


def species_id(species: Sequence[Species], device: torch.device | str | None = None) -> torch.Tensor:
    """(n_total,) long tensor: the species index a of every concatenated particle."""
    counts = torch.tensor([sp.particles for sp in species], device=device)
    return torch.repeat_interleave(torch.arange(len(species), device=device), counts)


def collision_coefficients(species: Sequence[Species], B: float,
                           coulomb_log: Sequence[Sequence[float]] | None = None) -> list[list[float]]:
    """c_ab = B e_a^2 e_b^2 L_ab as nested Python floats (L default all ones; symmetric, >= 0)."""
    k = len(species)
    L = [[1.0] * k for _ in range(k)] if coulomb_log is None else [[float(v) for v in row] for row in coulomb_log]
    if len(L) != k or any(len(row) != k for row in L):
        raise ValueError(f"coulomb_log must be a {k} x {k} matrix")
    if any(L[a][b] != L[b][a] or L[a][b] < 0 for a in range(k) for b in range(k)):
        raise ValueError("coulomb_log must be symmetric and non-negative (conservation needs c_ab = c_ba >= 0)")
    e2 = [sp.charge ** 2 for sp in species]
    return [[B * e2[a] * e2[b] * L[a][b] for b in range(k)] for a in range(k)]


def maxwell_cross_sum(x: torch.Tensor, sig: torch.Tensor, y: torch.Tensor, tau: torch.Tensor) -> torch.Tensor:
    """R_p = sum_q Phi(x_p - y_q) (sig_p - tau_q) for gamma = 0 exactly in O((n_x + n_y) d^2).

    Phi(z) = |z|^2 I - z z^T is quadratic, so the sum over q reduces to moments of the columns.
    Positions are shifted by the column mean (R depends on x_p - y_q only) and tau is split into
    its mean tau_bar and the centred tau'; with r_p = sig_p - tau_bar, N columns, and the column
    moments S2 = sum |y_q|^2, M = sum y_q y_q^T, K = sum y_q tau'_q^T, c = tr K,
    v1 = sum |y_q|^2 tau'_q, v2 = sum (y_q . tau'_q) y_q (all over centred y, tau'):

        sum_q Phi(x_p - y_q) r_p = (N |x_p|^2 + S2) r_p - N x_p (x_p . r_p) - M r_p,
        sum_q Phi(x_p - y_q) tau'_q = -2 K^T x_p + v1 + c x_p + K x_p - v2,
        R_p = first - second.

    With rows = columns and sig = tau this is the expansion of :func:`landau.collision.maxwell_field`.
    """
    n = len(y)
    shift = y.mean(0)
    x, y = x - shift, y - shift
    tau_bar = tau.mean(0)
    r, tau = sig - tau_bar, tau - tau_bar
    xx, yy, yt = (x * x).sum(1), (y * y).sum(1), (y * tau).sum(1)
    m_yy, k_yt = y.T @ y, y.T @ tau
    first = r * (n * xx + yy.sum())[:, None] - n * x * (x * r).sum(1, keepdim=True) - r @ m_yy
    second = -2.0 * x @ k_yt + yy @ tau + torch.trace(k_yt) * x + x @ k_yt.T - yt @ y
    return first - second


def species_landau_field(x: torch.Tensor, s: torch.Tensor, species: Sequence[Species],
                         c: Sequence[Sequence[float]], gamma: float, delta: float = 0.0,
                         method: str = "auto", tile: int | None = None) -> torch.Tensor:
    """U (n_total, d) of the multi-species operator (module docstring) at concatenated particles x
    and scores s (species order, counts ``species[a].particles``), collision coefficients c_ab.

    ``method``: 'moments' (gamma = 0 only: :func:`landau.collision.maxwell_field` within a species,
    :func:`maxwell_cross_sum` across), 'direct' (tiled pair sums, any gamma), 'auto' = moments for
    gamma = 0 else direct. ``delta`` regularises |z|^gamma as (|z|^2 + delta^2)^(gamma/2); with
    delta = 0 coincident pairs are dropped (direct only).
    """
    if method == "auto":
        method = "moments" if gamma == 0 else "direct"
    if method == "moments" and gamma != 0:
        raise ValueError("the moment form exists for gamma = 0 only")
    sl = species_slices(species)
    if len(x) != sl[-1].stop:
        raise ValueError(f"{len(x)} particles given, the species hold {sl[-1].stop}")
    out = []
    for a, sa in enumerate(species):
        xa, sig = x[sl[a]], s[sl[a]] / sa.mass
        blocks = []
        for b, sb in enumerate(species):
            if c[a][b] == 0:
                continue
            if a == b:
                b_aa = c[a][a] * sa.density / (sa.mass * sa.mass)
                blocks.append(maxwell_field(xa, s[sl[a]], b_aa) if method == "moments" else
                              landau_field_direct(xa, s[sl[a]], gamma, b_aa, delta, tile))
                continue
            xb, tau = x[sl[b]], s[sl[b]] / sb.mass
            r = (maxwell_cross_sum(xa, sig, xb, tau) if method == "moments" else
                 landau_pair_sum(xa, sig, xb, tau, gamma, delta, tile=tile))
            blocks.append(-(c[a][b] * sb.density / (sa.mass * sb.particles)) * r)
        out.append(sum(blocks[1:], blocks[0]) if blocks else torch.zeros_like(xa))
    return torch.cat(out)


class SpeciesLandauEquation:
    """The multi-species Landau equation as a run-loop equation: ``velocity(x, s, t) -> U``.

    x, s: (n_total, d), all species concatenated in the order of ``species``; ``species_id`` and
    ``slices`` locate each species' rows (scores come from one oracle per species, concatenated).
    ``coulomb_log``: the symmetric matrix L_ab (default all ones); ``c``: the coefficients c_ab.
    """

    kind = "landau"

    def __init__(self, species: Sequence[Species], gamma: float, B: float,
                 coulomb_log: Sequence[Sequence[float]] | None = None, delta: float = 0.0,
                 method: str = "auto", tile: int | None = None) -> None:
        if method not in ("auto", "moments", "direct"):
            raise ValueError(f"unknown Landau method {method!r}")
        if method == "moments" and gamma != 0:
            raise ValueError("the moment form exists for gamma = 0 only")
        names = [sp.name for sp in species]
        if not species or len(set(names)) != len(names):
            raise ValueError(f"species names must be non-empty and unique, got {names}")
        self.species = tuple(species)
        self.gamma, self.B, self.delta, self.tile = gamma, B, delta, tile
        self.c = collision_coefficients(self.species, B, coulomb_log)
        self.method = ("moments" if gamma == 0 else "direct") if method == "auto" else method
        self.slices = species_slices(self.species)
        self.species_id = species_id(self.species)

    def velocity(self, x: torch.Tensor, s: torch.Tensor, t: float) -> torch.Tensor:
        return species_landau_field(x, s, self.species, self.c, self.gamma, self.delta, self.method, self.tile)


# ----------------------------------------------------------------------------- diagnostics
def species_mean(x: torch.Tensor, species: Sequence[Species]) -> torch.Tensor:
    """(S, d): u_a = <v>_a."""
    return torch.stack([x[sl].mean(0) for sl in species_slices(species)])


def temperature_tensor(x: torch.Tensor, species: Sequence[Species]) -> torch.Tensor:
    """(S, d, d): Theta_a = m_a <(v - u_a)(v - u_a)^T>_a (empirical covariance times mass)."""
    out = []
    for sp, sl in zip(species, species_slices(species)):
        dv = x[sl] - x[sl].mean(0)
        out.append(sp.mass * (dv.T @ dv) / len(dv))
    return torch.stack(out)


def temperature(x: torch.Tensor, species: Sequence[Species]) -> torch.Tensor:
    """(S,): T_a = tr(Theta_a) / d = (m_a / d) <|v - u_a|^2>_a."""
    return torch.diagonal(temperature_tensor(x, species), dim1=-2, dim2=-1).sum(-1) / x.shape[1]


def _weights(species: Sequence[Species], mass: bool, x: torch.Tensor) -> torch.Tensor:
    return torch.tensor([sp.density * (sp.mass if mass else 1.0) for sp in species], dtype=x.dtype, device=x.device)


def momentum(x: torch.Tensor, species: Sequence[Species]) -> torch.Tensor:
    """(d,): P = sum_a m_a n_a <v>_a."""
    return _weights(species, True, x) @ species_mean(x, species)


def energy(x: torch.Tensor, species: Sequence[Species]) -> torch.Tensor:
    """(): E = sum_a (m_a n_a / 2) <|v|^2>_a."""
    e = torch.stack([(x[sl] * x[sl]).sum(1).mean() for sl in species_slices(species)])
    return 0.5 * _weights(species, True, x) @ e


def entropy_production(u: torch.Tensor, s: torch.Tensor, species: Sequence[Species]) -> torch.Tensor:
    """(): sum_a n_a <U . s_a>_a, the particle estimate of d/dt sum_a n_a Int f_a log f_a (<= 0)."""
    e = torch.stack([(u[sl] * s[sl]).sum(1).mean() for sl in species_slices(species)])
    return _weights(species, False, u) @ e


def moment_rates(x: torch.Tensor, u: torch.Tensor, species: Sequence[Species]) -> tuple[torch.Tensor, torch.Tensor]:
    """Rates of the species means and temperature tensors while the particles move with velocity u:

        d u_a / dt = <U>_a,    d Theta_a / dt = m_a < (v - u_a) U^T + U (v - u_a)^T >_a,

    (S, d) and (S, d, d); d T_a / dt is the trace of the second over d.
    """
    du, dth = [], []
    for sp, sl in zip(species, species_slices(species)):
        dv, ua = x[sl] - x[sl].mean(0), u[sl]
        g = dv.T @ ua / len(dv)
        du.append(ua.mean(0))
        dth.append(sp.mass * (g + g.T))
    return torch.stack(du), torch.stack(dth)
