"""Cost of the mixture-of-experts unit (op ``moe``): gate, routing, experts, combine.

Schedule for one image (T tokens, D features, E experts of hidden H, top-k), on the linear
engine except the router:

* ``gate``: the task's gate, a (T, D) x (D, E) linear job: ``T * ceil(E/tile_out) *
  ceil(D/tile_in)`` cycles; its weights load like any linear layer's.
* ``route``: every gate score streams once through the softmax statistics and the top-k
  insertion (one score per cycle): ``T * E`` cycles; the router appends the token to the
  chosen experts' queues.
* ``experts``: per active expert e with n_e queued tokens (``expert_load``, or the worst case:
  every expert active with ``T * k / E`` tokens each; ``moe.max_active_experts`` limits the
  active count), fc1 (+GELU) then fc2 on the gathered rows: ``n_e * ceil(H/to) * ceil(D/ti)``
  and ``n_e * ceil(D/to) * ceil(H/ti)`` cycles. With ``moe.patch_reordering`` each active
  expert's weights cross DRAM once per layer; without it once per routed token (the engine
  runs one row at a time). ``moe.expert_weight_buffering``: ``pingpong`` loads fc2 of e while
  fc1 of e computes and fc1 of the next expert while fc2 of e computes (Edge-MoE's
  ``compute_moe``), so only the first load is exposed and each step takes
  max(compute, load); ``single`` serialises every load. ``resident`` linear weights keep
  every expert on chip (no loads).
* ``combine``: ``out_t(out) + residual`` streams once, one feature block per cycle:
  ``T * ceil(D / head_dim_lanes)``.

Gathered rows, the hidden buffer and the scaled scatter (read-modify-write of ``out``) are
DRAM traffic on the activation ports, overlapped with each step's compute.

Resources: the linear engine sized for the largest of gate, fc1 (with GELU lanes) and fc2;
the router (aux unit ``moe_router``): the softmax variant's ROMs and running-sum multiplier,
``top_k`` comparators, and the expert queues (E banks of T token indices and T scores).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from vitaccel.cost._context import CostContext
from vitaccel.cost._hwmath import LOGIC, memory, multiplier, signed_bits, storage_bytes
from vitaccel.cost._linear import EngineWork, engine_build, mac_cycles
from vitaccel.cost._types import Tally, UnitCost
from vitaccel.cost._variants import VariantCost, gelu_cost, softmax_cost
from vitaccel.errors import UsageError

__all__ = ["MoeWork", "expert_tokens", "moe_cost"]


@dataclass(frozen=True)
class MoeWork:
    """Hardware-independent summary of a MoE node (``gate``/``fc1``/``fc2`` engine jobs)."""

    tokens: int
    dim: int
    experts: int
    hidden: int
    top_k: int
    gate: EngineWork
    fc1: EngineWork
    fc2: EngineWork
    gate_bytes: int
    fc1_bytes: int
    fc2_bytes: int
    x_store: int
    hidden_store: int
    combine_store: int
    out_store: int
    residual_store: int
    softmax: VariantCost
    score_bits: int
    prob_bits: int


def _bytes(p: Any, index: tuple[int, ...] = ()) -> int:
    size = int(p.raw[index].size) if index else int(p.raw.size)
    return size * storage_bytes(p.fmt.width)


def _moe_work(node: Any, graph: Any) -> MoeWork:
    (shape, x_fmt), (_, r_fmt) = graph.spec(node.inputs[0]), graph.spec(node.inputs[1])
    p = node.params
    e, h, d = p["fc1_weight"].shape
    t = int(np.prod(shape[:-1]))
    acc, hid = node.attrs["acc_t"], node.attrs["hidden_t"]

    def job(wkey: str, bkey: str, n_in: int, n_out: int, in_fmt: Any, gelu: Any) -> EngineWork:
        w, b = p[wkey], p[bkey]
        return EngineWork(
            rows=t, n_in=n_in, n_out=n_out, sets=1, x_bits=signed_bits(in_fmt.width,
                                                                       in_fmt.signed),
            x_width=in_fmt.width, w_bits=signed_bits(w.fmt.width, w.fmt.signed),
            w_width=w.fmt.width, bias_width=b.fmt.width, acc_bits=acc.width,
            weight_bytes=_bytes(w, (0,)) + _bytes(b, (0,)), act_bytes=0, pow2_shifts=0,
            gelu=gelu, residual=False,
        )

    sm = node.attrs["softmax"]
    return MoeWork(
        tokens=t, dim=d, experts=e, hidden=h, top_k=node.attrs["top_k"],
        gate=job("gate_weight", "gate_bias", d, e, x_fmt, None),
        fc1=job("fc1_weight", "fc1_bias", d, h, x_fmt, gelu_cost(node.attrs["gelu"])),
        fc2=job("fc2_weight", "fc2_bias", h, d, hid, None),
        gate_bytes=_bytes(p["gate_weight"], (0,)) + _bytes(p["gate_bias"], (0,)),
        fc1_bytes=_bytes(p["fc1_weight"], (0,)) + _bytes(p["fc1_bias"], (0,)),
        fc2_bytes=_bytes(p["fc2_weight"], (0,)) + _bytes(p["fc2_bias"], (0,)),
        x_store=storage_bytes(x_fmt.width), hidden_store=storage_bytes(hid.width),
        combine_store=storage_bytes(node.attrs["combine_t"].width),
        out_store=storage_bytes(node.fmt.width), residual_store=storage_bytes(r_fmt.width),
        softmax=softmax_cost(sm), score_bits=acc.width,
        prob_bits=signed_bits(sm.out_t.width, sm.out_t.signed),
    )


def expert_tokens(node_name: str, work: MoeWork, hw: Any, given: Any) -> tuple[int, ...]:
    """Per-expert token counts for one image: ``given`` (counts, or booleans = active
    experts sharing the ``T * k`` routed tokens), else the worst case (module docstring)."""
    e, routed = work.experts, work.tokens * work.top_k
    if given is None:
        active = min(e, hw.moe.max_active_experts or e)
        mask = np.arange(e) < active
    else:
        a = np.asarray(given)
        if a.shape != (e,) or a.dtype.kind not in "biu":
            raise UsageError(f"expert_load[{node_name!r}]: expected {e} per-expert token "
                             f"counts (or active flags) per image, got shape {a.shape} "
                             f"dtype {a.dtype}")
        if a.dtype.kind != "b":
            if a.min() < 0 or a.max() > work.tokens:
                raise UsageError(f"expert_load[{node_name!r}]: token counts must lie in "
                                 f"[0, {work.tokens}], got {a.tolist()}")
            return tuple(int(v) for v in a)
        mask = a
    active = int(mask.sum())
    if active == 0:
        return (0,) * e
    base, extra = divmod(routed, active)
    counts = np.zeros(e, dtype=np.int64)
    idx = np.nonzero(mask)[0]
    counts[idx] = base
    counts[idx[:extra]] += 1
    return tuple(int(min(c, work.tokens)) for c in counts)


def _cost(node: Any, w: MoeWork, ctx: CostContext, counts: tuple[int, ...]) -> UnitCost:
    hw = ctx.hw
    builds = [engine_build(job, ctx) for job in (w.gate, w.fc1, w.fc2)]
    res = builds[0].resources.max(builds[1].resources).max(builds[2].resources)
    depth = max(b.depth for b in builds)
    resident = hw.linear.weight_buffering == "resident"
    pingpong = hw.moe.expert_weight_buffering == "pingpong"
    per_token = not hw.moe.patch_reordering
    gate_c = mac_cycles(w.tokens, w.experts, w.dim, hw)
    route_c = w.tokens * w.experts
    comb_c = w.tokens * math.ceil(w.dim / ctx.lanes)
    gate_load = 0 if resident else ctx.transfer_cycles(w.gate_bytes, 0)
    gate_lat = (max(gate_c, gate_load) if pingpong or resident else gate_load + gate_c) + depth
    comb_act = w.tokens * w.dim * (w.combine_store + w.residual_store + w.out_store)
    latency = gate_lat + route_c + max(comb_c, ctx.transfer_cycles(0, comb_act))
    act = w.tokens * w.dim * w.x_store + comb_act
    l1 = 0 if resident else ctx.transfer_cycles(w.fc1_bytes, 0)
    l2 = 0 if resident else ctx.transfer_cycles(w.fc2_bytes, 0)
    # (rows, repeats): patch reordering runs each expert once on its queue; without it the
    # engine runs every routed token alone, reloading that expert's weights each time.
    jobs = [(1, n) if per_token else (n, 1) for n in counts if n > 0]
    steps: list[tuple[int, int]] = []
    expert_c = loads = calls = 0
    for rows, repeat in jobs:
        c1, c2 = mac_cycles(rows, w.hidden, w.dim, hw), mac_cycles(rows, w.dim, w.hidden, hw)
        a1 = rows * (w.dim * w.x_store + w.hidden * w.hidden_store)
        a2 = rows * (w.hidden * w.hidden_store + 2 * w.dim * w.combine_store)
        s1 = max(c1 + depth, ctx.transfer_cycles(0, a1))
        s2 = max(c2 + depth, ctx.transfer_cycles(0, a2))
        steps += [(s1, s2)] * repeat
        expert_c += (c1 + c2) * repeat
        act += (a1 + a2) * repeat
        loads += repeat
        calls += 2 * repeat
    if pingpong:
        latency += l1 if steps else 0
        for i, (s1, s2) in enumerate(steps):
            latency += max(s1, l2) + max(s2, l1 if i + 1 < len(steps) else 0)
    else:
        latency += sum(l1 + s1 + l2 + s2 for s1, s2 in steps)
    weight_bytes = 0 if resident else w.gate_bytes + loads * (w.fc1_bytes + w.fc2_bytes)
    phases = (("gate", gate_c), ("route", route_c), ("experts", expert_c), ("combine", comb_c))
    routed_rows = sum(r * n for r, n in jobs)
    macs = w.tokens * w.experts * w.dim + routed_rows * 2 * w.hidden * w.dim
    storage = None
    if resident:
        storage = _resident(w, ctx)
    return ctx.unit_cost(
        node, "linear_engine", phases, depth * (1 + calls), weight_bytes, act,
        "pingpong" if pingpong else "single", macs, res,
        dsp_macs=macs * max(b.dsp_per_mac for b in builds),
        mem_accesses=(gate_c + expert_c) // hw.linear.pipeline_ii
        * hw.linear.tile_in * hw.linear.tile_out,
        storage=storage, latency=latency, aux=(("moe_router", _router(w, ctx)),),
    )


def _resident(w: MoeWork, ctx: CostContext) -> Any:
    n_mult = ctx.hw.linear.tile_in * ctx.hw.linear.tile_out
    t = Tally()
    for job, count in ((w.gate, 1), (w.fc1, w.experts), (w.fc2, w.experts)):
        depth = math.ceil(job.n_out * job.n_in / n_mult)
        t.mem(memory(count * depth, n_mult * job.w_width, uram_available=ctx.uram))
    return t.freeze()


def _router(w: MoeWork, ctx: CostContext) -> Any:
    t = Tally(lut=LOGIC.control_lut, ff=LOGIC.control_ff)
    sm = w.softmax
    for rom in sm.roms:
        t.mem(memory(rom.entries, rom.width, 1))
        t.mult(multiplier(rom.diff_bits, rom.fraction_bits + 1, shared_operand=False,
                          dsp_kind=ctx.dsp_kind), 1)
    for a, b in sm.mults:
        t.mult(multiplier(a, b, shared_operand=False, dsp_kind=ctx.dsp_kind), 1)
    t.lut += w.top_k * 2 * w.score_bits  # comparator + shift register per top-k slot
    t.ff += w.top_k * (w.score_bits + max(1, (w.experts - 1).bit_length()))
    index_bits = max(1, (w.tokens - 1).bit_length())
    t.mem(memory(w.tokens, index_bits, w.experts, uram_available=ctx.uram))
    t.mem(memory(w.tokens, w.prob_bits, w.experts, uram_available=ctx.uram))
    return t.freeze()


def _mean_cost(costs: list[UnitCost]) -> UnitCost:
    """The per-image mean of several images' costs of one node (integer fields rounded)."""
    if len(costs) == 1:
        return costs[0]
    n = len(costs)

    def avg(key: str) -> int:
        return round(sum(getattr(c, key) for c in costs) / n)

    first = costs[0]
    phases = tuple((name, round(sum(dict(c.phases)[name] for c in costs) / n))
                   for name, _ in first.phases)
    compute = sum(v for _, v in phases) + avg("overhead_cycles")
    memory_cycles = avg("memory_cycles")
    return replace(
        first, cycles=sum(v for _, v in phases), overhead_cycles=avg("overhead_cycles"),
        phases=phases, weight_bytes=avg("weight_bytes"), act_bytes=avg("act_bytes"),
        memory_cycles=memory_cycles, latency_cycles=avg("latency_cycles"), macs=avg("macs"),
        bound="compute" if compute >= memory_cycles else "memory",
        dsp_pj=sum(c.dsp_pj for c in costs) / n, bram_pj=sum(c.bram_pj for c in costs) / n,
        dram_pj=sum(c.dram_pj for c in costs) / n, logic_pj=sum(c.logic_pj for c in costs) / n,
    )


def moe_cost(node: Any, graph: Any, hw: Any, ctx: CostContext) -> UnitCost:
    """Mixture of experts: gate, routing, per-expert fc1/fc2 with weight loads, combine.

    ``ctx.expert_load[node.name]`` may hold one image's per-expert counts (or active flags),
    or a (images, experts) array such as the simulator's ``reports["expert_load"][name]``:
    the node then costs the mean over the images.
    """
    work = ctx.work(node, _moe_work)
    if node.name not in ctx.expert_load:
        counts = expert_tokens(node.name, work, hw, None)
        return ctx.memo("moe", work, lambda: _cost(node, work, ctx, counts))
    given = np.asarray(ctx.expert_load[node.name])
    rows = given if given.ndim == 2 else given[None]
    if rows.shape[0] == 0:
        raise UsageError(f"expert_load[{node.name!r}]: no images")
    per_counts: dict[tuple[int, ...], UnitCost] = {}
    costs = []
    for row in rows:
        counts = expert_tokens(node.name, work, hw, row)
        if counts not in per_counts:
            per_counts[counts] = _cost(node, work, ctx, counts)
        costs.append(per_counts[counts])
    return _mean_cost(costs)
