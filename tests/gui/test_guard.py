"""Python overrides of Qt's virtuals are guarded: PySide6 crashes on some exceptions leaving one."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from diffusion_studio.gui.guard import guarded

SCRIPT = Path(__file__).with_name("guarded_override.py")
ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("mode", ["guarded", "bare"])
def test_a_failing_override_is_printed_and_survived_only_when_guarded(mode):
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, str(SCRIPT), mode], capture_output=True, text=True, timeout=60, env=env)
    if mode == "guarded":
        assert done.returncode == 0 and "alive" in done.stdout and "IndexError" in done.stderr
    elif done.returncode == 0:  # what the guard is for is gone in this PySide6
        pytest.skip("this PySide6 survives the exception unguarded: the guard may be dropped")
    else:  # PySide6 ends the process
        assert "alive" not in done.stdout


def test_an_event_filter_that_fails_lets_the_event_on():
    filter_ = guarded(lambda watched, event: 1 / 0, fallback=False)
    assert filter_(None, None) is False
