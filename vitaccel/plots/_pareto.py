"""Pareto plot: every point on two metrics, the front, the board's limit, the reference."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from vitaccel.dse import pareto_mask
from vitaccel.hw import load_board
from vitaccel.plots._common import axis_label, new_figure, short_knob

__all__ = ["pareto_axes", "pareto_figure"]

_BOARD_FIELDS = {"dsp": "dsp", "bram36": "bram36", "uram": "uram", "lut": "lut", "ff": "ff"}
_MAX_LABELS = 12


def _label(row: pd.Series, keys: list[str]) -> str:
    return " ".join(short_knob(k, row[k]) for k in keys)


def _limits(table: pd.DataFrame, metric: str) -> list[tuple[float, str]]:
    """The board capacity lines for a resource metric (one per board in the table)."""
    if metric.endswith("_util"):
        return [(1.0, "board capacity (100%)")]
    field = _BOARD_FIELDS.get(metric)
    if field is None or "board" not in table.columns:
        return []
    return [(float(getattr(load_board(b), field)), f"{b} {metric.upper()} available")
            for b in sorted(table["board"].unique())]


def pareto_figure(table: pd.DataFrame, x: str, y: str, senses: tuple[str, str], *,
                  title: str, label_keys: list[str] | None = None,
                  reference_label: str = "reference design") -> Figure:
    """Scatter of all points on metrics ``x`` and ``y`` with the Pareto front of the two.

    Parameters
    ----------
    table : pandas.DataFrame
        Sweep results (columns ``x``, ``y``, ``feasible``, ``reference`` and the knobs).
    x, y : str
        Metric columns.
    senses : (str, str)
        ``"min"`` or ``"max"`` for ``x`` and ``y`` (the front is computed on these two).
    title : str
        Figure title (name the model and board).
    label_keys : list of str, optional
        Knob columns used to label the front's points (default: the knobs that vary).
    reference_label : str
        Legend entry of the reference point (the unmodified base design), if the table has one.

    Artists (for inspection): ``ax.collections`` holds, in order, the feasible points, the
    infeasible points (if any), the front's points and the reference (if any), each with the
    gid ``"all"``, ``"infeasible"``, ``"front"``, ``"reference"``.
    """
    fig = new_figure()
    ax = fig.add_subplot()
    feasible = table[table["feasible"].astype(bool)]
    infeasible = table[~table["feasible"].astype(bool)]
    ax.scatter(feasible[x], feasible[y], s=12, alpha=0.45, color="tab:blue",
               label=f"design points ({len(feasible)})", gid="all", zorder=2)
    if len(infeasible):
        ax.scatter(infeasible[x], infeasible[y], s=10, marker="x", color="0.6",
                   label=f"violate constraints ({len(infeasible)})", gid="infeasible", zorder=1)
    values = feasible[[x, y]].astype(float).to_numpy()
    front = feasible[pareto_mask(values, list(senses))] if len(feasible) else feasible
    front = front.sort_values([x, y, "point"], kind="stable")
    ax.plot(front[x], front[y], drawstyle="steps-post", color="tab:red", lw=1.5, zorder=3)
    ax.scatter(front[x], front[y], s=36, color="tab:red", edgecolor="black", lw=0.5,
               label=f"Pareto front ({len(front)})", gid="front", zorder=4)
    if label_keys is None:
        label_keys = [c for c in table.columns if ("." in c or c in ("board", "clock_mhz"))
                      and table[c].nunique() > 1]
    # One label per distinct position (identical points are all on the front).
    spots = front.groupby([x, y], sort=False)
    step = max(1, int(np.ceil(spots.ngroups / _MAX_LABELS)))
    for i, (_, group) in enumerate(spots):
        if i % step == 0 and label_keys:
            row = group.iloc[0]
            more = f" (+{len(group) - 1} tied)" if len(group) > 1 else ""
            ax.annotate(_label(row, label_keys) + more, (row[x], row[y]), xytext=(4, 4),
                        textcoords="offset points", fontsize=6.5, color="darkred")
    ref = table[table["reference"].astype(bool)]
    if len(ref):
        ax.scatter(ref[x], ref[y], s=160, marker="*", color="gold", edgecolor="black",
                   lw=0.8, label=reference_label, gid="reference", zorder=5)
        ax.annotate(reference_label, (ref[x].iloc[0], ref[y].iloc[0]), xytext=(8, -12),
                    textcoords="offset points", fontsize=7, fontweight="bold",
                    arrowprops={"arrowstyle": "-", "lw": 0.6})
    styles = ("--", ":", "-.")
    for i, (value, text) in enumerate(_limits(table, y)):
        ax.axhline(value, ls=styles[i % 3], color="black", lw=1, label=text)
    for i, (value, text) in enumerate(_limits(table, x)):
        ax.axvline(value, ls=styles[i % 3], color="dimgray", lw=1, label=text)
    ax.set_xlabel(axis_label(x) + (" - lower is better" if senses[0] == "min" else
                                   " - higher is better"))
    ax.set_ylabel(axis_label(y) + (" - lower is better" if senses[1] == "min" else
                                   " - higher is better"))
    ax.set_title(title, fontsize=10)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7, loc="best")
    return fig


def pareto_axes(objectives: Any, x: str | None, y: str | None) -> tuple[str, str, str, str]:
    """The two metrics of a Pareto plot and their senses (from the space's objectives)."""
    senses = {o.metric: o.sense for o in objectives}
    names = [o.metric for o in objectives]
    x = x or (names[0] if names else "latency_ms")
    y = y or next((n for n in names if n != x), "dsp" if x != "dsp" else "latency_ms")
    default = {"accuracy": "max", "throughput_ips": "max", "accuracy_float": "max",
               "top1_agreement": "max", "sqnr_db": "max", "min_sqnr_db": "max"}
    return x, y, senses.get(x, default.get(x, "min")), senses.get(y, default.get(y, "min"))
