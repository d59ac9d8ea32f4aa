"""The Edge-MoE design space on the ZCU102: where does the published configuration sit?

Runs ``examples/edge_moe_dse.yaml`` (a Latin-hypercube sample of linear tiles, attention P
1..16, clock, activation and weight widths, softmax and GELU variants around the Edge-MoE
accelerator), prints the Pareto set of latency and DSPs with the published design's own
figures, and writes the Pareto plot (the published design is the starred reference point).
The sweep is resumable: interrupt it and run the same command again.

Run: ``.venv/bin/python examples/edge_moe_dse.py [--out DIR] [--workers K]``
"""

from __future__ import annotations

import argparse
from pathlib import Path

from vitaccel.dse import run_sweep
from vitaccel.plots import plot_sweep

SPACE = Path(__file__).with_name("edge_moe_dse.yaml")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="runs/edge_moe_dse", help="output folder")
    parser.add_argument("--workers", type=int, default=None, help="worker processes")
    parser.add_argument("--dask", help="Dask scheduler address instead of local processes")
    args = parser.parse_args()

    out = Path(args.out)
    result = run_sweep(SPACE, out / "sweep", workers=args.workers, dask=args.dask)
    print(result.summary())
    table, front = result.table, result.pareto
    ref = table[table["reference"]].iloc[0]
    cols = ["point", "clock_mhz", "linear.tile_in", "linear.tile_out",
            "attention.parallel_queries", "precision.act.width", "precision.weight.width",
            "variants.softmax", "variants.gelu", "latency_ms", "dsp", "bram36", "energy_mj"]
    print(f"\nPareto set (min latency, min DSP): {len(front)} points")
    print(front[cols].to_string(index=False))
    faster = front[(front["latency_ms"] < ref["latency_ms"]) & (front["dsp"] <= ref["dsp"])]
    print(f"\npublished design (16x16, P=4, 300 MHz, ap_fixed<32,10>/<16,2>): "
          f"{ref['latency_ms']:.2f} ms, {int(ref['dsp'])} DSPs, on the front: "
          f"{bool(front['point'].eq(ref['point']).any())}; "
          f"{len(faster)} front points are faster with no more DSPs")
    path = plot_sweep(out / "sweep", "pareto", out / "edge_moe_pareto.png")
    print(f"Pareto plot: {path}")


if __name__ == "__main__":
    main()
