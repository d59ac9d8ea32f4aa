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
in LLVM IR (:func:`_tile`), run in parallel over the row blocks of a stacked product. Each
row block of x is packed k-major as float64 once (so a code is broadcast by a load, not by
a shuffle on the FMA port), and w is read as a float64 copy of ``w * 2**-s`` padded to
whole tiles. It needs AVX-512F on the host and numba compiling for the host
(:func:`available`); elsewhere the ``floor64`` int64 kernel does the same sums.
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
def _tile(typingctx, xp, w, n0, tile):
    """``tile[r * 24 + j] = 1.5 * 2**52 + sum_k floor(xp[k, r] * w[k, n0 + j])`` for r < 8,
    j < 24 (xp (K, 8): a row block of x packed k-major as float64; w (K, >= n0 + 24); tile:
    192 float64; all C-contiguous), each term added by one round-down FMA. A packed x code
    is broadcast straight from memory (a load, not a shuffle competing with the FMAs)."""
    f64_2d = types.Array(types.float64, 2, "C")
    if xp != f64_2d or w != f64_2d or tile != types.Array(types.float64, 1, "C"):
        return None
    sig = types.void(xp, w, types.int64, tile)

    def codegen(context, builder, signature, args):
        xa = context.make_array(signature.args[0])(context, builder, args[0])
        wa = context.make_array(signature.args[1])(context, builder, args[1])
        ta = context.make_array(signature.args[3])(context, builder, args[3])
        i32, i64 = ir.IntType(32), ir.IntType(64)
        vec = ir.VectorType(ir.DoubleType(), _LANES)
        fma = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(vec, [vec, vec, vec, i32]),
            "llvm.x86.avx512.vfmadd.pd.512")
        k_len = cgutils.unpack_tuple(builder, xa.shape, 2)[0]
        n_w = cgutils.unpack_tuple(builder, wa.shape, 2)[1]
        w_col = builder.gep(wa.data, [args[2]])
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
            x_row = builder.gep(xa.data, [builder.mul(loop.index, ir.Constant(i64, _ROWS))])
            for r in range(_ROWS):
                xv = builder.load(builder.gep(x_row, [ir.Constant(i64, r)]))
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


def _floor_tiles(x, wf, acc0, d, width, signed, out, row_abs):
    """``out[g] = acc0 + (sum_k floor(x[g] @ wf[g] terms) << d)``, wrapped to ``width`` bits,
    and ``row_abs[g, m] = sum_k |x[g, m, k]|`` (float64); wf (G, K, N') holds ``w * 2**-s``
    with N' >= N padded to whole tiles."""
    g_len, m_rows, k_len = x.shape
    n_cols = out.shape[2]
    row_blocks = (m_rows + _ROWS - 1) // _ROWS
    col_blocks = wf.shape[2] // _COLS
    for t in numba.prange(g_len * row_blocks):
        g = t // row_blocks
        m0 = (t % row_blocks) * _ROWS
        rows = min(_ROWS, m_rows - m0)
        xp = np.empty((k_len, _ROWS))  # rows past the end repeat the last row (not stored)
        for r in range(_ROWS):
            m = min(m0 + r, m_rows - 1)
            s = 0.0
            for k in range(k_len):
                v = x[g, m, k]
                xp[k, r] = v
                s += abs(v)
            if r < rows:
                row_abs[g, m] = s
        tile = np.empty(_ROWS * _COLS)
        for c in range(col_blocks):
            n0 = c * _COLS
            _tile(xp, wf[g], n0, tile)
            _write_tile(tile, acc0[n0:], out[g, m0:, n0:], rows, min(_COLS, n_cols - n0), d,
                        width, signed)


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
    wf = np.zeros((g_len, k_len, -(-n_cols // _COLS) * _COLS))
    np.ldexp(w, -shift, out=wf[..., :n_cols])
    out = np.empty((g_len, m_rows, n_cols), np.int64)
    row_abs = np.empty((g_len, m_rows))
    pick(_FLOOR_TILES, x.size * max(n_cols, 1))(x, wf, acc0, d, width, signed, out, row_abs)
    return out, row_abs
