"""Design-space files: parsing, errors naming file/line/key, sampling, pruning."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from vitaccel.dse import load_space, plan_points, sample_points
from vitaccel.dse._knobs import apply_precision
from vitaccel.errors import UsageError
from vitaccel.fixed import FixedType
from vitaccel.ir import Auto

BASE = """\
name: t
model: digits-dense
hw: kv260_default
precision: w16a16
"""


def _space(tmp_path: Path, body: str, base: str = BASE) -> Path:
    p = tmp_path / "space.yaml"
    p.write_text(base + body, encoding="utf-8")
    return p


def test_axes_ranges_and_defaults(tmp_path: Path) -> None:
    s = load_space(_space(tmp_path, """\
axes:
  linear.tile_in: [4, 8]
  attention.parallel_queries: {min: 1, max: 7, step: 3}
  precision.act.width: [8, 16]
  variants.softmax: [online, base2]
  board: [kv260, zcu102]
constraints: [fits, {fits: true}, "dsp_util <= 0.8"]
objectives: {minimize: [latency_ms], maximize: [accuracy]}
"""))
    assert s.keys == ("linear.tile_in", "attention.parallel_queries", "precision.act.width",
                      "variants.softmax", "board")
    assert s.axes[1].values == (1, 4, 7)
    assert s.grid_size == 2 * 3 * 2 * 2 * 2
    assert [a.numerics for a in s.axes] == [False, True, True, True, False]
    assert s.sampling.method == "grid" and s.reference
    assert s.reference_label == "base design (kv260_default)"
    assert [c.text for c in s.constraints] == ["fits", "fits == true", "dsp_util <= 0.8"]
    assert [str(o) for o in s.objectives] == ["min latency_ms", "max accuracy"]
    assert s.needs_accuracy is False
    assert len(s.sha256) == 64


@pytest.mark.parametrize("body, match", [
    ("axes:\n  linear.tile_inn: [4]\n", r"space\.yaml:6: axes\.linear\.tile_inn: unknown key"),
    ("axes:\n  linear.tile_in: [0]\n", r"space\.yaml:6: axes\.linear\.tile_in.*>= 1"),
    ("axes:\n  precision.actt.width: [8]\n", r":6: axes\.precision\.actt\.width: unknown"),
    ("axes:\n  precision.act.width: [8.5]\n", r"axes\.precision\.act\.width: expected an int"),
    ("axes:\n  precision.product.width: [8]\n", "full precision"),
    ("axes:\n  board: [nosuchboard]\n", r"axes\.board.*unknown board"),
    ("axes:\n  board: [kv260, zcu102]\n  clock_mhz: [600]\n", r":7: axes\.clock_mhz.*<= 400"),
    ("axes:\n  exits.threshold: [0.5]\n", "no exit heads"),
    ("axes:\n  linear.tile_in: []\n", "empty list"),
    ("axes:\n  linear.tile_in: [4, 4]\n", "given twice"),
    ("axes:\n  linear.tile_in: {min: 4, max: 2}\n", "min <= max"),
    ("axes:\n  linear.tile_in: {min: 4, top: 8}\n", r"axes\.linear\.tile_in\.top"),
    ("axes:\n  linear.tile_in: 4\n", "expected a list of values or a range"),
    ("axes: {}\n", "axes: expected a mapping"),
    ("axis:\n  linear.tile_in: [4]\n", r"space\.yaml:5: axis: unknown key"),
    ("axes:\n  linear.tile_in: [4]\nsampling: {method: sobol}\n", "sampling.method"),
    ("axes:\n  linear.tile_in: [4]\nsampling: {method: random}\n", "sampling.n"),
    ("axes:\n  linear.tile_in: [4]\nsampling: {method: grid, n: 3}\n", "sampling.n"),
    ("axes:\n  linear.tile_in: [4]\nconstraints: [\"dsp_utl < 1\"]\n", "'dsp_utl'"),
    ("axes:\n  linear.tile_in: [4]\nconstraints: [\"dsp_util <\"]\n", "constraint"),
    ("axes:\n  linear.tile_in: [4]\nobjectives: {minimise: [dsp]}\n", "objectives"),
    ("axes:\n  linear.tile_in: [4]\nreference: 3\n", "reference: expected"),
])
def test_malformed_spaces_name_file_line_and_key(tmp_path: Path, body: str, match: str) -> None:
    with pytest.raises(UsageError, match=match) as info:
        load_space(_space(tmp_path, body))
    assert "\n" not in str(info.value)
    assert "space.yaml" in str(info.value)


def test_missing_file_and_missing_keys(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="no such file"):
        load_space(tmp_path / "nope.yaml")
    with pytest.raises(UsageError, match="hw: missing"):
        load_space(_space(tmp_path, "axes:\n  clock_mhz: [100]\n", base="model: digits-dense\n"))
    with pytest.raises(UsageError, match="hw:.*not a shipped config"):
        load_space(_space(tmp_path, "axes:\n  clock_mhz: [100]\n", base="hw: nosuch\n"))


def test_width_knobs_keep_integer_bits_or_auto() -> None:
    p = apply_precision("edge-moe", {"precision.act.width": 16, "precision.weight.width": 8})
    assert p.roles["act"] == FixedType(16, 10)
    assert p.roles["weight"] == FixedType(8, 2)
    assert p.name == "edge-moe[act.width=16,weight.width=8]"
    q = apply_precision("w16a16", {"precision.act": "ap_fixed<12,4>", "precision.weight.width": 6})
    assert q.roles["act"] == FixedType(12, 4) and q.roles["weight"] == Auto(6)
    assert apply_precision("w8a8", {}).name == "w8a8"


def _grid_space(tmp_path: Path, sampling: str) -> Path:
    return _space(tmp_path, f"""\
