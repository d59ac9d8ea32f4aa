"""vitaccel: bit-accurate quantized Vision-Transformer accelerators on FPGAs.

Simulate a quantized ViT exactly as the hardware computes it, estimate its cost on a board,
generate Vitis HLS C++ that C-simulates to the same bits, and explore the design space.
"""

from vitaccel.codegen import emit
from vitaccel.cost import estimate
from vitaccel.errors import VitaccelError

__version__ = "0.1.0"

__all__ = ["VitaccelError", "__version__", "emit", "estimate"]
