"""Compiled CPU pair kernels (numba): the Landau pair sum, the blob score and the KDE score and
log-density, each one fused loop over the pairs, parallel over rows; and their segmented forms
(``*_segment_*``: particles sorted by cell, every sum within its own cell, parallel over cells).

Every kernel evaluates rows [lo, hi) of its pair sum against all columns and writes them to
``out`` (hi - lo, ...), so a distributed run calls it for its own row block (``landau.pairs``).
Inputs are C-contiguous numpy arrays, rows as (n_rows, d) and columns transposed as (d, n_cols)
(unit stride along the vectorised loop); float32 and float64 inputs compile separately and the
arithmetic is done in float64 for both.

Shape of a kernel: one row p per parallel iteration; the loop over the columns q computes
everything a pair needs (z, |z|^2, the weight, the accumulation) in registers, and LLVM
vectorises it across q (AVX2 / AVX-512 lanes). The dimension d and the Landau weight form are
compile-time constants: they are passed as the *length* of a tuple (:func:`zeros`,
:func:`static`), which is part of the argument's type, so numba compiles one specialisation per
(d, weight form, dtype) with the coordinate loops fully unrolled and the weight branch folded
away, and dispatches to it by type in microseconds. A row's d sums are accumulated in a tuple
(registers; an array would be memory LLVM cannot keep in registers: measured 1.7x slower). Each specialisation is compiled on first use, then loaded from numba's
on-disk cache.

Segmented kernels: one call for all cells (a phase-space run's M cells of N_c particles). A
symmetric pair weight or an antisymmetric pair term is evaluated once per unordered pair
(out[p] += T_pq, out[q] -= T_pq): cost sum_c N_c^2 / 2 per pass. Each cell's rows are copied to
float64 columns (d, N_c), and the loops over q run on unsigned (uint64) indices: with signed ones
numba guards every index against wraparound, which keeps LLVM from vectorising a loop that also
stores to out[:, q] (measured 7x slower, scalar code). The cells are dealt to the threads large and
small alternately (:func:`_cell_order`).

Importing this module defines the kernels and changes nothing else.
:func:`landau.numba_setup.configure`, called once by ``landau.pairs`` when the kernels are first
used, chooses numba's threading layer and turns on the on-disk cache (``LANDAU_NUMBA_CACHE=0`` in
the environment keeps it off); it writes no environment variable.

Floating point: fast-math is limited to ``reassoc`` (sums over q are split across SIMD lanes,
i.e. added in another order, as any blocked sum is) and ``contract`` (fused multiply-add). No
approximate reciprocals or square roots (vector sqrt and division are exact IEEE operations), no
assumptions about NaN or Inf. The exponential of the blob and KDE kernels is :func:`exp_neg`, a
vectorisable exp for arguments <= 0 accurate to a few ulp, because libm's exp is a scalar call
that would stop vectorisation.
"""
from __future__ import annotations

import math

import numba
import numpy as np
from numba.cpython.unsafe.tuple import tuple_setitem
from numba.extending import intrinsic

FASTMATH = {"reassoc", "contract"}
# cache=False here: the on-disk cache is enabled by landau.numba_setup.configure() (cache=True
# would try to find a writable cache directory while the module is imported, and raise there if
# there is none)
JIT = dict(parallel=True, cache=False, fastmath=FASTMATH, error_model="numpy")
INLINE = dict(cache=False, fastmath=FASTMATH, error_model="numpy", inline="always")
#: Landau weight forms g(q) = q^(gamma/2), q = |z|^2 + delta^2 (see :func:`weight_form`)
W_ONE, W_POW_M3, W_POW_M2, W_POW_M1, W_POW_1, W_POW_2, W_POW = range(7)


def static(k: int) -> tuple:
    """A tuple of length k: passes the integer k to a kernel as a compile-time constant."""
    return (0,) * k


def zeros(d: int) -> tuple:
    """d float zeros: a row's accumulator, its length d a compile-time constant of the kernel."""
    return (0.0,) * d


def weight_form(gamma: float) -> int:
    """How q^(gamma/2) is evaluated: exact sqrt / division forms for integer gamma in [-3, 2]
    (vectorised), a ``pow`` call otherwise."""
    return {0.0: W_ONE, -3.0: W_POW_M3, -2.0: W_POW_M2, -1.0: W_POW_M1,
            1.0: W_POW_1, 2.0: W_POW_2}.get(float(gamma), W_POW)


