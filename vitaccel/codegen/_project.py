"""Writing a generated project to disk: all files or none."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path, PurePosixPath

from vitaccel.codegen._emit import MARKER
from vitaccel.errors import UsageError

__all__ = ["write_project"]


def _check_relative(name: str) -> PurePosixPath:
    p = PurePosixPath(name)
    if p.is_absolute() or not p.parts or ".." in p.parts:
        raise UsageError(f"write_project: file name {name!r} must be a relative path inside "
                         "the project")
    return p


def write_project(files: Mapping[str, str | bytes], out_dir: str | os.PathLike[str], *,
                  force: bool = False) -> Path:
    """Write ``emit``'s files into ``out_dir``, replacing an older vitaccel project there.

    The files go to a temporary sibling directory first, which then takes ``out_dir``'s
    place by renames, so an interrupted write never leaves a half-written project.

    Parameters
    ----------
    files : mapping
        Relative path -> text or bytes (as returned by ``emit``); must include the marker file.
    out_dir : path
        Target directory (created if missing).
    force : bool
        Replace a non-empty directory that is not a vitaccel project.

    Returns
    -------
    Path
        The project directory.

    Raises
    ------
    UsageError
        If ``out_dir`` is a file, or a non-empty directory without the project marker and
        ``force`` is not set.
    """
    if MARKER not in files:
        raise UsageError(f"write_project: files lack the project marker {MARKER!r} "
                         "(pass the result of vitaccel.emit)")
    names = {name: _check_relative(name) for name in files}
    for name, content in files.items():
        if not isinstance(content, str | bytes):
            raise UsageError(f"write_project: contents of {name!r} must be str or bytes, got "
                             f"{type(content).__name__}")
    out = Path(out_dir).expanduser().absolute()
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {str(out)!r}: exists and is not a directory")
    if out.is_dir() and any(out.iterdir()) and not (out / MARKER).is_file() and not force:
        raise UsageError(f"--out {str(out)!r}: non-empty directory that is not a vitaccel "
                         "project; use --force (force=True) to replace it")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        for name, rel in sorted(names.items()):
            path = tmp.joinpath(*rel.parts)
            path.parent.mkdir(parents=True, exist_ok=True)
            content = files[name]
            if isinstance(content, str):
                path.write_text(content, encoding="utf-8", newline="\n")
            else:
                path.write_bytes(content)
        if out.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
            old.rmdir()
            out.rename(old)
            tmp.rename(out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out
