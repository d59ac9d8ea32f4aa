"""The ``vitaccel`` command line: one subcommand per module in this package."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from vitaccel.cli import _boards, _codegen, _demo, _estimate, _simulate, _sweep, _train
from vitaccel.errors import UsageError, VitaccelError

__all__ = ["main", "build_parser"]

# Each module exposes ``register(subparsers)``; the parser it adds sets ``func(args) -> int``.
_COMMANDS = (_demo, _boards, _simulate, _estimate, _codegen, _train, _sweep)


def build_parser() -> argparse.ArgumentParser:
    """Return the top-level parser with every subcommand registered."""
    parser = argparse.ArgumentParser(
        prog="vitaccel",
        description="Bit-accurate simulation, cost estimation, Vitis HLS generation and "
        "design-space exploration of quantized Vision Transformers on FPGAs.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in _COMMANDS:
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the process exit code (2 for usage errors)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except UsageError as exc:
        print(f"vitaccel {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except VitaccelError as exc:
        print(f"vitaccel {args.command}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"vitaccel {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
