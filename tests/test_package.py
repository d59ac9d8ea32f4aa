"""Packaging: a non-editable install works from any directory, data files included."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out), str(ROOT)],
        check=True, capture_output=True, text=True,
    )
    (whl,) = out.glob("vitaccel-*.whl")
    return whl


def source_packages() -> set[str]:
    pkgs = {
        ".".join(p.parent.relative_to(ROOT).parts)
        for p in (ROOT / "vitaccel").rglob("__init__.py")
    }
    return pkgs | {"vitaccel.templates", "vitaccel.hw_configs"}


def test_wheel_contains_every_package_and_data_file(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    for pkg in source_packages():
        assert f"{pkg.replace('.', '/')}/__init__.py" in names, f"{pkg} missing from the wheel"
    for src, dst in (("templates", "vitaccel/templates"), ("hw_configs", "vitaccel/hw_configs")):
        for f in (ROOT / src).iterdir():
            if f.suffix in (".j2", ".yaml"):
                assert f"{dst}/{f.name}" in names, f"{src}/{f.name} missing from the wheel"


def test_installed_wheel_works_from_another_directory(wheel, tmp_path):
    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target),
         str(wheel)],
        check=True, capture_output=True, text=True,
    )
    code = (
        "import importlib.resources as r, vitaccel, vitaccel.hw as hw\n"
        f"assert vitaccel.__file__.startswith({str(target)!r}), vitaccel.__file__\n"
        "cfg = hw.load_hw_config('zcu102_edge_moe')\n"
        "assert cfg.clock_mhz == 300\n"
        "assert any(p.name.endswith('.j2') for p in r.files('vitaccel.templates').iterdir())\n"
        "print('ok')\n"
    )
    env_path = str(target)
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True,
        env={"PYTHONPATH": env_path, "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"
