"""Exports of what the Sampling panel shows, without widgets: a GIF of the trajectory (or of a
comparison's rows, scrubbed together in t), or one PNG per frame. Each export is a Job that draws
and reports frame by frame on the worker, and each picture carries the runs' settings
(core.provenance), so the command line can sample them again."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
from psygnal import Signal

from diffusion_studio.app.jobs import Job, JobSession, ShouldStop
from diffusion_studio.app.sampling import SamplingSession
from diffusion_studio.core.export import comparison_frame, frame_picks, save_frame, save_gif, trajectory_frames
from diffusion_studio.core.trajectory import Trajectory

Drawing = Callable[[], np.ndarray]


@dataclass(frozen=True)
class GifOptions:
    """What File ▸ Export… asks for a GIF (the arguments of trajectory_frames and save_gif)."""

    with_x0: bool = False  # x_t beside x̂_0
    start: int = 0  # first frame
    stop: int | None = None  # one past the last frame; None: to the end
    every: int = 1
    fps: float = 12.0
    loop: bool = True
    scale: int = 4  # image grids enlarged this many times
    labels: bool = True  # t drawn on each frame


@dataclass(frozen=True)
class ExportProgress:
    """How far an export has got."""

    done: int  # frames drawn (and, for PNGs, written)
    total: int


def _trajectory_frame(trajectory: Trajectory, k: int, options: GifOptions, reference: np.ndarray | None) -> np.ndarray:
    """Frame k of a trajectory as trajectory_frames draws it."""
    return trajectory_frames(trajectory, with_x0=options.with_x0, start=k, stop=k + 1, reference=reference,
                             labels=options.labels, scale=options.scale if trajectory.is_image else 1)[0]


def frame_drawings(session: SamplingSession, options: GifOptions, reference: np.ndarray | None) -> list[Drawing]:
    """What an export of ``session`` draws, one function a frame (to call on the worker): the
    frames of its trajectory that the options pick, or a comparison's rows at the stops of its
    shared timeline that they pick; ``reference``: the points behind a 2-D model's cloud.
    SettingError if the options pick no frame."""
    if session.runs:
        trajectories, times = list(session.trajectories), session.times
        labels = [f"{run.label} · {run.nfe} NFE" for run in session.runs]
        scale = options.scale if trajectories[0].is_image else 1
        return [partial(comparison_frame, trajectories, labels, int(times[k]), options.with_x0, reference, scale)
                for k in frame_picks(len(times), options.start, options.stop, options.every)]
    trajectory = session.trajectory
    return [partial(_trajectory_frame, trajectory, k, options, reference)
            for k in frame_picks(len(trajectory), options.start, options.stop, options.every)]


def _gif_items(drawings: list[Drawing], path: Path, options: GifOptions, metadata: dict, should_stop: ShouldStop):
    """Draw every frame, reporting each, then write the GIF atomically; None, and no file, if stopped."""
    frames = []
    for drawing in drawings:
        if should_stop():
            return None
        frames.append(drawing())
        yield ExportProgress(len(frames), len(drawings))
    save_gif(frames, path, fps=options.fps, loop=options.loop, metadata=metadata)
    return path


def _frame_items(drawings: list[Drawing], folder: Path, metadata: dict, should_stop: ShouldStop):
    """Draw and write frame_0000.png …, reporting each; the folder, or None if stopped."""
    for i, drawing in enumerate(drawings):
        if should_stop():
            return None
        save_frame(drawing(), folder / f"frame_{i:04d}.png", metadata)
        yield ExportProgress(i + 1, len(drawings))
    return folder


def _newest(items: list[ExportProgress]) -> ExportProgress:
    return items[-1]


class ExportSession(JobSession):
    """One export at a time of what a SamplingSession shows."""

    progressed = Signal(object)  # ExportProgress
    exported = Signal(str)  # the path written
    stopped = Signal()  # the export was stopped before it wrote its file (or all its frames)

    def gif(self, sampling: SamplingSession, path: Path, options: GifOptions, reference: np.ndarray | None = None) -> Job:
        """A Job writing the GIF at ``path`` (SettingError, before anything starts, if the options pick no frame)."""
        drawings, metadata = frame_drawings(sampling, options, reference), sampling.output_metadata()
        return self._begin(lambda control, should_stop: _gif_items(drawings, path, options, metadata, should_stop), _newest)

    def frames(self, sampling: SamplingSession, folder: Path, options: GifOptions = GifOptions(scale=1),
               reference: np.ndarray | None = None) -> Job:
        """A Job writing one PNG per frame into ``folder``, as the GIF would show them."""
        drawings, metadata = frame_drawings(sampling, options, reference), sampling.output_metadata()
        return self._begin(lambda control, should_stop: _frame_items(drawings, folder, metadata, should_stop), _newest)

    def on_update(self, progress: ExportProgress) -> None:
        self.progressed.emit(progress)

    def on_finished(self, path: Path | None) -> None:
        self._set_running(False)
        if path is None:
            self.stopped.emit()
        else:
            self.exported.emit(str(path))
