"""``with_knob``: design-space knobs evolve a config with full validation."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vitaccel.errors import UsageError
from vitaccel.hw import HwConfig, load_board, load_hw_config, with_knob

EDGE = load_hw_config("zcu102_edge_moe")


@pytest.mark.parametrize(
    ("key", "value", "read"),
    [
        ("linear.tile_in", 32, lambda c: c.linear.tile_in),
        ("linear.tile_out", 8, lambda c: c.linear.tile_out),
        ("linear.weight_buffering", "resident", lambda c: c.linear.weight_buffering),
        ("attention.parallel_queries", 8, lambda c: c.attention.parallel_queries),
        ("attention.order", "standard", lambda c: c.attention.order),
        ("clock_mhz", 250, lambda c: c.clock_mhz),
        ("variants.softmax", "base2", lambda c: c.variants.softmax),
        ("variants.gelu", "ivit", lambda c: c.variants.gelu),
        ("variants.layernorm", "isqrt", lambda c: c.variants.layernorm),
        ("memory.num_dram_ports", 2, lambda c: c.memory.num_dram_ports),
        ("moe.max_active_experts", 2, lambda c: c.moe.max_active_experts),
        ("precision", "w8a8", lambda c: c.precision),
        ("board.dram_bandwidth_gbps", 10.0, lambda c: c.board.dram_bandwidth_gbps),
        ("energy.dram_pj_per_byte", 50.0, lambda c: c.energy_model.dram_pj_per_byte),
    ],
)
def test_knob_sets_value_and_leaves_the_original(key: str, value: object, read) -> None:
    new = with_knob(EDGE, key, value)
    assert isinstance(new, HwConfig)
    assert read(new) == value
    assert read(EDGE) != value
    assert EDGE == load_hw_config("zcu102_edge_moe")
    changed = {f.name for f in dataclasses.fields(HwConfig)
               if getattr(new, f.name) != getattr(EDGE, f.name)}
    assert changed == {key.split(".")[0]}


def test_board_knob_takes_an_id_or_a_board() -> None:
    by_id = with_knob(EDGE, "board", "u280")
    assert by_id.board == load_board("u280")
    assert with_knob(EDGE, "board", load_board("u280")) == by_id
    assert by_id.energy_model.dram_pj_per_byte < EDGE.energy_model.dram_pj_per_byte


def test_clock_knob_normalises_to_float() -> None:
    new = with_knob(EDGE, "clock_mhz", 200)
    assert isinstance(new.clock_mhz, float)
    assert new.clock_period_ns == pytest.approx(5.0)


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("linear.tile_in", 0, "knob linear.tile_in: expected an integer >= 1, got 0"),
        ("attention.parallel_queries", 0,
         "knob attention.parallel_queries: expected an integer >= 1, got 0"),
        ("clock_mhz", 900,
         "knob clock_mhz: expected a clock <= 500 MHz (max_clock_mhz of board zcu102), got 900.0"),
        ("clock_mhz", "fast", "knob clock_mhz: expected a number > 0 MHz, got 'fast'"),
        ("variants.softmax", "exact",
         "knob variants.softmax: expected one of 'online', 'two_pass', 'base2', 'ibert', "
         "'ivit', got 'exact'"),
        ("board", "zcu999",
         "knob board: unknown board 'zcu999' (expected one of: zcu102, zcu104, kv260, "
         "ultra96v2, u50, u250, u280, vck190)"),
        ("linear.tile", 4,
         "knob linear.tile: unknown key (expected one of: linear.tile_in, linear.tile_out, "
         "linear.weight_buffering, linear.pipeline_ii)"),
        ("clock_mhz.max", 4, "knob clock_mhz.max: clock_mhz has no sub-keys"),
        ("board.max_clock_mhz", 250,
         "knob board.max_clock_mhz=250: board.default_clock_mhz: expected a clock <= "
         "max_clock_mhz (250 MHz), got 300.0"),
        ("", 1, "knob '': expected a dotted key such as 'linear.tile_in'"),
    ],
)
def test_knob_errors(key: str, value: object, message: str) -> None:
    with pytest.raises(UsageError) as info:
        with_knob(EDGE, key, value)
    assert str(info.value) == message


def test_board_knob_that_breaks_the_clock_names_both_keys() -> None:
    fast = with_knob(with_knob(EDGE, "board", "u280"), "clock_mhz", 450)
    with pytest.raises(UsageError) as info:
        with_knob(fast, "board", "ultra96v2")
    assert str(info.value) == (
        "knob board='ultra96v2': clock_mhz: expected a clock <= 400 MHz "
        "(max_clock_mhz of board ultra96v2), got 450.0"
    )


@given(st.integers(min_value=-(2**40), max_value=2**40))
def test_tile_knob_accepts_exactly_positive_integers(v: int) -> None:
    if v >= 1:
        assert with_knob(EDGE, "linear.tile_in", v).linear.tile_in == v
    else:
        with pytest.raises(UsageError, match=r"^knob linear\.tile_in: expected an integer >= 1"):
            with_knob(EDGE, "linear.tile_in", v)


@given(st.floats(allow_nan=True, allow_infinity=True))
def test_clock_knob_accepts_exactly_the_legal_range(v: float) -> None:
    if 0 < v <= EDGE.board.max_clock_mhz:
        assert with_knob(EDGE, "clock_mhz", v).clock_mhz == v
    else:
        with pytest.raises(UsageError, match=r"^knob clock_mhz: expected a"):
            with_knob(EDGE, "clock_mhz", v)
