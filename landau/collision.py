"""The particle velocity field of the homogeneous Landau equation.

    d_t f = div_v Int A(v - w) (grad log f(v) - grad log f(w)) f(v) f(w) dw,
    A(z) = B |z|^gamma (|z|^2 I - z z^T).

With n equally weighted particles X_p and scores s_p ~ grad log f(X_p), z = X_p - X_q,

    U_p = -(B/n) sum_q |z|^gamma ( |z|^2 (s_p - s_q) - (z . (s_p - s_q)) z ).

Properties for any scores: sum_p U_p = 0 (momentum), sum_p X_p . U_p = 0 (energy) and the
entropy production (1/n) sum_p U_p . s_p <= 0.

Regularisation (gamma < 0): |z|^gamma is evaluated as (|z|^2 + delta^2)^(gamma/2); with the
default delta = 0 coincident pairs (z = 0, whose numerator vanishes) are dropped and near
pairs are exact: for a smooth score s_p - s_q = O(|z|), so the summand is O(|z|^(gamma+3)),
bounded for Coulomb (gamma = -3).

For gamma = 0 (Maxwell molecules) the double sum reduces to moments of the particles and is
evaluated exactly in O(n d^2) (:func:`maxwell_field`); :func:`landau_field` picks it by default.
"""
from __future__ import annotations

import torch

from landau import pairs
from landau.pairs import auto_tile, map_rows


