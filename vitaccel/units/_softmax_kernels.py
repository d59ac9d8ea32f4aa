"""Fused softmax: stats and probabilities of whole rows in one compiled pass per call.

Each kernel is the scalar form of a ROM softmax variant's vectorised definition in
:mod:`vitaccel.units.softmax` (``probs(stats(scores))``): per row it streams the keys in the
row's order (an index into the row, never a rearranged copy), keeps the max and the running
sum, takes the reciprocal and writes every probability in the original key order. Every
assignment is :func:`~vitaccel.fixed._assign.assign_one` of the exact int64 value, so a plan
exists only when every intermediate fits 62 bits (the builders return None otherwise and the
caller runs the vectorised definition). Overflows are counted per row and role and summed
afterwards; the tests compare bits and counts with the vectorised definition.

The packed parameters travel as one int64 array (:func:`~vitaccel.fixed._specialise.flat_params`;
numba's parallel loops take no tuple arguments). Small calls run the general kernel on one
thread, which reads its tuples back per row; large calls run in parallel (``prange``) a
compilation specialised to the plan's parameters, which are then constants of the machine
code (:mod:`vitaccel.fixed._specialise`).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
from numba import njit, prange

from vitaccel.errors import UsageError
from vitaccel.fixed import FixedType, sub_type
from vitaccel.fixed._assign import assign_one, assign_params
from vitaccel.fixed._specialise import Fused, cast_at, constants_or, flat_params, span_kernel
from vitaccel.units._fused import add_counts
from vitaccel.units._running import (
    sum_params,
    sum_params_at,
    sum_step,
)
from vitaccel.units._scalar import leading_one_one, shift_floor_one
from vitaccel.units.tables import Table, interp_one

__all__ = ["ROLES", "Plan", "base2_plan", "online_plan", "run", "two_pass_plan"]

ROLES = ("softmax.z", "softmax.exp", "softmax.sum", "softmax.recip_table", "softmax.recip",
         "softmax.prob")
"""Overflow roles, in the column order of the kernels' per-row counts."""
_Z, _EXP, _SUM, _RT, _RECIP, _PROB = range(len(ROLES))

_WORD_BITS = 62  # exact intermediates must fit this many bits (as in vitaccel.units._running)
_SHIFT_DST_BITS = 60  # widest destination of a barrel shift (vitaccel.units._ops.scale_pow2)


@dataclass(frozen=True)
class Plan:
    """A fused kernel (its general and specialised compilations) and its arguments after
    the rows: the ROMs (int64 arrays) and the packed parameters (:func:`flat_params`);
    memoised per variant and scores format, so shared and never written."""

    kernel: Fused
    args: tuple


def run(plan: Plan, rows: np.ndarray, order: np.ndarray,
        overflow: dict[str, int] | None) -> np.ndarray:
    """Probabilities (R, N) of rows (R, N) of validated int64 score codes.

    Parameters
    ----------
    plan : Plan
        From :func:`online_plan`, :func:`two_pass_plan` or :func:`base2_plan`.
    rows : np.ndarray, shape (R, N)
        C-contiguous int64 codes of the scores format the plan was built for.
    order : np.ndarray, shape (Q, N)
        int64 permutations; row r streams its keys in ``order[r % Q]`` (Q >= 1 when R >= 1).
    overflow : dict, optional
        Overflow counts per role are added here.

    Returns
    -------
    np.ndarray
        Codes of the variant's ``prob_t``, in the original key order.
    """
    out, counts = plan.kernel.kernel(rows.size, plan.args[-1])(rows, order, *plan.args)
    add_counts(overflow, ROLES, counts)
    return out


# ---------------------------------------------------------------------- plans
_TABLE_LEN = 5 + 14  # ints of a table's parameters (_interp) in a flat parameter array


def _interp(table: Table, x_t: FixedType, out_t: FixedType) -> tuple[np.ndarray, tuple]:
    """``(values, params)`` of :func:`_table_one`: ``table.interp`` of ``x_t`` codes assigned
    to ``out_t``."""
    k, x0_raw, u_max, fb, values, shift_a = table.kernel_args(x_t)
    s_t = table.sum_t
    return values, (k, x0_raw, u_max, fb, shift_a,
                    assign_params(s_t.frac_bits - out_t.frac_bits, s_t.width, out_t))


