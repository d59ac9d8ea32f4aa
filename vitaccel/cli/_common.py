"""Arguments shared by the commands that take a model, a board and a precision."""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from typing import Any

import numpy as np

from vitaccel.errors import UsageError

__all__ = ["DEFAULT_HW", "DEFAULT_MODEL", "Loaded", "add_model_args", "load_from_args",
           "load_data"]

DEFAULT_MODEL = "digits-dense"
DEFAULT_HW = "kv260_default"


def add_model_args(p: argparse.ArgumentParser, *, data: bool = False) -> None:
    """Add --model/--checkpoint/--hw/--precision (and --data/--n/--task with ``data``)."""
    p.add_argument("--model", default=DEFAULT_MODEL,
                   help=f"preset name or model YAML file (default: {DEFAULT_MODEL}; the digits-* "
                   "presets use the trained digits models, other presets random weights "
                   "unless --checkpoint is given)")
    p.add_argument("--checkpoint", metavar="FILE",
                   help="timm/DeiT-format weights (.pth, .pt, .safetensors) for --model")
    p.add_argument("--hw", default=DEFAULT_HW,
                   help=f"hardware config name or YAML file (default: {DEFAULT_HW}); its unit "
                   "variants and attention order are part of the numerics")
    p.add_argument("--precision",
                   help="precision preset (edge-moe, w16a16, w8a8) or YAML file "
                   "(default: the hardware config's precision)")
    if data:
        p.add_argument("--data", default="digits",
                       help="'digits' (scikit-learn's bundled 8x8 digits, test split), "
                       "a folder of images, or an .npz with arrays x [and y]")
        p.add_argument("--n", type=int, default=None, metavar="N",
                       help="simulate only the first N images")
        p.add_argument("--task", type=int, default=0, help="task index for MoE gates")


@dataclass(frozen=True)
class Loaded:
    """What the common arguments resolve to."""

    model: Any
    hw: Any
    precision: Any
    graph: Any


def _load_model(args: argparse.Namespace) -> Any:
    from vitaccel.models import build_model, get_config, load_checkpoint
    from vitaccel.models._train import DIGITS_VARIANTS, pretrained_digits

    cfg = get_config(args.model)
    if args.checkpoint:
        return load_checkpoint(args.checkpoint, cfg)
    variants = {preset: variant for variant, preset in DIGITS_VARIANTS.items()}
    if args.model in variants:
        return pretrained_digits(variants[args.model])
    print(f"note: model {cfg.name!r} has random weights (give --checkpoint for trained ones)",
          file=sys.stderr)
    import torch

    torch.manual_seed(0)
    return build_model(cfg).eval()


def load_data(args: argparse.Namespace, cfg: Any) -> tuple[np.ndarray, np.ndarray | None]:
    """Images (N, C, H, W) in [0, 1) and labels (or None) named by --data and --n."""
    if args.data == "digits":
        from vitaccel.data import load_digits_split

        if tuple(cfg.img_size) != (8, 8) or cfg.in_chans != 1:
            raise UsageError(
                f"--data digits: 8x8 single-channel images do not fit model {cfg.name!r} "
                f"({cfg.in_chans}x{cfg.img_size[0]}x{cfg.img_size[1]})"
            )
        _, _, x, y = load_digits_split()
    else:
        from vitaccel.data import load_images

        x, y = load_images(args.data, cfg)
    if args.n is not None:
        if args.n < 1:
            raise UsageError(f"--n: expected a positive number of images, got {args.n}")
        x = x[: args.n]
        y = None if y is None else y[: args.n]
    return x, y


def calibration_images(cfg: Any, data: np.ndarray | None) -> np.ndarray:
    """Images for choosing 'auto' integer bits: the digits training split, else the data, else
    (said on stderr) eight seeded random images."""
    if tuple(cfg.img_size) == (8, 8) and cfg.in_chans == 1:
        from vitaccel.data import load_digits_split

        return load_digits_split()[0][:256]
    if data is None:
        print(f"note: 'auto' formats of {cfg.name!r} are calibrated on 8 random images "
              "(no data given)", file=sys.stderr)
        rng = np.random.default_rng(0)
        return rng.integers(0, 256, size=(8, cfg.in_chans, *cfg.img_size)) / 256.0
    return data[:64]


def load_from_args(args: argparse.Namespace, data: np.ndarray | None = None) -> Loaded:
    """Model, hardware config, precision and the quantized graph the arguments name."""
    from vitaccel.hw import load_hw_config
    from vitaccel.ir import Auto, get_precision
    from vitaccel.ir._build import Numerics, build_graph

    hw = load_hw_config(args.hw)
    precision = get_precision(args.precision or hw.precision)
    model = _load_model(args)
    specs = [*precision.roles.values(), *(v for o in precision.layers.values()
                                          for v in o.values())]
    calibration = (calibration_images(model.cfg, data)
                   if any(isinstance(v, Auto) for v in specs) else None)
    graph = build_graph(model, precision, numerics=Numerics.from_hw(hw), calibration=calibration)
    return Loaded(model, hw, precision, graph)
