"""Python's cyclic garbage collector, kept on the UI thread while worker threads run.

A collection runs on whichever thread happens to allocate when a generation's count passes its
threshold. If the garbage holds Qt objects (the menus of a closed window, a pyqtgraph item in a
reference cycle), a collection on a worker finalises them there: Shiboken then deletes the C++
widgets on the worker while the UI thread deletes others, and the two can deadlock (a worker
waiting for the GIL inside ~QObject, the UI thread waiting for Qt's mutex). So, while any worker
runs, automatic collection is off and a timer on the UI thread collects instead, each generation
whose count passed its threshold, as the automatic collector would (pyqtgraph's GarbageCollector
does the same for a whole application).
"""

from __future__ import annotations

import gc

from PySide6.QtCore import QTimer

COLLECT_EVERY_MS = 250


def settle_heap() -> None:
    """Collect once, then freeze what survives (torch, Qt, the app), so that later full
    collections scan only newer objects. A full collection holds the GIL: with torch loaded, one
    paused the window for about 200 ms in the middle of training."""
    if gc.get_freeze_count() == 0:
        gc.collect()
        gc.freeze()


def collect_due() -> None:
    """Collect the oldest generation whose count passed its threshold (with the younger ones), as
    the automatic collector does."""
    counts, thresholds = gc.get_count(), gc.get_threshold()
    due = -1
    for generation in range(3):
        if counts[generation] <= thresholds[generation]:
            break
        due = generation
    if due >= 0:
        gc.collect(due)


class UIThreadCollection:
    """Counts the running workers; from the first one's start to the last one's end, garbage is
    collected only by a timer on the UI thread. ``hold`` and ``release`` are called on the UI thread."""

    def __init__(self) -> None:
        self.workers = 0
        self._timer: QTimer | None = None
        self._was_enabled = True

    def hold(self) -> None:
        if self.workers == 0:
            if self._timer is None:  # made here, on the UI thread, so that it fires there
                self._timer = QTimer()
                self._timer.timeout.connect(collect_due)
            self._was_enabled = gc.isenabled()
            gc.disable()
            self._timer.start(COLLECT_EVERY_MS)
        self.workers += 1

    def release(self) -> None:
        if self.workers == 0:
            return
        self.workers -= 1
        if self.workers == 0:
            self._timer.stop()
            if self._was_enabled:
                gc.enable()


ui_thread_collection = UIThreadCollection()
"""The one collection policy of the process: every worker thread holds it while it runs."""
