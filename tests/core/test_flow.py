"""Rectified flow beside DDPM: the path, its velocity target, its samplers, diffusers' flow-matching
Euler step for step, and the same coin — DDIM on one model is Euler on its flow reading."""

import numpy as np
import pytest
import torch

from diffusion_studio.core import process as P
from diffusion_studio.core.compare import sliced_wasserstein
from diffusion_studio.core.data.datasets import load_toy
from diffusion_studio.core.denoiser import Denoiser
from diffusion_studio.core.errors import SettingError
from diffusion_studio.core.marginals import forward_marginals
from diffusion_studio.core.models.config import MLPConfig
from diffusion_studio.core.samplers import build_sampler
from diffusion_studio.core.sampling import sample_loop
from diffusion_studio.core.schedules import FLOW_PATH, NoiseSchedule, ScheduleConfig, make_schedule
from diffusion_studio.core.train_config import TrainConfig
from diffusion_studio.core.training import Trainer

from tests.core.exact import GaussianEps

FLOW = NoiseSchedule(ScheduleConfig(path=FLOW_PATH, timesteps=1000))
MU, S = torch.tensor([0.5, -0.3], dtype=torch.float64), 0.5


class GaussianVelocity(torch.nn.Module):
    """The exact velocity for data N(μ, s² I) on rectified flow, told the time T·r = t:
    x = (1 − r) x_0 + r ε, v = (1 − r)² s² + r², E[x_0 | x] = μ + (1 − r) s² (x − (1 − r) μ)/v,
    E[ε | x] = r (x − (1 − r) μ)/v, u = E[ε | x] − E[x_0 | x]."""

    def forward(self, x, time):
        r = (time.to(torch.float64) / 1000).reshape(-1, *(1,) * (x.ndim - 1))
        x = x.to(torch.float64)
        v = (1 - r) ** 2 * S**2 + r**2
        centred = x - (1 - r) * MU
        return (r * centred / v - (MU + (1 - r) * S**2 * centred / v)).float()


def test_the_flow_path_is_linear_interpolation_and_its_vp_equivalent_rescales_it():
    x0, eps = torch.randn(5, 2, dtype=torch.float64), torch.randn(5, 2, dtype=torch.float64)
    for t in (1, 250, 500, 999, 1000):
        s = t / 1000
        x_vp = P.q_sample(FLOW, x0, t, eps)
        torch.testing.assert_close(FLOW.path_scales[t] * x_vp, (1 - s) * x0 + s * eps)
        u = P.training_target(FLOW, x0, t, eps, "velocity")
        torch.testing.assert_close(u, eps - x0)
        pred_x0, pred_eps = P.split_prediction(FLOW, u, x_vp, t, "velocity")
        torch.testing.assert_close(pred_x0, x0)
        torch.testing.assert_close(pred_eps, eps)
    assert FLOW.alpha_bars[-1] == 0 and FLOW.alpha_bars[0] == 1
    torch.testing.assert_close(torch.from_numpy(FLOW.log_snr[1:-1].copy()),
                               torch.from_numpy(2 * np.log((1000 - np.arange(1, 1000)) / np.arange(1, 1000))))
    data = np.random.default_rng(0).normal(2.0, 0.5, (4000, 2))
    marginals = forward_marginals(FLOW, data, np.array([0, 500, 1000]))  # on the path: α m_0, √(α² v_0 + σ²)
    np.testing.assert_allclose(marginals.mean, [data.mean(), 0.5 * data.mean(), 0.0], atol=1e-9)


def test_targets_are_refused_by_name_where_the_path_cannot_carry_them():
    with pytest.raises(SettingError, match="rectified-flow model predicts the velocity"):
        P.check_target(FLOW, "eps")
    with pytest.raises(SettingError, match="velocity target needs a flow path"):
        P.check_target(make_schedule("linear", 100), "velocity")


def _run(name, schedule, network, prediction, steps, spacing="linspace", x_T=None):
    sampler = build_sampler(name, schedule, prediction)
    sampler.set_timesteps(steps, spacing)
    x_T = torch.randn(64, 2, generator=torch.Generator().manual_seed(0)) if x_T is None else x_T
    return list(sample_loop(Denoiser(network, schedule, prediction), sampler, x_T.shape, x_T=x_T))