def _pair_weights(r2: torch.Tensor, gamma: float, delta: float, a: torch.Tensor, w: torch.Tensor,
                  zero: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Write a = w |z|^2 and w = |z|^gamma (regularised; 0 where |z| = 0 and delta = 0) into the
    buffers ``a``, ``w`` (``zero``: a bool buffer); return (a, w)."""
    if delta > 0:
        torch.add(r2, delta**2, out=w).pow_(gamma / 2)
        return torch.mul(w, r2, out=a), w
    if gamma == 0:
        return a.copy_(r2), w.fill_(1.0)
    if gamma > 0:
        torch.pow(r2, gamma / 2, out=w)
        return torch.mul(w, r2, out=a), w
    torch.eq(r2, 0.0, out=zero)
    if gamma == -3:                           # Coulomb: one rsqrt, no pow
        torch.rsqrt(r2, out=a).masked_fill_(zero, 0.0)
        return a, torch.mul(a, a, out=w).mul_(a)
    if gamma == -2:
        torch.reciprocal(r2, out=w).masked_fill_(zero, 0.0)
        return a.fill_(1.0).masked_fill_(zero, 0.0), w
    if gamma == -1:
        torch.rsqrt(r2, out=w).masked_fill_(zero, 0.0)
    else:
        torch.pow(r2, gamma / 2, out=w).masked_fill_(zero, 0.0)
    return torch.mul(w, r2, out=a), w


def _keops_block(xr: torch.Tensor, sr: torch.Tensor, x: torch.Tensor, s: torch.Tensor,
                 gamma: float, delta: float) -> torch.Tensor:
    """sum_q w (|z|^2 ds - (z.ds) z) for the rows xr by one KeOps reduction (difference form)."""
    if len(xr) == 0:
        return xr.new_zeros((0, x.shape[1]))
    xi, xj = pairs.lazy_pairs(xr, x)
    si, sj = pairs.lazy_pairs(sr, s)
    z, ds = xi - xj, si - sj
    r2 = (z * z).sum(-1)
    c = (z * ds).sum(-1)
    if gamma == 0:
        return (r2 * ds - c * z).sum(1)
    q = r2 + delta**2 if delta > 0 else r2
    # integer gamma only (KeOps' Powf is not float64-accurate): |z|^gamma = rsqrt(q)^(-gamma);
    # KeOps' rsqrt(0) = 0 drops coincident pairs
    g = int(gamma)
    w = q.rsqrt() if g == -1 else q.rsqrt() ** (-g) if g < 0 else q.sqrt() if g == 1 else q.sqrt() ** g
    return ((w * r2) * ds - (w * c) * z).sum(1)


def landau_field_direct(x: torch.Tensor, s: torch.Tensor, gamma: float, B: float,
                        delta: float = 0.0, tile: int | None = None,
                        rows: slice | None = None) -> torch.Tensor:
    """U_p for the rows ``rows`` of x (default all) by the tiled O(n^2 d) pair sum.

    Per block of rows only (tile, n) arrays are formed (pairwise scalars); coordinates enter
    through matrix products. With x, s centred (U is translation invariant in both),
    |z|^2 = |x_p|^2 + |x_q|^2 - 2 x_p.x_q and z.(s_p - s_q) = x_p.s_p + x_q.s_q - x_p.s_q - s_p.x_q,
    a = w |z|^2 and b = w z.(s_p - s_q), the row sum is

        sum_q a (s_p - s_q) - b (x_p - x_q) = s_p sum_q a - a @ s - x_p sum_q b + b @ x.

    Self pairs are zeroed exactly; the expansion's rounding in |z|^2 is O(eps |x|^2) absolute,
    harmless for the integrable Coulomb singularity (checked against the difference form).
    """
    n, d = x.shape
    rows = rows or slice(0, n)
    x = x - x.mean(0)
    s = s - s.mean(0)
    xx, xs = (x * x).sum(1), (x * s).sum(1)
    xr, sr, xxr, xsr = x[rows], s[rows], xx[rows], xs[rows]
    one_s = torch.cat([torch.ones_like(x[:, :1]), s], 1)       # (n, 1 + d)
    one_x = torch.cat([torch.ones_like(x[:, :1]), x], 1)
    xT, sxT = x.T.contiguous(), torch.cat([s, x], 1).T.contiguous()
    first = rows.start or 0
    tile = auto_tile(n, 1, x.dtype, x.device, tile)
    if pairs.backend() == "keops" and float(gamma).is_integer():
        return -(B / n) * map_rows(lambda r: _keops_block(xr[r], sr[r], x, s, gamma, delta),
                                   len(xr), max(1, len(xr)))

    work = pairs.Workspace(4, min(tile, max(1, len(xr))), n, x.dtype, x.device)
    xsr_all = torch.cat([xr, sr], 1)

    def block(r: slice) -> torch.Tensor:
        b = r.stop - r.start
        r2 = torch.addmm(xx[None, :], xr[r], xT, alpha=-2.0, out=work.get(0, b))
        r2.add_(xxr[r, None]).clamp_min_(0.0)
        if b:
            r2[:, first + r.start:first + r.stop].diagonal().zero_()   # self pairs: z = 0
        c = torch.addmm(xs[None, :], xsr_all[r], sxT, alpha=-1.0, out=work.get(1, b)).add_(xsr[r, None])
        a, w = _pair_weights(r2, gamma, delta, work.get(2, b), work.get(3, b), work.mask[:b])
        c.mul_(w)
        ua, uc = a @ one_s, c @ one_x                            # (b, 1 + d) each
        return sr[r] * ua[:, :1] - ua[:, 1:] - xr[r] * uc[:, :1] + uc[:, 1:]

    return -(B / n) * map_rows(block, len(xr), tile)


def maxwell_field(x: torch.Tensor, s: torch.Tensor, B: float) -> torch.Tensor:
    """U_p for gamma = 0 from moments, exact in O(n d^2).

    The field is invariant under x -> x - c and s -> s - c', so both are centred (sum_q x_q =
    sum_q s_q = 0), which also limits cancellation. With M_xx = sum x_q x_q^T,
    M_xs = sum x_q s_q^T, c = tr M_xs, S2 = sum |x_q|^2, v1 = sum |x_q|^2 s_q and
    v2 = sum (x_q . s_q) x_q, expanding |z|^2 ds - (z . ds) z over q gives

        T1 = s_p (n |x_p|^2 + S2) + 2 M_xs^T x_p - v1,
        T2 = n x_p (x_p . s_p) + M_xx s_p + c x_p + M_xs x_p - v2,
        U_p = -(B/n) (T1 - T2).
    """
    n = len(x)
    x = x - x.mean(0)
    s = s - s.mean(0)
    xx = (x * x).sum(1)                       # |x_q|^2
    xs = (x * s).sum(1)                       # x_q . s_q
    m_xx = x.T @ x
    m_xs = x.T @ s
    c = torch.trace(m_xs)
    s2 = xx.sum()
    v1 = xx @ s
    v2 = xs @ x
    t1 = s * (n * xx + s2)[:, None] + 2.0 * x @ m_xs - v1
    t2 = n * x * xs[:, None] + s @ m_xx + c * x + x @ m_xs.T - v2
    return -(B / n) * (t1 - t2)


class LandauEquation:
    """Homogeneous Landau equation in transport form: velocity(x, s, t) -> U.

    ``method``: 'auto' (moments for gamma = 0, tiled pairs otherwise), 'moments' or 'direct'.
    """

    kind = "landau"

    def __init__(self, gamma: float, B: float, delta: float = 0.0, method: str = "auto",
                 tile: int | None = None) -> None:
        if method not in ("auto", "moments", "direct"):
            raise ValueError(f"unknown Landau method {method!r}")
        if method == "moments" and gamma != 0:
            raise ValueError("the moment form exists for gamma = 0 only")
        self.gamma, self.B, self.delta, self.tile = gamma, B, delta, tile
        self.method = ("moments" if gamma == 0 else "direct") if method == "auto" else method

    def velocity(self, x: torch.Tensor, s: torch.Tensor, t: float) -> torch.Tensor:
        if self.method == "moments":
            return maxwell_field(x, s, self.B)
        return landau_field_direct(x, s, self.gamma, self.B, self.delta, self.tile)
