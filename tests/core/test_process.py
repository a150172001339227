import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from diffusion_studio.core import process as P
from diffusion_studio.core.chain import ForwardChain
from diffusion_studio.core.errors import SettingError
from diffusion_studio.core.schedules import SCHEDULE_NAMES, make_schedule

X0 = np.array([-1.0, -0.3, 0.0, 0.5, 1.0])


@pytest.mark.parametrize("t", [1, 7, 40, 100])
def test_closed_form_and_markov_chain_agree_in_distribution(t):
    s = make_schedule("linear", 100, 1e-3, 0.05)
    n = 20_000
    rng = np.random.default_rng(0)
    x0 = np.broadcast_to(X0, (n, X0.size))
    closed = P.q_sample(s, x0, t, rng.standard_normal(x0.shape))
    walk = ForwardChain(s, x0, seed=1)
    walk.advance(t)
    chain = walk.x
    mean, var = s.sqrt_alpha_bars[t] * X0, s.one_minus_alpha_bars[t]
    stderr_mean = np.sqrt(var / n)
    stderr_var = var * np.sqrt(2 / n)
    for samples in (closed, chain):
        assert np.all(np.abs(samples.mean(0) - mean) < 5 * stderr_mean)
        assert np.all(np.abs(samples.var(0) - var) < 5 * stderr_var)
    # and against each other: same first two moments
    assert np.all(np.abs(closed.mean(0) - chain.mean(0)) < 5 * np.sqrt(2) * stderr_mean)


def _product_of_gaussians(s, x0, x_t, t, u):
    """q(x_u | x_t, x_0) ∝ q(x_t | x_u) q(x_u | x_0), done by hand with precisions."""
    a_tu = s.alpha_bars[t] / s.alpha_bars[u]
    prior_mean, prior_var = np.sqrt(s.alpha_bars[u]) * x0, s.one_minus_alpha_bars[u]
    # q(x_t | x_u) = N(√ᾱ_{t|u} x_u, 1 − ᾱ_{t|u}), read as a Gaussian in x_u:
    like_mean, like_var = x_t / np.sqrt(a_tu), (1 - a_tu) / a_tu
    precision = 1 / prior_var + 1 / like_var
    return (prior_mean / prior_var + like_mean / like_var) / precision, 1 / precision


@pytest.mark.parametrize("name", SCHEDULE_NAMES)
@pytest.mark.parametrize(("t", "u"), [(2, 1), (10, 9), (500, 499), (1000, 999), (700, 300), (50, 1)])
def test_posterior_is_the_product_of_gaussians(name, t, u):
    s = make_schedule(name, 1000)
    rng = np.random.default_rng(t)
    x0, x_t = rng.uniform(-1, 1, 6), rng.standard_normal(6)
    mean, var = P.q_posterior_mean_variance(s, x0, x_t, t, u)
    expected_mean, expected_var = _product_of_gaussians(s, x0, x_t, t, u)
    np.testing.assert_allclose(mean, expected_mean, rtol=1e-7, atol=1e-10)
    assert var == pytest.approx(expected_var, rel=1e-7)
    if u == t - 1:
        assert var == pytest.approx(s.posterior_variances[t], rel=1e-12)


def test_posterior_mean_in_eps_form_of_seed_002():
    """μ̃_t = (x_t − β_t/√(1 − ᾱ_t) ε) / √α_t when x_0 is written through ε (seed 002, eq. 9)."""
    s = make_schedule()
    rng = np.random.default_rng(1)
    x0, eps = rng.uniform(-1, 1, 8), rng.standard_normal(8)
    for t in (2, 100, 999):
        x_t = P.q_sample(s, x0, t, eps)
        mean, _ = P.q_posterior_mean_variance(s, x0, x_t, t)
        eps_form = (x_t - s.betas[t] / s.sqrt_one_minus_alpha_bars[t] * eps) / np.sqrt(s.alphas[t])
        np.testing.assert_allclose(mean, eps_form, rtol=1e-9, atol=1e-12)


def test_posterior_rejects_impossible_steps():
    s = make_schedule("linear", 10)
    for t, u in [(5, 5), (3, 4), (11, 2), (2, -1)]:
        with pytest.raises(SettingError):
            P.q_posterior_coefficients(s, t, u)


finite = st.floats(-3, 3, allow_nan=False)


@given(
    st.sampled_from(SCHEDULE_NAMES),
    st.integers(1, 1000),
    arrays(np.float64, 5, elements=finite),
    arrays(np.float64, 5, elements=finite),
)
def test_eps_x0_v_conversions_round_trip(name, t, x0, eps):
    s = make_schedule(name, 1000)
    x_t = P.q_sample(s, x0, t, eps)
    tol = dict(rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(P.predict_x0_from_eps(s, x_t, t, eps), x0, **tol)
    np.testing.assert_allclose(P.predict_eps_from_x0(s, x_t, t, x0), eps, **tol)
    v = P.v_from_x0_eps(s, x0, t, eps)
    np.testing.assert_allclose(P.predict_x0_from_v(s, x_t, t, v), x0, **tol)
    np.testing.assert_allclose(P.predict_eps_from_v(s, x_t, t, v), eps, **tol)
    for prediction in ("eps", "x0", "v"):  # a VP path's targets (the velocity needs a flow: tests/core/test_flow.py)
        target = P.training_target(s, x0, t, eps, prediction)
        got_x0, got_eps = P.split_prediction(s, target, x_t, t, prediction)
        np.testing.assert_allclose(got_x0, x0, **tol)
        np.testing.assert_allclose(got_eps, eps, **tol)


def test_per_sample_timesteps_in_numpy_and_torch_agree():
    s = make_schedule("cosine", 100)
    rng = np.random.default_rng(2)
    x0, eps = rng.uniform(-1, 1, (4, 3, 2, 2)), rng.standard_normal((4, 3, 2, 2))
    t = np.array([1, 10, 50, 100])
    by_numpy = P.q_sample(s, x0, t, eps)
    by_torch = P.q_sample(s, torch.from_numpy(x0), torch.from_numpy(t), torch.from_numpy(eps))
    np.testing.assert_allclose(by_torch.numpy(), by_numpy, rtol=1e-12)
    for i, ti in enumerate(t):
        np.testing.assert_allclose(by_numpy[i], P.q_sample(s, x0[i], int(ti), eps[i]), rtol=1e-12)


def test_unknown_prediction_is_refused():
    s = make_schedule("linear", 10)
    with pytest.raises(SettingError, match="prediction"):
        P.split_prediction(s, np.zeros(2), np.zeros(2), 3, "score")
