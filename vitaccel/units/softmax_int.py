"""Integer-only softmax variants ``ibert`` (I-BERT i-exp) and ``ivit`` (I-ViT Shiftmax).

Both run the published integer algorithm of :mod:`vitaccel.units.intops` on the scores
rescaled to a power-of-two working LSB, in the variant's declared formats:

======================= =================================================================
``softmax.int_in``      signed; the clamped difference ``d = x - max`` (its LSB ``s = 2**-F``
                        is the scale the integer algorithm runs at; it must hold -32)
``softmax.exp``         (ibert) the i-exp value requantized by a dyadic constant
``softmax.prob``        output probabilities
======================= =================================================================

Common front end (per score x of a row, ``max`` = the row maximum, codes of ``scores_t``)::

    d = x - max;                         // exact, <= 0
    d = max(d, -32);                     // both exponentials are constant below -32 (see below)
    in_t q = d;                          // softmax.int_in (rounding mode of int_in)

The clamp changes no bit: i-exp clamps its input at ``30 * floor(-0.6931 / s) > -32 / s`` and
Shiftmax clamps ``q + floor(q/2) - floor(q/16)`` (non-decreasing in q, ``-46 / s`` at
``q = -32 / s``) at ``-15 / s``; it only keeps the ``int_in`` register free of overflow.

Order independence: the row maximum, the exact integer sum (non-negative terms, with a
saturation that only applies to the final value, so a saturating streaming adder gives the same
bits) and everything after are independent of the key order, so ``order`` changes no bit.

``stats`` returns the row maximum (codes of ``scores_t``) and the integer normalisation factor
(``recip_t``); ``probs`` recomputes each exponential from its score, so
``forward == probs(stats)`` and a subset of scores (MoE gate) gets the same probabilities.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from typing import ClassVar

import numpy as np

from vitaccel.errors import UsageError
from vitaccel.fixed import FixedType
from vitaccel.units._dyadic import dyadic_constant, integer_type, requant
from vitaccel.units._ops import assign, int_codes
from vitaccel.units.intops import (
    IBERT_EXP_A,
    IBERT_EXP_N,
    SHIFTMAX_N,
    ibert_exp,
    ibert_exp_constants,
    shift_exp,
    shiftmax_factor,
    shiftmax_normalize,
    shiftmax_x0,
)
from vitaccel.units.softmax import SOFTMAX, Softmax

__all__ = ["IbertSoftmax", "IntSoftmax", "IvitSoftmax"]

CLAMP = 32  # the difference clamp (value units), a power of two


@dataclass(frozen=True, eq=False)
class IntSoftmax(Softmax):
    """Shared front end of the integer-only softmax variants (module docstring).

    Attributes
    ----------
    in_t, prob_t : FixedType
        Formats of ``softmax.int_in`` and ``softmax.prob``.
    """

    in_t: FixedType
    prob_t: FixedType

    MIN_IN_FRAC: ClassVar[int] = 0
    MAX_IN_FRAC: ClassVar[int] = 14

    def __post_init__(self) -> None:
        t, lo, hi = self.in_t, self.MIN_IN_FRAC, self.MAX_IN_FRAC
        if not t.signed or t.min_value > -CLAMP or not lo <= t.frac_bits <= hi:
            raise UsageError(
                f"softmax variant {self.NAME!r}: role softmax.int_in must be signed, hold "
                f"-{CLAMP} and have {lo}..{hi} fractional bits, got {t}")

    @property
    def out_t(self) -> FixedType:
        """Format of the probabilities (role ``softmax.prob``)."""
        return self.prob_t

    @property
    def scale_log2(self) -> int:
        """k with ``s = 2**-k``, the LSB of ``softmax.int_in``."""
        return self.in_t.frac_bits

    def integer_input(self, x: np.ndarray, x_t: FixedType, m: np.ndarray,
                      overflow: dict[str, int] | None) -> np.ndarray:
        """Codes ``q`` of ``int_in`` for scores x and row maxima m (codes of ``x_t``)."""
        if x_t.frac_bits < -5:
            raise UsageError(f"softmax variant {self.NAME!r}: scores format {x_t} is coarser "
                             f"than the clamp {-CLAMP}")
        d = np.maximum(x - m, -(CLAMP << x_t.frac_bits) if x_t.frac_bits >= 0
                       else -(CLAMP >> -x_t.frac_bits))
        return assign(self.in_t, d, FixedType(x_t.width + 1, x_t.int_bits + 1, True), overflow,
                      "softmax.int_in")

    def _row_stats(self, rows, x_t, overflow):
        m = rows.max(axis=1)
        e = self._exp(self.integer_input(rows, x_t, m[:, None], overflow), overflow)
        return m, self._factor(e)[:, 0]

    def probs(
        self,
        scores_raw: np.ndarray,
        scores_t: FixedType,
        max_raw: np.ndarray,
        recip_raw: np.ndarray,
        overflow: dict[str, int] | None = None,
    ) -> np.ndarray:
        """Probabilities (..., N) in ``prob_t`` from scores and their ``(max, factor)`` stats."""
        x = int_codes(scores_raw, scores_t, "softmax scores")
        m = int_codes(max_raw, scores_t, "softmax max")[..., None]
        f = int_codes(recip_raw, self.recip_t, "softmax factor")[..., None]
        e = self._exp(self.integer_input(x, scores_t, m, overflow), overflow)
        out_t = FixedType(self.out_bits + 1, self.out_bits + 1 - self._out_frac, False)
        return assign(self.prob_t, self._normalize(e, f), out_t, overflow, "softmax.prob")

    # ---------------------------------------------------------- per variant
    @property
    def recip_t(self) -> FixedType:
        """Format of the integer normalisation factor returned by ``stats``."""
        raise NotImplementedError

    @property
    def out_bits(self) -> int:
        """The published algorithm's ``output_bit``."""
        raise NotImplementedError

    @property
    def _out_frac(self) -> int:
        raise NotImplementedError

    def _exp(self, q: np.ndarray, overflow: dict[str, int] | None) -> np.ndarray:
        raise NotImplementedError

    def _factor(self, e: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _normalize(self, e: np.ndarray, f: np.ndarray) -> np.ndarray:
        raise NotImplementedError


@dataclass(frozen=True, eq=False)
class IvitSoftmax(IntSoftmax):
    """I-ViT Shiftmax (``intops.ivit_shiftmax`` with ``out_bits = F(prob) + 1``)::

        // q: softmax.int_in codes (row max already 0), x0 = -2^F_in, n = 15
        t  = q + (q >> 1) - (q >> 4);   t = max(t, 15 * x0);
        z  = t / x0 (floor);  r = t - z * x0;
        e  = (r - 2 * x0) << (n - 1 - z)   (a right shift when negative)
        S  = min(sum(e), 2^31 - 1);   f = (2^31 - 1) / S          // stats: (max, f)
        out = (e * f) >> (32 - out_bits);   prob_t p = out * 2^-(out_bits - 1)

    ``out`` has the LSB of ``prob_t``, so the last step only checks the range (1.0 must fit).
    ``S`` saturates (probabilities then lose their normalisation, as published) once
    ``sum(e) >= 2^31``: ``e <= 2^(F_in + 15)``, so rows of up to ``2^(16 - F_in)`` keys are safe.
    """

    NAME: ClassVar[str] = "ivit"
    ROLE_FIELDS: ClassVar[dict[str, str]] = {"softmax.int_in": "in_t", "softmax.prob": "prob_t"}
    MAX_IN_FRAC: ClassVar[int] = 16

    x0: int = field(init=False)

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 0 <= self.prob_t.frac_bits <= 31:
            raise UsageError(f"softmax variant 'ivit': role softmax.prob needs 0..31 fractional "
                             f"bits (out_bits = F + 1 <= 32), got {self.prob_t}")
        object.__setattr__(self, "x0", shiftmax_x0(self.scale_log2))

    @property
    def recip_t(self) -> FixedType:
        """``f = floor((2^31 - 1) / S)`` in ``ap_uint<31>``."""
        return FixedType.integer(31, signed=False)

    @property
    def out_bits(self) -> int:
        """``F(prob) + 1`` (output scale ``2**-(out_bits - 1)``)."""
        return self.prob_t.frac_bits + 1

    @property
    def _out_frac(self) -> int:
        return self.out_bits - 1

    def _exp(self, q, overflow):
        return shift_exp(q, self.x0, SHIFTMAX_N)

    def _factor(self, e):
        return shiftmax_factor(e)

    def _normalize(self, e, f):
        return shiftmax_normalize(e, f, self.out_bits)


@dataclass(frozen=True, eq=False)
class IbertSoftmax(IntSoftmax):
    """I-BERT IntSoftmax: i-exp, a static dyadic requantization, integer normalisation::

        // q: softmax.int_in codes (<= 0), s = 2^-F_in, 2 <= F_in <= 14 (e < 2^62)
        e   = ibert_exp(q, s)                      // intops; real value e * a s^2 / 2^30
        exp_t v = e * C;                           // softmax.exp; C = a s^2 / 2^30 rounded to
                                                   //   scale_bits significant bits (dyadic)
        S   = max(sum(v codes), 1);  f = 2^32 / S  // stats: (max, f), ap_uint<33>
        out = (v * f) >> (32 - out_bits);  prob_t p = out * 2^-out_bits   (out_bits = F(prob))

    The requantization replaces I-BERT's dynamic 16-bit QuantAct of the exponentials by the
    static format ``softmax.exp`` (exp(0) ~ 1 fixes its scale). A zero sum (possible only if
    ``softmax.exp`` wraps) is taken as 1.
    """

    NAME: ClassVar[str] = "ibert"
    ROLE_FIELDS: ClassVar[dict[str, str]] = {
        "softmax.int_in": "in_t", "softmax.exp": "exp_t", "softmax.prob": "prob_t"}

    MIN_IN_FRAC: ClassVar[int] = 2

    exp_t: FixedType = field(kw_only=True)
    scale_bits: int = 24
    e_t: FixedType = field(init=False)
    c_raw: int = field(init=False)
    c_t: FixedType = field(init=False)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.exp_t.signed or self.exp_t.width > 32:
            raise UsageError(f"softmax variant 'ibert': role softmax.exp must be unsigned and at "
                             f"most 32 bits, got {self.exp_t}")
        if not 1 <= self.prob_t.frac_bits <= 32:
            raise UsageError(f"softmax variant 'ibert': role softmax.prob needs 1..32 fractional "
                             f"bits (out_bits), got {self.prob_t}")
        k = self.scale_log2
        x0i, bi, ci = ibert_exp_constants(k)
        p_bound = abs(ci) + abs(x0i) * (abs(bi) + abs(x0i))
        object.__setattr__(self, "e_t", integer_type(p_bound << IBERT_EXP_N))
        c_raw, c_t = dyadic_constant(IBERT_EXP_A * Fraction(1, 4**k) / 2**IBERT_EXP_N,
                                     self.scale_bits)
        object.__setattr__(self, "c_raw", c_raw)
        object.__setattr__(self, "c_t", c_t)

    @property
    def recip_t(self) -> FixedType:
        """``f = floor(2^32 / S)`` in ``ap_uint<33>``."""
        return FixedType.integer(33, signed=False)

    @property
    def out_bits(self) -> int:
        """``F(prob)`` (output scale ``2**-out_bits``, as I-BERT)."""
        return self.prob_t.frac_bits

    @property
    def _out_frac(self) -> int:
        return self.out_bits

    def _exp(self, q, overflow):
        e, _ = ibert_exp(q, Fraction(1, 2**self.scale_log2))
        return requant(e.astype(np.int64), self.e_t, self.c_raw, self.c_t, self.exp_t, overflow,
                       "softmax.exp")

    def _factor(self, e):
        total = np.maximum(e.sum(axis=-1, keepdims=True), 1)
        return np.floor_divide(np.int64(1) << 32, total)

    def _normalize(self, e, f):
        return np.right_shift(e * f, 32 - self.out_bits)


SOFTMAX.update({cls.NAME: cls for cls in (IbertSoftmax, IvitSoftmax)})
