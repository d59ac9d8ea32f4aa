"""Fused LayerNorm kernel: the whole datapath of a row in one compiled pass per call.

:func:`forward` returns the output codes of a :class:`~vitaccel.units.layernorm.FixedLayerNorm`
and adds its overflow counts exactly as the vectorised ``_reference_forward`` does (the tests
compare the two), or None when an exact intermediate of that definition (or a format assigned
to) would not have int64 codes; the caller then runs the vectorised definition. Per row: the
exact sum, the mean (the divider's ``2q + sticky`` code of
:func:`~vitaccel.units._ops.div_assign`), the centered values, the variance, the row's
``1/sqrt`` (the variant's scalar twin, planned by :func:`rsqrt_table_plan` or
:func:`isqrt_plan`), then normalisation, gamma and beta.

Every assignment is :func:`~vitaccel.fixed._assign.assign_one` of the exact value; exact
adds/subs align fractional bits by left shifts (as ``fixed_add`` does), exact products are
products of the codes. The packed parameters travel as one int64 array
(:func:`~vitaccel.fixed._specialise.flat_params`), and large calls run a parallel compilation
specialised to them (:mod:`vitaccel.fixed._specialise`).
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, NamedTuple

import numpy as np
from numba import njit, prange

from vitaccel.fixed import FixedType, add_type, mul_type, sub_type
from vitaccel.fixed._assign import assign_one
from vitaccel.fixed._specialise import Fused, cast_at, constants_or, flat_params
from vitaccel.units._fused import (
    HALF_T,
    THREE_T,
    cast_tuples,
    exact_format,
    mul_fits,
    then_at,
    then_counts,
    then_one,
    then_params,
)
from vitaccel.units._ops import _SHIFT_WORD_BITS
from vitaccel.units._scalar import leading_one_one, shift_floor_one
from vitaccel.units.tables import interp_one

if TYPE_CHECKING:
    from vitaccel.units.layernorm import FixedLayerNorm, IsqrtLayerNorm, RsqrtTableLayerNorm

__all__ = ["RsqrtPlan", "forward", "isqrt_one", "isqrt_plan", "rsqrt_table_plan"]

_TABLE, _ISQRT = 0, 1  # rsqrt kinds
_NO_CAST = (0,) * 14  # padding of an unused assignment slot
_NO_VALUES = np.zeros(1, dtype=np.int64)  # the ROM slot of isqrt (read-only, as ROMs are)
_NO_VALUES.flags.writeable = False
_PARAMS = 12  # ints of an rsqrt plan


class RsqrtPlan(NamedTuple):
    """A variant's ``rsqrt`` as the fused kernel runs it.

    Attributes
    ----------
    role : str
        Role of the first rsqrt count (``layernorm.rsqrt_table`` or ``layernorm.sqrt``); the
        second is ``layernorm.rsqrt``.
    params : tuple of int
        Kind (table or isqrt) and its integer parameters, padded to 12.
    values : np.ndarray
        The ROM's codes (read-only; a placeholder for isqrt).
    casts : tuple of tuple of int
        Five packed assignments (unused ones padded).
    """

    role: str
    params: tuple[int, ...]
    values: np.ndarray
    casts: tuple[tuple[int, ...], ...]


def _plan(role: str, params: list[int], values: np.ndarray,
          pairs: list[tuple[FixedType, FixedType]]) -> RsqrtPlan | None:
    """The padded plan, or None when a format assigned to does not have int64 codes."""
    cp = cast_tuples(pairs)
    if cp is None:
        return None
    return RsqrtPlan(role, tuple(params) + (0,) * (_PARAMS - len(params)),
                     np.asarray(values, dtype=np.int64), cp + (_NO_CAST,) * (5 - len(cp)))


@functools.lru_cache(maxsize=256)
def rsqrt_table_plan(ln: RsqrtTableLayerNorm) -> RsqrtPlan | None:
    """Plan of :meth:`RsqrtTableLayerNorm.rsqrt`, or None when its Newton products or sums
    would not have int64 codes (or the vectorised code would reject the formats)."""
    tab, tab_t, n_t, r_t = ln.table, ln.rsqrt_table_t, ln.newton_t, ln.rsqrt_t
    k = tab.x_frac_bits
    if ln.var_t.width > 63 or r_t.width > _SHIFT_WORD_BITS - 2 or k + 2 > 63:
        return None
    m_t = FixedType(k + 2, 2, False)
    c_t = exact_format(sub_type, THREE_T, n_t)
    yc_t = None if c_t is None else exact_format(mul_type, tab_t, c_t)
    half_t = None if yc_t is None else exact_format(mul_type, yc_t, HALF_T)
    newton_ok = (half_t is not None and mul_fits(tab_t, tab_t) and mul_fits(m_t, n_t))
    if ln.newton_steps and not newton_ok:
        return None
    word_t = FixedType(64, 64 - r_t.frac_bits, True)  # scale_pow2's shifter word
    tk, x0, u_max, fb, values, shift_a = tab.kernel_args(m_t)
    if ln.newton_steps:
        newton = [(mul_type(tab_t, tab_t), n_t), (mul_type(m_t, n_t), n_t), (half_t, tab_t)]
        shifts = [c_t.frac_bits - THREE_T.frac_bits, c_t.frac_bits - n_t.frac_bits]
    else:
        newton, shifts = [(tab_t, tab_t)] * 3, [0, 0]
    params = [_TABLE, ln.var_t.frac_bits, k, ln.newton_steps, int(tk), int(x0), int(u_max),
              int(fb), int(shift_a), *shifts, r_t.frac_bits - tab_t.frac_bits]
    return _plan("layernorm.rsqrt_table", params, values,
                 [(tab.sum_t, tab_t), *newton, (word_t, r_t)])


@functools.lru_cache(maxsize=256)
def isqrt_plan(ln: IsqrtLayerNorm) -> RsqrtPlan | None:
    """Plan of :meth:`IsqrtLayerNorm.rsqrt`, or None when the vectorised code would reject
    the formats or a format assigned to would not have int64 codes."""
    fs, fr = ln.sqrt_t.frac_bits, ln.rsqrt_t.frac_bits
    if ln.var_t.width > 63 or fr + fs < 0:
        return None
    root_t = FixedType(_SHIFT_WORD_BITS, _SHIFT_WORD_BITS - fs, True)  # the 62-bit words of
    word_t = FixedType(_SHIFT_WORD_BITS, _SHIFT_WORD_BITS - fr, True)  # IsqrtLayerNorm.rsqrt
    params = [_ISQRT, ln.var_t.frac_bits, 2 * fs - ln.var_t.frac_bits, fr + fs]
    return _plan("layernorm.sqrt", params, _NO_VALUES,
                 [(root_t, ln.sqrt_t), (word_t, ln.rsqrt_t)])


@njit(cache=True)
def isqrt_one(v):
    """``floor(sqrt(v))`` of one non-negative int64 code, exactly as ``layernorm._isqrt``."""
    r = np.int64(np.floor(np.sqrt(np.float64(v))))
    for _ in range(2):
        if r * r > v:
            r -= 1
        if (r + 1) * (r + 1) <= v:
            r += 1
    return r


@njit(cache=True, inline="always")
def _divide(num, k, den, c):
    """:func:`~vitaccel.units._ops.div_assign` of one code: ``k = max(k, 0)``, ``den`` the
    shifted divisor, ``c`` the assignment of the ``2q + sticky`` code."""
    n = num << k
    q = n // den
    return assign_one((q << 1) + (np.int64(1) if n != q * den else np.int64(0)), c)


@njit(cache=True, inline="always")
def _rsqrt(v, rp, values, rc):
    """The variant's rsqrt of one variance code; returns (code, first-role count, rsqrt count).

    ``rp``: the plan's 12 integers; ``rc``: its five assignments. Table: ROM read, y*y, m*y2,
    y*(3-h)/2, the barrel shifter's word. Isqrt: root -> sqrt_t, quotient -> rsqrt_t.
    """
    c0, c1, c2, c3, c4 = rc
    n_first = 0
    if rp[0] == _TABLE:
        fv, k, steps = rp[1], rp[2], rp[3]
        big = max(v, np.int64(1))
        e = leading_one_one(big) - fv
        e2 = e - (e & 1)
        m = shift_floor_one(big, k - fv - e2)
        y, o = assign_one(interp_one(m, rp[4], rp[5], rp[6], rp[7], values, rp[8]), c0)
        n_first += o
        for _ in range(steps):
            y2, o1 = assign_one(y * y, c1)
            h, o2 = assign_one(m * y2, c2)
            y, o3 = assign_one(y * ((np.int64(3) << rp[9]) - (h << rp[10])), c3)
            n_first += o1 + o2 + o3
        r, o = assign_one(shift_floor_one(y, -(e2 >> 1) + rp[11]), c4)
    else:
        root = isqrt_one(shift_floor_one(max(v, np.int64(0)), rp[2]))
        s, o1 = assign_one(root, c0)
        n_first += o1
        r, o = assign_one((np.int64(1) << rp[3]) // max(s, np.int64(1)), c1)
    return r, n_first, np.int64(1) if o else np.int64(0)


@njit(cache=True)
def _layernorm_params(p):
    """``(p, casts, rp, rc, then)`` of :func:`_layernorm`: 9 integers, 7 assignments, the
    rsqrt plan's 12 integers, its 5 assignments and the final assignment."""
    c_mean, i = cast_at(p, 9)
    c_cent, i = cast_at(p, i)
    c_sq, i = cast_at(p, i)
    c_var, i = cast_at(p, i)
    c_eps, i = cast_at(p, i)
    c_norm, i = cast_at(p, i)
    c_out, i = cast_at(p, i)
    rp = (p[i], p[i + 1], p[i + 2], p[i + 3], p[i + 4], p[i + 5], p[i + 6], p[i + 7],
          p[i + 8], p[i + 9], p[i + 10], p[i + 11])
    c0, i = cast_at(p, i + _PARAMS)
    c1, i = cast_at(p, i)
    c2, i = cast_at(p, i)
    c3, i = cast_at(p, i)
    c4, i = cast_at(p, i)
    return ((p[0], p[1], p[2], p[3], p[4], p[5], p[6], p[7], p[8]),
            (c_mean, c_cent, c_sq, c_var, c_eps, c_norm, c_out), rp, (c0, c1, c2, c3, c4),
            then_at(p, i))


