"""Load boards and hardware configs from YAML, and evolve configs one knob at a time.

File layout (all shipped inside the wheel as package ``vitaccel.hw_configs``):

* ``hw_configs/boards.yaml`` — one top-level key per board id, its value the
  :class:`~vitaccel.hw.Board` fields (``name`` is the key).
* ``hw_configs/<config>.yaml`` — one :class:`~vitaccel.hw.HwConfig` each. Its ``board:`` is
  either a shipped board id (``board: zcu102``), or a mapping ``{base: <id>, <field>: <value>,
  ...}`` overriding some facts of a shipped board, or a full mapping of every Board field for a
  custom board. ``name`` defaults to the file stem.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib.resources
import os
from pathlib import Path
from typing import Any

from vitaccel.errors import UsageError
from vitaccel.hw._checks import FieldError
from vitaccel.hw._power import EnergyOverrides
from vitaccel.hw._schema import (
    AttentionConfig,
    Board,
    HwConfig,
    LinearConfig,
    MemoryConfig,
    MoeConfig,
    VariantsConfig,
)
from vitaccel.hw._yaml import LineDict, read_yaml

__all__ = [
    "DEFAULT_HW_CONFIG",
    "list_boards",
    "list_hw_configs",
    "load_board",
    "load_hw_config",
    "with_knob",
]

DEFAULT_HW_CONFIG = "kv260_default"
_BOARDS_STEM = "boards"
_SECTIONS: dict[str, type] = {
    "linear": LinearConfig,
    "attention": AttentionConfig,
    "variants": VariantsConfig,
    "memory": MemoryConfig,
    "moe": MoeConfig,
    "energy": EnergyOverrides,
}


def _shipped_dir() -> Any:
    return importlib.resources.files("vitaccel.hw_configs")


def _join(prefix: str, key: str) -> str:
    return f"{prefix}.{key}" if prefix else key


def _expected_of(cls: type, name: str) -> str:
    f = {f.name: f for f in dataclasses.fields(cls)}[name]
    check = f.metadata.get("check")
    return check.expected if check is not None else "a mapping"


def _is_required(f: dataclasses.Field) -> bool:
    return f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING


def _build(cls: type, data: Any, prefix: str, src: str, line: int,
           defaults: dict[str, Any] | None = None, built: dict[str, Any] | None = None,
           extra_keys: tuple[str, ...] = ()) -> Any:
    """Construct dataclass ``cls`` from the YAML mapping ``data`` found at key ``prefix``.

    ``defaults`` are field values that ``data`` may override (inherited board facts, the file
    stem as name); ``built`` are already-converted values that replace the raw entries of
    ``data`` (nested sections). Keys in ``extra_keys`` are accepted but not passed on.
    """
    if not isinstance(data, dict):
        raise UsageError(f"{src}:{line}: {prefix or 'document'}: expected a mapping, got {data!r}")
    key_lines = data.key_lines if isinstance(data, LineDict) else {}
    fields = {f.name: f for f in dataclasses.fields(cls)}
    for key in data:
        if key not in fields and key not in extra_keys:
            names = ", ".join(sorted(set(fields) | set(extra_keys)))
            raise UsageError(
                f"{src}:{key_lines.get(key, line)}: {_join(prefix, key)}: unknown key "
                f"(expected one of: {names})"
            )
    kwargs = dict(defaults or {})
    built = built or {}
    for name, f in fields.items():
        if name in built:
            kwargs[name] = built[name]
        elif name in data:
            kwargs[name] = data[name]
        elif name not in kwargs and _is_required(f):
            raise UsageError(
                f"{src}:{line}: {_join(prefix, name)}: missing "
                f"(expected {_expected_of(cls, name)})"
            )
    try:
        return cls(**kwargs)
    except FieldError as exc:
        top = exc.key.split(".", 1)[0]
        raise UsageError(f"{src}:{key_lines.get(top, line)}: {exc.under(prefix)}") from None


def _line_of(data: Any, key: str, default: int) -> int:
    return data.key_lines.get(key, default) if isinstance(data, LineDict) else default


@functools.cache
def _shipped_boards() -> dict[str, Board]:
    resource = _shipped_dir().joinpath(f"{_BOARDS_STEM}.yaml")
    src = f"hw_configs/{_BOARDS_STEM}.yaml"
    data = read_yaml(Path(src), resource.read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise UsageError(f"{src}:1: document: expected a mapping of board ids, got {data!r}")
    boards = {}
    for name, facts in data.items():
        line = _line_of(data, name, 1)
        if isinstance(facts, dict) and "name" in facts:
            raise UsageError(
                f"{src}:{_line_of(facts, 'name', line)}: {name}.name: unknown key "
                "(the board id is the mapping key)"
            )
        boards[name] = _build(Board, facts, name, src, line, defaults={"name": name})
    return boards


def list_boards() -> list[str]:
    """Return the ids of the shipped boards, in ``boards.yaml`` order."""
    return list(_shipped_boards())


def load_board(name: str) -> Board:
    """Return the shipped board ``name`` (e.g. ``"zcu102"``).

    Raises
    ------
    UsageError
        If no shipped board has that id (the message lists the known ids).
    """
    boards = _shipped_boards()
    if not isinstance(name, str) or name not in boards:
        raise UsageError(f"unknown board {name!r} (expected one of: {', '.join(boards)})")
    return boards[name]


def list_hw_configs() -> list[str]:
    """Return the stems of the shipped hardware configs, sorted (e.g. ``"zcu102_edge_moe"``)."""
    return sorted(
        p.name[: -len(".yaml")]
        for p in _shipped_dir().iterdir()
        if p.name.endswith(".yaml") and p.name != f"{_BOARDS_STEM}.yaml"
    )


def _board_from_yaml(value: Any, src: str, line: int) -> Board:
    if isinstance(value, str):
        try:
            return load_board(value)
        except UsageError as exc:
            raise UsageError(f"{src}:{line}: board: {exc}") from None
    if isinstance(value, dict) and "base" in value:
        base_line = _line_of(value, "base", line)
        base_name = value["base"]
        try:
            base = load_board(base_name)
        except UsageError as exc:
            raise UsageError(f"{src}:{base_line}: board.base: {exc}") from None
        facts = {f.name: getattr(base, f.name) for f in dataclasses.fields(Board)}
        return _build(Board, value, "board", src, line, defaults=facts, extra_keys=("base",))
    return _build(Board, value, "board", src, line)


def _config_from_data(data: Any, src: str, stem: str) -> HwConfig:
    if not isinstance(data, dict):
        raise UsageError(f"{src}:1: document: expected a mapping of config keys, got {data!r}")
    line = getattr(data, "line", 1)
    if "board" not in data:
        raise UsageError(
            f"{src}:{line}: board: missing (expected a board id, one of: "
            f"{', '.join(list_boards())}, or a mapping of board facts)"
        )
    built: dict[str, Any] = {
        "board": _board_from_yaml(data["board"], src, _line_of(data, "board", line))
    }
    for key, cls in _SECTIONS.items():
        if key in data:
            built[key] = _build(cls, data[key], key, src, _line_of(data, key, line))
    return _build(HwConfig, data, "", src, line, defaults={"name": stem}, built=built)


def load_hw_config(name_or_path: str | os.PathLike[str]) -> HwConfig:
    """Load and validate a hardware configuration.

    Parameters
    ----------
    name_or_path : str or os.PathLike
        A shipped config stem (see :func:`list_hw_configs`, e.g. ``"zcu102_edge_moe"``) or the
        path of a YAML file.

    Raises
    ------
    UsageError
        One line naming the file, YAML line, dotted key and what was expected, e.g.
        ``"cfg.yaml:7: linear.tile_in: expected an integer >= 1, got 0"``.
    """
    is_path = isinstance(name_or_path, os.PathLike)
    text = os.fspath(name_or_path) if is_path else str(name_or_path)
    is_path = is_path or "/" in text or text.endswith((".yaml", ".yml"))
    if not is_path:
        resource = _shipped_dir().joinpath(f"{text}.yaml")
        if text == _BOARDS_STEM or not resource.is_file():
            raise UsageError(
                f"hw config {text!r}: not a shipped config (expected one of: "
                f"{', '.join(list_hw_configs())}) or the path of a .yaml file"
            )
        src = f"hw_configs/{text}.yaml"
        data = read_yaml(Path(src), resource.read_text(encoding="utf-8"))
        return _config_from_data(data, src, text)
    path = Path(name_or_path)
    if not path.is_file():
        raise UsageError(f"hw config {text!r}: no such file")
    return _config_from_data(read_yaml(path), str(path), path.stem)


def _replace_path(obj: Any, parts: list[str], value: Any, done: list[str]) -> Any:
    names = [f.name for f in dataclasses.fields(obj)]
    head = parts[0]
    if head not in names:
        known = ", ".join(".".join(done + [n]) for n in names)
        raise UsageError(f"knob {'.'.join(done + parts)}: unknown key (expected one of: {known})")
    if len(parts) > 1:
        child = getattr(obj, head)
        if not dataclasses.is_dataclass(child):
            raise UsageError(f"knob {'.'.join(done + parts)}: {head} has no sub-keys")
        value = _replace_path(child, parts[1:], value, done + [head])
    elif isinstance(obj, HwConfig) and head == "board" and isinstance(value, str):
        value = load_board(value)
    try:
        return dataclasses.replace(obj, **{head: value})
    except FieldError as exc:
        raise exc.under(".".join(done)) from None


def with_knob(cfg: HwConfig, key: str, value: Any) -> HwConfig:
    """Return ``cfg`` with the dotted ``key`` set to ``value``, fully re-validated.

    Parameters
    ----------
    cfg : HwConfig
        The starting configuration (unchanged).
    key : str
        Dotted field path, e.g. ``"linear.tile_in"``, ``"attention.parallel_queries"``,
        ``"clock_mhz"``, ``"variants.softmax"``, ``"board"`` (a shipped board id or a
        :class:`~vitaccel.hw.Board`) or ``"board.dram_bandwidth_gbps"``.
    value : Any
        The new value, in the field's unit.

    Raises
    ------
    UsageError
        ``"knob linear.tile_in: expected an integer >= 1, got 0"``; when the new value makes
        another field invalid, that field is named too:
        ``"knob board='ultra96v2': clock_mhz: expected a clock <= ..., got 300.0"``.
    """
    if not isinstance(key, str) or not key:
        raise UsageError(f"knob {key!r}: expected a dotted key such as 'linear.tile_in'")
    try:
        return _replace_path(cfg, key.split("."), value, [])
    except FieldError as exc:
        if exc.key == key:
            raise UsageError(f"knob {key}: expected {exc.expected}, got {exc.got!r}") from None
        raise UsageError(f"knob {key}={value!r}: {exc}") from None
    except UsageError as exc:
        if str(exc).startswith("knob "):
            raise
        raise UsageError(f"knob {key}: {exc}") from None
