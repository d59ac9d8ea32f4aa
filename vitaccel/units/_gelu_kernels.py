"""Fused GELU kernels: each table GELU variant's datapath in one compiled pass per element.

Each host function here returns the variant's output codes and adds its overflow counts,
exactly as the vectorised ``_reference_forward`` of :mod:`vitaccel.units.gelu` does (the tests
compare the two), or None when an exact intermediate of that definition would not have int64
codes; the caller then runs the vectorised definition. Inputs are validated int64 codes.
With ``then = (dst, role)`` a kernel also assigns its output to ``dst`` in the same pass (as
the linear engine assigns a fused GELU's output to its own format), counting that
assignment's overflowed values under ``role``.

Per element, every assignment is :func:`~vitaccel.fixed._assign.assign_one` (the exact
:func:`~vitaccel.fixed._kernels.cast_one`) of the exact value, every exact add/sub aligns its
operands' fractional bits by left shifts (as ``fixed_add`` does), every exact product is the
product of the codes, and every ROM read is :func:`~vitaccel.units.tables.interp_one`. A
kernel works in chunks of ``CHUNK`` elements (one row of overflow counts each), each chunk a
call of its span loop (:func:`~vitaccel.fixed._specialise.span_kernel`: inlined, and
vectorised with gathers from the ROM); its packed parameters travel as one int64 array
(:func:`~vitaccel.fixed._specialise.flat_params`), and large calls run a parallel compilation
specialised to them (:mod:`vitaccel.fixed._specialise`).
"""

from __future__ import annotations

import functools
import math
from typing import TYPE_CHECKING

import numpy as np
from numba import njit, prange

from vitaccel.fixed import FixedType, add_type, mul_type, sub_type
from vitaccel.fixed._assign import assign_one
from vitaccel.fixed._specialise import Fused, cast_at, constants_or, flat_params, span_kernel
from vitaccel.units._fused import (
    CHUNK,
    HALF_T,
    ONE_T,
    abs_type,
    cast_tuples,
    exact_format,
    mul_fits,
    then_at,
    then_counts,
    then_one,
    then_params,
)
from vitaccel.units._scalar import shift_floor_one
from vitaccel.units.tables import interp_one

if TYPE_CHECKING:
    from vitaccel.units.gelu import DeltaTableGelu, Gelu, LutGelu, TanhGelu

__all__ = ["delta_table", "lut", "tanh"]


@njit(cache=True)
def _table_params(p):
    """The ROM's :meth:`~vitaccel.units.tables.Table.kernel_args` scalars at ``p[0:5]``."""
    return p[0], p[1], p[2], p[3], p[4]


@njit(cache=True)
def _delta_params(p):
    c_tab, i = cast_at(p, 5)
    c_relu, i = cast_at(p, i)
    c_diff, i = cast_at(p, i)
    return _table_params(p), c_tab, c_relu, c_diff, p[i], p[i + 1], then_at(p, i + 2)


@span_kernel
def _delta_span(x, values, out, lo, hi, p):
    """DeltaTableGelu on ``x[lo:hi]``. Assignments: ROM read -> table_t, relu -> out_t,
    relu - d -> out_t, then the final assignment; ``sh_*`` align relu and d to the
    difference's fractional bits. Returns the counts gelu.table, gelu.out, final."""
    tp, c_tab, c_relu, c_diff, sh_relu, sh_d, then = p
    k, x0, u_max, fb, shift_a = tp
    n_tab = 0
    n_out = 0
    n_then = 0
    for j in range(lo, hi):
        v = x[j]
        a = abs(v)
        relu = max(v, np.int64(0))
        if shift_floor_one(a, k) - x0 >= u_max:  # |x| at or beyond the last grid point
            y, o = assign_one(relu, c_relu)
        else:
            d, o_t = assign_one(interp_one(a, k, x0, u_max, fb, values, shift_a), c_tab)
            n_tab += o_t
            y, o = assign_one((relu << sh_relu) - (d << sh_d), c_diff)
        n_out += o
        out[j], o = then_one(y, then)
        n_then += o
    return n_tab, n_out, n_then


