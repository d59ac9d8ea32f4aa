"""Writing projects (atomic, refusing foreign directories) and the codegen/csim CLI."""

from __future__ import annotations

import pytest

from vitaccel.cli import main
from vitaccel.codegen import write_project
from vitaccel.codegen._emit import MARKER
from vitaccel.errors import UsageError

FILES = {MARKER: "{}\n", "kernel.cpp": "// k\n", "data/images.bin": b"\x00" * 8}


def test_write_project_creates_and_replaces_a_project(tmp_path):
    out = write_project(FILES, tmp_path / "p")
    assert (out / "data" / "images.bin").read_bytes() == b"\x00" * 8
    (out / "stale.txt").write_text("old")
    write_project({**FILES, "kernel.cpp": "// new\n"}, out)
    assert (out / "kernel.cpp").read_text() == "// new\n"
    assert not (out / "stale.txt").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p"]  # no temporary leftovers


def test_write_project_refuses_a_foreign_directory_without_force(tmp_path):
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    with pytest.raises(UsageError, match="not a vitaccel project; use --force"):
        write_project(FILES, foreign)
    assert (foreign / "notes.txt").read_text() == "keep me"
    write_project(FILES, foreign, force=True)
    assert not (foreign / "notes.txt").exists()


def test_failed_write_leaves_the_old_project_intact(tmp_path, monkeypatch):
    from pathlib import Path

    out = write_project(FILES, tmp_path / "p")
    real = Path.write_bytes

    def disk_full(self, data):
        if self.name == "images.bin":
            raise OSError(28, "No space left on device")
        return real(self, data)

    monkeypatch.setattr(Path, "write_bytes", disk_full)
    with pytest.raises(OSError, match="No space left"):
        write_project({**FILES, "kernel.cpp": "// new\n"}, out)
    assert (out / "kernel.cpp").read_text() == "// k\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p"]


def test_write_project_rejects_other_contents(tmp_path):
    with pytest.raises(UsageError, match="must be str or bytes, got int"):
        write_project({**FILES, "x.bin": 12345}, tmp_path / "p")
    assert not (tmp_path / "p").exists()


@pytest.mark.parametrize("name", ["../x", "/abs/x"])
def test_write_project_rejects_paths_outside(tmp_path, name):
    with pytest.raises(UsageError, match="relative path inside"):
        write_project({**FILES, name: "x"}, tmp_path / "p")


def test_write_project_needs_the_marker(tmp_path):
    with pytest.raises(UsageError, match="marker"):
        write_project({"kernel.cpp": ""}, tmp_path / "p")


def _ivit_hw(tmp_path):
    """The default KV260 configuration with the I-ViT integer-only units."""
    import importlib.resources

    text = importlib.resources.files("vitaccel.hw_configs").joinpath("kv260_default.yaml")
    text = text.read_text()
    for unit, default in (("softmax", "online"), ("gelu", "delta_table"),
                          ("layernorm", "rsqrt_table")):
        assert f"  {unit}: {default}" in text
        text = text.replace(f"  {unit}: {default}", f"  {unit}: ivit")
    path = tmp_path / "kv260_ivit.yaml"
    path.write_text(text)
    return path


def test_cli_codegen_then_csim(tmp_path, capsys):
    model = tmp_path / "digits-random.yaml"
    model.write_text("base: digits-dense\nname: digits-random\ndepth: 1\n")
    out = tmp_path / "hls"
    rc = main(["codegen", "--model", str(model), "--precision", "w16a16", "--out", str(out),
               "--hw", str(_ivit_hw(tmp_path)), "--images", "2"])
    assert rc == 0
    assert "testbench data: 2 image(s)" in capsys.readouterr().out
    assert main(["csim", str(out)]) == 0
    assert "bit-exact: 2/2 images" in capsys.readouterr().out
    golden = out / "data" / "golden_outputs.bin"
    data = bytearray(golden.read_bytes())
    data[0] ^= 1
    golden.write_bytes(bytes(data))
    assert main(["csim", str(out)]) == 1  # the binary is reused: no second compile
    text = capsys.readouterr().out
    assert "bit-exact: 1/2 images" in text and "first output mismatch: image 0" in text
    assert main(["codegen", "--model", str(model), "--out", str(tmp_path / "hls"),
                 "--images", "0"]) == 0  # replacing a vitaccel project needs no --force


def test_cli_usage_errors_exit_2(tmp_path, capsys):
    assert main(["csim", str(tmp_path)]) == 2
    assert "is not a vitaccel project" in capsys.readouterr().err
    (tmp_path / "f.txt").write_text("x")
    assert main(["codegen", "--model", "digits-dense", "--out", str(tmp_path),
                 "--images", "-1"]) == 2