axes:
  linear.tile_in: [2, 4, 8, 16]
  linear.tile_out: [4, 8, 16]
  clock_mhz: {{min: 100, max: 250, step: 50}}
sampling: {sampling}
""")


def test_grid_order_is_the_cartesian_product(tmp_path: Path) -> None:
    s = load_space(_grid_space(tmp_path, "grid"))
    pts = sample_points(s)
    expected = [dict(zip(s.keys, v, strict=True))
                for v in itertools.product(*(a.values for a in s.axes))]
    assert pts == expected


def test_random_sampling_is_distinct_seeded_and_in_grid_order(tmp_path: Path) -> None:
    s = load_space(_grid_space(tmp_path, "{method: random, n: 20, seed: 3}"))
    a, b = sample_points(s), sample_points(s)
    assert a == b and len(a) == 20
    grid = sample_points(load_space(_grid_space(tmp_path, "grid")))
    idx = [grid.index(p) for p in a]
    assert idx == sorted(set(idx))
    other = sample_points(load_space(_grid_space(tmp_path, "{method: random, n: 20, seed: 4}")))
    assert other != a
    assert len(sample_points(load_space(_grid_space(tmp_path, "{method: random, n: 999}")))) \
        == 48


def test_latin_hypercube_covers_every_value_of_every_axis(tmp_path: Path) -> None:
    s = load_space(_grid_space(tmp_path, "{method: lhs, n: 12, seed: 1}"))
    pts = sample_points(s)
    assert pts == sample_points(s)
    assert len({tuple(p.values()) for p in pts}) == len(pts)
    for axis in s.axes:
        # n = 12 strata over 3 or 4 values: each value gets 12 / len(values) samples
        counts = [sum(p[axis.key] == v for p in pts) for v in axis.values]
        if len(pts) == 12:
            assert counts == [12 // len(axis.values)] * len(axis.values)
        assert all(c > 0 for c in counts)


def test_pruning_uses_knobs_only_and_keeps_the_reference(tmp_path: Path) -> None:
    s = load_space(_space(tmp_path, """\
axes:
  linear.tile_in: [2, 4, 8, 16]
  linear.tile_out: [4, 8, 16]
constraints: ["linear.tile_in * linear.tile_out <= 64 and dsp_util <= 0.9", fits]
"""))
    plan = plan_points(s)
    kept = {p.pid for p in plan.points}
    for pid, knobs in enumerate(sample_points(s)):
        assert (pid in kept) == (knobs["linear.tile_in"] * knobs["linear.tile_out"] <= 64)
    assert plan.pruned == 12 - (len(kept) - 1)
    assert plan.points[-1].reference and plan.points[-1].pid == 12


def test_invalid_combinations_are_skipped_not_fatal(tmp_path: Path) -> None:
    s = load_space(_space(tmp_path, """\
axes:
  board: [kv260, zcu102]
  clock_mhz: [300, 450]
"""))
    plan = plan_points(s)
    assert plan.invalid == 1 and "clock_mhz" in plan.invalid_example
    assert len(plan.points) + plan.invalid == plan.sampled
