"""Training data, all in memory and offline: an image folder, the bundled digits, 2-D toy sets.

Images come as N×C×S×S float32 in [−1, 1]; points as N×2 float32, roughly unit scale. Sets with
classes keep a label per sample, 0…K−1: the digits their digit, a Gaussian mixture each point's
component, the other toy sets a natural split (below); image folders and points files without a
label column have none.
"""

from __future__ import annotations

import gzip
import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

import numpy as np
from PIL import Image

from diffusion_studio.core.atomic import atomic_write
from diffusion_studio.core.data.images import IMAGE_SUFFIXES, load_image
from diffusion_studio.core.errors import DataError, FileReadError, ImageLoadError
from diffusion_studio.core.files import open_regular
from diffusion_studio.resources import RESOURCES

DIGITS_FILE = RESOURCES / "data" / "digits.csv.gz"
TOY_POINTS = 20_000
HELD_OUT_EVERY = 10
"""Every 10th digit of the file (rows 9, 19, …: 179 of 1,797) is held out: training on "digits"
never sees them, so the bound and inversion can be measured on digits the model has not learned."""
DigitSplit = Literal["train", "held_out", "all"]


@dataclass(frozen=True)
class Dataset:
    """A data set ready for training."""

    name: str  # "digits", a toy's name, or the folder's path
    data: np.ndarray  # N×C×S×S images in [−1, 1], or N×D points
    skipped: tuple[tuple[str, str], ...] = field(default=())  # (file name, reason) of unreadable files
    labels: np.ndarray | None = None  # N int64 class labels 0…num_classes−1; None: unlabelled
    num_classes: int = 0  # K, the classes the labels name (some may have no sample); 0 when unlabelled

    def __post_init__(self) -> None:
        if self.labels is None:
            if self.num_classes:
                raise DataError(f"'{self.name}': num_classes = {self.num_classes} but no labels")
            return
        if self.labels.shape != (len(self.data),):
            raise DataError(f"'{self.name}': {self.labels.shape} labels for {len(self.data)} samples")
        if len(self.labels) and not (0 <= self.labels.min() and self.labels.max() < self.num_classes):
            raise DataError(f"'{self.name}': labels must lie in 0…{self.num_classes - 1}")

    @property
    def is_image(self) -> bool:
        return self.data.ndim == 4

    @property
    def value_range(self) -> tuple[float, float]:
        """Where the data's values lie: [−1, 1] for images (by construction), the least and greatest
        coordinate for points. Samplers keep x̂_0 within it."""
        if self.is_image:
            return -1.0, 1.0
        return float(self.data.min()), float(self.data.max())


def load_image_folder(root: str | Path, image_size: int, channels: int | None = None) -> Dataset:
    """Every image under ``root`` (recursively), resized and center-cropped to image_size².

    Files with an image suffix that cannot be read are skipped and listed in ``skipped``.
    channels: 1 or 3; None takes RGB unless every readable image is gray.
    """
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"'{root}' is not a folder")
    candidates = sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if not candidates:
        raise DataError(f"the folder '{root.name}' holds no image files ({', '.join(sorted(IMAGE_SUFFIXES))})")
    arrays, skipped = [], []
    for path in candidates:
        try:
            arrays.append(load_image(path, channels=channels, square=image_size))
        except ImageLoadError as exc:
            skipped.append((str(path.relative_to(root)), exc.reason))
    if not arrays:
        raise DataError(f"none of the {len(candidates)} image files in '{root.name}' could be read (first: {skipped[0][1]})")
    wanted = channels or max(a.shape[2] for a in arrays)
    data = np.stack([a if a.shape[2] == wanted else np.repeat(a, wanted, axis=2) for a in arrays])
    return Dataset(str(root), np.ascontiguousarray(data.transpose(0, 3, 1, 2)), tuple(skipped))


def load_digits(image_size: int = 16, split: DigitSplit = "train") -> Dataset:
    """The 8×8 handwritten digits (UCI, Alpaydin & Kaynak 1998) upscaled to image_size²: the 1,618
    trained on, the 179 held out (every ``HELD_OUT_EVERY``-th), or all 1,797, labelled 0…9 by digit.

    Pixel counts 0…16 become gray levels (white ink on black), resized with bicubic filtering.
    """
    with gzip.open(DIGITS_FILE, "rt") as handle:
        table = np.loadtxt(handle, delimiter=",", dtype=np.float32)
    held_out = np.arange(len(table)) % HELD_OUT_EVERY == HELD_OUT_EVERY - 1
    if split != "all":
        table = table[held_out if split == "held_out" else ~held_out]
    pixels = (table[:, :64] * (255.0 / 16.0)).reshape(-1, 8, 8)
    resized = np.stack(
        [np.asarray(Image.fromarray(p, "F").resize((image_size, image_size), Image.Resampling.BICUBIC)) for p in pixels]
    )
    data = np.clip(resized / 127.5 - 1.0, -1.0, 1.0).astype(np.float32)
    name = "digits" if split == "train" else f"digits ({split.replace('_', '-')})"
    return Dataset(name, data[:, None], labels=table[:, 64].astype(np.int64), num_classes=DIGIT_CLASSES)


