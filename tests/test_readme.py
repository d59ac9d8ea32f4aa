"""README gives exactly the two commands, and CI runs the documented test command."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_readme_tags_one_main_and_one_test_command():
    text = (ROOT / "README.md").read_text()
    assert len(re.findall(r"# main-command\b", text)) == 1
    assert len(re.findall(r"# test-command\b", text)) == 1
    assert re.search(r"^make demo +# main-command", text, re.M)


def test_ci_script_extracts_the_readme_test_command():
    line = next(x for x in (ROOT / ".ci/run").read_text().splitlines() if x.startswith("cmd="))
    out = subprocess.run(["bash", "-c", f'{line}; printf %s "$cmd"'], cwd=ROOT,
                         capture_output=True, text=True, check=True)
    assert out.stdout == "make test"
