"""``vitaccel boards``: tables, one-config description, JSON, and exit code 2 on bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from vitaccel.cli import main
from vitaccel.hw import list_boards, list_hw_configs, load_board


def test_boards_table(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["boards"]) == 0
    out = capsys.readouterr().out
    for name in list_boards():
        board = load_board(name)
        row = next(line for line in out.splitlines() if line.startswith(name + " "))
        assert board.part in row
        assert f"{board.dsp:,}" in row and f"{board.lut:,}" in row and f"{board.ff:,}" in row
    for name in list_hw_configs():
        assert any(line.startswith(name) for line in out.splitlines())
    assert "kv260_default (default)" in out
    assert "estimates, not measurements" in out


def test_boards_describe_one(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["boards", "--hw", "zcu102_edge_moe"]) == 0
    out = capsys.readouterr().out
    assert "XCZU9EG-2FFVB1156E" in out
    assert "16x16 MACs/cycle" in out
    assert "reordered, P=4, 8 head-dim lanes" in out
    assert "4 x 128-bit ports = 19.2 GB/s; board 17.06 GB/s (ddr4); usable 17.06 GB/s" in out


def test_boards_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["boards", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert [b["name"] for b in doc["boards"]] == list_boards()
    assert [c["name"] for c in doc["configs"]] == list_hw_configs()
    assert doc["boards"][0]["dsp"] == load_board(list_boards()[0]).dsp


def test_unknown_config_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["boards", "--hw", "nope"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("vitaccel boards: error: hw config 'nope': not a shipped config")
    assert err.count("\n") == 1


def test_malformed_config_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    shipped = Path(__file__).resolve().parents[1] / "hw_configs" / "zcu102_edge_moe.yaml"
    text = shipped.read_text()
    assert "clock_mhz: 300\n" in text
    path = tmp_path / "bad.yaml"
    path.write_text(text.replace("clock_mhz: 300\n", "clock_mhz: 0\n"))
    line = 1 + text.splitlines().index("clock_mhz: 300")
    assert main(["boards", "--hw", str(path)]) == 2
    err = capsys.readouterr().err
    expected = f"{path}:{line}: clock_mhz: expected a number > 0 MHz, got 0"
    assert err == f"vitaccel boards: error: {expected}\n"
