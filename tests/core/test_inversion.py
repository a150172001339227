"""DDIM inversion, against exact networks: one-point data comes back exactly, Gaussian data goes to
the noise the probability-flow ODE gives it."""

import math

import pytest
import torch

from diffusion_studio.core.control import drain
from diffusion_studio.core.errors import SettingError
from diffusion_studio.core.inversion import invert
from diffusion_studio.core.sample_config import SampleConfig
from diffusion_studio.core.schedules import make_schedule

from tests.core.exact import GaussianEps, OnePoint, loaded

SCHEDULE = make_schedule("linear", 1000)
MU, S = torch.tensor([0.5, -0.3]), 0.5


def ddim(steps, **changes):
    return SampleConfig(sampler="ddim", steps=steps, clip=False, **changes)


def test_one_point_data_inverts_and_comes_back_exactly():
    point = torch.rand(1, 3, 4, 4, generator=torch.Generator().manual_seed(0)) * 2 - 1
    model = loaded(OnePoint(SCHEDULE, point), SCHEDULE, (3, 4, 4))
    kinds = []
    inversion = drain(invert(model, point.expand(2, -1, -1, -1), ddim(20)), lambda item: kinds.append(item[0]))
    assert kinds == ["invert"] * 20 + ["reconstruct"] * 20
    torch.testing.assert_close(inversion.reconstruction, point.expand(2, -1, -1, -1), atol=1e-5, rtol=0)
    assert inversion.rms_error().max() < 1e-5


def exact_inverse(x0):
    """Where the probability-flow ODE carries x_0 at t = 0 to t = T for data N(μ, s² I)."""
    a = float(SCHEDULE.alpha_bars[-1])
    return math.sqrt(a) * MU + math.sqrt(a * S**2 + 1 - a) * (x0 - MU) / S


def test_any_sampler_that_declares_itself_invertible_inverts_one_point_data():
    """Euler's ODE step, not only DDIM's, runs upwards: the capability, not the name, decides."""
    point = torch.tensor([[0.4, -0.7]])
    model = loaded(OnePoint(SCHEDULE, point), SCHEDULE, (2,))
    inversion = drain(invert(model, point.expand(3, -1), SampleConfig(sampler="euler", steps=30, clip=False)))
    assert inversion.settings["sampler"] == "euler"
    assert inversion.rms_error().max() < 1e-4


def test_gaussian_data_inverts_to_the_odes_noise_with_an_error_falling_as_1_over_K():
    """DDIM is a first-order solver: five times the steps, about a fifth of the error."""
    model = loaded(GaussianEps(SCHEDULE, MU, S), SCHEDULE, (2,))
    x0 = MU + S * torch.randn(2000, 2, generator=torch.Generator().manual_seed(1))
    noise_errors, reconstruction_errors = [], []
    for steps in (20, 100):
        inversion = drain(invert(model, x0, ddim(steps)))
        assert 0.9 < float(inversion.noise.std()) < 1.1  # the data went to N(0, I)
        noise_errors.append(float((inversion.noise - exact_inverse(x0)).abs().mean()))
        reconstruction_errors.append(float(inversion.rms_error().mean()))
    assert noise_errors[0] < 0.15 and 3.5 < noise_errors[0] / noise_errors[1] < 6
    assert reconstruction_errors[0] < 0.1 and 3.5 < reconstruction_errors[0] / reconstruction_errors[1] < 6


def test_inversion_runs_only_invertible_samplers_and_stops_when_asked():
    model = loaded(OnePoint(SCHEDULE, torch.zeros(1, 2)), SCHEDULE, (2,))
    for stochastic in (SampleConfig(sampler="ddpm", steps=10), ddim(10, options={"eta": 0.5})):
        with pytest.raises(SettingError, match=r"cannot run from x_0 up to x_T; invert with a deterministic sampler \(DDIM, Euler"):
            drain(invert(model, torch.zeros(1, 2), stochastic))
    asked = iter(range(1000))
    assert drain(invert(model, torch.zeros(1, 2), ddim(10), should_stop=lambda: next(asked) >= 15)) is None