def _common(sm, x_t: FixedType) -> tuple | None:
    """``(recip ROM, (reciprocal, sum step, probability) params)`` shared by the RomSoftmax
    kernels, or None if not fusable."""
    exp_t, recip_t, prob_t = sm.exp_t, sm.recip_t, sm.prob_t
    if (x_t.width > _WORD_BITS or recip_t.width > _SHIFT_DST_BITS
            or exp_t.width + recip_t.width > _WORD_BITS):
        return None
    sp = sum_params(exp_t, sm.sum_t)
    tab = sm.recip_table
    k = tab.x_frac_bits
    if sp is None or k + 1 > _WORD_BITS:
        return None
    e_shift = sm.sum_t.frac_bits + recip_t.frac_bits - tab.fmt.frac_bits
    if tab.fmt.width + max(e_shift, 0) > _WORD_BITS - 1:  # the shifter word could saturate
        return None
    values, tp = _interp(tab, FixedType(k + 1, 1, False), tab.fmt)
    recip = (k, tp, e_shift, assign_params(0, _WORD_BITS, recip_t))
    prob = assign_params(exp_t.frac_bits + recip_t.frac_bits - prob_t.frac_bits,
                         exp_t.width + recip_t.width, prob_t)
    return values, (recip, sp, prob)


@functools.lru_cache(maxsize=256)
def online_plan(sm, x_t: FixedType) -> Plan | None:
    """Plan of an :class:`~vitaccel.units.softmax.OnlineSoftmax` for scores of ``x_t``."""
    try:
        common = _common(sm, x_t)
        if common is None:
            return None
        s0, s0_ovf = assign_one(np.int64(1), assign_params(-sm.sum_t.frac_bits, 1, sm.sum_t))
        ev, ep = _interp(sm.exp_table, sub_type(x_t, x_t), sm.exp_t)
    except UsageError:
        return None
    rv, params = common
    return Plan(_ONLINE, (ev, rv, flat_params(ep, *params, s0, s0_ovf)))


@functools.lru_cache(maxsize=256)
def two_pass_plan(sm, x_t: FixedType) -> Plan | None:
    """Plan of a :class:`~vitaccel.units.softmax.TwoPassSoftmax` for scores of ``x_t``."""
    try:
        common = _common(sm, x_t)
        if common is None:
            return None
        ev, ep = _interp(sm.exp_table, sub_type(x_t, x_t), sm.exp_t)
    except UsageError:
        return None
    rv, params = common
    return Plan(_TWO_PASS, (ev, rv, flat_params(ep, *params)))


@functools.lru_cache(maxsize=256)
def base2_plan(sm, x_t: FixedType) -> Plan | None:
    """Plan of a :class:`~vitaccel.units.softmax.Base2Softmax` for scores of ``x_t``.

    Also needs a signed ``z_t`` (whose integer max always fits ``max_type``), the product
    ``x * log2(e)`` and ``z_t`` within 62 bits and ``exp_t`` within 60 (a shift destination).
    """
    z_t, exp_t, l_t = sm.z_t, sm.exp_t, sm.log2e_t
    fz = z_t.frac_bits
    if (not z_t.signed or z_t.width > _WORD_BITS or not 1 <= fz <= _SHIFT_DST_BITS
            or x_t.width + l_t.width > _WORD_BITS or exp_t.width > _SHIFT_DST_BITS):
        return None
    try:
        common = _common(sm, x_t)
        if common is None:
            return None
        pv, pp = _interp(sm.pow2_table, FixedType(fz, 0, False), exp_t)
        z = (assign_params(x_t.frac_bits + l_t.frac_bits - fz, x_t.width + l_t.width, z_t),
             assign_params(0, _WORD_BITS, exp_t),
             assign_params(exp_t.frac_bits - sm.sum_t.frac_bits, exp_t.width, sm.sum_t),
             sm.log2e_raw, fz)
    except UsageError:
        return None
    rv, params = common
    return Plan(_BASE2, (pv, rv, flat_params(pp, *params, z)))


# ------------------------------------------------------------- parameters per row
@njit(cache=True)
def _table_at(p, i):
    """The :func:`_interp` parameters stored at ``p[i:]`` and the offset after them."""
    c, j = cast_at(p, i + 5)
    return (p[i], p[i + 1], p[i + 2], p[i + 3], p[i + 4], c), j


@njit(cache=True)
def _common_at(p, i):
    """The :func:`_common` parameters (reciprocal, sum step, probability) at ``p[i:]``."""
    tp, j = _table_at(p, i + 1)
    r_c, j = cast_at(p, j + 1)
    sp, j = sum_params_at(p, j)
    prob, j = cast_at(p, j)
    return (p[i], tp, p[i + 1 + _TABLE_LEN], r_c), sp, prob, j


