"""Constraint expressions: grammar, safety, and three-valued pruning soundness."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vitaccel.dse import parse_expr
from vitaccel.dse._expr import UNKNOWN
from vitaccel.errors import UsageError


def test_precedence_and_arithmetic() -> None:
    e = parse_expr("linear.tile_in * linear.tile_out <= 256 and not fits or dsp_util < 0.5")
    env = {"linear.tile_in": 16, "linear.tile_out": 16, "fits": True, "dsp_util": 0.4}
    assert e.evaluate(env) is True  # (256 <= 256 and False) or True
    assert e.names == {"linear.tile_in", "linear.tile_out", "fits", "dsp_util"}
    assert parse_expr("-(2 - 5) * 2 == 6").evaluate({}) is True
    assert parse_expr("variants.softmax == 'online'").evaluate(
        {"variants.softmax": "two_pass"}) is False
    assert parse_expr("fits == true").evaluate({"fits": True}) is True
    assert parse_expr("1e-3 < x").evaluate({"x": 0.01}) is True


@pytest.mark.parametrize("text, match", [
    ("", "empty"),
    ("dsp_util <=", "end of expression"),
    ("(a < 1", "missing"),
    ("a < 1 < 2", "chained"),
    ("__import__('os').system('true')", "unexpected"),
    ("a; b", "unexpected character"),
    ("a < 1 b", "unexpected 'b'"),
])
def test_syntax_errors_name_the_expression(text: str, match: str) -> None:
    with pytest.raises(UsageError, match=match):
        parse_expr(text, "space.yaml:3")


def test_string_ordering_is_an_error() -> None:
    with pytest.raises(UsageError, match="string"):
        parse_expr("variants.softmax < 3").evaluate({"variants.softmax": "online"})


def test_unknown_names_give_unknown_unless_decided() -> None:
    e = parse_expr("linear.tile_in <= 8 and dsp_util <= 0.8")
    assert e.evaluate({"linear.tile_in": 16}) is False
    assert e.evaluate({"linear.tile_in": 4}) is UNKNOWN
    assert parse_expr("k > 1 or m > 1").evaluate({"k": 2}) is True
    assert parse_expr("not m").evaluate({}) is UNKNOWN


_ATOMS = ["k1", "k2", "m1", "m2"]  # k*: knobs (known before evaluation), m*: metrics


@st.composite
def _exprs(draw: st.DrawFn, depth: int = 0) -> str:
    if depth > 3 or draw(st.integers(0, 3)) == 0:
        left = draw(st.sampled_from(_ATOMS))
        right = draw(st.one_of(st.integers(0, 4).map(str), st.sampled_from(_ATOMS)))
        op = draw(st.sampled_from(["<", "<=", ">", ">=", "==", "!="]))
        arith = draw(st.sampled_from(["", " + 1", " * 2", " - k1"]))
        return f"{left}{arith} {op} {right}"
    kind = draw(st.sampled_from(["and", "or", "not"]))
    if kind == "not":
        return f"not ({draw(_exprs(depth + 1))})"
    return f"({draw(_exprs(depth + 1))}) {kind} ({draw(_exprs(depth + 1))})"


@settings(max_examples=120, deadline=None)
@given(_exprs(), st.lists(st.integers(0, 4), min_size=4, max_size=4))
def test_partial_evaluation_is_sound(text: str, values: list[int]) -> None:
    """A verdict reached with metrics unknown is the verdict with them known."""
    e = parse_expr(text)
    full = dict(zip(_ATOMS, values, strict=True))
    knobs_only = {k: v for k, v in full.items() if k.startswith("k")}
    partial = e.evaluate(knobs_only)
    if partial is not UNKNOWN:
        assert e.evaluate(full) is partial