def _layernorm(consts):
    def layernorm(x, g, b, values, params, out, counts):
        """LayerNorm per row of ``x`` (R, D). ``p``: mean divider (k, den), variance divider
        (k, den), alignments of x and mean (centering), EPS, alignments of xn*gamma and
        beta; then the final assignment. Counts per row: mean, centered, var, rsqrt_table or
        sqrt, rsqrt, norm, out, final."""
        for i in prange(x.shape[0]):
            p, casts, rp, rc, then = constants_or(consts, _layernorm_params, params)
            km, den_m, kv, den_v, sh_x, sh_mean, eps, sh_p, sh_b = p
            c_mean, c_cent, c_sq, c_var, c_eps, c_norm, c_out = casts
            s1 = np.int64(0)
            for j in range(x.shape[1]):
                s1 += x[i, j]
            mean, o_mean = _divide(s1, km, den_m, c_mean)
            n_cent = 0
            n_var = 0
            s2 = np.int64(0)
            for j in range(x.shape[1]):  # xc = centered_t(x - mean); the sum of var_t(xc * xc)
                xc, o = assign_one((x[i, j] << sh_x) - (mean << sh_mean), c_cent)
                n_cent += o
                sq, o = assign_one(xc * xc, c_sq)
                n_var += o
                s2 += sq
                out[i, j] = xc
            var, o1 = _divide(s2, kv, den_v, c_var)
            v, o2 = assign_one(var + eps, c_eps)  # var + EPS: both codes of var_t
            r, n_first, n_rsqrt = _rsqrt(v, rp, values, rc)
            n_norm = 0
            n_out = 0
            n_then = 0
            for j in range(x.shape[1]):  # y = out_t(norm_t(xc * r) * gamma + beta)
                xn, o = assign_one(out[i, j] * r, c_norm)
                n_norm += o
                y, o = assign_one(((xn * g[j]) << sh_p) + (b[j] << sh_b), c_out)
                n_out += o
                out[i, j], o = then_one(y, then)
                n_then += o
            counts[i, 0] = 1 if o_mean else 0
            counts[i, 1] = n_cent
            counts[i, 2] = n_var + o1 + o2
            counts[i, 3] = n_first
            counts[i, 4] = n_rsqrt
            counts[i, 5] = n_norm
            counts[i, 6] = n_out
            counts[i, 7] = n_then

    return layernorm


