"""The whole-model cost report: latency, throughput, resources per unit, fit, power, energy."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from vitaccel.cost._types import Resources, UnitCost

__all__ = ["CostReport"]

_RES_KEYS = ("dsp", "bram36", "uram", "lut", "ff")


@dataclass(frozen=True)
class CostReport:
    """Estimated cost of one image of a graph on a hardware configuration (an ESTIMATE).

    Attributes
    ----------
    graph, hw, board : str
        Graph name, hardware-config name and board name.
    clock_mhz : float
        Kernel clock, MHz.
    nodes : tuple of UnitCost
        Per-node costs in graph order (cycles per node; see :class:`UnitCost`).
    units : Mapping of str to Resources
        Resources per distinct hardware unit: the element-wise maximum over the nodes that
        unit executes (one linear engine serves every linear node).
    storage : Resources
        Node-private on-chip memory (resident weights), summed over nodes.
    interface : Resources
        The AXI master ports (``memory.num_dram_ports``).
    resources : Resources
        The design: sum over units + storage + interface.
    available : Resources
        The board's resources (``bram18`` = 2 x BRAM36).
    total_cycles : int
        Latency of one image when every node runs (sum of the nodes' latency cycles: units
        are shared, so nodes execute one after another).
    expected_cycles : float
        Expected latency under the early-exit distribution (equals ``total_cycles`` without
        one).
    setup_cycles : int
        One-time weight load before the first image (``resident`` buffering), else 0.
    static_power_w, dynamic_power_w : float
        Board static power and average dynamic power while processing, W.
    energy_mj : float
        Expected energy per image (static + dynamic), mJ.
    exit_fractions : Mapping of str to float
        Probability of leaving at each output node (empty when not given).
    notes : tuple of str
        Mismatches between the graph and the config worth a warning (e.g. unit variants:
        the graph's variants decide the bits and the cost).
    """

    graph: str
    hw: str
    board: str
    clock_mhz: float
    nodes: tuple[UnitCost, ...]
    units: Mapping[str, Resources]
    storage: Resources
    interface: Resources
    resources: Resources
    available: Resources
    total_cycles: int
    expected_cycles: float
    setup_cycles: int
    static_power_w: float
    dynamic_power_w: float
    energy_mj: float
    exit_fractions: Mapping[str, float] = field(default_factory=dict)
    notes: tuple[str, ...] = ()

    # ------------------------------------------------------------------ derived
    @property
    def latency_ms(self) -> float:
        """Expected latency of one image, ms."""
        return self.expected_cycles / (self.clock_mhz * 1e3)

    @property
    def throughput_ips(self) -> float:
        """Images per second, one image at a time (no overlap between images)."""
        return self.clock_mhz * 1e6 / self.expected_cycles

    @property
    def power_w(self) -> float:
        """Average total power while processing images back to back, W."""
        return self.static_power_w + self.dynamic_power_w

    @property
    def utilisation(self) -> dict[str, float]:
        """Used / available per resource (``inf`` where the board has none but some is used)."""
        used, avail = self.resources.as_dict(), self.available.as_dict()
        out = {}
        for key in _RES_KEYS:
            if avail[key]:
                out[key] = used[key] / avail[key]
            else:
                out[key] = float("inf") if used[key] else 0.0
        return out

    @property
    def fits(self) -> bool:
        """True when every resource is within the board's."""
        return all(v <= 1.0 for v in self.utilisation.values())

    @property
    def warnings(self) -> tuple[str, ...]:
        """Human-readable warnings: resources over the board, then :attr:`notes`."""
        used, avail = self.resources.as_dict(), self.available.as_dict()
        return tuple(
            f"DOES NOT FIT: {key} {used[key]:g} > {avail[key]:g} available on {self.board} "
            f"({ratio:.0%})"
            for key, ratio in self.utilisation.items() if ratio > 1.0
        ) + self.notes

    def node(self, name: str) -> UnitCost:
        """The cost of node ``name``."""
        for c in self.nodes:
            if c.name == name:
                return c
        raise KeyError(f"no node {name!r} in the cost report of {self.graph!r}")

    # ------------------------------------------------------------------ output
    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (cycles, ms, resources, utilisation, power, per-node rows)."""
        return {
            "graph": self.graph, "hw": self.hw, "board": self.board,
            "clock_mhz": self.clock_mhz, "estimate": True,
            "total_cycles": self.total_cycles, "expected_cycles": self.expected_cycles,
            "setup_cycles": self.setup_cycles, "latency_ms": self.latency_ms,
            "throughput_ips": self.throughput_ips,
            "resources": self.resources.as_dict(), "available": self.available.as_dict(),
            "utilisation": self.utilisation, "fits": self.fits, "warnings": list(self.warnings),
            "units": {k: v.as_dict() for k, v in self.units.items()},
            "storage": self.storage.as_dict(), "interface": self.interface.as_dict(),
            "static_power_w": self.static_power_w, "dynamic_power_w": self.dynamic_power_w,
            "power_w": self.power_w, "energy_mj": self.energy_mj,
            "exit_fractions": dict(self.exit_fractions),
            "nodes": [_node_dict(c) for c in self.nodes],
        }

    def to_json(self) -> str:
        """:meth:`to_dict` as indented JSON."""
        return json.dumps(self.to_dict(), indent=2)

    def table(self, *, layers: bool = True) -> str:
        """A readable report: per-layer breakdown (optional), units, totals, fit warnings."""
        lines = [f"Cost estimate (model, not synthesis): {self.graph} on {self.hw} "
                 f"({self.board}, {self.clock_mhz:g} MHz)"]
        if layers:
            lines += _layer_table(self)
        lines.append("")
        lines.append(f"{'unit':<16}{'DSP':>8}{'BRAM36':>9}{'URAM':>6}{'LUT':>10}{'FF':>10}")
        rows = list(self.units.items()) + [("(storage)", self.storage),
                                           ("(axi ports)", self.interface)]
        for name, r in rows + [("total", self.resources), ("available", self.available)]:
            lines.append(f"{name:<16}{r.dsp:>8}{r.bram36:>9g}{r.uram:>6}{r.lut:>10}{r.ff:>10}")
        u = self.utilisation
        lines.append("utilisation     " + "  ".join(f"{k} {v:.0%}" for k, v in u.items()))
        lines.append("")
        exp = "" if not self.exit_fractions else (
            f" (expected with early exits; all layers: {self.total_cycles:,} cycles)")
        lines.append(f"latency     {self.expected_cycles:,.0f} cycles = {self.latency_ms:.3f} ms"
                     f" at {self.clock_mhz:g} MHz{exp}")
        lines.append(f"throughput  {self.throughput_ips:,.1f} images/s")
        if self.setup_cycles:
            lines.append(f"setup       {self.setup_cycles:,} cycles (one-time resident weight "
                         "load)")
        lines.append(f"power       {self.power_w:.2f} W (static {self.static_power_w:.2f} W + "
                     f"dynamic {self.dynamic_power_w:.2f} W)")
        lines.append(f"energy      {self.energy_mj:.3f} mJ per image")
        lines += [f"WARNING: {w}" for w in self.warnings]
        return "\n".join(lines)


def _node_dict(c: UnitCost) -> dict[str, Any]:
    return {
        "name": c.name, "op": c.op, "unit": c.unit, "cycles": c.cycles,
        "overhead_cycles": c.overhead_cycles, "phases": dict(c.phases),
        "weight_bytes": c.weight_bytes, "act_bytes": c.act_bytes,
        "memory_cycles": c.memory_cycles, "latency_cycles": c.latency_cycles,
        "bound": c.bound, "macs": c.macs, "resources": c.resources.as_dict(),
        "storage": c.storage.as_dict(), "energy_pj": c.energy_pj,
    }


def _layer_table(r: CostReport) -> list[str]:
    width = max([len(c.name) for c in r.nodes] + [4])
    head = (f"{'node':<{width}}  {'op':<12}{'cycles':>11}{'+depth':>7}{'memory':>10}"
            f"{'latency':>11}  {'bound':<8}{'share':>6}{'DRAM KB':>10}")
    lines = ["", head, "-" * len(head)]
    total = max(r.total_cycles, 1)
    for c in r.nodes:
        lines.append(
            f"{c.name:<{width}}  {c.op:<12}{c.cycles:>11,}{c.overhead_cycles:>7}"
            f"{c.memory_cycles:>10,}{c.latency_cycles:>11,}  {c.bound:<8}"
            f"{c.latency_cycles / total:>6.1%}{c.dram_bytes / 1024:>10.1f}"
        )
    lines.append("-" * len(head))
    lines.append(f"{'total':<{width}}  {'':<12}{sum(c.cycles for c in r.nodes):>11,}"
                 f"{sum(c.overhead_cycles for c in r.nodes):>7}"
                 f"{sum(c.memory_cycles for c in r.nodes):>10,}{r.total_cycles:>11,}")
    return lines