# Each kernel names its span loop as a global: a span passed into one shared factory would sit
# in the closure, and numba's cache key pickles closure values, a dispatcher with a
# per-process id, so every process would compile the kernels again.
def _delta(consts):
    def delta(x, values, params, out, counts):
        """DeltaTableGelu over the chunks of flat ``x`` (counts per chunk)."""
        for c in prange(counts.shape[0]):
            counts[c, 0], counts[c, 1], counts[c, 2] = _delta_span(
                x, values, out, c * CHUNK, min((c + 1) * CHUNK, x.size),
                constants_or(consts, _delta_params, params))

    return delta


@njit(cache=True)
def _lut_params(p):
    c_tab, i = cast_at(p, 5)
    c_x, i = cast_at(p, i)
    c_val, i = cast_at(p, i)
    return _table_params(p), c_tab, c_x, c_val, then_at(p, i)


@span_kernel
def _lut_span(x, values, out, lo, hi, p):
    """LutGelu on ``x[lo:hi]``. Assignments: ROM read -> table_t, x -> out_t, value ->
    out_t; below x_min the output is 0 (0 never overflows); then the final assignment.
    Returns the counts gelu.lut, gelu.out, final."""
    tp, c_tab, c_x, c_val, then = p
    k, x0, u_max, fb, shift_a = tp
    n_tab = 0
    n_out = 0
    n_then = 0
    for j in range(lo, hi):
        v = x[j]
        pos = shift_floor_one(v, k) - x0
        if pos < 0:
            y = np.int64(0)
        elif pos >= u_max:
            y, o = assign_one(v, c_x)
            n_out += o
        else:
            t, o_t = assign_one(interp_one(v, k, x0, u_max, fb, values, shift_a), c_tab)
            n_tab += o_t
            y, o = assign_one(t, c_val)
            n_out += o
        out[j], o = then_one(y, then)
        n_then += o
    return n_tab, n_out, n_then


def _lut(consts):
    def lut(x, values, params, out, counts):
        """LutGelu over the chunks of flat ``x`` (counts per chunk)."""
        for c in prange(counts.shape[0]):
            counts[c, 0], counts[c, 1], counts[c, 2] = _lut_span(
                x, values, out, c * CHUNK, min((c + 1) * CHUNK, x.size),
                constants_or(consts, _lut_params, params))

    return lut


@njit(cache=True)
def _tanh_params(p):
    q = (p[5], p[6], p[7], p[8], p[9], p[10], p[11], p[12])
    c_x2, i = cast_at(p, 13)
    c_x3, i = cast_at(p, i)
    c_v, i = cast_at(p, i)
    c_u, i = cast_at(p, i)
    c_tab, i = cast_at(p, i)
    c_out, i = cast_at(p, i)
    return _table_params(p), q, (c_x2, c_x3, c_v, c_u, c_tab, c_out), then_at(p, i)


@span_kernel
def _tanh_span(x, values, out, lo, hi, p):
    """TanhGelu on ``x[lo:hi]``. ``q``: clip_lo, clip_hi, c1, c2, then the alignment shifts
    of xc and c2*x3 (v's sum) and of 1 and th (1 + th). Assignments: x2, x3, v, u -> poly_t,
    ROM read -> table_t, x * (1 + th) * 0.5 -> out_t, then the final assignment. Returns
    the counts gelu.poly, gelu.table, gelu.out, final."""
    tp, q, casts, then = p
    k, x0, u_max, fb, shift_a = tp
    clip_lo, clip_hi, c1, c2, sh_xc, sh_c2x3, sh_one, sh_th = q
    c_x2, c_x3, c_v, c_u, c_tab, c_out = casts
    n_poly = 0
    n_tab = 0
    n_out = 0
    n_then = 0
    for j in range(lo, hi):
        v = x[j]
        xc = min(max(v, clip_lo), clip_hi)
        x2, o1 = assign_one(xc * xc, c_x2)
        x3, o2 = assign_one(x2 * xc, c_x3)
        s, o3 = assign_one((xc << sh_xc) + ((c2 * x3) << sh_c2x3), c_v)
        u, o4 = assign_one(c1 * s, c_u)
        n_poly += o1 + o2 + o3 + o4
        mag, o = assign_one(interp_one(abs(u), k, x0, u_max, fb, values, shift_a), c_tab)
        n_tab += o
        th = -mag if u < 0 else mag
        y, o = assign_one(v * ((np.int64(1) << sh_one) + (th << sh_th)), c_out)
        n_out += o
        out[j], o = then_one(y, then)
        n_then += o
    return n_poly, n_tab, n_out, n_then


