"""Binary-collision Monte Carlo for the homogeneous Landau equation (Takizuka & Abe 1977; Nanbu 1997).

Each step pairs the n particles at random (a fresh random permutation; for odd n the first three
particles of the permutation collide pairwise, (1,2), (2,3), (3,1), each at half weight, as
Takizuka & Abe do) and scatters every pair: the relative velocity u = v_i - v_j is rotated by an
angle theta about a uniformly random axis normal to u, |u| kept, and each particle takes half of
the change (equal masses). Momentum and energy are conserved by every collision (to rounding).

**Angle variance from the same B and gamma** (derivation: docs/binary_collisions.md). A rotation
by a small theta gives E[du] = -(theta^2/2) u and E[du du^T] = theta^2 (|u|^2 I - u u^T)/(d - 1);
per particle dv = du/2. Matching the step's drift and diffusion,

    (1/dt) E[dv] = -2 (d - 1) B |u|^gamma u,    (1/2dt) E[dv dv^T] = B |u|^gamma (|u|^2 I - u u^T),

to the Landau weak form d/dt <phi> = B E_{v,w}[ Phi(z) : grad^2 phi(v) - 2 (d - 1) |z|^gamma z . grad phi(v) ]
needs, for both at once,

    <theta^2> = 8 (d - 1) B |u|^gamma dt      (Coulomb, d = 3: 16 B dt / |u|^3).

* ``takizuka_abe``: tan(theta/2) = delta ~ N(0, <theta^2>/4) (d = 2, 3). With B = e^4 n lnL /
  (8 pi eps0^2 m^2) this is Takizuka & Abe's <delta^2> = e^4 n lnL dt / (8 pi eps0^2 mu^2 u^3), mu = m/2.
* ``nanbu``: cos chi from Nanbu's distribution exp(A cos chi), coth A - 1/A = exp(-s), s = <theta^2>/2
  (Nanbu's s; d = 3), cos chi = 1 + log(U + (1 - U) exp(-2A)) / A, isotropic when exp(-s) < 1e-10.

Both converge to the Landau equation as dt -> 0 (with the statistical noise of n particles).
Several species (masses, charges, densities): :class:`SpeciesBinaryCollisions` (Takizuka-Abe pairing
between species of equal particle weights).
CPU: compiled loops (``landau/binary_kernels_numba.py``, O(n), parallel over pairs); elsewhere
the same formulas in torch. Random numbers come from the caller's generator: the permutation
(``randperm``), then the deviates r1 (normal for TA, uniform for Nanbu) and the azimuths r2.
"""
from __future__ import annotations

import math
from typing import Sequence

import torch

from landau import pairs
from landau.species import Species, collision_coefficients, species_slices

SCHEMES = ("takizuka_abe", "nanbu")


