"""The Inpainting panel without widgets: the image, the mask painted over it, a run's Job that fills
the mask in (core.inpainting), and the recorded trajectory under a playhead in t (app.playhead).

The image and the mask are held at the model's size: the mask is an H×W bool array, True where the
model fills in (white in a mask image, as diffusers and AUTOMATIC1111 draw it). A brush marks the
pixels whose centres lie within its radius of the stroke; pixel (row i, column j) has its centre
at (x, y) = (j + ½, i + ½), the coordinates of an image item on screen.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from psygnal import Signal

from diffusion_studio.app.jobs import Job, JobSession, ShouldStop, job_device
from diffusion_studio.app.playhead import Playhead
from diffusion_studio.app.sampling import SamplingPreview, ended, preview
from diffusion_studio.core.control import RunControl
from diffusion_studio.core.errors import SettingError
from diffusion_studio.core.inpainting import check_mask, fit_image, fit_mask, image_shape
from diffusion_studio.core.provenance import output_metadata
from diffusion_studio.core.sample_config import SampleConfig, validate_sample_config
from diffusion_studio.core.trajectory import Trajectory

if TYPE_CHECKING:
    from diffusion_studio.core.loaded_model import LoadedModel

Point = tuple[float, float]
"""(x, y) in pixels of the image: x to the right, y down."""


def brush_pixels(size: tuple[int, int], centre: Point, radius: float, start: Point | None = None) -> np.ndarray:
    """The H×W pixels a round brush of ``radius`` covers at ``centre``, or along the stroke from
    ``start`` to ``centre``: those whose centres lie within ``radius`` of that segment."""
    height, width = size
    y, x = np.mgrid[0:height, 0:width] + 0.5
    (bx, by), (ax, ay) = centre, start or centre
    dx, dy = bx - ax, by - ay
    length = dx * dx + dy * dy
    along = np.clip(((x - ax) * dx + (y - ay) * dy) / length, 0.0, 1.0) if length else 0.0
    return (x - ax - along * dx) ** 2 + (y - ay - along * dy) ** 2 <= radius * radius


@dataclass(frozen=True)
class InpaintingRequest:
    """What a run fills in: the image and the mask as they were when it started."""

    image: np.ndarray  # H×W×C in [−1, 1], at the model's size
    mask: np.ndarray  # H×W bool, True: fill


@dataclass(frozen=True)
class InpaintingResult:
    trajectory: Trajectory
    final: np.ndarray  # the results at full precision: N×C×H×W
    cancelled: bool  # stopped by the user; the trajectory holds the steps done
    request: InpaintingRequest  # what was filled in


def _inpainting_items(model: LoadedModel, config: SampleConfig, request: InpaintingRequest, device: str,
                      control: RunControl, should_stop: ShouldStop):
    """The job's generator: every step, recorded on the worker's thread; returns the InpaintingResult
    (None if cancelled before the first step)."""
    from diffusion_studio.core.inpainting import record_inpainting

    recorder = yield from record_inpainting(model, config, request.image, request.mask, job_device(device), should_stop)
    if recorder.final is None:
        return None
    return InpaintingResult(recorder.trajectory(), recorder.final, control.stopped, request)


class InpaintingSession(JobSession, Playhead):
    """An image at the model's size, the mask painted over it, and inpainting runs of it: the last
    one's trajectory is scrubbed by the playhead."""

    imageChanged = Signal()  # a new image, or the image fitted to another model's size
    maskChanged = Signal()
    previewed = Signal(object)  # SamplingPreview while a run goes on
    trajectoryChanged = Signal()  # a run ended: the playhead is at the result
    finished = Signal(str)  # a run ended: what happened, in words

    def __init__(self, shape: tuple[int, int, int] = (1, 16, 16)) -> None:
        super().__init__()
        self.shape = shape  # (C, H, W) of the model's images (the bundled model's until set_model)
        self.source: np.ndarray | None = None  # the image as opened, any size
        self.name = ""
        self.image: np.ndarray | None = None  # H×W×C in [−1, 1], the source fitted to ``shape``
        self.mask = np.zeros(shape[1:], bool)  # True: the model fills in
        self.trajectory: Trajectory | None = None  # of the last run
        self.request: InpaintingRequest | None = None  # what the last run filled in (its image and mask)
        self.final: np.ndarray | None = None  # its results at full precision, N×C×H×W

    # ---- the image and the mask ---------------------------------------------------------------

    def set_model(self, model: LoadedModel) -> None:
        """Work at this model's size: the image is fitted again from its source, the mask resized
        (nearest pixel). SettingError for a model of 2-D points, leaving everything as it was."""
        shape = image_shape(model)
        if shape == self.shape:
            return
        self.shape = shape
        self.mask = fit_mask(self.mask, shape[1:])
        if self.source is not None:
            self.image = fit_image(self.source, shape)
        self.imageChanged.emit()
        self.maskChanged.emit()

    def set_image(self, source: np.ndarray, name: str) -> None:
        """Inpaint this H×W×C image in [−1, 1] (fitted to the model's size); the mask stays, so one
        mask can be tried on several images."""
        self.source = np.asarray(source, dtype=np.float32)
        self.name = name
        self.image = fit_image(self.source, self.shape)
        self.imageChanged.emit()

    def paint(self, centre: Point, radius: float, start: Point | None = None) -> None:
        """Mark the pixels under the brush (along the stroke from ``start``) to be filled in."""
        self._brush(brush_pixels(self.mask.shape, centre, radius, start), True)

    def erase(self, centre: Point, radius: float, start: Point | None = None) -> None:
        """Keep the pixels under the brush (along the stroke from ``start``) as the image has them."""
        self._brush(brush_pixels(self.mask.shape, centre, radius, start), False)

    def _brush(self, pixels: np.ndarray, fill: bool) -> None:
        if np.any(self.mask[pixels] != fill):
            self.mask[pixels] = fill
            self.maskChanged.emit()

    def clear(self) -> None:
        """Nothing to fill."""
        if self.mask.any():
            self.mask[:] = False
            self.maskChanged.emit()

    # ---- running ------------------------------------------------------------------------------

    def start(self, model: LoadedModel, config: SampleConfig, device: str = "cpu") -> Job:
        """A Job inpainting the image as it is now with ``model`` and ``config`` on ``device`` ("auto":
        the best here). SettingError or MaskError, before anything starts, if it cannot."""
        validate_sample_config(config)
        if image_shape(model) != self.shape:
            raise SettingError("model", "the image and mask are not at this model's size yet")
        if self.image is None:
            raise SettingError("image", "open an image to inpaint first")
        check_mask(self.mask)
        request = InpaintingRequest(self.image.copy(), self.mask.copy())
        self.stop_playing()
        return self._begin(lambda control, should_stop: _inpainting_items(model, config, request, device, control,
                                                                          should_stop), preview)

    def on_update(self, preview: SamplingPreview) -> None:
        self.previewed.emit(preview)

    def on_finished(self, result: InpaintingResult | None) -> None:
        self._set_running(False)
        if result is None:
            self.failed.emit("Cancelled before the first step")
            return
        self.trajectory, self.final, self.request = result.trajectory, result.final, result.request
        self.times = result.trajectory.timesteps
        self.t = int(self.times[-1])
        self.trajectoryChanged.emit()
        self.playheadChanged.emit(self.t)
        self.finished.emit(ended(result))

    def frame(self) -> int:
        """The frame of the trajectory that the playhead shows."""
        return self.trajectory.frame_at(self.t)

    def output_metadata(self) -> dict[str, Any]:
        """What a picture of the last run records (core.provenance)."""
        return output_metadata("inpaint", [self.trajectory.metadata])
