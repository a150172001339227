"""The Forward panel's session, with no widget: the closed form, ε per seed, the chain walked a step
at a time, the histogram, the images, saving."""

import numpy as np
import pytest
from PIL import Image

from diffusion_studio.app.forward import (
    HISTOGRAM_EDGES,
    ForwardImage,
    ForwardSession,
    histogram_density,
    normal_density,
    strip_times,
)
from diffusion_studio.app.state import StudioState
from tests.app.events import Recorder
from diffusion_studio.core.data.images import to_uint8
from diffusion_studio.core.errors import DiffusionStudioError, SettingError

BIN_WIDTH = HISTOGRAM_EDGES[1] - HISTOGRAM_EDGES[0]
CENTRES = (HISTOGRAM_EDGES[:-1] + HISTOGRAM_EDGES[1:]) / 2


def image(name="noise", seed=0, shape=(64, 64, 3)) -> ForwardImage:
    """x_0 uniform in [−1, 1]: its pixels have density 1/2 there and none outside."""
    return ForwardImage(name, np.random.default_rng(seed).uniform(-1, 1, shape).astype(np.float32))


def eps(seed, shape=(64, 64, 3)) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape, dtype=np.float32)


@pytest.fixture
def state():
    state = StudioState()
    state.update_schedule(timesteps=300)
    return state


@pytest.fixture
def session(state):
    session = ForwardSession(state)
    session.add_images([image()])
    return session


def walk(session) -> int:
    """advance_chain with no time budget (one step a call) until it reaches t; the calls it took."""
    calls = 1
    while not session.advance_chain(0.0):
        calls += 1
    return calls


def test_the_closed_form_is_sqrt_alpha_bar_x0_plus_sqrt_one_minus_alpha_bar_eps(state, session):
    seen = Recorder(session)
    s, x0 = state.schedule, session.x0
    for t in (0, 1, 150, 300):
        state.set_t(t)
        expected = s.sqrt_alpha_bars[t] * x0 + s.sqrt_one_minus_alpha_bars[t] * eps(0)
        np.testing.assert_allclose(session.x_t(), expected, atol=1e-6)
        assert session.coefficients(t) == (s.sqrt_alpha_bars[t], s.sqrt_one_minus_alpha_bars[t])
        view = seen.values("shown")[-1]
        assert (view.t, view.signal, view.noise, view.snr) == (t, *session.coefficients(t), s.snr[t])
        assert view.x_t is None and view.closed_density is None and view.added_stats is None
    assert not session.chain_pending and session.advance_chain(0.0)  # nothing walks in closed form


def test_eps_is_held_fixed_until_the_seed_changes(state, session):
    seen = Recorder(session)
    state.set_t(300)
    first = session.x_t()
    state.set_t(10)
    state.set_t(300)
    assert np.array_equal(session.x_t(), first)
    session.new_noise()
    assert session.seed == 1 and seen.values("noiseChanged") == [1]
    assert np.array_equal(session.eps, eps(1)) and not np.allclose(session.x_t(), first)
    session.set_seed(0)
    assert np.array_equal(session.x_t(), first)


def test_the_chain_walks_to_t_a_step_a_call_and_adds_standard_normal_noise(state, session):
    state.set_t(200)
    seen = Recorder(session)
    session.set_mode("chain")
    assert session.chain_pending and session.x_t() is None
    assert walk(session) == 200  # no time budget: exactly one step per call
    assert not session.chain_pending and session.chain.t == 200
    assert [view.t for view in seen.values("shown")] == list(range(201))  # t = 0 on the switch, then each step
    x0, (a, b) = session.x0, session.coefficients(200)
    added = (session.x_t() - a * x0) / b
    assert abs(added.mean()) < 0.03 and added.std() == pytest.approx(1.0, abs=0.03)
    assert abs(np.corrcoef(added.ravel(), eps(0).ravel())[0, 1]) < 0.05  # other noise than the closed form's ε, same law
    view = seen.values("shown")[-1]
    np.testing.assert_allclose(view.added, added, atol=1e-5)
    assert view.added_stats == pytest.approx((added.mean(), added.std()), abs=1e-5)
    assert np.abs(view.density - view.closed_density).max() < 0.06  # the two histograms agree
    # going back re-walks from a kept state and lands on the same x_t as before
    kept = session.x_t()
    state.set_t(30)
    walk(session)
    state.set_t(200)
    walk(session)
    np.testing.assert_allclose(session.x_t(), kept, atol=1e-5)


def test_the_chain_starts_again_on_a_schedule_mode_or_seed_change(state, session):
    state.set_t(50)
    session.set_mode("chain")
    walk(session)
    walked = session.chain
    state.update_schedule(timesteps=200)
    assert state.t == 33 and session.chain is not walked
    assert session.chain.schedule is state.schedule and session.chain.t == 0 and session.chain_pending
    assert session.x_t() is None
    walk(session)
    session.set_mode("closed")
    assert session.chain is None and session.x_t() is not None and not session.chain_pending
    session.set_mode("chain")
    assert session.chain.t == 0 and session.chain_pending
    walk(session)
    session.new_noise()
    assert session.chain.t == 0 and session.chain.seed == 1
    with pytest.raises(ValueError, match="bogus"):
        session.set_mode("bogus")
    assert session.mode == "chain"


