"""The Training panel's session, with no widget: its Job driven on this thread as the worker drives it."""

import numpy as np
import pytest

from diffusion_studio.app.jobs import drive
from diffusion_studio.app.state import StudioState
from diffusion_studio.app.training import FOLDER, ThinnedRows, TrainingRequest, TrainingSession, smooth
from diffusion_studio.core.checkpoint import load_checkpoint
from diffusion_studio.core.errors import DiffusionStudioError
from diffusion_studio.core.models.presets import NetworkSize
from diffusion_studio.core.recipes import IMAGE_RECIPE, recipe_for
from diffusion_studio.core.schedules import ScheduleConfig
from diffusion_studio.core.train_config import TrainConfig
from diffusion_studio.core.training import LOSS_BUCKETS, Trainer
from tests.app.events import Recorder

TINY = NetworkSize(base_channels=8, channel_mults=(1, 2), num_res_blocks=1, hidden=32, num_layers=1)
SCHEDULE = ScheduleConfig("linear", 50)


def request(output, steps=30, **changes):
    config = TrainConfig(data="swiss_roll", steps=steps, batch_size=16, learning_rate=1e-3, warmup_steps=0, device="cpu")
    settings = {"save_every": 1000, "preview_every": 0, **changes}
    return TrainingRequest(output, config, SCHEDULE, TINY, **settings)


def run(session, job, throttle_s=0.0):
    """What GeneratorWorker does, on this thread."""
    try:
        session.on_finished(drive(job, session.on_update, throttle_s))
    except DiffusionStudioError as exc:
        session.on_failed(str(exc))


def test_a_run_reports_every_loss_saves_and_ends_idle(tmp_path):
    session = TrainingSession()
    seen = Recorder(session)
    job = session.start(request(tmp_path / "roll", steps=30, save_every=10, preview_every=15))
    assert session.state == "running"
    run(session, job)
    steps, losses = session.loss_curve()
    assert steps.tolist() == list(range(1, 31)) and np.all(losses > 0)
    assert [step for _, step in seen.args("saved")] == [10, 20, 30]
    assert load_checkpoint(session.checkpoint).step == 30 and session.checkpoint == tmp_path / "roll"
    assert seen.args("finished") == [(30, False)] and session.state == "idle"
    assert seen.values("stateChanged") == ["running", "idle"]
    assert session.info.total_steps == 30 and session.info.reference.shape[1] == 2
    previews = [u.preview for (u,) in seen.args("progressed") if u.preview is not None]
    assert previews and previews[-1].shape == (1000, 2)


def test_the_throttle_batches_reports_without_losing_any(tmp_path):
    session = TrainingSession()
    seen = Recorder(session)
    run(session, session.start(request(tmp_path / "roll", steps=40)), throttle_s=3600)
    assert len(seen.args("started")) == 1  # the first item (RunInfo) goes at once …
    assert len(seen.args("progressed")) == 1  # … and every report in one update at the end
    assert session.loss_curve()[0].tolist() == list(range(1, 41))


def reported_loss_by_t(seen):
    """Every report's step and loss by t, as the session's progressed events carried them."""
    updates = [update for (update,) in seen.args("progressed")]
    return np.concatenate([u.steps for u in updates]), np.concatenate([u.loss_by_t for u in updates])


def test_every_reports_loss_by_t_is_kept_with_its_step(tmp_path):
    session = TrainingSession()
    seen = Recorder(session)
    run(session, session.start(request(tmp_path / "roll", steps=30)), throttle_s=3600)
    steps, rows = session.loss_by_t_history()
    assert steps.tolist() == list(range(1, 31)) and rows.shape == (30, LOSS_BUCKETS)
    every_step, every_row = reported_loss_by_t(seen)
    np.testing.assert_array_equal(steps, every_step)
    np.testing.assert_array_equal(rows, every_row)
    assert np.isfinite(rows[-1]).all() and not np.array_equal(rows[0], rows[-1])  # the running means move


def test_a_long_runs_loss_by_t_is_thinned_evenly_under_the_bound(tmp_path):
    session = TrainingSession(loss_by_t_rows=8)
    seen = Recorder(session)
    run(session, session.start(request(tmp_path / "roll", steps=30)))
    steps, rows = session.loss_by_t_history()
    # 30 reports under 8 rows: past 8, every other row goes (stride 2), then again (stride 4)
    assert steps.tolist() == [1, 5, 9, 13, 17, 21, 25, 29]
    every_step, every_row = reported_loss_by_t(seen)
    np.testing.assert_array_equal(rows, every_row[steps - every_step[0]])


