"""Pictures of samples and trajectories: image grids, 2-D scatter plots, labelled frames, GIFs."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from diffusion_studio.core.atomic import atomic_write
from diffusion_studio.core.data.images import image_grid
from diffusion_studio.core.errors import SettingError
from diffusion_studio.core.process import q_sample
from diffusion_studio.core.provenance import gif_comment, png_info
from diffusion_studio.core.schedules import NoiseSchedule
from diffusion_studio.core.trajectory import Trajectory

REFERENCE_POINTS = 2000
"""How many of the data's points are drawn behind a cloud of samples: enough to show its shape,
few enough to draw at once."""


def reference_points(points: np.ndarray | None) -> np.ndarray | None:
    """The data's points drawn behind samples (at most REFERENCE_POINTS of them); None for none."""
    return None if points is None else points[:REFERENCE_POINTS]


SCATTER_EXTENT = 3.0
"""2-D plots with no data to fit show [−3, 3]²: the toy sets and N(0, I) fit inside."""
VIEW_MARGIN = 0.1
"""A 2-D plot fitted to the data adds this fraction of the data's larger side on every side."""


def point_view(reference: np.ndarray | None) -> tuple[float, float, float]:
    """The square a 2-D plot shows, as (centre x, centre y, half its side): the data's bounding box
    made square on its larger side, with VIEW_MARGIN of that side added all round; without data
    (or with no finite point), [−SCATTER_EXTENT, SCATTER_EXTENT]² (around a single point, that size)."""
    points = np.zeros((0, 2)) if reference is None else np.asarray(reference, dtype=np.float64)
    points = points[np.isfinite(points).all(axis=1)]
    if not len(points):
        return 0.0, 0.0, SCATTER_EXTENT
    low, high = points.min(axis=0), points.max(axis=0)
    side, centre = float((high - low).max()), (low + high) / 2
    return float(centre[0]), float(centre[1]), side * (0.5 + VIEW_MARGIN) if side > 0 else SCATTER_EXTENT


NOISE_BOX = np.array([[-3.0, -3.0], [3.0, 3.0]])
"""Where nearly all of x_T ~ N(0, I) lies: views of a reverse process hold it beside the data."""


def view_bounds(*clouds: np.ndarray | None) -> tuple[float, float, float, float]:
    """(x_min, x_max, y_min, y_max): the square point_view of these N×2 clouds and NOISE_BOX
    together, so that the whole reverse process, from x_T to the samples, stays in view."""
    given = [np.asarray(c, dtype=np.float64).reshape(-1, 2) for c in clouds if c is not None]
    cx, cy, half = point_view(np.concatenate([*given, NOISE_BOX]))
    return cx - half, cx + half, cy - half, cy + half


def grid_columns(count: int) -> int:
    """Columns of a near-square grid of ``count`` tiles."""
    return max(1, math.ceil(math.sqrt(count)))


def batch_grid(batch: np.ndarray, columns: int | None = None) -> np.ndarray:
    """An N×H×W×C uint8 batch as one grid image (near-square by default)."""
    return image_grid(list(batch), columns or grid_columns(len(batch)))


def forward_strip(schedule: NoiseSchedule, x0: np.ndarray, eps: np.ndarray, ts: Sequence[int]) -> np.ndarray:
    """x_t = √ᾱ_t x_0 + √(1 − ᾱ_t) ε side by side for each t in ``ts``, one ε for all; x_0 first
    when there are several. Raises SettingError for a t outside 0…T or no t at all."""
    bad = [t for t in ts if not 0 <= t <= schedule.timesteps]
    if not ts or bad:
        raise SettingError("t", f"each t must lie in 0…T = {schedule.timesteps}, got {bad or 'none'}")
    frames = [q_sample(schedule, x0, t, eps) for t in ts]
    if len(frames) > 1:
        frames.insert(0, x0)
    return image_grid(frames)


