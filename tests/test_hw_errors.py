"""Malformed hardware configs give one-line errors naming file, line, key and expectation."""

from __future__ import annotations

from pathlib import Path

import pytest

from vitaccel.errors import UsageError
from vitaccel.hw import load_board, load_hw_config

BASE = """\
board: zcu102
clock_mhz: 300
precision: edge-moe
linear:
  tile_in: 16
  tile_out: 16
  weight_buffering: pingpong
attention:
  order: reordered
  parallel_queries: 4
  head_dim_lanes: 8
variants:
  softmax: online
  gelu: delta_table
  layernorm: rsqrt_table
memory:
  dram_port_width_bits: 128
  num_dram_ports: 4
"""


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "cfg.yaml"
    path.write_text(text)
    return path


def _error(tmp_path: Path, text: str) -> str:
    path = _write(tmp_path, text)
    with pytest.raises(UsageError) as info:
        load_hw_config(path)
    message = str(info.value)
    assert "\n" not in message
    prefix = f"{path}:"
    assert message.startswith(prefix)
    return message[len(prefix):]


def test_base_is_valid_and_defaults_apply(tmp_path: Path) -> None:
    cfg = load_hw_config(_write(tmp_path, BASE))
    assert cfg.name == "cfg"
    assert cfg.linear.pipeline_ii == 1
    assert cfg.moe.expert_weight_buffering == "pingpong"
    assert cfg.description == ""
    assert isinstance(cfg.clock_mhz, float)


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("tile_in: 16", "tile_in: 0", "5: linear.tile_in: expected an integer >= 1, got 0"),
        ("tile_in: 16", "tile_in: '16'", "5: linear.tile_in: expected an integer >= 1, got '16'"),
        ("tile_in: 16", "tile_in: 2.5", "5: linear.tile_in: expected an integer >= 1, got 2.5"),
        ("tile_in: 16", "tile_in: true", "5: linear.tile_in: expected an integer >= 1, got True"),
        (
            "parallel_queries: 4",
            "parallel_queries: 0",
            "10: attention.parallel_queries: expected an integer >= 1, got 0",
        ),
        (
            "clock_mhz: 300",
            "clock_mhz: 600",
            "2: clock_mhz: expected a clock <= 500 MHz (max_clock_mhz of board zcu102), got 600.0",
        ),
        ("clock_mhz: 300", "clock_mhz: -5", "2: clock_mhz: expected a number > 0 MHz, got -5"),
        (
            "softmax: online",
            "softmax: fast",
            "13: variants.softmax: expected one of 'online', 'two_pass', 'base2', 'ibert', "
            "'ivit', got 'fast'",
        ),
        (
            "gelu: delta_table",
            "gelu: erf",
            "14: variants.gelu: expected one of 'delta_table', 'lut', 'tanh', 'ibert', 'ivit', "
            "got 'erf'",
        ),
        (
            "weight_buffering: pingpong",
            "weight_buffering: double",
            "7: linear.weight_buffering: expected one of 'single', 'pingpong', 'resident', "
            "got 'double'",
        ),
        (
            "dram_port_width_bits: 128",
            "dram_port_width_bits: 100",
            "17: memory.dram_port_width_bits: expected one of 32, 64, 128, 256, 512, 1024, "
            "got 100",
        ),
        (
            "precision: edge-moe",
            "precision: fp32",
            "3: precision: expected one of 'edge-moe', 'w16a16', 'w8a8', got 'fp32'",
        ),
        (
            "  order: reordered",
            "  ordr: reordered",
            "9: attention.ordr: unknown key (expected one of: av_kernel, head_dim_lanes, order, "
            "parallel_queries, qk_kernel)",
        ),
        ("  head_dim_lanes: 8\n", "", "8: attention.head_dim_lanes: missing (expected an "
         "integer >= 1)"),
        (
            "board: zcu102",
            "board: zcu999",
            "1: board: unknown board 'zcu999' (expected one of: zcu102, zcu104, kv260, "
            "ultra96v2, u50, u250, u280, vck190)",
        ),
        ("linear:\n", "linear: 16\nx:\n", "4: linear: expected a mapping, got 16"),
        ("board: zcu102", "board: zcu102\nboard: zcu104", "2: invalid YAML: duplicate key 'board'"),
    ],
)
def test_malformed_config_messages(tmp_path: Path, old: str, new: str, expected: str) -> None:
    assert old in BASE
    assert _error(tmp_path, BASE.replace(old, new, 1)) == expected


