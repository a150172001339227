"""Runs the reverse process on a worker thread; records every k-th step; sends a few previews a second."""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
from PySide6.QtCore import QObject, Signal, Slot

from diffusion_studio.core.sample_config import SampleConfig
from diffusion_studio.gui.tasks import error_message

PREVIEW_INTERVAL_S = 0.1
"""At most this often a preview crosses to the UI thread, whatever the step rate."""


@dataclass(frozen=True)
class SamplingPreview:
    index: int  # steps done
    total: int
    t: int
    x_t: np.ndarray  # N×H×W×C uint8 or N×D float32, as trajectories store them
    pred_x0: np.ndarray
    pred_eps: np.ndarray


@dataclass(frozen=True)
class SamplingResult:
    trajectory: object  # core.trajectory.Trajectory
    final: np.ndarray  # the samples at full precision: N×C×H×W or N×D
    cancelled: bool  # stopped by the user; the trajectory holds the steps done


class SamplingWorker(QObject):
    """A QObject moved to a QThread: ``run`` samples; ``stop`` (from any thread) ends it within a step."""

    progress = Signal(object)  # SamplingPreview
    finished = Signal(object)  # SamplingResult
    failed = Signal(str)

    def __init__(self, model, config: SampleConfig) -> None:
        super().__init__()
        self.model = model
        self.config = config
        self._stop = False

    def stop(self) -> None:
        self._stop = True

    @Slot()
    def run(self) -> None:
        try:
            from diffusion_studio.core.sampling import SamplingRun
            from diffusion_studio.core.trajectory import Recorder, stored_frame

            device = next(self.model.network.parameters()).device
            run = SamplingRun(self.model, self.config, device)
            recorder = Recorder(self.config.record_every, run.metadata())
            last = 0.0
            for step in run.steps(should_stop=lambda: self._stop):
                recorder.add(step)
                now = time.monotonic()
                if now - last >= PREVIEW_INTERVAL_S or step.index + 1 == step.total:
                    last = now
                    self.progress.emit(SamplingPreview(step.index + 1, step.total, step.t, stored_frame(step.x_t),
                                                       stored_frame(step.pred_x0), stored_frame(step.pred_eps)))
            if recorder.final is None:
                self.failed.emit("Cancelled before the first step")
                return
            self.finished.emit(SamplingResult(recorder.trajectory(), recorder.final, self._stop))
        except Exception as exc:  # reported to the user; the panel goes back to idle
            self.failed.emit(error_message(exc))
