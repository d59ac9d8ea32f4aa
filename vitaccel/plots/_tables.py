"""Plots drawn straight from the results table: utilisation and accuracy against bit width."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from vitaccel.errors import UsageError
from vitaccel.plots._common import new_figure, wrap_label

__all__ = ["UTIL_COLUMNS", "accuracy_bits_figure", "utilization_figure", "width_axes"]

UTIL_COLUMNS = (("dsp_util", "DSP"), ("bram_util", "BRAM"), ("lut_util", "LUT"),
                ("ff_util", "FF"))


def utilization_figure(rows: pd.DataFrame, labels: list[str], *, title: str) -> Figure:
    """Grouped bars of DSP/BRAM/LUT/FF use (percent of the board) for a few points.

    Artists: ``ax.containers[i]`` holds the bars of resource ``UTIL_COLUMNS[i]``, one per row,
    heights in percent; the 100 % board line has gid ``"board"``.
    """
    fig = new_figure(max(6.0, 1.2 * len(rows) + 3.0), 4.6)
    ax = fig.add_subplot()
    xs = np.arange(len(rows))
    width = 0.8 / len(UTIL_COLUMNS)
    for i, (col, name) in enumerate(UTIL_COLUMNS):
        pct = 100.0 * rows[col].astype(float).to_numpy()
        ax.bar(xs + (i - 1.5) * width, pct, width, label=name, color=f"C{i}")
    ax.axhline(100.0, color="red", ls="--", lw=1.2, label="board capacity", gid="board")
    ax.set_xticks(xs, [wrap_label(label) for label in labels], fontsize=7)
    top = 100.0 * float(rows[[c for c, _ in UTIL_COLUMNS]].to_numpy(float).max(initial=0.0))
    ax.set_ylim(0.0, max(125.0, 1.25 * top))
    ax.set_ylabel("utilisation (% of the board)")
    ax.set_xlabel("design point")
    ax.set_title(title, fontsize=10)
    ax.grid(True, axis="y", alpha=0.3)
    ax.legend(fontsize=7, ncols=5, loc="upper left")
    return fig


def width_axes(table: pd.DataFrame) -> list[str]:
    """The ``precision.<role>.width`` columns of a table."""
    return [c for c in table.columns if c.startswith("precision.") and c.endswith(".width")]


def accuracy_bits_figure(table: pd.DataFrame, *, title: str) -> Figure:
    """Accuracy and output SQNR against the bit width of each swept role.

    One panel per ``precision.<role>.width`` axis. Every distinct quantized graph (numerics
    key) is one dot at (width, accuracy); the line joins the best accuracy per width; the
    squares on the right axis are the output SQNR (dB) of the same graphs.

    Artists: per panel, ``ax.collections[0]`` = accuracy dots (gid ``"accuracy:<role>"``),
    the twin axis' ``collections[0]`` = SQNR squares (gid ``"sqnr:<role>"``).

    Raises
    ------
    UsageError
        Without accuracy columns (sweep without ``--accuracy``) or without a width axis.
    """
    if "accuracy" not in table.columns:
        raise UsageError("accuracy-bits: the sweep has no accuracy (run it with --accuracy N)")
    roles = width_axes(table)
    if not roles:
        raise UsageError("accuracy-bits: the sweep has no precision.<role>.width axis")
    fig = new_figure(4.2 * len(roles) + 1.0, 4.4)
    graphs = table[~table["reference"].astype(bool)].drop_duplicates("numerics")
    for i, col in enumerate(roles):
        role = col[len("precision."): -len(".width")]
        ax = fig.add_subplot(1, len(roles), i + 1)
        w = graphs[col].astype(float).to_numpy()
        acc = 100.0 * graphs["accuracy"].astype(float).to_numpy()
        ax.scatter(w, acc, s=18, color="tab:blue", alpha=0.7, gid=f"accuracy:{role}",
                   label="accuracy (one dot per quantized graph)")
        best = graphs.assign(_a=acc).groupby(col)["_a"].max()
        ax.plot(best.index.astype(float), best.to_numpy(), color="tab:blue", lw=1.2,
                label="best accuracy per width")
        ax.set_xlabel(f"{role} width (bits)")
        ax.set_ylabel("accuracy (%)")
        twin = ax.twinx()
        sqnr = graphs["sqnr_db"].astype(float).to_numpy()
        twin.scatter(w, sqnr, s=14, marker="s", color="tab:orange", alpha=0.7,
                     gid=f"sqnr:{role}", label="output SQNR")
        twin.set_ylabel("output SQNR (dB)")
        ax.set_xticks(sorted(set(w)))
        ax.grid(True, alpha=0.3)
        handles = ax.get_legend_handles_labels()
        extra = twin.get_legend_handles_labels()
        ax.legend(handles[0] + extra[0], handles[1] + extra[1], fontsize=6.5, loc="lower right")
    fig.suptitle(title, fontsize=10)
    return fig
