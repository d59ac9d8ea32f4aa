"""Fixed-point matrix product with explicit hardware accumulation semantics.

For every output element: ``acc = acc_t(bias)`` (or 0); for ``k = 0..K-1`` in order the exact
product ``p = x[m,k] * w[k,n]`` is optionally assigned to ``product_t``, and then
``acc = acc_t(acc + p)`` (full-precision sum, then rounding and overflow handling).

Seven implementations give exactly those bits; :func:`legal_paths` lists those whose
equivalence is proven for the actual data, and the fastest of them is used:

``"int8"``
    As the BLAS paths below, on int8 GEMM units (VNNI / AMX, through torch): the codes split
    into at most four balanced int8 limbs, one GEMM with int32 accumulation per limb shift,
    the parts combined in int64 by the write-back (:mod:`vitaccel.fixed._int8`). First for a
    single 2-D product of int8 codes (one GEMM); with more limbs, or for a stack of small
    products, after the BLAS paths (it still covers products beyond float64's 2**53).
``"blas32"`` / ``"blas64"``
    No assignment can round or overflow (or the accumulator wraps, which is associative modulo
    2**W, and never rounds), every product is an integer below 2**24 / 2**53 and every partial
    sum of any subset of products stays below that bound (K is cut into chunks if needed), so a
    float BLAS product of the codes is exact.
``"fma_floor"``
    The sums of ``"floor64"`` below, each term added by one AVX-512 FMA rounded toward minus
    infinity into a biased float64 sum (:mod:`vitaccel.fixed._fma_floor`): where the host has
    AVX-512F, operand codes are float64-exact and every partial sum stays below 2**51.
``"floor64"``
    ``AP_WRAP`` accumulator that never rounds and products cast to an ``AP_TRN`` / ``AP_WRAP``
    ``product_t`` at least as wide as the accumulator (Edge-MoE): modulo 2**W the per-term
    wrap changes nothing, so each term is ``floor(x * w * 2**-s)`` and the sum wraps once at
    the end; computed in int64 (a 32 x 32 -> 64 bit multiply where the codes fit int32),
    admitted while products, terms and all partial sums stay below 2**53 (numba,
    vectorised).
``"wrap"``
    ``AP_WRAP`` accumulator (N = 0) that never rounds: the products (each cast to
    ``product_t`` on its own, e.g. Edge-MoE's ``ap_fixed<32,10>`` ``AP_TRN``) are summed in
    int64 and wrapped at the end (numba, parallel over rows).
``"sat"``
    ``AP_SAT`` / ``AP_SAT_SYM`` accumulator that never rounds: a clamp after every addition
    (numba, parallel over rows).
``"exact"``
    Anything else (saturating or rounding accumulators): the assignment after every addition,
    in k order (numba, parallel over rows).
"""

from __future__ import annotations

import numpy as np

from vitaccel.errors import UsageError
from vitaccel.fixed._arith import add_type, mul_type
from vitaccel.fixed._blas import codes_as, float_matmul
from vitaccel.fixed._cast import cast_raw, lowest_kept
from vitaccel.fixed._epilogue import Epilogue, finish_codes
from vitaccel.fixed._fma_floor import available as fma_available
from vitaccel.fixed._fma_floor import fits as fma_fits
from vitaccel.fixed._fma_floor import fma_floor_sum
from vitaccel.fixed._format import FixedType, Overflow, Rounding
from vitaccel.fixed._int8 import codes_limbs, int8_limbs, limb_count, limb_product
from vitaccel.fixed._kernels import (
    cast_params,
    code_range,
    mm_exact,
    mm_floor_flags,
    mm_floor_sum,
    mm_sat,
    mm_wrap,
    pick,
)

__all__ = ["fixed_matmul", "legal_paths", "PATHS"]

PATHS = ("int8", "blas32", "blas64", "fma_floor", "floor64", "wrap", "sat", "exact")
_FLOAT_TYPES = {"blas32": np.float32, "blas64": np.float64}
_MIN_CHUNK = 32
_COPY_MIN = 1 << 12  # operands from this many codes get their copy (float, int8) with the range


