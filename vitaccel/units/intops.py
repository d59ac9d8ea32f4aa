"""Integer-only nonlinear units with published reference algorithms (I-BERT, I-ViT).

Every function takes an integer array ``q`` with a power-of-two scale ``s = 2**-k`` (the real
value is ``q * s``) and returns ``(out, out_scale)``: an integer array and the real value of one
output unit. "floor" is the floor of the exact rational value; every constant such as
``floor(b / s)`` is computed exactly from the decimal constant of the paper with
:class:`fractions.Fraction`.

Integer width
    The results are exact whatever the input range: a function computes in ``np.int64`` when a
    bound on its intermediates proves that int64 holds them (stated in each docstring), and in a
    numpy object array of Python ints otherwise; the returned array has the dtype of that
    computation (int64 in every realistic hardware configuration).

Differences from the published reference code (I-BERT and I-ViT ``quant_modules.py``)
    Those compute in float32 torch tensors; here every step is exact, which matches them
    wherever their floats are exact (values below 2**24 in float32). Constants such as
    ``floor(b/s)``, ``x0 = floor(-1/(1.702 s))`` and LayerNorm's ``floor((beta/gamma)/s_out)``
    are floored from the exact rationals (float32 can land on the wrong side of an integer, e.g.
    a perfect-square N). LayerNorm's mean is the exact ``round-half-even(sum/N)`` (the reference
    rounds a float32 mean). The I-ViT Shiftmax default output width is 16 bits here (the
    reference's IntSoftmax defaults to 8). ``ibert_exp`` accepts any input (the reference only
    calls it on ``x - max <= 0``). ``ibert_gelu`` keeps the reference's negative output scale.
"""

from __future__ import annotations

import math
from fractions import Fraction
from typing import Any

import numpy as np

from vitaccel.errors import UsageError

__all__ = ["ibert_exp", "ibert_gelu", "ivit_layernorm", "ivit_shiftgelu", "ivit_shiftmax"]

INT32_MAX = 2**31 - 1
_INT64_SAFE = 2**62
_MAX_EXP_SHIFT = 4096

# I-BERT i-exp: exp(x) ~ a*x^2 + b_lin*x + 1 on (-ln2, 0], written a*(x*(x + b) + c).
IBERT_EXP_X0 = Fraction("-0.6931")
IBERT_EXP_N = 30
IBERT_EXP_A = Fraction("0.35815147")
IBERT_EXP_B = Fraction("0.96963238") / IBERT_EXP_A
IBERT_EXP_C = 1 / IBERT_EXP_A
# I-BERT i-GELU: erf(u) ~ sign(u) * (a*(min(|u|, -b) + b)^2 + 1), u = x / k.
IBERT_GELU_K = Fraction("1.4142")
IBERT_GELU_A = Fraction("-0.2888")
IBERT_GELU_B = Fraction("-1.769")
IBERT_GELU_C = 1 / IBERT_GELU_A
IBERT_GELU_N = 14
# I-ViT Shiftmax / ShiftGELU / I-LayerNorm.
SHIFTMAX_N = 15
SHIFTGELU_N = 23
SHIFTGELU_ALPHA = Fraction("1.702")
LAYERNORM_ITERATIONS = 10
LAYERNORM_K0 = 2**16


def _scale_exponent(scale: Any, name: str = "scale") -> int:
    """Return k with ``scale == 2**-k`` exactly, or raise UsageError."""
    if isinstance(scale, np.generic | np.ndarray) or hasattr(scale, "item"):
        try:
            scale = scale.item()  # numpy / torch scalars and one-element arrays
        except (ValueError, RuntimeError):
            raise UsageError(f"{name}: expected one power of two, got {scale!r}") from None
    try:
        value = Fraction(scale)
    except (TypeError, ValueError, OverflowError):
        raise UsageError(f"{name}: expected a positive power of two, got {scale!r}") from None
    if value <= 0 or value.numerator & (value.numerator - 1) or value.denominator & (
        value.denominator - 1
    ) or (value.numerator != 1 and value.denominator != 1):
        raise UsageError(f"{name}: expected a positive power of two (2**-k), got {scale!r}")
    return value.denominator.bit_length() - 1 - (value.numerator.bit_length() - 1)


def _pow2(k: int) -> Fraction:
    """Exact ``2**k`` for any integer k."""
    return Fraction(2) ** k


