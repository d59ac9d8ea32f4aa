"""Compiled ``ap_fixed`` assignments for fused kernels: :func:`assign_one` and its short path.

Both give exactly the code and overflow flag of :func:`vitaccel.fixed._kernels.cast_one`; in a
kernel specialised to its formats (:mod:`vitaccel.fixed._specialise`) the choice between them
folds away, leaving the short path's branch-free code where it applies.
"""

from __future__ import annotations

import functools

import numpy as np
from numba import njit

from vitaccel.fixed._format import FixedType, Overflow, Rounding
from vitaccel.fixed._kernels import cast_one, cast_params

__all__ = ["assign_one", "assign_params"]


@functools.lru_cache(maxsize=4096)
def assign_params(shift: int, src_width: int, dst: FixedType) -> tuple:
    """:func:`~vitaccel.fixed._kernels.cast_params` as a tuple of int64 for
    :func:`assign_one` (compiled loops read a tuple without reference counting); memoised,
    as units build the same assignments on every call."""
    return tuple(np.int64(v) for v in cast_params(shift, src_width, dst))


# cast_params' codes of the modes (their enumeration order)
_TRN = list(Rounding).index(Rounding.TRN)
_RND = list(Rounding).index(Rounding.RND)
_WRAP = list(Overflow).index(Overflow.WRAP)
_SAT = list(Overflow).index(Overflow.SAT)


@njit(cache=True, inline="always")
def _is_short(c):
    """True when the assignment ``c`` (a tuple from :func:`assign_params`) takes
    :func:`_assign_short`: a right shift (``F_src >= F_dst``) into an ``AP_TRN`` or ``AP_RND``
    format that wraps (``AP_WRAP``, N = 0) or saturates (``AP_SAT``)."""
    return c[0] >= 0 and (c[4] == _TRN or c[4] == _RND) and (
        (c[5] == _WRAP and c[6] == 0) or c[5] == _SAT)


@njit(cache=True, inline="always")
def _assign_short(raw, c):
    """:func:`~vitaccel.fixed._kernels.cast_one` (same code and overflow flag) for an
    assignment ``c`` with :func:`_is_short`: a floor shift, the rounding bit, a range check,
    then a wrap or a clamp. Kernels run loops of such assignments without any other branch."""
    shift = c[0]
    t = raw >> min(shift, 63)
    if c[4] == _RND and shift > 0:
        t += (raw >> min(shift - 1, 63)) & 1
    ovf = (t > c[8]) | (t < c[7])
    if c[5] == _SAT:
        return min(max(t, c[7]), c[8]), ovf
    up = 64 - c[2]
    wrapped = (t << up) >> up
    return (wrapped if c[3] != 0 else wrapped & c[9]), ovf


@njit(cache=True, inline="always")
def assign_one(raw, c):
    """:func:`~vitaccel.fixed._kernels.cast_one` (same code and overflow flag), through
    :func:`_assign_short` where it applies; ``c`` is a tuple from :func:`assign_params`, so that
    a kernel's parameters stay in registers."""
    if _is_short(c):
        return _assign_short(raw, c)
    return cast_one(raw, c)
