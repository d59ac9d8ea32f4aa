"""Small integer building blocks shared by the nonlinear units (assignment, normalisation).

Everything works on int64 codes; the formats involved are checked to fit.
"""

from __future__ import annotations

import numpy as np

from vitaccel.errors import UsageError
from vitaccel.fixed import FixedType, add_type, fixed_add, fixed_mul
from vitaccel.fixed._kernels import add_assign as add_assign_kernel
from vitaccel.fixed._kernels import cast_params, code_range, pick

__all__ = [
    "add_assign",
    "assign",
    "cast_counted",
    "count",
    "div_assign",
    "int_codes",
    "leading_one",
    "mul_assign",
    "produced_codes",
    "scale_pow2",
    "shift_floor",
]

# Codes of the intermediate register a normalising shifter writes: a 62-bit signed word.
_SHIFT_WORD_BITS = 62


def count(overflow: dict[str, int] | None, role: str, n: int) -> None:
    """Add ``n`` overflowed values under ``role`` to the caller's overflow dict (if any)."""
    if overflow is not None and n:
        overflow[role] = overflow.get(role, 0) + int(n)


def cast_counted(dst: FixedType, raw: np.ndarray, src: FixedType,
                 overflow: dict[str, int] | None, role: str) -> np.ndarray:
    """``dst x = (src) raw``, counting overflowed values under ``role``: the codes as
    :meth:`FixedType.cast` returns them (object codes for a 64-bit unsigned ``dst``)."""
    out, n = dst.cast(np.asarray(raw), src, return_overflow=True)
    count(overflow, role, n)
    return out


def assign(
    dst: FixedType,
    raw: np.ndarray,
    src: FixedType,
    overflow: dict[str, int] | None,
    role: str,
) -> np.ndarray:
    """``dst x = (src) raw``: ap_fixed assignment, counting overflowed values under ``role``."""
    return np.asarray(cast_counted(dst, raw, src, overflow, role), dtype=np.int64)


def add_assign(
    dst: FixedType,
    a_raw: np.ndarray,
    a_t: FixedType,
    b_raw: np.ndarray,
    b_t: FixedType,
    overflow: dict[str, int] | None,
    role: str,
) -> np.ndarray:
    """``dst x = a + b``: the exact sum assigned to ``dst`` (C++ ``dst x = a + b;``).

    One compiled pass when the exact sum fits 62 bits and the shapes agree, else the exact
    vectorised sum of the core and one assignment (same bits).
    """
    a, b = int_codes(a_raw, a_t, f"{role} a"), int_codes(b_raw, b_t, f"{role} b")
    sum_t = add_type(a_t, b_t)
    if a.shape != b.shape or sum_t.width > _SHIFT_WORD_BITS or a.size < 1 << 12:
        return assign(dst, *fixed_add(a, a_t, b, b_t), overflow, role)
    c = np.array(cast_params(sum_t.frac_bits - dst.frac_bits, sum_t.width, dst), np.int64)
    out, flags = pick(add_assign_kernel, a.size)(
        np.ascontiguousarray(a).ravel(), sum_t.frac_bits - a_t.frac_bits,
        np.ascontiguousarray(b).ravel(), sum_t.frac_bits - b_t.frac_bits, c)
    count(overflow, role, int(np.count_nonzero(flags)))
    return out.reshape(a.shape)


def mul_assign(
    dst: FixedType,
    a_raw: np.ndarray,
    a_t: FixedType,
    b_raw: np.ndarray,
    b_t: FixedType,
    overflow: dict[str, int] | None,
    role: str,
) -> np.ndarray:
    """``dst x = a * b``: the exact product assigned to ``dst`` (C++ ``dst x = a * b;``).

    A product wider than 64 bits (e.g. a wide accumulator times a constant) is reduced
    exactly before the assignment: it keeps ``F_dst + 1`` fractional bits plus a sticky bit
    (OR of the bits below), which decides every rounding mode as the full product would.
    """
    if a_t.width + b_t.width <= 64:
        return assign(dst, *fixed_mul(a_raw, a_t, b_raw, b_t), overflow, role)
    int_bits = a_t.int_bits + b_t.int_bits
    shift = a_t.frac_bits + b_t.frac_bits - (dst.frac_bits + 1)
    red_t = FixedType(int_bits + dst.frac_bits + 2, int_bits, a_t.signed or b_t.signed)
    if shift < 1 or not red_t.fits_int64:  # a 64-bit unsigned code does not fit int64
        raise UsageError(
            f"{role}: the product of {a_t} and {b_t} assigned to {dst} needs more than 64 "
            "bits; use narrower formats"
        )
    a, b = np.broadcast_arrays(np.asarray(a_raw, dtype=np.int64), np.asarray(b_raw, np.int64))
    mask = (1 << shift) - 1
    reduced = [
        ((p >> shift) << 1) | ((p & mask) != 0)
        for p in (int(x) * int(y) for x, y in zip(a.ravel().tolist(), b.ravel().tolist(),
                                                   strict=True))
    ]
    red = np.array(reduced, dtype=np.int64).reshape(a.shape)
    return assign(dst, red, red_t, overflow, role)