def _tanh(consts):
    def tanh(x, values, params, out, counts):
        """TanhGelu over the chunks of flat ``x`` (counts per chunk)."""
        for c in prange(counts.shape[0]):
            counts[c, 0], counts[c, 1], counts[c, 2], counts[c, 3] = _tanh_span(
                x, values, out, c * CHUNK, min((c + 1) * CHUNK, x.size),
                constants_or(consts, _tanh_params, params))

    return tanh


_DELTA_TABLE = Fused(_delta, _delta_params)
_LUT = Fused(_lut, _lut_params)
_TANH = Fused(_tanh, _tanh_params)


def _pack(g: Gelu, table_args: tuple, rest: tuple,
          dst: FixedType | None) -> tuple[np.ndarray, np.ndarray] | None:
    """``(ROM values, packed parameters)``: the ROM's :meth:`Table.kernel_args` scalars,
    ``rest``, then the final assignment to ``dst`` (None: none); None when that assignment
    does not fit the kernel."""
    then = then_params(g.out_t, dst)
    if then is None:
        return None
    k, x0, u_max, fb, values, shift_a = table_args
    return values, flat_params(k, x0, u_max, fb, shift_a, *rest, *then)


def _run(kernel: Fused, x: np.ndarray, args: tuple[np.ndarray, np.ndarray] | None,
         roles: tuple[str, ...], overflow: dict[str, int] | None,
         then: tuple[FixedType, str] | None) -> np.ndarray | None:
    """Run ``kernel`` on flat ``x`` with ``args`` (:func:`_pack`) and add the counts under
    ``roles`` (and the final assignment's under ``then[1]``); None when ``args`` is None
    (the fused kernel does not apply)."""
    if args is None:
        return None
    values, params = args
    flat = np.ascontiguousarray(x).ravel()
    out = np.empty_like(flat)
    counts = np.zeros((-(-flat.size // CHUNK), len(roles) + 1), dtype=np.int64)
    kernel.kernel(flat.size, params)(flat, values, params, out, counts)
    then_counts(overflow, roles, counts, then)
    return out.reshape(x.shape)


def delta_table(g: DeltaTableGelu, x: np.ndarray, x_t: FixedType,
                overflow: dict[str, int] | None,
                then: tuple[FixedType, str] | None = None) -> np.ndarray | None:
    """Fused :meth:`DeltaTableGelu._reference_forward` on validated codes ``x`` of ``x_t``.

    Returns
    -------
    np.ndarray or None
        Codes of ``g.out_t`` (shape of ``x``; of ``then[0]`` with ``then``), or None when
        ``relu - d``, ``|x|`` or a format assigned to would not have int64 codes (or ``|x|``
        is too wide for the ROM).
    """
    args = _delta_args(g, x_t, None if then is None else then[0])
    return _run(_DELTA_TABLE, x, args, ("gelu.table", "gelu.out"), overflow, then)


@functools.lru_cache(maxsize=256)
def _delta_args(g: DeltaTableGelu, x_t: FixedType, dst: FixedType | None) -> tuple | None:
    diff_t = exact_format(sub_type, x_t, g.table_t)
    a_t = abs_type(x_t)
    if diff_t is None or a_t.width > 63:
        return None
    cp = cast_tuples([(g.table.sum_t, g.table_t), (x_t, g.out_t), (diff_t, g.out_t)])
    if cp is None:
        return None
    shifts = (diff_t.frac_bits - x_t.frac_bits, diff_t.frac_bits - g.table_t.frac_bits)
    return _pack(g, g.table.kernel_args(a_t), (*cp, *shifts), dst)


def lut(g: LutGelu, x: np.ndarray, x_t: FixedType, overflow: dict[str, int] | None,
        then: tuple[FixedType, str] | None = None) -> np.ndarray | None:
    """Fused :meth:`LutGelu._reference_forward` on validated codes ``x`` of ``x_t``.

    Returns
    -------
    np.ndarray or None
        Codes of ``g.out_t`` (shape of ``x``; of ``then[0]`` with ``then``), or None when a
        format assigned to would not have int64 codes (every other intermediate is a code of
        ``x_t`` or the ROM's formats).
    """
    args = _lut_args(g, x_t, None if then is None else then[0])
    return _run(_LUT, x, args, ("gelu.lut", "gelu.out"), overflow, then)


@functools.lru_cache(maxsize=256)
def _lut_args(g: LutGelu, x_t: FixedType, dst: FixedType | None) -> tuple | None:
    cp = cast_tuples([(g.table.sum_t, g.table_t), (x_t, g.out_t), (g.table_t, g.out_t)])
    return None if cp is None else _pack(g, g.table.kernel_args(x_t), cp, dst)


def tanh(g: TanhGelu, x: np.ndarray, x_t: FixedType, overflow: dict[str, int] | None,
         then: tuple[FixedType, str] | None = None) -> np.ndarray | None:
    """Fused :meth:`TanhGelu._reference_forward` on validated codes ``x`` of ``x_t``.

    Returns
    -------
    np.ndarray or None
        Codes of ``g.out_t`` (shape of ``x``; of ``then[0]`` with ``then``), or None when a
        product, a sum or a format assigned to would not have int64 codes.
    """
    args = _tanh_args(g, x_t, None if then is None else then[0])
    return _run(_TANH, x, args, ("gelu.poly", "gelu.table", "gelu.out"), overflow, then)


@functools.lru_cache(maxsize=256)
def _tanh_args(g: TanhGelu, x_t: FixedType, dst: FixedType | None) -> tuple | None:
    p_t, c_t = g.poly_t, g.const_t
    c2x3_t = exact_format(mul_type, c_t, p_t)
    sum_t = None if c2x3_t is None else exact_format(add_type, x_t, c2x3_t)
    th_t = exact_format(sub_type, g.table_t, g.table_t)
    onep_t = None if th_t is None else exact_format(add_type, ONE_T, th_t)
    prod_t = None if onep_t is None else exact_format(mul_type, x_t, onep_t)
    half_t = None if prod_t is None else exact_format(mul_type, prod_t, HALF_T)
    a_t = abs_type(p_t)
    if (sum_t is None or half_t is None or a_t.width > 63 or not mul_fits(x_t, x_t)
            or not mul_fits(p_t, x_t) or not mul_fits(c_t, p_t)):
        return None
    cp = cast_tuples([(mul_type(x_t, x_t), p_t), (mul_type(p_t, x_t), p_t), (sum_t, p_t),
                      (c2x3_t, p_t), (g.table.sum_t, g.table_t), (half_t, g.out_t)])
    if cp is None:
        return None
    clip = math.floor(math.ldexp(g.poly_clip, x_t.frac_bits))
    p = (max(-clip, x_t.min_raw), min(clip, x_t.max_raw), g.c1_raw, g.c2_raw,
         sum_t.frac_bits - x_t.frac_bits, sum_t.frac_bits - c2x3_t.frac_bits,
         onep_t.frac_bits - ONE_T.frac_bits, onep_t.frac_bits - th_t.frac_bits)
    return _pack(g, g.table.kernel_args(a_t), (p, *cp), dst)
