"""Value checks shared by the hardware schema, the YAML loader and ``with_knob``.

Each schema field carries one check in its dataclass metadata (key ``"check"``). A check
validates a plain Python value (as YAML or a caller supplies it) and returns it normalised
(ints accepted where a float is expected become floats). Failures raise :class:`FieldError`,
which names the field's dotted key relative to the object being validated; the loader and
``with_knob`` add the file, line or knob name in front.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from vitaccel.errors import UsageError

__all__ = ["Check", "Choice", "FieldError", "Flag", "Int", "Real", "Text", "check_fields"]


class FieldError(UsageError):
    """A schema value is wrong: ``key`` (dotted, relative) expected ``expected``, got ``got``."""

    def __init__(self, key: str, expected: str, got: Any) -> None:
        self.key = key
        self.expected = expected
        self.got = got
        super().__init__(f"{key}: expected {expected}, got {got!r}")

    def under(self, prefix: str) -> FieldError:
        """Return the same error with ``prefix.`` prepended to its key."""
        return FieldError(f"{prefix}.{self.key}" if prefix else self.key, self.expected, self.got)


class Check:
    """Base class: ``expected`` describes valid values; ``__call__`` validates one value."""

    expected: str

    def __call__(self, key: str, value: Any) -> Any:
        raise NotImplementedError


@dataclass(frozen=True)
class Int(Check):
    """An integer (bools rejected) in ``[lo, hi]``, optionally one of ``choices``."""

    lo: int | None = None
    hi: int | None = None
    choices: tuple[int, ...] | None = None
    optional: bool = False

    @property
    def expected(self) -> str:
        if self.choices is not None:
            text = "one of " + ", ".join(str(c) for c in self.choices)
        elif self.lo is not None and self.hi is not None:
            text = f"an integer in [{self.lo}, {self.hi}]"
        elif self.lo is not None:
            text = f"an integer >= {self.lo}"
        else:
            text = "an integer"
        return text + (" or null" if self.optional else "")

    def __call__(self, key: str, value: Any) -> Any:
        if value is None and self.optional:
            return None
        ok = isinstance(value, int) and not isinstance(value, bool)
        ok = ok and (self.lo is None or value >= self.lo) and (self.hi is None or value <= self.hi)
        ok = ok and (self.choices is None or value in self.choices)
        if not ok:
            raise FieldError(key, self.expected, value)
        return value


@dataclass(frozen=True)
class Real(Check):
    """A number (int or float, bools rejected), ``> lo`` when ``strict`` else ``>= lo``."""

    lo: float = 0.0
    strict: bool = True
    unit: str = ""
    optional: bool = False

    @property
    def expected(self) -> str:
        unit = f" {self.unit}" if self.unit else ""
        text = f"a number {'>' if self.strict else '>='} {self.lo:g}{unit}"
        return text + (" or null" if self.optional else "")

    def __call__(self, key: str, value: Any) -> Any:
        if value is None and self.optional:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise FieldError(key, self.expected, value)
        x = float(value)
        if x != x or x in (float("inf"), float("-inf")) or x < self.lo or (
            self.strict and x == self.lo
        ):
            raise FieldError(key, self.expected, value)
        return x


@dataclass(frozen=True)
class Choice(Check):
    """One string out of a fixed tuple of names."""

    choices: tuple[str, ...]

    @property
    def expected(self) -> str:
        return "one of " + ", ".join(repr(c) for c in self.choices)

    def __call__(self, key: str, value: Any) -> Any:
        if not isinstance(value, str) or value not in self.choices:
            raise FieldError(key, self.expected, value)
        return value


@dataclass(frozen=True)
class Text(Check):
    """A non-empty string (or any string when ``allow_empty``)."""

    allow_empty: bool = False

    @property
    def expected(self) -> str:
        return "a string" if self.allow_empty else "a non-empty string"

    def __call__(self, key: str, value: Any) -> Any:
        if not isinstance(value, str) or (not self.allow_empty and not value.strip()):
            raise FieldError(key, self.expected, value)
        return value


@dataclass(frozen=True)
class Flag(Check):
    """A boolean (YAML ``true`` / ``false``)."""

    @property
    def expected(self) -> str:
        return "true or false"

    def __call__(self, key: str, value: Any) -> Any:
        if not isinstance(value, bool):
            raise FieldError(key, self.expected, value)
        return value


def check_fields(obj: Any, skip: Sequence[str] = ()) -> None:
    """Validate every field of dataclass ``obj`` that carries a check, in place.

    Normalised values (int -> float for :class:`Real`) are written back with
    ``object.__setattr__`` so that frozen dataclasses hold canonical types.
    """
    for f in dataclasses.fields(obj):
        check = f.metadata.get("check")
        if check is None or f.name in skip:
            continue
        object.__setattr__(obj, f.name, check(f.name, getattr(obj, f.name)))
