"""A recorded reverse process: the frames x_t and x̂_0 at each recorded step, compact and saveable.

Images are kept as uint8 N×H×W×C frames (display-ready, 1 byte a value); 2-D points as float32.
The last frame is the final sample x_0 at t = 0, or, for a run stopped early, the x_t it reached at
that t. Files are .npz, read with allow_pickle=False.
"""

from __future__ import annotations

import json
import math
import time
import zipfile
import zlib
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from diffusion_studio.core.atomic import atomic_write
from diffusion_studio.core.data.images import to_uint8
from diffusion_studio.core.errors import FileReadError, SettingError, TrajectoryError
from diffusion_studio.core.files import open_regular, parse_json
from diffusion_studio.core.marginals import Marginals, moments, path_marginals

if TYPE_CHECKING:
    import torch

    from diffusion_studio.core.sampling import SamplingRun, SamplingStep

FORMAT_VERSION = 1


@dataclass(frozen=True)
class Trajectory:
    """Frames of the reverse process; frame k shows timestep ``timesteps[k]`` (0 = the result)."""

    timesteps: np.ndarray  # (K,) int: the t of each frame, descending, ending at 0 (a stopped run: at the t it reached)
    x_t: np.ndarray  # (K, N, H, W, C) uint8 images, or (K, N, D) float32 points
    pred_x0: np.ndarray  # x̂_0 at each frame, same layout (at t = 0, the result itself; at a stopped run's last, the last x̂_0)
    metadata: dict[str, Any] = field(default_factory=dict)  # sampler, steps, seed, model …
    pred_eps: np.ndarray | None = None  # ε̂ at each frame, same layout (at t = 0, the last step's); None in older files
    moments: np.ndarray | None = None  # (K, 2) mean and std of each frame's x_t at full precision; None in older files

    @property
    def is_image(self) -> bool:
        return self.x_t.ndim == 5

    def marginals(self) -> Marginals | None:
        """Mean and std of x_t per frame (the marginals check, core.marginals), from the full-precision
        moments recorded, or from the frames of points; None for images recorded without them
        (their uint8 frames are clipped to [−1, 1])."""
        if self.moments is not None:
            return Marginals(self.timesteps, self.moments[:, 0], self.moments[:, 1])
        return None if self.is_image else path_marginals(self.timesteps, self.x_t)

    def __len__(self) -> int:
        return len(self.timesteps)

    def frame_at(self, t: float) -> int:
        """The frame whose timestep is nearest t (the later frame on a tie), so that trajectories of
        different step counts share one timeline in t."""
        distance = np.abs(self.timesteps.astype(np.float64) - t)
        return int(np.flatnonzero(distance == distance.min())[-1])


def stored_frame(x) -> np.ndarray:
    """A batch from the sampler (N×C×H×W or N×D tensor) as a stored frame."""
    array = x.numpy() if hasattr(x, "numpy") else np.asarray(x)
    if array.ndim == 4:
        return to_uint8(array.transpose(0, 2, 3, 1))
    return array.astype(np.float32)


def frame_bytes(shape: tuple[int, ...], is_image: bool) -> int:
    """Bytes one stored frame takes (x_t, x̂_0 and ε̂ together) for a batch of the given shape."""
    return 3 * int(np.prod(shape)) * (1 if is_image else 4)


