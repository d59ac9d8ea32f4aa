"""Numba kernels: a scalar ``ap_fixed`` assignment and the sequential matmul loops.

:func:`cast_one` is the int64 twin of :func:`vitaccel.fixed._cast._cast_int64` for one code;
its parameters are packed by :func:`cast_params`.
"""

from __future__ import annotations

import types

import numpy as np
from numba import njit, prange
from numba import types as types_nb
from numba.extending import overload

from vitaccel.fixed._format import FixedType, Overflow, Rounding

__all__ = [
    "add_assign", "cast_many", "cast_one", "cast_params", "cast_trn_wrap", "code_range",
    "column_sums", "compiled_pair", "mm_exact", "mm_floor_flags", "mm_floor_sum", "mm_sat",
    "mm_wrap", "pick",
]

_ROUNDING_CODE = {r: i for i, r in enumerate(Rounding)}
_OVERFLOW_CODE = {o: i for i, o in enumerate(Overflow)}
_MAX_I64 = np.int64((1 << 63) - 1)


def _i64(value: int) -> int:
    value &= (1 << 64) - 1
    return value - (1 << 64) if value >> 63 else value


def cast_params(shift: int, src_width: int, dst: FixedType) -> tuple[int, ...]:
    """Pack an assignment (``shift = F_src - F_dst``) into the int tuple :func:`cast_one` reads."""
    w, n = dst.width, dst.sat_bits
    return (
        int(shift),
        int(src_width),
        w,
        int(dst.signed),
        _ROUNDING_CODE[dst.rounding],
        _OVERFLOW_CODE[dst.overflow],
        n,
        dst.min_raw,
        dst.max_raw,
        _i64((1 << w) - 1),
        _i64(1 << (w - 1)),
        _i64(((1 << (n - 1)) - 1) << (w - n)) if n > 1 else 0,
        _i64(((1 << n) - 1) << (w - n)) if n > 0 else 0,
        _i64((1 << (w - 1)) - 1),
    )


@njit(cache=True)
def _set_top(v, top, bit):
    return (v | top) if bit else (v & ~top)


@njit(cache=True)
def cast_one(raw, c):
    """Assign int64 code ``raw`` with packed parameters ``c``; returns (code, overflowed)."""
    return cast_shift(raw, c[0], c)


@njit(cache=True)
def cast_shift(raw, shift, c):
    """:func:`cast_one` with ``shift = F_src - F_dst`` given per call instead of ``c[0]``."""
    w = c[2]
    signed = c[3] != 0
    if shift > 0:
        t = raw >> min(shift, 63)
        qb = ((raw >> min(shift - 1, 63)) & 1) != 0
        nb = shift - 1
        if nb >= 64:
            r = raw != 0
        elif nb == 63:
            r = (raw & _MAX_I64) != 0
        else:
            r = (raw & ((np.int64(1) << nb) - 1)) != 0
        neg = raw < 0
        rnd = c[4]
        if rnd == 0:
            inc = False
        elif rnd == 1:
            inc = neg and (qb or r)
        elif rnd == 2:
            inc = qb
        elif rnd == 3:
            inc = qb and (neg or r)
        elif rnd == 4:
            inc = qb and r
        elif rnd == 5:
            inc = qb and ((not neg) or r)
        else:
            inc = qb and ((t & 1) != 0 or r)
        big = t + np.int64(1 if inc else 0)
        hi = big > c[8]
        lo = big < c[7]
        u = big & c[9]
    else:
        s = -shift
        hi = raw > (c[8] >> min(s, 63))
        lo_bound = (c[7] >> s) if s <= w - 1 else np.int64(0)
        lo = raw < lo_bound
        u = ((raw << s) & c[9]) if s < 64 else np.int64(0)
        big = raw
    sign = big < 0
    omode = c[5]
    if omode == 3 and signed:
        lo = lo or (sign and (u & c[13]) == 0)
    if hi or lo:
        nsat = c[6]
        top = c[10]
        if omode == 2:
            u = np.int64(0)
        elif omode == 1 or omode == 3:
            if signed:
                if hi:
                    u = c[8]
                else:
                    u = (top | 1) if omode == 3 else top
            else:
                u = c[9] if hi else np.int64(0)
        elif omode == 0:
            if nsat > 0:
                if not signed:
                    u = u | c[12]
                else:
                    u = _set_top(u, top, sign)
                    u = (u & ~c[11]) if sign else (u | c[11])
        else:
            pos1 = shift + w
            ld = pos1 >= 0 and pos1 < c[1] and ((raw >> min(pos1, 63)) & 1) != 0
            ro = (u & top) != 0
            if nsat == 0:
                if ld != ro:
                    u = _set_top(u ^ c[9], top, ld)
            else:
                if nsat == 1:
                    if sign != ro:
                        u = u ^ c[9]
                else:
                    if (((u >> (w - nsat)) & 1) != 0) == sign:
                        u = u ^ c[9]
                    u = (u & ~c[11]) if sign else (u | c[11])
                u = _set_top(u, top, sign)
    if signed and w < 64 and ((u >> (w - 1)) & 1) != 0:
        u = u - (np.int64(1) << w)
    return u, hi or lo


