"""Fused GELU kernels: each table GELU variant's datapath in one compiled pass per element.

Each host function here returns the variant's output codes and adds its overflow counts,
exactly as the vectorised ``_reference_forward`` of :mod:`vitaccel.units.gelu` does (the tests
compare the two), or None when an exact intermediate of that definition would not have int64
codes; the caller then runs the vectorised definition. Inputs are validated int64 codes.

Per element, every assignment is :func:`~vitaccel.fixed._assign.assign_one` (the exact
:func:`~vitaccel.fixed._kernels.cast_one`) of the exact value, every exact add/sub aligns its
operands' fractional bits by left shifts (as ``fixed_add`` does), every exact product is the
product of the codes, and every ROM read is :func:`~vitaccel.units.tables.interp_one`. A
kernel works in chunks of ``CHUNK`` elements (one row of overflow counts each) and runs the
loop of :func:`~vitaccel.fixed._assign.assign_short` when every assignment allows it.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
from numba import njit, prange

from vitaccel.fixed import FixedType, add_type, mul_type, sub_type
from vitaccel.fixed._assign import all_short, assign_one, assign_short
from vitaccel.fixed._kernels import compiled_pair, pick
from vitaccel.units._fused import (
    CHUNK,
    HALF_T,
    ONE_T,
    abs_type,
    add_counts,
    cast_tuples,
    exact_format,
    mul_fits,
)
from vitaccel.units._scalar import shift_floor_one
from vitaccel.units.tables import interp_one

if TYPE_CHECKING:
    from vitaccel.units.gelu import DeltaTableGelu, LutGelu, TanhGelu

__all__ = ["delta_table", "lut", "tanh"]


def _delta_chunk(assign):
    """DeltaTableGelu on ``x[lo:hi]`` with the assignment function ``assign``. Assignments:
    ROM read -> table_t, relu -> out_t, relu - d -> out_t; ``sh_*`` align relu and d to the
    difference's fractional bits. Returns the counts (gelu.table, gelu.out)."""

    @njit
    def chunk(x, lo, hi, k, x0, u_max, fb, values, shift_a, c_tab, c_relu, c_diff, sh_relu,
              sh_d, out):
        n_tab = 0
        n_out = 0
        for j in range(lo, hi):
            v = x[j]
            a = abs(v)
            relu = max(v, np.int64(0))
            if shift_floor_one(a, k) - x0 >= u_max:  # |x| at or beyond the last grid point
                y, o = assign(relu, c_relu)
            else:
                d, o_t = assign(interp_one(a, k, x0, u_max, fb, values, shift_a), c_tab)
                n_tab += o_t
                y, o = assign((relu << sh_relu) - (d << sh_d), c_diff)
            n_out += o
            out[j] = y
        return n_tab, n_out

    return chunk


def _lut_chunk(assign):
    """LutGelu on ``x[lo:hi]`` with ``assign``. Assignments: ROM read -> table_t,
    x -> out_t, value -> out_t. Returns the counts (gelu.lut, gelu.out). Below x_min the
    output is 0 (0 never overflows)."""

    @njit
    def chunk(x, lo, hi, k, x0, u_max, fb, values, shift_a, c_tab, c_x, c_val, out):
        n_tab = 0
        n_out = 0
        for j in range(lo, hi):
            v = x[j]
            pos = shift_floor_one(v, k) - x0
            if pos < 0:
                y = np.int64(0)
            elif pos >= u_max:
                y, o = assign(v, c_x)
                n_out += o
            else:
                t, o_t = assign(interp_one(v, k, x0, u_max, fb, values, shift_a), c_tab)
                n_tab += o_t
                y, o = assign(t, c_val)
                n_out += o
            out[j] = y
        return n_tab, n_out

    return chunk


