"""The Bound panel without widgets: the variational bound of a model measured t by t, averaged over
held-out images, as the view fills (core.bound)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from psygnal import Signal

from diffusion_studio.app.jobs import Job, JobSession, ShouldStop, job_device
from diffusion_studio.core.control import RunControl, tagged

if TYPE_CHECKING:
    from diffusion_studio.core.bound import BoundSummary
    from diffusion_studio.core.loaded_model import LoadedModel
    from diffusion_studio.core.vlb import BoundStep


@dataclass(frozen=True)
class BoundSettings:
    """What to measure on."""

    data: str | None = None  # "digits" (held out), a folder, or None: what the model was trained on
    num: int = 32  # images
    variance: str = "beta"  # σ_t² = β_t or β̃_t
    seed: int = 0


@dataclass(frozen=True)
class BoundProgress:
    """Terms computed since the last update: their t and their mean over the images, bits/dim."""

    t: np.ndarray
    bits: np.ndarray
    timesteps: int  # T
    data_name: str
    num: int


def _digest(items: list[tuple[tuple[str, int, int], BoundStep]]) -> BoundProgress:
    """The steps since the last update, averaged over the images (on the worker's thread)."""
    (data_name, num, timesteps), _ = items[-1]
    return BoundProgress(np.array([step.t for _, step in items]),
                         np.array([float(step.bits.double().mean()) for _, step in items]), timesteps, data_name, num)


def _bound_items(model: LoadedModel, settings: BoundSettings, device: str, control: RunControl, should_stop: ShouldStop):
    """The job's generator: ((data name, images, T), step) per t; returns the BoundSummary (None if stopped)."""
    from diffusion_studio.core.bound import BoundSummary, measure_bound

    measurement = measure_bound(model, settings.data, settings.num, settings.variance, settings.seed,
                                device=job_device(device))
    terms = yield from tagged((measurement.data_name, measurement.num, measurement.timesteps), measurement.steps(should_stop))
    return None if terms is None else BoundSummary.of(terms)


class BoundSession(JobSession):
    """Measures the bound and holds its terms: ``terms[t − 1]`` is L_{t−1} averaged over the images
    (NaN until computed), and the summary once every t is done."""

    progressed = Signal()  # more terms are in ``terms``
    finished = Signal(str)

    def __init__(self) -> None:
        super().__init__()
        self.terms = np.zeros(0)
        self.summary: BoundSummary | None = None
        self.data_name = ""
        self.num = 0

    @property
    def done(self) -> int:
        """How many of the T terms are computed."""
        return int(np.isfinite(self.terms).sum())

    def start(self, model: LoadedModel, settings: BoundSettings, device: str = "cpu") -> Job:
        """A Job measuring ``model`` on ``device``; what was shown before is cleared."""
        self.terms = np.full(model.schedule_config.timesteps, np.nan)
        self.summary = None
        return self._begin(lambda control, should_stop: _bound_items(model, settings, device, control, should_stop), _digest)

    def on_update(self, progress: BoundProgress) -> None:
        self.data_name, self.num = progress.data_name, progress.num
        self.terms[progress.t - 1] = progress.bits
        self.progressed.emit()

    def on_finished(self, summary: BoundSummary | None) -> None:
        self._set_running(False)
        if summary is None:
            self.finished.emit(f"Stopped after {self.done} of {len(self.terms)} timesteps")
            return
        self.summary = summary
        self.terms = summary.terms
        self.progressed.emit()
        self.finished.emit(f"{summary.total:.3f} bits/dim on {self.num} images of {self.data_name}")
