"""Truncated products at float64 GEMM speed: the ``fma_floor`` path of ``fixed_matmul``.

``sum_k floor(x[m,k] * w[k,n] * 2**-s)`` (every product truncated on its own, as Edge-MoE's
product cast does) cannot be a plain GEMM, but it can be one FMA per term. The sum is held
in float64 biased by ``1.5 * 2**52``, where the spacing of doubles is exactly 1, and each
term is added by one AVX-512 fused multiply-add rounded toward minus infinity
(``vfmadd231pd`` with ``{rd-sae}``): the FMA forms ``acc + x * (w * 2**-s)`` exactly and
rounds it once, down to an integer, which is ``acc + floor(x * w * 2**-s)`` because ``acc``
is an integer. That holds while every operand code is a float64 (``|code| <= 2**53``) and
every partial sum, the term being added included, stays below ``2**51`` in magnitude
(:func:`fits`). The rounding is a property of the instruction, so no floating-point
environment is changed.

The kernel is an 8-row x 24-column register tile (24 accumulators in zmm registers) written
in LLVM IR (:func:`_tile`), run in parallel over the row blocks of a stacked product; it reads
x's int64 codes directly (one conversion per code and 24 FMAs) and a float64 copy of
``w * 2**-s`` padded to whole tiles. It needs AVX-512F on the host and numba compiling for
the host (:func:`available`); elsewhere the ``floor64`` int64 kernel does the same sums.
"""

from __future__ import annotations

import functools

import llvmlite.binding as llvm_binding
import numba
import numpy as np
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

from vitaccel.fixed._kernels import compiled_pair, pick
from vitaccel.fixed._specialise import span_kernel

__all__ = ["available", "fits", "fma_floor_sum"]

_ROWS = 8
_VECS = 3
_LANES = 8  # doubles per zmm register
_COLS = _VECS * _LANES
_BIAS = 1.5 * 2.0**52
_ROUND_DOWN = 0x9  # _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC
_SUM_BOUND = 1 << 51
_CODE_BOUND = 1 << 53


@functools.cache
def available() -> bool:
    """Whether this machine runs the kernel: AVX-512F on the host, and numba compiling for
    the host CPU (not a generic target set by ``NUMBA_CPU_NAME`` / ``NUMBA_CPU_FEATURES``)."""
    if numba.config.CPU_NAME not in (None, "host") or numba.config.CPU_FEATURES:
        return False
    return bool(llvm_binding.get_host_cpu_features().get("avx512f", False))


def fits(x_abs: int, w_abs: int, shift: int, k_len: int) -> bool:
    """Whether the kernel is exact for codes of magnitude at most ``x_abs`` and ``w_abs``,
    terms ``x * w * 2**-shift`` and sums of ``k_len`` terms: operands exact in float64,
    ``w * 2**-shift`` a normal double, and every partial sum below ``2**51``."""
    if max(x_abs, w_abs) > _CODE_BOUND or not 0 <= shift <= 1000:
        return False
    return k_len * (((x_abs * w_abs) >> shift) + 1) < _SUM_BOUND


@intrinsic
def _tile(typingctx, x, w, m0, m_last, n0, tile):
    """``tile[r * 24 + j] = 1.5 * 2**52 + sum_k floor(x[min(m0 + r, m_last), k] *
    w[k, n0 + j])`` for r < 8, j < 24 (x (M, K): C-contiguous int64 codes, each converted
    to float64 as it is read; w (K, >= n0 + 24): C-contiguous float64; tile: 192 float64),
    each term added by one round-down FMA."""
    if (x != types.Array(types.int64, 2, "C") or w != types.Array(types.float64, 2, "C")
            or tile != types.Array(types.float64, 1, "C")):
        return None
    sig = types.void(x, w, types.int64, types.int64, types.int64, tile)

    def codegen(context, builder, signature, args):
        xa = context.make_array(signature.args[0])(context, builder, args[0])
        wa = context.make_array(signature.args[1])(context, builder, args[1])
        ta = context.make_array(signature.args[5])(context, builder, args[5])
        m0_v, m_last, n0_v = args[2], args[3], args[4]
        i32, i64, f64 = ir.IntType(32), ir.IntType(64), ir.DoubleType()
        vec = ir.VectorType(f64, _LANES)
        fma = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(vec, [vec, vec, vec, i32]),
            "llvm.x86.avx512.vfmadd.pd.512")
        k_len = cgutils.unpack_tuple(builder, xa.shape, 2)[1]
        x_rows = [builder.gep(xa.data, [builder.mul(
            builder.select(builder.icmp_signed("<", builder.add(m0_v, ir.Constant(i64, r)),
                                               m_last),
                           builder.add(m0_v, ir.Constant(i64, r)), m_last), k_len)])
            for r in range(_ROWS)]
        n_w = cgutils.unpack_tuple(builder, wa.shape, 2)[1]
        w_col = builder.gep(wa.data, [n0_v])
        bias = ir.Constant(vec, [_BIAS] * _LANES)
        accs = [[cgutils.alloca_once_value(builder, bias) for _ in range(_VECS)]
                for _ in range(_ROWS)]
        splat = ir.Constant(ir.VectorType(i32, _LANES), [0] * _LANES)
        undef = ir.Constant(vec, ir.Undefined)
        round_down = ir.Constant(i32, _ROUND_DOWN)
        with cgutils.for_range(builder, k_len) as loop:
            w_row = builder.gep(w_col, [builder.mul(loop.index, n_w)])
            ws = [builder.load(builder.bitcast(builder.gep(w_row, [ir.Constant(i64, v * _LANES)]),
                                               vec.as_pointer()), align=8)
                  for v in range(_VECS)]
            for r in range(_ROWS):
                xv = builder.sitofp(builder.load(builder.gep(x_rows[r], [loop.index])), f64)
                xb = builder.shuffle_vector(
                    builder.insert_element(undef, xv, ir.Constant(i32, 0)), undef, splat)
                for v in range(_VECS):
                    acc = builder.load(accs[r][v])
                    builder.store(builder.call(fma, [xb, ws[v], acc, round_down]), accs[r][v])
        out = builder.bitcast(ta.data, vec.as_pointer())
        for r in range(_ROWS):
            for v in range(_VECS):
                builder.store(builder.load(accs[r][v]),
                              builder.gep(out, [ir.Constant(i64, r * _VECS + v)]), align=8)
        return context.get_dummy_value()

    return sig, codegen


