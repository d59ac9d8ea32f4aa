"""A sweep's output folder: manifest, atomic result chunks, the merged table.

Layout of ``DIR``::

    manifest.json     space hash, space file, --accuracy N, table format version
    space.yaml        copy of the space file the results belong to
    chunks/*.parquet  evaluated rows, one file per finished task (written to a temporary
                      name, then renamed: a chunk is there whole or not at all)
    results.parquet   the merged table, one row per evaluated point, sorted by point id
    results.csv       the same table as CSV
    summary.json      counts of the last run (points, pruned, simulations, time)
    pareto.csv        the Pareto set of the space's objectives (when it names some)

Re-running a sweep reads the point ids of the existing chunks and evaluates only the others;
a space file whose hash differs from the manifest's is refused.
"""

from __future__ import annotations

import json
import os
import tempfile
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from vitaccel.dse._knobs import HW_COLUMNS
from vitaccel.dse._metrics import METRIC_UNITS
from vitaccel.dse._space import Space
from vitaccel.errors import UsageError

__all__ = ["ResultStore", "load_results", "order_columns"]

TABLE_VERSION = 1
_LEAD = ("point", "reference", "feasible", "numerics", "precision")


def _atomic(path: Path, write: Callable[[Path], None]) -> None:
    """Write ``path`` through a temporary file in the same folder, then rename it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(Path(tmp))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_text(path: Path, text: str) -> None:
    """Atomically write ``text`` to ``path``."""
    _atomic(path, lambda p: p.write_text(text, encoding="utf-8"))


def order_columns(df: pd.DataFrame, axis_keys: tuple[str, ...] = ()) -> pd.DataFrame:
    """Columns in a fixed order: ids, hardware knobs, other axes, metrics, the rest."""
    lead = [c for c in _LEAD if c in df.columns]
    knobs = [c for c in HW_COLUMNS if c in df.columns]
    axes = [c for c in axis_keys if c in df.columns and c not in knobs]
    metrics = [c for c in METRIC_UNITS if c in df.columns]
    used = set(lead + knobs + axes + metrics)
    rest = sorted(c for c in df.columns if c not in used)
    return df[lead + knobs + axes + rest + metrics]


class ResultStore:
    """The output folder of one sweep (see the module docstring).

    Parameters
    ----------
    out : Path
        The folder (created if missing).
    space : Space
        The space being swept (its hash is checked against the folder's manifest).
    accuracy_images : int
        ``--accuracy N`` (0 for cost only); part of what the results depend on.
    resume : bool
        Require an existing sweep in ``out`` (``--resume``).
    """

    def __init__(self, out: Path, space: Space, accuracy_images: int, *,
                 resume: bool = False) -> None:
        self.out = Path(out)
        self.space = space
        self.chunks = self.out / "chunks"
        manifest = {
            "version": TABLE_VERSION,
            "space_sha256": space.sha256,
            "space_file": str(Path(space.source).resolve()),
            "accuracy_images": int(accuracy_images),
        }
        path = self.out / "manifest.json"
        if path.is_file():
            try:
                old = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                raise UsageError(f"{path}: unreadable manifest ({exc}); use a new --out") from None
            if old.get("space_sha256") != space.sha256:
                raise UsageError(
                    f"--out {self.out}: holds results of a different space file (the space "
                    f"changed since they were written: sha256 {str(old.get('space_sha256'))[:12]}"
                    f" != {space.sha256[:12]}); use a new --out or delete the folder")
            if old.get("accuracy_images") != manifest["accuracy_images"]:
                raise UsageError(
                    f"--out {self.out}: holds results of --accuracy "
                    f"{old.get('accuracy_images')}, not {accuracy_images}; use a new --out")
        elif resume:
            raise UsageError(f"--resume: {self.out} holds no sweep to resume (no manifest.json)")
        elif self.out.exists() and any(self.out.iterdir()):
            raise UsageError(f"--out {self.out}: folder exists and is not a sweep folder")
        self.chunks.mkdir(parents=True, exist_ok=True)
        for stale in self.chunks.glob(".*.tmp"):
            stale.unlink(missing_ok=True)
        write_text(path, json.dumps(manifest, indent=2) + "\n")
        copy = self.out / "space.yaml"
        if not copy.is_file():
            write_text(copy, Path(space.source).read_text(encoding="utf-8"))

    def _chunk_files(self) -> list[Path]:
        return sorted(self.chunks.glob("*.parquet"))

    def done_ids(self) -> set[int]:
        """Point ids already written."""
        done: set[int] = set()
        for f in self._chunk_files():
            done.update(int(i) for i in pd.read_parquet(f, columns=["point"])["point"])
        return done

    def write_chunk(self, rows: list[dict[str, Any]]) -> None:
        """Atomically add evaluated rows (one Parquet file)."""
        if not rows:
            return
        df = pd.DataFrame(rows)
        name = f"part-{min(r['point'] for r in rows):08d}-{uuid.uuid4().hex[:8]}.parquet"
        _atomic(self.chunks / name, lambda p: df.to_parquet(p, engine="pyarrow", index=False))

    def table(self) -> pd.DataFrame:
        """Every written row, one per point id, sorted by id, columns in fixed order."""
        files = self._chunk_files()
        if not files:
            return pd.DataFrame(columns=list(_LEAD))
        df = pd.concat([pd.read_parquet(f) for f in files], ignore_index=True)
        df = df.drop_duplicates("point").sort_values("point", kind="stable")
        return order_columns(df.reset_index(drop=True), self.space.keys)

    def write_table(self, df: pd.DataFrame) -> None:
        """Write ``results.parquet`` and ``results.csv`` atomically."""
        _atomic(self.out / "results.parquet",
                lambda p: df.to_parquet(p, engine="pyarrow", index=False))
        _atomic(self.out / "results.csv", lambda p: df.to_csv(p, index=False))


def load_results(out: str | os.PathLike[str]) -> pd.DataFrame:
    """The results table of a sweep folder (``results.parquet``, else the CSV).

    Raises
    ------
    UsageError
        When the folder holds no results.
    """
    d = Path(out)
    for name, reader in (("results.parquet", pd.read_parquet), ("results.csv", pd.read_csv)):
        if (d / name).is_file():
            return reader(d / name)
    if d.is_file() and d.suffix in (".parquet", ".csv"):
        return pd.read_parquet(d) if d.suffix == ".parquet" else pd.read_csv(d)
    raise UsageError(f"{d}: no results.parquet or results.csv (run 'vitaccel sweep' first)")