def _mm_exact(x, w, acc0, ovf0, use_p, pcast, acast, da, dp):
    """Sequential accumulation: acc = cast(acc * 2**da + p * 2**dp) after every product, k order.

    ``p`` is the exact product, cast with ``pcast`` when ``use_p``; returns (codes, overflowed).
    """
    m_rows, k_len = x.shape
    n_cols = w.shape[1]
    out = np.empty((m_rows, n_cols), np.int64)
    flags = np.empty((m_rows, n_cols), np.bool_)
    for m in prange(m_rows):
        acc = acc0.copy()
        fl = ovf0.copy()
        for k in range(k_len):
            xv = x[m, k]
            for n in range(n_cols):
                p = xv * w[k, n]
                if use_p:
                    p, o = cast_one(p, pcast)
                    if o:
                        fl[n] = True
                a, o = cast_one((acc[n] << da) + (p << dp), acast)
                acc[n] = a
                if o:
                    fl[n] = True
        out[m] = acc
        flags[m] = fl
    return out, flags


def _mm_wrap(
    x,
    w,
    acc0,
    ovf0,
    p_mode,
    pcast,
    p_shift,
    p_wrap_bits,
    d,
    acc_bits,
    acc_signed,
    track,
    acc_min,
    acc_max,
):
    """Accumulation into an ``AP_WRAP`` (N=0) accumulator that never rounds.

    Wrap-around addition is associative modulo 2**acc_bits, so the products (cast one by one
    when ``p_mode`` is 1: ``(p >> p_shift)`` wrapped to ``p_wrap_bits`` signed bits, i.e.
    ``AP_TRN``/``AP_WRAP``; when 2: with ``pcast``) are summed in int64 and wrapped at the end.
    With ``track`` the accumulator is wrapped after every step so that an out-of-range partial
    sum can be flagged, and a product that wraps is flagged too. Returns (codes, overflowed).
    """
    m_rows, k_len = x.shape
    n_cols = w.shape[1]
    out = np.empty((m_rows, n_cols), np.int64)
    flags = np.empty((m_rows, n_cols), np.bool_)
    sh_p = 64 - p_wrap_bits
    sh_a = 64 - acc_bits
    a_mask = (np.int64(1) << acc_bits) - 1 if acc_bits < 64 else np.int64(-1)
    for m in prange(m_rows):
        acc = acc0.copy()
        fl = ovf0.copy()
        for k in range(k_len):
            xv = x[m, k]
            for n in range(n_cols):
                p = xv * w[k, n]
                if p_mode == 1:
                    t = p >> p_shift
                    p = (t << sh_p) >> sh_p
                    if track and p != t:
                        fl[n] = True
                elif p_mode == 2:
                    p, o = cast_one(p, pcast)
                    if o:
                        fl[n] = True
                v = acc[n] + (p << d)
                if track:
                    if v > acc_max or v < acc_min:
                        fl[n] = True
                        v = ((v << sh_a) >> sh_a) if acc_signed else (v & a_mask)
                acc[n] = v
        for n in range(n_cols):
            v = acc[n]
            out[m, n] = ((v << sh_a) >> sh_a) if acc_signed else (v & a_mask)
        flags[m] = fl
    return out, flags


