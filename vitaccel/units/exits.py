"""Early-exit units (LGViT style): the local-perception grid convolutions and the exit head.

An exit head after block ``i`` is a chain of nodes named ``exits.{j}.*`` ending in the
``exit_head`` node ``exits.{j}``: ``exits.{j}.norm`` (LayerNorm), then for ``local`` heads
``exits.{j}.pw`` and ``exits.{j}.dw`` (op ``grid_conv``), for ``global`` heads
``exits.{j}.attn.qkv`` / ``exits.{j}.attn`` / ``exits.{j}.attn.proj`` (residual = the norm
output), then the exit head itself.

``grid_conv`` (input (T, D), output (T, D)): prefix tokens are assigned to the output format
unchanged; the patch tokens, as a row-major (gh, gw) grid, go through

* ``kind="pointwise"`` (1x1 conv): the linear engine, ``weight`` (D, D), ``bias`` (D,);
* ``kind="depthwise"`` (3x3, zero padding 1): per channel c and pixel (y, x)::

      acc = acc_t(bias[c])
      for ky in 0..2, kx in 0..2 (row-major), taps inside the grid only:
          acc = acc_t(acc + product_t(x[y+ky-1, x+kx-1, c] * weight[c, ky, kx]))

  (a tap in the zero padding adds an exact 0, which leaves ``acc`` unchanged);

then the fused GELU variant (``gelu``) and the assignment to the node format.

``exit_head`` (input (T, D), output (classes,) logits): ``npre = num_prefix``::

    s    = sum of the patch tokens (exact)                  # N = T - npre patches
    feat = pool_t(s * mean_scale + (x[0] if npre else 0))   # one assignment; mean_scale=1/N
    acc  = acc_t(bias + sum_d product_t(feat[d] * weight[:, d]))
    logits = out(acc)

and the exit decision on the logit codes, in the format of the ``threshold`` parameter
(``decision_t``, role ``exit.prob`` or ``exit.entropy``; the threshold is the configured float
assigned to that format, so AP_TRN floors it):

* ``rule="max_prob"``: ``p = softmax(logits)`` by the node's softmax variant (keys in class
  order); ``score = decision_t(max_j p_j)``; exit when ``score >= threshold``.
* ``rule="entropy"``: with the same variant's row statistics ``(max, recip)`` and
  probabilities ``p_j``, the identity ``H = -sum p ln p = ln S + sum_j p_j (max - l_j)``
  (S = sum_j exp(l_j - max) = 1 / recip)::

      e    = leading_one(recip code); k = F_recip - e       # recip = m * 2**-k, m in [1, 2)
      m    = floor(recip code * 2**(K - e))                 # ap_ufixed<K+1,1>, K = ROM index
      lnm  = log_table.interp(m)                            # ln(m) ROM, role exit.log_table
      H    = decision_t(k * LN2 - lnm)                      # LN2: ap_ufixed<ln2_frac_bits,0>
      for j in 0..C-1:  H = decision_t(H + decision_t(p_j * (max - l_j)))
      exit when H <= threshold

The simulator stops computing the images that exit (``SimContext.stop``). Statistics:
:func:`exit_summary` (one run), :func:`exit_sweep` (many thresholds from one run).
"""

from __future__ import annotations

import functools
import math
from typing import Any

import numpy as np

from vitaccel.fixed import FixedType, fixed_add, fixed_mul, fixed_sub, sub_type, sum_type
from vitaccel.ir import Node
from vitaccel.units._exit_report import (
    ExitSummary,
    apply_threshold,
    exit_summary,
    exit_sweep,
    fires,
    with_threshold,
)
from vitaccel.units._ops import leading_one, shift_floor
from vitaccel.units.linear import gelu_exact, matmul_rows
from vitaccel.units.tables import Table, build_table

__all__ = [
    "EXIT_RULES", "grid_simulate", "grid_reference", "simulate", "reference", "decision_score",
    "fires", "log_table", "ln2_code", "ExitSummary", "exit_summary", "exit_sweep",
    "apply_threshold", "with_threshold",
]

EXIT_RULES = ("max_prob", "entropy")


def _count(overflow: dict[str, int], role: str, n: int) -> None:
    if n:
        overflow[role] = overflow.get(role, 0) + int(n)


def _cast(dst: FixedType, raw: np.ndarray, src: FixedType, overflow: dict[str, int],
          role: str) -> np.ndarray:
    out, n = dst.cast(raw, src, return_overflow=True)
    _count(overflow, role, n)
    return np.asarray(out, dtype=np.int64)


