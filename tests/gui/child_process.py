"""Run a test's child process for as long as it keeps making progress, on however slow a machine.

A crash (PySide6 6.12.0's abort on Python 3.11) shows in the exit code and stderr, whenever it comes.
A hang shows as silence: the child prints a line at each sign of progress, and only a child silent
for ``SILENCE_S`` seconds is ended and failed. A loaded machine makes a run longer, not a failure.
"""

import queue
import subprocess
import sys
import threading

import pytest

SILENCE_S = 300
"""Seconds without a line from the child after which it is taken to hang. Its start, which loads
torch and Qt, is its longest silence: a few seconds on an idle machine."""


def run_child(args: list[str], env: dict[str, str] | None = None, silence_s: float = SILENCE_S) -> subprocess.CompletedProcess:
    """``python ARGS`` to its end: its exit code, its stdout (progress lines, then the result) and stderr."""
    child = subprocess.Popen([sys.executable, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    lines: queue.Queue[str | None] = queue.Queue()
    stderr: list[str] = []

    def read_stdout() -> None:
        for line in child.stdout:
            lines.put(line)
        lines.put(None)  # the child closed its output: it is ending

    readers = [threading.Thread(target=read_stdout), threading.Thread(target=lambda: stderr.append(child.stderr.read()))]
    for reader in readers:
        reader.start()
    out: list[str] = []
    hung = False
    try:
        while (line := lines.get(timeout=silence_s)) is not None:
            out.append(line)
        child.wait(timeout=silence_s)
    except (queue.Empty, subprocess.TimeoutExpired):
        hung = True
        child.kill()
    for reader in readers:
        reader.join()
    if hung:
        pytest.fail(f"the child was silent for {silence_s} s: it hangs. Its last line: {out[-1:]}; stderr:\n{stderr[0][-2000:]}")
    return subprocess.CompletedProcess(child.args, child.wait(), "".join(out), stderr[0])
