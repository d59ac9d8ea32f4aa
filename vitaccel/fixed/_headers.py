"""Locate the ``ap_fixed`` C++ headers (Xilinx ``ap_types``) for C-simulation."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from vitaccel.errors import UsageError

__all__ = ["ap_types_include_dir"]

_HLS4ML_SUBDIR = ("templates", "vivado", "ap_types")


def ap_types_include_dir(user_dir: str | Path | None = None) -> Path:
    """Directory that holds ``ap_fixed.h``.

    Parameters
    ----------
    user_dir : str or Path, optional
        A user-supplied include directory (e.g. ``<Vitis>/include``); used when given.

    Returns
    -------
    Path
        ``user_dir`` if given, else the ``ap_types`` directory shipped in the ``hls4ml`` wheel
        (found without importing hls4ml).

    Raises
    ------
    UsageError
        If ``user_dir`` lacks ``ap_fixed.h``, or no directory is given and hls4ml's copy is
        missing.
    """
    if user_dir is not None:
        path = Path(user_dir).expanduser()
        if not (path / "ap_fixed.h").is_file():
            raise UsageError(
                f"ap_types include dir {str(path)!r}: expected it to contain ap_fixed.h"
            )
        return path.resolve()
    spec = importlib.util.find_spec("hls4ml")
    if spec is None or not spec.submodule_search_locations:
        raise UsageError(
            "ap_types include dir: hls4ml is not installed; pip install hls4ml or pass the "
            "directory that contains ap_fixed.h"
        )
    for root in spec.submodule_search_locations:
        path = Path(root).joinpath(*_HLS4ML_SUBDIR)
        if (path / "ap_fixed.h").is_file():
            return path.resolve()
    raise UsageError(
        "ap_types include dir: the installed hls4ml has no templates/vivado/ap_types/ap_fixed.h; "
        "pass the directory that contains ap_fixed.h"
    )