def _tanh_chunk(assign):
    """TanhGelu on ``x[lo:hi]`` with ``assign``. ``p``: clip_lo, clip_hi, c1, c2, then the
    alignment shifts of xc and c2*x3 (v's sum) and of 1 and th (1 + th). Assignments: x2, x3,
    v, u -> poly_t, ROM read -> table_t, x * (1 + th) * 0.5 -> out_t. Returns the counts
    (gelu.poly, gelu.table, gelu.out)."""

    @njit
    def chunk(x, lo, hi, p, k, x0, u_max, fb, values, shift_a, c_x2, c_x3, c_v, c_u, c_tab,
              c_out, out):
        clip_lo, clip_hi, c1, c2, sh_xc, sh_c2x3, sh_one, sh_th = p
        n_poly = 0
        n_tab = 0
        n_out = 0
        for j in range(lo, hi):
            v = x[j]
            xc = min(max(v, clip_lo), clip_hi)
            x2, o1 = assign(xc * xc, c_x2)
            x3, o2 = assign(x2 * xc, c_x3)
            s, o3 = assign((xc << sh_xc) + ((c2 * x3) << sh_c2x3), c_v)
            u, o4 = assign(c1 * s, c_u)
            n_poly += o1 + o2 + o3 + o4
            mag, o = assign(interp_one(abs(u), k, x0, u_max, fb, values, shift_a), c_tab)
            n_tab += o
            th = -mag if u < 0 else mag
            y, o = assign(v * ((np.int64(1) << sh_one) + (th << sh_th)), c_out)
            n_out += o
            out[j] = y
        return n_poly, n_tab, n_out

    return chunk


# Per variant, the chunk loop with only short assignments and the general one.
_DELTA_SHORT, _DELTA_ANY = _delta_chunk(assign_short), _delta_chunk(assign_one)
_LUT_SHORT, _LUT_ANY = _lut_chunk(assign_short), _lut_chunk(assign_one)
_TANH_SHORT, _TANH_ANY = _tanh_chunk(assign_short), _tanh_chunk(assign_one)


def _delta_table(x, short, k, x0, u_max, fb, values, shift_a, c_tab, c_relu, c_diff, sh_relu,
                 sh_d, out, counts):
    """DeltaTableGelu over the chunks of flat ``x`` (see :func:`_delta_chunk`)."""
    for c in prange(counts.shape[0]):
        lo, hi = c * CHUNK, min((c + 1) * CHUNK, x.size)
        if short:
            n = _DELTA_SHORT(x, lo, hi, k, x0, u_max, fb, values, shift_a, c_tab, c_relu, c_diff,
                             sh_relu, sh_d, out)
        else:
            n = _DELTA_ANY(x, lo, hi, k, x0, u_max, fb, values, shift_a, c_tab, c_relu, c_diff,
                           sh_relu, sh_d, out)
        counts[c, 0], counts[c, 1] = n


def _lut(x, short, k, x0, u_max, fb, values, shift_a, c_tab, c_x, c_val, out, counts):
    """LutGelu over the chunks of flat ``x`` (see :func:`_lut_chunk`)."""
    for c in prange(counts.shape[0]):
        lo, hi = c * CHUNK, min((c + 1) * CHUNK, x.size)
        if short:
            n = _LUT_SHORT(x, lo, hi, k, x0, u_max, fb, values, shift_a, c_tab, c_x, c_val, out)
        else:
            n = _LUT_ANY(x, lo, hi, k, x0, u_max, fb, values, shift_a, c_tab, c_x, c_val, out)
        counts[c, 0], counts[c, 1] = n


