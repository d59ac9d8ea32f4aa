"""Per-estimate state and the memory/overlap/energy rules every cost function shares.

DRAM model (an estimate; peak figures, no refresh or page-miss losses):

* Parameters stream through ONE dedicated AXI master port (Edge-MoE's ``weights`` bundle);
  activations through the remaining ``num_dram_ports - 1`` ports. With a single port both
  share it. A port moves ``dram_port_width_bits / 8`` bytes per cycle, and all ports together
  never exceed the board's bandwidth (``board.dram_bandwidth_gbps`` at ``clock_mhz``).
* Units exchange activations through DRAM buffers (as Edge-MoE does); the reads and writes
  are streamed in a dataflow region, so they overlap with the unit's compute.
* Weight buffering (``linear.weight_buffering``): ``pingpong`` loads the next layer's weights
  while this one computes; each node is charged latency = max(compute, all its transfers)
  (its own load hides behind an equal share of compute: the steady-state approximation of
  overlapping a load with the previous node); ``single`` loads the
  weights first, then computes: latency = weight load + max(compute, activation transfers);
  ``resident`` keeps every weight on chip after a one-time load before the first image
  (reported as ``CostReport.setup_cycles``, not per image): latency = max(compute,
  activation transfers).

Energy: DSP MACs at ``dsp_mac_pj`` per DSP slice used by the product; block-RAM accesses at
``bram36_access_pj`` (``uram_access_pj`` when the unit's buffers are UltraRAM); DRAM bytes at
``dram_pj_per_byte``; LUT and FF switching power (``lut_mw_per_k_at_100mhz``,
``ff_mw_per_k_at_100mhz`` scaled by the clock) of the unit for the node's latency.
"""

from __future__ import annotations

import functools
import math
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from vitaccel.cost._types import NO_RESOURCES, Resources, UnitCost
from vitaccel.errors import UsageError
from vitaccel.hw._power import default_energy_model

__all__ = ["CostContext", "graph_work"]

_WORK_CACHE: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


@functools.lru_cache(maxsize=256)
def _energy_model(family: str, memory_type: str, overrides: Any) -> Any:
    """``HwConfig.energy_model`` for these inputs (cached: it validates on construction)."""
    return overrides.apply(default_energy_model(family, memory_type))


def graph_work(graph: Any) -> dict[Any, Any]:
    """The per-graph cache of hardware-independent facts: node name -> summary object, plus
    tuple-keyed graph-wide entries (interned summaries, parameter bytes, variant names)."""
    try:
        return _WORK_CACHE[graph]
    except KeyError:
        cache: dict[str, Any] = {}
        _WORK_CACHE[graph] = cache
        return cache


