"""Atomic folders (core.atomic): claiming a new one, and what a killed save leaves behind."""

import fcntl
import os
import subprocess
import sys

from diffusion_studio.core.atomic import claim_folder, recover_folder

CLAIM = "import sys; from diffusion_studio.core.atomic import claim_folder; print('ready', flush=True); " \
        "sys.stdin.readline(); print(claim_folder(sys.argv[1]).name, flush=True)"


def test_a_claimed_folder_is_made_at_once_so_the_next_claim_of_its_name_gets_another(tmp_path):
    (tmp_path / "run-3.previous").mkdir()  # the name of a save that was interrupted mid-swap
    assert [claim_folder(tmp_path / "run") for _ in range(3)] == [tmp_path / "run", tmp_path / "run-2", tmp_path / "run-4"]
    assert all((tmp_path / name).is_dir() for name in ("run", "run-2", "run-4"))


def test_processes_claiming_one_name_at_the_same_moment_get_a_folder_each(tmp_path):
    processes = [subprocess.Popen([sys.executable, "-c", CLAIM, str(tmp_path / "run")], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": os.getcwd()})
                 for _ in range(4)]
    for process in processes:  # every one imported and waiting …
        assert process.stdout.readline() == "ready\n"
    for process in processes:  # … then all go at once
        process.stdin.write("\n")
        process.stdin.flush()
    names = [process.communicate(timeout=60)[0].strip() for process in processes]
    assert sorted(names) == ["run", "run-2", "run-3", "run-4"]


def test_recovery_removes_staging_left_by_a_killed_save_and_puts_the_previous_copy_back(tmp_path):
    (tmp_path / "run.previous").mkdir()
    (tmp_path / "run.previous" / "loss.csv").write_text("step\n1\n")
    (tmp_path / ".run.x1.partial").mkdir()  # its process is gone: nothing holds its lock
    recover_folder(tmp_path / "run")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]
    assert (tmp_path / "run" / "loss.csv").read_text() == "step\n1\n"


def test_recovery_leaves_a_save_that_is_going_on_alone(tmp_path):
    os.replace(claim_folder(tmp_path / "run"), tmp_path / "run.previous")  # between the two renames …
    live = tmp_path / ".run.x2.partial"
    live.mkdir()
    fd = os.open(live, os.O_RDONLY)
    fcntl.flock(fd, fcntl.LOCK_EX)  # … of a save still running
    try:
        recover_folder(tmp_path / "run")
        assert sorted(p.name for p in tmp_path.iterdir()) == [".run.x2.partial", "run.previous"]
    finally:
        os.close(fd)

