"""Background work on QThreads: one-off functions (loading images or a model, exports) through
TaskRunner, and a session's Job (sampling, training) in a GeneratorWorker through WorkerThread
(the superqt/napari pattern).

Workers never touch widgets: they emit signals, and the slots they reach run on the UI thread.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QThread, Signal, Slot
from PySide6.QtWidgets import QComboBox

from diffusion_studio.app.jobs import Job, drive
from diffusion_studio.core.errors import DiffusionStudioError
from diffusion_studio.gui.garbage import settle_heap, ui_thread_collection
from diffusion_studio.gui.guard import guarded


def error_message(exc: BaseException) -> str:
    """A message for the user: ours as they are, anything else with its type."""
    if isinstance(exc, DiffusionStudioError):
        return str(exc)
    if isinstance(exc, OSError) and exc.strerror:
        return f"{exc.strerror}" + (f": {exc.filename}" if exc.filename else "")
    return f"{type(exc).__name__}: {exc}"


class TaskWorker(QObject):
    """Runs one function on its thread and reports how it went (and, if it reports, how far it got)."""

    finished = Signal(object)
    failed = Signal(str)
    progress = Signal(int, int)  # done, total

    def __init__(self, function: Callable[..., Any], reports: bool = False) -> None:
        super().__init__()
        self._function = function
        self._reports = reports

    @Slot()
    def run(self) -> None:
        try:
            result = self._function(self.progress.emit) if self._reports else self._function()
        except Exception as exc:  # reported to the user; the app goes on
            self.failed.emit(error_message(exc))
        else:
            self.finished.emit(result)


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


class _Task(QObject):
    """Lives on the UI thread, so the worker's queued signals call the callbacks there."""

    def __init__(self, runner: TaskRunner, function: Callable[..., Any], on_finished, on_failed, on_progress=None) -> None:
        super().__init__(runner)
        self._on_finished = on_finished
        self._on_failed = on_failed
        self._on_progress = on_progress
        self.thread = QThread()
        self.worker = TaskWorker(function, reports=on_progress is not None)
        if on_progress is not None:
            self.worker.progress.connect(self._progress)
        self.worker.moveToThread(self.thread)
        self.thread.started.connect(self.worker.run)
        self.worker.finished.connect(self._finished)
        self.worker.failed.connect(self._failed)
        self.thread.finished.connect(self._ended)

    @Slot()
    def _ended(self) -> None:
        self.parent()._forget(self)

    @Slot(int, int)
    def _progress(self, done: int, total: int) -> None:
        self._on_progress(done, total)

    @Slot(object)
    def _finished(self, result: Any) -> None:
        self.thread.quit()
        self._on_finished(result)

    @Slot(str)
    def _failed(self, message: str) -> None:
        self.thread.quit()
        self._on_failed(message)