# ------------------------------------------------------------------------- grid_conv
def _depthwise(grid: np.ndarray, g_t: FixedType, node: Node,
               overflow: dict[str, int]) -> np.ndarray:
    """3x3 depthwise conv of grid (B, gh, gw, D) codes -> (B, gh, gw, D) codes of acc_t."""
    w, b = node.params["weight"], node.params["bias"]
    acc_t, product_t = node.attrs["acc_t"], node.attrs["product_t"]
    _, gh, gw, _ = grid.shape
    acc = _cast(acc_t, np.broadcast_to(b.raw, grid.shape), b.fmt, overflow, "accum")
    for ky in range(3):
        for kx in range(3):
            dy, dx = ky - 1, kx - 1
            ys, xs = slice(max(0, -dy), gh - max(0, dy)), slice(max(0, -dx), gw - max(0, dx))
            src = grid[:, max(0, dy):gh - max(0, -dy), max(0, dx):gw - max(0, -dx)]
            prod, prod_t = fixed_mul(src, g_t, w.raw[:, ky, kx], w.fmt)
            if product_t is not None:
                prod, prod_t = _cast(product_t, prod, prod_t, overflow, "product"), product_t
            total, total_t = fixed_add(acc[:, ys, xs], acc_t, prod, prod_t)
            acc[:, ys, xs] = _cast(acc_t, total, total_t, overflow, "accum")
    return acc


def grid_simulate(node: Node, inputs: list[np.ndarray], fmts: list[FixedType],
                  overflow: dict[str, int]) -> np.ndarray:
    """Bit-exact ``grid_conv`` on a batch (B, T, D) -> (B, T, D) (module docstring)."""
    x, x_t = inputs[0], fmts[0]
    npre, (gh, gw) = node.attrs["num_prefix"], node.attrs["grid"]
    b, _, d = x.shape
    patches = x[:, npre:]
    if node.attrs["kind"] == "pointwise":
        acc = matmul_rows(patches, x_t, node, overflow)
    else:
        acc = _depthwise(patches.reshape(b, gh, gw, d), x_t, node, overflow).reshape(b, -1, d)
    y, y_t = acc, node.attrs["acc_t"]
    gelu = node.attrs["gelu"]
    if gelu is not None:
        y, y_t = gelu.forward(y, y_t, overflow=overflow), gelu.out_t
    out = np.empty_like(x)
    out[:, :npre] = _cast(node.fmt, x[:, :npre], x_t, overflow, "out")
    out[:, npre:] = _cast(node.fmt, y, y_t, overflow, "out")
    return out


def grid_reference(node: Node, inputs: list[np.ndarray]) -> np.ndarray:
    """Float64 ``grid_conv`` with the reference weights and the exact GELU."""
    x = inputs[0]
    npre, (gh, gw) = node.attrs["num_prefix"], node.attrs["grid"]
    w, bias = node.params["weight"].ref, node.params["bias"].ref
    b, _, d = x.shape
    patches = x[:, npre:]
    if node.attrs["kind"] == "pointwise":
        y = patches @ w.T + bias
    else:
        pad = np.zeros((b, gh + 2, gw + 2, d))
        pad[:, 1:-1, 1:-1] = patches.reshape(b, gh, gw, d)
        y = np.broadcast_to(bias, (b, gh, gw, d)).copy()
        for ky in range(3):
            for kx in range(3):
                y = y + pad[:, ky:ky + gh, kx:kx + gw] * w[:, ky, kx]
        y = y.reshape(b, -1, d)
    if node.attrs["gelu"] is not None:
        y = gelu_exact(y)
    return np.concatenate([x[:, :npre], y], axis=1)


# ------------------------------------------------------------------------- exit_head
@functools.lru_cache(maxsize=16)
def _ln_table(fmt: FixedType, step_log2: int) -> Table:
    size = int(math.ldexp(1.0, -step_log2)) + 1
    return build_table("ln_mantissa", np.log, x0=1.0, step_log2=step_log2, size=size, fmt=fmt)


def log_table(node: Node) -> Table:
    """The ``ln(m)`` ROM, m in [1, 2], of an entropy-rule exit head (role exit.log_table)."""
    return _ln_table(node.attrs["log_t"], node.attrs["log_step_log2"])


