"""Compiled CPU pair kernels (numba): the Landau pair sum, the blob score and the KDE score and
log-density, each one fused loop over the pairs, parallel over rows.

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


@numba.njit(**JIT)
def landau_segment_pairs(x, s, offsets, acc0, form_tag, gamma, delta2, out):
    """The pair sum of :func:`landau_rows` within segments (particles sorted by segment, segment c
    the rows [offsets[c], offsets[c + 1])), each unordered pair once: its term
    T_pq = g (|z|^2 (s_p - s_q) - (z . (s_p - s_q)) z) is antisymmetric, so out[p] += T_pq and
    out[q] -= T_pq (half the pair evaluations of the row form). Parallel over segments; ``out``
    zeroed by the caller. Cost sum_c N_c^2 / 2."""
    d = len(acc0)
    form = len(form_tag)
    half = 0.5 * gamma
    for c in numba.prange(len(offsets) - 1):
        for p in range(offsets[c], offsets[c + 1]):
            acc = acc0
            for q in range(p + 1, offsets[c + 1]):
                r2 = 0.0
                dot = 0.0
                for k in range(d):
                    zk = x[p, k] - x[q, k]
                    r2 += zk * zk
                    dot += zk * (s[p, k] - s[q, k])
                g = _weight(r2 + delta2, form, half) if r2 > 0.0 else 0.0
                a = g * r2
                b = g * dot
                for k in range(d):
                    term = a * (s[p, k] - s[q, k]) - b * (x[p, k] - x[q, k])
                    acc = tuple_setitem(acc, k, acc[k] + term)
                    out[q, k] -= term
            for k in range(d):
                out[p, k] += acc[k]


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
def _kde_sums(y, xT, p, q0, q1, nearest, total, acc, score):
    """total + sum_q K'_pq and acc + sum_q K'_pq (x_q - y_p) (if ``score``) over q in [q0, q1),
    K'_pq = exp((min_r |y_p - x_r|^2 - |y_p - x_q|^2) / 2) <= 1."""
    for q in range(q0, q1):
        r2 = 0.0
        for k in range(len(acc)):
            zk = y[p, k] - xT[k, q]
            r2 += zk * zk
        v = exp_neg(0.5 * (nearest - r2))
        total += v
        if score:
            for k in range(len(acc)):
                acc = tuple_setitem(acc, k, acc[k] + v * (xT[k, q] - y[p, k]))
    return total, acc


@numba.njit(**JIT)
def kde_rows(y, xT, acc0, loo, lo, hi, out):
    """Gaussian KDE sums in bandwidth units (queries y and samples x already divided by h), p in [lo, hi):

        l_pq = -|y_p - x_q|^2 / 2,   m_p = max_q l_pq,   S_p = sum_q exp(l_pq - m_p),
        out[p - lo] = sum_q exp(l_pq - m_p) (x_q - y_p) / S_p       (h times the score).

    ``acc0`` = zeros(d); ``loo`` drops the pair q = p (leave-one-out; the queries are the
    samples): the column loops run over [0, p) and (p, n). Two sweeps over the columns per row:
    the nearest sample (m_p), then the shifted exponentials.
    """
    n = xT.shape[1]
    for p in numba.prange(lo, hi):
        skip = p if loo else n
        nearest = _nearest(y, xT, p, skip + 1, n, acc0, _nearest(y, xT, p, 0, skip, acc0, np.inf))
        total, acc = _kde_sums(y, xT, p, 0, skip, nearest, 0.0, acc0, True)
        total, acc = _kde_sums(y, xT, p, skip + 1, n, nearest, total, acc, True)
        for k in range(len(acc0)):
            out[p - lo, k] = acc[k] / total


@numba.njit(**JIT)
def kde_log_rows(y, xT, acc0, lo, hi, out):
    """out[p - lo] = log sum_q exp(-|y_p - x_q|^2 / 2) = m_p + log S_p (notation of :func:`kde_rows`),
    p in [lo, hi); ``acc0`` = zeros(d)."""
    n = xT.shape[1]
    for p in numba.prange(lo, hi):
        nearest = _nearest(y, xT, p, 0, n, acc0, np.inf)
        total, _ = _kde_sums(y, xT, p, 0, n, nearest, 0.0, acc0, False)
        out[p - lo] = math.log(total) - 0.5 * nearest
