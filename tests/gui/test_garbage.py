"""Garbage is collected by a timer on the UI thread only (issue 16.6: a collection on a worker
finalised a closed window's Qt objects there and deadlocked with the UI thread; and one started on
the UI thread inside Qt's QObject::disconnect hung it, waiting for the mutex that call held)."""

import gc
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from diffusion_studio.app.jobs import Job
from diffusion_studio.gui.tasks import TaskRunner, WorkerThread

SCRIPT = Path(__file__).with_name("window_churn.py")


class CollectionThreads:
    """The thread of every garbage collection while in the ``with`` block."""

    def __enter__(self):
        self.threads = []
        gc.callbacks.append(self._note)
        return self

    def _note(self, phase, info):
        if phase == "start":
            self.threads.append(threading.get_ident())

    def __exit__(self, *exc):
        gc.callbacks.remove(self._note)


def churn(seconds, threads):
    """Makes reference cycles, which only the collector frees, for a while on the calling thread.
    Between batches it lets go of the GIL, as a worker does inside torch's kernels (a loop of pure
    Python would starve the UI thread, and its timer, of the GIL)."""
    threads.append(threading.get_ident())
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for _ in range(2000):
            cycle = []
            cycle.append(cycle)
        time.sleep(0.005)
        yield None
    return "done"


def test_while_a_job_runs_garbage_is_collected_only_on_the_ui_thread(qtbot):
    runner, worker_threads, during_run = WorkerThread(), [], []
    with CollectionThreads() as seen:
        runner.start(Job(lambda should_stop: churn(1.0, worker_threads)), 0.05,
                     lambda update: None, lambda result: during_run.extend(seen.threads), pytest.fail)
        qtbot.waitUntil(lambda: not runner.running, timeout=20_000)
    assert worker_threads and worker_threads[0] not in during_run
    assert threading.get_ident() in during_run  # the UI thread's timer collected the worker's cycles
    assert not gc.isenabled()  # and collection stays with it once the job has ended


def test_while_a_task_runs_garbage_is_collected_only_on_the_ui_thread(qtbot):
    tasks, worker_threads, results = TaskRunner(), [], []
    with CollectionThreads() as seen:
        tasks.start(lambda: list(churn(1.0, worker_threads)), lambda result: results.append(list(seen.threads)), pytest.fail)
        qtbot.waitUntil(lambda: bool(results), timeout=20_000)
        tasks.wait()
    assert worker_threads and worker_threads[0] not in results[0]
    assert not gc.isenabled()


def test_from_the_first_window_on_only_the_ui_threads_timer_collects(make_window, qtbot):
    gc.enable()
    make_window()
    assert not gc.isenabled()  # no collection can start inside a Qt call
    with CollectionThreads() as seen:
        cycles = []
        for _ in range(3 * gc.get_threshold()[0]):
            cycle = []
            cycle.append(cycle)
            cycles.append(cycle)
        del cycles
        qtbot.waitUntil(lambda: bool(seen.threads), timeout=5000)
    assert set(seen.threads) == {threading.get_ident()}


def test_windows_opened_and_closed_before_the_first_model_load_do_not_deadlock_it(tmp_path):
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    done = subprocess.run([sys.executable, str(SCRIPT), str(tmp_path)], capture_output=True, text=True, timeout=240, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout.splitlines()[-1])
    assert report == {
        "torch_before": False,
        "samples": [[4, 1, 16, 16]],
        "windows_finalised": 4,  # every closed window ...
        "finalised_off_ui_thread": 0,  # ... on the UI thread, whatever the timing
        "collections_off_ui_thread": 0,
    }
