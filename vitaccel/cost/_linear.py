"""Costs of the ops that run on the unified linear engine: linear, patch_embed and head.

Linear engine (Edge-MoE's unit, generalised): ``tile_in x tile_out`` multipliers; each
cycle one block of ``tile_in`` inputs meets a ``tile_out x tile_in`` weight tile, so for
``rows`` token rows::

    cycles = rows * ceil(out / tile_out) * ceil(in / tile_in) * pipeline_ii

(Edge-MoE: 129 * ceil(192/16) * ceil(192/16) = 18,576). A fused GELU or residual add sits in
the output pipeline: it adds depth (``overhead_cycles``), not cycles. Patch embedding is the
same engine on im2col rows (patches x D x C*p*p); the classifier head runs it on the pooled
row(s) (mean pooling first streams every token through an adder, one feature block of
``head_dim_lanes`` values per cycle).

Resources: ``tile_in * tile_out`` multipliers sized by the input and weight widths (the input
value is broadcast to ``tile_out`` products: a shared operand); one adder per product at the
accumulator width; weight buffers as the Edge-MoE HLS code sizes them: a whole layer per
buffer (two, ping and pong, for ``pingpong``; one for ``single``), one ``tile_out x tile_in``
weight tile per address (a ``tile_in * tile_out * W``-bit word, as Edge-MoE's
``hls::vector`` blocks: the width sets the number of memories, the depth rarely does),
placed in UltraRAM while the board's URAM holds a whole buffer, else in block RAM;
``resident`` weights are node-private storage instead. GELU
lanes: ``tile_out`` evaluations in parallel, each with its own copy of the variant's ROMs.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from vitaccel.cost._context import CostContext
from vitaccel.cost._hwmath import LOGIC, memory, multiplier, signed_bits, storage_bytes
from vitaccel.cost._types import NO_RESOURCES, Resources, Tally, UnitCost
from vitaccel.cost._variants import MUL_CYCLES, VariantCost, gelu_cost

__all__ = ["EngineBuild", "EngineWork", "engine_build", "engine_cost", "engine_work",
           "head_cost", "in_bytes", "linear_cost", "mac_cycles", "patch_embed_cost",
           "pow2_shifts", "to_resources"]

UNIT = "linear_engine"


@dataclass(frozen=True)
class EngineWork:
    """Hardware-independent summary of one linear-engine job (computed once per graph).

    ``rows`` counts token rows over all weight sets (the DeiT head has two); widths are
    storage widths, ``*_bits`` signed operand widths; ``pow2_shifts`` > 0 marks power-of-two
    weights with that many distinct exponents; ``act_bytes`` is the DRAM activation traffic.
    """

    rows: int
    n_in: int
    n_out: int
    sets: int
    x_bits: int
    x_width: int
    w_bits: int
    w_width: int
    bias_width: int
    acc_bits: int
    weight_bytes: int
    act_bytes: int
    pow2_shifts: int
    gelu: VariantCost | None
    residual: bool
    pool_tokens: int = 0


def to_resources(mem: Any) -> Resources:
    """A :class:`~vitaccel.cost._hwmath.Memory` as :class:`Resources`."""
    return Resources(bram18=mem.bram18, uram=mem.uram, lut=mem.lut)


def pow2_shifts(raw: np.ndarray) -> int:
    """Distinct exponents if every nonzero code is a power of two in magnitude, else 0."""
    a = np.abs(raw[raw != 0])
    if a.size == 0 or np.any(a & (a - 1)):
        return 0
    return int(np.unique(a).size)


def _param_bytes(node: Any, keys: tuple[str, ...]) -> int:
    return sum(int(node.params[k].raw.size) * storage_bytes(node.params[k].fmt.width)
               for k in keys if k in node.params)


def engine_work(node: Any, graph: Any, rows: int, x_fmt: Any, read_bytes: int,
                 weight_keys: tuple[str, ...], bias_keys: tuple[str, ...],
                 pool_tokens: int = 0) -> EngineWork:
    """Summary of a linear-engine job on ``rows`` rows of ``node``'s weights.

    ``x_fmt`` is the engine's input operand format; ``read_bytes`` the DRAM bytes read.
    """
    w = node.params[weight_keys[0]]
    n_out, n_in = w.shape[0], int(np.prod(w.shape[1:]))  # depthwise (D, kh, kw): kh*kw taps
    acc = node.attrs["acc_t"]
    gelu = node.attrs.get("gelu")
    residual = bool(node.attrs.get("residual", False))
    out_elems = int(np.prod(node.shape))
    act = read_bytes + out_elems * storage_bytes(node.fmt.width)
    if residual:
        act += out_elems * storage_bytes(graph.spec(node.inputs[1])[1].width)
    shifts = min((pow2_shifts(node.params[k].raw) for k in weight_keys), default=0)
    return EngineWork(
        rows=rows, n_in=n_in, n_out=n_out, sets=len(weight_keys),
        x_bits=signed_bits(x_fmt.width, x_fmt.signed), x_width=x_fmt.width,
        w_bits=signed_bits(w.fmt.width, w.fmt.signed), w_width=w.fmt.width,
        bias_width=node.params[bias_keys[0]].fmt.width, acc_bits=acc.width,
        weight_bytes=_param_bytes(node, weight_keys + bias_keys), act_bytes=act,
        pow2_shifts=shifts, gelu=gelu_cost(gelu) if gelu is not None else None,
        residual=residual, pool_tokens=pool_tokens,
    )


@dataclass(frozen=True)
class EngineBuild:
    """The linear engine as one job needs it: resources, node-private storage, the
    multiplier, and the pipeline depth of one invocation."""

    resources: Resources
    storage: Resources
    dsp_per_mac: float
    depth: int


def engine_build(work: EngineWork, ctx: CostContext) -> EngineBuild:
    """Resources and pipeline depth of the linear engine for ``work`` (module docstring)."""
    lin = ctx.hw.linear
    return _engine_build(work, lin.tile_in, lin.tile_out, lin.weight_buffering, ctx.dsp_kind,
                         ctx.hw.board.uram)


@functools.lru_cache(maxsize=4096)
def _engine_build(work: EngineWork, ti: int, to: int, buffering: str, dsp_kind: str,
                  uram_blocks: int) -> EngineBuild:
    uram = uram_blocks > 0
    mult = multiplier(work.x_bits, work.w_bits, shared_operand=True,
                      pow2_b=work.pow2_shifts > 0, pow2_shifts=work.pow2_shifts,
                      dsp_kind=dsp_kind)
    n_mult = ti * to
    t = Tally(lut=LOGIC.control_lut, ff=LOGIC.control_ff)
    t.mult(mult, n_mult)
    t.lut += math.ceil(n_mult * work.acc_bits * LOGIC.lut_per_adder_bit)
    t.ff += math.ceil(n_mult * work.acc_bits * LOGIC.ff_per_register_bit)
    t.mem(memory(math.ceil(work.n_in / ti), work.x_width, ti, uram_available=uram))
    depth = math.ceil(work.sets * work.n_out * work.n_in / n_mult)
    wmem = memory(depth, n_mult * work.w_width, uram_available=uram)
    bmem = memory(math.ceil(work.sets * work.n_out / to), to * work.bias_width)
    storage = NO_RESOURCES
    if buffering == "resident":
        storage = Resources(bram18=wmem.bram18 + bmem.bram18, uram=wmem.uram + bmem.uram,
                            lut=wmem.lut + bmem.lut)
    else:
        # Each weight buffer goes to UltraRAM while the board's URAM holds it, else to BRAM
        # (a ping in URAM and its pong in BRAM when only one fits).
        in_bram = memory(depth, n_mult * work.w_width)
        for _ in range(2 if buffering == "pingpong" else 1):
            t.mem(wmem if wmem.uram and t.uram + wmem.uram <= uram_blocks else in_bram)
            t.mem(bmem)
    pipe = MUL_CYCLES + max(0, math.ceil(mult.dsp) - 1) + math.ceil(math.log2(ti)) + 2
    if work.gelu is not None:
        pipe += work.gelu.latency_cycles
        _gelu_lanes(t, work.gelu, to, dsp_kind)
    pipe += int(work.residual)
    return EngineBuild(t.freeze(), storage, mult.dsp, pipe)


def mac_cycles(rows: int, n_out: int, n_in: int, hw: Any) -> int:
    """``rows * ceil(out / tile_out) * ceil(in / tile_in) * pipeline_ii`` (structural)."""
    lin = hw.linear
    return (rows * -(-n_out // lin.tile_out) * -(-n_in // lin.tile_in)) * lin.pipeline_ii


def engine_cost(node: Any, work: EngineWork, ctx: CostContext,
                extra_phases: tuple[tuple[str, int], ...] = (), extra_depth: int = 0,
                aux: tuple[tuple[str, Resources], ...] = ()) -> UnitCost:
    """Cost of running ``work`` on the linear engine (one weight load per image).

    ``extra_phases`` (e.g. an exit decision) follow the MAC phase; ``extra_depth`` adds
    pipeline depth; ``aux`` names further shared units the node uses.
    """
    lin = ctx.hw.linear
    cycles = mac_cycles(work.rows, work.n_out, work.n_in, ctx.hw)
    phases: tuple[tuple[str, int], ...] = (("mac", cycles),) + extra_phases
    if work.pool_tokens:
        phases = (("pool", work.pool_tokens * math.ceil(work.n_in / ctx.lanes)),) + phases
    build = engine_build(work, ctx)
    macs = work.rows * work.n_in * work.n_out
    return ctx.unit_cost(
        node, UNIT, phases, build.depth + extra_depth, work.weight_bytes, work.act_bytes,
        lin.weight_buffering, macs, build.resources, dsp_macs=macs * build.dsp_per_mac,
        mem_accesses=(cycles // lin.pipeline_ii) * lin.tile_in * lin.tile_out,
        storage=build.storage, aux=aux,
    )


def _gelu_lanes(t: Tally, g: VariantCost, lanes: int, dsp_kind: str) -> None:
    for rom in g.roms:
        t.mem(memory(rom.entries, rom.width, lanes))
        t.mult(multiplier(rom.diff_bits, rom.fraction_bits + 1, shared_operand=False,
                          dsp_kind=dsp_kind), lanes)
    for a, b in g.mults:
        t.mult(multiplier(a, b, shared_operand=False, dsp_kind=dsp_kind), lanes)


# ------------------------------------------------------------------ op entry points
def in_bytes(shape: tuple[int, ...], fmt: Any, elems: int | None = None) -> int:
    return (int(np.prod(shape)) if elems is None else elems) * storage_bytes(fmt.width)


def _linear_work(node: Any, graph: Any) -> EngineWork:
    shape, x_fmt = graph.spec(node.inputs[0])
    rows = int(np.prod(shape[:-1]))
    return engine_work(node, graph, rows, x_fmt, in_bytes(shape, x_fmt), ("weight",),
                        ("bias",))


def linear_cost(node: Any, graph: Any, hw: Any, ctx: CostContext) -> UnitCost:
    """Linear layer on the linear engine (optional fused GELU / residual add)."""
    work = ctx.work(node, _linear_work)
    return ctx.memo("linear", work, lambda: engine_cost(node, work, ctx))


def _patch_work(node: Any, graph: Any) -> EngineWork:
    shape, x_fmt = graph.spec(node.inputs[0])
    return engine_work(node, graph, node.shape[0], x_fmt, in_bytes(shape, x_fmt),
                        ("weight",), ("bias",))


def patch_embed_cost(node: Any, graph: Any, hw: Any, ctx: CostContext) -> UnitCost:
    """Patch embedding: the linear engine on im2col rows (patches x D x C*p*p)."""
    work = ctx.work(node, _patch_work)
    return ctx.memo("patch_embed", work, lambda: engine_cost(node, work, ctx))


def _head_work(node: Any, graph: Any) -> EngineWork:
    shape, x_fmt = graph.spec(node.inputs[0])
    d = shape[-1]
    pooling = node.attrs["pooling"]
    if pooling == "cls_dist":
        return engine_work(node, graph, 2, x_fmt, in_bytes(shape, x_fmt, 2 * d),
                            ("weight", "weight_dist"), ("bias", "bias_dist"))
    if pooling == "mean":
        tokens = int(np.prod(shape[:-1])) - node.attrs["num_prefix"]
        return engine_work(node, graph, 1, node.attrs["pool_t"],
                            in_bytes(shape, x_fmt, tokens * d), ("weight",), ("bias",),
                            pool_tokens=tokens)
    return engine_work(node, graph, 1, x_fmt, in_bytes(shape, x_fmt, d), ("weight",),
                        ("bias",))


def head_cost(node: Any, graph: Any, hw: Any, ctx: CostContext) -> UnitCost:
    """Classifier head: pooling (mean: one feature block per cycle) then the linear engine."""
    work = ctx.work(node, _head_work)
    return ctx.memo("head", work, lambda: engine_cost(node, work, ctx))

