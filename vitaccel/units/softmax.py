"""Softmax over the key axis as the hardware computes it, on raw integer codes.

Every variant splits the work as Edge-MoE does: :meth:`stats` streams the scores of a row (in
the order the keys arrive) and keeps per-row statistics, a max and ``recip = 1 / sum``;
:meth:`probs` then recomputes each probability from its score, ``p = exp(score - max) * recip``.

Roles (formats supplied by the precision configuration):

==================== ======================================================================
``softmax.z``        (base2 only) scores times log2(e)
``softmax.exp``      exp / pow2 values; also the format of the exp (pow2) ROM
``softmax.sum``      running sum register
``softmax.recip_table`` ROM of 1/m, m in [1, 2], and the interpolated mantissa reciprocal
``softmax.recip``    reciprocal of the sum (stored with the max)
``softmax.prob``     output probabilities
==================== ======================================================================

Reciprocal: ``s`` (sum codes; a non-positive sum, possible only after a wrap, is taken as one
LSB) is normalised by a leading-one detector, ``s = m * 2**e`` with m in [1, 2) truncated to
the ROM's index bits; ``1/m`` is interpolated into ``softmax.recip_table`` and shifted by
``-e`` (a truncating barrel shift) into ``softmax.recip``.

``stats`` and ``probs`` are the vectorised definition. ``forward`` of the online, two-pass and
base-2 variants computes whole rows in one compiled pass instead
(:mod:`vitaccel.units._softmax_kernels`), with the same bits and overflow counts, whenever
every intermediate fits int64; the tests compare the two.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np

from vitaccel.errors import UsageError
from vitaccel.fixed import FixedType, sub_type
from vitaccel.units._ops import (
    assign,
    int_codes,
    leading_one,
    mul_assign,
    scale_pow2,
    shift_floor,
)
from vitaccel.units._running import running_sum
from vitaccel.units._softmax_kernels import Plan, base2_plan, online_plan, run, two_pass_plan
from vitaccel.units._variant import Variant
from vitaccel.units.tables import Table, exp_neg_table, pow2_neg_table, reciprocal_table

__all__ = ["SOFTMAX", "Base2Softmax", "OnlineSoftmax", "RomSoftmax", "Softmax", "TwoPassSoftmax",
           "reciprocal"]

_ONE_T = FixedType(1, 1, False)  # the constant 1 (ap_ufixed<1,1>)


def reciprocal(
    s_raw: np.ndarray,
    s_t: FixedType,
    table: Table,
    out_t: FixedType,
    overflow: dict[str, int] | None = None,
    role: str = "softmax.recip",
) -> np.ndarray:
    """``out_t(1 / s)`` by leading-one normalisation and a 1/m ROM over [1, 2].

    ``e = floor(log2(s_raw))``; ``m = floor(s_raw * 2**(K - e))`` with K = ``table.x_frac_bits``
    (format ``ap_ufixed<K+1, 1>``); ``y = table.fmt(interp(1/m))`` (overflows counted under
    ``role + "_table"``); result ``= y * 2**(F_s - e)`` assigned through a truncating shift.
    """
    v = np.maximum(np.asarray(s_raw, dtype=np.int64), 1)
    e = leading_one(v)
    k = table.x_frac_bits
    m = shift_floor(v, k - e)
    y = table.interp(m, FixedType(k + 1, 1, False), table.fmt, overflow=overflow,
                     role=f"{role}_table")
    return scale_pow2(y, table.fmt, s_t.frac_bits - e, out_t, overflow, role)


def _score_codes(scores_raw: object, scores_t: FixedType) -> np.ndarray:
    """Scores validated as int64 codes of ``scores_t`` with shape (..., N), N >= 1."""
    x = int_codes(scores_raw, scores_t, "softmax scores")
    if x.ndim == 0 or x.shape[-1] == 0:
        raise UsageError(f"softmax scores: expected shape (..., N) with N >= 1, got {x.shape}")
    return x


def _check_order(order: object, shape: tuple[int, ...]) -> np.ndarray:
    """``order`` validated for scores of ``shape``: int64 permutations broadcasting to it."""
    n = shape[-1]
    o = np.asarray(order)
    if o.dtype.kind not in "iu" or o.ndim == 0 or o.shape[-1] != n:
        raise UsageError(f"softmax order: expected integer permutations of {n} keys, "
                         f"got shape {o.shape} dtype {o.dtype}")
    if not np.array_equal(np.sort(o, axis=-1), np.broadcast_to(np.arange(n), o.shape)):
        raise UsageError("softmax order: every row must be a permutation of 0..N-1")
    try:
        np.broadcast_to(o, shape)
    except ValueError:
        raise UsageError(f"softmax order: shape {o.shape} does not broadcast to scores "
                         f"{shape}") from None
    return o.astype(np.int64, copy=False)


def _streamed(scores: np.ndarray, order: object) -> np.ndarray:
    """Scores rearranged into streaming order along the last axis."""
    if order is None:
        return scores
    o = np.broadcast_to(_check_order(order, scores.shape), scores.shape)
    return np.take_along_axis(scores, o, axis=-1)


def _order_rows(order: object, shape: tuple[int, ...]) -> np.ndarray:
    """Streaming order of scores (..., N) seen as rows (R, N): an int64 array (Q, N) whose row
    ``r % Q`` is row r's order (one row 0..N-1 when ``order`` is None)."""
    n = shape[-1]
    if order is None:
        return np.arange(n, dtype=np.int64)[None]
    o = _check_order(order, shape)
    while o.ndim > 1 and o.shape[0] == 1:
        o = o[0]
    if o.ndim == 1:
        return np.ascontiguousarray(o)[None]
    if o.ndim == 2 and o.shape[0] == shape[-2]:  # one order per query row (attention)
        return np.ascontiguousarray(o)
    return np.ascontiguousarray(np.broadcast_to(o, shape).reshape(-1, n))