@dataclass
class CostContext:
    """What cost functions share during one :func:`vitaccel.estimate` call.

    Attributes
    ----------
    hw : HwConfig
        The hardware configuration.
    graph : Graph
        The graph being estimated.
    expert_load : Mapping
        MoE node name -> per-expert token counts (see ``estimate``).
    summaries : dict
        The graph's cached hardware-independent summaries (:func:`graph_work`).
    """

    hw: Any
    graph: Any
    expert_load: Mapping[str, Any] = field(default_factory=dict)
    _memo: dict[Any, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        hw = self.hw
        self.port_bpc = hw.memory.dram_port_width_bits / 8
        self.ports = hw.memory.num_dram_ports
        self.board_bpc = hw.board.dram_bandwidth_gbps * 1e3 / hw.clock_mhz
        self.energy = _energy_model(hw.board.family, hw.board.memory_type, hw.energy)
        self.dsp_kind = hw.board.dsp_kind
        self.uram = hw.board.uram > 0
        self.lanes = hw.attention.head_dim_lanes
        self.summaries = graph_work(self.graph)

    # -------------------------------------------------------------- caching
    def work(self, node: Any, extract: Callable[[Any, Any], Any]) -> Any:
        """The node's hardware-independent summary, computed once per graph.

        Equal summaries of different nodes are interned into one object, so that
        :meth:`memo` can key on identity.
        """
        w = self.summaries.get(node.name)
        if w is None:
            w = extract(node, self.graph)
            w = self.summaries.setdefault(("interned", w), w)
            self.summaries[node.name] = w
        return w

    def memo(self, op: str, work: Any, compute: Callable[[], Any]) -> Any:
        """Result of ``compute()`` shared by the nodes of kind ``op`` with the same (interned)
        ``work`` in this estimate."""
        key = (op, id(work))
        try:
            return self._memo[key]
        except KeyError:
            value = self._memo[key] = compute()
            return value

    # ------------------------------------------------------------ memory model
    def transfer_cycles(self, weight_bytes: float, act_bytes: float) -> int:
        """Cycles to move ``weight_bytes`` and ``act_bytes`` concurrently (module docstring)."""
        if weight_bytes <= 0 and act_bytes <= 0:
            return 0
        if self.ports == 1:
            cycles = (weight_bytes + act_bytes) / self.port_bpc
        else:
            cycles = max(weight_bytes / self.port_bpc,
                         act_bytes / ((self.ports - 1) * self.port_bpc))
        return math.ceil(max(cycles, (weight_bytes + act_bytes) / self.board_bpc))

    def combine(self, compute: int, weight_bytes: int, act_bytes: int,
                buffering: str) -> tuple[int, int, int, str]:
        """``(weight_bytes, memory_cycles, latency_cycles, bound)`` under ``buffering``."""
        if buffering == "resident":
            weight_bytes = 0
        memory = self.transfer_cycles(weight_bytes, act_bytes)
        if buffering == "single":
            latency = self.transfer_cycles(weight_bytes, 0) + max(
                compute, self.transfer_cycles(0, act_bytes))
        elif buffering in ("pingpong", "resident"):
            latency = max(compute, memory)
        else:
            raise UsageError(f"weight buffering {buffering!r}: expected single, pingpong or "
                             "resident")
        return weight_bytes, memory, latency, "compute" if compute >= memory else "memory"

    # ------------------------------------------------------------------ result
    def unit_cost(
        self, node: Any, unit: str, phases: tuple[tuple[str, int], ...], overhead: int,
        weight_bytes: int, act_bytes: int, buffering: str, macs: int, res: Resources,
        dsp_macs: float, mem_accesses: int, storage: Resources | None = None,
        latency: int | None = None, aux: tuple[tuple[str, Resources], ...] = (),
    ) -> UnitCost:
        """Assemble a :class:`UnitCost` (memory overlap, bound and energy terms).

        ``dsp_macs`` counts DSP-slice operations (MACs times DSPs per product);
        ``mem_accesses`` on-chip buffer port accesses. ``latency`` replaces the overlap rule
        of :meth:`combine` for units with their own load schedule (MoE experts).
        """
        cycles = sum(c for _, c in phases)
        if cycles <= 0:
            raise UsageError(f"cost of node {node.name!r} ({node.op}): zero compute cycles")
        compute = cycles + overhead
        wbytes, memory, combined, bound = self.combine(compute, weight_bytes, act_bytes,
                                                       buffering)
        if latency is None:
            latency = combined
        else:
            bound = "compute" if latency <= compute else "memory"
        e = self.energy
        access_pj = e.uram_access_pj if res.uram and not res.bram18 else e.bram36_access_pj
        logic_mw_per_100mhz = (res.lut * e.lut_mw_per_k_at_100mhz
                               + res.ff * e.ff_mw_per_k_at_100mhz) / 1000
        return UnitCost(
            name=node.name, op=node.op, unit=unit, cycles=cycles, overhead_cycles=overhead,
            phases=phases, weight_bytes=wbytes, act_bytes=act_bytes, memory_cycles=memory,
            latency_cycles=latency, bound=bound, macs=macs, resources=res,
            storage=storage if storage is not None else NO_RESOURCES,
            dsp_pj=dsp_macs * e.dsp_mac_pj, bram_pj=mem_accesses * access_pj,
            dram_pj=(wbytes + act_bytes) * e.dram_pj_per_byte,
            # mW at 100 MHz x (f / 100 MHz) x latency / f = energy; 1 mW x 1 cycle at f MHz.
            logic_pj=logic_mw_per_100mhz * latency * 10.0, aux=aux,
        )