# -------------------------------------------------------------------- scalar parts
@njit(cache=True, inline="always")
def _table_one(v, values, p):
    """``out_t(table.interp(v))`` with ``(values, p)`` from :func:`_interp`; returns (code,
    overflow count)."""
    k, x0_raw, u_max, fb, shift_a, c = p
    y, o = assign_one(interp_one(v, k, x0_raw, u_max, fb, values, shift_a), c)
    return y, int(o)


@njit(cache=True, inline="always")
def _recip_one(s, values, recip):
    """:func:`~vitaccel.units.softmax.reciprocal` of one sum code: (code, table ovf, ovf)."""
    k, tp, e_shift, r_c = recip
    v = max(s, np.int64(1))
    e = leading_one_one(v)
    y, o1 = _table_one(shift_floor_one(v, k - e), values, tp)
    r, o2 = assign_one(shift_floor_one(y, e_shift - e), r_c)
    return r, o1, int(o2)


@njit(cache=True, inline="always")
def _pow2_one(z, c, fz, values, tp, w_c):
    """exp_t code of ``2**(z - c)`` (Base2Softmax._pow2) and its overflow count (0 to 2)."""
    w = (c << fz) - z
    y, o1 = _table_one(w & ((np.int64(1) << fz) - 1), values, tp)
    p, o2 = assign_one(shift_floor_one(y, -(w >> fz)), w_c)
    return p, o1 + int(o2)


@njit(cache=True, inline="always")
def _scale_row(row, rc, prob):
    """``row[j] = prob_t(row[j] * rc)`` over a row of exp_t codes (the probabilities, with
    the reciprocal code ``rc``); returns the overflow count."""
    c = 0
    for j in range(row.size):
        pj, ov = assign_one(row[j] * rc, prob)
        row[j] = pj
        c += int(ov)
    return c


@span_kernel
def _exp_row(x, out, m, ev, ep):
    """``out[j] = exp_t(e^(x[j] - m))`` over a row of score codes ``x`` (max ``m``);
    returns the overflow count."""
    c = 0
    for j in range(x.size):
        e, ov = _table_one(m - x[j], ev, ep)
        out[j] = e
        c += ov
    return c


@span_kernel
def _pow2_probs(z, m, fz, pv, pp, w_c, rc, prob):
    """``z[j] = prob_t(exp_t(2**(z[j] - m)) * rc)`` in place over a row of z codes (integer
    max ``m``, reciprocal code ``rc``); returns the overflow counts (exp, prob)."""
    c_exp = 0
    c_prob = 0
    for j in range(z.size):
        e, o1 = _pow2_one(z[j], m, fz, pv, pp, w_c)
        pj, o2 = assign_one(e * rc, prob)
        z[j] = pj
        c_exp += o1
        c_prob += int(o2)
    return c_exp, c_prob


@span_kernel
def _exp_probs(x, out, m, rc, ev, ep, prob):
    """``out[j] = prob_t(exp_t(e^(x[j] - m)) * rc)`` over a row of score codes ``x`` (max
    ``m``, reciprocal code ``rc``); returns the overflow counts (exp, prob)."""
    c_exp = 0
    c_prob = 0
    for j in range(x.size):
        e, o1 = _table_one(m - x[j], ev, ep)
        pj, o2 = assign_one(e * rc, prob)
        out[j] = pj
        c_exp += o1
        c_prob += int(o2)
    return c_exp, c_prob


@njit(cache=True, inline="always")
def _store(row, z, exp, sum_, recip_table, recip, prob):
    """Write one row's overflow counts in :data:`ROLES` order."""
    row[_Z] = z
    row[_EXP] = exp
    row[_SUM] = sum_
    row[_RT] = recip_table
    row[_RECIP] = recip
    row[_PROB] = prob


# ---------------------------------------------------------------------- kernels
# Each factory takes the kernel's parameters as constants (a specialised compilation) or None
# (the general one, which reads them from ``params``): see vitaccel.fixed._specialise.
@njit(cache=True)
def _online_params(p):
    ep, i = _table_at(p, 0)
    recip, sp, prob, i = _common_at(p, i)
    return ep, recip, sp, prob, p[i], p[i + 1]


