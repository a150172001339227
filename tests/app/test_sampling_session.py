"""The Sampling panel's session, with no widget: a run's Job, the runs listed for a comparison, the playhead in t,
playback, focus."""

from dataclasses import replace

import numpy as np
import pytest

from diffusion_studio.app.jobs import drive
from diffusion_studio.app.sampling import SamplingSession, model_forward_marginals
from diffusion_studio.core.compare import MAX_RUNS, sliced_wasserstein
from diffusion_studio.core.errors import DiffusionStudioError, SettingError
from diffusion_studio.core.loaded_model import LoadedModel
from diffusion_studio.core.models import build_model
from diffusion_studio.core.models.config import MLPConfig
from diffusion_studio.core.sample_config import SampleConfig, run_label
from diffusion_studio.core.schedules import NoiseSchedule, ScheduleConfig
from tests.app.events import Recorder


@pytest.fixture(scope="module")
def model():
    network = build_model(MLPConfig(dim=2, hidden=16, num_layers=1)).eval()
    return LoadedModel(network, ScheduleConfig("linear", 40), "eps", (2,), "tiny", "")


def sample(session, model, throttle_s=0.0, **config):
    job = session.start(model, SampleConfig(**{"num": 8, **config}))
    session.on_finished(drive(job, session.on_update, throttle_s))


def test_a_run_previews_records_and_leaves_the_playhead_at_the_result(model):
    session = SamplingSession()
    seen = Recorder(session)
    sample(session, model, sampler="ddim", steps=10)
    previews = seen.values("previewed")
    assert [p.index for p in previews] == list(range(1, 11)) and previews[-1].x_t.shape == (8, 2)
    assert len(session.trajectory) == 11 and session.final.shape == (8, 2)
    assert session.t == 0 and session.frame() == 10 and not session.running
    assert ("finished", ("Done: 11 frames recorded",)) in seen.events
    recorded = session.trajectory
    session.open(recorded)  # as if from a file: no full-precision samples come with it
    assert session.final is None and session.trajectory is recorded
    assert seen.args("runningChanged") == [(True,), (False,)]


def test_cancelling_before_the_first_step_says_so(model):
    session = SamplingSession()
    seen = Recorder(session)
    job = session.start(model, SampleConfig(num=4))
    session.cancel()
    session.on_finished(drive(job, session.on_update, 0.0))
    assert ("failed", ("Cancelled before the first step",)) in seen.events and session.trajectory is None
    assert not session.running


def test_a_cancelled_run_shows_the_frames_it_recorded(model):
    session = SamplingSession()
    job = session.start(model, SampleConfig(num=4))
    updates = []

    def cancel_after_five(preview):
        updates.append(preview)
        if preview.index == 5:
            session.cancel()

    result = drive(job, cancel_after_five, 0.0)
    assert result.cancelled and len(result.trajectory) == 6  # five steps and where they got to
    seen = Recorder(session)
    session.on_finished(result)
    assert session.trajectory is result.trajectory and updates[-1].index == 5
    trajectory = result.trajectory
    assert trajectory.timesteps.tolist() == [40, 39, 38, 37, 36, 35]  # DDPM from T = 40: x_35 is where it stopped, not x_0
    assert session.t == 35 and ("finished", ("Cancelled at t = 35: showing the 6 frames recorded",)) in seen.events
    np.testing.assert_array_equal(trajectory.x_t[-1], result.final)  # points are stored as they are
    np.testing.assert_array_equal(trajectory.pred_x0[-1], trajectory.pred_x0[-2])  # the last x̂_0 predicted, from x_36
    session.open(trajectory)
    assert session.t == 35


def test_a_cancelled_run_forks_from_where_it_stopped(model):
    session = SamplingSession()
    job = session.start(model, SampleConfig(num=4))

    def cancel_after_five(preview):
        if preview.index == 5:
            session.cancel()

    session.on_finished(drive(job, cancel_after_five, 0.0))
    job = session.start_fork(model, 0, 35, SampleConfig(sampler="ddim", steps=5, num=4))
    session.on_forked(drive(job, session.on_update, 0.0))
    parent, fork = session.runs
    assert fork.trajectory.timesteps.tolist() == [40, 39, 38, 37, 36, 35, 28, 21, 14, 7, 0]
    assert parent.trajectory.timesteps[-1] == 35


def test_impossible_settings_are_refused_before_anything_runs(model):
    session = SamplingSession()
    with pytest.raises(SettingError, match="eta"):
        session.start(model, SampleConfig(sampler="ddim", options={"eta": -1.0}))
    assert not session.running


