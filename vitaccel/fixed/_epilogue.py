"""The end of a linear product in one compiled pass: the accumulator's last step, the
assignment to the output format and a residual add.

For every output element (the linear engine's write-back)::

    acc = acc_t(total * 2**shift + acc0)     # BLAS and int8 paths: exact total, bias, wrap
    y = out_t(acc)                           # assignment to the output format
    y = out_t(y + residual)                  # with a residual (exact sum, then assignment)

Each step is the ``ap_fixed`` assignment of :func:`vitaccel.fixed._kernels.cast_one`; the
unfused definition (:meth:`FixedType.cast`, :func:`vitaccel.fixed.fixed_add`) gives the same
bits and is used where an intermediate needs more than 62 bits. Large products run a kernel
specialised to the formats (:mod:`vitaccel.fixed._specialise`).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
from numba import njit, prange

from vitaccel.errors import UsageError
from vitaccel.fixed._arith import add_type, fixed_add
from vitaccel.fixed._assign import assign_one, assign_params
from vitaccel.fixed._cast import as_raw, cast_raw, is_identity
from vitaccel.fixed._format import FixedType
from vitaccel.fixed._kernels import column_sums
from vitaccel.fixed._specialise import Fused, cast_at, constants_or, flat_params

__all__ = ["Epilogue", "finish_codes"]

_WORD_BITS = 62  # widest exact sum the fused kernel forms in int64


@dataclass(frozen=True, eq=False)
class Epilogue:
    """Write-back of a linear product (see the module docstring).

    Attributes
    ----------
    out_t : FixedType
        Output format: the accumulator is assigned to it, and so is the residual sum.
    overflow : dict
        Overflowed values are added under ``"out"`` (assignment) and ``"residual"`` (sum).
    residual : np.ndarray, optional
        Codes of ``residual_t`` with the shape of the product's result.
    residual_t : FixedType, optional
        Format of ``residual`` (required with it).
    """

    out_t: FixedType
    overflow: dict[str, int]
    residual: np.ndarray | None = None
    residual_t: FixedType | None = None

    def __post_init__(self) -> None:
        if (self.residual is None) != (self.residual_t is None):
            raise UsageError("Epilogue: residual and residual_t must be given together")
        if not isinstance(self.out_t, FixedType):
            raise UsageError(f"Epilogue: out_t must be a FixedType, got {self.out_t!r}")
        if self.residual_t is not None and not isinstance(self.residual_t, FixedType):
            raise UsageError(f"Epilogue: residual_t must be a FixedType, got {self.residual_t!r}")


def _count(overflow: dict[str, int], role: str, n: int) -> None:
    # the output role is always reported (as the units' assignments do), the residual when hit
    if n or role == "out":
        overflow[role] = overflow.get(role, 0) + int(n)


@njit(cache=True)
def _finish_params(p):
    c_out, i = cast_at(p, 5)
    c_res, j = cast_at(p, i + 3)
    return (p[0] != 0, p[1], p[2], p[3] != 0, p[4] != 0, c_out, p[i], p[i + 1], p[i + 2] != 0,
            c_res, p[j])


def _finish(consts):
    def finish_rows(total, acc0, res, params, out, counts):
        """One pass over ``total`` (P, R, N) into ``out``: with ``finish`` the end of a BLAS
        or int8 product (``(int(sum_p total[p] << 8p) << shift) + acc0`` wrapped to ``width``
        bits), else ``total`` (P = 1) holds accumulator codes; then the output assignment
        (``do_out``) and the residual sum ``(y << s_y) + (res << s_r)`` assigned by ``c_res``
        (``do_res``). Overflow counts per row go to ``counts`` (R, 2)."""
        for i in prange(total.shape[1]):
            finish, shift, width, signed, do_out, c_out, s_y, s_r, do_res, c_res, parts = (
                constants_or(consts, _finish_params, params))
            up = 64 - width
            mask = (np.int64(1) << width) - 1 if width < 64 else np.int64(-1)
            n_out = 0
            n_res = 0
            for j in range(total.shape[2]):
                v = np.int64(total[0, i, j])
                for q in range(1, parts):
                    v += np.int64(total[q, i, j]) << (8 * q)
                if finish:
                    v = (v << shift) + acc0[j]
                    v = ((v << up) >> up) if signed else (v & mask)
                if do_out:
                    v, f = assign_one(v, c_out)
                    n_out += f
                if do_res:
                    v, f = assign_one((v << s_y) + (res[i, j] << s_r), c_res)
                    n_res += f
                out[i, j] = v
            counts[i, 0] = n_out
            counts[i, 1] = n_res

    return finish_rows


_FINISH = Fused(_finish, _finish_params)
_NO_RESIDUAL = np.zeros((1, 1), np.int64)
_NO_CAST = assign_params(0, 1, FixedType(1, 1))


@functools.lru_cache(maxsize=1024)
def _packed(finish, shift, acc_t, c_out, s_y, s_r, c_res, parts) -> np.ndarray:
    """The write-back kernel's packed parameters (:func:`_finish_params`)."""
    return flat_params(finish, shift, acc_t.width, acc_t.signed, c_out is not None,
                       _NO_CAST if c_out is None else c_out, s_y, s_r, c_res is not None,
                       _NO_CAST if c_res is None else c_res, parts)