DIGIT_CLASSES = 10
"""The digits' classes, 0…9: the file's last column."""
Points = tuple[np.ndarray, np.ndarray]
"""A toy set's N×2 points and their N labels."""


def swiss_roll(n: int, rng: np.random.Generator) -> Points:
    """The 2015 paper's Swiss roll: u ~ U(1.5π, 4.5π), (u cos u, u sin u)/6, slight noise; labelled
    by the half of the arm it lies on: 0 inner (u < 3π), 1 outer."""
    u = rng.uniform(1.5 * math.pi, 4.5 * math.pi, n)
    points = np.stack([u * np.cos(u), u * np.sin(u)], axis=1) / 6.0
    return points + 0.05 * rng.standard_normal((n, 2)), (u >= 3 * math.pi).astype(np.int64)


def two_moons(n: int, rng: np.random.Generator) -> Points:
    """Two interleaved half circles, centred on the origin; labelled by moon: 0 upper, 1 lower."""
    angle = rng.uniform(0, math.pi, n)
    upper = rng.random(n) < 0.5
    x = np.where(upper, np.cos(angle), 1.0 - np.cos(angle))
    y = np.where(upper, np.sin(angle), 0.5 - np.sin(angle))
    points = (np.stack([x - 0.5, y - 0.25], axis=1) + 0.05 * rng.standard_normal((n, 2))) * 1.5
    return points, (~upper).astype(np.int64)


EIGHT_GAUSSIANS_RADIUS = 1.5
EIGHT_GAUSSIANS_STD = 0.1


def eight_gaussians(n: int, rng: np.random.Generator) -> Points:
    """Eight Gaussians of std 0.1 evenly on a circle of radius 1.5 (core.mixture.EIGHT_GAUSSIANS), labelled
    by component k = 0…7, the one at angle kπ/4."""
    component = rng.integers(0, 8, n)
    k = component * (math.pi / 4)
    points = EIGHT_GAUSSIANS_RADIUS * np.stack([np.cos(k), np.sin(k)], axis=1) + EIGHT_GAUSSIANS_STD * rng.standard_normal((n, 2))
    return points, component.astype(np.int64)


def checkerboard(n: int, rng: np.random.Generator) -> Points:
    """Uniform on the black squares of a 4×4 board covering [−2, 2]², labelled by square 0…7:
    2·column + half, column = ⌊x + 2⌋ from the left, half = ⌊(y + 2)/2⌋ (1 above y = 0)."""
    x = rng.uniform(-2, 2, n)
    y = rng.uniform(0, 1, n) + rng.integers(0, 2, n) * 2 - 2
    y = y + np.floor(x) % 2
    square = 2 * np.floor(x + 2) + np.floor((y + 2) / 2)
    return np.stack([x, y], axis=1), square.astype(np.int64)


TOY_SETS: dict[str, Callable[[int, np.random.Generator], Points]] = {
    "swiss_roll": swiss_roll,
    "two_moons": two_moons,
    "eight_gaussians": eight_gaussians,
    "checkerboard": checkerboard,
}
TOY_CLASSES: dict[str, int] = {"swiss_roll": 2, "two_moons": 2, "eight_gaussians": 8, "checkerboard": 8}
"""How many classes each toy set's labels name."""
BUILTIN_SETS: tuple[str, ...] = ("digits", *TOY_SETS)
POINTS_SUFFIX = ".csv"
"""A data source ending so is a file of 2-D points (x,y per line, or x,y,label), such as the 2-D lab's drawings."""
LABEL_COLUMN = "label"
"""The header of a points file's optional third column: each point's class, a whole number ≥ 0."""


def load_toy(name: str, n: int = TOY_POINTS, seed: int = 0) -> Dataset:
    """n points of a named 2-D toy set with their labels, the same for the same seed."""
    if name not in TOY_SETS:
        raise DataError(f"unknown toy set '{name}' (choose from {', '.join(TOY_SETS)})")
    points, labels = TOY_SETS[name](n, np.random.default_rng(seed))
    return Dataset(name, points.astype(np.float32), labels=labels, num_classes=TOY_CLASSES[name])


