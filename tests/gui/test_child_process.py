"""The child runner: a crash shows in the exit code and stderr, and a silent child fails as a hang."""

import pytest

from tests.gui.child_process import run_child

ABORT = "import os, sys\nprint('step 1', flush=True)\nsys.stderr.write('bool_dealloc\\n')\nsys.stderr.flush()\nos.abort()"


def test_a_crash_shows_in_the_exit_code_and_stderr():
    done = run_child(["-c", ABORT])
    assert done.returncode != 0 and done.stdout == "step 1\n" and "bool_dealloc" in done.stderr


def test_a_silent_child_is_taken_to_hang():
    with pytest.raises(pytest.fail.Exception, match="silent for 1 s: it hangs"):
        run_child(["-c", "import time\nprint('step 1', flush=True)\ntime.sleep(60)"], silence_s=1)
