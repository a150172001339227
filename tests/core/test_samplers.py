import math

import numpy as np
import pytest
import torch

from diffusion_studio.core import process as P
from diffusion_studio.core.errors import SettingError
from diffusion_studio.core.samplers import SPACINGS, DDIMSampler, DDPMSampler, spaced_timesteps
from diffusion_studio.core.sampling import sample_loop
from diffusion_studio.core.schedules import make_schedule

from tests.core.exact import OnePoint

SHAPE = (3, 2, 4, 4)


def run(network, sampler, seed=0, **kwargs):
    steps = list(sample_loop(network, sampler, SHAPE, generator=torch.Generator().manual_seed(seed), **kwargs))
    return steps


POINT = torch.linspace(-0.9, 0.9, 32).reshape(1, 2, 4, 4)


@pytest.mark.parametrize("prediction", ["eps", "x0", "v"])
@pytest.mark.parametrize(
    "make",
    [
        lambda s, p: DDPMSampler(s, p, variance="beta"),
        lambda s, p: DDPMSampler(s, p, variance="beta_tilde"),
        lambda s, p: DDIMSampler(s, p, eta=0.0),
        lambda s, p: DDIMSampler(s, p, eta=1.0),
    ],
    ids=["ddpm-beta", "ddpm-beta_tilde", "ddim-eta0", "ddim-eta1"],
)
@pytest.mark.parametrize("num_steps", [100, 7])
def test_exact_network_of_one_point_data_returns_that_point(prediction, make, num_steps):
    s = make_schedule("linear", 100, 1e-3, 0.1)
    sampler = make(s, prediction)
    sampler.set_timesteps(num_steps)
    steps = run(OnePoint(s, POINT, prediction), sampler)
    assert len(steps) == num_steps
    assert steps[-1].prev_t == 0
    torch.testing.assert_close(steps[-1].x_prev, POINT.expand(SHAPE), atol=1e-4, rtol=0)


def test_ddpm_step_is_algorithm_2_of_ho_et_al():
    """x_{t−1} = (x_t − (1 − α_t)/√(1 − ᾱ_t) ε_θ) / √α_t + σ_t z, written out independently."""
    s = make_schedule()
    sampler = DDPMSampler(s, "eps", variance="beta")
    g = torch.Generator().manual_seed(3)
    x_t, eps = torch.randn(SHAPE, generator=g, dtype=torch.float64), torch.randn(SHAPE, generator=g, dtype=torch.float64)
    for t in (1000, 500, 2, 1):
        out = sampler.step(eps, t, x_t, generator=torch.Generator().manual_seed(9))
        z = torch.randn(SHAPE, generator=torch.Generator().manual_seed(9), dtype=torch.float64) if t > 1 else 0
        alpha, alpha_bar = s.alphas[t], s.alpha_bars[t]
        expected = (x_t - (1 - alpha) / math.sqrt(1 - alpha_bar) * eps) / math.sqrt(alpha) + math.sqrt(s.betas[t]) * z
        torch.testing.assert_close(out.prev_sample, expected, rtol=1e-9, atol=1e-9)
        torch.testing.assert_close(out.pred_eps, eps)


def test_ddim_with_eta_one_over_all_steps_is_ddpm_with_posterior_variance():
    s = make_schedule("cosine", 200)
    ddim, ddpm = DDIMSampler(s, eta=1.0), DDPMSampler(s, variance="beta_tilde")
    for t in range(2, 201):
        assert ddim.variance(t) == pytest.approx(s.posterior_variances[t], rel=1e-10)
        assert ddpm.variance(t) == pytest.approx(s.posterior_variances[t], rel=1e-10)
    g = torch.Generator().manual_seed(0)
    x_t, out = torch.randn(SHAPE, generator=g, dtype=torch.float64), torch.randn(SHAPE, generator=g, dtype=torch.float64)
    for t in (200, 100, 3, 1):
        a = ddim.step(out, t, x_t, generator=torch.Generator().manual_seed(t)).prev_sample
        b = ddpm.step(out, t, x_t, generator=torch.Generator().manual_seed(t)).prev_sample
        torch.testing.assert_close(a, b, rtol=1e-8, atol=1e-8)


