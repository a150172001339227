"""Background work on QThreads: one-off functions (loading images or a model, exports) through
TaskRunner, and a panel's long-running worker (sampling, training) through WorkerThread.

Workers never touch widgets: they emit signals, and the slots they reach run on the UI thread.
"""

from __future__ import annotations

import gc

from typing import Any, Callable

from PySide6.QtCore import QObject, QThread, Signal, Slot

from diffusion_studio.core.errors import DiffusionStudioError


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


class _Task(QObject):
    """Lives on the UI thread, so the worker's queued signals call the callbacks there."""

    def __init__(self, runner: "TaskRunner", function: Callable[..., Any], on_finished, on_failed, on_progress=None) -> None:
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


def settle_heap() -> None:
    """Collect once, then freeze what survives (torch, Qt, the app), so that later full
    collections scan only newer objects. A full collection holds the GIL: with torch loaded, one
    paused the window for about 200 ms in the middle of training."""
    if gc.get_freeze_count() == 0:
        gc.collect()
        gc.freeze()


class WorkerThread(QObject):
    """Holds one long-running worker at a time on its own QThread.

    The worker is a QObject with a ``run`` slot, ``finished`` and ``failed`` signals and a
    thread-safe ``stop``. Connect its other signals before ``start``; ``done`` comes on this
    thread once its thread has ended and both are scheduled for deletion.
    """

    done = Signal()

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.worker: QObject | None = None
        self._thread: QThread | None = None

    @property
    def running(self) -> bool:
        return self.worker is not None

    def start(self, worker: QObject) -> None:
        """Run the worker; the first start also settles the heap (torch is loaded by then)."""
        settle_heap()
        self.worker, self._thread = worker, QThread()
        worker.moveToThread(self._thread)
        self._thread.started.connect(worker.run)
        worker.finished.connect(self._thread.quit)
        worker.failed.connect(self._thread.quit)
        self._thread.finished.connect(self._ended)
        self._thread.start()

    def stop_and_wait(self) -> None:
        """Ask the worker to stop and block until its thread has ended (the window is closing)."""
        if self.worker is not None:
            self.worker.stop()
            self._thread.quit()
            self._thread.wait()

    @Slot()
    def _ended(self) -> None:
        self.worker.deleteLater()
        self._thread.deleteLater()
        self.worker = self._thread = None
        self.done.emit()
