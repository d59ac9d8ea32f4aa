"""Multi-head attention unit: QK^T, softmax and A.V on a fused qkv tensor.

The 1/sqrt(head_dim) scale is folded into the query weights by the graph builder, so the
unit computes, per head h and query row i::

    s[i, j] = score(sum_d q[i, d] * k[j, d])           # products cast to product_t if set
    p[i, :] = softmax variant over s[i, :], keys streamed in the row's key order
    o[i, d] = out(acc(sum_j p[i, j] * v[j, d]))        # accumulated in the same key order

Key order: ``standard`` streams keys 0..N-1 for every row. ``reordered`` is Edge-MoE's
constant-bandwidth order with P query slots: row i meets its keys in the rotated order
i mod P, ..., N-1, 0, ..., (i mod P)-1. Order changes bits only where an operation is not
associative (the online softmax's running max/sum, saturating or rounding accumulators).

Multiplier-free kernel options (attrs; absent means ``"mac"``):

* ``qk_kernel="binary"`` (ShiftAddViT): per head, q and k become +-1 codes
  (:func:`vitaccel.units.shiftadd.binary_codes`: +1 where the value is >= the floor of its
  mean over the tokens, in codes), their similarity is the popcount dot product
  ``c = D_h - 2 * hamming`` (an integer in [-D_h, D_h]) and ``s = score(c * 2**binary_shift)``
  (exact value assigned to ``score_t``; the builder sets ``binary_shift =
  -round(log2(sqrt(head_dim)))``, the softmax temperature as a shift).
* ``av_kernel="log2"`` (FQ-ViT): each probability is rounded to a power of two,
  ``E = round(log2 p)`` (:func:`vitaccel.units.shiftadd.log2_quantize_probs`), zero when
  ``E < log2_min_exp``; A.V then adds ``product(v[j] * 2**E)`` (a shift of v, floored by
  ``product_t``; exact when it is None) in the row's key order, exactly as
  :func:`vitaccel.units.shiftadd.shift_av`.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from vitaccel.fixed import FixedType, Overflow, fixed_matmul, mul_type
from vitaccel.ir import Node
from vitaccel.units._ops import produced_codes
from vitaccel.units.shiftadd import LOG2_ZERO, binary_codes, binary_scores, log2_quantize_probs

__all__ = ["key_order", "simulate", "reference", "order_free"]


def key_order(n: int, order: str, parallel_queries: int) -> np.ndarray | None:
    """Per-row key streaming order, shape (n, n); None for the standard 0..n-1 order.

    Parameters
    ----------
    n : int
        Number of tokens.
    order : {"standard", "reordered"}
        The attention unit's schedule.
    parallel_queries : int
        P, the number of query slots of the reordered schedule.
    """
    if order == "standard" or parallel_queries == 1:
        return None
    if order != "reordered":
        raise ValueError(f"unknown attention order {order!r} (expected standard or reordered)")
    starts = np.arange(n) % parallel_queries
    return (starts[:, None] + np.arange(n)[None, :]) % n


def order_free(acc_t: FixedType, term_t: FixedType) -> bool:
    """True when adding terms of ``term_t`` into ``acc_t`` gives the same bits in any order.

    That holds when every addition is exact apart from wrap-around (which is arithmetic
    modulo 2^W, hence associative): no rounding (acc has at least the term's fractional bits)
    and plain AP_WRAP overflow without saturation bits.
    """
    return (
        acc_t.overflow == Overflow.WRAP
        and acc_t.sat_bits == 0
        and acc_t.frac_bits >= term_t.frac_bits
    )


def _split_heads(qkv: np.ndarray, heads: int, head_dim: int) -> tuple[np.ndarray, ...]:
    b, t, _ = qkv.shape
    parts = qkv.reshape(b, t, 3, heads, head_dim).transpose(2, 0, 3, 1, 4)
    return parts[0], parts[1], parts[2]  # each (B, H, T, hd)


@njit(parallel=True, cache=True)
def _head_operands(qkv, heads, head_dim):
    """q (B*H, T, hd), k transposed (B*H, hd, T) and v (B*H, T, hd) of a fused qkv tensor
    (B, T, 3*H*hd), C-contiguous, in one parallel pass (numpy's reshapes copy k twice)."""
    b, t, _ = qkv.shape
    q = np.empty((b * heads, t, head_dim), qkv.dtype)
    k_t = np.empty((b * heads, head_dim, t), qkv.dtype)
    v = np.empty((b * heads, t, head_dim), qkv.dtype)
    for g in prange(b * heads):
        i, h = g // heads, g % heads
        for j in range(t):
            for d in range(head_dim):
                q[g, j, d] = qkv[i, j, h * head_dim + d]
                k_t[g, d, j] = qkv[i, j, (heads + h) * head_dim + d]
                v[g, j, d] = qkv[i, j, (2 * heads + h) * head_dim + d]
    return q, k_t, v


def _av(p: np.ndarray, p_t: FixedType, v: np.ndarray, v_t: FixedType, node: Node,
        order: np.ndarray | None, overflow: dict[str, int]) -> np.ndarray:
    """A.V for a stack of heads: p (G, T, T), v (G, T, hd) -> raw (G, T, hd) in acc_t."""
    acc_t, product_t = node.attrs["acc_t"], node.attrs["product_t"]
    term_t = product_t if product_t is not None else mul_type(p_t, v_t)
    if order is None or order_free(acc_t, term_t):
        out, n = fixed_matmul(p, p_t, v, v_t, acc_t=acc_t, product_t=product_t,
                              return_overflow=True)
        overflow["attn.accum"] = overflow.get("attn.accum", 0) + int(n)
        return out
    out = np.empty((*p.shape[:2], v.shape[2]), dtype=np.int64)
    starts = order[:, 0]
    for s in np.unique(starts):
        rows = np.nonzero(starts == s)[0]
        perm = order[rows[0]]
        res, n = fixed_matmul(np.ascontiguousarray(p[:, rows][:, :, perm]), p_t,
                              np.ascontiguousarray(v[:, perm]), v_t, acc_t=acc_t,
                              product_t=product_t, return_overflow=True)
        overflow["attn.accum"] = overflow.get("attn.accum", 0) + int(n)
        out[:, rows] = res
    return out


def log2_probs(p: np.ndarray, p_t: FixedType, min_exp: int) -> tuple[np.ndarray, FixedType]:
    """Probabilities rounded to powers of two ``2**E`` (E in [min_exp, 0], or 0), as codes of
    ``ap_ufixed<1 - min_exp, 1>`` (one set bit each: a shift in hardware)."""
    e = log2_quantize_probs(p, p_t, min_exp)
    keep = e != LOG2_ZERO
    e = np.minimum(np.where(keep, e, min_exp), 0)
    codes = np.where(keep, np.int64(1) << (e - min_exp), 0)
    return codes, FixedType(1 - min_exp, 1, signed=False)


def _binary_scores(q: np.ndarray, k: np.ndarray, node: Node,
                   overflow: dict[str, int]) -> np.ndarray:
    """Popcount scores of +-1 codes (B, H, T, T), assigned to ``score_t`` with the shift."""
    c = binary_scores(binary_codes(q), binary_codes(k))
    shift = node.attrs["binary_shift"]
    width = max(2, int(node.attrs["head_dim"]).bit_length() + 1)
    out, n = node.attrs["score_t"].cast(c, FixedType(width, width + shift), return_overflow=True)
    overflow["attn.score"] = overflow.get("attn.score", 0) + int(n)
    return out


def simulate(node: Node, inputs: list[np.ndarray], fmts: list[FixedType],
             overflow: dict[str, int]) -> np.ndarray:
    """Bit-exact attention on a batch: inputs[0] is qkv (B, T, 3D); returns (B, T, D)."""
    heads, hd = node.attrs["num_heads"], node.attrs["head_dim"]
    a_t = fmts[0]
    qkv = inputs[0]
    b, t, _ = qkv.shape
    if qkv.dtype == np.int64:
        q, k_t, v = _head_operands(np.ascontiguousarray(qkv), heads, hd)
    else:  # object codes (64-bit ap_ufixed): the products below refuse them
        q, k, v = (p.reshape(b * heads, t, hd) for p in _split_heads(qkv, heads, hd))
        k_t = k.transpose(0, 2, 1)
    score_t, product_t = node.attrs["score_t"], node.attrs["product_t"]
    softmax = node.attrs["softmax"]
    order = key_order(t, node.attrs["order"], node.attrs["parallel_queries"])
    if node.attrs.get("qk_kernel", "mac") == "binary":
        scores = _binary_scores(q.reshape(b, heads, t, hd),
                                k_t.transpose(0, 2, 1).reshape(b, heads, t, hd), node, overflow)
    else:
        scores, n = fixed_matmul(q, a_t, k_t, a_t, acc_t=score_t, product_t=product_t,
                                 return_overflow=True)
        overflow["attn.score"] = overflow.get("attn.score", 0) + int(n)
        scores = scores.reshape(b, heads, t, t)
    if t:  # scores of the product above; the public forward refuses zero keys
        x = produced_codes(scores, score_t, "softmax scores")
        probs = softmax._forward(x, score_t, order, overflow)
    else:
        probs = softmax.forward(scores, score_t, order=order, overflow=overflow)
    p_t = softmax.out_t
    if node.attrs.get("av_kernel", "mac") == "log2":
        probs, p_t = log2_probs(probs, p_t, node.attrs["log2_min_exp"])
    ctx = _av(probs.reshape(b * heads, t, t), p_t, v, a_t, node, order, overflow)
    ctx = ctx.reshape(b, heads, t, hd).transpose(0, 2, 1, 3).reshape(b, t, heads * hd)
    out, n = node.fmt.cast(ctx, node.attrs["acc_t"], return_overflow=True, copy=False)
    overflow["out"] = overflow.get("out", 0) + int(n)
    return out


def reference(node: Node, inputs: list[np.ndarray]) -> np.ndarray:
    """Float64 attention (exact softmax) on the float qkv tensor (scale already folded in)."""
    heads, hd = node.attrs["num_heads"], node.attrs["head_dim"]
    q, k, v = _split_heads(inputs[0], heads, hd)
    if node.attrs.get("qk_kernel", "mac") == "binary":
        def codes(x: np.ndarray) -> np.ndarray:
            return np.where(x >= x.mean(axis=-2, keepdims=True), 1.0, -1.0)

        s = codes(q) @ codes(k).transpose(0, 1, 3, 2) * 2.0 ** node.attrs["binary_shift"]
    else:
        s = q @ k.transpose(0, 1, 3, 2)
    s = s - s.max(axis=-1, keepdims=True)
    e = np.exp(s)
    p = e / e.sum(axis=-1, keepdims=True)
    if node.attrs.get("av_kernel", "mac") == "log2":
        ex = np.round(np.log2(np.maximum(p, 2.0 ** (node.attrs["log2_min_exp"] - 2))))
        p = np.where(ex >= node.attrs["log2_min_exp"], 2.0 ** np.minimum(ex, 0), 0.0)
    ctx = p @ v
    b, _, t, _ = ctx.shape
    return ctx.transpose(0, 2, 1, 3).reshape(b, t, heads * hd)
