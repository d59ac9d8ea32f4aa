"""Analytical cost model: cycles, latency, resources, power and energy of a graph on a board.

``estimate(graph, hw) -> CostReport``. Every op kind owns a cost function in the registry
``COST`` (``COST[op](node, graph, hw, ctx) -> UnitCost``); an op without one is an error,
never a silent zero. The figures are ESTIMATES from loop structure, operand widths, buffer
sizes and documented coefficients (see the module docstrings of ``_linear``, ``_attention``,
``_elementwise``, ``_context``, ``_hwmath`` and ``_variants``), not synthesis results.

Units are shared: one linear engine runs every linear, patch-embedding, head, MoE and
exit-head node, so the design's resources are per distinct unit (the maximum over the nodes it
serves), while cycles are per node and add up (nodes run one after another, one image at a
time).

What comes from where: the graph gives shapes, formats (operand widths, buffer widths) and
the nonlinear unit variants (their ROMs and passes; a config naming other variants gets a
warning); the hardware config gives tiles, initiation interval, attention order and
parallelism, feature-block lanes, weight buffering, DRAM ports, MoE execution, board,
clock and energy coefficients. Hardware-independent node summaries are computed once per
graph and cached, so an estimate is arithmetic (thousands per second for DeiT-Small).
"""

from vitaccel.cost._estimate import estimate
from vitaccel.cost._hwmath import dsp_per_product, multiplier
from vitaccel.cost._registry import COST, register
from vitaccel.cost._report import CostReport
from vitaccel.cost._types import Resources, UnitCost

__all__ = [
    "COST",
    "CostReport",
    "Resources",
    "UnitCost",
    "dsp_per_product",
    "estimate",
    "multiplier",
    "register",
]
