"""Design-space exploration of the digits ViT: cost, bit-exact accuracy, Pareto set, plots.

Sweeps the linear-engine tiles, the attention parallelism, the activation and weight widths
and the softmax variant of the trained digits model on the KV260, simulating every distinct
quantized graph once on labelled digits images, then prints the Pareto set (latency, LUTs,
accuracy) and writes all five plots.

Run: ``.venv/bin/python examples/dse_digits.py [--out DIR] [--images N] [--workers K]
[--points N]``
"""

from __future__ import annotations

import argparse
from pathlib import Path

from vitaccel.dse import pareto_table, parse_objectives, run_sweep
from vitaccel.plots import PLOT_KINDS, plot_sweep

SPACE = """\
name: digits-example
model: digits-dense
hw: kv260_default
precision: w16a16
sampling: {{method: lhs, n: {points}, seed: 0}}
axes:
  linear.tile_in: [4, 8, 16]
  linear.tile_out: [4, 8, 16]
  attention.parallel_queries: [1, 2, 4]
  precision.act.width: [4, 5, 6, 8]
  precision.weight.width: [4, 6, 8]
  variants.softmax: [online, base2]
constraints: [fits, "dsp_util <= 0.5"]
objectives: {{minimize: [latency_ms, lut], maximize: [accuracy]}}
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="runs/dse_digits", help="output folder")
    parser.add_argument("--images", type=int, default=64, help="labelled images simulated")
    parser.add_argument("--workers", type=int, default=None, help="worker processes")
    parser.add_argument("--points", type=int, default=60, help="Latin-hypercube samples")
    args = parser.parse_args()

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    space = out / "space.yaml"
    space.write_text(SPACE.format(points=args.points), encoding="utf-8")
    result = run_sweep(space, out / "sweep", accuracy=args.images, workers=args.workers,
                       progress=False)
    print(result.summary())
    front = pareto_table(result.table, parse_objectives("latency_ms,lut", "accuracy"))
    cols = ["point", "linear.tile_in", "linear.tile_out", "attention.parallel_queries",
            "precision.act.width", "precision.weight.width", "variants.softmax",
            "latency_ms", "lut", "accuracy"]
    print(f"Pareto set: {len(front)} points")
    print(front[cols].to_string(index=False))
    for kind in PLOT_KINDS:
        extra = {"x": "lut", "y": "accuracy"} if kind == "pareto" else {}
        path = plot_sweep(out / "sweep", kind, out / f"{kind}.png", **extra)
        print(f"{kind} plot: {path}")


if __name__ == "__main__":
    main()