def test_thinning_keeps_a_row_every_stride_reports_however_they_are_batched():
    steps = np.arange(1, 1001)
    rows = np.stack([steps, -steps], axis=1).astype(float)
    whole, batched = ThinnedRows(100), ThinnedRows(100)
    whole.extend(steps, rows)
    for start in range(0, 1000, 7):
        batched.extend(steps[start:start + 7], rows[start:start + 7])
    assert whole.stride == batched.stride == 16 and len(whole.steps) == 63  # 1000 reports / 16, rounded up
    np.testing.assert_array_equal(whole.steps, np.arange(1, 1001, 16))
    np.testing.assert_array_equal(batched.steps, whole.steps)
    np.testing.assert_array_equal(batched.rows, whole.rows)
    np.testing.assert_array_equal(whole.rows[:, 0], whole.steps)


def test_pause_holds_the_run_and_stop_ends_it_with_a_checkpoint(tmp_path):
    session = TrainingSession()
    seen = Recorder(session)
    job = session.start(request(tmp_path / "roll", steps=1_000_000))
    items = job.run(job.control.should_stop)
    updates = [job.digest([next(items)]) for _ in range(6)]  # RunInfo, then five reports
    for update in updates:
        session.on_update(update)
    session.toggle_pause()
    assert session.state == "paused" and job.control.paused
    session.toggle_pause()
    session.stop()
    assert session.state == "stopping"
    rest = list(items)  # the run ends before its next step and saves
    assert [type(item).__name__ for item in rest] == ["Saved"]
    session.on_update(job.digest(rest))
    session.on_finished(5)
    assert seen.args("finished") == [(5, True)] and load_checkpoint(tmp_path / "roll").step == 5
    assert seen.values("stateChanged") == ["running", "paused", "running", "stopping", "idle"]


def test_a_new_run_never_writes_into_an_earlier_runs_folder(tmp_path):
    session = TrainingSession()
    run(session, session.start(request(tmp_path / "roll", steps=3)))
    run(session, session.start(request(tmp_path / "roll", steps=3)))
    assert session.output == tmp_path / "roll-2" and load_checkpoint(tmp_path / "roll").step == 3
    assert session.loss_by_t_history()[0].tolist() == [1, 2, 3]  # the new run's history alone


def test_continuing_the_run_on_screen_extends_its_curve(tmp_path):
    session = TrainingSession(loss_by_t_rows=8)
    run(session, session.start(request(tmp_path / "roll", steps=10)))
    run(session, session.start(request(session.checkpoint, steps=30, resume=True)))
    assert session.loss_curve()[0].tolist() == list(range(1, 31))
    assert session.loss_by_t_history()[0].tolist() == [1, 5, 9, 13, 17, 21, 25, 29]  # thinned as one run of 30
    other = TrainingSession()
    other.open_checkpoint(tmp_path / "roll", 30)
    run(other, other.start(request(other.checkpoint, steps=35, resume=True)))
    assert other.loss_curve()[0].tolist() == list(range(31, 36))
    assert other.loss_by_t_history()[0].tolist() == list(range(31, 36))


def test_the_run_folder_logs_the_losses_the_curve_shows_and_continue_carries_it_on(tmp_path):
    session = TrainingSession()
    run(session, session.start(request(tmp_path / "roll", steps=6, save_every=4)))
    run(session, session.start(request(session.checkpoint, steps=9, resume=True)))
    steps, losses = session.loss_curve()
    logged = np.loadtxt(tmp_path / "roll" / "loss.csv", delimiter=",", skiprows=1)
    assert logged[:, 0].tolist() == steps.tolist() == list(range(1, 10))
    np.testing.assert_allclose(logged[:, 1], losses, rtol=1e-5)
    assert len((tmp_path / "roll" / "loss_by_t.csv").read_text().splitlines()) == 1 + 9


def test_the_loss_curve_exports_as_csv_atomically(tmp_path):
    session = TrainingSession()
    run(session, session.start(request(tmp_path / "roll", steps=5)))
    session.export_loss(tmp_path / "loss.csv")
    lines = (tmp_path / "loss.csv").read_text().splitlines()
    assert lines[0] == "step,loss" and [int(line.split(",")[0]) for line in lines[1:]] == [1, 2, 3, 4, 5]
    with pytest.raises(DiffusionStudioError, match="cannot save"):
        session.export_loss(tmp_path / "no" / "such" / "folder" / "loss.csv")


