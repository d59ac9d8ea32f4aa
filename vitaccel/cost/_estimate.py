"""``estimate(graph, hw)``: the whole-model cost from the per-op cost functions."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from vitaccel.cost._context import CostContext, graph_work
from vitaccel.cost._hwmath import LOGIC, storage_bytes
from vitaccel.cost._registry import COST
from vitaccel.cost._report import CostReport
from vitaccel.cost._types import NO_RESOURCES, Resources, UnitCost
from vitaccel.errors import UsageError

__all__ = ["estimate"]


def estimate(
    graph: Any,
    hw: Any,
    *,
    expert_load: Mapping[str, Any] | None = None,
    exit_fractions: Mapping[str, float] | Any = None,
) -> CostReport:
    """Estimate cycles, latency, resources, power and energy of ``graph`` on ``hw``.

    This is an analytical MODEL (documented in :mod:`vitaccel.cost`), not a synthesis result:
    each op's cost function derives cycles from its unit's loop structure, DRAM time from the
    ports and the board's bandwidth, and resources from the operand widths and buffer sizes.

    Parameters
    ----------
    graph : vitaccel.ir.Graph
        The quantized graph (its formats set the multiplier and buffer widths).
    hw : vitaccel.hw.HwConfig
        The hardware configuration (parallelism, buffering, ports, board, clock).
    expert_load : Mapping, optional
        MoE node name -> per-expert token counts of one image (length ``num_experts``;
        booleans mark active experts sharing the ``tokens * top_k`` routed tokens), or an
        (images, experts) array such as the simulator's ``reports["expert_load"][name]``, in
        which case the node costs the mean over those images. Nodes not given assume the
        worst case: every expert active with ``tokens * top_k / num_experts`` tokens (or
        ``moe.max_active_experts`` experts sharing the tokens).
    exit_fractions : Mapping of str to float or ExitSummary, optional
        Output node name (an exit head or the final output) -> fraction of images leaving
        there, or the simulator's exit summary (``.exits`` and ``.histogram``, see
        ``vitaccel.units._exit_report.exit_summary``). The expected latency and energy are
        ``sum_e P(e) * cost of the nodes up to and including e``; fractions missing from
        the mapping leave at the final output.

    Returns
    -------
    CostReport

    Raises
    ------
    UsageError
        An op without a cost function, an unknown MoE/exit node, or bad fractions.
    """
    ctx = CostContext(hw, graph, dict(expert_load or {}))
    _check_expert_load(graph, ctx.expert_load)
    summaries = ctx.summaries
    # Nodes of one op with the same (interned) hardware-independent summary cost the same;
    # MoE nodes with an explicit expert load are priced individually.
    done: dict[tuple[str, int], UnitCost] = {}
    costs: list[UnitCost] = []
    for node in graph.nodes:
        work = summaries.get(node.name)
        shared = node.name not in ctx.expert_load
        c = done.get((node.op, id(work))) if work is not None and shared else None
        if c is None:
            fn = COST.get(node.op)
            if fn is None:
                raise UsageError(f"node {node.name!r}: no cost function for op {node.op!r} "
                                 f"(known: {', '.join(sorted(COST))})")
            c = fn(node, graph, hw, ctx)
            work = summaries.get(node.name)
            if work is not None and shared:
                done[(node.op, id(work))] = c
        if c.name != node.name:
            c = _renamed(c, node.name)
        costs.append(c)
    return _report(graph, hw, tuple(costs), _fractions(graph, exit_fractions))


def _renamed(cost: UnitCost, name: str) -> UnitCost:
    """A copy of a memoised cost under another node's name (no re-validation needed)."""
    new = object.__new__(UnitCost)
    new.__dict__.update(cost.__dict__)
    new.__dict__["name"] = name
    return new


def _check_expert_load(graph: Any, load: Mapping[str, Any]) -> None:
    names = {n.name: n.op for n in graph.nodes}
    for key in load:
        if names.get(key) != "moe":
            moe = [n for n, op in names.items() if op == "moe"]
            raise UsageError(f"expert_load: {key!r} is not a MoE node of graph "
                             f"{graph.name!r} (MoE nodes: {', '.join(moe) or 'none'})")