def _mm_sat(x, w, acc0, ovf0, use_p, pcast, d, acc_min, acc_max, low_code, sym):
    """Accumulation into an ``AP_SAT``/``AP_SAT_SYM`` accumulator that never rounds.

    Every step clamps ``acc + p * 2**d`` to ``[acc_min, acc_max]`` in k order; an underflow (or,
    with ``sym``, a sum equal to ``acc_min``) gives ``low_code``. Returns (codes, overflowed).
    """
    m_rows, k_len = x.shape
    n_cols = w.shape[1]
    out = np.empty((m_rows, n_cols), np.int64)
    flags = np.empty((m_rows, n_cols), np.bool_)
    for m in prange(m_rows):
        acc = acc0.copy()
        fl = ovf0.copy()
        for k in range(k_len):
            xv = x[m, k]
            for n in range(n_cols):
                p = xv * w[k, n]
                if use_p:
                    p, o = cast_one(p, pcast)
                    if o:
                        fl[n] = True
                v = acc[n] + (p << d)
                if v > acc_max:
                    v = acc_max
                    fl[n] = True
                elif v < acc_min or (sym and v == acc_min):
                    v = low_code
                    fl[n] = True
                acc[n] = v
        out[m] = acc
        flags[m] = fl
    return out, flags


def _mm_floor_flags(x, w, acc0, ovf0, scale, d_mul, p_lo, p_hi, a_lo, a_hi):
    """Overflow flags of the ``floor64`` accumulation ``acc = acc0 + sum_k floor(x[m,k] *
    w[k,n] * scale) * d_mul`` in k order (float64: exact, as the ``floor64`` path's products
    and partial sums are integers below 2**53): an element is flagged when a truncated term
    leaves ``[p_lo, p_hi]`` or a partial sum leaves ``[a_lo, a_hi]`` (the sums match the
    hardware's until its first overflow), found from the running extremes.
    """
    m_rows, k_len = x.shape
    n_cols = w.shape[1]
    flags = np.empty((m_rows, n_cols), np.bool_)
    for m in prange(m_rows):
        acc = acc0.copy()
        t_min = np.full(n_cols, p_lo)
        t_max = np.full(n_cols, p_hi)
        v_min = acc0.copy()
        v_max = acc0.copy()
        for k in range(k_len):
            xv = x[m, k] * scale
            for n in range(n_cols):
                t = np.floor(xv * w[k, n])
                v = acc[n] + t * d_mul
                acc[n] = v
                t_min[n] = min(t_min[n], t)
                t_max[n] = max(t_max[n], t)
                v_min[n] = min(v_min[n], v)
                v_max[n] = max(v_max[n], v)
        for n in range(n_cols):
            flags[m, n] = ovf0[n] or t_min[n] < p_lo or t_max[n] > p_hi or \
                v_min[n] < a_lo or v_max[n] > a_hi
    return flags


_FLOOR_ROWS = 4  # rows of x sharing each loaded row segment of w
_FLOOR_COLS = 128  # columns per accumulator tile (4 x 128 int64 stay in L1)


def _operand(code, lane):
    """``code`` as the int64 factor of a product; with an int32 ``lane`` (a typed flag: every
    factor fits int32) as the sign extension of its low 32 bits, which lets the product
    compile to one 32 x 32 -> 64 bit multiply (pmuldq) per lane."""
    return code


