"""The quantized graph IR read by the simulator, the cost model and the code generator."""

from vitaccel.ir._build import Numerics, build_graph
from vitaccel.ir._graph import INPUT, Graph, Node, Param
from vitaccel.ir._ops import OPS, OpSpec
from vitaccel.ir._precision import (
    CORE_ROLES,
    PRECISION_PRESETS,
    Auto,
    Precision,
    get_precision,
)

__all__ = [
    "CORE_ROLES",
    "INPUT",
    "OPS",
    "PRECISION_PRESETS",
    "Auto",
    "Graph",
    "Node",
    "Numerics",
    "OpSpec",
    "Param",
    "Precision",
    "build_graph",
    "get_precision",
]
