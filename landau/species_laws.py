"""Exact references for the multi-species Landau equation (operator and symbols: landau/species.py;
derivations: docs/multispecies.md).

Weak form. For a test function phi, with <<g>>_ab the mean of g(v, w) over v ~ f_a, w ~ f_b,

    d/dt <phi>_a = sum_b (c_ab n_b / m_a) << Phi(z) : grad^2 phi(v) / m_a
                                            - (d - 1) (1/m_a + 1/m_b) |z|^gamma z . grad phi(v) >>_ab,

z = v - w (div Phi(z) = -(d - 1) |z|^gamma z). Species a has mean u_a, covariance C_a, temperature
tensor Theta_a = m_a C_a and temperature T_a = tr(Theta_a) / d; D_ab = u_a - u_b.

**Maxwell molecules (gamma = 0)**, any densities: means and temperature tensors obey the closed system

    du_a/dt     = -(d - 1) sum_b c_ab n_b (m_a + m_b) / (m_a^2 m_b) (u_a - u_b),
    dTheta_a/dt = sum_b (2 c_ab n_b / m_a) [ tr(K_ab) I - K_ab - (d - 1)(1 + m_a / m_b) C_a ],
    K_ab = C_a + C_b + D_ab D_ab^T,

so dT_a/dt = 2(d - 1) sum_b c_ab n_b (T_b - T_a) / (m_a m_b) + (2(d - 1)/d) sum_b c_ab n_b |D_ab|^2 / m_a.
It is linear in (Theta, P) with P_ab = u_a u_b^T (dP/dt = -G P - P G^T, G the mean-velocity
matrix) and is solved exactly by one matrix exponential (:class:`MaxwellSpeciesLaw`).

**Two drifting isotropic Maxwellians, any gamma** (f_a = N(u_a, T_a / m_a I); Coulomb: gamma = -3,
d = 3): with z ~ N(D_ab, sigma^2 I), sigma^2 = T_a / m_a + T_b / m_b,

    du_a/dt = -(d - 1) sum_b c_ab n_b (m_a + m_b) / (m_a^2 m_b) E[|z|^gamma z],
    dT_a/dt = (2(d - 1)/d) sum_b c_ab n_b [ (T_b - T_a) E|z|^(gamma+2) + (m_a + m_b)(T_a / m_a) D_ab . E[|z|^gamma z] ]
              / (m_a T_b + m_b T_a),

E|z|^k = (2 sigma^2)^(k/2) Gamma((d + k)/2) / Gamma(d/2) M(-k/2, d/2, -lam),
E[|z|^gamma z] = (2 sigma^2)^(k/2) Gamma((d + k)/2) / (Gamma(d/2) d sigma^2) M(-gamma/2, d/2 + 1, -lam) D_ab,
k = gamma + 2, lam = |D_ab|^2 / (2 sigma^2), M = 1F1 (Kummer). Without drift, Coulomb in d = 3:

    dT_a/dt = sum_b nu_ab (T_b - T_a),   nu_ab = (4/3) sqrt(2/pi) c_ab n_b sqrt(m_a m_b) / (m_a T_b + m_b T_a)^(3/2),

the NRL / Spitzer temperature-equilibration rate with c_ab = e_a^2 e_b^2 ln Lambda / (8 pi eps0^2).
Integrating these rates in time (:class:`MaxwellianRelaxationModel`) is the multi-temperature
Maxwellian model: exact for gamma = 0 (it is then the trace of the moment law), a model otherwise
(the species do not stay Maxwellian; only the initial rates of Maxwellian data are exact).
"""
from __future__ import annotations

import itertools
from typing import Sequence

import numpy as np
import torch

from landau.gaussian_rates import species_moment_rates
from landau.species import Species, SpeciesLandauEquation, species_mean, temperature_tensor