def _row_abs(x):
    """``sum_k |x|`` (G, M) as float64 of int64 codes x (G, M, K)."""
    g_len, m_rows, k_len = x.shape
    row_abs = np.empty((g_len, m_rows))
    for gm in numba.prange(g_len * m_rows):
        g, m = gm // m_rows, gm % m_rows
        s = 0.0
        for k in range(k_len):
            s += abs(x[g, m, k])
        row_abs[g, m] = s
    return row_abs


@span_kernel
def _write_tile(tile, acc0, out, rows, cols, d, width, signed):
    """``out[r, j] = acc0[j] + (sum << d)`` wrapped to ``width`` bits for the ``rows`` x
    ``cols`` corner of a tile of biased sums (row length 24)."""
    up = 64 - width
    mask = (np.int64(1) << width) - 1 if width < 64 else np.int64(-1)
    for r in range(rows):
        for j in range(cols):
            v = acc0[j] + (np.int64(tile[r * _COLS + j] - _BIAS) << d)
            out[r, j] = ((v << up) >> up) if signed else (v & mask)


def _floor_tiles(x, wf, acc0, d, width, signed, out):
    """``out[g] = acc0 + (sum_k floor(x[g] @ wf[g] terms) << d)``, wrapped to ``width`` bits;
    wf (G, K, N') holds ``w * 2**-s`` with N' >= N padded to whole tiles."""
    g_len, m_rows, _ = x.shape
    n_cols = out.shape[2]
    row_blocks = (m_rows + _ROWS - 1) // _ROWS
    col_blocks = wf.shape[2] // _COLS
    for t in numba.prange(g_len * row_blocks):
        g = t // row_blocks
        m0 = (t % row_blocks) * _ROWS
        rows = min(_ROWS, m_rows - m0)
        tile = np.empty(_ROWS * _COLS)
        for c in range(col_blocks):
            n0 = c * _COLS
            _tile(x[g], wf[g], m0, m_rows - 1, n0, tile)
            _write_tile(tile, acc0[n0:], out[g, m0:, n0:], rows, min(_COLS, n_cols - n0), d,
                        width, signed)


_ROW_ABS = compiled_pair(_row_abs)
_FLOOR_TILES = compiled_pair(_floor_tiles)


def fma_floor_sum(x, w, shift: int, acc0: np.ndarray, d: int, width: int,
                  signed: bool) -> tuple[np.ndarray, np.ndarray]:
    """``acc0 + (sum_k floor(x[g,m,k] * w[g,k,n] * 2**-shift) << d)`` wrapped to ``width``
    bits (two's complement when ``signed``) for int64 codes x (G, M, K) and w (G, K, N);
    returns the int64 codes (G, M, N) and ``sum_k |x[g,m,k]|`` (G, M) in float64.

    The same result as ``mm_floor_sum`` of :mod:`vitaccel.fixed._kernels`; the caller
    checks :func:`available` and :func:`fits`.
    """
    g_len, m_rows, k_len = x.shape
    n_cols = w.shape[2]
    x = np.ascontiguousarray(x, np.int64)
    row_abs = pick(_ROW_ABS, x.size)(x)
    wf = np.zeros((g_len, k_len, -(-n_cols // _COLS) * _COLS))
    np.ldexp(w, -shift, out=wf[..., :n_cols])
    out = np.empty((g_len, m_rows, n_cols), np.int64)
    if out.size:
        pick(_FLOOR_TILES, x.size * n_cols)(x, wf, acc0, d, width, signed, out)
    return out, row_abs
