"""``vitaccel estimate``: cycles, latency, resources, power and energy of a model on a board."""

from __future__ import annotations

import argparse
from pathlib import Path

from vitaccel.cli._common import add_model_args, load_from_args

__all__ = ["demo_step", "register"]

_DEMO_RUNS = (("digits-dense", "kv260_default"), ("edge-moe", "zcu102_edge_moe"))


def _run(args: argparse.Namespace) -> int:
    from vitaccel.cli._io import write_text_atomic
    from vitaccel.cost import estimate

    loaded = load_from_args(args)
    report = estimate(loaded.graph, loaded.hw)
    print(report.table(layers=not args.summary))
    if args.json:
        write_text_atomic(Path(args.json), report.to_json() + "\n")
        print(f"report written to {args.json}")
    return 0


def demo_step(args: argparse.Namespace) -> None:
    """``vitaccel demo`` step: the digits model on the default board, Edge-MoE on the ZCU102."""
    from vitaccel.cost import estimate

    for model, hw in _DEMO_RUNS:
        ns = argparse.Namespace(model=model, checkpoint=None, hw=hw, precision=None)
        loaded = load_from_args(ns)
        report = estimate(loaded.graph, loaded.hw)
        print("  " + report.table(layers=False).replace("\n", "\n  "))
        attn = next(c for c in report.nodes if c.op == "attention")
        qkv = next(c for c in report.nodes if c.name.endswith("attn.qkv"))
        print(f"  per block: qkv {qkv.cycles:,} cycles, attention "
              + ", ".join(f"{k} {v:,}" for k, v in attn.phases) + " cycles")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "estimate",
        help="estimate cycles, latency, resources and energy of a model on a board",
        description="Quantize the model for the hardware config and estimate, per layer and "
        "in total, its cycles (compute or memory bound), latency, throughput, DSP/BRAM/URAM/"
        "LUT/FF use against the board (with a warning when it does not fit), power and "
        "energy per image. The figures come from an analytical model, not from synthesis.",
    )
    add_model_args(p)
    p.add_argument("--json", metavar="FILE", help="also write the report as JSON")
    p.add_argument("--summary", action="store_true",
                   help="print units and totals only, without the per-layer table")
    p.set_defaults(func=_run)