def _params(species: Sequence[Species], like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    m = torch.tensor([sp.mass for sp in species], dtype=like.dtype, device=like.device)
    n = torch.tensor([sp.density for sp in species], dtype=like.dtype, device=like.device)
    return m, n


def mean_velocity_matrix(species: Sequence[Species], c: Sequence[Sequence[float]], d: int,
                         like: torch.Tensor) -> torch.Tensor:
    """(S, S) G with du/dt = -G u (Maxwell molecules): G = diag(sum_b g_ab) - g,
    g_ab = (d - 1) c_ab n_b (m_a + m_b) / (m_a^2 m_b)."""
    m, n = _params(species, like)
    cc = torch.tensor(c, dtype=like.dtype, device=like.device)
    g = (d - 1) * cc * n[None, :] * (m[:, None] + m[None, :]) / (m[:, None] ** 2 * m[None, :])
    return torch.diag(g.sum(1)) - g


def _theta_rate(theta: torch.Tensor, P: torch.Tensor, species: Sequence[Species],
                c: Sequence[Sequence[float]]) -> torch.Tensor:
    """dTheta_a/dt of Maxwell molecules from Theta (S, d, d) and P_ab = u_a u_b^T (S, S, d, d)."""
    m, n = _params(species, theta)
    d = theta.shape[-1]
    cc = torch.tensor(c, dtype=theta.dtype, device=theta.device)
    C = theta / m[:, None, None]
    Pd = torch.diagonal(P, dim1=0, dim2=1).permute(2, 0, 1)                 # P_aa (S, d, d)
    K = C[:, None] + C[None, :] + Pd[:, None] + Pd[None, :] - P - P.transpose(0, 1)
    eye = torch.eye(d, dtype=theta.dtype, device=theta.device)
    trK = torch.diagonal(K, dim1=-2, dim2=-1).sum(-1)
    inner = trK[..., None, None] * eye - K - ((d - 1) * (1 + m[:, None] / m[None, :]))[..., None, None] * C[:, None]
    return ((2 * cc * n[None, :] / m[:, None])[..., None, None] * inner).sum(1)


def maxwell_moment_rates(mean: torch.Tensor, theta: torch.Tensor, species: Sequence[Species],
                         c: Sequence[Sequence[float]]) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-hand side of the Maxwell-molecule moment system: (du/dt (S, d), dTheta/dt (S, d, d))."""
    G = mean_velocity_matrix(species, c, mean.shape[1], mean)
    P = mean[:, None, :, None] * mean[None, :, None, :]
    return -G @ mean, _theta_rate(theta, P, species, c)


class MaxwellSpeciesLaw:
    """Exact means u_a(t) and temperature tensors Theta_a(t) of Maxwell molecules (gamma = 0) from
    u_a(t0), Theta_a(t0), for any initial densities (the densities themselves are not Gaussian).

    u(t) = exp(-G (t - t0)) u(t0); (Theta, P = u u^T) by one matrix exponential of the lifted linear
    system (dimension S d^2 (1 + S)), whose generator is the Jacobian of the linear right-hand side.
    """

    def __init__(self, species: Sequence[Species], c: Sequence[Sequence[float]], mean0: torch.Tensor,
                 theta0: torch.Tensor, t0: float = 0.0) -> None:
        self.species, self.c, self.t0 = tuple(species), c, t0
        self.mean0, self.theta0 = mean0, theta0
        S, d = mean0.shape
        self.G = mean_velocity_matrix(species, c, d, mean0)
        self._split = S * d * d

        def rhs(y: torch.Tensor) -> torch.Tensor:
            theta, P = y[:self._split].view(S, d, d), y[self._split:].view(S, S, d, d)
            dP = -torch.einsum("ac,cbij->abij", self.G, P) - torch.einsum("bc,acij->abij", self.G, P)
            return torch.cat([_theta_rate(theta, P, species, c).reshape(-1), dP.reshape(-1)])

        y0 = torch.cat([theta0.reshape(-1), (mean0[:, None, :, None] * mean0[None, :, None, :]).reshape(-1)])
        self.A = torch.autograd.functional.jacobian(rhs, torch.zeros_like(y0))
        self.y0 = y0

    @classmethod
    def from_particles(cls, x: torch.Tensor, equation: SpeciesLandauEquation, t0: float = 0.0) -> "MaxwellSpeciesLaw":
        """The law started from the particles' own empirical means and temperature tensors."""
        if equation.gamma != 0:
            raise ValueError("the closed moment law holds for Maxwell molecules (gamma = 0) only")
        return cls(equation.species, equation.c, species_mean(x, equation.species),
                   temperature_tensor(x, equation.species), t0)

    def mean(self, t: float) -> torch.Tensor:
        """(S, d) u_a(t)."""
        return torch.linalg.matrix_exp(-self.G * (t - self.t0)) @ self.mean0

    def temperature_tensor(self, t: float) -> torch.Tensor:
        """(S, d, d) Theta_a(t)."""
        S, d = self.mean0.shape
        theta = (torch.linalg.matrix_exp(self.A * (t - self.t0)) @ self.y0)[:self._split].view(S, d, d)
        return 0.5 * (theta + theta.transpose(1, 2))

    def temperature(self, t: float) -> torch.Tensor:
        """(S,) T_a(t) = tr(Theta_a(t)) / d."""
        th = self.temperature_tensor(t)
        return torch.diagonal(th, dim1=-2, dim2=-1).sum(-1) / th.shape[-1]


def stein_polynomial_score(v: torch.Tensor, degree: int = 3) -> torch.Tensor:
    """The polynomial vector field s of degree <= ``degree`` (any field, not only gradients) that
    minimises (1/N) sum_p |s(v_p)|^2 + 2 div s(v_p), evaluated at the particles v (N, d).

    Its normal equations are the empirical Stein identities (1/N) sum_p s_k(v_p) psi(v_p)
    = -(1/N) sum_p d_k psi(v_p) for every monomial psi of degree <= ``degree`` and every k. With
    degree 3 for every species the Maxwell-molecule particle rates of means and temperature tensors
    equal :func:`maxwell_moment_rates` exactly, on any configuration (docs/multispecies.md, section
    6). Monomials are taken in standardised coordinates (same span; conditioning only); needs N
    larger than binom(d + degree, d).
    """
    d = v.shape[1]
    m, sd = v.mean(0), v.std(0)
    xi = (v - m) / sd
    alpha = torch.tensor([[combo.count(k) for k in range(d)] for deg in range(degree + 1)
                          for combo in itertools.combinations_with_replacement(range(d), deg)],
                         dtype=v.dtype, device=v.device)                            # (K, d) exponents
    feats = torch.prod(xi[:, None, :] ** alpha, -1)                                  # (N, K)
    h = []
    for k in range(d):                                                               # mean of d psi / d v_k
        lowered = alpha.clone()
        lowered[:, k] = (lowered[:, k] - 1).clamp_min(0)
        h.append((alpha[:, k] * torch.prod(xi[:, None, :] ** lowered, -1)).mean(0) / sd[k])
    return feats @ -torch.linalg.solve(feats.T @ feats / len(v), torch.stack(h, 1))


def maxwellian_exchange_rates(mean: torch.Tensor, temp: torch.Tensor, species: Sequence[Species],
                              c: Sequence[Sequence[float]], gamma: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Initial rates (du_a/dt (S, d), dT_a/dt (S,)) when every species is an isotropic Maxwellian
    f_a = N(u_a, T_a / m_a I), any gamma with d + gamma + 1 > 0 (module docstring). The expectations
    over z ~ N(D_ab, sigma^2 I) are evaluated by :func:`landau.gaussian_rates.species_moment_rates`,
    the one implementation of the Landau rates of Gaussian data (it also gives ``covariance_rate_exact``);
    it equals the Kummer closed forms above to rounding (tested). Self-collisions of a Maxwellian
    contribute nothing to T_a and u_a."""
    S, d = mean.shape
    if d + gamma + 1 <= 0:
        raise ValueError(f"E[|z|^gamma z] diverges for gamma = {gamma} in d = {d}")
    u, T = mean.detach().cpu().double().numpy(), temp.detach().cpu().double().numpy()
    comps = [([1.0], u[a][None], (T[a] / sp.mass * np.eye(d))[None]) for a, sp in enumerate(species)]
    du, dtheta = species_moment_rates(comps, [sp.mass for sp in species], [sp.density for sp in species], c, gamma)
    dT = np.trace(dtheta, axis1=1, axis2=2) / d
    return torch.as_tensor(du).to(mean), torch.as_tensor(dT).to(temp)


class MaxwellianRelaxationModel:
    """u_a(t), T_a(t) when every species is assumed to stay an isotropic Maxwellian: the ODE
    du_a/dt, dT_a/dt = :func:`maxwellian_exchange_rates` integrated from (u_a(t0), T_a(t0)) with an
    adaptive 8th-order Runge-Kutta method (rtol 1e-10). Exact for gamma = 0, a model otherwise."""

    def __init__(self, species: Sequence[Species], c: Sequence[Sequence[float]], gamma: float,
                 mean0: torch.Tensor, temp0: torch.Tensor, t0: float = 0.0) -> None:
        self.species, self.c, self.gamma, self.t0 = tuple(species), c, gamma, t0
        self.mean0, self.temp0 = mean0, temp0
        self._last = (t0, torch.cat([mean0.reshape(-1), temp0]))

    @classmethod
    def from_particles(cls, x: torch.Tensor, equation: SpeciesLandauEquation, t0: float = 0.0) -> "MaxwellianRelaxationModel":
        """Started from the Maxwellians with the particles' empirical means and temperatures."""
        theta = temperature_tensor(x, equation.species)
        return cls(equation.species, equation.c, equation.gamma, species_mean(x, equation.species),
                   torch.diagonal(theta, dim1=-2, dim2=-1).sum(-1) / x.shape[1], t0)

    def state(self, t: float) -> tuple[torch.Tensor, torch.Tensor]:
        """(u (S, d), T (S,)) at time t (integrating on from the last evaluated time when t >= it)."""
        S, d = self.mean0.shape
        t_start, y_start = self._last if t >= self._last[0] else (self.t0, torch.cat([self.mean0.reshape(-1), self.temp0]))

        def rhs(_, y):
            du, dT = maxwellian_exchange_rates(torch.as_tensor(y[:S * d]).view(S, d), torch.as_tensor(y[S * d:]),
                                               self.species, self.c, self.gamma)
            return torch.cat([du.reshape(-1), dT]).numpy()

        if t > t_start:
            from scipy.integrate import solve_ivp  # deferred: ~1 s of start-up most runs never need
            sol = solve_ivp(rhs, (t_start, t), y_start.double().numpy(), method="DOP853", rtol=1e-10, atol=1e-12)
            y_start = torch.as_tensor(sol.y[:, -1])
        self._last = (t, y_start)
        y = y_start.to(self.mean0)
        return y[:S * d].view(S, d), y[S * d:]