def _codes(raw: object, fmt: FixedType, name: str, copy=None,
           rows: bool = True) -> tuple[np.ndarray, int, int, np.ndarray | None]:
    """int64 codes of ``fmt`` with their min and max (validated), and, for a large int64
    array and a ``copy`` (a float type, or a limb count), their float copy or int8 limbs
    (:func:`codes_limbs`, ``rows`` for the x operand) made in the same pass, else None."""
    if not isinstance(fmt, FixedType):
        raise UsageError(f"fixed_matmul: {name} format must be a FixedType, got {fmt!r}")
    a = np.asarray(raw)
    if a.dtype.kind not in "iu":
        raise UsageError(f"fixed_matmul: {name} must hold integer codes of {fmt}, got {a.dtype}")
    af = None
    if copy is not None and a.dtype == np.int64 and a.size >= _COPY_MIN:
        a = np.ascontiguousarray(a)
        af, lo, hi = (codes_limbs(a, copy, rows) if isinstance(copy, int)
                      else codes_as(a, copy))
    else:
        lo, hi = code_range(a) if a.size else (0, 0)
    if lo < fmt.min_raw or hi > fmt.max_raw:
        raise UsageError(
            f"fixed_matmul: {name} codes must lie in [{fmt.min_raw}, {fmt.max_raw}] for {fmt}, "
            f"got values in [{lo}, {hi}]"
        )
    return np.ascontiguousarray(a, dtype=np.int64), lo, hi, af


def _copy_guess(x_t: FixedType, w_t: FixedType, product_t: FixedType | None,
                stacked: bool) -> tuple:
    """The operand copies a fast path would use for codes of these formats, (x, w): one int8
    limb each for a single product of int8 codes (the int8 path), else the float type of a
    BLAS path (float32 when every code and product fits 2**24, float64 for 2**53), or None
    each (a per-product cast, or wider codes)."""
    if product_t is not None:
        return None, None
    if not stacked and all(limb_count(t.min_raw, t.max_raw) == 1 for t in (x_t, w_t)):
        return 1, 1
    x_abs, w_abs = (max(-t.min_raw, t.max_raw) for t in (x_t, w_t))
    for dtype, bound in ((np.float32, 1 << 24), (np.float64, 1 << 53)):
        if x_abs * w_abs <= bound and max(x_abs, w_abs) <= bound:
            return dtype, dtype
    return None, None


def _is_plain_wrap(fmt: FixedType) -> bool:
    return fmt.overflow is Overflow.WRAP and fmt.sat_bits == 0