def is_points_file(source: str) -> bool:
    """True if the data source names a file of 2-D points (``POINTS_SUFFIX``)."""
    return source.lower().endswith(POINTS_SUFFIX)


def save_points(points: np.ndarray, path: str | Path, labels: np.ndarray | None = None) -> Path:
    """Points (N×D) as CSV, one point per line under an "x,y" header (with ``labels``, a third
    column "label" of whole numbers), written atomically."""
    names = ["xyzw"[i] if points.shape[1] <= 4 else f"x{i}" for i in range(points.shape[1])]
    rows = [[f"{v:.6g}" for v in row] for row in points]
    if labels is not None:
        names.append(LABEL_COLUMN)
        rows = [row + [str(int(label))] for row, label in zip(rows, labels)]
    text = ",".join(names) + "\n" + "".join(",".join(row) + "\n" for row in rows)
    with atomic_write(path) as handle:
        handle.write(text.encode())
    return Path(path)


def load_points_file(path: str | Path) -> Dataset:
    """A CSV of points, one per line (a header line is allowed): your own 2-D data set; a third
    column holds each point's class label (whole numbers ≥ 0; K = the greatest + 1)."""
    path = Path(path)
    try:
        with open_regular(path) as handle:
            lines = handle.read().decode("utf-8").splitlines()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # an empty file: reported below
            points = np.loadtxt(lines, delimiter=",", dtype=np.float64, ndmin=2,
                                skiprows=1 if lines and _is_header(lines[0]) else 0)
    except FileReadError as exc:
        raise DataError(f"'{path.name}' is not a CSV of points with one point per line ({exc.reason})") from None
    except (OSError, ValueError) as exc:
        raise DataError(f"'{path.name}' is not a CSV of points with one point per line ({exc})") from None
    if len(points) < 2 or points.shape[1] not in (2, 3):
        raise DataError(f"'{path.name}' needs at least 2 points of 2 coordinates (x,y per line, or x,y,label); "
                        f"it holds {len(points)} of {points.shape[1]}")
    if not np.all(np.isfinite(points)):
        raise DataError(f"'{path.name}' holds coordinates that are not finite numbers")
    if points.shape[1] == 2:
        return Dataset(str(path), points.astype(np.float32))
    labels = points[:, 2]
    if np.any(labels < 0) or np.any(labels != np.round(labels)):
        raise DataError(f"'{path.name}': its third column, the labels, must hold whole numbers ≥ 0")
    labels = labels.astype(np.int64)
    return Dataset(str(path), points[:, :2].astype(np.float32), labels=labels, num_classes=int(labels.max()) + 1)


def _is_header(first: str) -> bool:
    """True if a file's first line is not a row of numbers (a header such as "x,y")."""
    try:
        [float(value) for value in first.split(",")]
    except ValueError:
        return True
    return False


def load_dataset(source: str, image_size: int = 16, channels: int | None = None, seed: int = 0) -> Dataset:
    """A built-in set by name ("digits", "swiss_roll", …), a CSV of points or an image folder by path."""
    if source == "digits":
        return load_digits(image_size)
    if source in TOY_SETS:
        return load_toy(source, seed=seed)
    if is_points_file(source):
        return load_points_file(source)
    if Path(source).is_dir():
        return load_image_folder(source, image_size, channels)
    raise DataError(f"'{source}' is neither a folder, a CSV of points nor a built-in data set ({', '.join(BUILTIN_SETS)})")


def evaluation_set(source: str, image_size: int, channels: int) -> Dataset:
    """Images to measure an image model on, at its size and channels: for "digits" the held-out
    digits (never trained on), for a folder every image in it."""
    if source == "digits":
        digits = load_digits(image_size, "held_out")
        return digits if channels == 1 else replace(digits, data=np.repeat(digits.data, channels, axis=1))
    if source in TOY_SETS:
        raise DataError(f"'{source}' holds 2-D points; bits per dimension are measured on images")
    if Path(source).is_dir():
        return load_image_folder(source, image_size, channels)
    raise DataError(f"'{source}' is neither a folder of images nor 'digits'")


def held_out_digit(number: int, size: int = 16, channels: int = 1) -> np.ndarray:
    """Held-out digit ``number`` (1…179, as the app counts them) as C×H×W in [−1, 1]."""
    digits = evaluation_set("digits", size, channels).data
    if not 1 <= number <= len(digits):
        raise DataError(f"there are {len(digits)} held-out digits, numbered 1…{len(digits)}; got {number}")
    return digits[number - 1]
