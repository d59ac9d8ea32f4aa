"""Exact Pareto (non-dominated) sets for minimise/maximise objectives."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from vitaccel.errors import UsageError

__all__ = ["Objective", "pareto_mask", "parse_objectives"]

SENSES = ("min", "max")


@dataclass(frozen=True)
class Objective:
    """One objective of a Pareto set.

    Attributes
    ----------
    metric : str
        Column of the results table (e.g. ``"latency_ms"``).
    sense : {"min", "max"}
        Whether smaller or larger is better.
    """

    metric: str
    sense: str

    def __post_init__(self) -> None:
        if self.sense not in SENSES:
            raise UsageError(f"objective {self.metric}: sense must be 'min' or 'max', "
                             f"got {self.sense!r}")

    def __str__(self) -> str:
        return f"{self.sense} {self.metric}"


def parse_objectives(minimize: Sequence[str] | str | None,
                     maximize: Sequence[str] | str | None) -> tuple[Objective, ...]:
    """Objectives from comma-separated strings or lists of metric names.

    Raises
    ------
    UsageError
        No objective at all, an empty name, or a metric named twice.
    """
    out: list[Objective] = []
    for sense, names in (("min", minimize), ("max", maximize)):
        if names is None:
            continue
        items = names.split(",") if isinstance(names, str) else list(names)
        for name in items:
            name = str(name).strip()
            if not name:
                raise UsageError(f"--{sense}imize: empty metric name in {names!r}")
            if any(o.metric == name for o in out):
                raise UsageError(f"objective {name!r} given twice")
            out.append(Objective(name, sense))
    if not out:
        raise UsageError("objectives: give at least one metric to minimize or maximize")
    return tuple(out)


def pareto_mask(values: np.ndarray, senses: Sequence[str]) -> np.ndarray:
    """Boolean mask of the non-dominated rows of ``values``.

    Row ``a`` dominates row ``b`` when ``a`` is at least as good in every objective and
    strictly better in one. A row is on the front when no row dominates it, so identical rows
    are kept together (neither dominates the other). Rows with a NaN objective are never on
    the front and never dominate.

    Parameters
    ----------
    values : np.ndarray
        (n, k) objective values, one column per objective.
    senses : sequence of {"min", "max"}
        Direction of each column.

    Returns
    -------
    np.ndarray
        (n,) bool.
    """
    v = np.asarray(values, dtype=np.float64)
    if v.ndim != 2 or v.shape[1] != len(senses):
        raise UsageError(f"pareto_mask: expected an (n, {len(senses)}) array, got {v.shape}")
    for s in senses:
        if s not in SENSES:
            raise UsageError(f"pareto_mask: sense must be 'min' or 'max', got {s!r}")
    sign = np.array([1.0 if s == "min" else -1.0 for s in senses])
    cost = v * sign
    mask = np.zeros(len(v), dtype=bool)
    valid = np.flatnonzero(~np.isnan(cost).any(axis=1))
    if valid.size == 0:
        return mask
    # In lexicographic order a row can only be dominated by rows before it, and a dominated
    # row's dominator is itself dominated by (or is) a front member: compare with the front.
    order = valid[np.lexsort(cost[valid].T[::-1])]
    front = np.empty((len(order), cost.shape[1]))
    size = 0
    for i in order:
        row = cost[i]
        f = front[:size]
        if size and np.any(np.all(f <= row, axis=1) & np.any(f < row, axis=1)):
            continue
        front[size] = row
        size += 1
        mask[i] = True
    return mask
