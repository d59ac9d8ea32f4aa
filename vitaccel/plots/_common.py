"""Shared plotting helpers: figures without pyplot, deterministic saving, labels."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import matplotlib
from matplotlib.figure import Figure

from vitaccel.dse._metrics import METRIC_UNITS
from vitaccel.errors import UsageError

__all__ = ["FORMATS", "axis_label", "new_figure", "save_figure", "short_knob", "wrap_label"]

FORMATS = ("png", "svg", "pdf")
# Metadata that would otherwise carry dates or versions into the files.
_METADATA = {
    "png": {"Software": "vitaccel"},
    "svg": {"Date": None, "Creator": "vitaccel"},
    "pdf": {"CreationDate": None, "ModDate": None, "Creator": "vitaccel",
            "Producer": "vitaccel"},
}
_NAMES = {
    "latency_ms": "latency", "cycles": "expected cycles", "total_cycles": "cycles",
    "throughput_ips": "throughput", "dsp": "DSP", "bram36": "BRAM", "uram": "URAM",
    "lut": "LUT", "ff": "FF", "dsp_util": "DSP utilisation", "bram_util": "BRAM utilisation",
    "uram_util": "URAM utilisation", "lut_util": "LUT utilisation", "ff_util": "FF utilisation",
    "power_w": "power", "energy_mj": "energy", "accuracy": "bit-exact accuracy",
    "accuracy_float": "float accuracy", "top1_agreement": "top-1 agreement with float",
    "sqnr_db": "output SQNR", "min_sqnr_db": "worst layer SQNR",
}
_SHORT = {
    "linear.tile_in": "in", "linear.tile_out": "out", "attention.parallel_queries": "P",
    "clock_mhz": "MHz", "attention.head_dim_lanes": "lanes", "memory.num_dram_ports": "ports",
    "memory.dram_port_width_bits": "axi", "linear.pipeline_ii": "II",
}


def new_figure(width_in: float = 7.0, height_in: float = 4.8) -> Figure:
    """A figure attached to the Agg canvas (no window, no pyplot global state)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    fig = Figure(figsize=(width_in, height_in), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def save_figure(fig: Figure, path: str | os.PathLike[str]) -> Path:
    """Save ``fig`` as PNG, SVG or PDF (by extension), byte-identical for identical data.

    Raises
    ------
    UsageError
        Any other extension.
    """
    p = Path(path)
    fmt = p.suffix.lower().lstrip(".")
    if fmt not in FORMATS:
        raise UsageError(f"--out {p}: expected a .png, .svg or .pdf file name")
    p.parent.mkdir(parents=True, exist_ok=True)
    with matplotlib.rc_context({"svg.hashsalt": "vitaccel", "svg.fonttype": "path",
                                "pdf.compression": 6}):
        tmp = p.with_name(f".{p.name}.tmp")
        try:
            fig.savefig(tmp, format=fmt, dpi=150, metadata=_METADATA[fmt])
            os.replace(tmp, p)
        finally:
            tmp.unlink(missing_ok=True)
    return p


def axis_label(metric: str) -> str:
    """``"latency (ms)"``-style label of a metric column (the column name when unknown)."""
    unit = METRIC_UNITS.get(metric)
    name = _NAMES.get(metric, metric)
    if unit is None or unit == "bool":
        return name
    return f"{name} ({unit})"


def short_knob(key: str, value: Any) -> str:
    """A compact label of one knob value: ``P4``, ``300MHz``, ``act16``, ``two_pass``."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if key in _SHORT:
        s = _SHORT[key]
        return f"{value}{s}" if s == "MHz" else f"{s}{value}"
    if key.startswith("precision.") and key.endswith(".width"):
        return f"{key[len('precision.'):-len('.width')]}{value}"
    return str(value)


def wrap_label(text: str, width: int = 18) -> str:
    """``text`` broken into lines of at most ``width`` characters (at spaces)."""
    import textwrap

    return "\n".join(textwrap.wrap(text, width)) or text