def _floor(value: Fraction) -> int:
    return math.floor(value)


def _int_array(q: Any, name: str = "q") -> np.ndarray:
    """Integer array as int64 (or object of Python ints when outside int64); UsageError if any
    element is not an integer."""
    arr = np.asarray(q)
    if arr.dtype == bool:
        raise UsageError(f"{name}: expected an integer array, got dtype bool")
    if arr.dtype.kind in "iu":
        if arr.dtype.kind == "u" and arr.size and int(arr.max()) > np.iinfo(np.int64).max:
            return arr.astype(object)
        return arr.astype(np.int64)
    if arr.dtype.kind == "f":
        if not np.all(np.isfinite(arr)) or not np.all(arr == np.floor(arr)):
            raise UsageError(f"{name}: expected integer values, got non-integer floats")
        if arr.size and np.max(np.abs(arr)) >= 2.0**63:
            return np.vectorize(lambda v: int(v), otypes=[object])(arr)
        return arr.astype(np.int64)
    if arr.dtype == object:
        flat = arr.ravel()
        if not all(isinstance(v, int | np.integer) and not isinstance(v, bool) for v in flat):
            raise UsageError(f"{name}: expected an array of integers")
        return np.vectorize(int, otypes=[object])(arr) if arr.size else arr.astype(np.int64)
    raise UsageError(f"{name}: expected an integer array, got dtype {arr.dtype}")


def _max_abs(arr: np.ndarray) -> int:
    return int(np.max(np.abs(arr))) if arr.size else 0


def _exact_dtype(arr: np.ndarray, bound: int) -> np.ndarray:
    """``arr`` as int64 if every intermediate is bounded by ``bound`` < 2**62, else as object."""
    return arr.astype(np.int64) if bound < _INT64_SAFE else arr.astype(object)


def _floor_shift(value: np.ndarray, shift: np.ndarray) -> np.ndarray:
    """floor(value * 2**shift) elementwise for integer ``shift`` of either sign."""
    if value.dtype == object:
        shift = shift.astype(object)
    left = np.left_shift(value, np.maximum(shift, 0))
    return np.where(shift >= 0, left, np.right_shift(value, np.maximum(-shift, 0)))


def _last_axis(arr: np.ndarray, name: str) -> None:
    if arr.ndim == 0 or arr.shape[-1] == 0:
        raise UsageError(f"{name}: expected an array with a non-empty last axis, got {arr.shape}")


def ibert_exp_constants(k: int) -> tuple[int, int, int]:
    """i-exp constants ``(x0i, floor(b/s), floor(c/s^2))`` for ``s = 2**-k``."""
    s = _pow2(-k)
    return _floor(IBERT_EXP_X0 / s), _floor(IBERT_EXP_B / s), _floor(IBERT_EXP_C / s**2)


def ibert_gelu_constants(k: int) -> tuple[int, int, Fraction, int]:
    """i-GELU constants ``(floor(b/s1), floor(c/s1^2), sf, floor(1/sf))`` for ``s = 2**-k``."""
    s1 = _pow2(-k) / IBERT_GELU_K
    sf = s1**2 * IBERT_GELU_A * _pow2(IBERT_GELU_N)
    return _floor(IBERT_GELU_B / s1), _floor(IBERT_GELU_C / s1**2), sf, _floor(1 / sf)