def ln2_code(node: Node) -> tuple[int, FixedType]:
    """``(code, format)`` of the ln(2) constant: rounded to nearest in
    ``ap_ufixed<ln2_frac_bits, 0>``."""
    f = node.attrs["ln2_frac_bits"]
    return int(math.floor(math.log(2.0) * 2**f + 0.5)), FixedType(f, 0, False)


def _pool(x: np.ndarray, x_t: FixedType, node: Node, overflow: dict[str, int]) -> np.ndarray:
    npre = node.attrs["num_prefix"]
    total = x[:, npre:].sum(axis=1)
    sum_t = sum_type(x_t, x.shape[1] - npre)
    scale = node.params["mean_scale"]
    feat, feat_t = fixed_mul(total, sum_t, scale.raw, scale.fmt)
    if npre:
        feat, feat_t = fixed_add(feat, feat_t, x[:, 0], x_t)
    return _cast(node.attrs["pool_t"], feat, feat_t, overflow, "pool")


def _entropy(logits: np.ndarray, l_t: FixedType, node: Node,
             overflow: dict[str, int]) -> np.ndarray:
    softmax, dec_t = node.attrs["softmax"], node.params["threshold"].fmt
    mx, recip = softmax.stats(logits, l_t, overflow=overflow)
    p = softmax.probs(logits, l_t, mx, recip, overflow)
    d, d_t = mx[:, None] - logits, sub_type(l_t, l_t)
    prod, prod_t = fixed_mul(p, softmax.out_t, d, d_t)
    terms = _cast(dec_t, prod, prod_t, overflow, "exit.entropy")
    table = log_table(node)
    r = np.maximum(recip, 1)
    e = leading_one(r)
    kf = table.x_frac_bits
    lnm = table.interp(shift_floor(r, kf - e), FixedType(kf + 1, 1, False), table.fmt,
                       overflow=overflow, role="exit.log_table")
    ln2, ln2_t = ln2_code(node)
    k = softmax.recip_t.frac_bits - e
    k_t = FixedType.integer(16)
    k_ln2, k_ln2_t = fixed_mul(k, k_t, np.int64(ln2), ln2_t)
    ln_s, ln_s_t = fixed_sub(k_ln2, k_ln2_t, lnm, table.fmt)
    h = _cast(dec_t, ln_s, ln_s_t, overflow, "exit.entropy")
    for j in range(logits.shape[1]):
        total, total_t = fixed_add(h, dec_t, terms[:, j], dec_t)
        h = _cast(dec_t, total, total_t, overflow, "exit.entropy")
    return h


def decision_score(logits: np.ndarray, l_t: FixedType, node: Node,
                   overflow: dict[str, int] | None = None) -> np.ndarray:
    """Per image, the exit score (codes of the threshold's format) of logits (B, C)."""
    overflow = {} if overflow is None else overflow
    if node.attrs["rule"] == "entropy":
        return _entropy(logits, l_t, node, overflow)
    softmax = node.attrs["softmax"]
    p = softmax.forward(logits, l_t, overflow=overflow)
    return _cast(node.params["threshold"].fmt, p.max(axis=-1), softmax.out_t, overflow,
                 "exit.prob")


def simulate(node: Node, inputs: list[np.ndarray], fmts: list[FixedType],
             overflow: dict[str, int], reports: dict[str, Any]) -> tuple[np.ndarray,
                                                                          np.ndarray]:
    """Bit-exact exit head on a batch (B, T, D): ``(logits (B, C), fire (B,) bool)``.

    Adds ``reports["exit_score"][node.name]`` (score codes) and ``reports["exit_fire"]``.
    """
    feat = _pool(inputs[0], fmts[0], node, overflow)
    acc = matmul_rows(feat, node.attrs["pool_t"], node, overflow)
    logits = _cast(node.fmt, acc, node.attrs["acc_t"], overflow, "out")
    score = decision_score(logits, node.fmt, node, overflow)
    fire = fires(score, node.attrs["rule"], int(node.params["threshold"].raw))
    reports.setdefault("exit_score", {})[node.name] = score
    reports.setdefault("exit_fire", {})[node.name] = fire
    return logits, fire


def reference(node: Node, inputs: list[np.ndarray]) -> np.ndarray:
    """Float64 exit-head logits: class token + mean of the patch tokens, then the classifier."""
    x = inputs[0]
    npre = node.attrs["num_prefix"]
    feat = x[:, npre:].mean(axis=1)
    if npre:
        feat = feat + x[:, 0]
    return feat @ node.params["weight"].ref.T + node.params["bias"].ref
