"""Bit-accurate simulation of quantized graphs and comparison with the float reference."""

from vitaccel.sim._reference import run_reference
from vitaccel.sim._registry import REFERENCE, SIM, SimContext, register
from vitaccel.sim._report import LayerError, Report, compare, error_metrics
from vitaccel.sim._simulate import SimResult, check_images, simulate

__all__ = [
    "LayerError",
    "Report",
    "compare",
    "error_metrics",
    "REFERENCE",
    "SIM",
    "SimContext",
    "SimResult",
    "check_images",
    "register",
    "run_reference",
    "simulate",
]
