"""``ap_fixed`` assignment (rounding, then overflow handling) on integer codes.

The rules follow ``ap_fixed_base::operator=`` and ``ap_fixed_base(double)`` of the Xilinx
headers. With ``shift = F_src - F_dst``:

* ``shift > 0``: ``T = floor(raw / 2**shift)``; ``qb`` is the first dropped bit and ``r`` the
  OR of the bits below it (two's complement, sign-extended); the rounding mode adds an
  increment of 0 or 1 to ``T`` giving the rounded code ``R``.
* ``shift <= 0``: ``R = raw * 2**-shift`` (no rounding).
* ``R`` outside ``[min_raw, max_raw]`` is an overflow (``R > max``) or underflow (``R < min``);
  the overflow mode then rewrites the low ``W`` bits of ``R``. ``AP_WRAP_SM`` consults ``lD``,
  the source bit just above the destination's MSB (0 when that position lies outside the
  source word), exactly as the headers do.

Codes are numpy int64 where the formats allow (vectorised), Python ints otherwise.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from vitaccel.errors import UsageError
from vitaccel.fixed._format import FixedType, Overflow, Rounding
from vitaccel.fixed._kernels import (
    cast_many,
    cast_params,
    cast_shift,
    cast_trn_wrap,
    code_range,
    pick,
)
from vitaccel.fixed._specialise import Fused, cast_at, constants_or, flat_params

__all__ = ["as_raw", "cast_raw", "quantize_float", "cast_int_scalar"]

_MAX_I64 = (1 << 63) - 1
# Source word of a double as the headers see it: a 54-bit signed mantissa.
_DOUBLE_SRC_WIDTH = 54


def _i64(value: int) -> np.int64:
    """Python int -> int64 with the same low 64 bits (two's complement)."""
    value &= (1 << 64) - 1
    return np.int64(value - (1 << 64) if value >> 63 else value)


def as_raw(raw: object, fmt: FixedType, name: str) -> np.ndarray:
    """Validate integer codes of ``fmt``; int64 array (object array if ``fmt`` is 64-bit unsigned).

    Raises
    ------
    UsageError
        If the codes are not integers or lie outside ``fmt``'s code range.
    """
    a = np.asarray(raw)
    if a.dtype == object:
        flat = a.ravel().tolist()
        if not all(isinstance(v, int | np.integer) and not isinstance(v, bool) for v in flat):
            raise UsageError(f"{name}: expected integer codes of {fmt}, got non-integer objects")
        lo = min((int(v) for v in flat), default=0)
        hi = max((int(v) for v in flat), default=0)
    elif a.dtype.kind in "iu":
        lo, hi = code_range(a) if a.size else (0, 0)
    else:
        raise UsageError(f"{name}: expected integer codes of {fmt}, got dtype {a.dtype}")
    if lo < fmt.min_raw or hi > fmt.max_raw:
        raise UsageError(
            f"{name}: codes must lie in [{fmt.min_raw}, {fmt.max_raw}] for {fmt}, "
            f"got values in [{lo}, {hi}]"
        )
    if fmt.fits_int64:
        return a.astype(np.int64, copy=False)
    return np.array([int(v) for v in a.ravel().tolist()], dtype=object).reshape(a.shape)


# ------------------------------------------------------------------------- scalar (wide)
def _increment_scalar(rounding: Rounding, t: int, qb: bool, r: bool, neg: bool) -> int:
    if rounding is Rounding.TRN:
        return 0
    if rounding is Rounding.TRN_ZERO:
        return int(neg and (qb or r))
    if rounding is Rounding.RND:
        return int(qb)
    if rounding is Rounding.RND_ZERO:
        return int(qb and (neg or r))
    if rounding is Rounding.RND_MIN_INF:
        return int(qb and r)
    if rounding is Rounding.RND_INF:
        return int(qb and (not neg or r))
    return int(qb and (bool(t & 1) or r))  # RND_CONV


def cast_int_scalar(raw: int, shift: int, src_width: int, dst: FixedType) -> tuple[int, bool]:
    """Assign one code (Python int) with ``shift = F_src - F_dst``; returns (code, overflowed)."""
    w = dst.width
    if shift > 0:
        t = raw >> shift
        qb = bool((raw >> (shift - 1)) & 1)
        r = (raw & ((1 << (shift - 1)) - 1)) != 0
        big = t + _increment_scalar(dst.rounding, t, qb, r, raw < 0)
    else:
        big = raw << -shift
    pos1 = shift + w
    ld = bool((raw >> pos1) & 1) if 0 <= pos1 < src_width else False
    sign = big < 0
    hi, lo = big > dst.max_raw, big < dst.min_raw
    mask_w = (1 << w) - 1
    u = big & mask_w
    if dst.overflow is Overflow.SAT_SYM and dst.signed:
        lo = lo or (sign and (u & (mask_w >> 1)) == 0)
    if hi or lo:
        u = _overflow_scalar(u, hi, sign, ld, dst)
    if dst.signed and u >> (w - 1):
        u -= 1 << w
    return u, hi or lo


def _overflow_scalar(u: int, hi: bool, sign: bool, ld: bool, dst: FixedType) -> int:
    w, n, mode = dst.width, dst.sat_bits, dst.overflow
    mask_w = (1 << w) - 1
    top = 1 << (w - 1)
    mask_n = ((1 << (n - 1)) - 1) << (w - n) if n > 1 else 0  # bits W-N .. W-2
    if mode is Overflow.SAT_ZERO:
        return 0
    if mode in (Overflow.SAT, Overflow.SAT_SYM):
        if not dst.signed:
            return mask_w if hi else 0
        if hi:
            return top - 1
        return top | 1 if mode is Overflow.SAT_SYM else top
    if mode is Overflow.WRAP:
        if n == 0:
            return u
        if not dst.signed:
            return u | (((1 << n) - 1) << (w - n))
        u = (u & ~top) | (top if sign else 0)
        return (u & ~mask_n) | (0 if sign else mask_n)
    ro = bool(u & top)  # AP_WRAP_SM
    if n == 0:
        return ((u ^ mask_w) & ~top) | (top if ld else 0) if ld != ro else u
    if n == 1:
        if sign != ro:
            u ^= mask_w
    else:
        if bool((u >> (w - n)) & 1) == sign:
            u ^= mask_w
        u = (u & ~mask_n) | (0 if sign else mask_n)
    return (u & ~top) | (top if sign else 0)


# ------------------------------------------------------------------------- vectorised
def _increment(rounding: Rounding, t, qb, r, neg):
    if rounding is Rounding.TRN:
        return np.zeros_like(qb)
    if rounding is Rounding.TRN_ZERO:
        return neg & (qb | r)
    if rounding is Rounding.RND:
        return qb
    if rounding is Rounding.RND_ZERO:
        return qb & (neg | r)
    if rounding is Rounding.RND_MIN_INF:
        return qb & r
    if rounding is Rounding.RND_INF:
        return qb & (~neg | r)
    return qb & (((t & 1) != 0) | r)  # RND_CONV


def _set_top(v: np.ndarray, top: np.int64, sign: np.ndarray) -> np.ndarray:
    return np.where(sign, v | top, v & ~top)


def _cast_int64(
    raw: np.ndarray, shift: np.ndarray, src_width: int, dst: FixedType
) -> tuple[np.ndarray, np.ndarray]:
    """Vectorised assignment on int64 codes; ``shift`` (int64, same shape) = F_src - F_dst."""
    w = dst.width
    right = shift > 0
    t = raw >> np.clip(shift, 0, 63)
    qb = (((raw >> np.clip(shift - 1, 0, 63)) & 1) != 0) & right
    nb = np.clip(shift - 1, 0, 64)  # number of bits below qb
    low_mask = np.where(nb >= 63, np.int64(_MAX_I64), (np.int64(1) << np.minimum(nb, 62)) - 1)
    r = np.where(nb >= 64, raw != 0, (raw & low_mask) != 0) & right
    neg = raw < 0
    big = t + _increment(dst.rounding, t, qb, r, neg).astype(np.int64)
    mask_w = _i64((1 << w) - 1)
    # Left shifts (shift <= 0): compare against the range scaled down instead of shifting up.
    s = np.clip(-shift, 0, 64)
    hi_bound = np.int64(dst.max_raw) >> np.minimum(s, 63)
    lo_bound = np.where(s <= w - 1, np.int64(dst.min_raw) >> np.minimum(s, 63), 0)
    u_left = np.where(s < 64, raw << np.minimum(s, 63), 0) & mask_w
    hi = np.where(right, big > dst.max_raw, raw > hi_bound)
    lo = np.where(right, big < dst.min_raw, raw < lo_bound)
    u = np.where(right, big & mask_w, u_left)
    sign = big < 0
    pos1 = shift + w
    ld = (pos1 >= 0) & (pos1 < src_width) & (((raw >> np.clip(pos1, 0, 63)) & 1) != 0)
    top = _i64(1 << (w - 1))
    mode, n = dst.overflow, dst.sat_bits
    if mode is Overflow.SAT_SYM and dst.signed:
        lo = lo | (sign & ((u & _i64((1 << (w - 1)) - 1)) == 0))
    ovf = hi | lo
    if mode is Overflow.SAT_ZERO:
        fixed = np.zeros_like(u)
    elif mode in (Overflow.SAT, Overflow.SAT_SYM):
        if dst.signed:
            lo_code = top | 1 if mode is Overflow.SAT_SYM else top
            fixed = np.where(hi, _i64((1 << (w - 1)) - 1), lo_code)
        else:
            fixed = np.where(hi, mask_w, np.int64(0))
    else:
        mask_n = _i64(((1 << (n - 1)) - 1) << (w - n)) if n > 1 else np.int64(0)
        if mode is Overflow.WRAP:
            if n == 0:
                fixed = u
            elif not dst.signed:
                fixed = u | _i64(((1 << n) - 1) << (w - n))
            else:
                fixed = _set_top(u, top, sign)
                fixed = np.where(sign, fixed & ~mask_n, fixed | mask_n)
        else:  # AP_WRAP_SM
            ro = (u & top) != 0
            if n == 0:
                fixed = np.where(ld != ro, _set_top(u ^ mask_w, top, ld), u)
            else:
                if n == 1:
                    fixed = np.where(sign != ro, u ^ mask_w, u)
                else:
                    lno = ((u >> (w - n)) & 1) != 0
                    fixed = np.where(lno == sign, u ^ mask_w, u)
                    fixed = np.where(sign, fixed & ~mask_n, fixed | mask_n)
                fixed = _set_top(fixed, top, sign)
    out = np.where(ovf, fixed, u)
    if dst.signed and w < 64:
        out = out - (((out >> (w - 1)) & 1) << w)
    return out.astype(np.int64, copy=False), ovf


def _cast_objects(
    raw: np.ndarray, shift: np.ndarray, src_width: int, dst: FixedType
) -> tuple[np.ndarray, np.ndarray]:
    flat_raw = raw.ravel().tolist()
    flat_shift = np.broadcast_to(shift, raw.shape).ravel().tolist()
    pairs = [
        cast_int_scalar(int(v), int(s), src_width, dst)
        for v, s in zip(flat_raw, flat_shift, strict=True)
    ]
    dtype = np.int64 if dst.fits_int64 else object
    out = np.array([p[0] for p in pairs], dtype=dtype).reshape(raw.shape)
    ovf = np.array([p[1] for p in pairs], dtype=bool).reshape(raw.shape)
    return out, ovf


_COMPILED_MIN_SIZE = 1 << 12
"""Arrays at least this large are cast by the compiled :func:`cast_one` kernel (the same
assignment, proven equal by the tests), smaller ones by the vectorised numpy code."""


def lowest_kept(fmt: FixedType) -> int:
    """The smallest code an assignment to ``fmt`` keeps as it is (``AP_SAT_SYM`` rewrites
    the most negative code of a signed format)."""
    return fmt.min_raw + 1 if fmt.overflow is Overflow.SAT_SYM and fmt.signed else fmt.min_raw


def is_identity(src: FixedType, dst: FixedType) -> bool:
    """True when assigning ``src`` to ``dst`` keeps every code: same scale, range inside."""
    return (src.frac_bits == dst.frac_bits and lowest_kept(dst) <= src.min_raw
            and src.max_raw <= dst.max_raw)


def cast_raw(raw: object, src: FixedType, dst: FixedType, copy: bool = True,
             ) -> tuple[np.ndarray, np.ndarray]:
    """Assign codes of ``src`` to ``dst``; returns (codes, per-element overflow mask).

    ``copy=False``: an identity assignment may return the validated int64 ``raw`` itself.
    """
    if not isinstance(src, FixedType):
        raise UsageError(f"cast: src must be a FixedType, got {src!r}")
    a = as_raw(raw, src, "cast raw")
    shift = np.int64(src.frac_bits - dst.frac_bits)
    if src.fits_int64 and dst.fits_int64:
        if is_identity(src, dst):
            return (a.copy() if copy else a), np.zeros(a.shape, bool)
        if a.size >= _COMPILED_MIN_SIZE:  # one compiled pass instead of numpy temporaries
            flat = np.ascontiguousarray(a).ravel()
            if (dst.rounding is Rounding.TRN and dst.overflow is Overflow.WRAP
                    and dst.sat_bits == 0 and (shift >= 0 or src.width - shift <= 63)):
                out, flags = pick(cast_trn_wrap, a.size)(
                    flat, int(min(shift, 63)), dst.width, dst.signed, dst.min_raw, dst.max_raw)
                return out.reshape(a.shape), flags.reshape(a.shape)
            params = np.array(cast_params(int(shift), src.width, dst), dtype=np.int64)
            out, flags = pick(cast_many, a.size)(flat, params)
            return out.reshape(a.shape), flags.reshape(a.shape)
        return _cast_int64(a, np.full(a.shape, shift), src.width, dst)
    return _cast_objects(a, np.full(a.shape, shift), src.width, dst)


def quantize_float(x: object, dst: FixedType) -> tuple[np.ndarray, np.ndarray]:
    """Assign float64 values to ``dst`` (``ap_fixed(double)``); returns (codes, overflow mask)."""
    try:
        a = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError):
        raise UsageError(f"quantize: expected real numbers for {dst}, got {x!r:.80}") from None
    if not np.isfinite(a).all():
        raise UsageError(f"quantize: NaN or infinite value cannot be assigned to {dst}")
    if dst.fits_int64 and a.size >= _COMPILED_MIN_SIZE:
        flat = np.ascontiguousarray(a).ravel()
        params = flat_params(cast_params(0, _DOUBLE_SRC_WIDTH, dst), dst.frac_bits)
        out = np.empty(flat.size, np.int64)
        flags = np.empty(flat.size, np.bool_)
        _QUANTIZE.kernel(flat.size, params)(flat, params, out, flags)
        return out.reshape(a.shape), flags.reshape(a.shape)
    frac, exp = np.frexp(a)
    mant = np.ldexp(frac, 53).astype(np.int64)  # exact: |mant| < 2**53
    shift = (53 - exp.astype(np.int64)) - dst.frac_bits
    if dst.fits_int64:
        return _cast_int64(mant, shift, _DOUBLE_SRC_WIDTH, dst)
    return _cast_objects(mant, shift, _DOUBLE_SRC_WIDTH, dst)


