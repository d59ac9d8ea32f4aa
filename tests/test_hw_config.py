"""Shipped boards and hardware configs: they load, validate and carry the vendor figures."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from vitaccel.errors import UsageError
from vitaccel.hw import (
    DEFAULT_HW_CONFIG,
    Board,
    EnergyModel,
    HwConfig,
    list_boards,
    list_hw_configs,
    load_board,
    load_hw_config,
)

# (part, DSP, BRAM36, URAM, LUT, FF, GB/s) from the vendor data sheets cited in boards.yaml.
VENDOR_FACTS = {
    "zcu102": ("XCZU9EG-2FFVB1156E", 2520, 912, 0, 274_080, 548_160, 17.06),
    "zcu104": ("XCZU7EV-2FFVC1156E", 1728, 312, 96, 230_400, 460_800, 17.06),
    "kv260": ("XCK26-SFVC784-2LV-C", 1248, 144, 64, 117_120, 234_240, 19.2),
    "ultra96v2": ("XCZU3EG-1SBVA484E", 360, 216, 0, 70_560, 141_120, 8.53),
    "u50": ("XCU50-FSVH2104-2-E", 5952, 1344, 640, 871_680, 1_743_360, 316.0),
    "u250": ("XCU250-FIGD2104-2L-E", 12_288, 2688, 1280, 1_728_000, 3_456_000, 77.0),
    "u280": ("XCU280-FSVH2892-2L-E", 9024, 2016, 960, 1_303_680, 2_607_360, 460.0),
    "vck190": ("XCVC1902-2MSEVSVA2197", 1968, 967, 463, 899_840, 1_799_680, 25.6),
}

VIVADO_PARTS = {
    "zcu102": "xczu9eg-ffvb1156-2-e",
    "zcu104": "xczu7ev-ffvc1156-2-e",
    "kv260": "xck26-sfvc784-2LV-c",
    "ultra96v2": "xczu3eg-sbva484-1-e",
    "u50": "xcu50-fsvh2104-2-e",
    "u250": "xcu250-figd2104-2L-e",
    "u280": "xcu280-fsvh2892-2L-e",
    "vck190": "xcvc1902-vsva2197-2MP-e-S",
}


def test_every_required_board_is_shipped() -> None:
    assert list_boards() == list(VENDOR_FACTS)


@pytest.mark.parametrize("name", list(VENDOR_FACTS))
def test_board_matches_vendor_figures(name: str) -> None:
    b = load_board(name)
    assert isinstance(b, Board)
    got = (b.part, b.dsp, b.bram36, b.uram, b.lut, b.ff, b.dram_bandwidth_gbps)
    assert got == VENDOR_FACTS[name]
    assert b.name == name
    assert 0 < b.default_clock_mhz <= b.max_clock_mhz
    assert b.static_power_w > 0
    assert b.dsp_kind == ("dsp58" if name == "vck190" else "dsp48e2")
    assert b.vivado_part == VIVADO_PARTS[name]


def test_board_memory_types() -> None:
    kinds = {n: load_board(n).memory_type for n in list_boards()}
    assert kinds["u50"] == kinds["u280"] == "hbm2"
    assert kinds["ultra96v2"] == "lpddr4"
    assert kinds["u250"] == kinds["zcu102"] == "ddr4"


def test_shipped_configs_include_edge_moe_and_default() -> None:
    names = list_hw_configs()
    assert "zcu102_edge_moe" in names
    assert DEFAULT_HW_CONFIG in names
    assert "boards" not in names


@pytest.mark.parametrize("name", list_hw_configs())
def test_every_shipped_config_loads(name: str) -> None:
    cfg = load_hw_config(name)
    assert isinstance(cfg, HwConfig)
    assert cfg.name == name
    assert cfg.board == load_board(cfg.board.name)
    assert cfg.clock_mhz <= cfg.board.max_clock_mhz
    assert cfg.description


def test_edge_moe_config_is_the_published_design() -> None:
    cfg = load_hw_config("zcu102_edge_moe")
    assert cfg.board.name == "zcu102"
    assert cfg.clock_mhz == 300.0
    assert cfg.precision == "edge-moe"
    assert (cfg.linear.tile_in, cfg.linear.tile_out, cfg.linear.pipeline_ii) == (16, 16, 1)
    assert cfg.linear.weight_buffering == "pingpong"
    assert cfg.linear.macs_per_cycle == 256
    assert cfg.attention.order == "reordered"
    assert cfg.attention.parallel_queries == 4
    assert cfg.attention.head_dim_lanes == 8
    assert (cfg.variants.softmax, cfg.variants.gelu) == ("online", "delta_table")
    assert cfg.moe.patch_reordering is True
    assert cfg.moe.max_active_experts is None


def test_shipped_config_by_path_equals_by_name() -> None:
    path = Path(__file__).resolve().parents[1] / "hw_configs" / "zcu102_edge_moe.yaml"
    assert load_hw_config(path) == load_hw_config("zcu102_edge_moe")
    assert load_hw_config(str(path)) == load_hw_config("zcu102_edge_moe")


def test_configs_are_frozen_and_hashable() -> None:
    cfg = load_hw_config("zcu102_edge_moe")
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.clock_mhz = 100.0  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.linear.tile_in = 1  # type: ignore[misc]
    assert hash(cfg) == hash(load_hw_config("zcu102_edge_moe"))


def test_replace_revalidates() -> None:
    cfg = load_hw_config("zcu102_edge_moe")
    with pytest.raises(UsageError, match=r"^tile_in: expected an integer >= 1, got 0$"):
        dataclasses.replace(cfg.linear, tile_in=0)
    with pytest.raises(UsageError, match=r"^clock_mhz: expected a clock <= 500 MHz"):
        dataclasses.replace(cfg, clock_mhz=501)


def test_bandwidth_properties() -> None:
    cfg = load_hw_config("zcu102_edge_moe")
    # 4 ports x 16 bytes x 300 MHz = 19.2 GB/s; the board's DDR4-2133 (17.06 GB/s) limits.
    assert cfg.port_bandwidth_gbps == pytest.approx(19.2)
    assert cfg.dram_bandwidth_gbps == pytest.approx(17.06)
    kv = load_hw_config("kv260_default")
    assert kv.port_bandwidth_gbps == pytest.approx(16.0)  # ports at 250 MHz are the limit
    assert kv.dram_bandwidth_gbps == pytest.approx(16.0)
    assert cfg.clock_period_ns == pytest.approx(10 / 3)


def test_default_energy_models_follow_technology() -> None:
    def model(board: str) -> EnergyModel:
        return dataclasses.replace(load_hw_config("zcu102_edge_moe"), board=load_board(board),
                                   clock_mhz=200.0).energy_model

    zcu, u280, vck, u96 = model("zcu102"), model("u280"), model("vck190"), model("ultra96v2")
    assert u280.dram_pj_per_byte < u96.dram_pj_per_byte < zcu.dram_pj_per_byte  # HBM<LP<DDR4
    assert vck.dsp_mac_pj < zcu.dsp_mac_pj  # 7 nm below 16 nm
    assert zcu.dsp_mac_pj == u280.dsp_mac_pj  # same 16 nm fabric
