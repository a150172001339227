"""The 2-D lab's session, without widgets: data and drawings, DDPM and DDIM from one x_T, what is
shown at t, the marginals check, and training on a drawing."""

import numpy as np
import pytest

from diffusion_studio.app.jobs import drive
from diffusion_studio.app.lab import DRAWN_POINTS, LabSession
from diffusion_studio.core.data.datasets import load_points_file
from diffusion_studio.core.errors import SettingError
from diffusion_studio.core.mixture import EIGHT_GAUSSIANS, known_mixture
from diffusion_studio.core.sample_config import MAX_POINTS, SampleConfig

from tests.app.events import Recorder


def run(session: LabSession, config: SampleConfig) -> None:
    job = session.start(config)
    session.on_finished(drive(job, session.on_progress, 0.0))


@pytest.fixture
def exact_eight():
    session = LabSession()
    session.set_data("eight_gaussians")
    session.set_use_exact(True)
    return session


def test_bundled_data_comes_with_its_mixture_and_a_view_around_it():
    session = LabSession()
    session.set_data("swiss_roll")
    assert session.mixture is None and len(session.data) > 1000
    x_min, x_max, y_min, y_max = session.bounds
    assert x_max - x_min == pytest.approx(y_max - y_min)  # square
    assert x_min < session.data[:, 0].min() and session.data[:, 1].max() < y_max
    session.set_data("eight_gaussians")
    assert session.mixture is EIGHT_GAUSSIANS
    with pytest.raises(SettingError, match="Gaussian mixture"):
        LabSession().set_use_exact(True)


def test_ddpm_and_ddim_start_from_one_x_T_and_end_apart(exact_eight):
    session = exact_eight
    events = Recorder(session)
    run(session, SampleConfig(num=300, seed=3))
    runs = session.runs
    T = session.exact_model().schedule_config.timesteps
    assert len(runs.sde) == len(runs.ode) == T + 1  # every step and the result
    np.testing.assert_array_equal(runs.sde.x_t[0], runs.ode.x_t[0])  # one x_T
    assert np.abs(runs.sde.x_t[-1] - runs.ode.x_t[-1]).mean() > 0.05  # the SDE's noise takes its points elsewhere
    assert len(events.args("runsChanged")) == 1 and len(events.values("progressed")) >= 1
    # both end on the data: each point near one of the eight centres
    for end in (runs.sde.x_t[-1], runs.ode.x_t[-1]):
        nearest = np.linalg.norm(end[:, None] - EIGHT_GAUSSIANS.means[None], axis=2).min(axis=1)
        assert np.median(nearest) < 0.2


def test_the_playhead_moves_the_clouds_and_grows_the_paths(exact_eight):
    session = exact_eight
    run(session, SampleConfig(num=200, steps=20, seed=0))
    assert session.t == session.times[0]
    start, start_paths = session.cloud("ode"), session.particle_paths("sde")
    assert start_paths.shape == (1, session.paths, 2)
    session.set_frame(len(session.times) - 1)
    assert session.t == 0
    end = session.cloud("ode")
    np.testing.assert_array_equal(end, session.runs.ode.x_t[-1])
    assert not np.allclose(start, end)
    assert session.particle_paths("sde").shape == (21, session.paths, 2)


def test_the_field_of_the_exact_denoiser_is_the_exact_field(exact_eight):
    session = exact_eight
    run(session, SampleConfig(num=50, steps=10))
    session.set_frame(3)
    field = session.field(grid_size=7)
    assert field.t == session.t and field.points.shape == (49, 2)
    np.testing.assert_allclose(field.learned, field.exact, rtol=1e-4, atol=1e-5)


def test_the_marginals_of_the_exact_runs_follow_the_forward_process(exact_eight):
    session = exact_eight
    run(session, SampleConfig(num=2000, seed=1))
    marginals = session.marginals()
    assert set(marginals) == {"sde", "ode", "q"}
    q = marginals["q"]
    for kind in ("sde", "ode"):
        m = marginals[kind]
        np.testing.assert_allclose(m.std, q.std[m.t], atol=0.08)


def test_stopping_a_run_keeps_the_old_runs(exact_eight):
    session = exact_eight
    run(session, SampleConfig(num=20, steps=5))
    before = session.runs
    job = session.start(SampleConfig(num=20, steps=5, seed=9))
    job.control.stop()
    session.on_finished(drive(job, session.on_progress, 0.0))
    assert session.runs is before and not session.running


def test_no_model_no_run_and_too_many_points_refused():
    session = LabSession()
    session.set_data("swiss_roll")
    with pytest.raises(SettingError, match="train a model here"):
        session.start()
    session.set_data("eight_gaussians")
    session.set_use_exact(True)
    with pytest.raises(SettingError, match="at most"):
        session.start(SampleConfig(num=MAX_POINTS + 1))


def test_drawing_points_and_gaussians(tmp_path):
    session = LabSession()
    events = Recorder(session)
    for x in range(5):
        session.draw(x * 0.1, 1.0)
    assert session.data_name == "drawing" and session.data.shape == (5, 2) and session.mixture is None
    assert len(events.args("dataChanged")) == 5
    session.drawing.undo()
    session.show_drawing()
    assert len(session.data) == 4
    points = session.training_source(tmp_path)
    assert load_points_file(points).data.shape == (4, 2) and known_mixture(points) is None

    session.drawing.clear()
    session.drawing.mode = "gaussians"
    session.drawing.std = 0.2
    session.draw(-1.0, 0.0)
    session.draw(1.0, 0.0)
    assert session.data.shape == (DRAWN_POINTS, 2) and session.mixture is not None
    np.testing.assert_allclose(session.mixture.means, [[-1, 0], [1, 0]])
    source = session.training_source(tmp_path)
    assert source != points  # a new folder for every drawing trained on
    np.testing.assert_allclose(known_mixture(source).stds, [0.2, 0.2])
    drawn = load_points_file(source)  # each draw labelled by its component, to train a conditional model on
    assert drawn.num_classes == 2 and drawn.labels is not None
    np.testing.assert_array_equal(drawn.labels, (drawn.data[:, 0] > 0).astype(np.int64))


def test_an_empty_drawing_cannot_be_trained_on(tmp_path):
    session = LabSession()
    session.draw(0.0, 0.0)
    with pytest.raises(SettingError, match="at least 2 points"):
        session.training_request(tmp_path)


def test_training_on_a_drawing_learns_it(tmp_path):
    """A short real run of the recipe on two drawn clusters: its samples land near them, far
    closer than the noise they start from."""
    from diffusion_studio.app.training import TrainingSession
    from diffusion_studio.core.loaded_model import open_model

    session = LabSession()
    session.drawing.mode = "gaussians"
    session.drawing.std = 0.1
    session.draw(-1.5, 0.5)
    session.draw(1.5, -0.5)
    request = session.training_request(tmp_path, steps=600)
    training = TrainingSession()
    updates = Recorder(training)
    job = training.start(request)
    training.on_finished(drive(job, training.on_update, 0.0))
    previews = [u.preview for u in updates.values("progressed") if u.preview is not None]
    assert len(previews) >= 2 and previews[0].shape[1] == 2  # the cloud, every LAB_PREVIEW_EVERY steps
    session.set_model(open_model(training.checkpoint))
    assert session.mixture is not None  # the drawn mixture came back with the model's data
    run(session, SampleConfig(num=500))
    centres = session.mixture.means

    def distance(x):
        return np.linalg.norm(x[:, None] - centres[None], axis=2).min(axis=1).mean()

    assert distance(session.runs.sde.x_t[-1]) < 0.3 * distance(session.runs.sde.x_t[0])
