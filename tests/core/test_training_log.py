"""A run's log files (core.training_log), written by run_training beside its checkpoint."""

import csv
import os
import shutil

import numpy as np
import pytest

from diffusion_studio.core.checkpoint import load_checkpoint
from diffusion_studio.core.errors import FileSaveError
from diffusion_studio.core.models.presets import NetworkSize
from diffusion_studio.core.runs import Saved, continue_run, new_run, run_training
from diffusion_studio.core.schedules import ScheduleConfig
from diffusion_studio.core.train_config import TrainConfig
from diffusion_studio.core.training_log import (
    LOSS_BY_T_FILE, LOSS_COLUMNS, LOSS_FILE, TrainingLog, csv_row, loss_by_t_columns,
)

TINY = NetworkSize(hidden=16, num_layers=1)
SCHEDULE = ScheduleConfig("linear", 30)


def train(output, steps, resume=False, save_every=1000):
    if resume:
        trainer = continue_run(output, steps, "cpu")
    else:
        trainer = new_run(TrainConfig(data="swiss_roll", steps=steps, batch_size=16, device="cpu"), SCHEDULE, TINY)
    return [item for item in run_training(trainer, output, save_every)]


def rows(path):
    with open(path, newline="") as handle:
        return list(csv.reader(handle))


def test_csv_rows_write_whole_numbers_as_they_are_and_the_rest_to_six_digits():
    assert csv_row((np.int64(3), 0.123456789, float("nan"), "x")) == "3,0.123457,nan,x\n"


def test_the_loss_by_t_columns_name_the_t_each_bucket_holds():
    assert loss_by_t_columns(1000) == ("step", *(f"t{100 * b + 1}-{100 * b + 100}" for b in range(10)))
    # T = 25: bucket b holds the t with ⌊(t − 1)·10/25⌋ = b
    expected = [[t for t in range(1, 26) if (t - 1) * 10 // 25 == b] for b in range(10)]
    assert loss_by_t_columns(25)[1:] == tuple(f"t{ts[0]}-{ts[-1]}" for ts in expected)


def test_every_report_is_a_row_and_the_folder_keeps_the_logs_through_each_save(tmp_path):
    out = tmp_path / "run"
    items = train(out, 12, save_every=5)
    reports = [item for item in items if not isinstance(item, Saved)]
    loss = rows(out / LOSS_FILE)
    assert tuple(loss[0]) == LOSS_COLUMNS
    assert [int(r[0]) for r in loss[1:]] == [r.step for r in reports] == list(range(1, 13))
    assert [float(r[1]) for r in loss[1:]] == pytest.approx([r.loss for r in reports], rel=1e-5)
    by_t = rows(out / LOSS_BY_T_FILE)
    assert tuple(by_t[0]) == loss_by_t_columns(30) and len(by_t) == 13
    np.testing.assert_allclose(np.array(by_t[-1][1:], dtype=float), reports[-1].loss_by_t, rtol=1e-5)
    assert load_checkpoint(out).step == 12  # saved at 5, 10 and 12, the logs moved along each time


def test_a_continued_run_appends_and_drops_what_a_crash_left_after_its_checkpoint(tmp_path):
    out = tmp_path / "run"
    train(out, 6)
    with open(out / LOSS_FILE, "a") as handle:  # a crash after step 6's checkpoint: rows 7, 8 and half a row
        handle.write("7,0.5,0.001,100,1\n8,0.5,0.001,100,1\n9,0.4")
    train(out, 10, resume=True)
    assert [int(r[0]) for r in rows(out / LOSS_FILE)[1:]] == list(range(1, 11))
    assert [int(r[0]) for r in rows(out / LOSS_BY_T_FILE)[1:]] == list(range(1, 11))
    train(out, 3)  # a new run in the same folder starts the logs again
    assert [int(r[0]) for r in rows(out / LOSS_FILE)[1:]] == [1, 2, 3]


def test_a_log_of_another_shape_starts_again(tmp_path):
    (tmp_path / LOSS_FILE).write_text("epoch,value\n1,2\n")
    TrainingLog(tmp_path, 5, 30).close()
    assert (tmp_path / LOSS_FILE).read_text() == csv_row(LOSS_COLUMNS)


def test_tensorboard_gets_the_scalars_when_it_is_installed(tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    train(tmp_path / "run", 4, save_every=2)
    events = EventAccumulator(str(tmp_path / "run" / "tensorboard"))
    events.Reload()
    assert [e.step for e in events.Scalars("loss")] == [1, 2, 3, 4]
    assert "loss_by_t/t1-3" in events.Tags()["scalars"]


def test_the_logs_survive_a_kill_at_any_point_of_a_save_and_resume_counts_every_step_once(tmp_path, monkeypatch):
    """The folder as a kill -9 would leave it, copied just before each rename, link and removal
    of the save at step 4 (of saves at 2, 4 and 6), then continued to step 6 from that copy."""
    runs, kills = tmp_path / "runs", []
    saving = snapshotting = False

    def snapshot_before(name):
        real = getattr(os, name) if hasattr(os, name) else getattr(shutil, name)

        def call(*args, **kwargs):
            nonlocal snapshotting
            if saving and not snapshotting:
                snapshotting = True
                try:
                    kills.append(shutil.copytree(runs, tmp_path / f"kill{len(kills)}", symlinks=True))
                finally:
                    snapshotting = False
            return real(*args, **kwargs)
        return call

    for name in ("replace", "link"):
        monkeypatch.setattr(os, name, snapshot_before(name))
    monkeypatch.setattr(shutil, "rmtree", snapshot_before("rmtree"))
    trainer = new_run(TrainConfig(data="swiss_roll", steps=6, batch_size=16, device="cpu"), SCHEDULE, TINY)
    for item in run_training(trainer, runs / "run", save_every=2):
        if isinstance(item, Saved) and item.step == 4:
            break
        saving = item.step == 4  # the save at step 4 follows its report
    monkeypatch.undo()
    assert len(kills) >= 5  # links of both logs, the two renames, the removal of the old copy
    for killed in kills:
        train(killed / "run", 6, resume=True)
        for name in (LOSS_FILE, LOSS_BY_T_FILE):
            assert [int(r[0]) for r in rows(killed / "run" / name)[1:]] == list(range(1, 7)), (killed.name, name)
        assert sorted(p.name for p in killed.iterdir()) == ["run"]  # no staging folder, no previous copy left


def test_a_run_whose_folder_cannot_be_made_is_refused_before_its_first_step(tmp_path):
    (tmp_path / "file").write_text("not a folder")
    trainer = new_run(TrainConfig(data="swiss_roll", steps=5, batch_size=16, device="cpu"), SCHEDULE, TINY)
    with pytest.raises(FileSaveError, match="cannot save 'run'"):
        next(run_training(trainer, tmp_path / "file" / "run", 1000))
    assert trainer.step == 0
