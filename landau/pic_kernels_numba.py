"""Compiled CPU particle-in-cell loops (numba): charge deposition and field interpolation on a
periodic 1D grid of M cells with nodes at the cell centres x_j = (j + 1/2) dx.

Both loops use one particle shape S of B-spline order 1 (cloud in cell) or 2 (quadratic), so
that the force on the particles sums to the force on the grid charge and total momentum is
conserved (Birdsall & Langdon, ch. 8). With s = x / dx - 1/2 the position in node units:

    order 1:  j = floor(s), f = s - j;         weights (1 - f, f)                    at (j, j + 1)
    order 2:  j = floor(s + 1/2), g = s - j;   weights ((1/2 - g)^2 / 2, 3/4 - g^2, (1/2 + g)^2 / 2)
                                                                                    at (j - 1, j, j + 1)

node indices taken modulo M. Positions must lie in [0, L) (the first node index is then >= -1).

The leapfrog step runs as two fused passes over the particles, as a plain C loop would:
kick-drift-deposit, then (after the field solve) gather-kick.

Deposition is parallel over contiguous chunks of particles, each chunk into its own row of an
(chunks, M) array that the caller sums (no atomics, deterministic for a fixed chunk count).
Interpolation is parallel over particles. Inputs are float32 or float64 arrays, the positions
possibly a strided column of the (n, 1 + d) phase-space rows (no copy); the arithmetic is done in
float64.
"""
from __future__ import annotations

import math

import numba
from numba import prange

#: cache=False: landau.numba_setup.configure() turns the on-disk cache on at first use
JIT = dict(parallel=True, cache=False, fastmath={"contract"}, error_model="numpy")


@numba.njit(inline="always", cache=False)
def _stencil(x, inv_dx, M, order):
    """(first node, w0, w1, w2) of a particle at x; w2 = 0 for order 1."""
    s = x * inv_dx - 0.5
    if order == 1:
        j = math.floor(s)
        f = s - j
        w0, w1, w2 = 1.0 - f, f, 0.0
    else:
        c = math.floor(s + 0.5)
        g = s - c
        j = c - 1
        w0, w1, w2 = 0.5 * (0.5 - g) ** 2, 0.75 - g * g, 0.5 * (0.5 + g) ** 2
    j = int(j)
    if j < 0:                       # x in [0, dx/2) (order 1), x in [0, dx) (order 2)
        j += M
    if j < 0 or j >= M:             # a NaN or infinite position: stay inside the grid (the
        j = 0                       # weights are NaN, so the field is, and the run's guard stops it)
    return j, w0, w1, w2


@numba.njit(inline="always", cache=False)
def _add(row, x, inv_dx, M, order):
    """Deposit the unit weight of a particle at x into the node row."""
    j, w0, w1, w2 = _stencil(x, inv_dx, M, order)
    j1 = j + 1 if j + 1 < M else 0
    row[j] += w0
    row[j1] += w1
    if order == 2:
        row[j1 + 1 if j1 + 1 < M else 0] += w2


@numba.njit(inline="always", cache=False)
def _at(grid, x, inv_dx, order):
    """The grid function at x."""
    M = grid.shape[0]
    j, w0, w1, w2 = _stencil(x, inv_dx, M, order)
    j1 = j + 1 if j + 1 < M else 0
    acc = w0 * grid[j] + w1 * grid[j1]
    if order == 2:
        acc += w2 * grid[j1 + 1 if j1 + 1 < M else 0]
    return acc


@numba.njit(**JIT)
def deposit(x, inv_dx, M, order, out):
    """out[c, j] = sum over particles p of chunk c of S(x_j - x_p) (node weights summing to 1);
    ``out`` (chunks, M) zeroed by the caller."""
    n, chunks = x.shape[0], out.shape[0]
    for c in prange(chunks):
        row = out[c]
        for p in range(c * n // chunks, (c + 1) * n // chunks):
            _add(row, x[p], inv_dx, M, order)


@numba.njit(**JIT)
def gather(x, grid, inv_dx, order, out):
    """out[p] = sum_j grid[j] S(x_j - x_p): the grid field at the particles."""
    for p in prange(x.shape[0]):
        out[p] = _at(grid, x[p], inv_dx, order)


@numba.njit(**JIT)
def kick_drift_deposit(z, a, kick, drift, length, inv_dx, order, rows):
    """The leapfrog's first pass, in place on the phase-space rows z = [x | v]: v_1 += kick a,
    x += drift v_1 (mod L), then the deposit of the new x into ``rows`` (chunks, M), zeroed by
    the caller (as :func:`deposit`)."""
    n, chunks, M = z.shape[0], rows.shape[0], rows.shape[1]
    for c in prange(chunks):
        row = rows[c]
        for p in range(c * n // chunks, (c + 1) * n // chunks):
            v = z[p, 1] + kick * a[p]
            x = z[p, 0] + drift * v
            x -= length * math.floor(x / length)
            if x >= length:
                x -= length
            z[p, 0] = x
            z[p, 1] = v
            _add(row, x, inv_dx, M, order)


@numba.njit(**JIT)
def gather_kick(z, grid, inv_dx, order, charge_mass, kick, a):
    """The leapfrog's second pass, in place on z: a = (q/m) E(x), v_1 += kick a."""
    for p in prange(z.shape[0]):
        ap = charge_mass * _at(grid, z[p, 0], inv_dx, order)
        a[p] = ap
        z[p, 1] += kick * ap

