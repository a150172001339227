"""Python's cyclic garbage collector, run only from the UI thread's event loop.

The automatic collector runs on whichever thread happens to allocate when a generation's count
passes its threshold, in the middle of whatever that thread is doing. When the garbage holds Qt
objects (the menus of a closed window, a pyqtgraph item in a reference cycle), that is unsafe twice:
- on a worker, Shiboken deletes the C++ widgets there while the UI thread deletes others, and the
  two can deadlock (a worker waiting for the GIL inside ~QObject, the UI thread for Qt's mutex);
- on the UI thread inside a Qt call that holds one of Qt's signal-slot mutexes, the collection's
  ~QObject can wait for the same mutex and hang the thread for good (seen: a collection started
  inside the QObject::disconnect of pyqtgraph's ViewBox.addItem, deleting a closed window's QAction).
So from the first window on, automatic collection is off and a timer collects instead, each
generation whose count passed its threshold, as the automatic collector would. A timer fires from
the event loop, where no Qt call is under way (pyqtgraph's GarbageCollector does the same).
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
    """The one collection policy of the process, started on the UI thread by the first window."""

    def __init__(self) -> None:
        self._timer: QTimer | None = None

    def start(self) -> None:
        """Turn automatic collection off and collect from a timer on this (the UI) thread from now on."""
        if self._timer is None:
            self._timer = QTimer()  # made here, on the UI thread, so that it fires there
            self._timer.timeout.connect(collect_due)
            self._timer.start(COLLECT_EVERY_MS)
        gc.disable()


ui_thread_collection = UIThreadCollection()