def legal_paths(
    x_range: tuple[int, int],
    w_range: tuple[int, int],
    acc0_range: tuple[int, int],
    k_len: int,
    x_t: FixedType,
    w_t: FixedType,
    acc_t: FixedType,
    product_t: FixedType | None,
    need_overflow: bool,
    stacked: bool = False,
) -> dict[str, int | tuple[int, int]]:
    """Every provably exact path, fastest first, mapped to its parameter: the K chunk length
    of a BLAS path, the limb counts (Lx, Lw) of the int8 path, else 0.

    ``*_range`` are the (min, max) codes actually present; ``acc0_range`` is that of the
    accumulator's initial value (the cast bias, or 0). ``need_overflow``: overflow counts are
    wanted, so a wrapping accumulator must be proven in range to skip the per-step check.
    ``stacked``: a stack of products (the int8 path then comes after the BLAS ones, as it
    does with more than one limb per operand: measured in the deit-tiny simulation, one int8
    GEMM per product beat float32 BLAS by 10%, while w16a16's 2 x 2 limbs (three GEMMs) ran
    no faster than float64 BLAS).
    """
    mt = mul_type(x_t, w_t)
    pt = mt if product_t is None else product_t
    corners = [a * b for a in x_range for b in w_range]
    p_lo, p_hi = min(corners), max(corners)
    p_abs = max(abs(p_lo), abs(p_hi))
    wrap_acc = _is_plain_wrap(acc_t) and pt.frac_bits <= acc_t.frac_bits
    paths: dict[str, int] = {}
    linear = acc_t.frac_bits >= pt.frac_bits
    if product_t is not None:
        scale = product_t.frac_bits - mt.frac_bits
        linear = linear and (
            scale >= 0
            and (p_hi << scale) <= product_t.max_raw
            and (p_lo << scale) >= lowest_kept(product_t)
        )
    if linear:
        d = acc_t.frac_bits - mt.frac_bits  # a product in accumulator LSBs: p << d
        lo_sum = acc0_range[0] + k_len * (min(p_lo, 0) << d)
        hi_sum = acc0_range[1] + k_len * (max(p_hi, 0) << d)
        in_range = hi_sum <= acc_t.max_raw and lo_sum >= lowest_kept(acc_t)
        if in_range or (wrap_acc and not need_overflow):
            operand_abs = max(map(abs, (*x_range, *w_range)))
            blas = {}
            for name, bound in (("blas32", 1 << 24), ("blas64", 1 << 53)):
                if operand_abs > bound or p_abs > bound:
                    continue
                chunk = k_len if p_abs == 0 else min(k_len, bound // p_abs)
                if chunk >= min(k_len, _MIN_CHUNK):
                    blas[name] = max(chunk, 1)
            limbs = int8_limbs(x_range, w_range, k_len)
            if limbs == (1, 1) and not stacked:
                paths["int8"] = limbs
            paths.update(blas)
            if limbs:
                paths.setdefault("int8", limbs)
    if wrap_acc and product_t is not None:
        shift = mt.frac_bits - product_t.frac_bits
        d = acc_t.frac_bits - product_t.frac_bits
        per_term_wrap_free = (
            product_t.rounding is Rounding.TRN
            and _is_plain_wrap(product_t)
            and product_t.width >= acc_t.width
            and shift >= 0
        )
        bound = 1 << 53
        if (
            per_term_wrap_free
            and p_abs < bound
            and (((p_abs >> shift) + 1) << d) * k_len + max(map(abs, acc0_range)) < bound
        ):
            x_abs, w_abs = (max(map(abs, r)) for r in (x_range, w_range))
            if fma_available() and fma_fits(x_abs, w_abs, shift, k_len):
                paths["fma_floor"] = 0
            paths["floor64"] = 0
    if wrap_acc:
        paths["wrap"] = 0
    if acc_t.overflow in (Overflow.SAT, Overflow.SAT_SYM) and pt.frac_bits <= acc_t.frac_bits:
        paths["sat"] = 0
    paths["exact"] = 0
    return paths


def _int8(x, w, nx, nw, acc0, shift, acc_t, epilogue, copies) -> np.ndarray:
    """``acc0 + (x @ w) * 2**shift`` wrapped to ``acc_t`` (then ``epilogue``), the product of
    x (M, K) @ w (K, N) by int8 GEMMs on ``nx`` and ``nw`` limbs (:mod:`vitaccel.fixed._int8`);
    ``copies`` holds limbs of x and w already made (or None each)."""
    limbs = []
    for a, c, n, rows in ((x, copies[0], nx, True), (w, copies[1], nw, False)):
        shape = (a.shape[0], n, a.shape[1]) if rows else (n, *a.shape)
        ok = c is not None and c.dtype == np.int8 and c.shape == shape
        limbs.append(c if ok else codes_limbs(np.ascontiguousarray(a), n, rows)[0])
    return finish_codes(limb_product(*limbs), acc_t, epilogue, acc0=acc0, shift=shift)


def _blas(x, w, chunk, dtype, acc0, shift, acc_t, epilogue, copies) -> np.ndarray:
    """``acc0 + (x @ w) * 2**shift`` wrapped to ``acc_t`` (then ``epilogue``), the product via
    exact float BLAS (x (M, K) @ w (K, N), or stacked: x (G, M, K) @ w (G, K, N)); ``copies``
    holds float copies of x and w already made (or None each)."""
    k_len = x.shape[-1]
    xf, wf = (a.astype(dtype) if af is None or af.dtype != dtype else af.reshape(a.shape)
              for a, af in zip((x, w), copies, strict=True))
    total = float_matmul(xf[..., :chunk], wf[..., :chunk, :])  # exact integers in float
    if chunk < k_len:  # chunk sums are exact; their total is summed in int64
        total = total.astype(np.int64)
        for k0 in range(chunk, k_len, chunk):
            total += float_matmul(xf[..., k0 : k0 + chunk],
                                  wf[..., k0 : k0 + chunk, :]).astype(np.int64)
    n_cols = total.shape[-1]
    rows = int(np.prod(total.shape[:-1]))
    out = finish_codes(np.ascontiguousarray(total).reshape(rows, n_cols), acc_t, epilogue,
                       acc0=acc0, shift=shift)
    return out.reshape(total.shape)


def fixed_matmul(
    x_raw: object,
    x_t: FixedType,
    w_raw: object,
    w_t: FixedType,
    *,
    acc_t: FixedType,
    product_t: FixedType | None = None,
    bias_raw: object | None = None,
    bias_t: FixedType | None = None,
    return_overflow: bool = False,
    path: str | None = None,
    epilogue: Epilogue | None = None,
):
    """Fixed-point ``x @ w`` accumulated as the hardware does (see the module docstring).

    Parameters
    ----------
    x_raw : array_like of int, shape (..., M, K)
        Codes of ``x_t`` (leading batch dimensions allowed).
    x_t, w_t : FixedType
        Formats of the operands.
    w_raw : array_like of int, shape (K, N) or (B, K, N)
        Codes of ``w_t``; with a batch axis, x must be (B, M, K) and item b multiplies x[b]
        by w[b] (attention heads). Paths are chosen once from the ranges of the whole batch.
    acc_t : FixedType
        Accumulator format; the result is in this format.
    product_t : FixedType, optional
        Each exact product is assigned to this format before it is added.
    bias_raw : array_like of int, shape (N,), optional
        Initial accumulator values, codes of ``bias_t`` (assigned to ``acc_t`` first).
    bias_t : FixedType, optional
        Format of ``bias_raw`` (required with it).
    return_overflow : bool
        Also return how many output elements overflowed at least once (bias assignment,
        product cast or accumulation).
    path : str, optional
        Force one of ``PATHS`` (tests and benchmarks); a BLAS or ``"wrap"`` path that is not
        provably exact for these inputs is refused.
    epilogue : Epilogue, optional
        Write-back fused into the product's last pass (2-D ``w`` only): the result is assigned
        to ``epilogue.out_t`` and a residual added (:mod:`vitaccel.fixed._epilogue`); its
        overflows are counted in ``epilogue.overflow``, not in ``n_overflow``.

    Returns
    -------
    raw : np.ndarray of int64, shape (..., M, N)
        Codes of ``acc_t`` (of ``epilogue.out_t`` with an epilogue); with
        ``return_overflow``: ``(raw, n_overflow)``.
    """
    stacked = np.ndim(w_raw) == 3
    x_copy, w_copy = (_copy_guess(x_t, w_t, product_t, stacked)
                      if all(isinstance(t, FixedType) for t in (x_t, w_t)) else (None, None))
    x, x_lo, x_hi, xf = _codes(x_raw, x_t, "x_raw", x_copy, rows=True)
    w, w_lo, w_hi, wf = _codes(w_raw, w_t, "w_raw", w_copy, rows=False)
    if not (
        (x.ndim >= 2 and w.ndim == 2 and x.shape[-1] == w.shape[0])
        or (x.ndim == 3 and w.ndim == 3 and x.shape[0] == w.shape[0] and x.shape[2] == w.shape[1])
    ):
        raise UsageError(
            "fixed_matmul: expected x (..., M, K) and w (K, N), or x (B, M, K) and w (B, K, N), "
            f"got shapes {x.shape} and {w.shape}"
        )
    if epilogue is not None and w.ndim != 2:
        raise UsageError("fixed_matmul: an epilogue needs a 2-D w (K, N)")
    for name, fmt in (("acc_t", acc_t), ("product_t", product_t)):
        if fmt is not None and not (isinstance(fmt, FixedType) and fmt.fits_int64):
            raise UsageError(
                f"fixed_matmul: {name} must be a FixedType of at most 63 bits "
                f"unsigned / 64 signed, got {fmt}"
            )
    mt = mul_type(x_t, w_t)
    if not mt.fits_int64:
        raise UsageError(f"fixed_matmul: the exact product {mt} does not fit int64")
    pt = mt if product_t is None else product_t
    try:
        st = add_type(acc_t, pt)
    except UsageError:  # wider than 64 bits
        st = None
    sum_fits = st is not None and st.fits_int64
    k_len, n_cols = w.shape[-2:]
    if bias_raw is None:
        acc0 = np.zeros(n_cols, np.int64)
        ovf0 = np.zeros(n_cols, bool)
    else:
        if bias_t is None:
            raise UsageError("fixed_matmul: bias_raw given without bias_t")
        b = np.asarray(bias_raw)
        if b.shape != (n_cols,):
            raise UsageError(f"fixed_matmul: bias_raw must have shape ({n_cols},), got {b.shape}")
        acc0, ovf0 = cast_raw(b, bias_t, acc_t)
    acc0_range = (int(acc0.min()), int(acc0.max())) if n_cols else (0, 0)
    legal = legal_paths(
        (x_lo, x_hi),
        (w_lo, w_hi),
        acc0_range,
        k_len,
        x_t,
        w_t,
        acc_t,
        product_t,
        return_overflow,
        stacked,
    )
    if not sum_fits:  # the per-step sum acc + p needs more than int64
        legal.pop("exact")
        legal.pop("sat", None)
        if return_overflow:
            legal.pop("wrap", None)
        if not legal:
            raise UsageError(
                f"fixed_matmul: the sum of {acc_t} and {pt} does not fit int64 and no BLAS "
                "path (nor, without overflow counting, the wrap path) is provably exact; "
                "narrow acc_t"
            )
    chosen = next(iter(legal)) if path is None else path
    if chosen not in PATHS:
        raise UsageError(f"fixed_matmul: path must be one of {PATHS}, got {path!r}")
    if chosen not in legal:
        raise UsageError(
            f"fixed_matmul: path {chosen!r} is not provably exact for these inputs "
            f"(exact paths: {list(legal)})"
        )
    out, n_ovf = _dispatch(x, w, chosen, legal[chosen], acc0, ovf0, mt, st, product_t,
                           acc_t, return_overflow, k_len, n_cols,
                           max(-x_lo, x_hi), max(-w_lo, w_hi), epilogue, (xf, wf))
    return (out, n_ovf) if return_overflow else out


def _dispatch(x, w, chosen, arg, acc0, ovf0, mt, st, product_t, acc_t, return_overflow,
              k_len, n_cols, x_abs, w_abs, epilogue, copies):
    """Run the chosen path on one (x, w) pair or on each item of a batch of them (with the
    epilogue, if any, for a 2-D w). ``arg``: the path's parameter (:func:`legal_paths`);
    ``copies``: float copies or int8 limbs of x and w (:func:`_codes`), or None each."""
    if chosen in ("fma_floor", "floor64"):  # one compiled call for the whole batch
        lead = x.shape[:-1]
        rows = int(np.prod(lead))
        x3 = x if w.ndim == 3 else x.reshape(1, rows, k_len)
        w3 = w if w.ndim == 3 else w[None]
        pt = mt if product_t is None else product_t
        out, n_ovf = _run_floor(x3, w3, acc0, ovf0, mt, pt, acc_t, return_overflow, x_abs, w_abs,
                                chosen == "fma_floor")
        if epilogue is not None:
            out = finish_codes(out.reshape(rows, n_cols), acc_t, epilogue)
        return out.reshape(*lead, n_cols), n_ovf
    if chosen.startswith("blas") and w.ndim == 3:  # one stacked BLAS call for the batch
        return _execute(chosen, arg, x, w, acc0, ovf0, mt, st, product_t, acc_t,
                        return_overflow, None, copies)
    if w.ndim == 2:
        rows = int(np.prod(x.shape[:-1]))
        out, n_ovf = _execute(chosen, arg, x.reshape(rows, k_len), w, acc0, ovf0, mt, st,
                              product_t, acc_t, return_overflow, epilogue, copies)
        return out.reshape(*x.shape[:-1], n_cols), n_ovf
    parts = [_execute(chosen, arg, xi, wi, acc0, ovf0, mt, st, product_t, acc_t,
                      return_overflow, None, (None, None)) for xi, wi in zip(x, w, strict=True)]
    out = np.stack([o for o, _ in parts]) if parts else np.empty((0, *x.shape[1:-1], n_cols),
                                                                  np.int64)
    return out, sum(n for _, n in parts)


def _execute(chosen, arg, x2, w, acc0, ovf0, mt, st, product_t, acc_t, return_overflow,
             epilogue, copies):
    """Run path ``chosen`` on x2 (M, K) @ w (K, N) (BLAS paths: also stacked (G, M, K) @
    (G, K, N)), then the epilogue (2-D only); returns (codes, overflowed accumulators).
    ``arg`` and ``copies`` as for :func:`_dispatch`."""
    pt = mt if product_t is None else product_t
    if chosen == "int8" or chosen in _FLOAT_TYPES:
        shift = acc_t.frac_bits - mt.frac_bits
        if chosen == "int8":
            out = _int8(x2, w, *arg, acc0, shift, acc_t, epilogue, copies)
        else:
            out = _blas(x2, w, arg, _FLOAT_TYPES[chosen], acc0, shift, acc_t, epilogue, copies)
        # only the bias assignment can overflow: once per output row
        return out, int(np.count_nonzero(ovf0)) * int(np.prod(x2.shape[:-1]))
    if chosen == "wrap":
        out, flags = _run_wrap(x2, w, acc0, ovf0, mt, product_t, acc_t, return_overflow)
    elif chosen == "sat":
        sym = acc_t.signed and acc_t.overflow is Overflow.SAT_SYM
        low_code = (-acc_t.max_raw if acc_t.width > 1 else -1) if sym else acc_t.min_raw
        pcast = cast_params(mt.frac_bits - pt.frac_bits, mt.width, pt)
        out, flags = pick(mm_sat, x2.size * w.shape[1])(
            x2, w, acc0, ovf0, product_t is not None, pcast, acc_t.frac_bits - pt.frac_bits,
            acc_t.min_raw, acc_t.max_raw, low_code, sym,
        )
    else:
        pcast = cast_params(mt.frac_bits - pt.frac_bits, mt.width, pt)
        acast = cast_params(st.frac_bits - acc_t.frac_bits, st.width, acc_t)
        out, flags = pick(mm_exact, x2.size * w.shape[1])(
            x2, w, acc0, ovf0, product_t is not None, pcast, acast,
            st.frac_bits - acc_t.frac_bits, st.frac_bits - pt.frac_bits,
        )
    if epilogue is not None:
        out = finish_codes(out, acc_t, epilogue)
    return out, int(np.count_nonzero(flags))


def _run_floor(x3, w3, acc0, ovf0, mt, pt, acc_t, track, x_abs, w_abs, fma):
    """The ``floor64`` path (``fma``: the ``fma_floor`` one) on stacked products x3 (G, M, K)
    @ w3 (G, K, N); ``x_abs`` and ``w_abs`` are the largest magnitudes of their codes.

    Overflow flags: rows whose partial sums provably stay in range (bound ``|acc0| +
    (|x| @ |w|) * 2**-s + K``, in accumulator LSBs; first with ``|w|`` replaced by its
    maximum, then exactly for the rows that bound does not clear) and whose truncated products
    fit ``pt`` keep only the bias flags; the other rows rerun with per-step checks. Where
    both operands' codes fit int32, each product is one 32 x 32 -> 64 bit multiply.
    """
    shift = mt.frac_bits - pt.frac_bits
    d = acc_t.frac_bits - pt.frac_bits
    if fma:
        out, row_abs = fma_floor_sum(x3, w3, shift, acc0, d, acc_t.width, acc_t.signed)
    else:
        lane = np.int32(0) if max(x_abs, w_abs) < 1 << 31 else np.int64(0)
        out, row_abs = pick(mm_floor_sum, x3.size * w3.shape[2])(
            x3, w3, shift, acc0, d, acc_t.width, acc_t.signed, lane)
    n_ovf = int(np.count_nonzero(ovf0)) * x3.shape[0] * x3.shape[1]
    if track and x3.size and w3.size:
        suspects = _floor_suspects(x3, w3, row_abs, acc0, shift, d, pt, acc_t, x_abs, w_abs)
        args = (np.asarray(acc0, np.float64), ovf0, 2.0**-shift, 2.0**d, float(pt.min_raw),
                float(pt.max_raw), float(acc_t.min_raw), float(acc_t.max_raw))
        for g, m in suspects:
            flags = pick(mm_floor_flags, m.size * x3.shape[2] * w3.shape[2])(
                x3[g, m].astype(np.float64), w3[g].astype(np.float64), *args)
            n_ovf += int(np.count_nonzero(flags)) - int(np.count_nonzero(ovf0)) * m.size
    return out, n_ovf


def _floor_suspects(x3, w3, row_abs, acc0, shift, d, pt, acc_t, x_abs, w_abs):
    """(g, rows) pairs of the floor64 product that might overflow (see :func:`_run_floor`);
    ``row_abs`` (G, M) holds ``sum_k |x|``, ``x_abs`` and ``w_abs`` bound the magnitudes of the
    codes."""
    term_abs = ((x_abs * w_abs) >> shift) + 1
    limit = min(acc_t.max_raw, -acc_t.min_raw - 1)
    if term_abs > min(pt.max_raw, -pt.min_raw - 1):
        return [(g, np.arange(x3.shape[1])) for g in range(x3.shape[0])]
    d_mul = 2.0**d
    a0 = float(np.abs(acc0).max()) if acc0.size else 0.0
    k_len = w3.shape[1]
    w_max = (np.maximum(-w3.min(axis=(1, 2)), w3.max(axis=(1, 2))) if w3.shape[0] > 1
             else np.array([w_abs]))  # per item |w| max, without an |w| temporary
    coarse = a0 + (row_abs * w_max[:, None] * 2.0**-shift + k_len) * d_mul
    flagged = coarse * (1 + 1e-12) + 1 > limit
    out = []
    for g in np.nonzero(flagged.any(axis=1))[0]:
        rows = np.nonzero(flagged[g])[0]
        ax = np.abs(x3[g, rows]).astype(np.float64)
        bound = np.abs(acc0) + (float_matmul(ax, np.abs(w3[g]).astype(np.float64))
                                * 2.0**-shift + k_len) * d_mul
        rows = rows[(bound * (1 + 1e-12) + 1 > limit).any(axis=1)]
        if rows.size:
            out.append((int(g), rows))
    return out


def _run_wrap(x2, w, acc0, ovf0, mt, product_t, acc_t, track):
    p_mode, p_shift, p_bits = 0, 0, 64
    pt = mt
    if product_t is not None:
        pt = product_t
        shift = mt.frac_bits - product_t.frac_bits
        fast = (
            product_t.signed
            and product_t.rounding is Rounding.TRN
            and _is_plain_wrap(product_t)
            and 0 <= shift <= 63
        )
        p_mode, p_shift, p_bits = (1, shift, product_t.width) if fast else (2, 0, 64)
    pcast = cast_params(mt.frac_bits - pt.frac_bits, mt.width, pt)
    return pick(mm_wrap, x2.size * w.shape[1])(
        x2,
        w,
        acc0,
        ovf0,
        p_mode,
        pcast,
        p_shift,
        p_bits,
        acc_t.frac_bits - pt.frac_bits,
        acc_t.width,
        acc_t.signed,
        track,
        acc_t.min_raw,
        acc_t.max_raw,
    )
