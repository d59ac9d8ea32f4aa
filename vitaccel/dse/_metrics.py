"""The metric columns of a sweep's results table and how they are read off the reports."""

from __future__ import annotations

import math
from typing import Any

__all__ = ["ACCURACY_METRICS", "COST_METRICS", "METRIC_UNITS", "accuracy_metrics",
           "cost_metrics"]

# name -> unit (for plot axes and documentation)
METRIC_UNITS: dict[str, str] = {
    "latency_ms": "ms",
    "cycles": "cycles",
    "total_cycles": "cycles",
    "throughput_ips": "images/s",
    "dsp": "DSP slices",
    "bram36": "36 Kb BRAMs",
    "uram": "URAMs",
    "lut": "LUTs",
    "ff": "FFs",
    "dsp_util": "fraction of board",
    "bram_util": "fraction of board",
    "uram_util": "fraction of board",
    "lut_util": "fraction of board",
    "ff_util": "fraction of board",
    "power_w": "W",
    "energy_mj": "mJ/image",
    "fits": "bool",
    "accuracy": "fraction",
    "accuracy_float": "fraction",
    "top1_agreement": "fraction",
    "sqnr_db": "dB",
    "min_sqnr_db": "dB",
}
COST_METRICS = tuple(list(METRIC_UNITS)[:17])
ACCURACY_METRICS = ("accuracy", "accuracy_float", "top1_agreement", "sqnr_db", "min_sqnr_db")


def cost_metrics(report: Any) -> dict[str, Any]:
    """Metric columns of a :class:`vitaccel.cost.CostReport` (latency, resources, power)."""
    res = report.resources
    util = report.utilisation
    return {
        "latency_ms": float(report.latency_ms),
        "cycles": float(report.expected_cycles),
        "total_cycles": int(report.total_cycles),
        "throughput_ips": float(report.throughput_ips),
        "dsp": int(res.dsp),
        "bram36": float(res.bram36),
        "uram": int(res.uram),
        "lut": int(res.lut),
        "ff": int(res.ff),
        "dsp_util": float(util["dsp"]),
        "bram_util": float(util["bram36"]),
        "uram_util": float(util["uram"]),
        "lut_util": float(util["lut"]),
        "ff_util": float(util["ff"]),
        "power_w": float(report.power_w),
        "energy_mj": float(report.energy_mj),
        "fits": bool(report.fits),
    }


def accuracy_metrics(report: Any, output: str) -> dict[str, float]:
    """Metric columns of a :class:`vitaccel.sim.Report` (accuracy and SQNR on the images).

    ``sqnr_db`` is the SQNR of the node ``output`` (the graph's main output); ``min_sqnr_db``
    the lowest finite SQNR over all layers (NaN when every layer is bit-identical to the float
    reference).
    """
    finite = [e.sqnr_db for e in report.layers if math.isfinite(e.sqnr_db)]
    nan = float("nan")
    return {
        "accuracy": nan if report.accuracy_sim is None else float(report.accuracy_sim),
        "accuracy_float": nan if report.accuracy_float is None else float(report.accuracy_float),
        "top1_agreement": nan if report.top1_agreement is None else float(report.top1_agreement),
        "sqnr_db": next((float(e.sqnr_db) for e in report.layers if e.name == output), nan),
        "min_sqnr_db": min(finite) if finite else nan,
    }
