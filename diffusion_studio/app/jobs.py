"""Long work as a Job: a generator and how its items are digested into updates, driven on any thread.

A session builds the Job; the GUI's GeneratorWorker drives it on a QThread and hands each update
back to the session on the UI thread; a test or a script drives the same Job here with ``drive``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from typing import Any

from diffusion_studio.core.control import RunControl

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
