"""Model/hardware cases shared by the codegen tests (built, emitted and compiled once each)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import numpy as np

CSIM_IMAGES = 3


@dataclass(frozen=True)
class Case:
    """A model architecture, precision, hardware knobs and unit variants to C-simulate."""

    name: str
    model: str | dict  # preset name, or ViTConfig overrides of a tiny random model
    precision: str
    knobs: tuple[tuple[str, object], ...] = ()
    trained: bool = False
    numerics: tuple[tuple[str, object], ...] = ()  # Numerics fields beyond the hw config's
    embed_weights: bool = False


def tiny_config(**changes):
    from vitaccel.models import ExitConfig, MoEConfig, ShiftAddConfig, ViTConfig

    for key, cls in (("moe", MoEConfig), ("exits", ExitConfig), ("shiftadd", ShiftAddConfig)):
        if isinstance(changes.get(key), dict):
            changes[key] = cls(**changes[key])
    base = dict(name="tiny", img_size=(6, 6), patch_size=2, in_chans=3, embed_dim=10, depth=1,
                num_heads=2, mlp_hidden=14, num_classes=7, mean=(0.5, 0.5, 0.5),
                std=(0.25, 0.25, 0.25))
    base.update(changes)
    return ViTConfig(**base)


def build(case: Case):
    """(graph, hw, images) of a case: seeded random weights unless ``trained``."""
    import torch

    from vitaccel.data import load_digits_split
    from vitaccel.hw import load_hw_config, with_knob
    from vitaccel.ir._build import Numerics, build_graph
    from vitaccel.models import build_model, get_config

    hw = load_hw_config("kv260_default")
    for key, value in case.knobs:
        hw = with_knob(hw, key, value)
    if isinstance(case.model, str):
        cfg = get_config(case.model)
        if case.trained:
            from vitaccel.models._train import DIGITS_VARIANTS, pretrained_digits

            variant = {p: v for v, p in DIGITS_VARIANTS.items()}[case.model]
            model = pretrained_digits(variant)
        else:
            torch.manual_seed(0)
            model = build_model(cfg).eval()
    else:
        cfg = tiny_config(**case.model)
        torch.manual_seed(1)
        model = build_model(cfg).eval()
    if tuple(cfg.img_size) == (8, 8) and cfg.in_chans == 1:
        xtr, _, xte, _ = load_digits_split()
        calib, images = xtr[:128], xte[:CSIM_IMAGES]
    else:
        rng = np.random.default_rng(2)
        calib = rng.integers(0, 256, size=(16, cfg.in_chans, *cfg.img_size)) / 256.0
        images = rng.integers(0, 256, size=(CSIM_IMAGES, cfg.in_chans, *cfg.img_size)) / 256.0
    numerics = dataclasses.replace(Numerics.from_hw(hw), **dict(case.numerics))
    graph = build_graph(model, case.precision, numerics=numerics, calibration=calib)
    return graph, hw, images


def emit_case(case: Case):
    from vitaccel import emit

    graph, hw, images = build(case)
    return emit(graph, hw, images=images, embed_weights=case.embed_weights), graph, hw


class Projects:
    """Session cache: each case is emitted, written and compiled at most once."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.results: dict[str, object] = {}

    def csim(self, case: Case, optimize: str = "-O0", extra_flags: tuple[str, ...] = ()):
        from vitaccel.codegen import csim, write_project

        key = f"{case.name}{optimize}{''.join(extra_flags)}"
        if key not in self.results:
            files, _, _ = emit_case(case)
            out = write_project(files, self.root / key.replace("-", "_"))
            self.results[key] = (out, csim(out, optimize=optimize, extra_flags=extra_flags))
        return self.results[key]


def variant_knobs(softmax: str, gelu: str, layernorm: str) -> tuple[tuple[str, object], ...]:
    return (("variants.softmax", softmax), ("variants.gelu", gelu),
            ("variants.layernorm", layernorm))


