"""``vitaccel simulate``: bit-accurate simulation with a per-layer error and overflow report."""

from __future__ import annotations

import argparse
from pathlib import Path

from vitaccel.cli._common import add_model_args, load_data, load_from_args

__all__ = ["register"]


def _run(args: argparse.Namespace) -> int:
    from vitaccel.cli._io import write_text_atomic
    from vitaccel.models import get_config
    from vitaccel.sim import compare

    cfg = get_config(args.model)
    x, y = load_data(args, cfg)
    loaded = load_from_args(args, x)
    report = compare(loaded.graph, x, y, task=args.task)
    print(report.table())
    if args.json:
        write_text_atomic(Path(args.json), report.to_json() + "\n")
        print(f"report written to {args.json}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "simulate",
        help="simulate a quantized model bit-accurately and compare it with the float model",
        description="Quantize the model with the precision and the hardware config's unit "
        "variants, simulate it bit-accurately on the data, and print per-layer SQNR, max "
        "error, cosine similarity and overflow counts, plus top-1 agreement and accuracy.",
    )
    add_model_args(p, data=True)
    p.add_argument("--json", metavar="FILE", help="also write the report as JSON")
    p.set_defaults(func=_run)