def test_the_playhead_is_a_timestep_shared_by_trajectories_of_any_length(model):
    session = SamplingSession()
    sample(session, model, sampler="ddim", steps=40)
    fine = session.trajectory
    sample(session, model, sampler="ddim", steps=4)
    coarse = session.trajectory
    session.set_trajectories([coarse, fine])
    seen = Recorder(session)
    assert session.times.tolist() == list(range(40, -1, -1))  # every frame of either run is a stop
    session.set_frame(10)
    assert session.t == 30 and session.frame(0) == 1 and fine.timesteps[session.frame(1)] == 30
    session.set_t(17)
    assert coarse.timesteps[session.frame(0)] == 20 and fine.timesteps[session.frame(1)] == 17
    session.step_frames(-30)
    assert session.t == 40 and session.position() == 0
    assert seen.args("playheadChanged") == [(30,), (17,), (40,)]


def test_playback_walks_the_frames_and_stops_at_the_result(model):
    session = SamplingSession()
    sample(session, model, sampler="ddim", steps=3)
    session.toggle_play()  # at the result: playback starts over from x_T
    assert session.playing and session.frame() == 0
    for _ in range(10):
        session.tick()
    assert not session.playing and session.frame() == 3
    session.toggle_play()
    session.tick()
    session.toggle_play()
    assert not session.playing and session.frame() == 1


def test_focus_enlarges_one_sample(model):
    session = SamplingSession()
    seen = Recorder(session)
    session.set_focus(3)
    session.set_focus(3)
    session.set_focus(None)
    assert seen.args("focusChanged") == [(3,), (None,)]


def compare(session, model, configs, stop_after=None):
    job = session.start_comparison(model, configs)
    seen = []

    def on_update(preview):
        seen.append(preview)
        if stop_after is not None and len(seen) >= stop_after:
            session.cancel()

    session.on_compared(drive(job, on_update, 0.0))
    return seen


def test_a_comparison_runs_each_sampler_from_one_x_T_and_scrubs_them_together(model):
    session = SamplingSession()
    finished = []
    session.finished.connect(finished.append)
    configs = [SampleConfig(sampler="ddim", steps=4, num=8), SampleConfig(sampler="heun", steps=10, num=8)]
    previews = compare(session, model, configs)
    assert sorted({p.run for p in previews}) == [0, 1]  # the tiny model's data is unknown: no reference run
    coarse, fine = session.trajectories
    assert [r.nfe for r in session.runs] == [4, 19] and len(coarse) == 5 and len(fine) == 11
    assert np.array_equal(coarse.x_t[0], fine.x_t[0])  # the same x_T
    assert finished == ["Compared 2 runs"] and session.t == 0
    session.set_t(30)
    assert coarse.timesteps[session.frame(0)] == 30 and abs(int(fine.timesteps[session.frame(1)]) - 30) <= 2
    sample(session, model, sampler="ddim", steps=3)  # a single run clears the comparison
    assert session.runs == [] and len(session.trajectories) == 1


def test_a_cancelled_comparison_keeps_the_runs_that_ended(model):
    session = SamplingSession()
    configs = [SampleConfig(sampler="ddim", steps=3, num=8), SampleConfig(sampler="ddpm", num=8)]
    compare(session, model, configs, stop_after=5)
    assert len(session.runs) == 1 and session.runs[0].config.sampler == "ddim" and not session.running


def test_a_fork_becomes_a_new_row_sharing_its_parents_prefix(model):
    session = SamplingSession()
    compare(session, model, [SampleConfig(sampler="ddpm", num=8, seed=2)])
    parent = session.trajectories[0]
    t = int(parent.timesteps[10])  # 30
    job = session.start_fork(model, 0, t, SampleConfig(sampler="euler", steps=3, num=8, seed=5))
    session.on_forked(drive(job, lambda update: None, 0.0))
    assert len(session.runs) == 2 and len(session.trajectories) == 2
    fork = session.trajectories[1]
    assert np.array_equal(fork.x_t[:10], parent.x_t[:10]) and fork.timesteps[10:].tolist() == [30, 20, 10, 0]
    assert session.runs[1].nfe == 10 + 3
    recorded = session.output_metadata()["runs"]  # what a picture of the rows records
    assert [r["label"] for r in recorded] == [run.label for run in session.runs] and recorded[1]["fork_t"] == 30
    assert (recorded[1]["sampler"], recorded[1]["seed"], recorded[1]["forked_from"]) == ("euler", 5, session.runs[0].label)
    with pytest.raises(SettingError, match="before the result"):
        session.start_fork(model, 0, 0, SampleConfig(sampler="euler", steps=3, num=8))


def test_a_single_run_forks_into_two_rows(model):
    """Fork from a single run, with no comparison set up: the run and its fork become two rows."""
    session = SamplingSession()
    sample(session, model, sampler="ddpm", seed=2)
    single = session.trajectory
    assert [run.label for run in session.forkable] == ["DDPM (ancestral) 40 steps"] and session.runs == []
    t = int(single.timesteps[10])
    job = session.start_fork(model, 0, t, SampleConfig(sampler="ddim", steps=3, num=8, seed=5))
    session.on_forked(drive(job, lambda update: None, 0.0))
    parent, fork = session.trajectories
    assert parent is single and len(session.runs) == 2 and session.single is None
    assert np.array_equal(fork.x_t[:10], single.x_t[:10]) and fork.timesteps[10] == t
    assert session.runs[1].config.sampler == "ddim" and session.runs[1].nfe == 10 + 3
    assert [run.distance for run in session.runs] == [None, None]  # no data known to measure them by
    session.open(single)  # a file's trajectory has no settings to re-run: nothing to fork
    assert session.forkable == []
    with pytest.raises(SettingError, match="sampled here"):
        session.start_fork(model, 0, t, SampleConfig(sampler="ddim", steps=3, num=8))