def _tanh(x, short, p, k, x0, u_max, fb, values, shift_a, c_x2, c_x3, c_v, c_u, c_tab, c_out,
          out, counts):
    """TanhGelu over the chunks of flat ``x`` (see :func:`_tanh_chunk`)."""
    for c in prange(counts.shape[0]):
        lo, hi = c * CHUNK, min((c + 1) * CHUNK, x.size)
        if short:
            n = _TANH_SHORT(x, lo, hi, p, k, x0, u_max, fb, values, shift_a, c_x2, c_x3, c_v,
                            c_u, c_tab, c_out, out)
        else:
            n = _TANH_ANY(x, lo, hi, p, k, x0, u_max, fb, values, shift_a, c_x2, c_x3, c_v,
                          c_u, c_tab, c_out, out)
        counts[c, 0], counts[c, 1], counts[c, 2] = n


_DELTA_TABLE = compiled_pair(_delta_table)
_LUT = compiled_pair(_lut)
_TANH = compiled_pair(_tanh)


def _run(kernel: tuple, x: np.ndarray, args: tuple, casts: tuple, roles: tuple[str, ...],
         overflow: dict[str, int] | None, tail: tuple = ()) -> np.ndarray:
    """Run ``kernel(flat x, short, *args, *casts, *tail, out, counts)`` (``short``: every
    assignment takes the short path) and add the counts under ``roles``."""
    flat = np.ascontiguousarray(x).ravel()
    out = np.empty_like(flat)
    counts = np.zeros((-(-flat.size // CHUNK), len(roles)), dtype=np.int64)
    pick(kernel, flat.size)(flat, all_short(casts), *args, *casts, *tail, out, counts)
    add_counts(overflow, roles, counts)
    return out.reshape(x.shape)


def delta_table(g: DeltaTableGelu, x: np.ndarray, x_t: FixedType,
                overflow: dict[str, int] | None) -> np.ndarray | None:
    """Fused :meth:`DeltaTableGelu._reference_forward` on validated codes ``x`` of ``x_t``.

    Returns
    -------
    np.ndarray or None
        Codes of ``g.out_t`` (shape of ``x``), or None when ``relu - d``, ``|x|`` or a format
        assigned to would not have int64 codes (or ``|x|`` is too wide for the ROM).
    """
    diff_t = exact_format(sub_type, x_t, g.table_t)
    a_t = abs_type(x_t)
    if diff_t is None or a_t.width > 63:
        return None
    cp = cast_tuples([(g.table.sum_t, g.table_t), (x_t, g.out_t), (diff_t, g.out_t)])
    if cp is None:
        return None
    shifts = (np.int64(diff_t.frac_bits - x_t.frac_bits),
              np.int64(diff_t.frac_bits - g.table_t.frac_bits))
    return _run(_DELTA_TABLE, x, g.table.kernel_args(a_t), cp, ("gelu.table", "gelu.out"),
                overflow, shifts)


def lut(g: LutGelu, x: np.ndarray, x_t: FixedType,
        overflow: dict[str, int] | None) -> np.ndarray | None:
    """Fused :meth:`LutGelu._reference_forward` on validated codes ``x`` of ``x_t``.

    Returns
    -------
    np.ndarray or None
        Codes of ``g.out_t`` (shape of ``x``), or None when a format assigned to would not
        have int64 codes (every other intermediate is a code of ``x_t`` or the ROM's formats).
    """
    cp = cast_tuples([(g.table.sum_t, g.table_t), (x_t, g.out_t), (g.table_t, g.out_t)])
    if cp is None:
        return None
    return _run(_LUT, x, g.table.kernel_args(x_t), cp, ("gelu.lut", "gelu.out"), overflow)


def tanh(g: TanhGelu, x: np.ndarray, x_t: FixedType,
         overflow: dict[str, int] | None) -> np.ndarray | None:
    """Fused :meth:`TanhGelu._reference_forward` on validated codes ``x`` of ``x_t``.

    Returns
    -------
    np.ndarray or None
        Codes of ``g.out_t`` (shape of ``x``), or None when a product, a sum or a format
        assigned to would not have int64 codes.
    """
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
    return _run(_TANH, x, (p, *g.table.kernel_args(a_t)), cp,
                ("gelu.poly", "gelu.table", "gelu.out"), overflow)