def scatter_frame(
    points: np.ndarray, size: int = 400, reference: np.ndarray | None = None,
    view: tuple[float, float, float] | None = None,
) -> np.ndarray:
    """N×2 points in blue over the reference points (the data) in grey, on a size² white canvas
    showing ``view`` (centre x, centre y, half side; default: point_view of the reference, so the
    axes fit the data). Grey lines mark x = 0 and y = 0 where they are in view."""
    cx, cy, half = point_view(reference) if view is None else view
    canvas = Image.new("RGB", (size, size), "white")
    draw = ImageDraw.Draw(canvas)
    scale = size / (2 * half)
    zero_x, zero_y = (half - cx) * scale, (cy + half) * scale
    if 0 <= zero_x < size:
        draw.line([(zero_x, 0), (zero_x, size)], fill=(225, 225, 225))
    if 0 <= zero_y < size:
        draw.line([(0, zero_y), (size, zero_y)], fill=(225, 225, 225))
    for cloud, colour in ((reference, (190, 190, 190)), (points, (31, 94, 200))):
        if cloud is None:
            continue
        xy = np.asarray(cloud, dtype=np.float64)
        px = (xy[:, 0] - cx + half) * scale
        py = (cy + half - xy[:, 1]) * scale
        inside = np.isfinite(px) & np.isfinite(py) & (px >= 0) & (px < size) & (py >= 0) & (py < size)
        for x, y in zip(px[inside], py[inside]):
            draw.ellipse((x - 1.5, y - 1.5, x + 1.5, y + 1.5), fill=colour)
    return np.asarray(canvas)


