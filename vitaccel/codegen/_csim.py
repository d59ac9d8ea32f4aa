"""C-simulation of a generated project with g++ against the ap_fixed headers."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from vitaccel.codegen._emit import MARKER
from vitaccel.errors import UsageError
from vitaccel.fixed import ap_types_include_dir

__all__ = ["CsimResult", "csim", "compile_command"]

_SOURCES = ("kernel.cpp", "testbench.cpp")
_DATA = ("weights.bin", "data/images.bin", "data/golden_outputs.bin")
_WARNING = re.compile(r"^(?P<file>[^:\n]+):\d+:(?:\d+:)? warning: ", re.M)
_EXACT = re.compile(r"^bit-exact: (\d+)/(\d+) images$", re.M)
_MISMATCH = re.compile(r"^first (?:layer|output) mismatch: .*$", re.M)


@dataclass(frozen=True)
class CsimResult:
    """Outcome of one C-simulation.

    Attributes
    ----------
    passed : bool
        Compiled, ran, and every output and layer bit equals the simulator's.
    images, exact : int
        Images simulated and images whose every bit matched.
    mismatch : str or None
        Where the kernel first differs (``first layer mismatch: image i, layer l (name),
        element e: got code x, expected y``), if anywhere.
    compile_s, run_s : float
        Wall-clock seconds of the g++ compile (0 when ``build/csim`` was already built by
        the same command from the same sources) and of the testbench run.
    warnings : tuple of str
        Compiler warnings located in the project's own files (should be empty).
    log : str
        Compiler errors (if the compile failed) or the testbench output.
    """

    passed: bool
    images: int
    exact: int
    mismatch: str | None
    compile_s: float
    run_s: float
    warnings: tuple[str, ...] = field(default_factory=tuple)
    log: str = ""


def compile_command(include: Path, optimize: str, extra_flags: tuple[str, ...]) -> list[str]:
    """The g++ command line (run in the project directory) of the testbench ``build/csim``."""
    cxx = os.environ.get("CXX", "g++")
    return [cxx, "-std=c++17", optimize, "-Wall", "-Wno-unknown-pragmas", *extra_flags,
            "-isystem", str(include),
            "-I.", *_SOURCES, "-o", "build/csim"]


def _up_to_date(project: Path, cmd: list[str]) -> bool:
    """True when ``build/csim`` was built by ``cmd`` after every source and header changed."""
    binary, stamp = project / "build" / "csim", project / "build" / "csim.cmd"
    if not binary.is_file() or not stamp.is_file():
        return False
    if stamp.read_text().strip() != " ".join(cmd[:-2]):
        return False
    built = binary.stat().st_mtime
    return all(p.stat().st_mtime <= built for p in project.iterdir()
               if p.suffix in (".cpp", ".h"))


def _own_warnings(stderr: str, project: Path) -> tuple[str, ...]:
    own = []
    root = project.resolve()
    for m in _WARNING.finditer(stderr):
        path = Path(m.group("file"))
        path = path if path.is_absolute() else (project / path)
        try:
            path.resolve().relative_to(root)
        except ValueError:
            continue
        line_end = stderr.find("\n", m.start())
        own.append(stderr[m.start():line_end if line_end >= 0 else None])
    return tuple(own)


def csim(project_dir: str | os.PathLike[str], *, include_dir: str | os.PathLike[str] | None = None,
         optimize: str = "-O2", extra_flags: tuple[str, ...] = (),
         timeout_s: float | None = None) -> CsimResult:
    """Compile the project's kernel and testbench with g++ and run the testbench.

    Parameters
    ----------
    project_dir : path
        A directory written by ``write_project`` (with testbench data).
    include_dir : path, optional
        Directory holding ``ap_fixed.h`` (e.g. a Vitis installation's ``include``); default:
        the headers bundled with hls4ml (``vitaccel.fixed.ap_types_include_dir``). Passed with
        ``-isystem`` so that only warnings of the project's own files are reported. The flags
        are ``-std=c++17 <optimize> -Wall -Wno-unknown-pragmas`` (the ``#pragma HLS``
        directives are for Vitis HLS, not g++).
    optimize : str
        Optimisation flag (``-O2``; tests use ``-O1`` to compile faster).
    extra_flags : tuple of str
        More compiler flags (e.g. ``("-Wextra",)``).
    timeout_s : float, optional
        Limit on the testbench run (seconds).

    Returns
    -------
    CsimResult
        ``passed`` only if every bit of every image equals the simulator's.

    Raises
    ------
    UsageError
        If the directory is not a vitaccel project, lacks its test data, or no compiler or
        ap_fixed headers are found.
    """
    project = Path(project_dir).expanduser().absolute()
    if not (project / MARKER).is_file():
        raise UsageError(f"csim: {str(project)!r} is not a vitaccel project (no {MARKER}); "
                         "generate one with `vitaccel codegen`")
    needed = _SOURCES + (_DATA[1:] if (project / "weights_rom.h").is_file() else _DATA)
    missing = [f for f in needed if not (project / f).is_file()]
    if missing:
        raise UsageError(f"csim: project {str(project)!r} lacks {', '.join(missing)} "
                         "(generate it with images: `vitaccel codegen --images N`)")
    include = ap_types_include_dir(include_dir)
    cmd = compile_command(include, optimize, tuple(extra_flags))
    if shutil.which(cmd[0]) is None:
        raise UsageError(f"csim: C++ compiler {cmd[0]!r} not found (set CXX)")
    (project / "build").mkdir(exist_ok=True)
    compile_s, warnings = 0.0, ()
    if not _up_to_date(project, cmd):
        t0 = time.perf_counter()
        comp = subprocess.run(cmd, capture_output=True, text=True, cwd=project)
        compile_s = time.perf_counter() - t0
        warnings = _own_warnings(comp.stderr, project)
        if comp.returncode != 0:
            return CsimResult(False, 0, 0, "compile failed", compile_s, 0.0, warnings,
                              comp.stderr[-20000:])
        (project / "build" / "csim.cmd").write_text(" ".join(cmd[:-2]) + "\n")
    t0 = time.perf_counter()
    try:
        run = subprocess.run([str(project / "build" / "csim"), str(project)], capture_output=True,
                             text=True, cwd=project, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        return CsimResult(False, 0, 0, f"testbench ran over {timeout_s} s", compile_s,
                          time.perf_counter() - t0, warnings, "")
    run_s = time.perf_counter() - t0
    log = run.stdout + run.stderr
    m = _EXACT.search(log)
    exact, images = (int(m.group(1)), int(m.group(2))) if m else (0, 0)
    mism = _MISMATCH.findall(log)
    mismatch = mism[-1] if mism else (None if run.returncode == 0 else log.strip()[-500:])
    return CsimResult(run.returncode == 0 and m is not None and exact == images, images, exact,
                      mismatch, compile_s, run_s, warnings, log)
