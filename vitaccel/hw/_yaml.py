"""Safe YAML loading that remembers the line of every mapping key.

Mappings come back as :class:`LineDict` (a ``dict`` with ``line`` = line of the mapping and
``key_lines`` = line of each key, 1-based). Duplicate keys and non-string keys are errors.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from vitaccel.errors import UsageError

__all__ = ["LineDict", "read_yaml"]


class LineDict(dict):
    """A YAML mapping with the 1-based line numbers of itself and of each of its keys."""

    line: int = 0
    key_lines: dict[str, int]


class _LocatedError(Exception):
    def __init__(self, line: int, message: str) -> None:
        super().__init__(message)
        self.line = line


class _LineLoader(yaml.SafeLoader):
    """SafeLoader whose mappings are :class:`LineDict` objects."""


def _construct_mapping(loader: _LineLoader, node: yaml.MappingNode) -> LineDict:
    loader.flatten_mapping(node)
    out = LineDict()
    out.line = node.start_mark.line + 1
    out.key_lines = {}
    for key_node, value_node in node.value:
        line = key_node.start_mark.line + 1
        key = loader.construct_object(key_node, deep=True)
        if not isinstance(key, str):
            raise _LocatedError(line, f"mapping keys must be strings, got {key!r}")
        if key in out:
            raise _LocatedError(line, f"duplicate key {key!r}")
        out[key] = loader.construct_object(value_node, deep=True)
        out.key_lines[key] = line
    return out


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def read_yaml(path: Path, text: str | None = None) -> object:
    """Parse the YAML file ``path`` (or ``text`` attributed to it) safely.

    Raises
    ------
    UsageError
        ``"<path>:<line>: invalid YAML: ..."`` for syntax errors, duplicate or non-string keys,
        or ``"<path>: cannot read: ..."`` when the file cannot be read.
    """
    if text is None:
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise UsageError(f"{path}: cannot read: {exc}") from None
    try:
        return yaml.load(text, Loader=_LineLoader)
    except _LocatedError as exc:
        raise UsageError(f"{path}:{exc.line}: invalid YAML: {exc}") from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{path}:{mark.line + 1}" if mark is not None else f"{path}"
        problem = exc.problem or exc.context or "syntax error"
        raise UsageError(f"{where}: invalid YAML: {problem}") from None
    except yaml.YAMLError as exc:
        raise UsageError(f"{path}: invalid YAML: {' '.join(str(exc).split())}") from None
