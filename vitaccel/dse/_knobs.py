"""Knobs of a design point: which keys exist, how a point turns into a config and precision.

A point is a mapping from axis key to value. Keys are

* any dotted field of :class:`vitaccel.hw.HwConfig` (``linear.tile_in``, ``clock_mhz``,
  ``variants.softmax``, ``attention.parallel_queries``, ``board``, ``board.dram_bandwidth_gbps``,
  ...), applied with :func:`vitaccel.hw.with_knob`;
* ``precision`` (a preset name or precision YAML path), ``precision.<role>`` (a format string
  such as ``ap_fixed<16,6>`` or ``auto<8>``) and ``precision.<role>.width`` (total bits W; a
  concrete ``ap_fixed<W,I>`` keeps its integer bits I, so fewer bits means fewer fractional
  bits; an ``auto`` role keeps choosing I from the observed range);
* ``exits.threshold``, the early-exit threshold of a model with exit heads.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Mapping
from typing import Any

from vitaccel.errors import UsageError
from vitaccel.fixed import FixedType
from vitaccel.hw import HwConfig, with_knob
from vitaccel.ir import Auto, Precision, get_precision

__all__ = [
    "EXIT_KEY",
    "NUMERICS_HW_KEYS",
    "apply_hw",
    "apply_precision",
    "hw_columns",
    "hw_value",
    "is_numerics_key",
    "knob_kind",
    "known_roles",
]

EXIT_KEY = "exits.threshold"
# Hardware knobs that change the bits the accelerator computes (part of the numerics key).
NUMERICS_HW_KEYS = ("variants.softmax", "variants.gelu", "variants.layernorm",
                    "attention.order", "attention.parallel_queries")
# Scalar hardware fields written as table columns for every point.
HW_COLUMNS = ("board", "clock_mhz", "linear.tile_in", "linear.tile_out",
              "linear.weight_buffering", "linear.pipeline_ii", "attention.order",
              "attention.parallel_queries", "attention.head_dim_lanes", "variants.softmax",
              "variants.gelu", "variants.layernorm", "memory.dram_port_width_bits",
              "memory.num_dram_ports")


@functools.cache
def known_roles() -> frozenset[str]:
    """Every precision role a ``precision.<role>`` knob may name."""
    from vitaccel.ir._precision import known_roles as roles

    return frozenset(roles())


def knob_kind(key: str) -> str:
    """``"preset"``, ``"format"``, ``"width"``, ``"exit"`` or ``"hw"`` for an axis key.

    Raises
    ------
    UsageError
        ``precision.<role>`` with a role no precision knows.
    """
    if key == "precision":
        return "preset"
    if key == EXIT_KEY:
        return "exit"
    if key.startswith("precision."):
        rest = key[len("precision."):]
        roles = known_roles()
        if rest.endswith(".width") and rest[: -len(".width")] in roles:
            return "width"
        if rest in roles:
            return "format"
        raise UsageError(f"{key}: unknown precision knob (expected precision, "
                         f"precision.<role> or precision.<role>.width with a role among "
                         f"{', '.join(sorted(roles))})")
    return "hw"


def is_numerics_key(key: str) -> bool:
    """Whether the knob changes the quantized graph's bits (and so its accuracy)."""
    return knob_kind(key) != "hw" or key in NUMERICS_HW_KEYS


def apply_hw(base: HwConfig, point: Mapping[str, Any]) -> HwConfig:
    """``base`` with every hardware knob of ``point`` set (``board`` first), validated.

    Raises
    ------
    UsageError
        From :func:`vitaccel.hw.with_knob`, naming the knob.
    """
    cfg = base
    keys = sorted((k for k in point if knob_kind(k) == "hw"), key=lambda k: k != "board")
    for key in keys:
        cfg = with_knob(cfg, key, point[key])
    return cfg


def _with_width(spec: Any, width: int, key: str) -> Any:
    if isinstance(spec, Auto):
        return Auto(int(width), signed=spec.signed)
    if isinstance(spec, FixedType):
        try:
            return dataclasses.replace(spec, width=int(width),
                                       sat_bits=min(spec.sat_bits, int(width)))
        except (UsageError, ValueError) as exc:
            raise UsageError(f"{key}={width!r}: {exc}") from None
    raise UsageError(f"{key}: the role is full precision ('none') in this precision; "
                     "set precision.<role> to a format before sweeping its width")


def apply_precision(base: str | Precision, point: Mapping[str, Any]) -> Precision:
    """The precision of a point: preset, then role formats, then role widths.

    Parameters
    ----------
    base : str or Precision
        Preset name, YAML path or Precision used when the point has no ``precision`` knob.
    point : Mapping
        The point's knobs (non-precision keys are ignored).

    Returns
    -------
    Precision
        Named ``<preset>`` or ``<preset>[role=..., role.width=...]`` after its overrides.
    """
    from vitaccel.ir._precision import parse_format

    prec = get_precision(point.get("precision", base))
    roles: dict[str, Any] = {}
    tags = []
    for kind in ("format", "width"):
        for key in sorted(k for k in point if k.startswith("precision.")):
            if knob_kind(key) != kind:
                continue
            if kind == "format":
                role = key[len("precision."):]
                roles[role] = parse_format(point[key], key, prec.roles.get(role))
            else:
                role = key[len("precision."): -len(".width")]
                current = roles.get(role, prec.roles.get(role))
                roles[role] = _with_width(current, point[key], key)
            tags.append(f"{key[len('precision.'):]}={point[key]}")
    if not roles:
        return prec
    return prec.with_roles(f"{prec.name}[{','.join(tags)}]", **roles)


def hw_columns(cfg: HwConfig) -> dict[str, Any]:
    """The scalar knobs of a configuration as ``{dotted key: value}`` (board by id)."""
    return {key: hw_value(cfg, key) for key in HW_COLUMNS}


def hw_value(cfg: HwConfig, key: str) -> Any:
    """The value of dotted knob ``key`` in ``cfg`` (a board by its id)."""
    obj: Any = cfg
    for part in key.split("."):
        obj = getattr(obj, part)
    return obj.name if key == "board" else obj
