"""Dyadic constants (m / 2**k) and requantization products for the integer-only variants.

An integer result ``v`` whose real scale ``sigma`` is not a power of two is requantized as in
I-ViT: ``sigma`` is rounded once, at build time, to a constant ``C = m * 2**-k`` with ``bits``
significant bits (``m`` round-half-up of ``sigma * 2**k``, ``2**(bits-1) <= |m| < 2**bits``),
held in ``ap_ufixed<bits, bits-k>`` (``ap_fixed<bits+1, bits+1-k>`` when negative). The
product ``v * C`` is exact and assigned once to the destination format, so the destination's
rounding mode rounds it (AP_TRN: floor; AP_RND: half up; ...) and its overflow mode applies::

    dst_t y = (v_t) v * (const_t) C;      // C++: one full-precision product, one assignment
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np

from vitaccel.errors import UsageError
from vitaccel.fixed import FixedType
from vitaccel.units._ops import assign, mul_assign

__all__ = ["dyadic_constant", "dyadic_sqrt", "requant", "integer_type"]

_SPLIT = 32
_LOW_MASK = (1 << _SPLIT) - 1


def _check_bits(bits: int) -> None:
    if isinstance(bits, bool) or not isinstance(bits, int | np.integer) or not 2 <= bits <= 40:
        raise UsageError(f"scale_bits: expected an integer in [2, 40], got {bits!r}")


def _constant(m: int, k: int, bits: int, negative: bool) -> tuple[int, FixedType]:
    if m == 1 << bits:  # rounding carried into a new leading bit
        m, k = m >> 1, k - 1
    width = bits + negative
    return (-m if negative else m), FixedType(width, width - k, negative)


def dyadic_constant(value: Fraction, bits: int) -> tuple[int, FixedType]:
    """``value`` rounded (half up in magnitude) to ``bits`` significant bits.

    Returns
    -------
    code : int
        ``m`` (negative for a negative value).
    fmt : FixedType
        ``ap_ufixed<bits, bits-k>`` or ``ap_fixed<bits+1, bits+1-k>``; ``code * 2**-k`` is C.
    """
    _check_bits(bits)
    value = Fraction(value)
    if value == 0:
        raise UsageError("dyadic constant: the scale to requantize by is zero")
    mag = abs(value)
    e = mag.numerator.bit_length() - mag.denominator.bit_length()
    if Fraction(2) ** e > mag:  # e is floor(log2(mag)) or one above it
        e -= 1
    k = bits - 1 - e
    m = math.floor(mag * Fraction(2) ** k + Fraction(1, 2))
    return _constant(m, k, bits, value < 0)


def dyadic_sqrt(n: int, exp2: int, bits: int) -> tuple[int, FixedType]:
    """``sqrt(n) * 2**exp2`` (integer n >= 1) rounded as :func:`dyadic_constant` rounds, exactly:
    ``round-half-up(sqrt(R)) = (isqrt(floor(4 R)) + 1) // 2`` with ``R = n 4**j``."""
    _check_bits(bits)
    if n < 1:
        raise UsageError(f"dyadic constant: sqrt needs n >= 1, got {n}")
    e = (n.bit_length() - 1) // 2 + exp2  # floor(log2(sqrt(n) * 2**exp2))
    k = bits - 1 - e
    four_r = Fraction(4 * n) * Fraction(4) ** (k + exp2)
    m = (math.isqrt(math.floor(four_r)) + 1) // 2
    return _constant(m, k, bits, False)


def integer_type(bound: int) -> FixedType:
    """``ap_int<W>`` holding every integer of magnitude <= ``bound``."""
    return FixedType.integer(max(2, int(bound).bit_length() + 1))


def requant(
    v: np.ndarray,
    v_t: FixedType,
    c_raw: int,
    c_t: FixedType,
    dst: FixedType,
    overflow: dict[str, int] | None,
    role: str,
) -> np.ndarray:
    """``dst y = v * C``: exact product of ``v`` (codes of ``v_t``) and the constant, one
    assignment to ``dst`` (rounding/overflow of ``dst``, overflows counted under ``role``).

    Products wider than 64 bits are reduced exactly in int64 (32-bit split of ``v``) to
    ``F_dst + 1`` fractional bits plus a sticky bit, which every rounding mode decides as the
    full product would.
    """
    v = np.asarray(v, dtype=np.int64)
    if v_t.width + c_t.width <= 64:
        return mul_assign(dst, v, v_t, np.int64(c_raw), c_t, overflow, role)
    int_bits = v_t.int_bits + c_t.int_bits
    shift = v_t.frac_bits + c_t.frac_bits - (dst.frac_bits + 1)
    red_t = FixedType(int_bits + dst.frac_bits + 2, int_bits, True)
    if shift < _SPLIT or red_t.width > 64 or v_t.width - _SPLIT + c_t.width > 62:
        return mul_assign(dst, v, v_t, np.int64(c_raw), c_t, overflow, role)
    m = np.int64(c_raw)
    lo = (v & _LOW_MASK) * m  # v = hi 2**32 + (v & mask); |lo| < 2**(32 + W_c)
    hi = (v >> _SPLIT) * m + (lo >> _SPLIT)  # product = hi 2**32 + (lo & mask), exactly
    rest = shift - _SPLIT
    sticky = ((lo & _LOW_MASK) != 0) | ((hi & ((1 << rest) - 1)) != 0)
    reduced = ((hi >> rest) << 1) | sticky
    return assign(dst, reduced, red_t, overflow, role)
