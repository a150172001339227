"""Regression guard for the PySide6 6.12.0 Signal.emit reference-count abort."""

import os
from pathlib import Path

import PySide6

from tests.gui.child_process import run_child

EMITS = 20_000


def test_many_thousand_cross_thread_signals_keep_the_interpreter_alive():
    script = Path(__file__).with_name("signal_stress.py")
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    done = run_child([str(script), str(EMITS)], env=env)  # however long it takes, while it goes on
    assert done.returncode == 0, (
        f"PySide6 {PySide6.__version__} died after emitting signals (exit {done.returncode}); "
        f"6.12.0 on Python 3.11 is known to abort here.\n{done.stderr[-2000:]}"
    )
    assert done.stdout.splitlines()[-1].split() == [str(EMITS), str(EMITS)]
