"""Per-layer plots of chosen design points: latency breakdown and roofline."""

from __future__ import annotations

import re
from typing import Any

import matplotlib
import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from vitaccel.plots._common import new_figure, wrap_label

__all__ = ["breakdown_figure", "layer_kind", "roofline_figure", "roofline_points"]

_BLOCK = re.compile(r"^blocks\.\d+\.")


def layer_kind(name: str) -> str:
    """The unit role of a node name: ``blocks.3.attn.qkv`` -> ``attn.qkv``."""
    return _BLOCK.sub("", name)


def breakdown_segments(report: Any) -> dict[tuple[str, str], float]:
    """Latency (ms) per (layer kind, bound) of one cost report, in graph order."""
    out: dict[tuple[str, str], float] = {}
    ms_per_cycle = 1.0 / (report.clock_mhz * 1e3)
    for c in report.nodes:
        key = (layer_kind(c.name), c.bound)
        out[key] = out.get(key, 0.0) + c.latency_cycles * ms_per_cycle
    return out


def breakdown_figure(reports: list[Any], labels: list[str], *, title: str) -> Figure:
    """Stacked bars of per-layer latency for a few design points.

    Each bar is one point; its segments are the layer kinds (all blocks' ``attn.qkv`` nodes
    together, ...), split into the compute-bound and the memory-bound (hatched) part. A bar's
    height is the point's latency with every layer running (``total_cycles`` / clock).

    Artists: ``ax.patches`` are the bar segments (gid ``"<kind>|<bound>|<bar index>"``).
    """
    fig = new_figure(max(6.0, 1.6 * len(reports) + 3.5), 5.0)
    ax = fig.add_subplot()
    segs = [breakdown_segments(r) for r in reports]
    kinds = list(dict.fromkeys(k for s in segs for (k, _) in s))
    palette = matplotlib.colormaps["tab20"]
    cmap = [palette(i % 20) for i in range(len(kinds))]
    xs = np.arange(len(reports))
    bottom = np.zeros(len(reports))
    for i, kind in enumerate(kinds):
        for bound, hatch in (("compute", None), ("memory", "///")):
            h = np.array([s.get((kind, bound), 0.0) for s in segs])
            if not h.any():
                continue
            bars = ax.bar(xs, h, 0.6, bottom=bottom, color=cmap[i], hatch=hatch,
                          edgecolor="black", lw=0.3)
            for j, patch in enumerate(bars.patches):
                patch.set_gid(f"{kind}|{bound}|{j}")
            bottom += h
    handles = [Patch(facecolor=cmap[i], label=k) for i, k in enumerate(kinds)]
    handles.append(Patch(facecolor="white", edgecolor="black", hatch="///",
                         label="memory-bound part"))
    ax.legend(handles=handles, fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    ax.set_xticks(xs, [wrap_label(label) for label in labels], fontsize=7)
    ax.set_ylabel("latency per image (ms)")
    ax.set_xlabel("design point")
    ax.set_title(title, fontsize=10)
    ax.grid(True, axis="y", alpha=0.3)
    return fig


def roofline_points(report: Any) -> list[tuple[str, str, float, float]]:
    """(node, op, ops/byte, ops/s) of every node with work; ops = 2 x MACs.

    Nodes that move no DRAM bytes (everything on chip) get an infinite intensity.
    """
    out = []
    clock_hz = report.clock_mhz * 1e6
    for c in report.nodes:
        if c.macs <= 0 or c.latency_cycles <= 0:
            continue
        ops = 2.0 * c.macs
        intensity = ops / c.dram_bytes if c.dram_bytes else float("inf")
        out.append((c.name, c.op, intensity, ops / (c.latency_cycles / clock_hz)))
    return out


def roofline_figure(report: Any, hw: Any, *, title: str) -> Figure:
    """Every layer of one design point on the board's roofline (log-log).

    The roof is ``min(peak, bandwidth x intensity)`` with peak = 2 x the linear engine's MACs
    per cycle x clock (ops/s) and the usable DRAM bandwidth of the configuration. Layers with
    no DRAM traffic sit at the right edge.

    Artists: one scatter per op kind (gid ``"layers:<op>"``), the roof line (gid ``"roof"``).
    """
    pts = roofline_points(report)
    peak = 2.0 * hw.linear.macs_per_cycle * hw.clock_mhz * 1e6
    bw = hw.dram_bandwidth_gbps * 1e9
    finite = [p[2] for p in pts if np.isfinite(p[2])]
    lo = min(finite + [peak / bw]) / 4
    hi = max(finite + [peak / bw]) * 8
    fig = new_figure()
    ax = fig.add_subplot()
    grid = np.geomspace(lo, hi, 200)
    ax.plot(grid, np.minimum(peak, bw * grid), color="black", lw=1.5, gid="roof",
            label=f"roof: {peak / 1e9:.0f} GOP/s, {hw.dram_bandwidth_gbps:.1f} GB/s")
    ax.axvline(peak / bw, color="0.6", ls=":", lw=1, label=f"ridge {peak / bw:.1f} ops/byte")
    ops = list(dict.fromkeys(p[1] for p in pts))
    for i, op in enumerate(ops):
        mine = [p for p in pts if p[1] == op]
        x = [p[2] if np.isfinite(p[2]) else hi for p in mine]
        ax.scatter(x, [p[3] for p in mine], s=22, color=f"C{i % 10}", edgecolor="black",
                   lw=0.3, label=op, gid=f"layers:{op}", zorder=3)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(lo, hi * 1.5)
    ax.set_xlabel("arithmetic intensity (ops/byte of DRAM traffic)")
    ax.set_ylabel("achieved performance (ops/s)")
    ax.set_title(title, fontsize=10)
    ax.grid(True, which="both", alpha=0.25)
    ax.legend(fontsize=7, loc="lower right")
    return fig
