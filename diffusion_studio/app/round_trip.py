"""The "Your image" panel without widgets: an image x_0 through the model at a chosen t (the truth
beside the network's guesses), the errors of the guesses over t, SDEdit from x_t back to 0, and
DDIM inversion to x_T and back (core.round_trip, core.inversion).

Every array the views show is a numpy array here, C×H×W in data units; the model's work runs in
functions and Jobs the panel hands to worker threads.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np
from psygnal import Signal

from diffusion_studio.app.jobs import Job, JobSession, ShouldStop, job_device
from diffusion_studio.core.control import RunControl
from diffusion_studio.core.errors import SettingError
from diffusion_studio.core.sample_config import SampleConfig, validate_sample_config

if TYPE_CHECKING:
    from diffusion_studio.core.loaded_model import LoadedModel
    from diffusion_studio.core.round_trip import Errors


@dataclass(frozen=True)
class Trip:
    """x_0, ε, x_t and the network's x̂_0 and ε̂ at t, C×H×W each."""

    t: int
    x0: np.ndarray
    noise: np.ndarray
    x_t: np.ndarray
    pred_x0: np.ndarray
    pred_eps: np.ndarray


@dataclass(frozen=True)
class Denoised:
    """SDEdit's result: the reverse process run from x_t (strength t/T) back to 0."""

    t: int
    result: np.ndarray  # C×H×W
    steps: int


@dataclass(frozen=True)
class Inverted:
    """DDIM inversion's x_T and DDIM's sample back from it."""

    noise: np.ndarray  # C×H×W
    reconstruction: np.ndarray
    rms_error: float
    steps: int


@dataclass(frozen=True)
class JobProgress:
    """The newest step of a running job: what it is doing, how far, and the sample it holds."""

    what: str  # "denoise", "invert" or "reconstruct"
    index: int  # steps done
    total: int
    t: int  # where the sample now is
    sample: np.ndarray  # C×H×W


def _progress(items: list[tuple[str, object]]) -> JobProgress:
    what, step = items[-1]
    return JobProgress(what, step.index + 1, step.total, step.prev_t, step.x_prev[0].numpy())


def _tensor(array: np.ndarray):
    """A C×H×W array as a 1×C×H×W tensor."""
    import torch

    return torch.from_numpy(array)[None]


def _denoise_items(model: LoadedModel, x_t: np.ndarray, t: int, config: SampleConfig, device: str,
                   control: RunControl, should_stop: ShouldStop):
    """The SDEdit job: the run from x_t down to 0 (steps spaced over 1…t); returns Denoised (None if stopped)."""
    from diffusion_studio.core.sampling import SamplingRun

    run = SamplingRun(model, config, job_device(device), start_t=t)
    last = None
    for step in run.steps(should_stop, x_start=_tensor(x_t)):
        last = step
        yield "denoise", step
    if last is None or control.stopped:
        return None
    return Denoised(t, last.x_prev[0].numpy(), run.num_steps)


def _invert_items(model: LoadedModel, x0: np.ndarray, config: SampleConfig, device: str,
                  control: RunControl, should_stop: ShouldStop):
    """The inversion job: ("invert" | "reconstruct", step) items; returns Inverted (None if stopped)."""
    from diffusion_studio.core.inversion import invert

    inversion = yield from invert(model, _tensor(x0), config, job_device(device), should_stop)
    if inversion is None or control.stopped:
        return None
    return Inverted(inversion.noise[0].cpu().numpy(), inversion.reconstruction[0].cpu().numpy(),
                    float(inversion.rms_error()[0]), config.steps or model.schedule_config.timesteps)