class TaskRunner(QObject):
    """Starts background tasks and keeps them alive until they end; ``wait`` joins them all."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._running: list[_Task] = []

    def start(
        self,
        function: Callable[..., Any],
        on_finished: Callable[[Any], None],
        on_failed: Callable[[str], None],
        on_progress: Callable[[int, int], None] | None = None,
    ) -> None:
        """Run ``function()`` on a new thread; then ``on_finished(result)`` or ``on_failed(message)`` on this one.

        With ``on_progress``, the function is called as ``function(report)`` and each
        ``report(done, total)`` it makes reaches ``on_progress`` on this thread.
        """
        task = _Task(self, function, on_finished, on_failed, on_progress)
        self._running.append(task)
        ui_thread_collection.start()
        task.thread.start()

    def _forget(self, task: _Task) -> None:
        if task in self._running:
            self._running.remove(task)
            task.worker.deleteLater()
            task.thread.deleteLater()
            task.deleteLater()

    def wait(self) -> None:
        """Block until every task has ended (used when the window closes)."""
        for task in list(self._running):
            task.thread.quit()
            task.thread.wait()
            self._forget(task)


class NewestOnly:
    """One task at a time on a TaskRunner, for work where only the newest request matters (scrubbing
    t, stepping through images): a request made while a task runs waits, replacing any request
    already waiting, and its function is made when it starts, from the state of then."""

    def __init__(self, tasks: TaskRunner) -> None:
        self._tasks = tasks
        self._busy = False
        self._waiting: tuple[Callable[[], Callable[[], Any]], Callable[[Any], None], Callable[[str], None]] | None = None

    def request(self, make: Callable[[], Callable[[], Any]], on_finished: Callable[[Any], None],
                on_failed: Callable[[str], None]) -> None:
        """Run ``make()`` now, or once the task running ends; then ``on_finished(result)`` or ``on_failed(message)``."""
        if self._busy:
            self._waiting = (make, on_finished, on_failed)
            return
        self._busy = True
        self._tasks.start(make(), lambda result: self._ended(on_finished, result),
                          lambda message: self._ended(on_failed, message))

    def _ended(self, callback: Callable[[Any], None], value: Any) -> None:
        self._busy = False
        callback(value)
        if self._waiting is not None:
            waiting, self._waiting = self._waiting, None
            self.request(*waiting)


class WorkerThread(QObject):
    """Runs one session Job at a time in a GeneratorWorker on its own QThread.

    The worker's signals reach this object's slots, which live on the UI thread, and they call the
    session's callbacks there (a plain callable connected straight to a worker's signal would run
    on the worker's thread). ``done`` comes once the thread has ended and both are scheduled for
    deletion.
    """

    done = Signal()

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.worker: QObject | None = None
        self._thread: QThread | None = None
        self._callbacks: tuple[Callable[[Any], None], Callable[[Any], None], Callable[[str], None]] | None = None

    @property
    def running(self) -> bool:
        return self.worker is not None

    def start(
        self,
        job: Job,
        throttle_s: float,
        on_update: Callable[[Any], None],
        on_finished: Callable[[Any], None],
        on_failed: Callable[[str], None],
    ) -> None:
        """Drive the job; its updates, result or failure reach the callbacks on this (the UI) thread.
        The first start also settles the heap (torch is loaded by then); garbage is collected on
        this thread only (gui.garbage)."""
        settle_heap()
        ui_thread_collection.start()
        self._callbacks = (on_update, on_finished, on_failed)
        self.worker, self._thread = GeneratorWorker(job, throttle_s), QThread()
        self.worker.moveToThread(self._thread)
        self._thread.started.connect(self.worker.run)
        self.worker.updated.connect(self._on_updated)
        self.worker.finished.connect(self._on_finished)
        self.worker.failed.connect(self._on_failed)
        self.worker.finished.connect(self._thread.quit)
        self.worker.failed.connect(self._thread.quit)
        self._thread.finished.connect(self._ended)
        self._thread.start()

    def stop_and_wait(self) -> None:
        """Ask the job to stop and block until its thread has ended (the window is closing)."""
        if self.worker is not None:
            self.worker.stop()
            self._thread.quit()
            self._thread.wait()
            self._ended()

    @Slot(object)
    def _on_updated(self, update: Any) -> None:
        self._callbacks[0](update)

    @Slot(object)
    def _on_finished(self, result: Any) -> None:
        self._callbacks[1](result)

    @Slot(str)
    def _on_failed(self, message: str) -> None:
        self._callbacks[2](message)

    @Slot()
    def _ended(self) -> None:
        if self.worker is None:  # already ended by stop_and_wait
            return
        self.worker.deleteLater()
        self._thread.deleteLater()
        self.worker = self._thread = None
        self.done.emit()


def find_devices() -> list[tuple[str, str]]:
    """This machine's devices as (name, label), best first: a TaskRunner function, since it loads
    torch (and warms AdamW, whose first use imports for a second, so that it does not delay a Start)."""
    import torch

    from diffusion_studio.core.devices import available_devices, device_label

    torch.optim.AdamW([torch.zeros(1, requires_grad=True)])
    return [(name, device_label(name)) for name in available_devices()]


class DevicePicker(QComboBox):
    """Where a panel's network runs: "Best available" until this machine's devices are found (on
    the first show, off the UI thread), then each of them by name."""

    def __init__(self, tasks: TaskRunner, on_failed: Callable[[str], None], tip: str) -> None:
        super().__init__()
        self.addItem("Best available", "auto")
        self.setToolTip(tip)
        self._tasks, self._on_failed, self._searched = tasks, on_failed, False

    @guarded
    def showEvent(self, event) -> None:
        if not self._searched:
            self._searched = True
            self._tasks.start(find_devices, self._fill, self._on_failed)
        super().showEvent(event)

    def _fill(self, devices: list[tuple[str, str]]) -> None:
        self.setItemText(0, f"Best available: {devices[0][1]}")
        for name, label in devices:
            self.addItem(label, name)

    def device(self) -> str:
        """The chosen device's name ("auto", "cpu", "cuda", "mps")."""
        return self.currentData()
