"""Vitis HLS C++ generation and C-simulation.

``emit(graph, hw)`` renders a project (kernels, top function, types, ROMs, weights,
testbench, build scripts) from Jinja2 templates without touching the disk;
``write_project`` writes it atomically; ``csim`` compiles it with g++ against the ap_fixed
headers and checks that every output bit equals the simulator's.
"""

from vitaccel.codegen._csim import CsimResult, csim
from vitaccel.codegen._emit import emit
from vitaccel.codegen._project import write_project
from vitaccel.codegen._render import RENDER

__all__ = ["RENDER", "CsimResult", "csim", "emit", "write_project"]
