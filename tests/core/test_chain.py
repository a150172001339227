import numpy as np
import pytest

from diffusion_studio.core.chain import ForwardChain
from diffusion_studio.core.errors import SettingError
from diffusion_studio.core.process import q_step
from diffusion_studio.core.schedules import make_schedule


def test_the_chain_is_eq_2_step_by_step_with_seeded_noise():
    schedule = make_schedule("linear", 20)
    x0 = np.linspace(-1, 1, 12, dtype=np.float32).reshape(3, 4, 1)
    chain = ForwardChain(schedule, x0, seed=5)
    assert chain.advance(7)
    x = x0.astype(np.float64)
    for t in range(1, 8):
        x = q_step(schedule, x, t, chain.noise(t))
    assert np.allclose(chain.x, x, atol=1e-6)


def test_x_t_is_the_same_however_the_chain_gets_there():
    schedule = make_schedule("cosine", 300)
    x0 = np.random.default_rng(0).uniform(-1, 1, (8, 8, 3)).astype(np.float32)
    direct = ForwardChain(schedule, x0, seed=1, keep_every=50)
    direct.advance(260)
    wandering = ForwardChain(schedule, x0, seed=1, keep_every=50)
    while not wandering.advance(300, max_steps=17):  # in small bites, past the target…
        pass
    assert wandering.advance(260)  # …and back, from the state kept at t = 250
    assert wandering.t == 260 and np.allclose(wandering.x, direct.x, atol=1e-6)
    assert wandering.kept_times == [0, 50, 100, 150, 200, 250, 300]


def test_the_chain_lands_where_the_closed_form_does():
    """In law x_t = √ᾱ_t x_0 + √(1 − ᾱ_t) ε: the noise the chain added is N(0, 1) per pixel."""
    schedule = make_schedule("linear", 1000)
    x0 = np.random.default_rng(1).uniform(-1, 1, (128, 128, 3)).astype(np.float32)
    for t in (50, 400, 1000):
        chain = ForwardChain(schedule, x0, seed=2)
        chain.advance(t)
        added = (chain.x - schedule.sqrt_alpha_bars[t] * x0) / schedule.sqrt_one_minus_alpha_bars[t]
        assert abs(added.mean()) < 0.02 and added.std() == pytest.approx(1.0, abs=0.02)


def test_bad_targets_are_refused():
    chain = ForwardChain(make_schedule("linear", 10), np.zeros((2, 2, 1), np.float32), seed=0)
    with pytest.raises(SettingError, match="0…T = 10"):
        chain.advance(11)
    with pytest.raises(SettingError, match="keep_every"):
        ForwardChain(make_schedule("linear", 10), np.zeros((2, 2, 1)), seed=0, keep_every=0)