@pytest.mark.parametrize("steps", [4, 10, 50])
def test_ddim_on_a_ddpm_model_is_euler_on_its_velocity_field(steps):
    """The same coin: a VP ε-model's DDIM run and the Euler run of the same network, read as a
    velocity field on the rescaled path, agree to float error from the same x_T on the same grid."""
    schedule = make_schedule("linear", 1000)
    network = GaussianEps(schedule, MU.float(), S)
    ddim = _run("ddim", schedule, network, "eps", steps)
    euler = _run("flow-euler", schedule, network, "eps", steps)
    assert [s.t for s in ddim] == [s.t for s in euler]
    for a, b in zip(ddim, euler):
        torch.testing.assert_close(a.x_prev, b.x_prev, atol=2e-5, rtol=1e-5)
    assert (ddim[-1].x_prev - MU.float()).std() < 1.0  # and it went somewhere: the data's scale


def test_a_flow_model_runs_ddim_dpm_solver_and_heun_through_its_vp_equivalent():
    network = GaussianVelocity()
    x_T = torch.randn(4000, 2, generator=torch.Generator().manual_seed(1))
    for name, steps, spacing in (("flow-euler", 50, "linspace"), ("ddim", 50, "linspace"), ("dpmpp-2m", 20, "logsnr"),
                                 ("flow-heun", 20, "linspace"), ("ddpm", 200, "trailing"), ("heun", 20, "karras")):
        final = _run(name, FLOW, network, "velocity", steps, spacing, x_T)[-1].x_prev.double()
        torch.testing.assert_close(final.mean(0), MU, atol=0.05, rtol=0, msg=name)
        torch.testing.assert_close(final.std(0), torch.full((2,), S, dtype=torch.float64), atol=0.05, rtol=0, msg=name)
    with pytest.raises(SettingError, match="Euler \\(ODE\\) steps in σ"):
        build_sampler("euler", FLOW, "velocity").set_timesteps(10, "trailing")


def test_flow_euler_matches_diffusers_flow_match_euler_step_for_step():
    diffusers = pytest.importorskip("diffusers")
    scheduler = diffusers.FlowMatchEulerDiscreteScheduler(num_train_timesteps=1000, shift=1.0)
    scheduler.set_timesteps(10)
    network = GaussianVelocity()
    x_T = torch.randn(16, 2, generator=torch.Generator().manual_seed(2))
    sample, theirs = x_T.clone(), []
    for t in scheduler.timesteps:
        sample = scheduler.step(network(sample, t.expand(len(sample))), t, sample).prev_sample
        theirs.append(sample)
    ours = _run("flow-euler", FLOW, network, "velocity", 10, x_T=x_T)
    assert [s.t for s in ours] == [round(float(t)) for t in scheduler.timesteps]
    for step, expected in zip(ours, theirs):  # our samples are recorded on the path, as theirs are
        torch.testing.assert_close(step.x_prev, expected, atol=1e-5, rtol=1e-5)


def test_a_small_flow_model_learns_the_swiss_roll():
    data = load_toy("swiss_roll")
    config = TrainConfig(data="swiss_roll", steps=500, batch_size=128, learning_rate=2e-3, warmup_steps=50,
                         prediction="velocity", device="cpu")
    trainer = Trainer(MLPConfig(hidden=64, num_layers=2), ScheduleConfig(path=FLOW_PATH, timesteps=100), config, data)
    losses = [p.loss for p in trainer.train(report_every=100)]
    assert losses[-1] < losses[0]  # the velocity loss keeps a floor: Var(ε − x_0 | x_s); the samples below tell more
    assert np.isfinite(trainer.loss_by_t).all()  # every tenth of s was trained
    samples = _run("flow-euler", trainer.schedule, trainer.ema, "velocity", 10,
                   x_T=torch.randn(1000, 2, generator=torch.Generator().manual_seed(3)))[-1].x_prev.numpy()
    noise = np.random.default_rng(0).standard_normal((1000, 2)).astype(np.float32)
    assert sliced_wasserstein(samples, data.data) < 0.5 * sliced_wasserstein(noise, data.data)


def test_logit_normal_time_sampling_puts_more_training_near_the_middle():
    config = TrainConfig(data="swiss_roll", time_sampling="logit-normal", prediction="velocity", device="cpu")
    trainer = Trainer(MLPConfig(hidden=8, num_layers=1), ScheduleConfig(path=FLOW_PATH, timesteps=100), config,
                      load_toy("swiss_roll"))
    s = trainer._draw_t(20_000).numpy() / 100
    middle, ends = np.mean(np.abs(s - 0.5) < 0.1), np.mean((s < 0.1) | (s > 0.9))
    assert 0 < s.min() and s.max() < 1 and middle > 2 * ends