_LAYERNORM = Fused(_layernorm, _layernorm_params)


def _acc_type(a_t: FixedType, d: int) -> FixedType | None:
    """``layernorm._exact_sum``'s accumulator of ``d`` terms of ``a_t`` (None over 63 bits)."""
    grow = (d - 1).bit_length() + (not a_t.signed)
    return None if a_t.width + grow > 63 else FixedType(a_t.width + grow, a_t.int_bits + grow)


def _divider(num_t: FixedType | None, d: int, dst: FixedType
             ) -> tuple[int, int, tuple[FixedType, FixedType]] | None:
    """``(k, den, (red_t, dst))`` of ``div_assign(dst, num, num_t, d)``, or None where it
    would raise: more than 62 bits, or a 1-bit ``red_t`` (its only codes, -1 and 0, cannot
    hold a positive quotient; from 2 bits on ``red_t`` holds every quotient of ``num_t``)."""
    if num_t is None:
        return None
    k = dst.frac_bits + 1 - num_t.frac_bits
    int_bits = num_t.int_bits + (not num_t.signed)
    width = int_bits + dst.frac_bits + 2
    den = d << max(-k, 0)
    if num_t.width + max(k, 0) > 62 or den >= 2**62 or not 2 <= width <= 64:
        return None
    return max(k, 0), den, (FixedType(width, int_bits, True), dst)


