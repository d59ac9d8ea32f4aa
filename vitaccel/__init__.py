"""vitaccel: bit-accurate quantized Vision-Transformer accelerators on FPGAs.

Simulate a quantized ViT exactly as the hardware computes it, estimate its cost on a board,
generate Vitis HLS C++ that C-simulates to the same bits, and explore the design space.
"""

from vitaccel.codegen import emit
from vitaccel.cost import estimate
from vitaccel.errors import UsageError, VitaccelError
from vitaccel.fixed import FixedType
from vitaccel.ir import Graph, Numerics, Precision
from vitaccel.ir import build_graph as quantize
from vitaccel.sim import compare, simulate

__version__ = "0.1.0"

__all__ = [
    "FixedType",
    "Graph",
    "Numerics",
    "Precision",
    "UsageError",
    "VitaccelError",
    "__version__",
    "compare",
    "emit",
    "estimate",
    "quantize",
    "simulate",
]
