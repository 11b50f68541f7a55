"""Compiled binary-collision loops (numba) for :mod:`landau.binary_collisions`.

One pass over the pairs of a random pairing, parallel over pairs (each particle is in one pair, so
the pairs are independent); the three particles of the odd-n triple are collided first, in order.
Every collision rotates the relative velocity u = v_i - v_j by the angle theta about a random
azimuth, |u| kept, and moves v_i by f_i du and v_j by -f_j du, f_i = m_j/(m_i + m_j), f_j = m_i/(m_i + m_j)
(1/2 each for equal masses): the centre of mass and |u| are kept, so momentum and energy are exact
per collision up to rounding. Random numbers are drawn by the caller (the run's seeded generator):
``r1`` the normal (Takizuka-Abe) or uniform (Nanbu) deviate, ``r2`` the uniform azimuth.
Arithmetic in float64.
"""
from __future__ import annotations

import math

import numba
from numba import prange

#: cache=False: landau.numba_setup.configure() turns the on-disk cache on at first use
JIT = dict(parallel=True, cache=False, error_model="numpy")

TAKIZUKA_ABE, NANBU = 0, 1


@numba.njit(inline="always", cache=False)
def nanbu_a(s):
    """A with coth(A) - 1/A = exp(-s) (Newton from the right: the Langevin function is concave,
    so the iterates then increase monotonically to the root); 0 for an isotropic scatter."""
    mu = math.exp(-s)
    if mu < 1e-10:
        return 0.0
    a = 1.0 / (1.0 - mu)
    for _ in range(100):
        if a > 30.0:
            f, fp = 1.0 - 1.0 / a - mu, 1.0 / (a * a)
        elif a < 1e-2:                           # L(A) = A/3 - A^3/45 + 2A^5/945 (no cancellation)
            a2 = a * a
            f, fp = a * (1.0 / 3 - a2 / 45 + 2 * a2 * a2 / 945) - mu, 1.0 / 3 - a2 / 15 + 2 * a2 * a2 / 189
        else:
            sh = math.sinh(a)
            f, fp = 1.0 / math.tanh(a) - 1.0 / a - mu, 1.0 / (a * a) - 1.0 / (sh * sh)
        step = f / fp
        a -= step
        if abs(step) <= 1e-14 * a:
            break
    return a


@numba.njit(inline="always", cache=False)
def _collide(v, i, j, r1, r2, coef, gamma, scheme, fi, fj):
    """Scatter the pair (i, j): <theta^2> = coef |u|^gamma (one species: coef = 8 (d - 1) B dt w);
    v_i += fi du, v_j -= fj du."""
    d = v.shape[1]
    u0 = v[i, 0] - v[j, 0]
    u1 = v[i, 1] - v[j, 1]
    u2 = v[i, 2] - v[j, 2] if d == 3 else 0.0
    uu = math.sqrt(u0 * u0 + u1 * u1 + u2 * u2)
    if uu == 0.0:
        return
    var = coef * uu ** gamma
    if scheme == TAKIZUKA_ABE:                   # tan(theta/2) = delta ~ N(0, <theta^2>/4)
        delta = r1 * math.sqrt(0.25 * var)
        den = 1.0 + delta * delta
        sn, omc = 2.0 * delta / den, 2.0 * delta * delta / den
    else:                                        # Nanbu: <cos chi> = exp(-s), s = <theta^2>/2
        a = nanbu_a(0.5 * var)
        if a == 0.0:
            c = 2.0 * r1 - 1.0
        else:
            c = 1.0 + math.log(r1 + (1.0 - r1) * math.exp(-2.0 * a)) / a
            c = max(-1.0, min(1.0, c))
        sn, omc = math.sqrt(max(0.0, 1.0 - c * c)), 1.0 - c
    if d == 2:
        d0 = -u1 * sn - omc * u0                 # rotation by theta in the plane
        d1 = u0 * sn - omc * u1
        d2 = 0.0
    else:
        phi = 2.0 * math.pi * r2
        cp, sp = math.cos(phi), math.sin(phi)
        up = math.sqrt(u0 * u0 + u1 * u1)
        if up > 0.0:                             # e1, e2: an orthonormal basis of the plane normal to u
            e10, e11, e12 = u0 * u2 / (up * uu), u1 * u2 / (up * uu), -up / uu
            e20, e21 = -u1 / up, u0 / up
        else:
            e10, e11, e12 = 1.0, 0.0, 0.0
            e20, e21 = 0.0, 1.0
        d0 = uu * sn * (cp * e10 + sp * e20) - omc * u0
        d1 = uu * sn * (cp * e11 + sp * e21) - omc * u1
        d2 = uu * sn * cp * e12 - omc * u2
    v[i, 0] += fi * d0
    v[j, 0] -= fj * d0
    v[i, 1] += fi * d1
    v[j, 1] -= fj * d1
    if d == 3:
        v[i, 2] += fi * d2
        v[j, 2] -= fj * d2


@numba.njit(**JIT)
def collide(v, perm, r1, r2, coef, gamma, scheme):
    """One step in place on v (n, d), d = 2 or 3: with t = n % 2 * 3 the triple perm[:t] collides
    (0,1), (1,2), (2,0) at half weight (draws 0..2), then pairs (perm[t + 2k], perm[t + 2k + 1])
    with draws t + k."""
    n = perm.shape[0]
    t = 3 if n % 2 == 1 else 0
    if t == 3:
        for k in range(3):
            _collide(v, perm[k], perm[(k + 1) % 3], r1[k], r2[k], 0.5 * coef, gamma, scheme, 0.5, 0.5)
    for k in prange((n - t) // 2):
        _collide(v, perm[t + 2 * k], perm[t + 2 * k + 1], r1[t + k], r2[t + k], coef, gamma, scheme, 0.5, 0.5)


@numba.njit(**JIT)
def collide_pairs(v, i, j, r1, r2, coef, gamma, scheme, fi, fj):
    """Scatter the pairs (i[k], j[k]) with draws k, in place on v; the caller guarantees that no
    particle is in two pairs of one call (parallel over k)."""
    for k in prange(i.shape[0]):
        _collide(v, i[k], j[k], r1[k], r2[k], coef, gamma, scheme, fi, fj)


@numba.njit(**JIT)
def nanbu_a_array(s, out):
    """:func:`nanbu_a` elementwise (for the expected-rate diagnostic)."""
    for k in prange(s.shape[0]):
        out[k] = nanbu_a(s[k])
