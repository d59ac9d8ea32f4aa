"""Slow exact scalar oracle for ap_fixed assignment, on fractions.Fraction and Python ints.

Written independently of vitaccel.fixed: rounding is defined on the exact rational value
(nearest with the mode's tie rule, or directed), overflow on the rounded integer code.
"""

from __future__ import annotations

import math
from fractions import Fraction

from hypothesis import strategies as st

from vitaccel.fixed import FixedType, Overflow, Rounding


def _round(scaled: Fraction, mode: Rounding) -> int:
    lo = math.floor(scaled)
    if mode is Rounding.TRN:
        return lo
    if mode is Rounding.TRN_ZERO:
        return lo if scaled >= 0 else math.ceil(scaled)
    diff = scaled - lo
    if diff != Fraction(1, 2):
        return lo + (1 if diff > Fraction(1, 2) else 0)
    # exact tie between lo and lo + 1
    if mode is Rounding.RND:
        return lo + 1
    if mode is Rounding.RND_MIN_INF:
        return lo
    if mode is Rounding.RND_ZERO:
        return lo + 1 if scaled < 0 else lo
    if mode is Rounding.RND_INF:
        return lo if scaled < 0 else lo + 1
    return lo if lo % 2 == 0 else lo + 1  # RND_CONV: ties to even


def _signed(code: int, width: int) -> int:
    code %= 1 << width
    return code - (1 << width) if code >= 1 << (width - 1) else code


def oracle_assign(value: Fraction, dst: FixedType) -> tuple[int, bool]:
    """Code of ``dst`` for the exact ``value`` and whether the overflow mode fired."""
    w, n = dst.width, dst.sat_bits
    scaled = value * Fraction(2) ** dst.frac_bits
    code = _round(scaled, dst.rounding)
    negative = code < 0
    sym = dst.overflow is Overflow.SAT_SYM and dst.signed and code == dst.min_raw
    over, under = code > dst.max_raw, code < dst.min_raw or sym
    wrapped = _signed(code, w) if dst.signed else code % (1 << w)
    if not (over or under):
        return code, False
    mode = dst.overflow
    if mode is Overflow.SAT_ZERO:
        return 0, True
    if mode in (Overflow.SAT, Overflow.SAT_SYM):
        if over:
            return dst.max_raw, True
        if mode is Overflow.SAT_SYM and dst.signed:
            # the headers set the LSB of the minimum code: -max, or -1 for a 1-bit format
            return (-dst.max_raw if w > 1 else -1), True
        return dst.min_raw, True
    if mode is Overflow.WRAP:
        if n == 0:
            return wrapped, True
        low = code % (1 << (w - n))
        if not dst.signed:
            return (1 << w) - (1 << (w - n)) + low, True
        if negative:
            return -(1 << (w - 1)) + low, True
        return (1 << (w - 1)) - (1 << (w - n)) + low, True
    # AP_WRAP_SM: wrap, then complement (v -> -v - 1) to keep the sign of the source
    if n == 0:
        ld = (math.floor(scaled) >> w) & 1
        ro = 1 if wrapped < 0 else 0
        return (wrapped if ld == ro else -wrapped - 1), True
    ro = 1 if wrapped < 0 else 0
    if n == 1:
        v = wrapped if int(negative) == ro else -wrapped - 1
        return v, True
    lno = (code >> (w - n)) & 1
    v = -wrapped - 1 if lno == int(negative) else wrapped
    low = v % (1 << (w - n))
    if negative:
        return -(1 << (w - 1)) + low, True
    return (1 << (w - 1)) - (1 << (w - n)) + low, True


def value_of(code: int, fmt: FixedType) -> Fraction:
    return Fraction(code) * Fraction(2) ** -fmt.frac_bits


@st.composite
def formats(draw, max_width: int = 64, signed: bool | None = None) -> FixedType:
    """Any legal format: W in [1, max_width], I from below 0 to above W, every mode, N bits."""
    width = draw(st.one_of(st.integers(1, 4), st.integers(1, max_width)))
    int_bits = draw(st.one_of(st.integers(-6, width + 6), st.sampled_from([0, 1, width])))
    sgn = draw(st.booleans()) if signed is None else signed
    overflow = draw(st.sampled_from([o for o in Overflow if sgn or o is not Overflow.WRAP_SM]))
    sat_bits = draw(st.integers(0, width)) if draw(st.booleans()) else 0
    return FixedType(
        width, int_bits, sgn, draw(st.sampled_from(list(Rounding))), overflow, sat_bits
    )


def codes(fmt: FixedType):
    """Codes of ``fmt`` with the range edges and small values emphasised."""
    edges = [fmt.min_raw, fmt.max_raw, 0, fmt.min_raw + 1, fmt.max_raw - 1]
    edges = [e for e in edges if fmt.min_raw <= e <= fmt.max_raw]
    return st.one_of(
        st.sampled_from(edges),
        st.integers(fmt.min_raw, fmt.max_raw),
        st.integers(max(fmt.min_raw, -64), min(fmt.max_raw, 64)),
    )