def test_ddim_eta_zero_is_deterministic_and_eta_scales_the_noise():
    s = make_schedule("linear", 50)
    assert all(DDIMSampler(s, eta=0.0).variance(t) == 0 for t in range(1, 51))
    half, full = DDIMSampler(s, eta=0.5), DDIMSampler(s, eta=1.0)
    assert half.variance(30) == pytest.approx(0.25 * full.variance(30))
    net = lambda x, i: 0.1 * x  # noqa: E731
    a = run(net, DDIMSampler(s, eta=0.0), seed=1, x_T=torch.ones(SHAPE))[-1].x_prev
    b = run(net, DDIMSampler(s, eta=0.0), seed=2, x_T=torch.ones(SHAPE))[-1].x_prev
    torch.testing.assert_close(a, b)


@pytest.mark.parametrize("spacing", SPACINGS)
def test_timestep_spacing(spacing):
    schedule = make_schedule("linear", 1000)
    full = spaced_timesteps(schedule, 1000, spacing)
    np.testing.assert_array_equal(full, np.arange(1000, 0, -1))
    ts = spaced_timesteps(schedule, 50, spacing)
    assert len(ts) == 50 and np.all(np.diff(ts) < 0) and ts.min() >= 1 and ts.max() <= 1000
    if spacing in ("linspace", "trailing"):
        assert ts[0] == 1000
    if spacing == "leading":
        assert ts[-1] == 1 and np.all(np.diff(ts) == -20)


@pytest.mark.parametrize("bad", [0, -1, 1001, 2.5])
def test_impossible_step_counts_are_refused(bad):
    with pytest.raises(SettingError, match="steps"):
        DDIMSampler(make_schedule()).set_timesteps(bad)


def test_bad_sampler_settings_are_refused():
    s = make_schedule("linear", 10)
    with pytest.raises(SettingError, match="eta"):
        DDIMSampler(s, eta=-1)
    with pytest.raises(SettingError, match="variance"):
        DDPMSampler(s, variance="learned")
    with pytest.raises(SettingError, match="spacing"):
        DDIMSampler(s).set_timesteps(5, "random")


def test_clipping_keeps_predicted_x0_in_range_and_eps_consistent():
    s = make_schedule("linear", 20)
    sampler = DDPMSampler(s, "x0", x0_range=(-1.0, 1.0))
    x_t = torch.randn(SHAPE, dtype=torch.float64)
    out = sampler.step(3.0 * torch.ones(SHAPE, dtype=torch.float64), 10, x_t)
    assert out.pred_x0.max() == 1.0
    torch.testing.assert_close(P.q_sample(s, out.pred_x0, 10, out.pred_eps), x_t)


def test_loop_yields_every_step_on_the_cpu_and_honours_should_stop():
    s = make_schedule("linear", 30)
    net = lambda x, i: torch.zeros_like(x)  # noqa: E731
    steps = run(net, DDPMSampler(s))
    assert [st.t for st in steps] == list(range(30, 0, -1))
    assert [st.index for st in steps] == list(range(30)) and steps[0].total == 30
    for a, b in zip(steps, steps[1:]):
        torch.testing.assert_close(a.x_prev, b.x_t)
    assert all(st.x_t.device.type == "cpu" for st in steps)
    calls = []
    stopped = run(net, DDPMSampler(s), should_stop=lambda: len(calls) >= 5 or calls.append(1))
    assert len(stopped) == 5


def test_same_seed_same_samples_other_seed_other_samples():
    s = make_schedule("linear", 25)
    net = lambda x, i: 0.5 * x  # noqa: E731
    a, b, c = (run(net, DDPMSampler(s), seed=k)[-1].x_prev for k in (7, 7, 8))
    torch.testing.assert_close(a, b)
    assert not torch.allclose(a, c)


