"""Full-precision ``+ - *`` of ``ap_fixed`` values (result formats of the headers' ``RType``)."""

from __future__ import annotations

import functools

import numpy as np

from vitaccel.errors import UsageError
from vitaccel.fixed._cast import as_raw
from vitaccel.fixed._format import MAX_WIDTH, FixedType

__all__ = ["add_type", "sub_type", "mul_type", "sum_type", "fixed_add", "fixed_sub", "fixed_mul"]


def _make(width: int, int_bits: int, signed: bool, op: str, a: FixedType, b: FixedType):
    if width > MAX_WIDTH:
        kind = "ap_fixed" if signed else "ap_ufixed"
        raise UsageError(
            f"{op}({a}, {b}): the exact result {kind}<{width},{int_bits}> is wider than "
            f"{MAX_WIDTH} bits; cast an operand to a narrower format first"
        )
    return _plain(width, int_bits, signed)


@functools.lru_cache(maxsize=4096)
def _plain(width: int, int_bits: int, signed: bool) -> FixedType:
    # result formats repeat across calls; a frozen FixedType can be shared
    return FixedType(width, int_bits, signed)


def _plus_int_bits(a: FixedType, b: FixedType) -> int:
    # A signed operand mixed with an unsigned one needs an extra integer bit for the unsigned.
    a_i = a.int_bits + (b.signed and not a.signed)
    b_i = b.int_bits + (a.signed and not b.signed)
    return max(a_i, b_i) + 1


def add_type(a: FixedType, b: FixedType) -> FixedType:
    """Result format of ``a + b``: ``I = max(I_a', I_b') + 1``, ``F = max(F_a, F_b)``.

    ``I_x'`` is ``I_x`` plus one when ``x`` is unsigned and the other operand is signed; the
    result is signed if either operand is (``AP_TRN``/``AP_WRAP``, as the headers define it).
    """
    i = _plus_int_bits(a, b)
    return _make(i + max(a.frac_bits, b.frac_bits), i, a.signed or b.signed, "add_type", a, b)


def sub_type(a: FixedType, b: FixedType) -> FixedType:
    """Result format of ``a - b``: the widths of :func:`add_type`, always signed."""
    i = _plus_int_bits(a, b)
    return _make(i + max(a.frac_bits, b.frac_bits), i, True, "sub_type", a, b)


def mul_type(a: FixedType, b: FixedType) -> FixedType:
    """Result format of ``a * b``: ``W = W_a + W_b``, ``I = I_a + I_b``, signed if either is."""
    return _make(a.width + b.width, a.int_bits + b.int_bits, a.signed or b.signed, "mul_type", a, b)


def _aligned(raw: np.ndarray, fmt: FixedType, frac_bits: int, wide: bool) -> np.ndarray:
    shift = frac_bits - fmt.frac_bits
    if wide:
        return np.array([int(v) << shift for v in raw.ravel().tolist()], dtype=object).reshape(
            raw.shape
        )
    return raw.astype(np.int64) << shift


def _finish(values: np.ndarray, rt: FixedType) -> np.ndarray:
    if rt.fits_int64 and values.dtype == object:
        return np.array(values.tolist(), dtype=np.int64).reshape(values.shape)
    return values


def _add_sub(a_raw, a_t, b_raw, b_t, rt: FixedType, sign: int, op: str):
    a = as_raw(a_raw, a_t, f"{op} a_raw")
    b = as_raw(b_raw, b_t, f"{op} b_raw")
    a, b = np.broadcast_arrays(a, b)
    # int64 arithmetic is exact modulo 2**64 and the true result fits the result format.
    wide = not (rt.fits_int64 and a_t.fits_int64 and b_t.fits_int64)
    fa = _aligned(a, a_t, rt.frac_bits, wide)
    fb = _aligned(b, b_t, rt.frac_bits, wide)
    return _finish(fa + fb if sign > 0 else fa - fb, rt), rt


def fixed_add(a_raw: object, a_t: FixedType, b_raw: object, b_t: FixedType):
    """Exact ``a + b`` (broadcasting); returns ``(raw, add_type(a_t, b_t))``."""
    return _add_sub(a_raw, a_t, b_raw, b_t, add_type(a_t, b_t), 1, "fixed_add")


def fixed_sub(a_raw: object, a_t: FixedType, b_raw: object, b_t: FixedType):
    """Exact ``a - b`` (broadcasting); returns ``(raw, sub_type(a_t, b_t))``."""
    return _add_sub(a_raw, a_t, b_raw, b_t, sub_type(a_t, b_t), -1, "fixed_sub")


def fixed_mul(a_raw: object, a_t: FixedType, b_raw: object, b_t: FixedType):
    """Exact ``a * b`` (broadcasting); returns ``(raw, mul_type(a_t, b_t))``.

    The result code is ``a_raw * b_raw`` (F = F_a + F_b).
    """
    rt = mul_type(a_t, b_t)
    a = as_raw(a_raw, a_t, "fixed_mul a_raw")
    b = as_raw(b_raw, b_t, "fixed_mul b_raw")
    a, b = np.broadcast_arrays(a, b)
    if rt.fits_int64 and a.dtype != object and b.dtype != object:
        return a.astype(np.int64) * b.astype(np.int64), rt
    pairs = zip(a.ravel().tolist(), b.ravel().tolist(), strict=True)
    prod = np.array([int(x) * int(y) for x, y in pairs], dtype=object).reshape(a.shape)
    return _finish(prod, rt), rt


def sum_type(term_t: FixedType, terms: int, init_t: FixedType | None = None
                       ) -> FixedType:
    """The narrowest format that holds ``init + sum of terms`` exactly (no rounding, no overflow).

    Parameters
    ----------
    term_t : FixedType
        Format of each added term (a product).
    terms : int
        Number of terms added.
    init_t : FixedType, optional
        Format of the initial value (the bias), if any.
    """
    parts = [term_t] + ([init_t] if init_t is not None else [])
    signed = any(p.signed for p in parts)
    growth = (terms - 1 + len(parts) - 1).bit_length()
    int_bits = max(p.int_bits + int(signed and not p.signed) for p in parts) + growth
    frac_bits = max(p.frac_bits for p in parts)
    if int_bits + frac_bits > 64:
        raise UsageError(
            f"a full-precision accumulator of {terms} terms of {term_t} needs "
            f"{int_bits + frac_bits} bits (over 64): give the accumulator role a format"
        )
    return FixedType(int_bits + frac_bits, int_bits, signed)
