"""Regression guard for the PySide6 6.12.0 Signal.emit reference-count abort."""

import os
import subprocess
import sys
from pathlib import Path

import PySide6

EMITS = 20_000


def test_many_thousand_cross_thread_signals_keep_the_interpreter_alive():
    script = Path(__file__).with_name("signal_stress.py")
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    done = subprocess.run([sys.executable, str(script), str(EMITS)], capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, (
        f"PySide6 {PySide6.__version__} died after emitting signals (exit {done.returncode}); "
        f"6.12.0 on Python 3.11 is known to abort here.\n{done.stderr[-2000:]}"
    )
    assert done.stdout.split() == [str(EMITS), str(EMITS)]
