"""The Inpainting panel's session, with no widget: the brush, the image and mask at the model's
size, a run's Job, the trajectory under the playhead."""

import numpy as np
import pytest
import torch

from diffusion_studio.app.inpainting import InpaintingSession, brush_pixels
from diffusion_studio.app.jobs import drive
from diffusion_studio.core.data.images import to_uint8
from diffusion_studio.core.errors import MaskError, SettingError
from diffusion_studio.core.loaded_model import LoadedModel
from diffusion_studio.core.sample_config import SampleConfig
from tests.app.events import Recorder
from tests.core.points import points_model

A = torch.linspace(-0.9, 0.9, 64).reshape(1, 8, 8)
B = -A.flip(-1)


@pytest.fixture(scope="module")
def model():
    return points_model(torch.stack([A, B]))


@pytest.fixture
def session(model):
    session = InpaintingSession()
    session.set_model(model)
    session.set_image(A.numpy().transpose(1, 2, 0), "A")
    return session


def inpaint(session, model, on_update=None, **config):
    job = session.start(model, SampleConfig(**{"sampler": "ddpm", "num": 6, "seed": 2, **config}))
    session.on_finished(drive(job, on_update or session.on_update, 0.0))


def test_a_brush_covers_the_pixels_whose_centres_lie_within_its_radius_of_the_stroke():
    dab = brush_pixels((8, 8), (4.5, 4.5), 1.0)
    expected = np.zeros((8, 8), bool)
    expected[4, 3:6] = expected[3:6, 4] = True  # the pixel and its four neighbours, at distance 1
    assert np.array_equal(dab, expected)
    stroke = brush_pixels((8, 8), (6.5, 1.2), 0.5, start=(1.5, 1.8))  # a drag along row 1: no gaps
    assert np.array_equal(np.argwhere(stroke), [[1, c] for c in range(1, 7)])
    assert not brush_pixels((8, 8), (20.0, 20.0), 2.0).any()  # off the image


def test_painting_erasing_and_clearing_tell_the_view_only_when_the_mask_changes(session):
    seen = Recorder(session)
    session.paint((2.0, 2.0), 1.0)
    assert session.mask.sum() == 4 and session.mask[1:3, 1:3].all()
    session.paint((2.0, 2.0), 1.0)  # nothing new
    session.erase((1.5, 1.5), 0.5)
    assert session.mask.sum() == 3 and not session.mask[1, 1]
    session.clear()
    session.clear()
    assert not session.mask.any()
    assert [name for name, _ in seen.events] == ["maskChanged"] * 3


def test_the_image_and_mask_follow_the_models_size(session):
    session.paint((6.0, 8.0), 2.0, start=(6.0, 0.0))
    painted = session.mask.copy()
    wide = np.zeros((8, 16, 3), np.float32)  # another image: fitted, and the mask stays
    wide[:, 4:12] = 1.0
    session.set_image(wide, "white square")
    assert session.image.shape == (8, 8, 1) and np.allclose(session.image[:, 1:-1], 1.0, atol=0.01)
    assert np.array_equal(session.mask, painted)
    seen = Recorder(session)
    big = points_model(torch.zeros(1, 3, 16, 16))
    session.set_model(big)
    assert session.shape == (3, 16, 16) and session.image.shape == (16, 16, 3) and session.mask.shape == (16, 16)
    assert np.array_equal(session.mask[::2, ::2], painted)
    assert [name for name, _ in seen.events] == ["imageChanged", "maskChanged"]
    points = LoadedModel(big.network, big.schedule_config, "eps", (2,), "points", "")
    with pytest.raises(SettingError, match="image model"):
        session.set_model(points)
    assert session.shape == (3, 16, 16)


