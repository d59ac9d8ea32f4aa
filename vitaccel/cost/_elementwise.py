"""Costs of the streaming element-wise units: LayerNorm and token embedding.

Both move one feature block of ``L = attention.head_dim_lanes`` values per cycle (the
design's feature-block width; Edge-MoE's ``FEATURE_BLOCK_SIZE`` = 8).

LayerNorm (per token, tokens one after another as in Edge-MoE's unpipelined patch loop)::

    cycles = tokens * (3 * ceil(D / L) + rsqrt_latency)

three streaming passes (sum for the mean; sum of squares of the centred values; normalise
and affine) plus the variant's per-token statistics chain (1/D scaling, epsilon, reciprocal
square root: :func:`vitaccel.cost._variants.layernorm_cost`), which cannot overlap the next
pass of the same token. Resources: ``3 L`` multipliers (xc*xc, xc*r, xn*gamma), the
variant's ROMs (one copy: one lookup per token), a token buffer of D values and gamma/beta
buffers, each in ``L`` banks.

Token embedding: ``tokens * ceil(D / L)`` cycles (the positional embedding is added to one
feature block per cycle; prefix tokens are copied); ``L`` adders.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from vitaccel.cost._context import CostContext
from vitaccel.cost._hwmath import LOGIC, memory, multiplier, signed_bits, storage_bytes
from vitaccel.cost._linear import to_resources
from vitaccel.cost._types import NO_RESOURCES, Resources, Tally, UnitCost
from vitaccel.cost._variants import MUL_CYCLES, VariantCost, layernorm_cost

__all__ = ["embed_tokens_cost", "layernorm_cost_fn"]


@dataclass(frozen=True)
class NormWork:
    """Hardware-independent summary of a LayerNorm node."""

    tokens: int
    dim: int
    x_width: int
    norm_bits: int
    gamma_bits: int
    param_width: int
    param_bytes: int
    act_bytes: int
    out_bits: int
    variant: VariantCost


def _norm_work(node: Any, graph: Any) -> NormWork:
    shape, x_fmt = graph.spec(node.inputs[0])
    v = node.attrs["variant"]
    g, b = node.params["gamma"], node.params["beta"]
    elems = int(np.prod(shape))
    return NormWork(
        tokens=int(np.prod(shape[:-1])), dim=shape[-1], x_width=x_fmt.width,
        norm_bits=signed_bits(v.norm_t.width, v.norm_t.signed),
        gamma_bits=signed_bits(g.fmt.width, g.fmt.signed),
        param_width=max(g.fmt.width, b.fmt.width),
        param_bytes=g.raw.size * storage_bytes(g.fmt.width)
        + b.raw.size * storage_bytes(b.fmt.width),
        act_bytes=elems * (storage_bytes(x_fmt.width) + storage_bytes(node.fmt.width)),
        out_bits=v.out_t.width, variant=layernorm_cost(v),
    )


def _norm_cost(node: Any, w: NormWork, ctx: CostContext) -> UnitCost:
    lanes = ctx.lanes
    blocks = math.ceil(w.dim / lanes)
    v = w.variant
    phases = (("stats", w.tokens * 2 * blocks), ("rsqrt", w.tokens * v.latency_cycles),
              ("normalize", w.tokens * blocks))
    t = Tally(lut=LOGIC.control_lut, ff=LOGIC.control_ff)
    dsp_per_elem = 0.0
    for a, b in v.mults + ((w.norm_bits, w.gamma_bits),):
        m = multiplier(a, b, shared_operand=False, dsp_kind=ctx.dsp_kind)
        t.mult(m, lanes)
        dsp_per_elem += m.dsp
    for rom in v.roms:
        t.mem(memory(rom.entries, rom.width, 1))
        t.mult(multiplier(rom.diff_bits, rom.fraction_bits + 1, shared_operand=False,
                          dsp_kind=ctx.dsp_kind), 1)
    adders = lanes * 4 * w.out_bits  # sum, sum of squares, centring, beta
    t.lut += adders
    t.ff += adders
    for width in (w.x_width, w.param_width, w.param_width):
        t.mem(memory(blocks, width, lanes, uram_available=ctx.uram))
    buffering = ctx.hw.linear.weight_buffering
    storage = NO_RESOURCES
    if buffering == "resident":
        storage = to_resources(memory(blocks, w.param_width, 2 * lanes))
    elems = w.tokens * w.dim
    return ctx.unit_cost(
        node, "layernorm", phases, MUL_CYCLES + 2, w.param_bytes, w.act_bytes, buffering,
        macs=3 * elems, res=t.freeze(), dsp_macs=elems * dsp_per_elem, mem_accesses=4 * elems,
        storage=storage,
    )


def layernorm_cost_fn(node: Any, graph: Any, hw: Any, ctx: CostContext) -> UnitCost:
    """LayerNorm by its variant: three streaming passes plus per-token statistics."""
    work = ctx.work(node, _norm_work)
    return ctx.memo("layernorm", work, lambda: _norm_cost(node, work, ctx))


@dataclass(frozen=True)
class EmbedWork:
    """Hardware-independent summary of a token-embedding node."""

    tokens: int
    dim: int
    out_width: int
    param_width: int
    param_bytes: int
    act_bytes: int


def _embed_work(node: Any, graph: Any) -> EmbedWork:
    shape, x_fmt = graph.spec(node.inputs[0])
    params = [node.params[k] for k in ("prefix", "pos")]
    return EmbedWork(
        tokens=node.shape[0], dim=node.shape[-1], out_width=node.fmt.width,
        param_width=max(p.fmt.width for p in params),
        param_bytes=sum(p.raw.size * storage_bytes(p.fmt.width) for p in params),
        act_bytes=int(np.prod(shape)) * storage_bytes(x_fmt.width)
        + int(np.prod(node.shape)) * storage_bytes(node.fmt.width),
    )


def _embed_cost(node: Any, w: EmbedWork, ctx: CostContext) -> UnitCost:
    lanes = ctx.lanes
    blocks = math.ceil(w.dim / lanes)
    adders = lanes * (w.out_width + 1)
    res = Resources(lut=LOGIC.control_lut + adders, ff=LOGIC.control_ff + adders)
    buffering = ctx.hw.linear.weight_buffering
    storage = NO_RESOURCES
    if buffering == "resident":
        storage = to_resources(memory(w.tokens * blocks, w.param_width, lanes,
                                      uram_available=ctx.uram))
    elems = w.tokens * w.dim
    return ctx.unit_cost(
        node, "embed", (("add", w.tokens * blocks),), 2, w.param_bytes, w.act_bytes,
        buffering, macs=elems, res=res, dsp_macs=0.0, mem_accesses=elems, storage=storage,
    )


def embed_tokens_cost(node: Any, graph: Any, hw: Any, ctx: CostContext) -> UnitCost:
    """Prefix tokens and positional embedding: one feature block per cycle."""
    work = ctx.work(node, _embed_work)
    return ctx.memo("embed_tokens", work, lambda: _embed_cost(node, work, ctx))