def collision_draws(n: int, generator: torch.Generator, scheme: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(permutation (n,), r1, r2 (collisions,)) for one step, from ``generator`` in a fixed order."""
    m = n // 2 + (2 if n % 2 else 0)             # odd n: a triple (3 collisions) and (n - 3)/2 pairs
    perm = torch.randperm(n, generator=generator)
    r1 = (torch.randn if scheme == "takizuka_abe" else torch.rand)(m, generator=generator, dtype=torch.float64)
    r2 = torch.rand(m, generator=generator, dtype=torch.float64)
    return perm, r1, r2


def collide_torch(v: torch.Tensor, perm: torch.Tensor, r1: torch.Tensor, r2: torch.Tensor, coef: float,
                  gamma: float, scheme: str) -> torch.Tensor:
    """The compiled step's formulas in torch (CUDA, no numba; and the tests' reference), in place."""
    n, d = v.shape
    t = 3 if n % 2 else 0
    dev = v.device
    if t:
        for k in range(3):
            _collide_torch(v, perm[k:k + 1].to(dev), perm[(k + 1) % 3:(k + 1) % 3 + 1].to(dev), r1[k:k + 1],
                           r2[k:k + 1], 0.5 * coef, gamma, scheme)
    i, j = perm[t::2].to(dev), perm[t + 1::2].to(dev)
    _collide_torch(v, i, j, r1[t:], r2[t:], coef, gamma, scheme)
    return v


def _collide_torch(v, i, j, r1, r2, coef, gamma, scheme, fi=0.5, fj=0.5):
    """Scatter the pairs (i[k], j[k]) (disjoint) with draws k: v_i += fi du, v_j -= fj du."""
    r1, r2 = r1.to(device=v.device, dtype=torch.float64), r2.to(device=v.device, dtype=torch.float64)
    vi, vj = v[i].double(), v[j].double()
    u = vi - vj
    uu = u.norm(dim=1)
    ok = uu > 0
    var = coef * torch.where(ok, uu, torch.ones_like(uu)) ** gamma
    if scheme == "takizuka_abe":
        delta = r1 * (0.25 * var).sqrt()
        den = 1 + delta * delta
        sn, omc = 2 * delta / den, 2 * delta * delta / den
    else:
        a = nanbu_a(0.5 * var)
        c = torch.where(a == 0, 2 * r1 - 1,
                        1 + torch.log(r1 + (1 - r1) * torch.exp(-2 * a)) / torch.where(a == 0, torch.ones_like(a), a))
        c = c.clamp(-1, 1)
        sn, omc = (1 - c * c).clamp_min(0).sqrt(), 1 - c
    if v.shape[1] == 2:
        du = torch.stack([-u[:, 1] * sn, u[:, 0] * sn], 1) - omc[:, None] * u
    else:
        phi = 2 * math.pi * r2
        cp, sp = torch.cos(phi), torch.sin(phi)
        up = u[:, :2].norm(dim=1)
        flat = up > 0
        ups, uus = torch.where(flat, up, torch.ones_like(up)), torch.where(ok, uu, torch.ones_like(uu))
        e1 = torch.where(flat[:, None], torch.stack([u[:, 0] * u[:, 2] / (ups * uus), u[:, 1] * u[:, 2] / (ups * uus),
                                                     -up / uus], 1), torch.tensor([1.0, 0, 0], dtype=u.dtype, device=u.device))
        e2 = torch.where(flat[:, None], torch.stack([-u[:, 1] / ups, u[:, 0] / ups, torch.zeros_like(up)], 1),
                         torch.tensor([0, 1.0, 0], dtype=u.dtype, device=u.device))
        du = (uu * sn)[:, None] * (cp[:, None] * e1 + sp[:, None] * e2) - omc[:, None] * u
    du = torch.where(ok[:, None], du, torch.zeros_like(du))
    v[i] = (vi + fi * du).to(v.dtype)
    v[j] = (vj - fj * du).to(v.dtype)


def nanbu_a(s: torch.Tensor) -> torch.Tensor:
    """A(s) with coth(A) - 1/A = exp(-s) (Newton from the right, as in the compiled kernel); 0 where
    the scatter is isotropic (exp(-s) < 1e-10)."""
    if s.device.type == "cpu" and s.dtype == torch.float64 and pairs.kernels(s) is not None:
        out = torch.empty_like(s)
        pairs.load_compiled("landau.binary_kernels_numba").nanbu_a_array(s.contiguous().numpy(), out.numpy())
        return out
    mu = torch.exp(-s)
    iso = mu < 1e-10
    mu = torch.where(iso, torch.full_like(mu, 0.5), mu)
    a = 1 / (1 - mu).clamp_min(1e-300)
    for _ in range(100):
        big, small = a > 30, a < 1e-2
        am = a.clamp(1e-2, 30)
        sh = torch.sinh(am)
        a2 = a * a
        f = torch.where(big, 1 - 1 / a, torch.where(small, a * (1 / 3 - a2 / 45 + 2 * a2 * a2 / 945),
                                                    1 / torch.tanh(am) - 1 / am)) - mu
        fp = torch.where(big, 1 / a2, torch.where(small, 1 / 3 - a2 / 15 + 2 * a2 * a2 / 189,
                                                  1 / (am * am) - 1 / (sh * sh)))
        step = f / fp
        a = a - step
        if bool((step.abs() <= 1e-12 * a).all()):
            break
    return torch.where(iso, torch.zeros_like(a), a)


def mean_sin2(var: torch.Tensor, scheme: str) -> torch.Tensor:
    """E[sin^2 theta] of one collision whose small-angle variance is <theta^2> = var.

    Takizuka-Abe, tan(theta/2) = delta ~ N(0, var/4): sin^2 theta = 4 delta^2/(1 + delta^2)^2, and with
    x = 1/(sqrt 2 sigma), E[1/(1 + delta^2)] = sqrt(pi) x erfcx(x), so
    E[sin^2] = 4 sqrt(pi) x [(x^2 + 1/2) erfcx(x) - x/sqrt(pi)] (asymptotic series 2/x^2 - 6/x^4 + 75/(4x^6)
    for x > 30, where the difference cancels). Nanbu: <sin^2 chi> = 2 L(A)/A = 2 exp(-s)/A (2/3 isotropic)."""
    if scheme == "takizuka_abe":
        from scipy.special import erfcx
        x = 1 / (0.5 * var).sqrt()                 # sigma^2 = var/4: x = 1/(sqrt 2 sigma) = sqrt(2/var)
        xs = x.clamp(max=30)
        ex = torch.as_tensor(erfcx(xs.cpu().numpy())).to(x)
        exact = 4 * math.sqrt(math.pi) * xs * ((xs * xs + 0.5) * ex - xs / math.sqrt(math.pi))
        xi2 = 1 / (x * x)
        series = 2 * xi2 - 6 * xi2 ** 2 + 18.75 * xi2 ** 3
        return torch.where(x > 30, series, exact)
    a = nanbu_a(0.5 * var)
    return torch.where(a == 0, torch.full_like(a, 2 / 3), 2 * torch.exp(-0.5 * var) / torch.where(a == 0, torch.ones_like(a), a))


class BinaryCollisions:
    """The Landau equation's binary-collision step: ``advance(x, t, dt, u, rhs)`` in place on x
    (the run loop's self-stepping interface, as the phase-space equations have), randomness from
    ``generator`` (set to the problem's seeded generator). It has no velocity field:
    ``velocity`` returns zeros (never written to the output)."""

    def __init__(self, gamma: float, B: float, scheme: str = "takizuka_abe") -> None:
        if scheme not in SCHEMES:
            raise ValueError(f"scheme must be one of {SCHEMES}, got {scheme!r}")
        self.gamma, self.B, self.scheme = gamma, B, scheme
        self.generator: torch.Generator | None = None

    def velocity(self, x: torch.Tensor, s: torch.Tensor, t: float) -> torch.Tensor:
        return torch.zeros_like(x)

    def expected_covariance_rate(self, x: torch.Tensor, dt: float, shifts: int = 8) -> torch.Tensor:
        """The expected dS/dt of one collision step over the scattering angles and a random partner,
        without random numbers: a pair with relative velocity u changes S by (1/2n) d(u u^T) and
        E[d(u u^T) | u] = <sin^2 theta>/(d - 1) (|u|^2 I - d u u^T) (|u| is kept), so

            dS/dt ~ (1/4 dt) mean over pairs of <sin^2 theta>(u)/(d - 1) (|u|^2 I - d u u^T),

        the mean taken over the pairs (p, p + k mod n), k = 1..``shifts``, of the stored order (an
        unbiased estimate of the mean over independent pairs while the particles are i.i.d., as at t0).
        As dt -> 0, <sin^2 theta> -> 8 (d - 1) B |u|^gamma dt and this is 2B E[|u|^gamma (|u|^2 I - d u u^T)],
        the Landau rate (landau/gaussian_rates.py)."""
        n, d = x.shape
        xd = x.detach().double()
        out = torch.zeros(d, d, dtype=torch.float64, device=x.device)
        eye = torch.eye(d, dtype=torch.float64, device=x.device)
        for k in range(1, min(shifts, n - 1) + 1):
            u = xd - torch.roll(xd, -k, 0)
            u2 = (u * u).sum(1)
            ok = u2 > 0
            var = 8 * (d - 1) * self.B * dt * torch.where(ok, u2, torch.ones_like(u2)) ** (self.gamma / 2)
            w = torch.where(ok, mean_sin2(var, self.scheme), torch.zeros_like(u2)) / (d - 1)
            out += (w * u2).sum() * eye - d * (w[:, None] * u).T @ u
        return (out / (4 * dt * n * min(shifts, n - 1))).to(x.dtype)

    def step(self, x: torch.Tensor, dt: float, generator: torch.Generator) -> torch.Tensor:
        """Collide every particle once (in place on x (n, d), d = 2 or 3)."""
        n, d = x.shape
        if d not in (2, 3) or (d == 2 and self.scheme == "nanbu"):
            raise ValueError(f"binary collisions exist for d = 2 (takizuka_abe) and 3, got d = {d}")
        return self.collide(x, 8 * (d - 1) * self.B * dt, generator)

    def collide(self, x: torch.Tensor, coef: float, generator: torch.Generator) -> torch.Tensor:
        """One random pairing of the rows of x (equal masses), <theta^2> = coef |u|^gamma, in place."""
        perm, r1, r2 = collision_draws(x.shape[0], generator, self.scheme)
        compiled = pairs.kernels(x) if x.dtype == torch.float64 else None
        if compiled is not None:
            kernels = pairs.load_compiled("landau.binary_kernels_numba")
            buf = x if x.is_contiguous() else x.contiguous()
            kernels.collide(buf.detach().numpy(), perm.numpy(), r1.numpy(), r2.numpy(), coef, float(self.gamma),
                            SCHEMES.index(self.scheme))
            if buf is not x:
                x.copy_(buf)
            return x
        return collide_torch(x, perm, r1, r2, coef, self.gamma, self.scheme)

    def advance(self, x: torch.Tensor, t: float, dt: float, u: torch.Tensor, rhs) -> torch.Tensor:
        if self.generator is None:
            raise RuntimeError("BinaryCollisions.generator is not set (the problem's seeded generator)")
        return self.step(x, dt, self.generator)


def mean_1mcos(var: torch.Tensor, scheme: str) -> torch.Tensor:
    """E[1 - cos theta] of one collision with small-angle variance <theta^2> = var (-> var/2 as var -> 0).

    Takizuka-Abe: 1 - cos theta = 2 delta^2/(1 + delta^2), so E = 2 (1 - sqrt(pi) x erfcx(x)), x = sqrt(2/var)
    (series 1/x^2 - 3/(2x^4) + 15/(4x^6) for x > 30). Nanbu: <cos chi> = exp(-s), s = var/2, so E = 1 - exp(-s)."""
    if scheme == "takizuka_abe":
        from scipy.special import erfcx
        x = 1 / (0.5 * var).sqrt()
        xs = x.clamp(max=30)
        ex = torch.as_tensor(erfcx(xs.cpu().numpy())).to(x)
        xi2 = 1 / (x * x)
        return torch.where(x > 30, xi2 - 1.5 * xi2 ** 2 + 3.75 * xi2 ** 3, 2 * (1 - math.sqrt(math.pi) * xs * ex))
    return -torch.expm1(-0.5 * var)


def collide_pairs(v: torch.Tensor, i: torch.Tensor, j: torch.Tensor, r1: torch.Tensor, r2: torch.Tensor, coef: float,
                  gamma: float, scheme: str, fi: float, fj: float) -> None:
    """Scatter the disjoint pairs (i[k], j[k]) with draws k in place on v: <theta^2> = coef |u|^gamma,
    v_i += fi du, v_j -= fj du (compiled on CPU float64, torch elsewhere)."""
    if v.dtype == torch.float64 and pairs.kernels(v) is not None and v.is_contiguous():
        pairs.load_compiled("landau.binary_kernels_numba").collide_pairs(
            v.detach().numpy(), i.numpy(), j.numpy(), r1.numpy(), r2.numpy(), coef, float(gamma), SCHEMES.index(scheme),
            fi, fj)
    else:
        _collide_torch(v, i.to(v.device), j.to(v.device), r1, r2, coef, gamma, scheme, fi, fj)


class SpeciesBinaryCollisions:
    """Binary collisions for several species (masses m_a, charges e_a, densities n_a, N_a particles of
    weight n_a/N_a concatenated in species order), the multi-species Landau operator of
    :mod:`landau.species` with c_ab = B e_a^2 e_b^2 L_ab. Derivation: docs/binary_collisions.md, section 4.

    A collision of v (species a) with w (species b), mu = m_a m_b/(m_a + m_b), rotates u = v - w by theta
    (|u| kept) and moves v by (mu/m_a) du, w by -(mu/m_b) du (momentum and energy exact). Matching the
    drift and diffusion of the weak form d/dt <phi>_a = sum_b (c_ab n_b/m_a) << Phi(z) : grad^2 phi / m_a
    - (d - 1)(1/m_a + 1/m_b) |z|^gamma z . grad phi >>_ab for a particle that meets one partner of b per step:

        <theta^2> = 2 (d - 1) c_ab n_b |u|^gamma dt / mu^2      (one species, m = n = 1: 8 (d - 1) B |u|^gamma dt).

    Each step, in order: every species with c_aa > 0 collides within itself (random pairing, odd-N triple at
    half weight, as :class:`BinaryCollisions`); then every pair a < b with c_ab > 0 (Takizuka & Abe 1977 for
    equal weights n_a/N_a = n_b/N_b): with N_L >= N_S the counts of the two species, each particle of the
    larger one meets one particle of the smaller one (k-th of a random permutation of L with the (k mod N_S)-th
    of one of S; N_L/N_S rounds of disjoint pairs), every particle of S meets N_L/N_S partners, and n_b in
    <theta^2> is the lower density n_S (for S, N_L/N_S collisions with n_S sum to n_L, as its partner density
    requires). Unequal weights would need weighted collisions (Nanbu & Yonemura 1998) that conserve only on
    average: refused. Random numbers from the caller's generator in this order."""

    def __init__(self, species: Sequence[Species], gamma: float, B: float,
                 coulomb_log: Sequence[Sequence[float]] | None = None, scheme: str = "takizuka_abe") -> None:
        if scheme not in SCHEMES:
            raise ValueError(f"scheme must be one of {SCHEMES}, got {scheme!r}")
        self.species, self.gamma, self.B, self.scheme = list(species), gamma, B, scheme
        self.c = collision_coefficients(self.species, B, coulomb_log)
        self.slices = species_slices(self.species)
        self.within = BinaryCollisions(gamma, B, scheme)
        for a, sa in enumerate(self.species):
            for b, sb in enumerate(self.species[a + 1:], a + 1):
                wa, wb = sa.density / sa.particles, sb.density / sb.particles
                if self.c[a][b] > 0 and abs(wa - wb) > 1e-12 * max(wa, wb):
                    raise ValueError(f"binary collisions between species {sa.name!r} and {sb.name!r} need equal "
                                     f"particle weights density/particles, got {wa:.6g} and {wb:.6g}")
        self.generator: torch.Generator | None = None

    def velocity(self, x: torch.Tensor, s: torch.Tensor, t: float) -> torch.Tensor:
        return torch.zeros_like(x)

    def _inter(self, a: int, b: int) -> tuple[int, int, float, float, float]:
        """(larger species L, smaller S, 2 c_ab n_S / mu^2, f_L, f_S) of the pair (a, b); <theta^2> is
        (d - 1) dt |u|^gamma times the third."""
        L, S = (a, b) if self.species[a].particles >= self.species[b].particles else (b, a)
        mL, mS = self.species[L].mass, self.species[S].mass
        mu = mL * mS / (mL + mS)
        nu_coef = 2 * self.c[a][b] * self.species[S].density / (mu * mu)
        return L, S, nu_coef, mS / (mL + mS), mL / (mL + mS)

    def step(self, x: torch.Tensor, dt: float, generator: torch.Generator) -> torch.Tensor:
        """Collide every species within itself, then every pair of species (in place on x (n, d))."""
        n, d = x.shape
        if d not in (2, 3) or (d == 2 and self.scheme == "nanbu"):
            raise ValueError(f"binary collisions exist for d = 2 (takizuka_abe) and 3, got d = {d}")
        work = x if x.is_contiguous() else x.contiguous()
        for a, sp in enumerate(self.species):
            if self.c[a][a] > 0 and sp.particles >= 2:
                self.within.collide(
                    work[self.slices[a]], 8 * (d - 1) * self.c[a][a] * sp.density * dt / sp.mass ** 2, generator)
        for a in range(len(self.species)):
            for b in range(a + 1, len(self.species)):
                if self.c[a][b] == 0:
                    continue
                L, S, nu_coef, fL, fS = self._inter(a, b)
                nL, nS = self.species[L].particles, self.species[S].particles
                pL = torch.randperm(nL, generator=generator) + self.slices[L].start
                pS = torch.randperm(nS, generator=generator) + self.slices[S].start
                r1 = (torch.randn if self.scheme == "takizuka_abe" else torch.rand)(nL, generator=generator,
                                                                                   dtype=torch.float64)
                r2 = torch.rand(nL, generator=generator, dtype=torch.float64)
                for k0 in range(0, nL, nS):                                    # rounds of disjoint pairs
                    k1 = min(k0 + nS, nL)
                    collide_pairs(work, pL[k0:k1], pS[:k1 - k0], r1[k0:k1], r2[k0:k1], (d - 1) * nu_coef * dt,
                                  self.gamma, self.scheme, fL, fS)
        if work is not x:
            x.copy_(work)
        return x

    def expected_temperature_rate(self, x: torch.Tensor, dt: float, shifts: int = 8) -> torch.Tensor:
        """(S,) expected dT_a/dt of one step over the angles and partners (no random numbers). Collisions
        within a species keep its momentum and energy, so only the pairs of species count: with
        f = (mass of the partner)/(m_a + m_b), u = v - w and c1 = E[1 - cos theta] (:func:`mean_1mcos`),
        E[dv] = -f c1 u and E|dv|^2 = 2 f^2 c1 |u|^2, so a collision changes (m_a/d)|v - u_a|^2 by
        (2 m_a/d) f c1 (f |u|^2 - (v - u_a) . u) on average (the O(1/N) change of |u_a|^2 left out).
        Averaged over the pairs (k-th particle of L, (k + s mod N_S)-th of S) of the stored order, s = 1..
        ``shifts`` (independent pairs while the particles are i.i.d., as at t0), times the collisions per
        particle per step (1 for L, N_L/N_S for S). As dt -> 0 this is the Landau operator's rate."""
        d = x.shape[1]
        xd = x.detach().double()
        out = torch.zeros(len(self.species), dtype=torch.float64, device=x.device)
        for a in range(len(self.species)):
            for b in range(a + 1, len(self.species)):
                if self.c[a][b] == 0:
                    continue
                L, S, nu_coef, fL, fS = self._inter(a, b)
                vL, vS = xd[self.slices[L]], xd[self.slices[S]]
                nL, nS = len(vL), len(vS)
                cL, cS = vL - vL.mean(0), vS - vS.mean(0)
                k = torch.arange(nL, device=x.device)
                eL, eS = torch.zeros((), dtype=torch.float64), torch.zeros(nS, dtype=torch.float64)
                for s in range(1, shifts + 1):
                    q = (k + s) % nS
                    u = vL - vS[q]
                    u2 = (u * u).sum(1)
                    ok = u2 > 0
                    var = (d - 1) * nu_coef * dt * torch.where(ok, u2, torch.ones_like(u2)) ** (self.gamma / 2)
                    c1 = torch.where(ok, mean_1mcos(var, self.scheme), torch.zeros_like(u2))
                    eL = eL + (c1 * fL * (fL * u2 - (cL * u).sum(1))).sum()
                    eS = eS + torch.zeros(nS, dtype=torch.float64).index_add_(
                        0, q, c1 * fS * (fS * u2 + (cS[q] * u).sum(1)))
                out[L] += 2 * self.species[L].mass / d * eL / (nL * shifts * dt)
                out[S] += 2 * self.species[S].mass / d * eS.sum() / (nS * shifts * dt)
        return out.to(x.dtype)

    def advance(self, x: torch.Tensor, t: float, dt: float, u: torch.Tensor, rhs) -> torch.Tensor:
        if self.generator is None:
            raise RuntimeError("SpeciesBinaryCollisions.generator is not set (the problem's seeded generator)")
        return self.step(x, dt, self.generator)
