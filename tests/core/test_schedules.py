import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from diffusion_studio.core.errors import SettingError
from diffusion_studio.core.schedules import COSINE_OFFSET, SCHEDULE_NAMES, ScheduleConfig, NoiseSchedule, make_schedule


def test_default_linear_alpha_bar_T_matches_ho_et_al():
    s = make_schedule()
    assert s.alpha_bars[1000] == pytest.approx(4.0358e-5, rel=1e-4)
    assert math.log(s.alpha_bars[1000]) == pytest.approx(-10.1, abs=0.05)  # ≈ e^−10


def test_seed000_notation_maps_to_ho_and_satisfies_its_estimate():
    s = make_schedule()
    n = s.seed000
    np.testing.assert_allclose(n.alpha**2 + n.beta**2, 1.0, atol=1e-15)
    np.testing.assert_allclose(n.alpha_bar**2 + n.beta_bar**2, 1.0, atol=1e-15)
    np.testing.assert_allclose(np.cumprod(n.alpha), n.alpha_bar, rtol=1e-12)
    # seed 000: log ᾱ^S_T < −0.005 (T + 1), "roughly e^−5"
    assert math.log(n.alpha_bar[1000]) < -0.005 * 1001
    assert math.log(n.alpha_bar[1000]) == pytest.approx(-5.0, abs=0.1)


def test_index_zero_is_the_data():
    s = make_schedule("cosine", 50)
    assert (s.betas[0], s.alpha_bars[0], s.posterior_variances[0]) == (0.0, 1.0, 0.0)
    assert s.posterior_variances[1] == 0.0
    assert s.snr[0] == math.inf


@pytest.mark.parametrize("name", SCHEDULE_NAMES)
def test_every_named_schedule_is_a_valid_diffusion(name):
    s = make_schedule(name, 1000)
    assert s.betas.shape == (1001,)
    assert np.all((s.betas[1:] > 0) & (s.betas[1:] < 1))
    assert np.all(np.diff(s.alpha_bars) < 0)
    assert s.alpha_bars[-1] < 0.01, "T steps should nearly destroy the signal"


def test_schedules_differ_from_each_other():
    curves = [make_schedule(n, 100).alpha_bars for n in SCHEDULE_NAMES]
    for i in range(len(curves)):
        for j in range(i + 1, len(curves)):
            assert not np.allclose(curves[i], curves[j]), (SCHEDULE_NAMES[i], SCHEDULE_NAMES[j])


def test_cosine_follows_nichol_dhariwal():
    T = 1000
    s = make_schedule("cosine", T)
    f = lambda t: math.cos((t / T + COSINE_OFFSET) / (1 + COSINE_OFFSET) * math.pi / 2) ** 2  # noqa: E731
    for t in (1, 10, 500, 900):
        assert s.alpha_bars[t] == pytest.approx(f(t) / f(0), rel=1e-9)
    assert s.betas.max() == pytest.approx(0.999)


def test_scaled_linear_keeps_alpha_bar_T_across_T():
    short, long = make_schedule("scaled_linear", 100), make_schedule("scaled_linear", 1000)
    assert short.log_alpha_bars[-1] == pytest.approx(long.log_alpha_bars[-1], rel=0.1)
    assert make_schedule("linear", 100).log_alpha_bars[-1] > 0.5 * long.log_alpha_bars[-1]


def test_linear_endpoints_and_quadratic_midpoint():
    s = make_schedule("linear", 10, 0.001, 0.1)
    assert (s.betas[1], s.betas[10]) == pytest.approx((0.001, 0.1))
    q = make_schedule("quadratic", 3, 0.01, 0.09)
    assert q.betas[2] == pytest.approx(((0.1 + 0.3) / 2) ** 2)


@pytest.mark.parametrize(
    ("kwargs", "setting"),
    [
        ({"timesteps": 0}, "timesteps"),
        ({"timesteps": -5}, "timesteps"),
        ({"timesteps": 2.5}, "timesteps"),
        ({"beta_start": 0.0}, "beta_start"),
        ({"beta_end": 1.0}, "beta_end"),
        ({"beta_start": -0.1}, "beta_start"),
        ({"beta_start": 0.05, "beta_end": 0.01}, "beta_start"),
        ({"name": "exponential"}, "name"),
        ({"name": "scaled_linear", "timesteps": 10, "beta_end": 0.2}, "beta_end"),
    ],
)
def test_impossible_settings_name_the_setting(kwargs, setting):
    with pytest.raises(SettingError) as info:
        make_schedule(**kwargs)
    assert info.value.setting == setting
    assert setting in str(info.value)


def test_schedule_is_immutable():
    s = make_schedule("linear", 10)
    with pytest.raises(AttributeError):
        s.betas = np.zeros(11)
    with pytest.raises(ValueError):
        s.alpha_bars[3] = 0.5
    with pytest.raises(AttributeError):
        s.config.timesteps = 5


def test_extreme_timesteps():
    one = make_schedule("linear", 1)
    assert one.alpha_bars[1] == pytest.approx(1 - 1e-4)
    assert make_schedule("cosine", 1).betas[1] == pytest.approx(0.999)


schedules = st.builds(
    lambda name, T, a, b: ScheduleConfig(name, T, min(a, b), max(a, b)),
    st.sampled_from(SCHEDULE_NAMES),
    st.integers(1, 2000),
    st.floats(1e-6, 0.5),
    st.floats(1e-6, 0.5),
)


@given(schedules)
def test_properties_of_any_schedule(config):
    try:
        s = NoiseSchedule(config)
    except SettingError as exc:  # scaled_linear with a small T can push β over 1
        assert config.name == "scaled_linear" and exc.setting == "beta_end"
        return
    assert np.all(np.diff(s.log_alpha_bars) < 0)  # in log space: ᾱ itself may underflow
    assert np.all((s.alpha_bars >= 0) & (s.alpha_bars <= 1))
    np.testing.assert_allclose(s.alpha_bars + s.one_minus_alpha_bars, 1.0, atol=1e-12)
    np.testing.assert_allclose(s.log_alpha_bars[1:], np.cumsum(np.log(s.alphas[1:])), rtol=1e-9)
    assert np.all(s.posterior_variances[1:] <= s.betas[1:] * (1 + 1e-12))
    assert np.all(s.posterior_variances >= 0)
    assert np.all(np.diff(s.log_snr[1:]) < 0)
    np.testing.assert_allclose(np.exp(s.log_snr[1:]), s.snr[1:], rtol=1e-9)