def ibert_exp(q: Any, scale: Any) -> tuple[np.ndarray, float]:
    """I-BERT i-exp of ``q * scale`` (meant for ``q <= 0``, i.e. ``x - max``).

    x0i = floor(-0.6931/s); q = max(q, 30*x0i); z = floor(q/x0i); r = q - z*x0i;
    p = (r + floor(b/s))*r + floor(c/s^2); out = max(p * 2^(30 - z), 0).

    Parameters
    ----------
    q : integer array
        Input codes at ``scale``.
    scale : power of two
        ``s = 2**-k``.

    Returns
    -------
    out : integer array
        ``exp(q*s) ~ out * out_scale``.
    out_scale : float
        ``0.35815147 * s**2 / 2**30``.

    Notes
    -----
    int64 holds every intermediate when ``q <= 0`` and ``k <= 15``; positive inputs (where
    ``z < 0`` and the shift exceeds 30) and finer scales fall back to exact Python ints.
    """
    k = _scale_exponent(scale)
    qa = _int_array(q)
    s = _pow2(-k)
    n = IBERT_EXP_N
    x0i, bi, ci = ibert_exp_constants(k)
    top = int(qa.max()) if qa.size else 0
    z_min = min(top // x0i, 0)
    if n - z_min > _MAX_EXP_SHIFT:
        raise UsageError(
            f"q: ibert_exp input up to {top} at scale 2**-{k} gives exp beyond 2**{_MAX_EXP_SHIFT}"
            " (expected x - max <= 0)"
        )
    p_bound = abs(ci) + abs(x0i) * (abs(bi) + abs(x0i))
    bound = max(p_bound << (n - z_min), _max_abs(qa), n * abs(x0i))
    qa = _exact_dtype(qa, bound)
    qc = np.maximum(qa, n * x0i)
    z = np.floor_divide(qc, x0i)
    r = qc - z * x0i
    p = (r + bi) * r + ci
    out = np.maximum(_floor_shift(p, n - z), 0)
    return out, float(IBERT_EXP_A * s**2 / _pow2(n))


def ibert_gelu(q: Any, scale: Any) -> tuple[np.ndarray, float]:
    """I-BERT i-GELU of ``q * scale``, as in its reference code.

    s1 = s/1.4142; bi = floor(b/s1); ci = floor(c/s1^2);
    L = sign(q)*((min(|q|, -bi) + bi)^2 + ci); L' = floor(L/2^14); sf = s1^2 * a * 2^14;
    out = q * (L' + floor(1/sf)).

    Returns
    -------
    out : integer array
    out_scale : float
        ``s * sf / 2``; negative, because ``a = -0.2888`` is (``out * out_scale`` is the GELU).

    Notes
    -----
    int64 holds every intermediate while ``max|q| * (bi^2 + |ci|) / 2^14 < 2^61``, e.g. for
    ``|q| < 2^31`` at ``k <= 16``; otherwise exact Python ints are used.
    """
    k = _scale_exponent(scale)
    qa = _int_array(q)
    bi, ci, sf, shift = ibert_gelu_constants(k)
    poly_bound = bi * bi + abs(ci)
    bound = _max_abs(qa) * ((poly_bound >> IBERT_GELU_N) + abs(shift) + 2) + poly_bound
    qa = _exact_dtype(qa, bound)
    clipped = np.minimum(np.abs(qa), -bi)
    poly = (clipped + bi) ** 2 + ci
    sign = np.where(qa > 0, 1, np.where(qa < 0, -1, 0))
    erf_int = np.floor_divide(sign * poly, 2**IBERT_GELU_N)
    out = qa * (erf_int + shift)
    return out, float(_pow2(-k) * sf / 2)


def shift_exp(x: np.ndarray, x0: int, n: int, cap: int | None = None) -> np.ndarray:
    """I-ViT shift exponent: e = floor((r/2 - x0) * 2^(n - z)) after x += x//2 - x//16 and the
    clamp x >= n*x0 (z = floor(x/x0), r = x - z*x0). With ``cap``, returns min(e, cap) for
    ``cap <= 2**31`` without forming the huge values of positive inputs."""
    xs = x + np.floor_divide(x, 2) - np.floor_divide(x, 16)
    xs = np.maximum(xs, n * x0)
    z = np.floor_divide(xs, x0)
    r = xs - z * x0
    twice = r - 2 * x0  # (r/2 - x0) * 2, in (|x0|, 2|x0|], so never below 2
    shift = n - 1 - z
    if cap is not None:
        # twice >= 2, so any shift >= 31 already gives a value >= 2^32 > cap.
        shift = np.minimum(shift, 31)
        return np.minimum(_floor_shift(twice, shift), cap)
    return _floor_shift(twice, shift)


def ivit_shiftmax(q: Any, scale: Any, out_bits: int = 16) -> tuple[np.ndarray, float]:
    """I-ViT Shiftmax along the last axis (n = 15).

    x = q - rowmax(q); x += floor(x/2) - floor(x/16); x0 = floor(-1/s); x = max(x, 15*x0);
    z = floor(x/x0); r = x - z*x0; e = floor((r/2 - x0) * 2^(15 - z));
    S = min(sum(e), 2^31 - 1); f = floor((2^31 - 1)/S); out = floor(e*f / 2^(32 - out_bits)).

    Parameters
    ----------
    q : integer array (..., N)
    scale : power of two
    out_bits : int
        Output width; ``out`` lies in ``[0, 2**(out_bits-1)]``.

    Returns
    -------
    out : integer array (..., N)
    out_scale : float
        ``2**-(out_bits - 1)``.

    Notes
    -----
    ``e <= |x0| * 2^15``; int64 is used while ``|x0| < 2^46`` and ``max|q| < 2^60``. The sum
    is formed from ``min(e, 2^31)``, which leaves ``min(sum(e), 2^31 - 1)`` unchanged.
    """
    k = _scale_exponent(scale)
    if not isinstance(out_bits, int | np.integer) or not 1 <= out_bits <= 32:
        raise UsageError(f"out_bits: expected an integer in [1, 32], got {out_bits!r}")
    qa = _int_array(q)
    _last_axis(qa, "q")
    x0 = shiftmax_x0(k)
    bound = max(abs(x0) << (SHIFTMAX_N + 1), 4 * _max_abs(qa))
    qa = _exact_dtype(qa, bound)
    e = shift_exp(qa - qa.max(axis=-1, keepdims=True), x0, SHIFTMAX_N)
    out = shiftmax_normalize(e, shiftmax_factor(e), out_bits)
    return out, float(_pow2(1 - int(out_bits)))


def shiftmax_x0(k: int) -> int:
    """Shiftmax's ``x0 = floor(-1/s)`` for ``s = 2**-k`` (shared with the graph variant)."""
    return _floor(-1 / _pow2(-k))


def shiftgelu_x0(k: int) -> int:
    """ShiftGELU's ``x0 = floor(-1/(1.702 s))`` for ``s = 2**-k`` (shared with the variant)."""
    return _floor(-1 / (SHIFTGELU_ALPHA * _pow2(-k)))


def shiftmax_factor(e: np.ndarray) -> np.ndarray:
    """Shiftmax row factor ``floor((2^31 - 1) / min(sum(e), 2^31 - 1))`` (last axis kept)."""
    total = np.minimum(np.minimum(e, 2**31).sum(axis=-1, keepdims=True), INT32_MAX)
    return np.floor_divide(INT32_MAX, total)


def shiftmax_normalize(e: np.ndarray, factor: np.ndarray, out_bits: int) -> np.ndarray:
    """Shiftmax output ``floor(e * factor / 2^(32 - out_bits))``."""
    return np.right_shift(e * factor, 32 - int(out_bits))


def ivit_shiftgelu(q: Any, scale: Any, out_bits: int = 8) -> tuple[np.ndarray, float]:
    """I-ViT ShiftGELU, ``x * sigmoid(1.702 x)`` with shift exponents (n = 23).

    s' = 1.702*s; m = max of q over the last axis; e = shiftexp(q - m; s');
    em = shiftexp(-m; s'); S = min(e + em, 2^31 - 1);
    sig = floor(e * floor((2^31 - 1)/S) / 2^(32 - out_bits)); out = q * sig.

    Returns
    -------
    out : integer array (same shape as q)
    out_scale : float
        ``s * 2**-(out_bits - 1)``.

    Notes
    -----
    ``x0 = floor(-1/s')`` is exact. ``em`` (which is huge when the row maximum is negative) is
    formed as ``min(em, 2^31)``, which leaves ``S`` unchanged. ``sig <= 2^(out_bits-1)`` while
    ``S < 2^31 - 1``; once S clamps (rows whose maximum is negative enough) ``f = 1`` and sig can
    reach ``|x0| 2^23 / 2^(32 - out_bits)``. int64 is used while ``|x0| < 2^29`` and
    ``4 max|q| (sig bound + 1) < 2^62``.
    """
    k = _scale_exponent(scale)
    if not isinstance(out_bits, int | np.integer) or not 1 <= out_bits <= 32:
        raise UsageError(f"out_bits: expected an integer in [1, 32], got {out_bits!r}")
    qa = _int_array(q)
    _last_axis(qa, "q")
    x0 = shiftgelu_x0(k)
    # e*f <= max(2^31, |x0| 2^23) (f = 1 once S clamps), so sig is below that / 2^(32 - out_bits)
    sig_bound = max(2**31, abs(x0) << SHIFTGELU_N) >> (32 - int(out_bits))
    bound = max(abs(x0) << 33, 4 * _max_abs(qa) * (sig_bound + 1))
    qa = _exact_dtype(qa, bound)
    row_max = qa.max(axis=-1, keepdims=True)
    e = shift_exp(qa - row_max, x0, SHIFTGELU_N)
    e_max = shift_exp(-row_max, x0, SHIFTGELU_N, cap=2**31)
    total = np.minimum(e + e_max, INT32_MAX)
    sig = np.right_shift(e * np.floor_divide(INT32_MAX, total), 32 - int(out_bits))
    return qa * sig, float(_pow2(-k - int(out_bits) + 1))


def _round_half_even_div(num: np.ndarray, den: int) -> np.ndarray:
    """round-half-even(num / den) for integer arrays, den > 0."""
    fl = np.floor_divide(num, den)
    twice_rem = 2 * (num - fl * den)
    up = (twice_rem > den) | ((twice_rem == den) & (fl % 2 == 1))
    return fl + up.astype(fl.dtype)


def _floor_div_sqrt(x: Fraction, n: int) -> int:
    """floor(x / sqrt(n)) exactly, for rational x and integer n > 0."""
    square = x * x / n
    root = math.isqrt(square.numerator // square.denominator)  # floor(sqrt(square))
    if x >= 0:
        return root
    return -root if root * root == square else -(root + 1)


def _channel_params(values: Any, n: int, name: str) -> np.ndarray:
    try:
        arr = np.broadcast_to(np.asarray(values, dtype=np.float64), (n,))
    except (ValueError, TypeError):
        raise UsageError(f"{name}: expected {n} per-channel floats (last axis of q)") from None
    if not np.all(np.isfinite(arr)):
        raise UsageError(f"{name}: expected finite values")
    return arr


def ivit_layernorm(q: Any, scale: Any, gamma: Any, beta: Any) -> tuple[np.ndarray, np.ndarray]:
    """I-ViT I-LayerNorm over the last axis (length N) with the integer square root.

    mu = round-half-even(sum(q)/N); y = q - mu; V = sum(y^2); k = 2^16 then 10 times
    k = floor((k + floor(V/k))/2); f = floor((2^31 - 1)/k); z = floor(y*f/2);
    out = z + floor((beta/gamma) / s_out) with s_out = sqrt(N)/2^30.

    Parameters
    ----------
    q : integer array (..., N)
    scale : power of two
        The input scale (the output does not depend on it; it is validated).
    gamma, beta : float arrays (N,)
        LayerNorm weight (nonzero) and bias.

    Returns
    -------
    out : integer array (..., N)
    out_scale : float64 array (N,)
        ``sqrt(N) / 2**30 * gamma`` per channel.

    Notes
    -----
    ``floor((beta/gamma)/s_out)`` is exact (integer square root of the exact rational).
    int64 is used while ``N * (2*max|q|)^2 < 2^62`` and the bias terms stay below 2^61.
    """
    _scale_exponent(scale)
    qa = _int_array(q)
    _last_axis(qa, "q")
    n = qa.shape[-1]
    g = _channel_params(gamma, n, "gamma")
    b = _channel_params(beta, n, "beta")
    if np.any(g == 0):
        raise UsageError("gamma: expected nonzero LayerNorm weights (the bias is beta/gamma)")
    bias = [
        _floor_div_sqrt(Fraction(float(bv)) / Fraction(float(gv)) * 2**30, n)
        for bv, gv in zip(b, g, strict=True)
    ]
    y_bound = 2 * _max_abs(qa) + 1
    bound = max(n * y_bound * y_bound + LAYERNORM_K0, y_bound << 31, *(abs(v) * 2 for v in bias))
    qa = _exact_dtype(qa, bound)
    mu = _round_half_even_div(qa.sum(axis=-1, keepdims=True), n)
    y = qa - mu
    var = (y * y).sum(axis=-1, keepdims=True)
    root = np.full_like(var, LAYERNORM_K0)
    for _ in range(LAYERNORM_ITERATIONS):
        root = np.floor_divide(root + np.floor_divide(var, root), 2)
    factor = np.floor_divide(INT32_MAX, root)
    z = np.floor_divide(y * factor, 2)
    bias_arr = np.array(bias, dtype=qa.dtype)
    out_scale = math.sqrt(n) / 2**30 * g
    return z + bias_arr, out_scale