@intrinsic
def _bits_to_float(typingctx, bits):
    """The float64 whose IEEE bit pattern is the int64 ``bits`` (a bitcast, no conversion)."""
    from llvmlite import ir

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.DoubleType())

    return numba.types.float64(numba.types.int64), codegen


@numba.njit(**INLINE)
def exp_neg(x):
    """exp(x) for x <= 0, vectorisable (no libm call).

    exp(x) = 2^k exp(r), k = round(x / ln 2), r = x - k ln 2 with ln 2 split in two parts
    (Cody-Waite; k ln2_hi is exact for |k| < 2^11), |r| <= ln(2)/2, exp(r) by its Taylor
    polynomial of degree 13 (truncation < 2e-17 relative), 2^k built from its exponent bits.
    Arguments below -708 (where exp is denormal or 0) give 0, so exp(-inf) = 0; NaN stays NaN.
    """
    xc = -708.0 if x < -708.0 else x
    k = math.floor(xc * 1.4426950408889634 + 0.5)
    r = (xc - k * 0.693145751953125) - k * 1.4286068203094173e-06
    p = 1.0 / 6227020800.0
    p = p * r + 1.0 / 479001600.0
    p = p * r + 1.0 / 39916800.0
    p = p * r + 1.0 / 3628800.0
    p = p * r + 1.0 / 362880.0
    p = p * r + 1.0 / 40320.0
    p = p * r + 1.0 / 5040.0
    p = p * r + 1.0 / 720.0
    p = p * r + 1.0 / 120.0
    p = p * r + 1.0 / 24.0
    p = p * r + 1.0 / 6.0
    p = p * r + 0.5
    p = p * r + 1.0
    p = p * r + 1.0
    return 0.0 if x < -708.0 else p * _bits_to_float(np.int64(k + 1023) << 52)


@numba.njit(**INLINE)
def _weight(q, form, half):
    """q^half for the weight form ``form`` (a compile-time constant, so one branch survives)."""
    if form == W_ONE:
        return 1.0
    if form == W_POW_M3:
        return 1.0 / (q * math.sqrt(q))
    if form == W_POW_M2:
        return 1.0 / q
    if form == W_POW_M1:
        return 1.0 / math.sqrt(q)
    if form == W_POW_1:
        return math.sqrt(q)
    if form == W_POW_2:
        return q
    return q ** half


@numba.njit(**JIT)
def landau_rows(x, s, yT, tT, wcol, acc0, form_tag, gamma, delta2, lo, hi, out):
    """out[p - lo] = sum_q w_q g (|z|^2 (s_p - t_q) - (z . (s_p - t_q)) z), z = x_p - y_q, for
    p in [lo, hi): g = (|z|^2 + delta2)^(gamma/2), and g = 0 where z = 0 (the numerator vanishes
    there; with delta2 = 0 this drops coincident pairs). ``acc0`` = zeros(d) and ``form_tag`` =
    static(:func:`weight_form` (gamma)) carry compile-time constants."""
    d = len(acc0)
    form = len(form_tag)
    n = yT.shape[1]
    half = 0.5 * gamma
    for p in numba.prange(lo, hi):
        acc = acc0
        for q in range(n):
            r2 = 0.0
            c = 0.0
            for k in range(d):
                zk = x[p, k] - yT[k, q]
                r2 += zk * zk
                c += zk * (s[p, k] - tT[k, q])
            g = _weight(r2 + delta2, form, half) * wcol[q] if r2 > 0.0 else 0.0
            a = g * r2
            b = g * c
            for k in range(d):
                acc = tuple_setitem(acc, k, acc[k] + a * (s[p, k] - tT[k, q]) - b * (x[p, k] - yT[k, q]))
        for k in range(d):
            out[p - lo, k] = acc[k]


@numba.njit(**INLINE)
def _columns(x, lo, hi, d):
    """Rows [lo, hi) of x (n, d) as float64 columns (d, hi - lo): unit stride along the loop over q."""
    xT = np.empty((d, hi - lo))
    for p in range(lo, hi):
        for k in range(d):
            xT[k, p - lo] = x[p, k]
    return xT