class RoundTripSession(JobSession):
    """Holds x_0 (with where it came from), the seed of ε, t, and what was computed from them."""

    imageChanged = Signal()  # x_0 or ε replaced: every result below is gone
    tChanged = Signal(int)
    tripChanged = Signal()  # ``trip`` is the round trip at ``t``
    errorsChanged = Signal()
    resultChanged = Signal()  # ``denoised`` or ``inverted`` set
    previewed = Signal(object)  # JobProgress while a job runs
    finished = Signal(str)

    def __init__(self) -> None:
        super().__init__()
        self.image: np.ndarray | None = None  # x_0, C×H×W in [−1, 1]
        self.name = ""
        self.seed = 0
        self.noise: np.ndarray | None = None
        self.t = 0
        self.trip: Trip | None = None
        self.errors: Errors | None = None
        self.denoised: Denoised | None = None
        self.inverted: Inverted | None = None

    # ---- x_0, ε and t -------------------------------------------------------------------------

    def set_image(self, image: np.ndarray, name: str) -> None:
        """A new x_0 (C×H×W in [−1, 1], at the model's size): what was computed from the last is dropped."""
        self.image, self.name = np.ascontiguousarray(image, dtype=np.float32), name
        self._new_noise()

    def set_seed(self, seed: int) -> None:
        if seed != self.seed:
            self.seed = seed
            self._new_noise()

    def _new_noise(self) -> None:
        if self.image is not None:
            self.noise = np.random.default_rng(self.seed).standard_normal(self.image.shape).astype(np.float32)
        self.trip = self.errors = self.denoised = self.inverted = None
        self.imageChanged.emit()

    def set_t(self, t: int) -> None:
        if t != self.t:
            self.t = t
            self.tChanged.emit(t)

    # ---- quick work (a function for a worker; its result back here) ---------------------------

    def trip_at(self, model: LoadedModel, t: int):
        """A function computing the round trip at t (one network call), for a worker thread."""
        image, noise = self._need_image(), self.noise

        def compute() -> Trip:
            from diffusion_studio.core.round_trip import round_trip

            trip = round_trip(model, _tensor(image), t, _tensor(noise))
            return Trip(t, image, noise, *(v[0].cpu().numpy() for v in (trip.x_t, trip.pred_x0, trip.pred_eps)))

        return compute

    def on_trip(self, trip: Trip) -> None:
        """A round trip computed: kept if it is of this x_0 and ε (the user may have moved on)."""
        if self.image is trip.x0 and self.noise is trip.noise:
            self.trip = trip
            self.tripChanged.emit()

    def errors_of(self, model: LoadedModel):
        """A function computing MSE(x̂_0, x_0) and MSE(ε̂, ε) for t = 1…T, for a worker thread."""
        image, noise = self._need_image(), self.noise

        def compute() -> tuple[np.ndarray, Errors]:
            from diffusion_studio.core.control import drain
            from diffusion_studio.core.round_trip import errors_by_t

            return image, drain(errors_by_t(model, _tensor(image), _tensor(noise)))

        return compute

    def on_errors(self, result: tuple[np.ndarray, Errors]) -> None:
        image, errors = result
        if image is self.image:
            self.errors = errors
            self.errorsChanged.emit()

    # ---- long work (Jobs) ---------------------------------------------------------------------

    def start_denoise(self, model: LoadedModel, config: SampleConfig, device: str = "cpu") -> Job:
        """A Job running the reverse process from the current x_t back to 0 with ``config``'s
        sampler (SDEdit, Meng et al. 2022: strength t/T); its steps spaced over 1…t."""
        validate_sample_config(config)
        if self.trip is None or self.trip.t != self.t or self.t == 0:
            raise SettingError("t", "choose a t above 0 and wait for x_t to show, then denoise it")
        x_t, t = self.trip.x_t, self.t
        config = replace(config, num=1, steps=min(config.steps or t, t))
        return self._begin(lambda control, stop: _denoise_items(model, x_t, t, config, device, control, stop), _progress)

    def start_inversion(self, model: LoadedModel, config: SampleConfig, device: str = "cpu") -> Job:
        """A Job inverting x_0 with DDIM (η = 0) to x_T and sampling back (core.inversion)."""
        from diffusion_studio.core.inversion import inversion_config

        config = replace(inversion_config(config), num=1)
        validate_sample_config(config)
        image = self._need_image()
        return self._begin(lambda control, stop: _invert_items(model, image, config, device, control, stop), _progress)

    def on_update(self, progress: JobProgress) -> None:
        self.previewed.emit(progress)

    def on_finished(self, result: Denoised | Inverted | None) -> None:
        self._set_running(False)
        if result is None:
            self.finished.emit("Stopped")
            return
        if isinstance(result, Denoised):
            self.denoised = result
            message = f"Denoised from t = {result.t} in {result.steps} steps"
        else:
            self.inverted = result
            message = f"Inverted in {result.steps} DDIM steps and back: RMS error {result.rms_error:.4f}"
        self.resultChanged.emit()
        self.finished.emit(message)

    def _need_image(self) -> np.ndarray:
        if self.image is None:
            raise SettingError("image", "open an image first")
        return self.image
