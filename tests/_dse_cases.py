"""Small design spaces shared by the DSE and plot tests (fast: a 1-block random digits ViT)."""

from __future__ import annotations

from pathlib import Path

TINY_MODEL = """\
base: digits-dense
name: tiny-digits
depth: 1
"""

COST_SPACE = """\
name: tiny
model: tiny.yaml
hw: kv260_default
precision: w16a16
axes:
  linear.tile_in: [4, 8, 16]
  linear.tile_out: {min: 4, max: 16, step: 6}
  attention.parallel_queries: [1, 4]
  precision.act.width: [8, 16]
  clock_mhz: [200, 300]
constraints: [fits, "dsp_util <= 0.08 or linear.tile_in < 8",
              "linear.tile_in * linear.tile_out <= 96"]
objectives: {minimize: [latency_ms, dsp]}
"""

ACCURACY_SPACE = """\
name: digits-acc
model: digits-dense
hw: kv260_default
precision: w16a16
axes:
  linear.tile_in: [4, 16]
  attention.parallel_queries: [1, 2]
  precision.act.width: [6, 12]
objectives: {minimize: [latency_ms], maximize: [accuracy]}
"""

EXIT_MODEL = """\
base: digits-early-exit
name: tiny-exit
"""

EXIT_SPACE = """\
name: exits
model: tinyexit.yaml
hw: kv260_default
precision: w16a16
axes:
  exits.threshold: [0.1, 0.5, 0.99]
  linear.tile_in: [4, 8]
"""


def write_space(folder: Path, text: str = COST_SPACE, name: str = "space.yaml") -> Path:
    """Write the tiny model and a space file into ``folder``; returns the space path."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "tiny.yaml").write_text(TINY_MODEL, encoding="utf-8")
    (folder / "tinyexit.yaml").write_text(EXIT_MODEL, encoding="utf-8")
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path