def test_unknown_top_level_key(tmp_path: Path) -> None:
    message = _error(tmp_path, BASE + "clock: 300\n")
    assert message.startswith("19: clock: unknown key (expected one of: attention, board, ")


def test_missing_section_and_board(tmp_path: Path) -> None:
    no_memory = BASE.split("memory:")[0]
    assert _error(tmp_path, no_memory) == "1: memory: missing (expected a mapping)"
    no_board = BASE.replace("board: zcu102\n", "")
    assert _error(tmp_path, no_board).startswith("1: board: missing (expected a board id")


def test_yaml_syntax_error_has_line(tmp_path: Path) -> None:
    text = BASE.replace("tile_out: 16", "tile_out: [16")
    assert _error(tmp_path, text).startswith("7: invalid YAML: ")


def test_document_must_be_a_mapping(tmp_path: Path) -> None:
    assert _error(tmp_path, "- 1\n") == "1: document: expected a mapping of config keys, got [1]"


def test_board_overrides_and_custom_board(tmp_path: Path) -> None:
    text = BASE.replace("board: zcu102", "board: {base: zcu102, dram_bandwidth_gbps: 10}")
    cfg = load_hw_config(_write(tmp_path, text))
    assert cfg.board.dram_bandwidth_gbps == 10.0
    assert cfg.board.dsp == load_board("zcu102").dsp
    bad = BASE.replace("board: zcu102", "board:\n  base: zcu102\n  dsp: -1")
    assert _error(tmp_path, bad) == "3: board.dsp: expected an integer >= 1, got -1"
    typo = BASE.replace("board: zcu102", "board:\n  base: zcu102\n  dsps: 1")
    assert _error(tmp_path, typo).startswith("3: board.dsps: unknown key (expected one of: ")
    custom = BASE.replace("board: zcu102", "board:\n  name: mine\n  part: XC\n  vivado_part: xc\n")
    assert _error(tmp_path, custom) == (
        "1: board.family: missing (expected one of 'zynq-ultrascale+', 'virtex-ultrascale+', "
        "'versal-ai-core')"
    )


def test_board_clock_consistency(tmp_path: Path) -> None:
    text = BASE.replace("board: zcu102", "board:\n  base: zcu102\n  max_clock_mhz: 250")
    assert _error(tmp_path, text) == (
        "1: board.default_clock_mhz: expected a clock <= max_clock_mhz (250 MHz), got 300.0"
    )


def test_energy_overrides(tmp_path: Path) -> None:
    cfg = load_hw_config(_write(tmp_path, BASE + "energy:\n  dram_pj_per_byte: 100\n"))
    assert cfg.energy_model.dram_pj_per_byte == 100.0
    assert cfg.energy_model.dsp_mac_pj == load_hw_config("zcu102_edge_moe").energy_model.dsp_mac_pj
    bad = BASE + "energy:\n  dsp_mac_pj: -1\n"
    assert _error(tmp_path, bad) == (
        "20: energy.dsp_mac_pj: expected a number >= 0 pJ or null, got -1"
    )


def test_unknown_name_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=r"^hw config 'nope': not a shipped config \(expected "
                       r"one of: .*zcu102_edge_moe.*\) or the path of a \.yaml file$"):
        load_hw_config("nope")
    with pytest.raises(UsageError, match=r"^hw config 'boards': not a shipped config"):
        load_hw_config("boards")
    missing = tmp_path / "absent.yaml"
    with pytest.raises(UsageError, match=rf"^hw config '{missing}': no such file$"):
        load_hw_config(missing)


def test_full_custom_board(tmp_path: Path) -> None:
    board = (
        "board:\n  name: mine\n  part: XCZU5EV-2SFVC784I\n  vivado_part: xczu5ev-sfvc784-2-i\n"
        "  family: zynq-ultrascale+\n  dsp: 1248\n  bram36: 144\n  uram: 64\n  lut: 117120\n"
        "  ff: 234240\n  memory_type: ddr4\n  dram_bandwidth_gbps: 19.2\n"
        "  default_clock_mhz: 250\n  max_clock_mhz: 450\n  static_power_w: 0.6"
    )
    cfg = load_hw_config(_write(tmp_path, BASE.replace("board: zcu102", board)))
    assert cfg.board.name == "mine"
    assert cfg.board.max_clock_mhz == 450.0
    assert cfg.board.dsp_kind == "dsp48e2"