def test_a_run_keeps_the_known_pixels_and_leaves_the_playhead_at_the_result(session, model):
    seen = Recorder(session)
    session.paint((6.0, 8.0), 2.0, start=(6.0, 0.0))  # the right half
    fill = session.mask.copy()
    assert fill[:, 4:].all() and not fill[:, :4].any()
    inpaint(session, model, steps=8)
    previews = seen.values("previewed")
    assert [p.index for p in previews] == list(range(1, 9)) and previews[-1].x_t.shape == (6, 8, 8, 1)
    trajectory = session.trajectory
    assert len(trajectory) == 9 and session.final.shape == (6, 1, 8, 8)
    assert session.t == 0 and session.frame() == 8 and not session.running
    assert seen.args("runningChanged") == [(True,), (False,)] and ("finished", ("Done: 9 frames recorded",)) in seen.events
    keep = ~fill
    assert np.array_equal(session.final[:, 0][:, keep], np.broadcast_to(A[0].numpy()[keep], (6, keep.sum())))
    assert (trajectory.x_t[-1][..., 0][:, keep] == to_uint8(A[0].numpy())[keep]).all()
    assert np.allclose(session.final[:, 0][:, fill], A[0].numpy()[fill], atol=0.05)  # filled as the known pixels say


def test_the_run_fills_the_mask_as_it_was_when_the_run_started(session, model):
    session.paint((2.0, 2.0), 1.0)
    started = session.mask.copy()
    job = session.start(model, SampleConfig(sampler="ddim", steps=3, num=1))
    session.clear()  # painting goes on while the run does
    session.paint((6.0, 6.0), 1.0)
    session.on_finished(drive(job, session.on_update, 0.0))
    assert np.array_equal(session.request.mask, started)
    kept = ~started
    assert np.array_equal(session.final[0, 0][kept], A[0].numpy()[kept])


def test_runs_that_cannot_inpaint_are_refused_before_anything_runs(model):
    session = InpaintingSession()
    session.set_model(model)
    with pytest.raises(SettingError, match="open an image"):
        session.start(model, SampleConfig())
    session.set_image(A.numpy().transpose(1, 2, 0), "A")
    with pytest.raises(MaskError, match="nothing to fill"):
        session.start(model, SampleConfig())
    session.paint((4.0, 4.0), 2.0)
    with pytest.raises(SettingError, match="eta"):
        session.start(model, SampleConfig(sampler="ddim", options={"eta": -1.0}))
    with pytest.raises(SettingError, match="not at this model's size"):
        session.start(points_model(torch.zeros(1, 1, 4, 4)), SampleConfig())
    assert not session.running
    session.start(model, SampleConfig(sampler="ddim", steps=2))
    with pytest.raises(RuntimeError):
        session.start(model, SampleConfig(sampler="ddim", steps=2))


def test_a_cancelled_run_shows_what_it_recorded_and_the_playhead_scrubs_and_plays_it(session, model):
    session.paint((4.0, 4.0), 2.0)

    def cancel_after_three(preview):
        if preview.index == 3:
            session.cancel()

    inpaint(session, model, on_update=cancel_after_three)  # DDPM, all 50 steps
    assert len(session.trajectory) == 4 and session.times.tolist() == [50, 49, 48, 47]  # x_47: where it stopped
    session.set_frame(1)
    assert session.t == 49 and session.frame() == 1
    session.toggle_play()
    for _ in range(5):
        session.tick()
    assert not session.playing and session.frame() == 3


def test_a_run_cancelled_before_its_first_step_leaves_the_last_results_with_their_mask(session, model):
    session.paint((2.0, 2.0), 1.0)
    inpaint(session, model, sampler="ddim", steps=2)
    request, final = session.request, session.final
    session.paint((6.0, 6.0), 1.0)
    job = session.start(model, SampleConfig(sampler="ddim", steps=2))
    session.cancel()
    seen = Recorder(session)
    session.on_finished(drive(job, session.on_update, 0.0))
    assert session.request is request and session.final is final
    assert seen.events == [("runningChanged", (False,)), ("failed", ("Cancelled before the first step",))]
