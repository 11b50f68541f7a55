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

The pair sum itself, rows against (weighted) columns, is :func:`landau_pair_sum`: the
single-species field is -(B/n) times it with rows = columns, and a multi-species operator sums it
over species pairs. On CPU it runs the compiled kernel of ``landau/pair_kernels_numba.py``, on
CUDA (and as the tests' reference) torch blocks (``landau/pairs.py``).

For gamma = 0 (Maxwell molecules) the double sum reduces to moments of the particles and is
evaluated exactly in O(n d^2) (:func:`maxwell_field`); :class:`LandauEquation` picks it by default.
"""
from __future__ import annotations

from typing import Callable

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


def landau_pair_sum(x_rows: torch.Tensor, s_rows: torch.Tensor, x_cols: torch.Tensor,
                    s_cols: torch.Tensor, gamma: float, delta: float = 0.0,
                    col_weights: torch.Tensor | None = None, tile: int | None = None,
                    pair_weights: Callable[[slice], torch.Tensor] | None = None) -> torch.Tensor:
    """The Landau pair sum of rows (x_p, s_p) against weighted columns (y_q, t_q, w_q), (n_rows, d):

        R_p = sum_q w_q |z|^gamma ( |z|^2 (s_p - t_q) - (z . (s_p - t_q)) z ),   z = x_p - y_q,

    with |z|^gamma regularised as (|z|^2 + delta^2)^(gamma/2) for delta > 0, and coincident pairs
    (z = 0, numerator 0) dropped for delta = 0. ``col_weights`` w (n_cols,) defaults to 1;
    ``pair_weights(rows)`` -> (len(rows), n_cols) multiplies each pair's term further (the hat in
    space of the phase-space operator; torch path only). The
    single-species field is U = -(B/n) R with rows = cols (:func:`landau_field_direct`); species
    pairs of the multi-species operator are the same sum with rows and columns of two species.

    Torch path (CUDA, and the reference in tests): per block of rows only (tile, n_cols) pairwise
    scalars are formed, |z|^2 and z . (s_p - t_q) coordinate by coordinate from differences (so
    z = 0 is exact and near pairs keep full relative accuracy); with a = w |z|^gamma |z|^2 and
    c = w |z|^gamma z . (s_p - t_q) the row sum is

        R_p = s_p sum_q a - a @ t - x_p sum_q c + c @ y.

    x and s are centred on the columns' means first (R is invariant under a common shift of
    positions and of scores), which limits cancellation in these products.

    CPU path: ``pair_kernels_numba.landau_rows``, the difference form above summed pair by pair in
    one fused loop. Both paths shard rows inside ``pairs.sharded`` only.
    """
    compiled = None if pair_weights is not None else pairs.kernels(x_rows, s_rows, x_cols, s_cols)
    if compiled is not None:
        return _landau_pair_sum_compiled(compiled, x_rows, s_rows, x_cols, s_cols, gamma, delta, col_weights)
    n_rows, d = x_rows.shape
    n_cols = len(x_cols)
    shift_x, shift_s = x_cols.mean(0), s_cols.mean(0)
    xr, sr = x_rows - shift_x, s_rows - shift_s
    y, t = x_cols - shift_x, s_cols - shift_s
    w = torch.ones_like(y[:, 0]) if col_weights is None else col_weights.to(y)
    rhs = torch.cat([w[:, None], w[:, None] * t, w[:, None], w[:, None] * y], 1)   # (n_cols, 2 + 2d)
    yT, tT = y.T.contiguous(), t.T.contiguous()
    tile = auto_tile(n_cols, 1, y.dtype, y.device, tile)
    work = pairs.Workspace(5, min(tile, max(1, n_rows)), n_cols, y.dtype, y.device)

    def block(r: slice) -> torch.Tensor:
        b = r.stop - r.start
        r2, c, a, wz, tmp = (work.get(i, b) for i in range(5))
        pairs.sq_dist(xr[r], yT, out=r2, tmp=tmp)
        c.zero_()
        for k in range(d):
            zk = torch.sub(xr[r, k, None], yT[k], out=tmp)
            c.addcmul_(zk, torch.sub(sr[r, k, None], tT[k], out=a))
        a, wz = _pair_weights(r2, gamma, delta, a, wz, work.mask[:b])
        c.mul_(wz)
        if pair_weights is not None:
            h = pair_weights(r)
            a.mul_(h)
            c.mul_(h)
        ua, uc = a @ rhs[:, :1 + d], c @ rhs[:, 1 + d:]            # (b, 1 + d) each
        return sr[r] * ua[:, :1] - ua[:, 1:] - xr[r] * uc[:, :1] + uc[:, 1:]

    return map_rows(block, n_rows, tile)


def _landau_pair_sum_compiled(compiled, x_rows, s_rows, x_cols, s_cols, gamma, delta, col_weights):
    """:func:`landau_pair_sum` by the compiled CPU kernel, row block by row block."""
    n_rows, d = x_rows.shape
    dtype = x_rows.dtype
    xr, sr = pairs.as_numpy(x_rows), pairs.as_numpy(s_rows.to(dtype))
    yT, tT = pairs.as_numpy(x_cols.to(dtype).T), pairs.as_numpy(s_cols.to(dtype).T)
    w = pairs.as_numpy(torch.ones(len(x_cols), dtype=dtype) if col_weights is None else col_weights.to(dtype))
    acc0, form = compiled.zeros(d), compiled.static(compiled.weight_form(gamma))

    def rows(lo: int, hi: int) -> torch.Tensor:
        out = torch.empty(hi - lo, d, dtype=dtype)
        compiled.landau_rows(xr, sr, yT, tT, w, acc0, form, float(gamma), float(delta) ** 2, lo, hi, out.numpy())
        return out

    return pairs.shard_rows(rows, n_rows)


def landau_field_direct(x: torch.Tensor, s: torch.Tensor, gamma: float, B: float,
                        delta: float = 0.0, tile: int | None = None,
                        rows: slice | None = None) -> torch.Tensor:
    """U_p = -(B/n) sum_q |z|^gamma (|z|^2 (s_p - s_q) - (z . (s_p - s_q)) z) for the rows ``rows``
    of x (default all): :func:`landau_pair_sum` with rows = columns = the particles."""
    rows = rows or slice(0, len(x))
    return -(B / len(x)) * landau_pair_sum(x[rows], s[rows], x, s, gamma, delta, tile=tile)


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