def test_a_diverging_loss_stops_with_a_message_and_keeps_the_last_good_checkpoint(tmp_path, monkeypatch):
    import torch

    real_step = Trainer._train_step

    def diverging_after_five_steps(self):
        losses, t = real_step(self)
        return (losses if self.step <= 5 else torch.full_like(losses, float("inf"))), t

    monkeypatch.setattr(Trainer, "_train_step", diverging_after_five_steps)
    session = TrainingSession()
    seen = Recorder(session)
    run(session, session.start(request(tmp_path / "run", steps=200, save_every=1)))
    (message,), = seen.args("failed")
    saves = [step for _, step in seen.args("saved")]
    assert "loss became" in message and session.state == "idle"
    assert saves == [1, 2, 3, 4, 5] and load_checkpoint(tmp_path / "run").step == 5


def test_running_out_of_gpu_memory_is_a_clear_message(tmp_path, monkeypatch):
    import torch

    def out_of_memory(self):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(Trainer, "_train_step", out_of_memory)
    session = TrainingSession()
    seen = Recorder(session)
    big = request(tmp_path / "run", steps=10)
    big = TrainingRequest(**{**big.__dict__, "config": TrainConfig(**{**big.config.__dict__, "batch_size": 4096})})
    run(session, session.start(big))
    assert seen.args("failed") == [("out of CPU memory at batch size 4096; try a smaller batch or model",)]
    assert not seen.args("saved") and not (tmp_path / "run").exists()


def test_the_smoothed_curve_follows_the_middle_of_the_noise():
    trend = np.exp(np.linspace(0.0, -3.0, 500))  # log L falls linearly: a centred average keeps it
    np.testing.assert_allclose(smooth(trend)[20:-20], trend[20:-20], rtol=1e-9)
    noisy = trend * np.exp(np.random.default_rng(0).normal(0, 0.3, 500))
    assert np.abs(np.log(smooth(noisy) / trend)).mean() < 0.3 * np.abs(np.log(noisy / trend)).mean()
    assert smooth(trend)[0] == trend[0]  # the start is not averaged into the fall after it


def test_choosing_the_data_applies_its_recipe_once_until_the_data_changes():
    session, state = TrainingSession(), StudioState()
    roll = session.choose_data("swiss_roll", state)
    assert roll == recipe_for("swiss_roll") and roll.kind == "points"
    assert state.schedule.config == roll.schedule != ScheduleConfig()  # the shared schedule is the recipe's
    state.update_schedule(timesteps=60)  # the user edits the schedule …
    assert session.choose_data("swiss_roll", state) is None  # … and picking the same data again keeps the edit
    assert state.schedule.timesteps == 60
    moons = session.choose_data("two_moons", state)
    assert moons.label == "Two moons" and state.schedule.config == moons.schedule
    assert session.choose_data("digits", state) == IMAGE_RECIPE and state.schedule.config == ScheduleConfig()
    assert session.choose_data(FOLDER, state) is None  # every image source has the one image recipe


def test_settings_of_their_own_stay_until_the_data_changes():
    session, state = TrainingSession(), StudioState()
    session.keep_settings("checkerboard")  # restored from the last launch, or a checkpoint's
    state.update_schedule(name="cosine")
    assert session.choose_data("checkerboard", state) is None and state.schedule.config.name == "cosine"
    assert session.choose_data("eight_gaussians", state) is not None and state.schedule.config.name == "linear"


def test_continue_is_refused_until_steps_pass_the_checkpoints_step(tmp_path):
    session = TrainingSession()
    assert session.continue_refusal(100) == "No checkpoint to continue: train one, or open one"
    session.open_checkpoint(tmp_path / "roll", 40)
    assert session.continue_refusal(40) == "roll is at step 40: set Steps above that to continue it"
    assert session.continue_refusal(41) is None


def test_a_schedule_that_fails_on_points_is_warned_about_and_images_are_not():
    session = TrainingSession()
    warning = session.schedule_warning("swiss_roll", ScheduleConfig("cosine", 1000))
    assert "cosine T=1000 on 2-D points" in warning and "kept in the data's range" in warning
    assert session.schedule_warning("swiss_roll", recipe_for("swiss_roll").schedule) is None
    assert session.schedule_warning(FOLDER, ScheduleConfig("cosine", 1000)) is None