@numba.njit(**INLINE)
def _cell_order(offsets):
    """The segments in the order the parallel loop takes them: largest, smallest, second largest,
    second smallest, ... prange hands each thread a contiguous block of this order, so every
    block pairs large and small segments and the threads' N_c^2 costs stay close whatever the
    cells' sizes (blocks of neighbouring cells would not: a dense region would land on one thread)."""
    by_size = np.argsort(offsets[:-1] - offsets[1:], kind="mergesort")
    m = len(by_size)
    order = np.empty(m, dtype=np.int64)
    for i in range(m):
        order[i] = by_size[i // 2] if i % 2 == 0 else by_size[m - 1 - i // 2]
    return order


@numba.njit(**INLINE)
def _landau_pair(xT, sT, oT, p, q, h, acc, form, half, delta2):
    """The pair term T_pq = h g (|z|^2 (s_p - s_q) - (z . (s_p - s_q)) z), z = x_p - x_q, g = |z|^gamma
    (0 for z = 0): added to the accumulator of row p (returned), subtracted from oT[:, q]."""
    d = len(acc)
    r2 = 0.0
    dot = 0.0
    for k in range(d):
        zk = xT[k, p] - xT[k, q]
        r2 += zk * zk
        dot += zk * (sT[k, p] - sT[k, q])
    g = h * _weight(r2 + delta2, form, half) if r2 > 0.0 else 0.0
    u = g * r2
    w = g * dot
    for k in range(d):
        term = u * (sT[k, p] - sT[k, q]) - w * (xT[k, p] - xT[k, q])
        acc = tuple_setitem(acc, k, acc[k] + term)
        oT[k, q] -= term
    return acc


@numba.njit(**INLINE)
def _landau_cell(xT, sT, oT, a, b, acc0, form, half, delta2):
    """oT[:, p] += sum_{q != p} T_pq over the segment's rows p, q in [a, b) (unsigned), each
    unordered pair once (T antisymmetric). Unsigned indices: numba then emits no negative-index
    wraparound, and LLVM vectorises the loop over q with its stores to oT[:, q] (measured 8x)."""
    d = len(acc0)
    for p in range(a, b):
        acc = acc0
        for q in range(p + np.uint64(1), b):
            acc = _landau_pair(xT, sT, oT, p, q, 1.0, acc, form, half, delta2)
        for k in range(d):
            oT[k, p] += acc[k]


@numba.njit(**INLINE)
def _landau_hat_block(xT, sT, pos, oT, a, b, c, e, same, acc0, form, half, delta2, inv_eta, length):
    """oT[:, p] += sum_q h_pq T_pq for rows p in [a, b) and columns q in [c, e) (the same segment
    when ``same``: q > p only), each unordered pair once, with the hat h_pq = max(0, 1 - |x_p - x_q|
    / eta) of the periodic distance of the positions ``pos``."""
    d = len(acc0)
    for p in range(a, b):
        acc = acc0
        for q in range(p + np.uint64(1) if same else c, e):
            r = pos[p] - pos[q]
            r -= length * np.floor(r / length + 0.5)
            h = 1.0 - abs(r) * inv_eta
            if h > 0.0:
                acc = _landau_pair(xT, sT, oT, p, q, h, acc, form, half, delta2)
        for k in range(d):
            oT[k, p] += acc[k]


@numba.njit(**JIT)
def landau_hat_pairs(x, s, pos, offsets, c0, c1, acc0, form_tag, gamma, delta2, inv_eta, length, out):
    """The hat-weighted pair sum R_p = sum_q h_pq T_pq (:func:`_landau_hat_block`) for particles
    sorted by segment (cell c the rows [offsets[c], offsets[c + 1]), all M cells given, h vanishing
    beyond the neighbouring cells, M >= 4): the pairs within each cell c of [c0, c1) and between c
    and c + 1 (mod M), each unordered pair once. Parallel over cells: within cells, then the pairs
    (c, c + 1), c < M - 1, for even c, then for odd c (no two blocks of a phase share a cell),
    then (M - 1, 0) alone. ``out`` zeroed by the caller; rows outside [c0, c1) receive the
    antisymmetric halves of the cross pairs (summed over ranks by the caller)."""
    d = len(acc0)
    form = len(form_tag)
    half = 0.5 * gamma
    m = len(offsets) - 1
    n = offsets[-1]
    xT, sT = _columns(x, 0, n, d), _columns(s, 0, n, d)
    oT = np.zeros((d, n))
    u = np.uint64
    for c in numba.prange(c0, c1):
        _landau_hat_block(xT, sT, pos, oT, u(offsets[c]), u(offsets[c + 1]), u(offsets[c]), u(offsets[c + 1]),
                          True, acc0, form, half, delta2, inv_eta, length)
    last = min(c1, m - 1)                         # the pairs (c, c + 1), c < M - 1, by parity of c
    for parity in range(2):
        for i in numba.prange((last - c0 + 1) // 2 + 1):
            c = c0 + 2 * i + (parity - c0 % 2) % 2
            if c < last:
                _landau_hat_block(xT, sT, pos, oT, u(offsets[c]), u(offsets[c + 1]), u(offsets[c + 1]),
                                  u(offsets[c + 2]), False, acc0, form, half, delta2, inv_eta, length)
    if c1 == m:                                   # the wrap (M - 1, 0)
        _landau_hat_block(xT, sT, pos, oT, u(offsets[m - 1]), u(offsets[m]), u(offsets[0]), u(offsets[1]),
                          False, acc0, form, half, delta2, inv_eta, length)
    for p in range(n):
        for k in range(d):
            out[p, k] += oT[k, p]


@numba.njit(**JIT)
def landau_segment_pairs(x, s, offsets, acc0, form_tag, gamma, delta2, out):
    """The pair sum of :func:`landau_rows` within segments (particles sorted by segment, segment c
    the rows [offsets[c], offsets[c + 1]); ``offsets`` may be a slice, only its rows are touched),
    each unordered pair once: its term T_pq = g (|z|^2 (s_p - s_q) - (z . (s_p - s_q)) z) is
    antisymmetric, so out[p] += T_pq and out[q] -= T_pq (half the pair evaluations of the row
    form). Parallel over segments (:func:`_cell_order`); the rows are copied to float64 columns
    first. ``out`` zeroed by the caller. Cost sum_c N_c^2 / 2."""
    d = len(acc0)
    form = len(form_tag)
    half = 0.5 * gamma
    lo, hi = offsets[0], offsets[-1]
    xT, sT = _columns(x, lo, hi, d), _columns(s, lo, hi, d)
    oT = np.zeros((d, hi - lo))
    order = _cell_order(offsets)
    for i in numba.prange(len(order)):
        c = order[i]
        _landau_cell(xT, sT, oT, np.uint64(offsets[c] - lo), np.uint64(offsets[c + 1] - lo),
                     acc0, form, half, delta2)
    for p in range(lo, hi):
        for k in range(d):
            out[p, k] += oT[k, p - lo]


@numba.njit(**INLINE)
def _blob_cell(xT, z, oT, a, b, acc0, inv_eps):
    """The blob score of the segment's rows [a, b) (unsigned) into oT (zeroed), z (zeroed) holding
    1/Z afterwards; each unordered pair once per pass: K_pq symmetric in the normaliser Z, the
    score's term (x_p - x_q) K_pq (1/Z_p + 1/Z_q) antisymmetric."""
    d = len(acc0)
    one = np.uint64(1)
    for p in range(a, b):
        total = 1.0                                        # K_pp
        for q in range(p + one, b):
            r2 = 0.0
            for k in range(d):
                zk = xT[k, p] - xT[k, q]
                r2 += zk * zk
            kq = exp_neg(-r2 * inv_eps)
            total += kq
            z[q] += kq
        z[p] += total
    for p in range(a, b):
        z[p] = 1.0 / z[p]
    for p in range(a, b):
        acc = acc0
        for q in range(p + one, b):
            r2 = 0.0
            for k in range(d):
                zk = xT[k, p] - xT[k, q]
                r2 += zk * zk
            v = exp_neg(-r2 * inv_eps) * (z[p] + z[q])
            for k in range(d):
                term = v * (xT[k, p] - xT[k, q])
                acc = tuple_setitem(acc, k, acc[k] + term)
                oT[k, q] -= term
        for k in range(d):                                 # row p complete: rows < p are done
            oT[k, p] = -2.0 * inv_eps * (oT[k, p] + acc[k])


@numba.njit(**JIT)
def blob_segment_scores(x, offsets, inv_eps, acc0, out):
    """The blob score of each segment's particles at its own bandwidth, eps_c = 1 / inv_eps[c]
    (particles sorted by segment as for :func:`landau_segment_pairs`; a slice of ``offsets`` takes
    the matching slice of ``inv_eps``):
    out[p] = -(2/eps_c) sum_{q in c} (x_p - x_q) K_pq (1/Z_p + 1/Z_q), Z_p = sum_{q in c} K_pq,
    K_pq = exp(-|x_p - x_q|^2 / eps_c). Parallel over segments, both passes of a segment on one
    thread (its particles stay in cache)."""
    d = len(acc0)
    lo, hi = offsets[0], offsets[-1]
    xT = _columns(x, lo, hi, d)
    z = np.zeros(hi - lo)
    oT = np.zeros((d, hi - lo))
    order = _cell_order(offsets)
    for i in numba.prange(len(order)):
        c = order[i]
        _blob_cell(xT, z, oT, np.uint64(offsets[c] - lo), np.uint64(offsets[c + 1] - lo), acc0, inv_eps[c])
    for p in range(lo, hi):
        for k in range(d):
            out[p, k] = oT[k, p - lo]


@numba.njit(**JIT)
def blob_normaliser(x, xT, acc0, inv_eps, lo, hi, out):
    """out[p - lo] = Z_p = sum_q exp(-|x_p - x_q|^2 / eps) for p in [lo, hi); ``acc0`` = zeros(d)."""
    d = len(acc0)
    n = xT.shape[1]
    for p in numba.prange(lo, hi):
        total = 0.0
        for q in range(n):
            r2 = 0.0
            for k in range(d):
                zk = x[p, k] - xT[k, q]
                r2 += zk * zk
            total += exp_neg(-r2 * inv_eps)
        out[p - lo] = total


@numba.njit(**JIT)
def blob_rows(x, xT, inv_z, acc0, inv_eps, lo, hi, out):
    """out[p - lo] = -(2/eps) sum_q (x_p - x_q) K_pq (1/Z_p + 1/Z_q), K_pq = exp(-|x_p - x_q|^2 / eps),
    for p in [lo, hi), given inv_z = 1/Z; ``acc0`` = zeros(d)."""
    d = len(acc0)
    n = xT.shape[1]
    for p in numba.prange(lo, hi):
        acc = acc0
        for q in range(n):
            r2 = 0.0
            for k in range(d):
                zk = x[p, k] - xT[k, q]
                r2 += zk * zk
            v = exp_neg(-r2 * inv_eps) * (inv_z[p] + inv_z[q])
            for k in range(d):
                acc = tuple_setitem(acc, k, acc[k] + v * (x[p, k] - xT[k, q]))
        for k in range(d):
            out[p - lo, k] = -2.0 * inv_eps * acc[k]


@numba.njit(**INLINE)
def _nearest(y, xT, p, q0, q1, acc0, nearest):
    """min(nearest, min_q |y_p - x_q|^2) over q in [q0, q1)."""
    for q in range(q0, q1):
        r2 = 0.0
        for k in range(len(acc0)):
            zk = y[p, k] - xT[k, q]
            r2 += zk * zk
        nearest = min(nearest, r2)
    return nearest


@numba.njit(**INLINE)
def _kde_means(y, xT, cT, p, q0, q1, nearest, total, acc, accd):
    """total + sum_q K'_pq and acc + sum_q K'_pq c_q over q in [q0, q1), the columns c given
    transposed (k, n), K'_pq = exp((min_r |y_p - x_r|^2 - |y_p - x_q|^2) / 2) <= 1."""
    for q in range(q0, q1):
        r2 = 0.0
        for k in range(len(accd)):
            zk = y[p, k] - xT[k, q]
            r2 += zk * zk
        v = exp_neg(0.5 * (nearest - r2))
        total += v
        for j in range(len(acc)):
            acc = tuple_setitem(acc, j, acc[j] + v * cT[j, q])
    return total, acc


@numba.njit(**JIT)
def kde_rows(y, xT, acc0, loo, lo, hi, out):
    """Gaussian KDE sums in bandwidth units (queries y and samples x already divided by h), p in [lo, hi):

        l_pq = -|y_p - x_q|^2 / 2,   m_p = max_q l_pq,   S_p = sum_q exp(l_pq - m_p),
        out[p - lo] = sum_q exp(l_pq - m_p) x_q / S_p - y_p       (h times the score).

    ``acc0`` = zeros(d); ``loo`` drops the pair q = p (leave-one-out; the queries are the
    samples): the column loops run over [0, p) and (p, n). Two sweeps over the columns per row:
    the nearest sample (m_p), then the shifted exponentials.
    """
    n = xT.shape[1]
    for p in numba.prange(lo, hi):
        skip = p if loo else n
        nearest = _nearest(y, xT, p, skip + 1, n, acc0, _nearest(y, xT, p, 0, skip, acc0, np.inf))
        total, acc = _kde_means(y, xT, xT, p, 0, skip, nearest, 0.0, acc0, acc0)
        total, acc = _kde_means(y, xT, xT, p, skip + 1, n, nearest, total, acc, acc0)
        for k in range(len(acc0)):
            out[p - lo, k] = acc[k] / total - y[p, k]


@numba.njit(**JIT)
def kde_log_rows(y, xT, acc0, lo, hi, out):
    """out[p - lo] = log sum_q exp(-|y_p - x_q|^2 / 2) = m_p + log S_p (notation of :func:`kde_rows`),
    p in [lo, hi); ``acc0`` = zeros(d)."""
    n = xT.shape[1]
    for p in numba.prange(lo, hi):
        nearest = _nearest(y, xT, p, 0, n, acc0, np.inf)
        total, _ = _kde_means(y, xT, xT, p, 0, n, nearest, 0.0, (0.0,), acc0)     # one spare column sum
        out[p - lo] = math.log(total) - 0.5 * nearest


@numba.njit(**INLINE)
def _kde_cell_pairs(xT, total, oT, a, b, acc0):
    """h times the KDE score of the segment's rows [a, b) (unsigned; bandwidth units) into oT,
    ``total`` (zeroed) the normalisers S_p: with the pair (p, p) included the row maximum of
    l_pq = -|x_p - x_q|^2 / 2 is m_p = 0, so K_pq = exp(l_pq) is symmetric and its term
    K_pq (x_q - x_p) antisymmetric: each unordered pair once."""
    d = len(acc0)
    for p in range(a, b):
        own = 1.0                                          # K_pp
        acc = acc0
        for q in range(p + np.uint64(1), b):
            r2 = 0.0
            for k in range(d):
                zk = xT[k, p] - xT[k, q]
                r2 += zk * zk
            kq = exp_neg(-0.5 * r2)
            own += kq
            total[q] += kq
            for k in range(d):
                term = kq * (xT[k, q] - xT[k, p])
                acc = tuple_setitem(acc, k, acc[k] + term)
                oT[k, q] -= term
        total[p] += own
        for k in range(d):                                 # row p complete: rows < p are done
            oT[k, p] = (oT[k, p] + acc[k]) / total[p]


@numba.njit(**INLINE)
def _kde_cell_loo(y, xT, oT, a, b, acc0):
    """Leave-one-out: the rows of :func:`kde_rows` within the segment [a, b) (unsigned), the pair
    (p, p) dropped, so the log-kernel's row maximum is the nearest other sample (no symmetry)."""
    one = np.uint64(1)
    for p in range(a, b):
        nearest = _nearest(y, xT, p, p + one, b, acc0, _nearest(y, xT, p, a, p, acc0, np.inf))
        total, acc = _kde_means(y, xT, xT, p, a, p, nearest, 0.0, acc0, acc0)
        total, acc = _kde_means(y, xT, xT, p, p + one, b, nearest, total, acc, acc0)
        for k in range(len(acc0)):
            oT[k, p] = acc[k] / total - y[p, k]


@numba.njit(**JIT)
def kde_segment_scores(x, offsets, acc0, loo, out):
    """h times the KDE score of each segment's particles against the same segment's particles, in
    bandwidth units (x already divided by the segment's h; sorted by segment as for
    :func:`landau_segment_pairs`): out[p] = sum_{q in c} w_pq (x_q - x_p), w_pq the softmax weights
    of l_pq = -|x_p - x_q|^2 / 2 (``loo``: q != p). Segments of fewer than 2 particles are left
    at 0. Parallel over segments."""
    d = len(acc0)
    lo, hi = offsets[0], offsets[-1]
    xT = _columns(x, lo, hi, d)
    y = x[lo:hi]
    total = np.zeros(hi - lo)
    oT = np.zeros((d, hi - lo))
    order = _cell_order(offsets)
    for i in numba.prange(len(order)):
        c = order[i]
        a, b = np.uint64(offsets[c] - lo), np.uint64(offsets[c + 1] - lo)
        if offsets[c + 1] - offsets[c] < 2:
            continue
        if loo:
            _kde_cell_loo(y, xT, oT, a, b, acc0)
        else:
            _kde_cell_pairs(xT, total, oT, a, b, acc0)
    for p in range(lo, hi):
        for k in range(d):
            out[p, k] = oT[k, p - lo]
