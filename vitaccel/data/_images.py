"""User images: a folder of image files or an ``.npz`` of arrays, as model inputs."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from vitaccel.errors import UsageError
from vitaccel.models import ViTConfig, get_config

__all__ = ["load_images", "IMAGE_SUFFIXES", "PIXEL_MAX"]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm",
                  ".pgm", ".pbm")
PIXEL_MAX = 255 / 256
"""Largest pixel value: 8-bit images map to ``value / 256``, like an ``ap_ufixed<8,0>``."""

_MODES = {1: "L", 3: "RGB"}


def _read_image(path: Path, cfg: ViTConfig) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            img.load()
            img = img.convert(_MODES[cfg.in_chans])
            h, w = cfg.img_size
            if img.size != (w, h):
                img = img.resize((w, h), Image.Resampling.BILINEAR)
            arr = np.asarray(img, dtype=np.float32)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise UsageError(f"{path}: not a readable image ({type(exc).__name__})") from None
    if arr.ndim == 2:
        arr = arr[None]
    else:
        arr = arr.transpose(2, 0, 1)
    return arr / 256.0


def _labels_from_dirs(names: list[str]) -> dict[str, int]:
    if all(n.isdigit() for n in names):
        return {n: int(n) for n in names}
    return {n: i for i, n in enumerate(sorted(names))}


def _load_folder(root: Path, cfg: ViTConfig) -> tuple[np.ndarray, np.ndarray | None]:
    if cfg.in_chans not in _MODES:
        raise UsageError(
            f"{root}: image folders need a model with 1 or 3 input channels, "
            f"{cfg.name!r} has {cfg.in_chans}; give an .npz instead"
        )
    subdirs = sorted(p for p in root.iterdir() if p.is_dir())
    if subdirs:
        labels = _labels_from_dirs([p.name for p in subdirs])
        files = [(f, labels[d.name]) for d in subdirs for f in sorted(d.iterdir())]
    else:
        files = [(f, -1) for f in sorted(root.iterdir())]
    files = [(f, lab) for f, lab in files if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES]
    if not files:
        raise UsageError(
            f"{root}: no image files found (expected {', '.join(IMAGE_SUFFIXES)} files, "
            "optionally in one sub-folder per class)"
        )
    x = np.stack([_read_image(f, cfg) for f, _ in files]).astype(np.float32)
    y = np.array([lab for _, lab in files], dtype=np.int64) if subdirs else None
    return x, y


def _load_npz(path: Path, cfg: ViTConfig) -> tuple[np.ndarray, np.ndarray | None]:
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
    except (OSError, ValueError, EOFError) as exc:
        raise UsageError(f"{path}: not a readable .npz file ({type(exc).__name__})") from None
    if "x" not in arrays:
        raise UsageError(f"{path}: missing array 'x' (found: {', '.join(arrays) or 'none'})")
    x = arrays["x"]
    c, (h, w) = cfg.in_chans, cfg.img_size
    if x.ndim == 3 and c == 1:
        x = x[:, None]
    if x.ndim != 4:
        raise UsageError(f"{path}: array 'x' has shape {x.shape}; expected (N, {c}, {h}, {w})")
    if x.shape[1] != c and x.shape[3] == c and x.shape[1:3] == (h, w):
        x = x.transpose(0, 3, 1, 2)
    if x.shape[1] != c:
        raise UsageError(
            f"{path}: array 'x' has {x.shape[1]} channels; model {cfg.name!r} expects {c}"
        )
    if x.shape[2:] != (h, w):
        raise UsageError(
            f"{path}: array 'x' has images of {x.shape[2]}x{x.shape[3]}; model {cfg.name!r} "
            f"expects {h}x{w}"
        )
    if x.dtype == np.uint8:
        x = x.astype(np.float32) / 256.0
    elif np.issubdtype(x.dtype, np.floating):
        if not np.all(np.isfinite(x)) or x.min(initial=0.0) < 0 or x.max(initial=0.0) > 1:
            raise UsageError(f"{path}: array 'x' must hold pixels in [0, 1] (or uint8)")
        x = np.minimum(x.astype(np.float32), np.float32(PIXEL_MAX))
    else:
        raise UsageError(f"{path}: array 'x' has dtype {x.dtype}; expected uint8 or float")
    y = arrays.get("y")
    if y is not None:
        if y.shape != (x.shape[0],) or not np.issubdtype(y.dtype, np.integer):
            raise UsageError(
                f"{path}: array 'y' must hold {x.shape[0]} integer labels, got {y.dtype} "
                f"{y.shape}"
            )
        y = y.astype(np.int64)
    return np.ascontiguousarray(x), y


def load_images(
    path: str | Path, cfg: ViTConfig | str | Path
) -> tuple[np.ndarray, np.ndarray | None]:
    """Load user images as model inputs.

    Parameters
    ----------
    path : str or Path
        A folder of image files (read with Pillow; if the folder has sub-folders, each is one
        class: label = the folder name when all names are integers, else the index of the name in
        sorted order), or an ``.npz`` file with an array ``x`` (``(N, C, H, W)``, ``(N, H, W, C)``
        or, for one channel, ``(N, H, W)``; uint8 or floats in [0, 1]) and optionally ``y``.
    cfg : ViTConfig, preset name or YAML path
        The model the images are for (size and channels).

    Returns
    -------
    x : ndarray float32 ``(N, in_chans, H, W)``
        Pixels in ``[0, 255/256]``: 8-bit values become ``value / 256``; images are converted to
        grayscale or RGB and resized (bilinear) to ``cfg.img_size``; float ``.npz`` pixels are
        capped at 255/256. ``.npz`` arrays must already have the model's size and channels.
    y : ndarray int64 ``(N,)`` or None
        Labels when the source has them.

    Raises
    ------
    UsageError
        Missing or unreadable files, wrong channel counts, sizes or value ranges.
    """
    cfg = get_config(cfg)
    path = Path(path)
    if path.is_dir():
        return _load_folder(path, cfg)
    if path.is_file():
        if path.suffix.lower() != ".npz":
            raise UsageError(f"{path}: expected a folder of images or an .npz file")
        return _load_npz(path, cfg)
    raise UsageError(f"{path}: no such file or folder")