@njit(cache=True)
def _quantize_params(p):
    c, i = cast_at(p, 0)
    return c, p[i]


_MANTISSA = np.int64((1 << 52) - 1)
_HIDDEN_BIT = np.int64(1 << 52)


def _quantize(consts):
    def quantize(x, params, out, flags):
        """``ap_fixed(double)`` on a 1-D float64 array: a normal double is its signed
        53-bit significand (a 54-bit source word) times ``2**(e - 1075)``, read from its
        bits, and is assigned with shift ``1075 - e - frac_bits``; zeros and subnormals
        take ``frexp``'s normalised significand, as the numpy path does."""
        bits = x.view(np.int64)
        for i in prange(x.size):
            c, frac_bits = constants_or(consts, _quantize_params, params)
            b = bits[i]
            e = (b >> 52) & 0x7FF
            if e == 0:
                fm, fe = math.frexp(x[i])
                m = np.int64(fm * 9007199254740992.0)
                shift = 53 - fe - frac_bits
            else:
                m = (b & _MANTISSA) | _HIDDEN_BIT
                m = -m if b < 0 else m
                shift = 1075 - e - frac_bits
            out[i], flags[i] = cast_shift(m, shift, c)

    return quantize


_QUANTIZE = Fused(_quantize, _quantize_params)
