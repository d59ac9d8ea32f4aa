"""Reopening a finished sweep: its space, its table, and full cost reports of chosen points."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from vitaccel.dse._evaluate import SweepContext, point_report
from vitaccel.dse._space import Space, load_space, parse_space
from vitaccel.dse._store import load_results
from vitaccel.errors import UsageError
from vitaccel.hw._yaml import read_yaml

__all__ = ["Sweep", "open_sweep"]


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


@dataclass(frozen=True)
class Sweep:
    """A results folder with the space that produced it.

    Attributes
    ----------
    out : Path
    space : Space
    table : pandas.DataFrame
    accuracy_images : int
    """

    out: Path
    space: Space
    table: pd.DataFrame
    accuracy_images: int

    def row(self, point: int) -> pd.Series:
        """The table row of point id ``point``."""
        hit = self.table[self.table["point"] == point]
        if hit.empty:
            raise UsageError(f"point {point}: not in {self.out} (ids {self.table['point'].min()}"
                             f"..{self.table['point'].max()})")
        return hit.iloc[0]

    def knobs(self, row: pd.Series) -> dict[str, Any]:
        """The axis values of a row (empty for the reference point)."""
        if bool(row["reference"]):
            return {}
        return {k: _plain(row[k]) for k in self.space.keys}

    def report(self, row: pd.Series) -> tuple[Any, Any]:
        """(HwConfig, CostReport) of a row, re-evaluated exactly as the sweep did."""
        from vitaccel.dse._knobs import apply_hw

        s = self.space
        ctx = SweepContext(s.model, s.checkpoint, s.hw, s.precision, s.data, s.task,
                           self.accuracy_images, s.constraints, s.keys)
        knobs = self.knobs(row)
        _, _, report, _ = point_report(ctx, knobs)
        return apply_hw(s.hw, knobs), report


def open_sweep(out: str | os.PathLike[str]) -> Sweep:
    """Open a sweep folder written by :func:`vitaccel.dse.run_sweep`.

    The space is read from the original file when it still has the recorded hash, else from
    the copy in the folder (relative paths resolve against the original file's folder).
    """
    d = Path(out)
    manifest_path = d / "manifest.json"
    if not manifest_path.is_file():
        raise UsageError(f"{d}: not a sweep folder (no manifest.json)")
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    original = Path(manifest.get("space_file", ""))
    space = None
    if original.is_file():
        candidate = load_space(original)
        if candidate.sha256 == manifest.get("space_sha256"):
            space = candidate
    if space is None:
        copy = d / "space.yaml"
        text = copy.read_text(encoding="utf-8")
        space = parse_space(read_yaml(copy, text), str(copy), text, original.parent)
    return Sweep(d, space, load_results(d), int(manifest.get("accuracy_images", 0)))
