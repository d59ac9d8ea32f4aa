"""Design spaces described in YAML: base design, axes, sampling, constraints, objectives.

Example (every key but ``hw`` and ``axes`` is optional)::

    name: edge-moe-zcu102
    model: edge-moe              # model preset, model YAML, or digits-* (trained digits models)
    checkpoint: null             # timm/DeiT weights for the model
    hw: zcu102_edge_moe          # shipped config name or YAML path (relative to this file)
    precision: edge-moe          # default: the hardware config's precision
    data: digits                 # labelled images for --accuracy: digits, a folder or an .npz
    task: 0                      # MoE gate task used by the simulation
    sampling: {method: lhs, n: 2000, seed: 0}     # grid (default), random or lhs
    axes:
      linear.tile_in: [8, 16, 32]
      attention.parallel_queries: {min: 1, max: 16, step: 1}    # inclusive integer range
      precision.act.width: [16, 24, 32]
      variants.softmax: [online, two_pass]
    constraints: [fits, "dsp_util <= 0.8"]
    objectives: {minimize: [latency_ms, dsp], maximize: [accuracy]}
    reference: true              # also evaluate the unmodified base design (marked in plots);
                                 # a string instead of true names it in the plots

Unknown keys, axes and metric names are :class:`~vitaccel.errors.UsageError` s that name the
file, line and key.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vitaccel.dse._expr import Expr, parse_expr
from vitaccel.dse._knobs import (
    EXIT_KEY,
    HW_COLUMNS,
    apply_hw,
    apply_precision,
    hw_value,
    knob_kind,
)
from vitaccel.dse._metrics import ACCURACY_METRICS, COST_METRICS
from vitaccel.dse._pareto import Objective, parse_objectives
from vitaccel.errors import UsageError
from vitaccel.hw import HwConfig, load_hw_config
from vitaccel.hw._yaml import LineDict, read_yaml

__all__ = ["Axis", "Sampling", "Space", "load_space", "parse_space"]

SAMPLING_METHODS = ("grid", "random", "lhs")
_TOP_KEYS = ("name", "model", "checkpoint", "hw", "precision", "data", "task", "sampling",
             "axes", "constraints", "objectives", "reference")


@dataclass(frozen=True)
class Axis:
    """One swept knob.

    Attributes
    ----------
    key : str
        Dotted knob (see :mod:`vitaccel.dse._knobs`).
    values : tuple
        The values, in the order given (ranges expand to ``min, min+step, ..., <= max``).
    """

    key: str
    values: tuple

    @property
    def numerics(self) -> bool:
        """Whether the knob changes the quantized graph (and so needs its own simulation)."""
        from vitaccel.dse._knobs import is_numerics_key

        return is_numerics_key(self.key)


@dataclass(frozen=True)
class Sampling:
    """How points are drawn from the axes.

    Attributes
    ----------
    method : {"grid", "random", "lhs"}
        Full Cartesian product; ``n`` distinct points drawn uniformly; or ``n`` points of a
        Latin hypercube (each axis' values covered in equal strata), duplicates removed.
    n : int or None
        Points to draw (random and lhs only).
    seed : int
        Seed of the generator (numpy ``default_rng``).
    """

    method: str = "grid"
    n: int | None = None
    seed: int = 0


@dataclass(frozen=True)
class Space:
    """A parsed design space.

    Attributes
    ----------
    source : str
        The file it came from (for messages).
    sha256 : str
        Hash of the file's text: results written by another space are detected.
    name, model : str
        Space name; model preset, model YAML or digits preset.
    checkpoint : str or None
        Absolute path of the model weights.
    hw : HwConfig
        The base design.
    precision : str
        Base precision preset or absolute YAML path.
    data : str
        ``"digits"`` or an absolute path of labelled images (``--accuracy``).
    task : int
        MoE gate task.
    axes : tuple of Axis
    sampling : Sampling
    constraints : tuple of Expr
        All must hold; expressions over knob keys and metric names.
    objectives : tuple of Objective
        Default objectives of ``vitaccel pareto`` and the Pareto plot (may be empty).
    reference : bool
        Evaluate the base design as an extra, marked point.
    reference_label : str
        How plots name that point (default ``"base design (<hw config>)"``).
    """

    source: str
    sha256: str
    name: str
    model: str
    checkpoint: str | None
    hw: HwConfig
    precision: str
    data: str
    task: int
    axes: tuple[Axis, ...]
    sampling: Sampling
    constraints: tuple[Expr, ...]
    objectives: tuple[Objective, ...]
    reference: bool
    reference_label: str = ""

    @property
    def keys(self) -> tuple[str, ...]:
        """Axis keys in order."""
        return tuple(a.key for a in self.axes)

    @property
    def grid_size(self) -> int:
        """Number of points of the full grid."""
        n = 1
        for a in self.axes:
            n *= len(a.values)
        return n

    @property
    def needs_accuracy(self) -> bool:
        """Whether a constraint reads an accuracy metric."""
        return any(n in ACCURACY_METRICS for c in self.constraints for n in c.names)

    def knob_env(self, point: dict[str, Any], cfg: HwConfig) -> dict[str, Any]:
        """Names a constraint can read before evaluation: the point's knobs and ``cfg``'s."""
        env = {key: hw_value(cfg, key) for key in HW_COLUMNS}
        env.update(point)
        return env


def _loc(data: Any, key: str, src: str) -> str:
    line = data.key_lines.get(key, data.line) if isinstance(data, LineDict) else 1
    return f"{src}:{line}"


def _resolve(value: str, base: Path) -> str:
    p = Path(value)
    return str(p if p.is_absolute() else (base / p).resolve())


def _is_file_ref(value: str) -> bool:
    return "/" in value or value.endswith((".yaml", ".yml", ".npz"))


def _axis_values(raw: Any, key: str, where: str) -> tuple:
    if isinstance(raw, list):
        if not raw:
            raise UsageError(f"{where}: axes.{key}: empty list of values")
        seen = []
        for v in raw:
            if isinstance(v, (dict, list)) or v is None:
                raise UsageError(f"{where}: axes.{key}: expected scalar values, got {v!r}")
            if v in seen:
                raise UsageError(f"{where}: axes.{key}: value {v!r} given twice")
            seen.append(v)
        return tuple(raw)
    if isinstance(raw, dict):
        unknown = sorted(set(raw) - {"min", "max", "step"})
        if unknown or "min" not in raw or "max" not in raw:
            bad = unknown[0] if unknown else ("min" if "min" not in raw else "max")
            raise UsageError(f"{where}: axes.{key}.{bad}: expected a range "
                             "{min: INT, max: INT, step: INT} (step optional, default 1)")
        lo, hi, step = raw["min"], raw["max"], raw.get("step", 1)
        for name, v in (("min", lo), ("max", hi), ("step", step)):
            if not isinstance(v, int) or isinstance(v, bool):
                raise UsageError(f"{where}: axes.{key}.{name}: expected an integer, got {v!r}")
        if step < 1 or hi < lo:
            raise UsageError(f"{where}: axes.{key}: expected min <= max and step >= 1, "
                             f"got min={lo}, max={hi}, step={step}")
        return tuple(range(lo, hi + 1, step))
    raise UsageError(f"{where}: axes.{key}: expected a list of values or a range "
                     f"{{min, max, step}}, got {raw!r}")


def _check_hw_value(hw: HwConfig, key: str, value: Any, boards: tuple) -> None:
    """Raise unless ``key=value`` is valid on the base board or on some board of the axis."""
    try:
        apply_hw(hw, {key: value})
    except UsageError:
        for b in boards:
            try:
                apply_hw(hw, {"board": b, key: value})
                return
            except UsageError:
                continue
        raise


def _check_axis(key: str, values: tuple, hw: HwConfig, precision: str, model_cfg: Any,
                where: str, boards: tuple) -> None:
    """Validate each value of the axis alone against the base design (a value that needs
    another board of the ``board`` axis is accepted; invalid combinations are skipped when
    the points are planned)."""
    try:
        kind = knob_kind(key)
    except UsageError as exc:
        raise UsageError(f"{where}: axes.{exc}") from None
    for v in values:
        try:
            if kind == "hw":
                _check_hw_value(hw, key, v, () if key == "board" else boards)
            elif kind == "exit":
                if model_cfg.exits is None:
                    raise UsageError(f"{key}: model {model_cfg.name!r} has no exit heads")
                _exit_config(model_cfg, v)
            else:
                if kind == "width" and (not isinstance(v, int) or isinstance(v, bool)):
                    raise UsageError(f"{key}: expected an integer bit width, got {v!r}")
                apply_precision(precision, {key: v})
        except UsageError as exc:
            msg = str(exc)
            if msg.startswith("knob "):
                msg = msg[len("knob "):]
            if not msg.startswith(key):
                msg = f"{key}={v!r}: {msg}"
            raise UsageError(f"{where}: axes.{msg}") from None


def _exit_config(model_cfg: Any, threshold: Any) -> Any:
    """The model config with its exit threshold replaced (validated by ``ExitConfig``)."""
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)):
        raise UsageError(f"{EXIT_KEY}: expected a number, got {threshold!r}")
    try:
        exits = dataclasses.replace(model_cfg.exits, threshold=float(threshold))
    except ValueError as exc:
        raise UsageError(f"{EXIT_KEY}={threshold!r}: {exc}") from None
    return dataclasses.replace(model_cfg, exits=exits)


def _sampling(raw: Any, where: str) -> Sampling:
    if raw is None:
        return Sampling()
    if isinstance(raw, str):
        raw = {"method": raw}
    if not isinstance(raw, dict):
        raise UsageError(f"{where}: sampling: expected a mapping {{method, n, seed}}")
    unknown = sorted(set(raw) - {"method", "n", "seed"})
    if unknown:
        raise UsageError(f"{where}: sampling.{unknown[0]}: unknown key (expected method, n, seed)")
    method = raw.get("method", "grid")
    if method not in SAMPLING_METHODS:
        raise UsageError(f"{where}: sampling.method: expected one of "
                         f"{', '.join(SAMPLING_METHODS)}, got {method!r}")
    n, seed = raw.get("n"), raw.get("seed", 0)
    if method == "grid" and n is not None:
        raise UsageError(f"{where}: sampling.n: grid sampling takes every point (drop n or use "
                         "random/lhs)")
    if method != "grid" and (not isinstance(n, int) or isinstance(n, bool) or n < 1):
        raise UsageError(f"{where}: sampling.n: expected a positive integer for {method} "
                         f"sampling, got {n!r}")
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise UsageError(f"{where}: sampling.seed: expected an integer, got {seed!r}")
    return Sampling(method, n, seed)


def _constraints(raw: Any, where: str, keys: set[str]) -> tuple[Expr, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raw = [raw]
    known = set(COST_METRICS) | set(ACCURACY_METRICS) | set(HW_COLUMNS) | keys
    out = []
    for item in raw:
        if isinstance(item, dict):
            if len(item) != 1:
                raise UsageError(f"{where}: constraints: expected 'metric: value' or an "
                                 f"expression string, got {dict(item)!r}")
            (name, value), = item.items()
            literal = repr(value) if isinstance(value, str) else str(value).lower()
            item = f"{name} == {literal}"
        expr = parse_expr(item, f"{where}: constraints")
        for name in sorted(expr.names):
            if name not in known:
                raise UsageError(
                    f"{where}: constraints: {name!r} in {expr.text!r} is neither a metric "
                    f"({', '.join(COST_METRICS + ACCURACY_METRICS)}) nor a knob of the space")
        out.append(expr)
    return tuple(out)


def parse_space(data: Any, src: str, text: str, base_dir: Path) -> Space:
    """Build a :class:`Space` from parsed YAML ``data`` (``text`` is hashed; paths resolve
    against ``base_dir``)."""
    from vitaccel.models import get_config

    if not isinstance(data, dict):
        raise UsageError(f"{src}:1: expected a mapping with keys {', '.join(_TOP_KEYS)}")
    for key in data:
        if key not in _TOP_KEYS:
            raise UsageError(f"{_loc(data, key, src)}: {key}: unknown key "
                             f"(expected one of: {', '.join(_TOP_KEYS)})")
    for key in ("hw", "axes"):
        if key not in data:
            raise UsageError(f"{src}:1: {key}: missing")
    hw_ref = data["hw"]
    if not isinstance(hw_ref, str):
        raise UsageError(f"{_loc(data, 'hw', src)}: hw: expected a config name or YAML path")
    hw_name = _resolve(hw_ref, base_dir) if _is_file_ref(hw_ref) else hw_ref
    try:
        hw = load_hw_config(hw_name)
    except UsageError as exc:
        raise UsageError(f"{_loc(data, 'hw', src)}: hw: {exc}") from None
    model = str(data.get("model", "digits-dense"))
    model = _resolve(model, base_dir) if _is_file_ref(model) else model
    try:
        model_cfg = get_config(model)
    except (UsageError, ValueError) as exc:
        raise UsageError(f"{_loc(data, 'model', src)}: model: {exc}") from None
    checkpoint = data.get("checkpoint")
    if checkpoint is not None:
        checkpoint = _resolve(str(checkpoint), base_dir)
    precision = str(data.get("precision") or hw.precision)
    precision = _resolve(precision, base_dir) if _is_file_ref(precision) else precision
    try:
        apply_precision(precision, {})
    except UsageError as exc:
        raise UsageError(f"{_loc(data, 'precision', src)}: precision: {exc}") from None
    data_ref = str(data.get("data", "digits"))
    data_ref = data_ref if data_ref == "digits" else _resolve(data_ref, base_dir)
    task = data.get("task", 0)
    if not isinstance(task, int) or isinstance(task, bool) or task < 0:
        raise UsageError(f"{_loc(data, 'task', src)}: task: expected an integer >= 0")
    raw_axes = data["axes"]
    if not isinstance(raw_axes, dict) or not raw_axes:
        raise UsageError(f"{_loc(data, 'axes', src)}: axes: expected a mapping of knob -> values")
    parsed = {key: _axis_values(raw, key, _loc(raw_axes, key, src))
              for key, raw in raw_axes.items()}
    boards = tuple(v for v in parsed.get("board", ()) if isinstance(v, str))
    axes = []
    for key, values in parsed.items():
        _check_axis(key, values, hw, precision, model_cfg, _loc(raw_axes, key, src), boards)
        axes.append(Axis(key, values))
    if EXIT_KEY in raw_axes and model_cfg.exits is None:
        raise UsageError(f"{_loc(raw_axes, EXIT_KEY, src)}: axes.{EXIT_KEY}: model has no exits")
    sampling = _sampling(data.get("sampling"), _loc(data, "sampling", src))
    constraints = _constraints(data.get("constraints"), _loc(data, "constraints", src),
                               set(raw_axes))
    objectives: tuple[Objective, ...] = ()
    raw_obj = data.get("objectives")
    if raw_obj is not None:
        where = _loc(data, "objectives", src)
        if not isinstance(raw_obj, dict) or set(raw_obj) - {"minimize", "maximize"}:
            raise UsageError(f"{where}: objectives: expected {{minimize: [...], maximize: [...]}}")
        try:
            objectives = parse_objectives(raw_obj.get("minimize"), raw_obj.get("maximize"))
        except UsageError as exc:
            raise UsageError(f"{where}: {exc}") from None
    reference = data.get("reference", True)
    label = f"base design ({hw.name})"
    if isinstance(reference, str) and reference.strip():
        reference, label = True, reference.strip()
    if not isinstance(reference, bool):
        raise UsageError(f"{_loc(data, 'reference', src)}: reference: expected true, false or "
                         "a label for the base design")
    name = str(data.get("name") or Path(src).stem)
    return Space(src, hashlib.sha256(text.encode()).hexdigest(), name, model, checkpoint, hw,
                 precision, data_ref, task, tuple(axes), sampling, constraints, objectives,
                 reference, label)


def load_space(path: str | os.PathLike[str]) -> Space:
    """Read and validate a design-space YAML file.

    Raises
    ------
    UsageError
        One line: ``"<file>:<line>: axes.linear.tile_inn: unknown key (...)"`` and the like.
    """
    p = Path(path)
    if not p.is_file():
        raise UsageError(f"space {os.fspath(path)!r}: no such file")
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"{p}: cannot read: {exc}") from None
    data = read_yaml(p, text)
    return parse_space(data, str(p), text, p.resolve().parent)
