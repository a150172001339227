"""The Bound and "Your image" sessions, with no widget, on exact networks."""

import numpy as np
import pytest
import torch

from diffusion_studio.app.bound import BoundSession, BoundSettings
from diffusion_studio.app.jobs import drive
from diffusion_studio.app.round_trip import RoundTripSession
from diffusion_studio.core.errors import DataError, SettingError
from diffusion_studio.core.sample_config import SampleConfig
from diffusion_studio.core.schedules import make_schedule
from tests.app.events import Recorder
from tests.core.exact import OnePoint, loaded

SCHEDULE = make_schedule("linear", 30, 1e-3, 0.2)
IMAGE = np.random.default_rng(0).uniform(-1, 1, (1, 8, 8)).astype(np.float32)


def image_model():
    return loaded(OnePoint(SCHEDULE, torch.from_numpy(IMAGE)[None]), SCHEDULE, (1, 8, 8))


def test_the_bound_fills_term_by_term_and_ends_with_the_summary():
    session = BoundSession()
    seen = Recorder(session)
    job = session.start(image_model(), BoundSettings("digits", num=4))
    assert session.running and np.isnan(session.terms).all()
    session.on_finished(drive(job, session.on_update, 0.0))
    assert len(seen.args("progressed")) == 31  # one per t, then the summary
    assert session.done == 30 and session.summary is not None and session.data_name == "digits (held-out)"
    np.testing.assert_allclose(session.terms, session.summary.terms)
    assert seen.values("finished")[-1].startswith(f"{session.summary.total:.3f} bits/dim on 4 images")
    assert seen.args("runningChanged") == [(True,), (False,)]


def test_a_stopped_bound_keeps_what_it_measured():
    session = BoundSession()
    job = session.start(image_model(), BoundSettings("digits", num=2))
    updates = []

    def on_update(progress):
        updates.append(progress)
        session.on_update(progress)
        if len(updates) == 5:
            session.cancel()

    session.on_finished(drive(job, on_update, 0.0))
    assert session.done == 5 and session.summary is None and not session.running


def test_a_bound_that_cannot_be_measured_fails_with_the_reason():
    session = BoundSession()
    job = session.start(image_model(), BoundSettings("swiss_roll"))
    with pytest.raises(DataError, match="2-D points"):
        drive(job, session.on_update, 0.0)


def test_the_round_trip_at_t_shows_the_truth_and_the_guess():
    session, model = RoundTripSession(), image_model()
    seen = Recorder(session)
    session.set_image(IMAGE, "a point")
    assert session.noise.shape == IMAGE.shape and seen.args("imageChanged") == [()]
    session.set_t(12)
    session.on_trip(session.trip_at(model, 12)())
    trip = session.trip
    np.testing.assert_allclose(trip.pred_x0, IMAGE, atol=1e-4)  # the exact network knows x_0
    np.testing.assert_allclose(trip.pred_eps, session.noise, atol=1e-4)
    stale = session.trip_at(model, 5)
    session.set_seed(3)  # a new ε: the trip computed for the old one is dropped
    session.on_trip(stale())
    assert session.trip is None
    session.on_errors(session.errors_of(model)())
    assert len(session.errors.t) == 30 and session.errors.x0.max() < 1e-6


def test_denoising_from_x_t_and_inverting_come_back_to_the_image():
    session, model = RoundTripSession(), image_model()
    session.set_image(IMAGE, "a point")
    with pytest.raises(SettingError, match="t above 0"):
        session.start_denoise(model, SampleConfig(sampler="ddim", steps=5))
    session.set_t(20)
    session.on_trip(session.trip_at(model, 20)())
    job = session.start_denoise(model, SampleConfig(sampler="ddim", steps=50))
    previews = []
    session.previewed.connect(previews.append)
    session.on_finished(drive(job, session.on_update, 0.0))
    assert session.denoised.steps == 20 and [p.index for p in previews] == list(range(1, 21))  # at most t steps
    np.testing.assert_allclose(session.denoised.result, IMAGE, atol=1e-4)
    session.on_finished(drive(session.start_inversion(model, SampleConfig(sampler="ddim", steps=10)), session.on_update, 0.0))
    assert session.inverted.steps == 10 and session.inverted.rms_error < 1e-5
    with pytest.raises(SettingError, match="cannot run from x_0 up to x_T"):
        session.start_inversion(model, SampleConfig(sampler="ddpm"))