def recorded_frame_count(num_steps: int, every: int) -> int:
    """Frames kept when recording every ``every``-th of ``num_steps`` steps, plus the result."""
    return -(-num_steps // every) + 1


class Recorder:
    """Collects sampling steps as they arrive: every ``every``-th step (from the first) and the x_t the
    last step landed on (the result, or where a stopped run stopped)."""

    def __init__(self, every: int = 1, metadata: dict[str, Any] | None = None) -> None:
        if every < 1:
            raise SettingError("record_every", f"must be at least 1, got {every}")
        self.every = every
        self.metadata = dict(metadata or {})
        self.timesteps: list[int] = []
        self.x_t: list[np.ndarray] = []
        self.pred_x0: list[np.ndarray] = []
        self.pred_eps: list[np.ndarray] = []
        self.moments: list[tuple[float, float]] = []
        self._last_eps = None
        self._last_x0 = None
        self.final: np.ndarray | None = None  # the last x_s seen, full precision: N×C×H×W or N×D
        self.reached = 0  # the s of that x_s: 0 once the run is done, the t it reached if it was stopped
        self.nfe = 0  # network evaluations up to the last step seen
        self.seconds = 0.0  # wall time of the run (record_run sets it)

    def add(self, step: SamplingStep) -> None:
        if step.index % self.every == 0:
            self.timesteps.append(step.t)
            self.x_t.append(stored_frame(step.x_t))
            self.pred_x0.append(stored_frame(step.pred_x0))
            self.pred_eps.append(stored_frame(step.pred_eps))
            self.moments.append(moments(step.x_t.numpy()))
        self._last_eps, self._last_x0 = step.pred_eps, step.pred_x0
        self.final, self.reached = step.x_prev.numpy(), step.prev_t
        self.nfe = step.nfe

    def trajectory(self) -> Trajectory:
        """The recorded frames, ending with the last x_s at its s: the result at t = 0, whose x̂_0 is
        itself, or the t a stopped run reached, with the last x̂_0 predicted."""
        if self.final is None:
            raise SettingError("trajectory", "the sampler produced no steps")
        result = stored_frame(self.final)
        return Trajectory(
            np.array(self.timesteps + [self.reached]),
            np.stack(self.x_t + [result]),
            np.stack(self.pred_x0 + [result if self.reached == 0 else stored_frame(self._last_x0)]),
            self.metadata,
            np.stack(self.pred_eps + [stored_frame(self._last_eps)]),
            np.array(self.moments + [moments(self.final)]),
        )


def record_run(
    run: SamplingRun,
    should_stop: Callable[[], bool] = lambda: False,
    x_start: torch.Tensor | None = None,
    metadata: dict[str, Any] | None = None,
) -> Generator[SamplingStep, None, Recorder]:
    """Drive a run (from ``x_start`` if given), recording as its config asks, with the run's own
    metadata and any more: yields every step, returns the Recorder with its NFE and seconds."""
    recorder = Recorder(run.config.record_every, {**run.metadata(), **(metadata or {})})
    started = time.perf_counter()
    for step in run.steps(should_stop, x_start=x_start):
        recorder.add(step)
        yield step
    recorder.seconds = time.perf_counter() - started
    return recorder


def save_trajectory(trajectory: Trajectory, path: str | Path) -> None:
    """Write a compressed .npz, atomically."""
    meta = json.dumps({"format_version": FORMAT_VERSION, **trajectory.metadata})
    arrays = {"timesteps": trajectory.timesteps, "x_t": trajectory.x_t, "pred_x0": trajectory.pred_x0}
    for name in ("pred_eps", "moments"):
        if getattr(trajectory, name) is not None:
            arrays[name] = getattr(trajectory, name)
    with atomic_write(path) as handle:
        np.savez_compressed(handle, metadata=np.array(meta), **arrays)


_ARRAYS = ("timesteps", "x_t", "pred_x0", "metadata", "pred_eps", "moments")
"""The arrays a trajectory file may hold; others in the archive are not read."""
DEFLATE_MAX_RATIO = 1100
"""Deflate expands at most ~1032-fold: an archive member claiming more is not a real one."""


def _read_arrays(path: Path) -> dict[str, np.ndarray]:
    """The arrays of an .npz, each allocated only after its header is checked against the bytes
    its member really holds (a header may claim terabytes). TrajectoryError otherwise."""
    arrays = {}
    with open_regular(path) as handle, zipfile.ZipFile(handle) as archive:
        for info in archive.infolist():
            name = info.filename.removesuffix(".npy")
            if name not in _ARRAYS:
                continue
            if info.file_size > DEFLATE_MAX_RATIO * max(info.compress_size, 1):
                raise TrajectoryError(f"'{path.name}': '{name}' claims {info.file_size:,} bytes, more than its "
                                      f"{info.compress_size:,} compressed bytes can hold")
            with archive.open(info) as member:
                version = np.lib.format.read_magic(member)
                read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
                shape, _, dtype = read_header(member)
            if dtype.hasobject or math.prod(shape) * dtype.itemsize > info.file_size:
                raise TrajectoryError(f"'{path.name}': '{name}' claims {shape} values of {dtype}, more than the file holds")
            with archive.open(info) as member:
                arrays[name] = np.lib.format.read_array(member, allow_pickle=False)
    return arrays


def load_trajectory(path: str | Path) -> Trajectory:
    """Read a file written by save_trajectory; anything else raises TrajectoryError."""
    path = Path(path)
    try:
        arrays = _read_arrays(path)
        missing = {"timesteps", "x_t", "pred_x0", "metadata"} - set(arrays)
        if missing:
            raise TrajectoryError(f"'{path.name}' is not a trajectory file (missing {', '.join(sorted(missing))})")
        timesteps, x_t, pred_x0 = arrays["timesteps"], arrays["x_t"], arrays["pred_x0"]
        pred_eps, frame_moments = arrays.get("pred_eps"), arrays.get("moments")
        metadata = parse_json(str(arrays["metadata"]))
    except FileReadError as exc:
        raise TrajectoryError(str(exc)) from None
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error) as exc:
        raise TrajectoryError(f"'{path.name}' cannot be read as a trajectory ({exc})") from None
    if not isinstance(metadata, dict):
        raise TrajectoryError(f"'{path.name}' has metadata that is not a JSON object")
    if timesteps.ndim != 1 or timesteps.dtype.kind not in "iu":
        raise TrajectoryError(f"'{path.name}' has timesteps of type {timesteps.dtype} and shape {timesteps.shape}, "
                              "expected one whole number per frame")
    if metadata.pop("format_version", None) != FORMAT_VERSION:
        raise TrajectoryError(f"'{path.name}' has an unknown trajectory format")
    if not (x_t.shape == pred_x0.shape and x_t.shape[:1] == timesteps.shape and x_t.ndim in (3, 5)) or (
        pred_eps is not None and pred_eps.shape != x_t.shape
    ):
        raise TrajectoryError(f"'{path.name}' has inconsistent frames {x_t.shape}, {pred_x0.shape}, {timesteps.shape}")
    if frame_moments is not None and (frame_moments.shape != (len(timesteps), 2) or frame_moments.dtype.kind != "f"):
        raise TrajectoryError(f"'{path.name}' has moments of shape {frame_moments.shape} and type {frame_moments.dtype} "
                              f"for {len(timesteps)} frames")
    image_dtype = np.uint8 if x_t.ndim == 5 else np.float32
    if any(a is not None and a.dtype != image_dtype for a in (x_t, pred_x0, pred_eps)):
        raise TrajectoryError(f"'{path.name}' holds frames of type {x_t.dtype}, expected {np.dtype(image_dtype).name}")
    return Trajectory(timesteps, x_t, pred_x0, metadata, pred_eps, frame_moments)