@functools.lru_cache(maxsize=256)
def _params(ln: FixedLayerNorm, x_t: FixedType, g_t: FixedType, b_t: FixedType, d: int,
            rp: tuple[int, ...], rc: tuple[tuple[int, ...], ...],
            dst: FixedType | None) -> np.ndarray | None:
    """The packed parameters of :func:`_layernorm` (:func:`_layernorm_params`) for rows of
    ``d`` codes of ``x_t``, the rsqrt plan's integers ``rp`` and assignments ``rc`` and the
    final assignment to ``dst`` (None: none), or None when the fused pass does not apply."""
    c_t, var_t, r_t = ln.centered_t, ln.var_t, ln.rsqrt_t
    mean_div = _divider(_acc_type(x_t, d), d, ln.mean_t)
    var_div = _divider(_acc_type(var_t, d), d, var_t)
    cent_t = exact_format(sub_type, x_t, ln.mean_t)
    eps_t = exact_format(add_type, var_t, var_t)
    prod_t = exact_format(mul_type, ln.norm_t, g_t)
    out_sum_t = None if prod_t is None else exact_format(add_type, prod_t, b_t)
    if (mean_div is None or var_div is None or cent_t is None or eps_t is None
            or out_sum_t is None or not mul_fits(c_t, c_t) or not mul_fits(c_t, r_t)
            or not var_t.min_raw <= ln.eps_raw <= var_t.max_raw):
        return None
    cp = cast_tuples([mean_div[2], (cent_t, c_t), (mul_type(c_t, c_t), var_t), var_div[2],
                      (eps_t, var_t), (mul_type(c_t, r_t), ln.norm_t), (out_sum_t, ln.out_t)])
    then = then_params(ln.out_t, dst)
    if cp is None or then is None:
        return None
    p = (mean_div[0], mean_div[1], var_div[0], var_div[1],
         cent_t.frac_bits - x_t.frac_bits, cent_t.frac_bits - ln.mean_t.frac_bits, ln.eps_raw,
         out_sum_t.frac_bits - prod_t.frac_bits, out_sum_t.frac_bits - b_t.frac_bits)
    return flat_params(p, cp, rp, rc, then)


def forward(ln: FixedLayerNorm, plan: RsqrtPlan, x: np.ndarray, x_t: FixedType, g: np.ndarray,
            g_t: FixedType, b: np.ndarray, b_t: FixedType, overflow: dict[str, int] | None,
            then: tuple[FixedType, str] | None = None) -> np.ndarray | None:
    """Fused :meth:`FixedLayerNorm._reference_forward` on validated codes.

    Parameters
    ----------
    ln : FixedLayerNorm
        The variant (its role formats and EPS).
    plan : RsqrtPlan
        The variant's rsqrt.
    x, g, b : np.ndarray
        int64 codes of x (..., D) in ``x_t`` and of gamma, beta (D,) in ``g_t``, ``b_t``.
    overflow : dict, optional
        Overflow counter (per role).
    then : (FixedType, str), optional
        ``(dst, role)``: the output is also assigned to ``dst`` in the same pass (the node's
        output format), that assignment's overflowed values counted under ``role``.

    Returns
    -------
    np.ndarray or None
        Codes of ``ln.out_t`` (of ``then[0]`` with ``then``; shape of ``x``), or None when
        the fused pass does not apply.
    """
    d = x.shape[-1]
    params = _params(ln, x_t, g_t, b_t, d, plan.params, plan.casts,
                     None if then is None else then[0])
    if params is None:
        return None
    rows = np.ascontiguousarray(x).reshape(-1, d)
    out = np.empty_like(rows)
    counts = np.zeros((rows.shape[0], 8), dtype=np.int64)
    _LAYERNORM.kernel(rows.size, params)(rows, np.ascontiguousarray(g), np.ascontiguousarray(b),
                                         plan.values, params, out, counts)
    then_counts(overflow, ("layernorm.mean", "layernorm.centered", "layernorm.var", plan.role,
                           "layernorm.rsqrt", "layernorm.norm", "layernorm.out"), counts, then)
    return out.reshape(x.shape)
