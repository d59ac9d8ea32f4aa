"""Multiplier-free kernels (ShiftAddViT / FQ-ViT style) on raw integer codes.

* Power-of-two weights ``sign * 2**exp`` (sign in {-1, 0, +1}): a linear layer becomes shifts
  and adds (:func:`shift_linear`).
* Log2-quantized attention probabilities (:func:`log2_quantize_probs`): A·V becomes shifts of V
  (:func:`shift_av`).
* Binary Q/K codes (:func:`binary_codes`): scores by popcount (:func:`binary_scores`), and
  products with {-1, 0, +1} matrices as masked accumulation (:func:`masked_av`).

Every accumulating kernel has the same hardware semantics: each term is the exact value
``±x * 2**p`` assigned to the term format (with ``AP_TRN`` that is the floor, i.e. the
arithmetic right shift of the negated-or-not operand), then, in k order, ``acc = acc_t(acc +
term)`` with rounding and overflow after every addition, starting from the bias (or 0).
A negative weight therefore floors ``-x * 2**p`` (negate, then shift), which is what makes the
kernel bit-identical to ``fixed_matmul`` with the power-of-two weights as ``ap_fixed`` codes and
``product_t = term_t``; hardware that shifts first and subtracts (``-floor(x * 2**p)``) differs
by one term LSB on such terms whenever the shift drops nonzero bits.
"""

from __future__ import annotations

import math
from fractions import Fraction
from typing import Any

import numpy as np

from vitaccel.errors import UsageError
from vitaccel.fixed import FixedType, fixed_matmul

__all__ = [
    "LOG2_ZERO",
    "binary_codes",
    "binary_scores",
    "log2_quantize_probs",
    "masked_av",
    "power_of_two_weights",
    "shift_av",
    "shift_linear",
    "to_power_of_two",
    "to_power_of_two_fixed",
]

LOG2_ZERO = -(2**31)
"""Exponent sentinel of a probability quantized to zero by :func:`log2_quantize_probs`."""



def _sqrt_half_up() -> float:
    """Smallest double >= sqrt(1/2): for a double m, m >= sqrt(1/2) <=> m >= this (exact)."""
    c = math.sqrt(0.5)
    while Fraction(c) ** 2 < Fraction(1, 2):
        c = math.nextafter(c, 1.0)
    while Fraction(math.nextafter(c, 0.0)) ** 2 >= Fraction(1, 2):
        c = math.nextafter(c, 0.0)
    return c


_SQRT_HALF_UP = _sqrt_half_up()


def _check_exp_range(p_min: int, p_max: int) -> None:
    for name, v in (("p_min", p_min), ("p_max", p_max)):
        if not isinstance(v, int | np.integer) or isinstance(v, bool):
            raise UsageError(f"{name}: expected an integer exponent, got {v!r}")
    if p_min > p_max:
        raise UsageError(f"p_min/p_max: expected p_min <= p_max, got {p_min} > {p_max}")


def to_power_of_two(w: Any, p_min: int, p_max: int) -> tuple[np.ndarray, np.ndarray]:
    """Round float weights to ``sign * 2**exp`` with exp in ``[p_min, p_max]``.

    ``exp`` is the nearest integer to ``log2|w|`` (exact: the boundary ``2**(p + 1/2)`` is
    irrational, so no double ties), clipped to ``[p_min, p_max]``.
    Zero rule: ``|w| < 2**(p_min - 1)`` (and ``w == 0``) gives sign 0 and exp ``p_min``.

    Parameters
    ----------
    w : float array
    p_min, p_max : int
        Exponent range (e.g. -8..0 for weights in (-1, 1)).

    Returns
    -------
    sign : int8 array (-1, 0, +1)
    exp : int64 array
    """
    _check_exp_range(p_min, p_max)
    a = np.asarray(w, dtype=np.float64)
    if not np.all(np.isfinite(a)):
        raise UsageError("w: expected finite weights (NaN or infinity found)")
    mant, e2 = np.frexp(np.abs(a))  # |w| = mant * 2**e2, mant in [1/2, 1)
    nearest = e2.astype(np.int64) - (mant < _SQRT_HALF_UP)
    exp = np.clip(nearest, p_min, p_max)
    keep = np.abs(a) >= np.ldexp(1.0, int(p_min) - 1)
    sign = np.where(keep, np.sign(a), 0).astype(np.int8)
    return sign, np.where(keep, exp, int(p_min)).astype(np.int64)


