"""A tiny, safe expression language for sweep constraints (no ``eval``).

Grammar (precedence from loosest to tightest)::

    expr   := and ("or" and)*
    and    := not ("and" not)*
    not    := "not" not | cmp
    cmp    := sum (("<" | "<=" | ">" | ">=" | "==" | "!=") sum)?
    sum    := term (("+" | "-") term)*
    term   := unary (("*" | "/") unary)*
    unary  := "-" unary | atom
    atom   := NUMBER | STRING | "true" | "false" | NAME | "(" expr ")"

``NAME`` is a metric (``dsp_util``, ``latency_ms``, ``fits``) or a dotted knob
(``linear.tile_in``, ``precision.act.width``); strings are quoted with ``'`` or ``"``.
Booleans behave as 0/1 in arithmetic.

Evaluation is three-valued (Kleene logic): a name missing from the environment is *unknown*,
``false and unknown`` is false and ``true or unknown`` is true. A constraint that is already
false with only the knobs of a point known is false whatever the metrics turn out to be, so
pruning on that partial result never drops a point that satisfies the constraint.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from vitaccel.errors import UsageError

__all__ = ["Expr", "UNKNOWN", "parse_expr"]


class _Unknown:
    """The third truth value: a quantity not known yet."""

    _instance: _Unknown | None = None

    def __new__(cls) -> _Unknown:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "UNKNOWN"


UNKNOWN = _Unknown()

_TOKEN = re.compile(
    r"\s*(?:(?P<num>\d+\.\d*(?:[eE][-+]?\d+)?|\.\d+(?:[eE][-+]?\d+)?|\d+(?:[eE][-+]?\d+)?)"
    r"|(?P<str>'[^']*'|\"[^\"]*\")"
    r"|(?P<name>[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)"
    r"|(?P<op><=|>=|==|!=|<|>|\+|-|\*|/|\(|\)))"
)
_KEYWORDS = {"and", "or", "not", "true", "false"}
_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge,
    "==": operator.eq, "!=": operator.ne,
}
_ARITH: dict[str, Callable[[Any, Any], Any]] = {
    "+": operator.add, "-": operator.sub, "*": operator.mul, "/": operator.truediv,
}


@dataclass(frozen=True)
class Expr:
    """A parsed constraint expression.

    Attributes
    ----------
    text : str
        The source text.
    tree : tuple
        The syntax tree: ``("num", v)``, ``("str", s)``, ``("name", n)``, ``("neg", e)``,
        ``("not", e)``, ``("and", a, b)``, ``("or", a, b)``, ``("cmp", op, a, b)``,
        ``("arith", op, a, b)``.
    """

    text: str
    tree: tuple

    @property
    def names(self) -> frozenset[str]:
        """Every metric or knob name the expression reads."""
        out: set[str] = set()
        _collect(self.tree, out)
        return frozenset(out)

    def evaluate(self, env: Mapping[str, Any]) -> bool | _Unknown:
        """True, False or :data:`UNKNOWN` (when names missing from ``env`` decide it).

        Raises
        ------
        UsageError
            A comparison or arithmetic between incompatible values (e.g. a string and a
            number), naming the expression.
        """
        value = _eval(self.tree, env, self.text)
        if value is UNKNOWN:
            return UNKNOWN
        return bool(value)


def _collect(tree: tuple, out: set[str]) -> None:
    if tree[0] == "name":
        out.add(tree[1])
    for child in tree[1:]:
        if isinstance(child, tuple):
            _collect(child, out)


def _eval(tree: tuple, env: Mapping[str, Any], text: str) -> Any:
    kind = tree[0]
    if kind in ("num", "str"):
        return tree[1]
    if kind == "name":
        return env.get(tree[1], UNKNOWN)
    if kind == "and":
        left = _eval(tree[1], env, text)
        if left is not UNKNOWN and not left:
            return False
        right = _eval(tree[2], env, text)
        if right is not UNKNOWN and not right:
            return False
        return UNKNOWN if UNKNOWN in (left, right) else True
    if kind == "or":
        left = _eval(tree[1], env, text)
        if left is not UNKNOWN and left:
            return True
        right = _eval(tree[2], env, text)
        if right is not UNKNOWN and right:
            return True
        return UNKNOWN if UNKNOWN in (left, right) else False
    if kind == "not":
        value = _eval(tree[1], env, text)
        return UNKNOWN if value is UNKNOWN else not value
    if kind == "neg":
        value = _eval(tree[1], env, text)
        return UNKNOWN if value is UNKNOWN else _apply(operator.neg, (value,), text)
    left, right = _eval(tree[2], env, text), _eval(tree[3], env, text)
    if UNKNOWN in (left, right):
        return UNKNOWN
    fn = _COMPARE[tree[1]] if kind == "cmp" else _ARITH[tree[1]]
    return _apply(fn, (left, right), text)


def _apply(fn: Callable[..., Any], args: tuple, text: str) -> Any:
    if any(isinstance(a, str) for a in args) and fn not in (operator.eq, operator.ne):
        raise UsageError(f"constraint {text!r}: cannot use a string with {fn.__name__}")
    try:
        return fn(*args)
    except ZeroDivisionError:
        return float("inf")
    except TypeError as exc:
        raise UsageError(f"constraint {text!r}: {exc}") from None


class _Parser:
    def __init__(self, text: str, where: str) -> None:
        self.text, self.where = text, where
        self.tokens: list[tuple[str, Any]] = []
        pos = 0
        stripped = text.rstrip()
        while pos < len(stripped):
            m = _TOKEN.match(stripped, pos)
            if m is None or m.end() == pos:
                self.fail(f"unexpected character {stripped[pos:].lstrip()[:1]!r}")
            kind = m.lastgroup
            raw = m.group(kind)
            if kind == "num":
                value: Any = float(raw) if any(c in raw for c in ".eE") else int(raw)
                self.tokens.append(("num", value))
            elif kind == "str":
                self.tokens.append(("str", raw[1:-1]))
            elif kind == "name" and raw in _KEYWORDS:
                self.tokens.append(("kw", raw))
            else:
                self.tokens.append((kind, raw))
            pos = m.end()
        self.i = 0

    def fail(self, message: str) -> None:
        raise UsageError(f"{self.where}: constraint {self.text!r}: {message}")

    def peek(self) -> tuple[str, Any] | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def take(self, kind: str, *values: str) -> Any:
        tok = self.peek()
        if tok is not None and tok[0] == kind and (not values or tok[1] in values):
            self.i += 1
            return tok[1]
        return None

    def parse(self) -> tuple:
        if not self.tokens:
            self.fail("empty expression")
        tree = self.expr()
        if self.peek() is not None:
            self.fail(f"unexpected {self.peek()[1]!r}")
        return tree

    def expr(self) -> tuple:
        tree = self.conj()
        while self.take("kw", "or"):
            tree = ("or", tree, self.conj())
        return tree

    def conj(self) -> tuple:
        tree = self.neg()
        while self.take("kw", "and"):
            tree = ("and", tree, self.neg())
        return tree

    def neg(self) -> tuple:
        if self.take("kw", "not"):
            return ("not", self.neg())
        return self.cmp()

    def cmp(self) -> tuple:
        tree = self.sum()
        op = self.take("op", *_COMPARE)
        if op:
            tree = ("cmp", op, tree, self.sum())
            if self.take("op", *_COMPARE):
                self.fail("chained comparisons are not supported (use 'and')")
        return tree

    def sum(self) -> tuple:
        tree = self.term()
        while (op := self.take("op", "+", "-")) is not None:
            tree = ("arith", op, tree, self.term())
        return tree

    def term(self) -> tuple:
        tree = self.unary()
        while (op := self.take("op", "*", "/")) is not None:
            tree = ("arith", op, tree, self.unary())
        return tree

    def unary(self) -> tuple:
        if self.take("op", "-"):
            return ("neg", self.unary())
        return self.atom()

    def atom(self) -> tuple:
        tok = self.peek()
        if tok is None:
            self.fail("unexpected end of expression")
        kind, value = tok
        self.i += 1
        if kind in ("num", "str"):
            return (kind, value)
        if kind == "kw" and value in ("true", "false"):
            return ("num", value == "true")
        if kind == "name":
            return ("name", value)
        if kind == "op" and value == "(":
            tree = self.expr()
            if not self.take("op", ")"):
                self.fail("missing ')'")
            return tree
        self.fail(f"unexpected {value!r}")
        raise AssertionError  # fail() always raises


def parse_expr(text: str, where: str = "constraint") -> Expr:
    """Parse a constraint such as ``"dsp_util <= 0.8 and linear.tile_in >= 8"``.

    Parameters
    ----------
    text : str
        The expression (grammar in the module docstring).
    where : str
        Prefix of error messages (file and key).

    Raises
    ------
    UsageError
        ``"<where>: constraint '<text>': <problem>"`` for a syntax error.
    """
    if not isinstance(text, str):
        raise UsageError(f"{where}: expected a constraint expression string, got {text!r}")
    return Expr(text, _Parser(text, where).parse())
