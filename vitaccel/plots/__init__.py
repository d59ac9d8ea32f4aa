"""Plots of design-space sweeps (matplotlib, written to PNG/SVG/PDF files, never windows).

:func:`plot_sweep` draws one of :data:`PLOT_KINDS` from a sweep folder:

* ``pareto`` -- every point on two metrics, the Pareto front (labelled with its knobs), the
  board's capacity, the reference design;
* ``breakdown`` -- per-layer latency as stacked bars for chosen points, memory-bound parts
  hatched;
* ``roofline`` -- each layer of a chosen point on the board's roofline;
* ``accuracy-bits`` -- accuracy and SQNR against the bit width of each swept role;
* ``utilization`` -- DSP/BRAM/LUT/FF use against the board for chosen points.

The figure functions take plain data and return a :class:`matplotlib.figure.Figure`, so
their artists can be inspected; output files are deterministic for the same data.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from vitaccel.dse import Objective, pareto_table
from vitaccel.dse._reload import Sweep, open_sweep
from vitaccel.errors import UsageError
from vitaccel.plots._common import save_figure, short_knob
from vitaccel.plots._layers import breakdown_figure, roofline_figure, roofline_points
from vitaccel.plots._pareto import pareto_axes, pareto_figure
from vitaccel.plots._tables import accuracy_bits_figure, utilization_figure

__all__ = [
    "PLOT_KINDS",
    "accuracy_bits_figure",
    "breakdown_figure",
    "pareto_figure",
    "plot_sweep",
    "roofline_figure",
    "roofline_points",
    "save_figure",
    "sweep_figure",
    "utilization_figure",
]

PLOT_KINDS = ("pareto", "breakdown", "roofline", "accuracy-bits", "utilization")


def _title(sweep: Sweep, what: str, table: pd.DataFrame) -> str:
    from vitaccel.models import get_config

    space = sweep.space
    model = get_config(space.model).name
    boards = ", ".join(sorted(table["board"].unique())) if "board" in table else "?"
    return f"{what}: {model} on {boards} ({space.name})"


def point_label(sweep: Sweep, row: pd.Series) -> str:
    """``#12 in16 out8 P4`` (the knobs that vary in the sweep), ``#40 reference``."""
    if bool(row["reference"]):
        return f"#{int(row['point'])} reference"
    table = sweep.table
    keys = [k for k in sweep.space.keys if table[k].nunique() > 1]
    return f"#{int(row['point'])} " + " ".join(short_knob(k, row[k]) for k in keys)


def _chosen(sweep: Sweep, points: list[int] | None, limit: int) -> pd.DataFrame:
    table = sweep.table
    if points:
        return pd.DataFrame([sweep.row(p) for p in points])
    x, y, sx, sy = pareto_axes(sweep.space.objectives, None, None)
    front = pareto_table(table, (Objective(x, sx), Objective(y, sy)))
    if len(front) > limit:
        front = front.iloc[np.unique(np.linspace(0, len(front) - 1, limit).round().astype(int))]
    ref = table[table["reference"].astype(bool)]
    rows = pd.concat([front, ref]).drop_duplicates("point")
    if rows.empty:
        raise UsageError("no feasible point to plot (give --points)")
    return rows


def sweep_figure(out: str | os.PathLike[str], kind: str, *, x: str | None = None,
                 y: str | None = None, points: list[int] | None = None) -> Figure:
    """The figure of ``kind`` for the sweep folder ``out`` (see :data:`PLOT_KINDS`).

    Parameters
    ----------
    out : path
        Sweep folder.
    kind : str
        One of :data:`PLOT_KINDS`.
    x, y : str, optional
        Pareto plot metrics (default: the space's first two objectives, else latency and DSPs).
    points : list of int, optional
        Point ids for breakdown, roofline (first id) and utilization (default: up to 4 points
        spread along the Pareto front, plus the reference design).
    """
    if kind not in PLOT_KINDS:
        raise UsageError(f"--kind {kind!r}: expected one of {', '.join(PLOT_KINDS)}")
    sweep = open_sweep(out)
    table = sweep.table
    if table.empty:
        raise UsageError(f"{out}: the sweep has no evaluated points")
    if kind == "pareto":
        x, y, sx, sy = pareto_axes(sweep.space.objectives, x, y)
        for m in (x, y):
            if m not in table.columns:
                raise UsageError(f"--x/--y {m!r}: not a column of the results")
        return pareto_figure(table, x, y, (sx, sy), title=_title(sweep, "Pareto front", table),
                             reference_label=sweep.space.reference_label)
    if kind == "accuracy-bits":
        return accuracy_bits_figure(table, title=_title(sweep, "Accuracy vs bit width", table))
    rows = _chosen(sweep, points, 4)
    labels = [point_label(sweep, r) for _, r in rows.iterrows()]
    if kind == "utilization":
        return utilization_figure(rows, labels,
                                  title=_title(sweep, "Resource utilisation", rows))
    reports = [sweep.report(r) for _, r in rows.iterrows()]
    if kind == "breakdown":
        return breakdown_figure([r for _, r in reports], labels,
                                title=_title(sweep, "Per-layer latency", rows))
    hw, report = reports[0]
    return roofline_figure(report, hw, title=_title(sweep, f"Roofline of {labels[0]}",
                                                    rows.iloc[:1]))


def plot_sweep(out: str | os.PathLike[str], kind: str, path: str | os.PathLike[str], *,
               x: str | None = None, y: str | None = None,
               points: list[int] | None = None) -> Path:
    """Draw :func:`sweep_figure` and save it to ``path`` (.png, .svg or .pdf); returns it."""
    if Path(path).suffix.lower() not in (".png", ".svg", ".pdf"):
        raise UsageError(f"--out {path}: expected a .png, .svg or .pdf file name")
    return save_figure(sweep_figure(out, kind, x=x, y=y, points=points), path)
