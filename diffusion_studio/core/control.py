"""Pausing and stopping a long job (training, sampling) from another thread.

Core generators take a ``should_stop`` callable and ask it before each step; a RunControl's
``should_stop`` answers it, and waits there while the job is paused.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Generator
from typing import Any, TypeVar

T = TypeVar("T")
R = TypeVar("R")


class RunControl:
    """Thread-safe pause, resume and stop for one run; ``paused_seconds`` adds up the time held."""

    def __init__(self) -> None:
        self._stop = threading.Event()
        self._running = threading.Event()
        self._running.set()
        self.paused_seconds = 0.0

    @property
    def stopped(self) -> bool:
        return self._stop.is_set()

    @property
    def paused(self) -> bool:
        return not self._running.is_set()

    def pause(self) -> None:
        self._running.clear()

    def resume(self) -> None:
        self._running.set()

    def stop(self) -> None:
        """End the run before its next step (a paused run wakes up to end)."""
        self._stop.set()
        self._running.set()

    def should_stop(self) -> bool:
        """Asked by the job before each step: blocks while paused, then says whether to end."""
        if not self._running.is_set():
            paused_at = time.monotonic()
            self._running.wait()
            self.paused_seconds += time.monotonic() - paused_at
        return self._stop.is_set()


def tagged(tag: Any, items: Generator[T, None, R]) -> Generator[tuple[Any, T], None, R]:
    """(tag, item) for each item of a generator; returns what it returns."""
    while True:
        try:
            item = next(items)
        except StopIteration as end:
            return end.value
        yield tag, item


def drain(items: Generator[T, None, R], each: Callable[[T], object] = lambda item: None) -> R:
    """Run a job's generator to its end on this thread, calling ``each`` on every item; its return value."""
    while True:
        try:
            each(next(items))
        except StopIteration as end:
            return end.value