def test_a_schedule_that_ends_far_from_noise_is_said_to(state, session):
    assert "ᾱ_T = 0.05: x_T = 0.22 x_0 + 0.98 ε is far from noise" in session.schedule_warning()  # linear, T = 300
    state.update_schedule(name="sigmoid", timesteps=50)
    assert "ᾱ_T = 0.60: x_T = 0.78 x_0 + 0.63 ε is mostly signal" in session.schedule_warning()
    state.update_schedule(timesteps=1000)
    assert session.schedule_warning() is None


def test_histogram_densities_integrate_to_the_share_inside_the_edges():
    values = np.random.default_rng(3).normal(0.0, 2.0, 100_000)
    share = np.mean((values >= -4) & (values < 4))
    assert 0.9 < share < 0.97  # a normal of std 2 has about 4.6% of its mass outside ±4
    assert histogram_density(values).sum() * BIN_WIDTH == pytest.approx(share, rel=1e-12)


def test_the_histogram_goes_from_x0_to_the_standard_normal(state, session):
    seen = Recorder(session)
    state.set_t(0)
    at_zero = seen.values("shown")[-1].density  # x_0 uniform in [−1, 1]: density 1/2 there, 0 outside
    inside = np.abs(CENTRES) < 1
    assert np.all(at_zero[~inside] == 0) and np.abs(at_zero[inside] - 0.5).max() < 0.15
    state.set_t(300)
    at_end = seen.values("shown")[-1].density
    assert at_end.sum() * BIN_WIDTH == pytest.approx(1.0, abs=0.01)
    assert np.abs(at_end - normal_density(CENTRES)).max() < 0.06


@pytest.mark.parametrize("mode", ["closed", "chain"])
def test_the_view_says_how_much_of_x_t_a_picture_clips(state, session, mode):
    """x_0 lies in [−1, 1]; at t = T, x_t is about N(0, 1), of which P(|x| > 1) = 31.7 % is drawn black or white."""
    session.set_mode(mode)
    state.set_t(0)
    walk(session)
    assert session.view().outside == 0.0
    state.set_t(300)
    walk(session)
    assert session.view().outside == pytest.approx(0.317, abs=0.01)


def test_images_are_added_selected_and_removed_but_one_stays(state):
    session = ForwardSession(state)
    seen = Recorder(session)
    assert session.x_t() is None and session.view() is None
    a, b, c = image("a", 1), image("b", 2, (16, 24, 1)), image("c", 3)
    session.add_images([a, b, c])
    assert seen.values("imagesAdded") == [[a, b, c]] and session.index == 2 and session.x0 is c.x0
    session.select(1)
    assert session.image is b and session.eps.shape == (16, 24, 1) and session.x_t().shape == (16, 24, 1)
    assert seen.values("imageChanged") == [2, 1]
    assert session.remove_current()  # b goes; the one after it takes its place
    assert [i.name for i in session.images] == ["a", "c"] and session.image is c
    assert session.remove_current()
    assert [i.name for i in session.images] == ["a"] and session.image is a
    assert seen.values("imageRemoved") == [1, 1] and seen.values("imageChanged") == [2, 1, 1, 0]
    before = len(seen.events)
    assert not session.remove_current()
    assert [i.name for i in session.images] == ["a"] and len(seen.events) == before
    with pytest.raises(IndexError):
        session.select(1)


def test_strip_times_reads_whole_numbers_and_refuses_anything_else():
    assert strip_times("0, 100; 250 ,") == [0, 100, 250]
    for text in ("ten", "1.5, 3", "0 100"):
        with pytest.raises(SettingError, match="whole numbers"):
            strip_times(text)


def test_saving_writes_x_t_and_the_strip(state, session, tmp_path):
    state.set_t(120)
    session.save_xt(tmp_path / "xt.png")
    assert np.array_equal(np.asarray(Image.open(tmp_path / "xt.png")), to_uint8(session.x_t()))
    session.save_strip(tmp_path / "strip.png", [0, 150, 300])
    assert Image.open(tmp_path / "strip.png").size == (4 * 64 + 3 * 2, 64)


def test_saving_errors_leave_no_file(state, session, tmp_path):
    with pytest.raises(SettingError, match="0…T = 300"):
        session.save_strip(tmp_path / "strip.png", [0, 2000])
    with pytest.raises(DiffusionStudioError, match="xt.png"):
        session.save_xt(tmp_path / "no such folder" / "xt.png")
    session.set_mode("chain")
    with pytest.raises(DiffusionStudioError, match="not reached t"):
        session.save_xt(tmp_path / "xt.png")
    with pytest.raises(DiffusionStudioError, match="No image"):
        ForwardSession(state).save_strip(tmp_path / "strip.png", [0])
    assert list(tmp_path.iterdir()) == []
