"""``vitaccel sweep``, ``vitaccel pareto`` and ``vitaccel plot``: design-space exploration."""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path
from typing import Any

__all__ = ["demo_step", "register"]

_SHOW = ("point", "board", "clock_mhz", "linear.tile_in", "linear.tile_out",
         "attention.parallel_queries", "precision")


def _sweep(args: argparse.Namespace) -> int:
    from vitaccel.dse import run_sweep

    result = run_sweep(args.space, args.out, accuracy=args.accuracy, workers=args.workers,
                       dask=args.dask, resume=args.resume, progress=not args.quiet)
    print(result.summary())
    if result.pareto is not None:
        print(f"Pareto set ({len(result.pareto)} points) written to {result.out / 'pareto.csv'}")
    return 0


def format_table(df: Any, columns: list[str]) -> str:
    """A plain-text table of ``columns`` of a DataFrame (floats to 4 significant digits)."""
    cells = [[str(c) for c in columns]]
    for _, row in df[columns].iterrows():
        cells.append([f"{v:.4g}" if isinstance(v, float) else str(v) for v in row])
    widths = [max(len(r[i]) for r in cells) for i in range(len(columns))]
    lines = ["  ".join(c.rjust(w) for c, w in zip(r, widths, strict=True)) for r in cells]
    lines.insert(1, "-" * len(lines[0]))
    return "\n".join(lines)


def _pareto(args: argparse.Namespace) -> int:
    from vitaccel.cli._io import write_text_atomic
    from vitaccel.dse import load_results, pareto_table, parse_objectives
    from vitaccel.errors import UsageError

    table = load_results(args.dir)
    if args.minimize is None and args.maximize is None:
        raise UsageError("pareto: give --minimize and/or --maximize (comma-separated metrics)")
    objectives = parse_objectives(args.minimize, args.maximize)
    front = pareto_table(table, objectives, feasible_only=not args.all)
    axes = [c for c in table.columns if "." in c or c in ("board", "clock_mhz", "precision")]
    shown = ["point"] + [c for c in axes if table[c].nunique() > 1 or c in _SHOW]
    shown += [o.metric for o in objectives if o.metric not in shown]
    shown = list(dict.fromkeys(c for c in shown if c in front.columns))
    print(f"Pareto set: {len(front)} of {len(table)} points ("
          + ", ".join(str(o) for o in objectives) + ")")
    print(format_table(front, shown))
    out = Path(args.out) if args.out else Path(args.dir) / "pareto.csv"
    write_text_atomic(out, front.to_csv(index=False))
    print(f"written to {out}")
    return 0


def _plot(args: argparse.Namespace) -> int:
    from vitaccel.plots import plot_sweep

    points = [int(p) for p in args.points.split(",")] if args.points else None
    path = plot_sweep(args.dir, args.kind, args.out, x=args.x, y=args.y, points=points)
    print(f"{args.kind} plot written to {path}")
    return 0


def demo_step(args: argparse.Namespace) -> None:
    """``vitaccel demo`` step: a small digits sweep with accuracy and its Pareto plot."""
    from vitaccel.dse import run_sweep
    from vitaccel.plots import plot_sweep

    folder = Path(tempfile.mkdtemp(prefix="vitaccel-demo-sweep-"))
    space = folder / "digits_space.yaml"
    space.write_text(_DEMO_SPACE, encoding="utf-8")
    result = run_sweep(space, folder / "sweep", accuracy=48, workers=1, progress=False)
    print("  " + result.summary().replace("\n", "\n  "))
    front = result.pareto
    cols = ["point", "clock_mhz", "linear.tile_in", "linear.tile_out", "precision.act.width",
            "variants.softmax", "latency_ms", "lut", "accuracy"]
    print(f"  Pareto set (min latency, min LUTs, max accuracy): {len(front)} points"
          + (", the 8 fastest:" if len(front) > 8 else ":"))
    print("  " + format_table(front.head(8), cols).replace("\n", "\n  "))
    path = plot_sweep(folder / "sweep", "pareto", folder / "pareto.png", x="lut", y="accuracy")
    print(f"  Pareto plot written to {path}")


_DEMO_SPACE = """\
name: digits-demo
model: digits-dense
hw: kv260_default
precision: w16a16
axes:
  linear.tile_in: [4, 8, 16]
  linear.tile_out: [8, 16]
  clock_mhz: [200, 300]
  precision.act.width: [4, 5, 6, 8]
  variants.softmax: [online, base2]
constraints: [fits]
objectives: {minimize: [latency_ms, lut], maximize: [accuracy]}
"""


def register(sub: argparse._SubParsersAction) -> None:
    from vitaccel.plots import PLOT_KINDS

    p = sub.add_parser(
        "sweep", help="evaluate a design space (cost, optionally accuracy) into a folder",
        description="Sample the design space in SPACE.yaml, prune points that break knob-only "
        "constraints, and evaluate the rest with the cost model (and with --accuracy N, a "
        "bit-exact simulation on N labelled images per distinct quantized graph). Results go "
        "to --out in atomic chunks; re-running the same command resumes.")
    p.add_argument("space", metavar="SPACE.yaml")
    p.add_argument("--out", required=True, metavar="DIR", help="results folder")
    p.add_argument("--accuracy", type=int, default=0, metavar="N",
                   help="simulate N labelled images per distinct quantized graph (default 0)")
    p.add_argument("--workers", type=int, default=None, metavar="K",
                   help="local worker processes (default: all cores)")
    p.add_argument("--dask", metavar="ADDRESS",
                   help="evaluate on the Dask cluster at ADDRESS (e.g. tcp://host:8786)")
    p.add_argument("--resume", action="store_true",
                   help="continue the sweep in --out (error if there is none)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_sweep)

    p = sub.add_parser(
        "pareto", help="print and save the Pareto set of a sweep",
        description="Exact non-dominated set of the sweep's feasible points for the named "
        "objectives; identical points are all kept. Writes DIR/pareto.csv.")
    p.add_argument("dir", metavar="DIR")
    p.add_argument("--minimize", metavar="M1,M2", help="metrics to minimise")
    p.add_argument("--maximize", metavar="M1,M2", help="metrics to maximise")
    p.add_argument("--all", action="store_true",
                   help="include points that violate the space's constraints")
    p.add_argument("--out", metavar="FILE", help="CSV path (default DIR/pareto.csv)")
    p.set_defaults(func=_pareto)

    p = sub.add_parser(
        "plot", help="plot a sweep (pareto, breakdown, roofline, accuracy-bits, utilization)",
        description="Render a plot of a sweep folder to a PNG, SVG or PDF file (format from "
        "the extension).")
    p.add_argument("dir", metavar="DIR")
    p.add_argument("--kind", required=True, choices=PLOT_KINDS)
    p.add_argument("--out", required=True, metavar="FILE")
    p.add_argument("--x", help="pareto: metric on the x axis (default: first objective)")
    p.add_argument("--y", help="pareto: metric on the y axis (default: second objective)")
    p.add_argument("--points", metavar="ID,ID",
                   help="breakdown/roofline/utilization: point ids (default: Pareto points)")
    p.set_defaults(func=_plot)
