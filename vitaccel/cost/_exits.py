"""Costs of the early-exit ops (LGViT style): ``grid_conv`` and ``exit_head``.

Both run on the linear engine.

* ``grid_conv`` pointwise (1x1): the patch tokens as engine rows,
  ``patches * ceil(D/tile_out) * ceil(D/tile_in)`` cycles; depthwise (3x3): channels on the
  ``tile_out`` lanes and the 9 taps on the ``tile_in`` lanes (zero-padding taps included),
  ``patches * ceil(D/tile_out) * ceil(9/tile_in)`` cycles. Fused GELU adds depth only; the
  prefix tokens are copied through, one feature block (``head_dim_lanes`` values) per cycle.
* ``exit_head``: the class token plus the patch mean streams once through the pooling adder
  (one feature block per cycle per token), one engine row gives the logits, then the exit
  decision streams the C logits twice through the node's softmax variant (row statistics,
  then probabilities with the max-probability compare or the entropy accumulation):
  ``2 * C`` cycles plus the ln(m) lookup of the entropy rule in the pipeline depth.

The decision datapath (aux unit ``exit_decision``) holds the softmax variant's ROMs, the
``ln(m)`` ROM of the entropy rule, and the p = e * recip and p * (max - l) multipliers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from vitaccel.cost._context import CostContext
from vitaccel.cost._hwmath import LOGIC, memory, multiplier, signed_bits
from vitaccel.cost._linear import EngineWork, engine_cost, engine_work, in_bytes
from vitaccel.cost._types import Resources, Tally, UnitCost
from vitaccel.cost._variants import LOOKUP_CYCLES, MUL_CYCLES, Rom, VariantCost, softmax_cost

__all__ = ["exit_head_cost", "grid_conv_cost"]


@dataclass(frozen=True)
class GridWork:
    """A grid convolution as a linear-engine job plus the prefix tokens copied through."""

    job: EngineWork
    prefix_tokens: int
    dim: int


def _grid_work(node: Any, graph: Any) -> GridWork:
    shape, x_fmt = graph.spec(node.inputs[0])
    npre = node.attrs["num_prefix"]
    patches = int(np.prod(shape[:-1])) - npre
    job = engine_work(node, graph, patches, x_fmt, in_bytes(shape, x_fmt), ("weight",),
                      ("bias",))
    return GridWork(job, npre, shape[-1])


def grid_conv_cost(node: Any, graph: Any, hw: Any, ctx: CostContext) -> UnitCost:
    """Pointwise or depthwise convolution on the patch grid (linear engine)."""
    work = ctx.work(node, _grid_work)

    def compute() -> UnitCost:
        copy = work.prefix_tokens * math.ceil(work.dim / ctx.lanes)
        return engine_cost(node, work.job, ctx, (("prefix", copy),) if copy else ())

    return ctx.memo("grid_conv", work, compute)


@dataclass(frozen=True)
class ExitWork:
    """An exit head: the pooled engine job and the decision datapath's facts."""

    job: EngineWork
    classes: int
    rule: str
    softmax: VariantCost
    log_rom: Rom | None
    prob_bits: int
    recip_bits: int
    logit_bits: int


def _exit_work(node: Any, graph: Any) -> ExitWork:
    from vitaccel.units.exits import log_table

    shape, x_fmt = graph.spec(node.inputs[0])
    npre = node.attrs["num_prefix"]
    tokens = int(np.prod(shape[:-1]))
    job = engine_work(node, graph, 1, node.attrs["pool_t"], in_bytes(shape, x_fmt),
                      ("weight",), ("bias",), pool_tokens=tokens - npre + (1 if npre else 0))
    sm = node.attrs["softmax"]
    rom = None
    if node.attrs["rule"] == "entropy":
        t = log_table(node)
        rom = Rom(t.name, t.size, t.fmt.width, t.diff_t.width, t.fraction_bits)
    return ExitWork(
        job=job, classes=node.shape[0], rule=node.attrs["rule"], softmax=softmax_cost(sm),
        log_rom=rom, prob_bits=signed_bits(sm.out_t.width, sm.out_t.signed),
        recip_bits=signed_bits(sm.recip_t.width, sm.recip_t.signed),
        logit_bits=signed_bits(node.fmt.width, node.fmt.signed),
    )


def _decision(w: ExitWork, ctx: CostContext) -> Resources:
    t = Tally(lut=LOGIC.control_lut, ff=LOGIC.control_ff)
    roms = w.softmax.roms + ((w.log_rom,) if w.log_rom is not None else ())
    for rom in roms:
        t.mem(memory(rom.entries, rom.width, 1))
        t.mult(multiplier(rom.diff_bits, rom.fraction_bits + 1, shared_operand=False,
                          dsp_kind=ctx.dsp_kind), 1)
    pairs = w.softmax.mults + ((w.prob_bits, w.recip_bits),)
    if w.rule == "entropy":
        pairs += ((w.prob_bits, w.logit_bits + 1),)
    for a, b in pairs:
        t.mult(multiplier(a, b, shared_operand=False, dsp_kind=ctx.dsp_kind), 1)
    return t.freeze()


def exit_head_cost(node: Any, graph: Any, hw: Any, ctx: CostContext) -> UnitCost:
    """Early-exit classifier and its exit decision."""
    work = ctx.work(node, _exit_work)

    def compute() -> UnitCost:
        depth = work.softmax.latency_cycles + MUL_CYCLES
        if work.log_rom is not None:
            depth += LOOKUP_CYCLES + MUL_CYCLES
        return engine_cost(node, work.job, ctx, (("decide", 2 * work.classes),), depth,
                           (("exit_decision", _decision(work, ctx)),))

    return ctx.memo("exit_head", work, compute)
