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
CPU: compiled loops (``landau/binary_kernels_numba.py``, O(n), parallel over pairs); elsewhere
the same formulas in torch. Random numbers come from the caller's generator: the permutation
(``randperm``), then the deviates r1 (normal for TA, uniform for Nanbu) and the azimuths r2.
"""
from __future__ import annotations

import math

import torch

from landau import pairs

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


def _collide_torch(v, i, j, r1, r2, coef, gamma, scheme):
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
    v[i] = (vi + 0.5 * du).to(v.dtype)
    v[j] = (vj - 0.5 * du).to(v.dtype)


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
        perm, r1, r2 = collision_draws(n, generator, self.scheme)
        coef = 8 * (d - 1) * self.B * dt
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