def to_power_of_two_fixed(
    w_raw: Any, w_t: FixedType, p_min: int, p_max: int
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`to_power_of_two` of fixed-point weights given as codes of ``w_t`` (exact)."""
    if not isinstance(w_t, FixedType):
        raise UsageError(f"w_t: expected a FixedType, got {w_t!r}")
    if w_t.width > 53:
        raise UsageError(f"w_t: expected at most 53 bits for exact conversion, got {w_t}")
    return to_power_of_two(w_t.to_float(w_raw), p_min, p_max)


def power_of_two_weights(
    sign: Any, exp: Any, p_min: int, p_max: int
) -> tuple[np.ndarray, FixedType]:
    """The same weights as ap_fixed codes: ``ap_fixed<p_max - p_min + 2, p_max + 2>``."""
    _check_exp_range(p_min, p_max)
    s, e = _sign_exp(sign, exp)
    if np.any((s != 0) & ((e < p_min) | (e > p_max))):
        raise UsageError(f"exp: expected exponents in [{p_min}, {p_max}]")
    w_t = FixedType(width=p_max - p_min + 2, int_bits=p_max + 2)
    return s.astype(np.int64) << np.where(s != 0, e - p_min, 0), w_t


def _sign_exp(sign: Any, exp: Any) -> tuple[np.ndarray, np.ndarray]:
    s = np.asarray(sign)
    e = np.asarray(exp)
    if s.shape != e.shape or s.dtype.kind not in "iu" or e.dtype.kind not in "iu":
        raise UsageError(f"sign/exp: expected integer arrays of one shape, got {s.shape}/{e.shape}")
    if not np.all((s >= -1) & (s <= 1)):
        raise UsageError("sign: expected values in {-1, 0, +1}")
    return s.astype(np.int64), e.astype(np.int64)


def _codes(raw: Any, fmt: FixedType, name: str) -> np.ndarray:
    if not isinstance(fmt, FixedType) or not fmt.fits_int64:
        raise UsageError(f"{name}: expected a FixedType with int64 codes, got {fmt!r}")
    a = np.asarray(raw)
    if a.dtype.kind not in "iu" or a.size and (a.min() < fmt.min_raw or a.max() > fmt.max_raw):
        raise UsageError(f"{name}: expected integer codes of {fmt}")
    return a.astype(np.int64)


def _term_format(x_t: FixedType, p_hi: int) -> FixedType:
    """x_t's LSB with integer bits that hold every ``±x * 2**p`` for p <= p_hi."""
    int_bits = x_t.int_bits + (0 if x_t.signed else 1) + max(p_hi, 0) + 1
    return FixedType(width=int_bits + x_t.frac_bits, int_bits=int_bits)


def _pow2_matmul(x, x_t, sign, exp, acc_t, term_t, bias_raw, bias_t, track):
    """x (..., M, K) times the power-of-two matrix (N, K)^T with per-term casts, in k order."""
    for name, fmt in (("acc_t", acc_t), ("term_t", term_t)):
        if fmt is not None and (not isinstance(fmt, FixedType) or not fmt.fits_int64):
            raise UsageError(f"{name}: expected a FixedType with int64 codes, got {fmt!r}")
    active = sign != 0
    p_lo = int(exp[active].min()) if active.any() else 0
    p_hi = int(exp[active].max()) if active.any() else 0
    w_raw, w_t = power_of_two_weights(sign, exp, p_lo, p_hi)
    term_t = _term_format(x_t, p_hi) if term_t is None else term_t
    return fixed_matmul(x, x_t, w_raw.T, w_t, acc_t=acc_t, product_t=term_t, bias_raw=bias_raw,
                        bias_t=bias_t, return_overflow=track)


def shift_linear(
    x_raw: Any,
    x_t: FixedType,
    sign: Any,
    exp: Any,
    *,
    acc_t: FixedType,
    term_t: FixedType | None = None,
    bias_raw: Any = None,
    bias_t: FixedType | None = None,
    return_overflow: bool = False,
):
    """Linear layer with power-of-two weights: ``y[m,n] = bias[n] + sum_k sign[n,k] * x[m,k]
    * 2**exp[n,k]`` by shifts and adds.

    Each term ``sign * x * 2**exp`` (exact) is assigned to ``term_t`` (default: x_t's LSB with
    integer bits that never overflow; ``AP_TRN`` floors, as an arithmetic shift of ``±x`` does);
    the accumulator starts at ``acc_t(bias)`` and ``acc = acc_t(acc + term)`` for k in order.
    Bit-identical to ``fixed_matmul`` with the weights of :func:`power_of_two_weights` and
    ``product_t=term_t``, and computed by it (its fast paths are proven exact per call).

    Parameters
    ----------
    x_raw : int array (..., M, K)
        Codes of ``x_t``.
    sign, exp : int arrays (N, K)
        Weights ``sign * 2**exp`` (sign in {-1, 0, +1}).
    acc_t, term_t, bias_t : FixedType
        Accumulator, shifted-term and bias formats; ``bias_raw`` has shape (N,).
    return_overflow : bool
        Also return the number of outputs that overflowed (bias, term or accumulation) at least
        once.

    Returns
    -------
    y : int64 array (..., M, N)
        Codes of ``acc_t`` (with ``return_overflow``: ``(y, n_overflow)``).
    """
    x = _codes(x_raw, x_t, "x_raw")
    s, e = _sign_exp(sign, exp)
    if x.ndim < 2 or s.ndim != 2 or x.shape[-1] != s.shape[1]:
        raise UsageError(f"shift_linear: expected x (..., M, K) and sign/exp (N, K), got "
                         f"{x.shape} and {s.shape}")
    return _pow2_matmul(x, x_t, s, e, acc_t, term_t, bias_raw, bias_t, return_overflow)


def log2_quantize_probs(p_raw: Any, p_t: FixedType, min_exp: int) -> np.ndarray:
    """Round probabilities to the nearest power of two in the log domain (FQ-ViT).

    ``E = round(log2 p)`` (round to nearest of ``-log2 p``; a tie would be ``p = 2**(E+1/2)``,
    irrational, so it cannot occur for a code and the rule "ties toward the larger power" never
    fires). ``p == 0`` or ``E < min_exp`` (``p < 2**(min_exp - 1/2)``) gives :data:`LOG2_ZERO`.

    Parameters
    ----------
    p_raw : int array
        Non-negative codes of ``p_t``.
    min_exp : int
        Smallest kept exponent (e.g. ``-(2**bits - 1)`` for FQ-ViT's ``bits``-bit log2 codes).

    Returns
    -------
    exps : int64 array
        ``p ~ 2**exps``, or LOG2_ZERO.
    """
    p = _codes(p_raw, p_t, "p_raw")
    if p_t.width > 53:
        raise UsageError(f"p_t: expected at most 53 bits (exact float64 codes), got {p_t}")
    if np.any(p < 0):
        raise UsageError("p_raw: expected non-negative probabilities")
    if not isinstance(min_exp, int | np.integer) or isinstance(min_exp, bool):
        raise UsageError(f"min_exp: expected an integer, got {min_exp!r}")
    mant, e2 = np.frexp(p.astype(np.float64))
    nearest = e2.astype(np.int64) - (mant < _SQRT_HALF_UP) - p_t.frac_bits
    return np.where((p == 0) | (nearest < min_exp), LOG2_ZERO, nearest)


def _batched(w_sign, w_exp, v, v_t, acc_t, term_t, track):
    """out[..., i, d] = sum_j w[..., i, j] * v[..., j, d] as shift/add, keys j in order."""
    if w_sign.shape[:-2] != v.shape[:-2] or w_sign.shape[-1] != v.shape[-2] or v.ndim < 2:
        raise UsageError(f"expected weights (..., Nq, Nk) and v (..., Nk, D), got "
                         f"{w_sign.shape} and {v.shape}")
    ws = w_sign.reshape(-1, *w_sign.shape[-2:])
    we = w_exp.reshape(-1, *w_exp.shape[-2:])
    vb = v.reshape(-1, *v.shape[-2:])
    out = np.empty((ws.shape[0], ws.shape[1], vb.shape[2]), dtype=np.int64)
    n_ovf = 0
    for b in range(ws.shape[0]):
        # out^T = v^T (D, Nk) times the power-of-two matrix (Nq, Nk)^T
        y = _pow2_matmul(vb[b].T, v_t, ws[b], we[b], acc_t, term_t, None, None, True)
        out[b] = y[0].T
        n_ovf += y[1]
    return out.reshape(*w_sign.shape[:-1], v.shape[-1]), n_ovf


def shift_av(
    exps: Any,
    v_raw: Any,
    v_t: FixedType,
    acc_t: FixedType,
    *,
    term_t: FixedType | None = None,
    return_overflow: bool = False,
):
    """A·V with log2 probabilities: ``out[i,d] = sum_j v[j,d] * 2**exps[i,j]`` in key order.

    Each term is assigned to ``term_t`` (default: v_t's LSB, floor) and accumulated with a cast
    to ``acc_t`` after every addition; LOG2_ZERO terms are 0.

    Parameters
    ----------
    exps : int array (..., Nq, Nk)
        From :func:`log2_quantize_probs`.
    v_raw : int array (..., Nk, D)
        Codes of ``v_t``.

    Returns
    -------
    out : int64 array (..., Nq, D)
        Codes of ``acc_t`` (with ``return_overflow``: ``(out, n_overflow)``).
    """
    e = np.asarray(exps)
    if e.dtype.kind not in "iu":
        raise UsageError("exps: expected integer exponents from log2_quantize_probs")
    v = _codes(v_raw, v_t, "v_raw")
    sign = (e != LOG2_ZERO).astype(np.int64)
    out, n = _batched(sign, np.where(sign != 0, e, 0).astype(np.int64), v, v_t, acc_t, term_t,
                      return_overflow)
    return (out, n) if return_overflow else out


def binary_codes(x_raw: Any) -> np.ndarray:
    """Binary codes of a projection: ``+1`` where ``x >= mean``, else ``-1``.

    The mean over the token axis (-2) is ``floor(sum_t x[t] / T)`` in x's own format (codes),
    so ``x - mean`` is exact and the code is its sign with 0 mapped to +1.

    Parameters
    ----------
    x_raw : int array (..., T, D)

    Returns
    -------
    codes : int8 array (..., T, D) of ±1
    """
    x = np.asarray(x_raw)
    if x.dtype.kind not in "iu" or x.ndim < 2 or x.shape[-2] == 0:
        raise UsageError(f"x_raw: expected integer codes (..., T, D) with T > 0, got {x.shape}")
    if x.size and int(np.abs(x).max()) * x.shape[-2] >= 2**62:
        x = x.astype(object)  # exact sums beyond int64
    mean = np.floor_divide(x.sum(axis=-2, keepdims=True), x.shape[-2])
    return np.where(x >= mean, 1, -1).astype(np.int8)


def binary_scores(q_codes: Any, k_codes: Any) -> np.ndarray:
    """Similarity of ±1 codes by popcount: ``dot(q, k) = D - 2 * hamming(q, k)``.

    Parameters
    ----------
    q_codes : ±1 array (..., Nq, D)
    k_codes : ±1 array (..., Nk, D)

    Returns
    -------
    scores : int64 array (..., Nq, Nk), each in [-D, D]
    """
    q = np.asarray(q_codes)
    k = np.asarray(k_codes)
    for name, a in (("q_codes", q), ("k_codes", k)):
        if a.ndim < 2 or not np.all((a == 1) | (a == -1)):
            raise UsageError(f"{name}: expected a ±1 code array (..., N, D)")
    if q.shape[-1] != k.shape[-1] or q.shape[:-2] != k.shape[:-2]:
        raise UsageError(f"binary_scores: shapes {q.shape} and {k.shape} do not match")
    depth = q.shape[-1]
    qb = np.packbits(q < 0, axis=-1)  # bit 1 encodes -1
    kb = np.packbits(k < 0, axis=-1)
    diff = np.bitwise_xor(qb[..., :, None, :], kb[..., None, :, :])
    hamming = np.bitwise_count(diff).sum(axis=-1, dtype=np.int64)
    return depth - 2 * hamming


def masked_av(
    weights: Any,
    v_raw: Any,
    v_t: FixedType,
    acc_t: FixedType,
    *,
    return_overflow: bool = False,
):
    """A·V with A in {0, 1} (a mask) or {-1, 0, +1} (codes): masked add/subtract of V rows in
    key order, ``acc = acc_t(acc ± v[j])`` after every addition.

    Parameters
    ----------
    weights : int array (..., Nq, Nk) with values in {-1, 0, +1} (bool accepted)
    v_raw : int array (..., Nk, D)
        Codes of ``v_t``.

    Returns
    -------
    out : int64 array (..., Nq, D)
        Codes of ``acc_t`` (with ``return_overflow``: ``(out, n_overflow)``).
    """
    w = np.asarray(weights)
    if w.dtype == bool:
        w = w.astype(np.int64)
    s, e = _sign_exp(w, np.zeros(w.shape, dtype=np.int64))
    v = _codes(v_raw, v_t, "v_raw")
    out, n = _batched(s, e, v, v_t, acc_t, None, return_overflow)
    return (out, n) if return_overflow else out
