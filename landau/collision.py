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

from landau.pairs import auto_tile, map_rows


def landau_field_direct(x: torch.Tensor, s: torch.Tensor, gamma: float, B: float,
                        delta: float = 0.0, tile: int | None = None,
                        rows: slice | None = None) -> torch.Tensor:
    """U_p for the rows ``rows`` of x (default all) by the tiled O(n^2 d) pair sum."""
    n = len(x)
    rows = rows or slice(0, n)
    xr, sr = x[rows], s[rows]
    tile = auto_tile(n, x.shape[1], x.dtype, x.device, tile)

    def block(r: slice) -> torch.Tensor:
        z = xr[r, None, :] - x[None, :, :]                      # (b, n, d)
        ds = sr[r, None, :] - s[None, :, :]                     # (b, n, d)
        r2 = (z * z).sum(-1)                                     # |z|^2
        if gamma == 0:
            w = torch.ones_like(r2)
        elif delta > 0:
            w = (r2 + delta**2) ** (gamma / 2)
        else:
            w = torch.where(r2 > 0, r2, torch.ones_like(r2)) ** (gamma / 2) * (r2 > 0)
        zds = (z * ds).sum(-1)                                   # z . (s_p - s_q)
        return ((w * r2)[..., None] * ds - (w * zds)[..., None] * z).sum(1)

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
