"""Cost of the attention unit: QK^T with the softmax statistics, then A.V.

Schedule (N tokens, D = heads * head_dim, L = ``head_dim_lanes``, P = ``parallel_queries``;
the hardware config decides it, the graph's order attribute only decides the bits):

* ``reordered`` (Edge-MoE): Q rows are staggered into the P query slots so that each cycle
  reads one K block plus at most one Q block (constant bandwidth); Q loading hides behind
  the K stream. QK^T and A.V each take ``ceil((N + P - 1) / P) * N * ceil(D / L)`` cycles
  (Edge-MoE: ceil(132/4) * 129 * 24 = 102,168).
* ``standard``: each group of P rows meets keys 0..N-1 together, so the group's P Q rows must
  be loaded before its first key (non-constant bandwidth): QK^T takes
  ``ceil(N / P) * N * ceil(D / L) + N * ceil(D / L)`` cycles; A.V
  ``ceil(N / P) * N * ceil(D / L) + N`` (one statistics word per row).
* Softmax: single-pass variants (online, base2) update a running max and sum per row while
  the scores stream out of QK^T (no extra cycles); A.V recomputes each probability from its
  score. Two-pass variants (two_pass, ibert, ivit) need the exact row max first: an extra
  pass over the stored scores of ``ceil(N * N * heads / L)`` cycles.

The score matrix (N x N x heads at the score format) and the per-row statistics are spilled
to DRAM between the phases (Edge-MoE); K and V are re-read once per query group.

Resources: P * L multipliers for QK^T (q x k, the K block shared by the P slots) and P * L
for A.V (p x v, the V block shared); softmax: ``heads`` running-statistics lanes (QK^T side)
and ``P * heads`` probability lanes (A.V side), each with its own ROM copies and
interpolation multiplier, plus a p = e * recip multiplier per probability lane; buffers for
P query rows and P accumulator rows (``P * L`` banks each) and the row statistics.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from vitaccel.cost._context import CostContext
from vitaccel.cost._hwmath import LOGIC, memory, multiplier, signed_bits, storage_bytes
from vitaccel.cost._types import Tally, UnitCost
from vitaccel.cost._variants import LOOKUP_CYCLES, MUL_CYCLES, VariantCost, softmax_cost

__all__ = ["AttentionWork", "attention_cost", "attention_phases"]

UNIT = "attention"


@dataclass(frozen=True)
class AttentionWork:
    """Hardware-independent summary of an attention node."""

    tokens: int
    heads: int
    dim: int
    x_bits: int
    x_width: int
    x_store: int
    score_width: int
    prob_bits: int
    acc_bits: int
    out_store: int
    stat_bits: int
    softmax: VariantCost
    recip_bits: int


def _attention_work(node: Any, graph: Any) -> AttentionWork:
    shape, x_fmt = graph.spec(node.inputs[0])
    sm = node.attrs["softmax"]
    heads, hd = node.attrs["num_heads"], node.attrs["head_dim"]
    score_t = node.attrs["score_t"]
    return AttentionWork(
        tokens=int(np.prod(shape[:-1])), heads=heads, dim=heads * hd,
        x_bits=signed_bits(x_fmt.width, x_fmt.signed), x_width=x_fmt.width,
        x_store=storage_bytes(x_fmt.width), score_width=score_t.width,
        prob_bits=signed_bits(sm.out_t.width, sm.out_t.signed),
        acc_bits=node.attrs["acc_t"].width, out_store=storage_bytes(node.fmt.width),
        stat_bits=sm.max_type(score_t).width + sm.recip_t.width,
        softmax=softmax_cost(sm), recip_bits=signed_bits(sm.recip_t.width, sm.recip_t.signed),
    )


def attention_phases(n: int, d: int, heads: int, order: str, p: int, lanes: int,
                     passes: int) -> tuple[tuple[str, int], ...]:
    """Structural cycles per phase (module docstring): ``qk``, optional ``softmax``, ``av``."""
    blocks = math.ceil(d / lanes)
    if order == "reordered":
        qk = av = math.ceil((n + p - 1) / p) * n * blocks
    else:
        qk = math.ceil(n / p) * n * blocks + n * blocks
        av = math.ceil(n / p) * n * blocks + n
    phases = [("qk", qk)]
    if passes > 1:
        phases.append(("softmax", (passes - 1) * math.ceil(n * n * heads / lanes)))
    phases.append(("av", av))
    return tuple(phases)


def _cost(node: Any, w: AttentionWork, ctx: CostContext) -> UnitCost:
    att = ctx.hw.attention
    p, lanes, n = att.parallel_queries, ctx.lanes, w.tokens
    sm = w.softmax
    phases = attention_phases(n, w.dim, w.heads, att.order, p, lanes, sm.passes)
    qk_mult = multiplier(w.x_bits, w.x_bits, shared_operand=True, dsp_kind=ctx.dsp_kind)
    av_mult = multiplier(w.prob_bits, w.x_bits, shared_operand=True, dsp_kind=ctx.dsp_kind)
    n_mult = p * lanes
    t = Tally(lut=LOGIC.control_lut + n_mult * 2 * w.acc_bits,
              ff=LOGIC.control_ff + n_mult * 2 * w.acc_bits)
    t.mult(qk_mult, n_mult)
    t.mult(av_mult, n_mult)
    stat_lanes, prob_lanes = w.heads, p * w.heads
    for rom in sm.roms:
        copies = stat_lanes if rom.name == "reciprocal" else stat_lanes + prob_lanes
        t.mem(memory(rom.entries, rom.width, copies))
        t.mult(multiplier(rom.diff_bits, rom.fraction_bits + 1, shared_operand=False,
                          dsp_kind=ctx.dsp_kind), copies)
    for a, b in sm.mults:
        t.mult(multiplier(a, b, shared_operand=False, dsp_kind=ctx.dsp_kind), stat_lanes)
    t.mult(multiplier(w.prob_bits, w.recip_bits, shared_operand=False, dsp_kind=ctx.dsp_kind),
           prob_lanes)
    blocks = math.ceil(w.dim / lanes)
    t.mem(memory(blocks, w.x_width, n_mult, uram_available=ctx.uram))
    t.mem(memory(blocks, w.acc_bits, n_mult, uram_available=ctx.uram))
    t.mem(memory(n, w.stat_bits, w.heads, uram_available=ctx.uram))
    groups = math.ceil((n + p - 1) / p) if att.order == "reordered" else math.ceil(n / p)
    row = w.dim * w.x_store
    scores = n * n * w.heads * storage_bytes(w.score_width)
    stats = n * w.heads * 2 * storage_bytes(max(1, w.stat_bits // 2))
    act = (n * row + groups * n * row + scores + stats      # QK^T: Q, K per group, spill
           + scores * sm.passes + stats + groups * n * row  # A.V: scores, stats, V per group
           + n * w.dim * w.out_store)
    depth_qk = MUL_CYCLES + math.ceil(math.log2(lanes)) + 1 + sm.latency_cycles
    depth_av = LOOKUP_CYCLES + 2 * MUL_CYCLES + math.ceil(math.log2(lanes)) + 1
    macs = 2 * n * n * w.dim
    return ctx.unit_cost(
        node, UNIT, phases, depth_qk + depth_av, 0, act, "pingpong", macs, t.freeze(),
        dsp_macs=macs / 2 * (qk_mult.dsp + av_mult.dsp),
        mem_accesses=sum(c for _, c in phases) * n_mult,
    )


def attention_cost(node: Any, graph: Any, hw: Any, ctx: CostContext) -> UnitCost:
    """Multi-head attention on the attention unit (QK^T + softmax + A.V)."""
    work = ctx.work(node, _attention_work)
    return ctx.memo("attention", work, lambda: _cost(node, work, ctx))
