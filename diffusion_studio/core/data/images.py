"""Robust image loading into float arrays in [−1, 1] (Ho et al. §3.3 scaling) and saving back.

Arrays are H×W×C float32, C = 1 (gray) or 3 (RGB). Whatever a user's file holds, the loader
returns such an array or raises ImageLoadError naming the file and the reason.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from diffusion_studio.core.atomic import atomic_write
from diffusion_studio.core.errors import FileReadError, ImageLoadError, SettingError
from diffusion_studio.core.files import open_regular

MAX_PIXELS = 50_000_000
"""Images above this many pixels are refused before decoding (decompression-bomb guard)."""
IMAGE_SUFFIXES = frozenset(
    {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".pbm", ".tga"}
)
"""File suffixes taken as images when a folder is read."""

_GRAY_MODES = {"1", "L", "LA", "La", "I", "F"}
_HIGH_DEPTH_MODES = {"I", "F"}


def _has_alpha(img: Image.Image) -> bool:
    return img.mode in ("RGBA", "RGBa", "LA", "La", "PA") or "transparency" in img.info


def _normalised(img: Image.Image) -> tuple[Image.Image, float, int]:
    """(image in mode L, RGB or F; the value of white in it; its natural channel count).

    Palette images are expanded, transparency is composited over white, CMYK and other colour
    spaces become RGB, 1-bit becomes L, 16- and 32-bit images become F without losing depth.
    """
    gray = img.mode in _GRAY_MODES or img.mode.startswith("I;16") or (
        img.mode == "P" and _palette_is_gray(img)
    )
    if img.mode.startswith("I;16") or img.mode in _HIGH_DEPTH_MODES:
        f = img.convert("F")
        values = np.asarray(f)
        if not np.all(np.isfinite(values)):
            raise ValueError("the image holds values that are not finite numbers")
        low, high = float(values.min()), float(values.max())
        if img.mode == "F":
            white = 1.0 if low >= 0.0 and high <= 1.0 else high
        else:
            white = 65535.0 if high <= 65535.0 else high
        return f, white or 1.0, 1
    if _has_alpha(img):
        rgba = img.convert("RGBA")
        flat = Image.alpha_composite(Image.new("RGBA", rgba.size, (255, 255, 255, 255)), rgba).convert("RGB")
        return (flat.convert("L") if gray else flat), 255.0, 1 if gray else 3
    if gray:
        return img.convert("L"), 255.0, 1
    return img.convert("RGB"), 255.0, 3


def _palette_is_gray(img: Image.Image) -> bool:
    palette = np.asarray(img.getpalette() or [], dtype=np.int32).reshape(-1, 3)
    return palette.size > 0 and bool(np.all(palette == palette[:, :1]))


def set_channels(array: np.ndarray, channels: int | None) -> np.ndarray:
    """Gray → RGB by repetition; RGB → gray by ITU-R 601 luma (as Pillow's "L")."""
    if channels is None or array.shape[2] == channels:
        return array
    if channels == 3:
        return np.repeat(array, 3, axis=2)
    luma = array @ np.array([0.299, 0.587, 0.114], dtype=array.dtype)
    return luma[:, :, None]


def open_image_file(path: Path) -> BinaryIO:
    """A picture's file opened for reading; ImageLoadError if it is missing, not a regular file (a
    folder, a pipe, a device) or empty."""
    try:
        handle = open_regular(path)
    except FileReadError as exc:
        raise ImageLoadError(path, exc.reason) from None
    if os.fstat(handle.fileno()).st_size == 0:
        handle.close()
        raise ImageLoadError(path, "the file is empty (0 bytes)")
    return handle


def load_image(
    path: str | Path,
    channels: int | None = None,
    max_side: int | None = None,
    max_pixels: int = MAX_PIXELS,
    square: int | None = None,
) -> np.ndarray:
    """Read any common image file as an H×W×C float32 array in [−1, 1] (x = 2·v/white − 1).

    channels: 1 or 3 to force gray or RGB; None keeps the file's own (gray stays gray).
    max_side: shrink (Lanczos, aspect kept) so that neither side exceeds it; None keeps the size.
    max_pixels: refuse larger images before decoding them.
    square: resize the shorter side to this and center-crop to a square (a model's input size).
    Animated and multi-page files give their first frame; EXIF orientation is applied.
    """
    path = Path(path)
    if channels not in (None, 1, 3):
        raise SettingError("channels", f"must be 1 (gray) or 3 (RGB), got {channels!r}")
    for setting, value in (("max_side", max_side), ("square", square)):
        if value is not None and value < 1:
            raise SettingError(setting, f"must be at least 1 pixel, got {value!r}")
    try:
        with warnings.catch_warnings(), open_image_file(path) as handle:
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(handle) as img:
                width, height = img.size
                if width * height > max_pixels:
                    raise ImageLoadError(
                        path,
                        f"{width}×{height} is {width * height / 1e6:.0f} megapixels, over the limit of "
                        f"{max_pixels / 1e6:.0f} (a possible decompression bomb)",
                    )
                if width == 0 or height == 0:
                    raise ImageLoadError(path, "the image has no pixels")
                img.seek(0)
                img.load()
                img = ImageOps.exif_transpose(img)
                flat, white, natural = _normalised(img)
                if max_side is not None and max(flat.size) > max_side:
                    flat.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
                if square is not None:
                    flat = ImageOps.fit(flat, (square, square), Image.Resampling.LANCZOS)
                array = np.asarray(flat, dtype=np.float32)
    except ImageLoadError:
        raise
    except UnidentifiedImageError:
        raise ImageLoadError(path, "not an image format that can be read") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageLoadError(path, f"too large to open safely, a possible decompression bomb ({exc})") from None
    except (OSError, ValueError, SyntaxError, EOFError, MemoryError) as exc:
        raise ImageLoadError(path, f"the file is damaged or unreadable ({exc})") from None
    if array.ndim == 2:
        array = array[:, :, None]
    array = np.clip(array / white, 0.0, 1.0) * 2.0 - 1.0
    return set_channels(array.astype(np.float32), channels if channels else natural)


def to_uint8(array: np.ndarray) -> np.ndarray:
    """[−1, 1] → 0…255 (v = round((x + 1)·127.5)), clipping values outside; shape kept."""
    return np.clip(np.rint((np.asarray(array, dtype=np.float32) + 1.0) * 127.5), 0, 255).astype(np.uint8)


def save_image(array: np.ndarray, path: str | Path) -> None:
    """Write an H×W, H×W×1 or H×W×3 array in [−1, 1] as a PNG, atomically."""
    path = Path(path)
    array = np.asarray(array)
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    if not (array.ndim == 2 or (array.ndim == 3 and array.shape[2] == 3)):
        raise SettingError("image", f"expected an H×W or H×W×3 array, got shape {array.shape}")
    image = Image.fromarray(to_uint8(array))
    with atomic_write(path) as handle:
        image.save(handle, format="PNG")


def image_grid(
    images: Sequence[np.ndarray], columns: int | None = None, pad: int = 2, pad_value: float | None = None
) -> np.ndarray:
    """Tile H×W×C images, row by row, with ``pad`` pixels of ``pad_value`` between them.

    Works on float images in [−1, 1] and on uint8 ones; the padding defaults to white in either.
    All images must share one size; gray ones are promoted to RGB when the others are colour.
    """
    if len(images) == 0:
        raise SettingError("images", "nothing to tile")
    shape = images[0].shape[:2]
    if any(im.shape[:2] != shape for im in images):
        raise SettingError("images", "all images in a grid must have the same size")
    channels = max(im.shape[2] for im in images)
    dtype = np.asarray(images[0]).dtype
    if pad_value is None:
        pad_value = 255 if dtype == np.uint8 else 1.0
    columns = min(columns or len(images), len(images))
    rows = -(-len(images) // columns)
    h, w = shape
    grid = np.full((rows * h + (rows - 1) * pad, columns * w + (columns - 1) * pad, channels), pad_value, dtype)
    for i, tile in enumerate(images):
        r, c = divmod(i, columns)
        grid[r * (h + pad) : r * (h + pad) + h, c * (w + pad) : c * (w + pad) + w] = set_channels(tile, channels)
    return grid


def image_files(paths: Sequence[str | Path]) -> list[Path]:
    """Files as given, and for each folder its image files (by suffix, sorted, not recursive)."""
    found: list[Path] = []
    for path in map(Path, paths):
        if path.is_dir():
            found.extend(sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()))
        else:
            found.append(path)
    return found


@dataclass(frozen=True)
class LoadedImages:
    """What ``load_images`` read, and what it could not read with the reason."""

    images: list[tuple[Path, np.ndarray]]
    failed: list[tuple[Path, str]]


def load_images(paths: Sequence[str | Path], max_side: int | None = None) -> LoadedImages:
    """load_image on every file of ``image_files(paths)``; one bad file never stops the others."""
    images, failed = [], []
    for path in image_files(paths):
        try:
            images.append((path, load_image(path, max_side=max_side)))
        except ImageLoadError as exc:
            failed.append((path, exc.reason))
    return LoadedImages(images, failed)
