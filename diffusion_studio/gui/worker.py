"""GeneratorWorker: any session's Job on a QThread (the superqt/napari pattern), throttled."""

from __future__ import annotations

from PySide6.QtCore import QObject, Signal, Slot

from diffusion_studio.app.jobs import Job, drive
from diffusion_studio.gui.tasks import error_message


class GeneratorWorker(QObject):
    """A QObject for WorkerThread: ``run`` drives the job, sending a digested update at most every
    ``throttle_s`` seconds; ``stop`` (from any thread) ends it before its next step."""

    updated = Signal(object)  # job.digest(items since the last update)
    finished = Signal(object)  # the job's result
    failed = Signal(str)

    def __init__(self, job: Job, throttle_s: float) -> None:
        super().__init__()
        self.job = job
        self.throttle_s = throttle_s

    def stop(self) -> None:
        self.job.control.stop()

    @Slot()
    def run(self) -> None:
        try:
            result = drive(self.job, self.updated.emit, self.throttle_s)
        except Exception as exc:  # reported to the user; the session goes back to idle
            self.failed.emit(error_message(exc))
        else:
            self.finished.emit(result)
