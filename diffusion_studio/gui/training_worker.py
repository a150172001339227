"""Trains on a worker thread: a few progress updates a second, previews as they come, checkpoints.

Every step's loss reaches the UI, batched into the throttled updates, so the loss plot holds them all
however fast the steps are.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PySide6.QtCore import QObject, Signal, Slot

from diffusion_studio.core.models.presets import NetworkSize
from diffusion_studio.core.schedules import ScheduleConfig
from diffusion_studio.core.train_config import TrainConfig
from diffusion_studio.gui.tasks import error_message

UPDATE_INTERVAL_S = 0.25
"""At most this often a progress update crosses to the UI thread, whatever the step rate."""
PREVIEW_COUNT = 16
"""Samples in a preview grid; a 2-D model's preview is a cloud of POINT_PREVIEW_COUNT points."""
POINT_PREVIEW_COUNT = 1000


@dataclass(frozen=True)
class TrainingJob:
    """What to train and where to save it."""

    output: Path  # the checkpoint folder, written every save_every steps and at the end
    config: TrainConfig
    schedule: ScheduleConfig
    size: NetworkSize
    image_size: int = 16  # image data is resized and cropped to this square
    channels: int | None = None  # 1 or 3; None: as the data
    resume: bool = False  # continue the checkpoint at output: its model, data and settings, with config.steps and .device
    save_every: int = 500
    preview_every: int = 200  # 0: no previews


@dataclass(frozen=True)
class RunInfo:
    """Sent once, when the data is loaded and the network built."""

    description: str  # network, parameters, data and device in words
    start_step: int
    total_steps: int
    timesteps: int  # T of the run's schedule
    reference: np.ndarray | None  # a 2-D set's points, drawn behind the preview cloud
    skipped: tuple[tuple[str, str], ...] = field(default=())  # unreadable files left out of an image folder


@dataclass(frozen=True)
class TrainingUpdate:
    """The steps since the last update."""

    step: int
    total_steps: int
    steps: np.ndarray  # the step of every report since the last update …
    losses: np.ndarray  # … and its mean loss
    loss_by_t: np.ndarray  # running mean loss for LOSS_BUCKETS equal ranges of t
    learning_rate: float
    images_per_second: float  # since the run started, pauses left out
    eta_seconds: float
    preview: np.ndarray | None  # the newest EMA preview since the last update: an H×W×C uint8 grid or N×2 points
    preview_step: int  # the step it was drawn at


class _Batch:
    """The reports since the last update, and the newest preview among them, made displayable."""

    def __init__(self) -> None:
        self.steps: list[int] = []
        self.losses: list[float] = []
        self.preview: np.ndarray | None = None
        self.preview_step = 0

    def add(self, record) -> None:
        from diffusion_studio.core.data.images import to_uint8
        from diffusion_studio.core.export import batch_grid

        self.steps.append(record.step)
        self.losses.append(record.loss)
        if record.preview is not None:
            images = record.preview.ndim == 4
            self.preview = batch_grid(to_uint8(record.preview.transpose(0, 2, 3, 1))) if images else record.preview
            self.preview_step = record.step


class TrainingWorker(QObject):
    """A QObject moved to a QThread. ``run`` trains; ``pause``, ``resume`` and ``stop`` may be called
    from any thread and take effect before the next step."""

    ready = Signal(object)  # RunInfo
    progress = Signal(object)  # TrainingUpdate
    saved = Signal(str, int)  # checkpoint folder, step
    finished = Signal(int, bool)  # the last step, whether the user stopped it
    failed = Signal(str)

    def __init__(self, job: TrainingJob, interval: float = UPDATE_INTERVAL_S) -> None:
        super().__init__()
        self.job = job
        self.interval = interval
        self._stop = False
        self._running = threading.Event()
        self._running.set()
        self._paused_s = 0.0

    def pause(self) -> None:
        self._running.clear()

    def resume(self) -> None:
        self._running.set()

    def stop(self) -> None:
        self._stop = True
        self._running.set()

    def _should_stop(self) -> bool:
        """Asked before every step: waits here while paused."""
        if not self._running.is_set():
            paused_at = time.monotonic()
            self._running.wait()
            self._paused_s += time.monotonic() - paused_at
        return self._stop

    @Slot()
    def run(self) -> None:
        try:
            self._train()
        except Exception as exc:  # reported to the user; the panel goes back to idle, the last checkpoint stays
            self.failed.emit(error_message(exc))

    def _train(self) -> None:
        from diffusion_studio.core.checkpoint import save_checkpoint
        from diffusion_studio.core.runs import continue_run, new_run, report_interval

        job = self.job
        if job.resume:
            trainer = continue_run(job.output, job.config.steps, job.config.device)
        else:
            trainer = new_run(job.config, job.schedule, job.size, job.image_size, job.channels)
        dataset, first_step = trainer.dataset, trainer.step
        self.ready.emit(RunInfo(
            description=f"{type(trainer.model).__name__}, {trainer.parameters / 1e6:.2f}M parameters, on "
                        f"{Path(dataset.name).name} ({len(dataset.data):,} {'images' if dataset.is_image else 'points'}), "
                        f"{trainer.device.type.upper()}",
            start_step=first_step,
            total_steps=trainer.config.steps,
            timesteps=trainer.schedule.timesteps,
            reference=None if dataset.is_image else dataset.data[:2000],
            skipped=dataset.skipped,
        ))

        def save() -> None:
            save_checkpoint(job.output, trainer.checkpoint())
            self.saved.emit(str(job.output), trainer.step)

        batch, started, last = _Batch(), time.monotonic(), time.monotonic()
        self._paused_s = 0.0

        def send(record) -> None:
            """Everything since the last update, in one signal."""
            rate = (record.step - first_step) / max(time.monotonic() - started - self._paused_s, 1e-9)
            self.progress.emit(TrainingUpdate(
                step=record.step,
                total_steps=record.total_steps,
                steps=np.asarray(batch.steps),
                losses=np.asarray(batch.losses),
                loss_by_t=record.loss_by_t,
                learning_rate=record.learning_rate,
                images_per_second=rate * trainer.config.batch_size,
                eta_seconds=(record.total_steps - record.step) / max(rate, 1e-9),
                preview=batch.preview,
                preview_step=batch.preview_step,
            ))

        record = None
        for record in trainer.train(
            should_stop=self._should_stop,
            report_every=report_interval(trainer.device),
            preview_every=job.preview_every,
            preview_count=PREVIEW_COUNT if dataset.is_image else POINT_PREVIEW_COUNT,
        ):
            batch.add(record)
            if record.step % job.save_every == 0 and record.step != record.total_steps:
                save()
            if time.monotonic() - last >= self.interval:
                last = time.monotonic()
                send(record)
                batch = _Batch()
        if batch.steps:
            send(record)
        if trainer.step > first_step:
            save()
        self.finished.emit(trainer.step, self._stop)
