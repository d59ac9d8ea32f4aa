"""The sequential running-sum recurrence shared by the softmax variants (numba, numpy fallback).

Per row, starting from ``s = s0`` and for keys ``k = start .. N-1`` in streaming order::

    s = floor(s * 2**-rshift[k])                        # base2 rescale (exact shift, >= 0)
    if new[k]:  s = sum_t(s * term[k]);  s = sum_t(s + 1)   # online: a new running max
    else:       s = sum_t(s + term[k])

Each ``sum_t(...)`` is an ap_fixed assignment of the exact value; overflowed assignments are
counted. The numba kernel uses the fixed-point core's scalar assignment and is taken whenever
every exact intermediate fits 62 bits; the numpy loop is the same recurrence otherwise.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from vitaccel.fixed import FixedType, add_type
from vitaccel.fixed._kernels import cast_one, cast_params
from vitaccel.units._ops import assign, count, mul_assign

__all__ = ["running_sum"]

_ONE_T = FixedType(1, 1, False)


@njit(cache=True)
def _kernel(s0, start, term, new, rshift, mul_c, add_c, one_c, s_left, t_left, o_left, one):
    rows, n = term.shape
    out = s0.copy()
    ovf = np.zeros(rows, dtype=np.int64)
    for r in range(rows):
        v = out[r]
        c = 0
        for k in range(start, n):
            sh = rshift[r, k]
            if sh > 0:
                v = v >> min(sh, 63)
            if new[r, k]:
                v, o1 = cast_one(v * term[r, k], mul_c)
                v, o2 = cast_one((v << o_left) + one, one_c)
                c += int(o1) + int(o2)
            else:
                v, o = cast_one((v << s_left) + (term[r, k] << t_left), add_c)
                c += int(o)
        out[r] = v
        ovf[r] = c
    return out, ovf.sum()


def _loop(s0, start, term, term_t, sum_t, new, rshift, overflow, role):
    s = s0.copy()
    for k in range(start, term.shape[1]):
        sh = rshift[:, k]
        if np.any(sh > 0):
            s = s >> np.minimum(sh, 63)
        nk = new[:, k]
        if nk.any():
            p = mul_assign(sum_t, s[nk], sum_t, term[nk, k], term_t, overflow, role)
            one_t = add_type(sum_t, _ONE_T)
            f = one_t.frac_bits
            s[nk] = assign(sum_t, (p << (f - sum_t.frac_bits)) + (1 << f), one_t, overflow,
                           role)
        ok = ~nk
        add_t = add_type(sum_t, term_t)
        f = add_t.frac_bits
        total = (s[ok] << (f - sum_t.frac_bits)) + (term[ok, k] << (f - term_t.frac_bits))
        s[ok] = assign(sum_t, total, add_t, overflow, role)
    return s


def running_sum(
    s0: np.ndarray,
    start: int,
    term: np.ndarray,
    term_t: FixedType,
    sum_t: FixedType,
    new: np.ndarray | None = None,
    rshift: np.ndarray | None = None,
    overflow: dict[str, int] | None = None,
    role: str = "softmax.sum",
    use_kernel: bool = True,
) -> np.ndarray:
    """Run the recurrence over rows: s0 (R,), term/new/rshift (R, N); codes of ``sum_t``.

    ``use_kernel=False`` forces the numpy loop (same bits; used to cross-check the kernel).
    """
    s0 = np.ascontiguousarray(s0, dtype=np.int64)
    term = np.ascontiguousarray(term, dtype=np.int64)
    new = np.zeros(term.shape, bool) if new is None else np.ascontiguousarray(new, dtype=bool)
    rshift = (np.zeros(term.shape, np.int64) if rshift is None
              else np.ascontiguousarray(rshift, dtype=np.int64))
    add_t, one_t = add_type(sum_t, term_t), add_type(sum_t, _ONE_T)
    mul_width = sum_t.width + term_t.width
    fits = max(mul_width, add_t.width, one_t.width) <= 62
    if not (use_kernel and fits):
        return _loop(s0, start, term, term_t, sum_t, new, rshift, overflow, role)
    out, n = _kernel(
        s0, start, term, new, rshift,
        np.array(cast_params(term_t.frac_bits, mul_width, sum_t), dtype=np.int64),
        np.array(cast_params(add_t.frac_bits - sum_t.frac_bits, add_t.width, sum_t),
                 dtype=np.int64),
        np.array(cast_params(one_t.frac_bits - sum_t.frac_bits, one_t.width, sum_t),
                 dtype=np.int64),
        add_t.frac_bits - sum_t.frac_bits, add_t.frac_bits - term_t.frac_bits,
        one_t.frac_bits - sum_t.frac_bits, np.int64(1) << one_t.frac_bits,
    )
    count(overflow, role, int(n))
    return out