def _fractions(graph: Any, given: Any) -> dict[str, float]:
    if given is None:
        return {}
    if hasattr(given, "exits") and hasattr(given, "histogram"):
        total = sum(given.histogram)
        if total <= 0:
            raise UsageError("exit_fractions: the exit histogram holds no images")
        given = {name: n / total for name, n in zip(given.exits, given.histogram, strict=True)}
    if not given:
        return {}
    out: dict[str, float] = {}
    for key, value in given.items():
        if key not in graph.outputs:
            raise UsageError(f"exit_fractions: {key!r} is not an output of graph "
                             f"{graph.name!r} (outputs: {', '.join(graph.outputs)})")
        v = float(value)
        if not 0.0 <= v <= 1.0 or math.isnan(v):
            raise UsageError(f"exit_fractions[{key!r}]: expected a fraction in [0, 1], got "
                             f"{value!r}")
        out[key] = v
    total = sum(out.values())
    if total > 1.0 + 1e-9:
        raise UsageError(f"exit_fractions: fractions sum to {total:g} > 1")
    final = graph.outputs[0]
    out[final] = out.get(final, 0.0) + max(0.0, 1.0 - total)
    return out


def _report(graph: Any, hw: Any, costs: tuple[UnitCost, ...],
            fractions: dict[str, float]) -> CostReport:
    units: dict[str, Resources] = {}
    seen: set[int] = set()
    storage = NO_RESOURCES
    total_cycles = 0
    energy_pj = 0.0
    cycles = energy = 0.0  # expected values over the exit distribution
    for c in costs:
        total_cycles += c.latency_cycles
        energy_pj += c.dsp_pj + c.bram_pj + c.dram_pj + c.logic_pj
        if fractions:
            p = fractions.get(c.name, 0.0)
            cycles += p * total_cycles
            energy += p * energy_pj
        if id(c.resources) not in seen:
            seen.add(id(c.resources))
            for unit, res in ((c.unit, c.resources),) + c.aux:
                prev = units.get(unit)
                units[unit] = res if prev is None else prev.max(res)
        if c.storage is not NO_RESOURCES:
            storage = storage + c.storage
    if not fractions:
        cycles, energy = float(total_cycles), energy_pj
    ports = hw.memory.num_dram_ports
    interface = Resources(lut=ports * LOGIC.axi_port_lut, ff=ports * LOGIC.axi_port_ff)
    total = storage + interface
    for r in units.values():
        total = total + r
    board = hw.board
    available = Resources(board.dsp, 2 * board.bram36, board.uram, board.lut, board.ff)
    seconds = cycles / (hw.clock_mhz * 1e6)
    setup = 0
    if hw.linear.weight_buffering == "resident":
        setup = CostContext(hw, graph).transfer_cycles(_all_param_bytes(graph), 0)
    return CostReport(
        graph=graph.name, hw=hw.name, board=board.name, clock_mhz=hw.clock_mhz,
        nodes=costs, units=units, storage=storage, interface=interface, resources=total,
        available=available, total_cycles=total_cycles, expected_cycles=cycles,
        setup_cycles=setup, static_power_w=board.static_power_w,
        dynamic_power_w=energy * 1e-12 / seconds,
        energy_mj=(board.static_power_w * seconds + energy * 1e-12) * 1e3,
        exit_fractions=fractions, notes=_variant_notes(graph, hw),
    )


_VARIANT_ATTRS = (("softmax", "softmax"), ("gelu", "gelu"), ("variant", "layernorm"))


def _variant_notes(graph: Any, hw: Any) -> tuple[str, ...]:
    """Warnings where the graph's unit variants are not the ones the config names."""
    cache = graph_work(graph)
    used = cache.get(("variants",))
    if used is None:
        found: dict[str, set[str]] = {}
        for node in graph.nodes:
            for attr, kind in _VARIANT_ATTRS:
                v = node.attrs.get(attr)
                if v is not None and getattr(v, "KIND", None) == kind:
                    found.setdefault(kind, set()).add(v.NAME)
        used = cache[("variants",)] = {k: tuple(sorted(v)) for k, v in found.items()}
    notes = []
    for kind, names in used.items():
        want = getattr(hw.variants, kind)
        if names != (want,):
            notes.append(f"graph {graph.name!r} uses {kind} variant(s) {', '.join(names)} but "
                         f"hw config {hw.name!r} names {want!r}: the estimate follows the graph "
                         "(rebuild it with Numerics.from_hw(hw))")
    return tuple(notes)


def _all_param_bytes(graph: Any) -> int:
    """Bytes of every parameter of the graph in DRAM (cached with the graph's summaries)."""
    cache = graph_work(graph)
    key = ("param_bytes",)
    if key not in cache:
        cache[key] = sum(p.raw.size * storage_bytes(p.fmt.width)
                         for n in graph.nodes for p in n.params.values())
    return cache[key]