def _run(total, finish, acc0, shift, acc_t, c_out, res, s_y, s_r, c_res):
    """The write-back kernel on ``total`` (R, N) or parts (P, R, N); ``c_out`` / ``c_res``
    None: no such assignment. Returns (codes, #out overflows, #residual overflows)."""
    total = total if total.ndim == 3 else total[None]
    parts, rows, n_cols = total.shape
    out = np.empty((rows, n_cols), np.int64)
    counts = np.zeros((rows, 2), np.int64)
    params = _packed(finish, shift, acc_t, c_out, s_y, s_r, c_res, parts)
    _FINISH.kernel(rows * n_cols, params)(total, acc0, res, params, out, counts)
    n_out, n_res = column_sums(counts)
    return out, n_out, n_res


def finish_codes(total: np.ndarray, acc_t: FixedType, epilogue: Epilogue | None, *,
                 acc0: np.ndarray | None = None, shift: int = 0) -> np.ndarray:
    """The write-back of a (R, N) product.

    Parameters
    ----------
    total : np.ndarray, shape (R, N) or (P, R, N)
        With ``acc0``: exact integer sums of the products (float or integer) in units of
        ``2**-shift`` accumulator LSBs, still to be shifted, biased by the ``acc0`` codes
        (N,) and wrapped to ``acc_t``; as P parts (an int8-limb product,
        :mod:`vitaccel.fixed._int8`) the sum is ``sum_p total[p] * 256**p``. Without
        ``acc0``: accumulator codes of ``acc_t`` (R, N).
    epilogue : Epilogue, optional
        Output assignment and residual add; None: the codes of ``acc_t`` are returned.

    Returns
    -------
    np.ndarray of int64, shape (R, N)
        Codes of ``epilogue.out_t`` (or of ``acc_t``).
    """
    rows, n_cols = total.shape[-2:]
    finish = acc0 is not None
    a0 = acc0 if finish else np.zeros(n_cols, np.int64)
    if epilogue is None:
        return _run(total, finish, a0, shift, acc_t, None, _NO_RESIDUAL, 0, 0, None)[0]
    out_t = epilogue.out_t
    if not out_t.fits_int64:
        raise UsageError(f"Epilogue: out_t must fit int64 codes, got {out_t}")
    c_out = (None if is_identity(acc_t, out_t) else
             assign_params(acc_t.frac_bits - out_t.frac_bits, acc_t.width, out_t))
    res, res_t = epilogue.residual, epilogue.residual_t
    sum_t = add_type(out_t, res_t) if res is not None else None
    if res is not None:
        res = as_raw(res, res_t, "Epilogue residual")
        if res.size != rows * n_cols:
            raise UsageError(
                f"Epilogue: residual has {res.size} values, the product has {rows * n_cols}")
    if sum_t is None or sum_t.width <= _WORD_BITS:
        res_args = (_NO_RESIDUAL, 0, 0, None) if sum_t is None else (
            np.ascontiguousarray(res, np.int64).reshape(rows, n_cols),
            sum_t.frac_bits - out_t.frac_bits, sum_t.frac_bits - res_t.frac_bits,
            assign_params(sum_t.frac_bits - out_t.frac_bits, sum_t.width, out_t))
        out, n_out, n_res = _run(total, finish, a0, shift, acc_t, c_out, *res_args)
        _count(epilogue.overflow, "out", n_out)
        _count(epilogue.overflow, "residual", n_res)
        return out
    acc = finish_codes(total, acc_t, None, acc0=acc0, shift=shift) if finish else total
    y, ovf = cast_raw(acc, acc_t, out_t)
    _count(epilogue.overflow, "out", int(np.count_nonzero(ovf)))
    s, s_t = fixed_add(y, out_t, res.reshape(rows, n_cols), res_t)
    y, ovf = cast_raw(s, s_t, out_t)
    _count(epilogue.overflow, "residual", int(np.count_nonzero(ovf)))
    return y