def label_frame(frame: np.ndarray, text: str) -> np.ndarray:
    """The frame with a white band on top holding ``text`` (e.g. "t = 500"), widened with white on
    the right when the text is wider than the frame."""
    font = ImageFont.load_default(size=max(10, min(frame.shape[1] // 12, 18)))
    band = font.size + 6
    rgb = frame if frame.shape[2] == 3 else np.repeat(frame, 3, axis=2)
    width = max(frame.shape[1], math.ceil(font.getlength(text)) + 8)
    canvas = Image.new("RGB", (width, frame.shape[0] + band), "white")
    canvas.paste(Image.fromarray(rgb), (0, band))
    ImageDraw.Draw(canvas).text((4, 3), text, fill=(20, 20, 20), font=font)
    return np.asarray(canvas)


def display_scale(trajectory: Trajectory, width: int) -> int:
    """How many times to enlarge an image trajectory's grid to be about ``width`` pixels wide (1 for points)."""
    return max(1, width // batch_grid(trajectory.x_t[0]).shape[1]) if trajectory.is_image else 1


def _panel(batch: np.ndarray, reference: np.ndarray | None, scale: int) -> np.ndarray:
    """One recorded batch as a picture: images as a grid enlarged ``scale`` times, points as a scatter."""
    if batch.ndim == 2:
        return scatter_frame(batch, reference=reference)
    return np.repeat(np.repeat(batch_grid(batch), scale, axis=0), scale, axis=1)


def frame_picks(count: int, start: int = 0, stop: int | None = None, every: int = 1) -> list[int]:
    """Frames ``start`` to ``stop`` (exclusive) of ``count``, every ``every``-th, and always the last
    in range, so that an animation ends on the result."""
    stop = count if stop is None else stop
    if every < 1 or not 0 <= start < stop <= count:
        raise SettingError("frames", f"need 0 ≤ start < stop ≤ {count} and every ≥ 1")
    picks = list(range(start, stop, every))
    if picks[-1] != stop - 1:
        picks.append(stop - 1)
    return picks


def trajectory_frames(
    trajectory: Trajectory,
    with_x0: bool = False,
    every: int = 1,
    start: int = 0,
    stop: int | None = None,
    reference: np.ndarray | None = None,
    labels: bool = True,
    scale: int = 1,
) -> list[np.ndarray]:
    """Display frames of a trajectory: the grid (or scatter) of x_t, optionally beside x̂_0.

    Frames ``start`` to ``stop`` (exclusive), every ``every``-th; the last frame in range is
    always kept so the animation ends on the result. Image grids are enlarged ``scale`` times
    (nearest neighbour) before the label is drawn, so the text stays sharp.
    """
    frames = []
    for k in frame_picks(len(trajectory), start, stop, every):
        frame = _panel(trajectory.x_t[k], reference, scale)
        if with_x0:
            frame = image_grid([frame, _panel(trajectory.pred_x0[k], reference, scale)], columns=2, pad=8)
        t = int(trajectory.timesteps[k])
        text = ("x_0 (result)" if t == 0 else f"t = {t}") + ("   |   left x_t, right x̂_0" if with_x0 else "")
        frames.append(label_frame(frame, text) if labels else frame)
    return frames


def comparison_frame(
    trajectories: Sequence[Trajectory],
    labels: Sequence[str],
    t: float,
    with_x0: bool = True,
    reference: np.ndarray | None = None,
    scale: int = 1,
) -> np.ndarray:
    """Several runs at one timestep t, a row each: the frame nearest t (``Trajectory.frame_at``),
    x_t beside x̂_0, under the run's label and that frame's own t. Runs of different step counts
    line up in t, not in frame number."""
    rows = []
    for trajectory, label in zip(trajectories, labels):
        k = trajectory.frame_at(t)
        panels = [_panel(trajectory.x_t[k], reference, scale)]
        if with_x0:
            panels.append(_panel(trajectory.pred_x0[k], reference, scale))
        shown = int(trajectory.timesteps[k])
        text = f"{label}   " + ("result" if shown == 0 else f"t = {shown}") + ("   (x_t | x̂_0)" if with_x0 else "")
        rows.append(label_frame(image_grid(panels, columns=len(panels), pad=8), text))
    width = max(row.shape[1] for row in rows)  # labels of different lengths may widen rows unequally
    return image_grid([np.pad(row, ((0, 0), (0, width - row.shape[1]), (0, 0)), constant_values=255) for row in rows],
                      columns=1, pad=6)


def comparison_times(trajectories: Sequence[Trajectory], frames: int) -> list[int]:
    """``frames`` timesteps from the largest any run starts at down to 0, evenly (fewer if they coincide)."""
    start = max(int(trajectory.timesteps[0]) for trajectory in trajectories)
    return sorted({int(t) for t in np.round(np.linspace(start, 0, max(frames, 2)))}, reverse=True)


def _as_image(frame: np.ndarray, scale: int) -> Image.Image:
    image = Image.fromarray(frame[:, :, 0] if frame.shape[2] == 1 else frame)
    if scale != 1:
        image = image.resize((image.width * scale, image.height * scale), Image.Resampling.NEAREST)
    return image


def save_gif(
    frames: Sequence[np.ndarray],
    path: str | Path,
    fps: float = 10.0,
    loop: bool = True,
    scale: int = 1,
    progress: Callable[[int, int], None] | None = None,
    metadata: Mapping[str, Any] | None = None,
) -> None:
    """An animated GIF of uint8 H×W×C frames, atomically, with the ``metadata`` (core.provenance)
    as its comment.

    Each colour frame is quantized to its own 256-colour palette first (fast octree), which is
    ~50× faster than leaving it to Pillow's GIF writer and looks the same. ``progress(done, total)``
    is called after each frame is prepared. GIF frame times count in hundredths of a second, so
    the duration 1000/fps ms is kept to 10 ms (8 fps plays at 120 ms a frame).
    """
    if not frames:
        raise SettingError("frames", "nothing to animate")
    if not (fps > 0 and scale >= 1):
        raise SettingError("gif", f"need fps > 0 and scale ≥ 1, got fps = {fps}, scale = {scale}")
    images = []
    for i, frame in enumerate(frames):
        image = _as_image(frame, scale)
        images.append(image if image.mode == "L" else image.quantize(256, method=Image.Quantize.FASTOCTREE))
        if progress is not None:
            progress(i + 1, len(frames))
    options = {"save_all": True, "append_images": images[1:], "duration": round(1000 / fps), "disposal": 1}
    if loop:
        options["loop"] = 0
    if metadata is not None:
        options["comment"] = gif_comment(metadata)
    with atomic_write(path) as handle:
        images[0].save(handle, format="GIF", **options)


def save_frame(frame: np.ndarray, path: str | Path, metadata: Mapping[str, Any] | None = None) -> None:
    """One uint8 H×W×C frame as a PNG, atomically, with the ``metadata`` (core.provenance) in its text chunks."""
    with atomic_write(path) as handle:
        _as_image(frame, 1).save(handle, format="PNG", pnginfo=None if metadata is None else png_info(metadata))
