"""scikit-learn's bundled 8x8 handwritten digits with a deterministic split."""

from __future__ import annotations

import numpy as np

from vitaccel.errors import UsageError

__all__ = ["load_digits_split", "DIGITS_LEVELS"]

DIGITS_LEVELS = 17
"""Digits pixels are integers 0..16; dividing by 17 keeps every pixel in ``[0, 1)``."""


def load_digits_split(
    seed: int = 0, test_fraction: float = 0.2
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Load the 1797 digits images and split them, stratified by class.

    Parameters
    ----------
    seed : int
        Seed of the split (the same seed always gives the same split).
    test_fraction : float
        Share of images in the test set (0.2 -> 360 test images).

    Returns
    -------
    x_train, y_train, x_test, y_test : ndarray
        Images float32 ``(N, 1, 8, 8)`` with pixel = value / 17 in ``[0, 16/17]``; labels int64
        ``(N,)`` in 0..9.
    """
    if not 0.0 < test_fraction < 1.0:
        raise UsageError(f"test_fraction: expected a value in (0, 1), got {test_fraction}")
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    data = load_digits()
    x = (data.images.astype(np.float32) / DIGITS_LEVELS).reshape(-1, 1, 8, 8)
    y = data.target.astype(np.int64)
    x_tr, x_te, y_tr, y_te = train_test_split(
        x, y, test_size=test_fraction, random_state=seed, stratify=y
    )
    return (
        np.ascontiguousarray(x_tr), np.ascontiguousarray(y_tr),
        np.ascontiguousarray(x_te), np.ascontiguousarray(y_te),
    )