@overload(_operand)
def _operand_overload(code, lane):
    if lane == types_nb.int32:
        return lambda code, lane: np.int64(np.int32(code))
    return lambda code, lane: code


def _mm_floor_sum(x, w, shift, acc0, d, width, signed, lane):
    """``acc0 + (sum_k floor(x[g,m,k] * w[g,k,n] * 2**-shift) << d)`` for stacked int64 codes
    x (G, M, K) and w (G, K, N), wrapped to ``width`` bits (two's complement when
    ``signed``); returns the int64 codes and ``sum_k |x[g,m,k]|`` (G, M) in float64 (for the
    overflow bound). ``lane``: ``np.int32(0)`` where every code of x and w fits int32, else
    ``np.int64(0)`` (see :func:`_operand`).

    Each term is ``(x * w) >> shift`` in int64: exact while the products and all partial sums
    stay inside int64, in any order of the additions. Register-tiled: four rows of x share
    every row segment of w, the tile accumulators stay in L1, and the loop over
    (g, row block) runs in parallel.
    """
    g_len, m_rows, k_len = x.shape
    n_cols = w.shape[2]
    out = np.empty((g_len, m_rows, n_cols), np.int64)
    row_abs = np.zeros((g_len, m_rows))
    blocks = (m_rows + _FLOOR_ROWS - 1) // _FLOOR_ROWS
    up = 64 - width
    mask = (np.int64(1) << width) - 1 if width < 64 else np.int64(-1)
    for gb in prange(g_len * blocks):
        g = gb // blocks
        m0 = (gb % blocks) * _FLOOR_ROWS
        rows = min(_FLOOR_ROWS, m_rows - m0)
        m1, m2, m3 = min(m0 + 1, m_rows - 1), min(m0 + 2, m_rows - 1), min(m0 + 3, m_rows - 1)
        acc = np.empty((_FLOOR_ROWS, _FLOOR_COLS), np.int64)
        for n0 in range(0, n_cols, _FLOOR_COLS):
            nb = min(_FLOOR_COLS, n_cols - n0)
            a0 = acc[0]
            a1 = acc[1]
            a2 = acc[2]
            a3 = acc[3]
            a0[:nb] = 0
            a1[:nb] = 0
            a2[:nb] = 0
            a3[:nb] = 0
            if n0 == 0:  # |x| row sums, once per row block
                for r in range(rows):
                    s = 0.0
                    for k in range(k_len):
                        s += abs(x[g, m0 + r, k])
                    row_abs[g, m0 + r] = s
            for k in range(k_len):
                x0 = _operand(x[g, m0, k], lane)
                x1 = _operand(x[g, m1, k], lane)
                x2 = _operand(x[g, m2, k], lane)
                x3 = _operand(x[g, m3, k], lane)
                wr = w[g, k, n0:n0 + nb]
                for j in range(nb):
                    wv = _operand(wr[j], lane)
                    a0[j] += (x0 * wv) >> shift
                    a1[j] += (x1 * wv) >> shift
                    a2[j] += (x2 * wv) >> shift
                    a3[j] += (x3 * wv) >> shift
            for r in range(rows):  # rows past the end repeat the last row; not stored
                for j in range(nb):
                    v = acc0[n0 + j] + (acc[r, j] << d)
                    out[g, m0 + r, n0 + j] = ((v << up) >> up) if signed else (v & mask)
    return out, row_abs


def _cast_many(raw, c):
    """:func:`cast_one` on every element of a 1-D int64 array; returns (codes, overflowed)."""
    out = np.empty_like(raw)
    flags = np.empty(raw.size, np.bool_)
    for i in prange(raw.size):
        out[i], flags[i] = cast_one(raw[i], c)
    return out, flags


