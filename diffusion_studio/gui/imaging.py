"""Numpy images to what Qt and pyqtgraph display, without copies or conversions on the hot path."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtGui import QIcon, QImage, QPixmap

from diffusion_studio.core.data.images import to_uint8


def displayable(u8: np.ndarray) -> np.ndarray:
    """H×W×1 → H×W (gray), H×W×3 as it is; C-contiguous, for pyqtgraph's row-major ImageItem."""
    if u8.ndim == 3 and u8.shape[2] == 1:
        u8 = u8[:, :, 0]
    return np.ascontiguousarray(u8)


def qimage(u8: np.ndarray) -> QImage:
    """A QImage that owns a copy of an H×W, H×W×1 or H×W×3 uint8 array."""
    array = displayable(u8)
    height, width = array.shape[:2]
    if array.ndim == 2:
        return QImage(array.data, width, height, width, QImage.Format.Format_Grayscale8).copy()
    return QImage(array.data, width, height, 3 * width, QImage.Format.Format_RGB888).copy()


def thumbnail_icon(image: np.ndarray, side: int = 64) -> QIcon:
    """An icon of an H×W×C image in [−1, 1], at most ``side`` pixels on its longer edge."""
    pixmap = QPixmap.fromImage(qimage(to_uint8(image)))
    return QIcon(pixmap.scaled(side, side, Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.SmoothTransformation))


class ClosedFormRenderer:
    """x_t = √ᾱ_t x_0 + √(1 − ᾱ_t) ε straight to display bytes, for one fixed x_0 and ε.

    to_uint8(x) = round(127.5·x + 127.5), so the pixels are a·(127.5 x_0) + b·(127.5 ε) + 127.5
    with a = √ᾱ_t, b = √(1 − ᾱ_t): two scaled adds into preallocated buffers, a clip and a cast.
    """

    def __init__(self, x0: np.ndarray, eps: np.ndarray) -> None:
        self._x0 = (127.5 * np.asarray(x0, dtype=np.float32)).astype(np.float32)
        self._eps = (127.5 * np.asarray(eps, dtype=np.float32)).astype(np.float32)
        self._work = np.empty_like(self._x0)
        self._scratch = np.empty_like(self._x0)
        self._pixels = np.empty(self._x0.shape, dtype=np.uint8)

    def render(self, signal: float, noise: float) -> np.ndarray:
        """Pixels of signal·x_0 + noise·ε (a view into a buffer reused by the next call)."""
        np.multiply(self._x0, np.float32(signal), out=self._work)
        np.multiply(self._eps, np.float32(noise), out=self._scratch)
        self._work += self._scratch
        self._work += np.float32(128.0)  # +127.5, and +0.5 so that the cast below rounds
        np.clip(self._work, 0.0, 255.0, out=self._work)
        self._pixels[...] = self._work
        return displayable(self._pixels)


def show_pixels(item: pg.ImageItem, u8: np.ndarray) -> None:
    """Put uint8 pixels on an ImageItem the fastest way pyqtgraph has.

    With no levels and no lookup table, pyqtgraph wraps H×W or H×W×3 bytes in a QImage as they
    are; levels=(0, 255), though equivalent, make it rescale every pixel on every frame.
    """
    item.setImage(displayable(u8), autoLevels=False, levels=None)