def _online(consts):
    def online(x, order, ev, rv, params):
        """OnlineSoftmax rows -> (probability codes, overflow counts per row and role)."""
        rows, n = x.shape
        out = np.empty_like(x)
        cnt = np.zeros((rows, len(ROLES)), np.int64)
        for r in prange(rows):
            ep, recip, sp, prob, s0, s0_ovf = constants_or(consts, _online_params, params)
            o = order[r % order.shape[0]]
            m = x[r, o[0]]
            s = s0
            c_exp = 0
            c_sum = s0_ovf
            for k in range(1, n):
                v = x[r, o[k]]
                e, ov = _table_one(abs(v - m), ev, ep)
                c_exp += ov
                s, ov = sum_step(s, e, v > m, 0, sp)
                c_sum += ov
                m = max(m, v)
            rc, c_rt, c_recip = _recip_one(s, rv, recip)
            e_more, c_prob = _exp_probs(x[r], out[r], m, rc, ev, ep, prob)
            _store(cnt[r], 0, c_exp + e_more, c_sum, c_rt, c_recip, c_prob)
        return out, cnt

    return online


@njit(cache=True)
def _two_pass_params(p):
    ep, i = _table_at(p, 0)
    recip, sp, prob, i = _common_at(p, i)
    return ep, recip, sp, prob


def _two_pass(consts):
    def two_pass(x, order, ev, rv, params):
        """TwoPassSoftmax rows -> (probability codes, overflow counts per row and role)."""
        rows, n = x.shape
        out = np.empty_like(x)
        cnt = np.zeros((rows, len(ROLES)), np.int64)
        for r in prange(rows):
            ep, recip, sp, prob = constants_or(consts, _two_pass_params, params)
            o = order[r % order.shape[0]]
            m = x[r, 0]
            for j in range(1, n):
                m = max(m, x[r, j])
            c_exp = _exp_row(x[r], out[r], m, ev, ep)  # used by the sum and the probabilities
            s = np.int64(0)
            c_sum = 0
            for k in range(n):
                s, ov = sum_step(s, out[r, o[k]], False, 0, sp)
                c_sum += ov
            rc, c_rt, c_recip = _recip_one(s, rv, recip)
            _store(cnt[r], 0, 2 * c_exp, c_sum, c_rt, c_recip, _scale_row(out[r], rc, prob))
        return out, cnt

    return two_pass


@njit(cache=True)
def _base2_params(p):
    pp, i = _table_at(p, 0)
    recip, sp, prob, i = _common_at(p, i)
    z_c, i = cast_at(p, i)
    w_c, i = cast_at(p, i)
    s0_c, i = cast_at(p, i)
    return pp, recip, sp, prob, z_c, w_c, s0_c, p[i], p[i + 1]


def _base2(consts):
    def base2(x, order, pv, rv, params):
        """Base2Softmax rows -> (probability codes, overflow counts per row and role)."""
        rows, n = x.shape
        out = np.empty_like(x)
        cnt = np.zeros((rows, len(ROLES)), np.int64)
        for r in prange(rows):
            pp, recip, sp, prob, z_c, w_c, s0_c, log2e, fz = constants_or(
                consts, _base2_params, params)
            o = order[r % order.shape[0]]
            c_z = 0
            for j in range(n):  # z, used by the stats and again by the probabilities
                zj, ovz = assign_one(x[r, j] * log2e, z_c)
                out[r, j] = zj
                c_z += int(ovz)
            zk = out[r, o[0]]
            m = -shift_floor_one(-zk, -fz)  # the integer running max, ceil(z)
            p, c_exp = _pow2_one(zk, m, fz, pv, pp, w_c)
            s, ov0 = assign_one(p, s0_c)
            c_sum = int(ov0)
            for k in range(1, n):
                zk = out[r, o[k]]
                sh = max(-shift_floor_one(-zk, -fz) - m, 0)
                m += sh
                p, ov = _pow2_one(zk, m, fz, pv, pp, w_c)
                c_exp += ov
                s, ov = sum_step(s, p, False, sh, sp)
                c_sum += ov
            rc, c_rt, c_recip = _recip_one(s, rv, recip)
            e_more, c_prob = _pow2_probs(out[r], m, fz, pv, pp, w_c, rc, prob)
            _store(cnt[r], 2 * c_z, c_exp + e_more, c_sum, c_rt, c_recip, c_prob)
        return out, cnt

    return base2


_ONLINE = Fused(_online, _online_params)
_TWO_PASS = Fused(_two_pass, _two_pass_params)
_BASE2 = Fused(_base2, _base2_params)