def _add_assign(a, sa, b, sb, c):
    """``cast_one((a << sa) + (b << sb), c)`` element-wise on 1-D int64 arrays (an exact sum
    of two aligned codes, then one assignment); returns (codes, overflowed)."""
    out = np.empty_like(a)
    flags = np.empty(a.size, np.bool_)
    for i in prange(a.size):
        out[i], flags[i] = cast_one((a[i] << sa) + (b[i] << sb), c)
    return out, flags


def _cast_trn_wrap(raw, shift, width, signed, lo, hi):
    """``AP_TRN`` / ``AP_WRAP`` (N = 0) assignment: floor by ``2**shift`` (a left shift when
    negative; the caller guarantees it cannot leave int64), then wrap to ``width`` bits."""
    out = np.empty_like(raw)
    flags = np.empty(raw.size, np.bool_)
    up = 64 - width
    mask = (np.int64(1) << width) - 1 if width < 64 else np.int64(-1)
    for i in prange(raw.size):
        t = raw[i] >> shift if shift >= 0 else raw[i] << -shift
        flags[i] = t < lo or t > hi
        out[i] = ((t << up) >> up) if signed else (t & mask)
    return out, flags


def _range(flat):
    """(min, max) of a non-empty 1-D int64 array in one pass (faster than two numpy
    reductions)."""
    lo = flat[0]
    hi = lo
    for i in prange(flat.size):
        v = flat[i]
        lo = min(lo, v)
        hi = max(hi, v)
    return lo, hi


@njit(cache=True)
def _column_sums(a):
    out = np.zeros(a.shape[1], np.int64)
    for i in range(a.shape[0]):
        for j in range(a.shape[1]):
            out[j] += a[i, j]
    return out


def column_sums(counts: np.ndarray) -> list[int]:
    """Column sums of a 2-D int64 array of counts (work items x roles), as Python ints
    (numpy's ``sum(axis=0)`` over a few columns takes several times as long)."""
    return _column_sums(np.ascontiguousarray(counts, np.int64)).tolist()


def code_range(a: np.ndarray) -> tuple[int, int]:
    """``(min, max)`` of a non-empty integer array in one pass (compiled for large int64)."""
    if a.dtype != np.int64 or a.size < 1 << 12:
        return int(a.min()), int(a.max())
    lo, hi = pick(code_range_kernel, a.size)(np.ascontiguousarray(a).reshape(-1))
    return int(lo), int(hi)


def compiled_pair(func, fastmath: bool = False) -> tuple:
    """Serial and parallel (``prange``) compilations of ``func``, for :func:`pick`.

    Numba names an on-disk cache entry after the function's qualified name and line, not
    its ``parallel`` flag, so two compilations of one function would load each other's
    machine code; the parallel one therefore compiles a renamed twin.
    """
    twin = types.FunctionType(func.__code__, func.__globals__, f"{func.__name__}_parallel")
    twin.__qualname__ = twin.__name__
    return (njit(cache=True, fastmath=fastmath)(func),
            njit(parallel=True, cache=True, fastmath=fastmath)(twin))


PARALLEL_MIN_MACS = 1 << 18
"""Below this many multiply-accumulates a kernel runs on one thread: starting the thread pool
costs more than it saves on small products (attention heads of small models)."""

mm_exact = compiled_pair(_mm_exact)
mm_wrap = compiled_pair(_mm_wrap)
mm_sat = compiled_pair(_mm_sat)
cast_many = compiled_pair(_cast_many)
add_assign = compiled_pair(_add_assign)
cast_trn_wrap = compiled_pair(_cast_trn_wrap)
code_range_kernel = compiled_pair(_range)
# fastmath only reorders the additions, which are exact in any order here
mm_floor_flags = compiled_pair(_mm_floor_flags, fastmath=True)
mm_floor_sum = compiled_pair(_mm_floor_sum)


def pick(kernel: tuple, macs: int):
    """The serial or the parallel compilation of ``kernel`` for a product of ``macs`` MACs."""
    return kernel[macs >= PARALLEL_MIN_MACS]