def test_a_single_run_of_a_model_of_known_points_and_its_fork_are_measured_against_the_data(model):
    moons = replace(model, data="two_moons")
    session = SamplingSession()
    sample(session, moons, sampler="ddpm", seed=2)
    job = session.start_fork(moons, 0, int(session.trajectory.timesteps[10]), SampleConfig(sampler="ddim", steps=3, num=8))
    session.on_forked(drive(job, lambda update: None, 0.0))
    data = moons.training_points()
    assert np.array_equal(session.reference, data)
    assert [run.distance for run in session.runs] == [sliced_wasserstein(run.final, data) for run in session.runs]


def test_runs_listed_for_a_comparison_all_start_from_its_seed_and_number(model):
    session = SamplingSession()
    seen = Recorder(session)
    session.list_run(SampleConfig(sampler="ddim", steps=4, seed=7, num=3), timesteps=40)
    session.list_run(SampleConfig(sampler="euler", steps=6), timesteps=40)
    assert [run.label for run in session.listed] == [run_label(run.config, 40) for run in session.listed]
    assert len(seen.args("listedChanged")) == 2
    session.on_compared(drive(session.start_listed(model, seed=5, num=6), session.on_update, 0.0))
    assert [(run.config.sampler, run.config.seed, run.config.num) for run in session.runs] == [("ddim", 5, 6), ("euler", 5, 6)]
    assert np.array_equal(session.trajectories[0].x_t[0], session.trajectories[1].x_t[0])  # one x_T
    session.unlist_run(0)
    assert [run.config.sampler for run in session.listed] == ["euler"] and len(seen.args("listedChanged")) == 3
    with pytest.raises(IndexError):
        session.unlist_run(1)


def test_a_comparison_lists_at_most_max_runs():
    session = SamplingSession()
    for _ in range(MAX_RUNS):
        session.list_run(SampleConfig(), timesteps=40)
    with pytest.raises(DiffusionStudioError, match=f"at most {MAX_RUNS} runs"):
        session.list_run(SampleConfig(), timesteps=40)
    assert len(session.listed) == MAX_RUNS


def test_a_trajectory_saved_opens_again_without_its_full_precision_samples(model, tmp_path):
    session = SamplingSession()
    with pytest.raises(DiffusionStudioError, match="Nothing to save"):
        session.save(tmp_path / "none.npz")
    sample(session, model, sampler="ddim", steps=5)
    session.save(tmp_path / "t.npz")
    recorded = session.trajectory
    seen = Recorder(session)
    opened = session.open_file(tmp_path / "t.npz")
    assert session.trajectory is opened and np.array_equal(opened.x_t, recorded.x_t) and session.final is None
    assert seen.values("playheadChanged") == [0]
    (tmp_path / "bad.npz").write_bytes(b"PK not a zip")
    with pytest.raises(DiffusionStudioError, match="bad.npz"):
        session.open_file(tmp_path / "bad.npz")
    assert session.trajectory is opened
    with pytest.raises(DiffusionStudioError):
        session.save(tmp_path / "missing" / "t.npz")
    assert not (tmp_path / "missing").exists()


def test_the_forward_marginals_are_computed_once_per_model_and_a_late_answer_for_another_is_dropped(model):
    session = SamplingSession()
    seen = Recorder(session)
    moons = LoadedModel(model.network, model.schedule_config, "eps", (2,), "moons", "two_moons")
    assert session.needs_forward(moons) and not session.needs_forward(moons)
    assert session.forward_marginals(moons) is None  # asked for, not come yet
    marginals = model_forward_marginals(moons)
    data = moons.training_data()
    assert marginals.t.tolist() == list(range(41))
    np.testing.assert_allclose(marginals.mean[0], data.mean(), rtol=1e-5)  # m_q(0) = m_0 …
    np.testing.assert_allclose(marginals.mean[40], np.sqrt(NoiseSchedule(moons.schedule_config).alpha_bars[40]) * data.mean(),
                               rtol=1e-5)  # … and √ᾱ_t m_0 after
    assert session.needs_forward(model)  # another model is asked for before the moons' marginals come …
    session.on_forward(moons, marginals)
    assert session.forward_marginals(moons) is None and not seen.args("forwardChanged")  # … so they are dropped
    session.on_forward(model, model_forward_marginals(model))  # a model without data at hand has none
    assert session.forward_marginals(model) is None and len(seen.args("forwardChanged")) == 1
    assert model_forward_marginals(model) is None
