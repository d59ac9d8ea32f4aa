"""Offline data: scikit-learn's 8x8 digits and users' own images, as model inputs."""

from vitaccel.data._digits import load_digits_split
from vitaccel.data._images import PIXEL_MAX, load_images

__all__ = ["load_digits_split", "load_images", "PIXEL_MAX"]