class Softmax(Variant):
    """Interface of every softmax variant (variants are frozen dataclasses).

    A variant exposes ``out_t`` (the probability format), :meth:`stats`, :meth:`probs`,
    :meth:`forward` and :meth:`reference`. Subclasses implement ``_row_stats`` and ``probs``.
    """

    KIND: ClassVar[str] = "softmax"

    def max_type(self, scores_t: FixedType) -> FixedType:
        """Format of the per-row max returned by :meth:`stats`."""
        return scores_t

    def stats(
        self,
        scores_raw: np.ndarray,
        scores_t: FixedType,
        order: np.ndarray | None = None,
        overflow: dict[str, int] | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Per-row ``(max_raw, recip_raw)`` for scores (..., N) streamed in ``order``.

        Parameters
        ----------
        scores_raw : array_like of int, shape (..., N)
            Codes of ``scores_t``.
        order : array_like of int, shape (N,) or (..., N), optional
            Streaming order of the keys per row (a permutation); default 0..N-1.
        overflow : dict, optional
            Overflow counts per role are added here.

        Returns
        -------
        max_raw : np.ndarray, shape (...)
            Codes of :meth:`max_type`.
        recip_raw : np.ndarray, shape (...)
            Codes of the variant's reciprocal format (``recip_t``).
        """
        x = _score_codes(scores_raw, scores_t)
        lead = x.shape[:-1]
        rows = _streamed(x, order).reshape(-1, x.shape[-1])
        m, recip = self._row_stats(rows, scores_t, overflow)
        return m.reshape(lead), recip.reshape(lead)

    def probs(
        self,
        scores_raw: np.ndarray,
        scores_t: FixedType,
        max_raw: np.ndarray,
        recip_raw: np.ndarray,
        overflow: dict[str, int] | None = None,
    ) -> np.ndarray:
        """Probabilities (..., N) in ``out_t`` from the scores and their row statistics."""
        raise NotImplementedError

    def forward(
        self,
        scores_raw: np.ndarray,
        scores_t: FixedType,
        order: np.ndarray | None = None,
        overflow: dict[str, int] | None = None,
    ) -> np.ndarray:
        """Probabilities (..., N) in ``out_t``: :meth:`stats` then :meth:`probs`."""
        return self._forward(_score_codes(scores_raw, scores_t), scores_t, order, overflow)

    def _forward(self, x: np.ndarray, x_t: FixedType, order: np.ndarray | None,
                 overflow: dict[str, int] | None) -> np.ndarray:
        """:meth:`forward` on scores already validated as int64 codes (..., N) of ``x_t``,
        N >= 1 (the attention unit's own assignment to the score format made them)."""
        m, r = self.stats(x, x_t, order, overflow)
        return self.probs(x, x_t, m, r, overflow)

    @staticmethod
    def reference(x: np.ndarray) -> np.ndarray:
        """Float64 softmax over the last axis (the function every variant approximates)."""
        x = np.asarray(x, dtype=np.float64)
        z = np.exp(x - x.max(axis=-1, keepdims=True))
        return z / z.sum(axis=-1, keepdims=True)

    def _row_stats(self, rows: np.ndarray, x_t: FixedType,
                   overflow: dict[str, int] | None) -> tuple[np.ndarray, np.ndarray]:
        """Rows (R, N) in streaming order -> (max codes (R,), recip codes (R,))."""
        raise NotImplementedError


@dataclass(frozen=True, eq=False)
class RomSoftmax(Softmax):
    """Softmax with ROM exponentials, a running sum and the 1/m ROM reciprocal.

    Attributes
    ----------
    exp_t, sum_t, recip_table_t, recip_t, prob_t : FixedType
        Formats of roles ``softmax.exp``, ``.sum``, ``.recip_table``, ``.recip``, ``.prob``.
    recip_step_log2 : int
        Step of the 1/m ROM over [1, 2] (2**step; ``2**-recip_step_log2 + 1`` entries).
    fraction_bits : int
        Interpolation fraction width of every ROM of the variant.
    recip_table : Table
        The 1/m ROM (built from the fields).
    """

    exp_t: FixedType
    sum_t: FixedType
    recip_table_t: FixedType
    recip_t: FixedType
    prob_t: FixedType
    recip_step_log2: int = -6
    fraction_bits: int = 16
    recip_table: Table = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "recip_table", reciprocal_table(
            self.recip_table_t, step_log2=self.recip_step_log2,
            fraction_bits=self.fraction_bits))

    @property
    def out_t(self) -> FixedType:
        """Format of the probabilities (role ``softmax.prob``)."""
        return self.prob_t

    def probs(
        self,
        scores_raw: np.ndarray,
        scores_t: FixedType,
        max_raw: np.ndarray,
        recip_raw: np.ndarray,
        overflow: dict[str, int] | None = None,
    ) -> np.ndarray:
        """``p = prob_t(exp(score - max) * recip)`` per element (scores (..., N), stats (...))."""
        x = int_codes(scores_raw, scores_t, "softmax scores")
        m = int_codes(max_raw, self.max_type(scores_t), "softmax max")[..., None]
        r = int_codes(recip_raw, self.recip_t, "softmax recip")[..., None]
        e = self._exp(x, scores_t, m, overflow)
        return mul_assign(self.prob_t, e, self.exp_t, r, self.recip_t, overflow, "softmax.prob")

    def _forward(self, x, x_t, order, overflow):
        """When every intermediate fits int64 (the variant's
        :mod:`~vitaccel.units._softmax_kernels` plan), whole rows are computed in one
        compiled pass with the same bits and the same overflow counts; otherwise by
        :meth:`stats` and :meth:`probs` themselves."""
        plan = self._fused_plan(x_t)
        if plan is None:
            return super()._forward(x, x_t, order, overflow)
        rows = np.ascontiguousarray(x).reshape(-1, x.shape[-1])
        return run(plan, rows, _order_rows(order, x.shape), overflow).reshape(x.shape)

    def _fused_plan(self, scores_t: FixedType) -> Plan | None:
        """The fused kernel for scores of ``scores_t``, or None (not fusable)."""
        return None

    def _row_stats(self, rows, x_t, overflow):
        m, s = self._running(rows, x_t, overflow)
        return m, reciprocal(s, self.sum_t, self.recip_table, self.recip_t, overflow)

    # ---------------------------------------------------------- per variant
    def _running(self, rows: np.ndarray, x_t: FixedType,
                 overflow: dict[str, int] | None) -> tuple[np.ndarray, np.ndarray]:
        """Rows (R, N) in streaming order -> (max codes (R,), sum codes (R,) in sum_t)."""
        raise NotImplementedError

    def _exp(self, x: np.ndarray, x_t: FixedType, m: np.ndarray,
             overflow: dict[str, int] | None) -> np.ndarray:
        """exp_t codes of ``exp(x - max)`` (the variant's exponential) with ``m`` broadcast."""
        raise NotImplementedError


@dataclass(frozen=True, eq=False)
class _ExpSoftmax(RomSoftmax):
    """Softmax with e^x from an exp(-t) ROM (shared by the online and two-pass variants).

    ``exp(x - max) = exp_t(interp(exp(-t), t = max - x))``, t exact in ``sub_type(x_t, x_t)``;
    t beyond ``exp_t_max`` reads the last entry.
    """

    ROLE_FIELDS: ClassVar[dict[str, str]] = {
        "softmax.exp": "exp_t",
        "softmax.sum": "sum_t",
        "softmax.recip_table": "recip_table_t",
        "softmax.recip": "recip_t",
        "softmax.prob": "prob_t",
    }

    exp_step_log2: int = -5
    exp_t_max: float = 16.0
    exp_table: Table = field(init=False)

    def __post_init__(self) -> None:
        super().__post_init__()
        object.__setattr__(self, "exp_table", exp_neg_table(
            self.exp_t, step_log2=self.exp_step_log2, t_max=self.exp_t_max,
            fraction_bits=self.fraction_bits))

    def _exp_of_distance(self, d: np.ndarray, x_t: FixedType,
                         overflow: dict[str, int] | None) -> np.ndarray:
        return self.exp_table.interp(d, sub_type(x_t, x_t), self.exp_t, overflow=overflow,
                                     role="softmax.exp")

    def _exp(self, x, x_t, m, overflow):
        return self._exp_of_distance(m - x, x_t, overflow)


@dataclass(frozen=True, eq=False)
class OnlineSoftmax(_ExpSoftmax):
    """Edge-MoE's single-pass softmax: running max and running sum in streaming order.

    Per row, the first key sets ``max = x, sum = 1``; each later key x::

        e = exp(-|x - max|)                         # exp ROM, softmax.exp
        if x > max:  sum = sum_t(sum * e); sum = sum_t(sum + 1); max = x
        else:        sum = sum_t(sum + e)

    (two assignments in the new-max branch, as Edge-MoE's ``sum *= e; sum += 1``). Bits depend
    on the order; the max itself does not.
    """

    NAME: ClassVar[str] = "online"

    def _fused_plan(self, scores_t):
        return online_plan(self, scores_t)

    def _running(self, rows, x_t, overflow):
        # The running max before each key is a prefix max; only the sum is sequential.
        before = np.maximum.accumulate(rows, axis=1)[:, :-1]
        later = rows[:, 1:]
        e = np.zeros_like(rows)
        e[:, 1:] = self._exp_of_distance(np.abs(later - before), x_t, overflow)
        new = np.zeros(rows.shape, bool)
        new[:, 1:] = later > before
        s0 = assign(self.sum_t, np.ones(rows.shape[0], np.int64), _ONE_T, overflow,
                    "softmax.sum")
        s = running_sum(s0, 1, e, self.exp_t, self.sum_t, new=new, overflow=overflow)
        return rows.max(axis=1), s


@dataclass(frozen=True, eq=False)
class TwoPassSoftmax(_ExpSoftmax):
    """Stable two-pass softmax: exact row max first, then ``sum = sum_t(sum + e)`` from 0 in
    streaming order, ``e = exp(x - max)`` from the exp ROM.
    """

    NAME: ClassVar[str] = "two_pass"

    def _fused_plan(self, scores_t):
        return two_pass_plan(self, scores_t)

    def _running(self, rows, x_t, overflow):
        m = rows.max(axis=1)
        e = self._exp_of_distance(m[:, None] - rows, x_t, overflow)
        s = running_sum(np.zeros_like(m), 0, e, self.exp_t, self.sum_t, overflow=overflow)
        return m, s


@dataclass(frozen=True, eq=False)
class Base2Softmax(RomSoftmax):
    """Softermax: base-2 exponent, integer running max, shift rescale of the running sum.

    ``z = z_t(x * LOG2E)`` with ``LOG2E`` = log2(e) rounded to ``ap_ufixed<1+log2e_frac_bits,1>``;
    ``c = ceil(z)`` (integer). Per row the first key sets ``max = c``, ``sum = pow2(z - max)``;
    each later key::

        if c > max:  sum = sum_t(floor(sum * 2**(max - c)))   # right shift, truncating
                     max = c
        sum = sum_t(sum + pow2(z - max))

    ``pow2(-w)`` for ``w = max - z >= 0``: ``q = floor(w)``, ``f = w - q`` (the fractional bits
    of w, ``ap_ufixed<F_z, 0>``), ``exp_t(interp(2**-f))`` shifted right by q (truncating).
    ``stats`` returns the integer max as codes of ``max_type`` (an ``ap_int``).
    """

    NAME: ClassVar[str] = "base2"
    ROLE_FIELDS: ClassVar[dict[str, str]] = {
        "softmax.z": "z_t",
        "softmax.exp": "exp_t",
        "softmax.sum": "sum_t",
        "softmax.recip_table": "recip_table_t",
        "softmax.recip": "recip_t",
        "softmax.prob": "prob_t",
    }

    z_t: FixedType = field(kw_only=True)
    pow2_step_log2: int = -6
    log2e_frac_bits: int = 15
    pow2_table: Table = field(init=False)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.z_t.frac_bits < 1:
            raise UsageError(f"softmax variant 'base2': role softmax.z needs fractional bits, "
                             f"got {self.z_t}")
        object.__setattr__(self, "pow2_table", pow2_neg_table(
            self.exp_t, step_log2=self.pow2_step_log2, fraction_bits=self.fraction_bits))

    @property
    def log2e_t(self) -> FixedType:
        """Format of the log2(e) constant."""
        return FixedType(1 + self.log2e_frac_bits, 1, False)

    @property
    def log2e_raw(self) -> int:
        """Code of log2(e) in ``log2e_t`` (rounded to nearest)."""
        return int(math.floor(math.log2(math.e) * 2**self.log2e_frac_bits + 0.5))

    def max_type(self, scores_t: FixedType) -> FixedType:
        """The integer running max: ``ap_int<I_z + 1>`` (ceil can add one)."""
        return FixedType.integer(max(2, self.z_t.int_bits + 1))

    def _fused_plan(self, scores_t):
        return base2_plan(self, scores_t)

    def _z(self, x, x_t, overflow):
        return mul_assign(self.z_t, x, x_t, np.int64(self.log2e_raw), self.log2e_t, overflow,
                          "softmax.z")

    def _ceil(self, z):
        return -shift_floor(-z, np.int64(-self.z_t.frac_bits))

    def _pow2(self, z, c, overflow):
        """exp_t codes of 2**(z - c), c integer >= z."""
        fz = self.z_t.frac_bits
        w = (c << fz) - z
        q = w >> fz
        f = w & ((1 << fz) - 1)
        y = self.pow2_table.interp(f, FixedType(fz, 0, False), self.exp_t, overflow=overflow,
                                   role="softmax.exp")
        return scale_pow2(y, self.exp_t, -q, self.exp_t, overflow, "softmax.exp")

    def _running(self, rows, x_t, overflow):
        z = self._z(rows, x_t, overflow)
        m = np.maximum.accumulate(self._ceil(z), axis=1)  # the integer running max
        p = self._pow2(z, m, overflow)
        rshift = np.zeros_like(m)
        rshift[:, 1:] = m[:, 1:] - m[:, :-1]
        s0 = assign(self.sum_t, p[:, 0], self.exp_t, overflow, "softmax.sum")
        s = running_sum(s0, 1, p, self.exp_t, self.sum_t, rshift=rshift, overflow=overflow)
        return m[:, -1], s

    def _exp(self, x, x_t, m, overflow):
        return self._pow2(self._z(x, x_t, overflow), np.broadcast_to(m, x.shape), overflow)


SOFTMAX: dict[str, type[Softmax]] = {
    cls.NAME: cls for cls in (OnlineSoftmax, TwoPassSoftmax, Base2Softmax)
}

# The integer-only variants (ibert, ivit) add themselves to SOFTMAX on import.
import vitaccel.units.softmax_int  # noqa: E402,F401
