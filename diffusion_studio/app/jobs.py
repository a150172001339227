"""Long work as a Job: a generator and how its items are digested into updates, driven on any thread.

A session builds the Job; the GUI's GeneratorWorker drives it on a QThread and hands each update
back to the session on the UI thread; a test or a script drives the same Job here with ``drive``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from psygnal import Signal

from diffusion_studio.core.control import RunControl

if TYPE_CHECKING:
    import torch

ShouldStop = Callable[[], bool]


@dataclass(frozen=True)
class Job:
    """``run(should_stop)`` yields items and returns the result; ``digest(items)`` turns the items
    since the last update into one update, on the worker's thread, so that only small values that
    are ready to show cross to the UI thread."""

    run: Callable[[ShouldStop], Generator[Any, None, Any]]
    digest: Callable[[list[Any]], Any] = list
    control: RunControl = field(default_factory=RunControl)


def drive(job: Job, send: Callable[[Any], None], throttle_s: float) -> Any:
    """Run the job on this thread: ``send(digest(items))`` at most every ``throttle_s`` seconds
    (the first item at once) and once more at the end with what is left. Returns the job's result."""
    generator = job.run(job.control.should_stop)
    pending: list[Any] = []
    last = -float("inf")
    while True:
        try:
            pending.append(next(generator))
        except StopIteration as end:
            if pending:
                send(job.digest(pending))
            return end.value
        now = time.monotonic()
        if now - last >= throttle_s:
            last = now
            send(job.digest(pending))
            pending = []


def job_device(device: str) -> torch.device:
    """The device by name ("auto": the best here), resolved on the worker's thread (the first use
    loads torch). The model is not moved: each job reads it through ``LoadedModel.denoiser`` there."""
    from diffusion_studio.core.devices import resolve_device

    return resolve_device(device)


class JobSession:
    """What a session that runs one Job at a time shares: whether one runs, cancelling it, and
    going back to idle when it fails. A subclass starts its jobs with ``_begin`` and ends them in
    its own result callbacks with ``_set_running(False)``."""

    runningChanged = Signal(bool)
    failed = Signal(str)

    def __init__(self) -> None:
        super().__init__()  # a session may be more (a Playhead): each base sets itself up
        self.running = False
        self._job: Job | None = None

    def _begin(self, items: Callable[[RunControl, ShouldStop], Generator[Any, None, Any]],
               digest: Callable[[list[Any]], Any] = list) -> Job:
        """The Job of ``items(control, should_stop)``, the generator its worker drives."""
        if self.running:
            raise RuntimeError("a job is going on")
        control = RunControl()
        self._job = Job(run=lambda should_stop: items(control, should_stop), digest=digest, control=control)
        self._set_running(True)
        return self._job

    def cancel(self) -> None:
        """Ask the job going on to stop before its next step."""
        if self._job is not None:
            self._job.control.stop()

    def on_failed(self, message: str) -> None:
        self._set_running(False)
        self.failed.emit(message)

    def _set_running(self, running: bool) -> None:
        self.running = running
        if not running:
            self._job = None
        self.runningChanged.emit(running)
