"""``vitaccel simulate``: bit-accurate simulation with a per-layer error and overflow report."""

from __future__ import annotations

import argparse
from pathlib import Path

from vitaccel.cli._common import DEFAULT_HW, add_model_args, load_data, load_from_args

__all__ = ["demo_step", "register"]


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


def demo_step(args: argparse.Namespace) -> None:
    """Demo: quantize the digits model, simulate the test set under each precision preset."""
    from vitaccel.data import load_digits_split
    from vitaccel.hw import load_hw_config
    from vitaccel.ir import PRECISION_PRESETS
    from vitaccel.ir._build import Numerics, build_graph
    from vitaccel.models._train import pretrained_digits
    from vitaccel.sim import compare

    model = pretrained_digits("dense")
    x_train, _, x, y = load_digits_split()
    hw = load_hw_config(DEFAULT_HW)
    numerics = Numerics.from_hw(hw)
    reports = {}
    for name in PRECISION_PRESETS:
        graph = build_graph(model, name, numerics=numerics, calibration=x_train[:256])
        reports[name] = compare(graph, x, y)
    print(reports[hw.precision].table())
    print(f"\n  {'precision':<10} {'float acc':>9} {'sim acc':>8} {'top-1 agree':>11} "
          f"{'overflows':>9}")
    for name, rep in reports.items():
        ovf = sum(e.overflow for e in rep.layers)
        print(f"  {name:<10} {100 * rep.accuracy_float:>8.2f}% {100 * rep.accuracy_sim:>7.2f}% "
              f"{100 * rep.top1_agreement:>10.2f}% {ovf:>9}")
