"""``vitaccel estimate``: table, JSON output and exit codes."""

from __future__ import annotations

import json

import pytest

from vitaccel.cli import main

pytest.importorskip("torch")


@pytest.fixture
def tiny_model(tmp_path):
    path = tmp_path / "tiny.yaml"
    path.write_text("base: digits-dense\nname: tiny\ndepth: 1\n")
    return str(path)


def test_estimate_prints_table_and_writes_json(tiny_model, tmp_path, capsys):
    out = tmp_path / "sub" / "cost.json"
    assert main(["estimate", "--model", tiny_model, "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert "Cost estimate (model, not synthesis): tiny on kv260_default" in text
    assert "blocks.0.attn.qkv" in text and "latency" in text and "energy" in text
    data = json.loads(out.read_text())
    assert data["graph"] == "tiny" and data["hw"] == "kv260_default"
    assert data["total_cycles"] == sum(n["latency_cycles"] for n in data["nodes"])
    assert not list(out.parent.glob(".cost.json.*"))  # no temporary file left behind


def test_summary_omits_layers(tiny_model, capsys):
    assert main(["estimate", "--model", tiny_model, "--hw", "zcu102_edge_moe",
                 "--summary"]) == 0
    text = capsys.readouterr().out
    assert "zcu102" in text and "blocks.0.attn.qkv" not in text and "throughput" in text


@pytest.mark.parametrize(("args", "message"), [
    (["--hw", "no_such_board"], "hw config 'no_such_board'"),
    (["--precision", "w3a3"], "w3a3"),
])
def test_bad_arguments_exit_2(tiny_model, capsys, args, message):
    assert main(["estimate", "--model", tiny_model, *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("vitaccel estimate: error:") and message in err


def test_demo_has_an_estimate_step():
    from vitaccel.cli import _demo, _estimate

    assert any(step is _estimate.demo_step for _, step in _demo.STEPS)