def div_assign(
    dst: FixedType,
    num_raw: np.ndarray,
    num_t: FixedType,
    divisor: int,
    overflow: dict[str, int] | None,
    role: str,
) -> np.ndarray:
    """``dst x = num / divisor`` with the exact quotient rounded by ``dst``'s rounding mode.

    Integer datapath (a divider by a constant): with k = F_dst + 1 - F_num,
    ``N = num << max(k, 0)``, ``M = divisor << max(-k, 0)``, ``q = floor(N / M)``,
    ``sticky = (N != q * M)``; the code ``2q + sticky`` (F_dst + 2 fractional bits) is then
    assigned to ``dst``, which rounds exactly as the true quotient would.
    """
    if divisor < 1:
        raise UsageError(f"{role}: divisor must be a positive integer, got {divisor}")
    k = dst.frac_bits + 1 - num_t.frac_bits
    num = np.asarray(num_raw, dtype=np.int64)
    lead = num_t.width + max(k, 0)
    den = divisor << max(-k, 0)
    int_bits = num_t.int_bits + (not num_t.signed)
    red_t = FixedType(int_bits + dst.frac_bits + 2, int_bits, True)
    if lead > 62 or den >= 2**62 or red_t.width > 64:
        raise UsageError(
            f"{role}: dividing {num_t} by {divisor} into {dst} needs more than 62 bits; "
            "use narrower formats"
        )
    n = num << max(k, 0)
    q = np.floor_divide(n, den)
    reduced = (q << 1) | (n != q * den)
    return assign(dst, reduced, red_t, overflow, role)


def int_codes(raw: object, fmt: FixedType, name: str) -> np.ndarray:
    """Validate ``raw`` as int64 codes of ``fmt`` (integer dtype, inside the code range)."""
    a = np.asarray(raw)
    if a.dtype.kind not in "iu":
        raise UsageError(f"{name}: expected integer codes of {fmt}, got dtype {a.dtype}")
    if not fmt.fits_int64 or fmt.width > 63:
        raise UsageError(f"{name}: format {fmt} is wider than 63 bits; use a narrower format")
    a = a.astype(np.int64, copy=False)
    lo, hi = code_range(a) if a.size else (0, 0)
    if lo < fmt.min_raw or hi > fmt.max_raw:
        raise UsageError(
            f"{name}: codes must lie in [{fmt.min_raw}, {fmt.max_raw}] for {fmt}, "
            f"got values in [{lo}, {hi}]"
        )
    return a


def produced_codes(raw: np.ndarray, fmt: FixedType, name: str) -> np.ndarray:
    """Codes that a unit's own assignment to ``fmt`` has just made, as :func:`int_codes`
    returns them: int64 codes of a format of at most 63 bits pass as they are (they are in
    range by construction), anything else is validated (or refused) by :func:`int_codes`."""
    if raw.dtype == np.int64 and fmt.width <= 63:
        return raw
    return int_codes(raw, fmt, name)


def leading_one(v: np.ndarray) -> np.ndarray:
    """Position of the leading one of positive int64 codes: ``floor(log2(v))`` (exact).

    The hardware equivalent is a count-leading-zeros: ``e = W - 1 - clz(v)``.
    """
    v = np.asarray(v, dtype=np.int64)
    # int64 codes are below 2**63, so e <= 62 even where float64 rounds v up to 2**63
    e = np.minimum(np.frexp(v.astype(np.float64))[1].astype(np.int64) - 1, 62)
    # float64 rounding can push a value just below a power of two up by one octave.
    e = np.where((np.int64(1) << np.clip(e, 0, 62)) > v, e - 1, e)
    e = np.where((e < 62) & ((np.int64(1) << np.clip(e + 1, 0, 62)) <= v), e + 1, e)
    return e


def shift_floor(v: np.ndarray, k: np.ndarray) -> np.ndarray:
    """``floor(v * 2**k)`` per element (left shift for k >= 0, arithmetic right shift else).

    Left shifts saturate at +-2**61 (a 62-bit shifter word): callers assign the result to a
    format of at most 60 bits, so a saturated word is always an overflow of that format.
    """
    v = np.asarray(v, dtype=np.int64)
    k = np.broadcast_to(np.asarray(k, dtype=np.int64), v.shape)
    right = np.asarray(v >> np.clip(-k, 0, 63))
    limit = np.int64(1) << (_SHIFT_WORD_BITS - 1)
    kl = np.clip(k, 0, 62)
    safe = np.abs(v) < (limit >> kl)
    left = np.where(safe, v << kl, np.where(v < 0, -limit, limit))
    left = np.where(v == 0, 0, left)
    return np.where(k >= 0, left, right)


def scale_pow2(
    raw: np.ndarray,
    raw_t: FixedType,
    k: np.ndarray,
    dst: FixedType,
    overflow: dict[str, int] | None,
    role: str,
) -> np.ndarray:
    """Assign ``value(raw) * 2**k`` (per-element integer k) to ``dst`` through a barrel shifter.

    The shifter truncates (floor) to ``dst``'s fractional bits, whatever ``dst``'s rounding
    mode; ``dst``'s overflow mode then applies. ``dst`` must be at most 60 bits wide. The
    shifted word (saturated at +-2**61 by :func:`shift_floor`) is read as a 64-bit word with
    ``dst``'s fractional bits, as the C++ does:
    ``dst = ap_fixed<64, 64 - F_dst>(shift_floor(raw, k + F_dst - F_raw))``.
    """
    if dst.width > _SHIFT_WORD_BITS - 2:
        raise UsageError(f"{role}: format {dst} is wider than 60 bits; use a narrower format")
    word = shift_floor(raw, np.asarray(k, dtype=np.int64) + (dst.frac_bits - raw_t.frac_bits))
    word_t = FixedType(64, 64 - dst.frac_bits, True)
    return assign(dst, word, word_t, overflow, role)