def test_network_receives_zero_based_index():
    s = make_schedule("linear", 12)
    seen = []
    net = lambda x, i: seen.append(int(i[0])) or torch.zeros_like(x)  # noqa: E731
    run(net, DDPMSampler(s))
    assert seen == list(range(11, -1, -1))


@pytest.mark.parametrize("name, T", [("linear", 1000), ("cosine", 1000), ("linear", 50)])
def test_karras_spacing_follows_rho_7_in_sigma_from_at_most_80(name, T):
    """σ_i^(1/7) evenly spaced from min(σ_T, 80)^(1/7) to σ_1^(1/7) (Karras et al. 2022, eq. 5), K distinct steps."""
    schedule = make_schedule(name, T)
    sigma = np.sqrt(schedule.one_minus_alpha_bars / schedule.alpha_bars)
    for steps in (2, 10, 30, T):
        ts = spaced_timesteps(schedule, steps, "karras")
        assert len(ts) == steps and np.all(np.diff(ts) < 0) and ts[-1] >= 1
        if steps < T:
            assert sigma[ts[0]] <= 80 * 1.5 and ts[-1] == 1
        if steps <= T // 5:  # with few steps, rounding to whole t leaves the spacing visible
            gaps = -np.diff(sigma[ts] ** (1 / 7))
            assert gaps.max() < 3 * np.median(gaps)  # evenly spaced in σ^(1/7)
    if name == "cosine":
        ts = spaced_timesteps(schedule, 10, "karras")
        assert (sigma[ts[:-1]] / sigma[ts[1:]]).max() < 10  # no step spans decades of σ, as trailing's first from σ_T ≈ 2·10⁴ does


@pytest.mark.parametrize("name, T", [("linear", 1000), ("cosine", 1000), ("linear", 50)])
def test_logsnr_spacing_is_even_in_lambda_from_at_most_sigma_80_down_to_t_1(name, T):
    """λ_i = −log σ evenly spaced from −log min(σ_T, 80) to λ_1 (Lu et al. 2022), each at the
    nearest t; K distinct steps even where two would round to the same t."""
    schedule = make_schedule(name, T)
    log_sigma = 0.5 * np.log(schedule.one_minus_alpha_bars[1:] / schedule.alpha_bars[1:])  # t = 1…T
    for steps in (2, 10, 30, T):
        ts = spaced_timesteps(schedule, steps, "logsnr")
        assert len(ts) == steps and np.all(np.diff(ts) < 0) and ts[-1] == 1
        wanted = np.linspace(min(log_sigma[-1], math.log(80)), log_sigma[0], steps)
        nearest = 1 + np.abs(log_sigma[None, :] - wanted[:, None]).argmin(axis=1)
        if steps == 10 and T == 1000:  # few enough that no two round to the same t
            assert len(np.unique(nearest)) == steps
        if len(np.unique(nearest)) == steps:
            np.testing.assert_array_equal(ts, nearest)
    assert (spaced_timesteps(schedule, 10, "logsnr")[0] == T) == (log_sigma[-1] <= math.log(80))


def test_each_sampler_spaces_its_steps_its_own_way_unless_told():
    from diffusion_studio.core.samplers import HeunSampler

    schedule = make_schedule("cosine", 1000)
    heun, ddim = HeunSampler(schedule), DDIMSampler(schedule)
    heun.set_timesteps(10)
    ddim.set_timesteps(10)
    np.testing.assert_array_equal(heun.timesteps, spaced_timesteps(schedule, 10, "karras"))
    np.testing.assert_array_equal(ddim.timesteps, spaced_timesteps(schedule, 10, "trailing"))
    heun.set_timesteps(10, "trailing")
    assert heun.timesteps[0] == 1000
