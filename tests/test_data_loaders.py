"""Digits split and user image loading (folders of images, .npz), with their errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from vitaccel.data import PIXEL_MAX, load_digits_split, load_images
from vitaccel.errors import UsageError
from vitaccel.models import PRESETS, ViTConfig


def test_digits_split_is_deterministic_stratified_and_in_range() -> None:
    x_tr, y_tr, x_te, y_te = load_digits_split()
    assert x_tr.shape == (1437, 1, 8, 8) and x_te.shape == (360, 1, 8, 8)
    assert x_tr.dtype == np.float32 and y_tr.dtype == np.int64
    assert x_tr.min() == 0.0 and x_tr.max() == np.float32(16 / 17) and x_te.max() < 1.0
    np.testing.assert_array_equal(np.unique(np.round(x_tr * 17)), np.arange(17))
    counts = np.bincount(y_te, minlength=10)
    assert counts.min() >= 35 and counts.max() <= 37
    again = load_digits_split()
    np.testing.assert_array_equal(again[2], x_te)
    other = load_digits_split(seed=1)
    assert not np.array_equal(other[3], y_te)
    # no test image appears in the training set of the same split
    train_rows = {row.tobytes() for row in x_tr.reshape(len(x_tr), -1)}
    overlap = sum(row.tobytes() in train_rows for row in x_te.reshape(len(x_te), -1))
    assert overlap <= 2  # the digits set itself holds a few duplicate images


def test_digits_bad_fraction() -> None:
    with pytest.raises(UsageError, match="test_fraction"):
        load_digits_split(test_fraction=1.5)


RGB = ViTConfig(
    name="rgb", img_size=(8, 12), patch_size=4, in_chans=3, embed_dim=8, depth=1, num_heads=2,
    mlp_hidden=8, num_classes=3,
)


def _save(path: Path, arr: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path)


def test_folder_with_class_subfolders(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, (8, 12, 3), dtype=np.uint8)
    b = rng.integers(0, 256, (16, 24, 3), dtype=np.uint8)
    _save(tmp_path / "cat" / "1.png", a)
    _save(tmp_path / "dog" / "2.png", b)
    (tmp_path / "dog" / "notes.txt").write_text("not an image")
    x, y = load_images(tmp_path, RGB)
    assert x.shape == (2, 3, 8, 12) and x.dtype == np.float32
    np.testing.assert_array_equal(y, [0, 1])
    np.testing.assert_array_equal(x[0], a.transpose(2, 0, 1) / 256.0)
    assert x.max() <= PIXEL_MAX
    resized = np.asarray(Image.fromarray(b).resize((12, 8), Image.Resampling.BILINEAR))
    np.testing.assert_array_equal(x[1], resized.transpose(2, 0, 1) / 256.0)


def test_numeric_subfolders_and_grayscale(tmp_path: Path) -> None:
    img = np.full((8, 8), 255, dtype=np.uint8)
    _save(tmp_path / "7" / "a.png", img)
    _save(tmp_path / "3" / "b.png", np.stack([img] * 3, -1))
    x, y = load_images(tmp_path, "digits-dense")
    np.testing.assert_array_equal(y, [3, 7])
    assert x.shape == (2, 1, 8, 8) and np.all(x == PIXEL_MAX)


def test_flat_folder_has_no_labels(tmp_path: Path) -> None:
    _save(tmp_path / "a.bmp", np.zeros((8, 8), dtype=np.uint8))
    x, y = load_images(tmp_path, PRESETS["digits-dense"])
    assert y is None and x.shape == (1, 1, 8, 8)


def test_folder_errors(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="no image files"):
        load_images(tmp_path, RGB)
    (tmp_path / "broken.png").write_bytes(b"\x89PNG garbage")
    with pytest.raises(UsageError, match="broken.png: not a readable image"):
        load_images(tmp_path, RGB)
    with pytest.raises(UsageError, match="no such file or folder"):
        load_images(tmp_path / "absent", RGB)
    odd = ViTConfig(name="odd", img_size=(8, 8), patch_size=4, in_chans=2, embed_dim=8, depth=1,
                    num_heads=2, mlp_hidden=8, mean=(0.5, 0.5), std=(0.5, 0.5))
    with pytest.raises(UsageError, match="1 or 3 input channels"):
        load_images(tmp_path, odd)


def test_npz_layouts_and_labels(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    x = rng.integers(0, 256, (4, 8, 12, 3), dtype=np.uint8)
    np.savez(tmp_path / "hwc.npz", x=x, y=np.arange(4))
    got, y = load_images(tmp_path / "hwc.npz", RGB)
    np.testing.assert_array_equal(got, x.transpose(0, 3, 1, 2) / 256.0)
    np.testing.assert_array_equal(y, np.arange(4))
    f = np.linspace(0, 1, 64, dtype=np.float32).reshape(1, 8, 8)
    np.savez(tmp_path / "gray.npz", x=f)
    got, y = load_images(tmp_path / "gray.npz", "digits-dense")
    assert y is None and got.shape == (1, 1, 8, 8) and got.max() == np.float32(PIXEL_MAX)
    np.testing.assert_array_equal(got.ravel()[:-1], f.ravel()[:-1])


@pytest.mark.parametrize(
    "arrays,pattern",
    [
        ({"images": np.zeros((1, 1, 8, 8))}, "missing array 'x'"),
        ({"x": np.zeros((2, 3, 8, 8), np.uint8)}, "has 3 channels; model 'digits-dense' expects 1"),
        ({"x": np.zeros((2, 1, 16, 16), np.uint8)}, "images of 16x16; .* expects 8x8"),
        ({"x": np.full((1, 1, 8, 8), 2.0)}, r"pixels in \[0, 1\]"),
        ({"x": np.zeros((1, 1, 8, 8), np.int32)}, "dtype int32"),
        ({"x": np.zeros((2, 1, 8, 8)), "y": np.zeros(3, np.int64)}, "'y' must hold 2 integer"),
        ({"x": np.zeros((8, 8))}, "has shape"),
    ],
)
def test_npz_errors(tmp_path: Path, arrays: dict, pattern: str) -> None:
    path = tmp_path / "bad.npz"
    np.savez(path, **arrays)
    with pytest.raises(UsageError, match=pattern) as info:
        load_images(path, "digits-dense")
    assert str(path) in str(info.value)


def test_unreadable_npz_and_wrong_suffix(tmp_path: Path) -> None:
    (tmp_path / "bad.npz").write_bytes(b"nope")
    with pytest.raises(UsageError, match="not a readable .npz"):
        load_images(tmp_path / "bad.npz", "digits-dense")
    (tmp_path / "x.csv").write_text("1,2")
    with pytest.raises(UsageError, match="expected a folder of images or an .npz"):
        load_images(tmp_path / "x.csv", "digits-dense")
