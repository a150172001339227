"""The open sampler API: a registry, explicit targets and injected noise, samplers that call the
network more than once or keep a history, a hook between steps, and ascending (inversion) runs."""

from dataclasses import dataclass, fields

import pytest
import torch

from diffusion_studio.core import process as P
from diffusion_studio.core.errors import SettingError
from diffusion_studio.core.sample_config import SampleConfig, validate_sample_config
from diffusion_studio.core.samplers import SAMPLERS, SPACINGS, DDIMSampler, DDPMSampler, Sampler, StepOutput, build_sampler
from diffusion_studio.core.sampling import sample_loop
from diffusion_studio.core.schedules import make_schedule
from diffusion_studio.core.settings import setting, setting_fields

SHAPE = (4, 2)


def gaussian_network(schedule, mean=0.5, std=0.3):
    """The exact ε-network for data ~ N(mean, std²) per coordinate:
    E[ε | x_t] = √(1 − ᾱ_t)(x_t − √ᾱ_t μ) / (ᾱ_t σ² + 1 − ᾱ_t)."""

    def network(x_t, index):
        a = torch.as_tensor(schedule.alpha_bars[(index + 1).numpy()], dtype=x_t.dtype).reshape(-1, *[1] * (x_t.ndim - 1))
        return (1 - a).sqrt() * (x_t - a.sqrt() * mean) / (a * std**2 + 1 - a)

    return network


@pytest.mark.parametrize("name", SAMPLERS)
def test_every_registered_sampler_describes_itself_and_builds_from_its_options(name):
    cls = SAMPLERS[name]
    assert cls.name == name and cls.label and cls.summary() and cls.nfe_per_step >= 1 and cls.default_spacing in SPACINGS
    assert all(f.setting.label and f.setting.help for f in setting_fields(cls.Options))
    defaults = {f.name: f.default for f in fields(cls.Options)}
    sampler = build_sampler(name, make_schedule("linear", 20), **defaults)
    assert isinstance(sampler, cls) and sampler.options == cls.Options()


@pytest.mark.parametrize("name", SAMPLERS)
def test_every_registered_sampler_draws_the_data_and_keeps_its_word(name):
    """A few steps with the exact ε of data ~ N(0.5, 0.3²): finite samples of the right shape near
    the data, the network calls it declares, and the determinism and inversion it declares."""
    schedule = make_schedule("linear", 100)
    shape, mean, std = (512, 2, 2), 0.5, 0.3

    def run(seed):
        sampler = build_sampler(name, schedule)
        sampler.set_timesteps(5)
        x_T = torch.randn(shape, generator=torch.Generator().manual_seed(0))
        return sampler, list(sample_loop(gaussian_network(schedule, mean, std), sampler, shape, x_T=x_T,
                                         generator=torch.Generator().manual_seed(seed)))

    sampler, steps = run(seed=1)
    assert [step.t for step in steps] == sampler.timesteps.tolist() and len(steps) == 5 and steps[-1].prev_t == 0
    for step in steps:
        for tensor in (step.x_t, step.pred_x0, step.pred_eps, step.x_prev):
            assert tensor.shape == shape and torch.isfinite(tensor).all()
    samples = steps[-1].x_prev
    assert abs(float(samples.mean()) - mean) < 0.15 and abs(float(samples.std()) - std) < 0.15  # x_T's are 0 and 1
    calls = torch.diff(torch.tensor([0] + [step.nfe for step in steps])).tolist()
    assert calls[:-1] == [sampler.nfe_per_step] * 4 and 1 <= calls[-1] <= sampler.nfe_per_step  # the last may take fewer
    deterministic = all(sampler.variance(t) == 0 for t in sampler.timesteps.tolist())
    assert torch.equal(run(seed=2)[1][-1].x_prev, samples) == deterministic  # other noise moves only a stochastic one
    assert not sampler.invertible or deterministic
    if sampler.invertible:
        sampler.set_timesteps(5, ascending=True)
        assert sampler.timesteps[0] == 0  # from x_0 upwards
    else:
        with pytest.raises(SettingError, match="cannot run from x_0 up to x_T"):
            sampler.set_timesteps(5, ascending=True)


def test_options_of_another_sampler_or_out_of_range_are_refused_by_name():
    schedule = make_schedule("linear", 20)
    with pytest.raises(SettingError, match="eta: not an option of the DDPM"):
        build_sampler("ddpm", schedule, eta=0.5)
    with pytest.raises(SettingError, match="sampler: unknown sampler 'lms'"):
        build_sampler("lms", schedule)
    with pytest.raises(SettingError, match="eta: must be ≥ 0"):
        validate_sample_config(SampleConfig(sampler="ddim", options={"eta": -0.1}))
    with pytest.raises(SettingError, match="num: must be ≥ 1"):
        validate_sample_config(SampleConfig(num=0))
    validate_sample_config(SampleConfig(sampler="ddim", steps=10, options={"eta": 0.3}))


def test_a_step_can_name_its_target_and_take_its_noise():
    schedule = make_schedule("linear", 100)
    g = torch.Generator().manual_seed(0)
    x_t, output, z = (torch.randn(SHAPE, generator=g, dtype=torch.float64) for _ in range(3))
    subsequence = DDPMSampler(schedule)
    subsequence.set_timesteps(10)  # 100 → 90
    explicit = DDPMSampler(schedule).step(output, 100, x_t, prev_t=90, noise=z)
    torch.testing.assert_close(explicit.prev_sample, subsequence.step(output, 100, x_t, noise=z).prev_sample)
    c0, ct, _ = P.q_posterior_coefficients(schedule, 100, 90)
    expected_mean = c0 * P.predict_x0_from_eps(schedule, x_t, 100, output) + ct * x_t
    beta_100_given_90 = 1 - schedule.alpha_bars[100] / schedule.alpha_bars[90]
    torch.testing.assert_close(explicit.prev_sample, expected_mean + beta_100_given_90**0.5 * z)
    with pytest.raises(SettingError, match="noise"):
        DDPMSampler(schedule).step(output, 100, x_t, noise=torch.zeros(3))


class MidpointSampler(Sampler):
    """Test double: the probability-flow step taken at the midpoint, two network calls a step
    (the shape of Heun's method), with a history of the x̂_0 it produced."""

    name = "midpoint"
    label = "Midpoint"
    nfe_per_step = 2

    def reset(self):
        self.history = []

    def variance(self, t, prev_t=None):
        return 0.0

    def step(self, model_output, t, x_t, *, prev_t=None, noise=None, generator=None):
        s = self._target(t, prev_t)
        pred_x0, pred_eps = self.predict(model_output, t, x_t)
        a_s = float(self.schedule.alpha_bars[s])
        return StepOutput(a_s**0.5 * pred_x0 + (1 - a_s) ** 0.5 * pred_eps, pred_x0, pred_eps)

    def advance(self, denoise, t, x_t, *, prev_t=None, noise=None, generator=None):
        s = self._target(t, prev_t)
        middle = max((t + s) // 2, 1)
        half = self.step(denoise(x_t, t), t, x_t, prev_t=middle)
        out = self.step(denoise(half.prev_sample, middle), middle, half.prev_sample, prev_t=s)
        self.history.append(out.pred_x0)
        return StepOutput(out.prev_sample, out.pred_x0, out.pred_eps)


def test_a_sampler_may_call_the_network_twice_a_step_and_keep_a_history():
    schedule = make_schedule("linear", 100, 1e-3, 0.1)
    sampler = MidpointSampler(schedule)
    sampler.set_timesteps(10)
    calls = []
    network = gaussian_network(schedule)
    counted = lambda x, i: calls.append(int(i[0]) + 1) or network(x, i)  # noqa: E731
    steps = list(sample_loop(counted, sampler, SHAPE, generator=torch.Generator().manual_seed(0)))
    assert [s.nfe for s in steps] == list(range(2, 21, 2)) and len(calls) == 20
    assert calls[:4] == [100, 95, 90, 85]
    assert len(sampler.history) == 10
    list(sample_loop(counted, sampler, SHAPE, generator=torch.Generator().manual_seed(0)))
    assert len(sampler.history) == 10  # a new run starts with reset()


def test_a_hook_between_steps_keeps_known_values_as_inpainting_needs():
    schedule = make_schedule("linear", 50)
    known = torch.tensor([0.25, -0.75])
    mask = torch.tensor([1.0, 0.0])  # the first coordinate is known
    noise = torch.randn(SHAPE, generator=torch.Generator().manual_seed(1))

    def keep_known(s, x_s):
        return mask * P.q_sample(schedule, known.expand(SHAPE), s, noise) + (1 - mask) * x_s

    sampler = DDPMSampler(schedule)
    steps = list(sample_loop(gaussian_network(schedule), sampler, SHAPE, generator=torch.Generator().manual_seed(0),
                             after_step=keep_known))
    torch.testing.assert_close(steps[-1].x_prev[:, 0], known[0].expand(4))
    assert not torch.allclose(steps[-1].x_prev[:, 1], known[1].expand(4))
    torch.testing.assert_close(steps[10].x_t[:, 0], P.q_sample(schedule, known.expand(SHAPE), steps[10].t, noise)[:, 0])


@pytest.mark.parametrize("name", [name for name, cls in SAMPLERS.items() if cls(make_schedule("linear", 10)).invertible])
def test_deterministic_samplers_run_upwards_from_x0_and_back_to_it(name):
    """Inversion (DDIM's, Euler's): x_0 → x_T by the same deterministic update, then x_T → x_0
    again. With the exact ε of Gaussian data the round trip returns x_0 up to the discretisation
    error, first order in the step size: ten times the steps, about a tenth of the error."""
    schedule = make_schedule("linear", 1000)
    network = gaussian_network(schedule)
    x0 = 0.5 + 0.3 * torch.randn((256, 2), generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    errors = []
    for num_steps in (20, 200):
        up = build_sampler(name, schedule)
        up.set_timesteps(num_steps, ascending=True)
        assert up.timesteps[0] == 0 and up.prev_timestep(int(up.timesteps[-1])) == 1000
        x_T = list(sample_loop(network, up, x0.shape, x_T=x0))[-1].x_prev
        assert abs(float(x_T.std()) - 1) < 0.15  # the inverted noise looks like N(0, I)
        down = build_sampler(name, schedule)
        down.set_timesteps(num_steps)
        back = list(sample_loop(network, down, x0.shape, x_T=x_T))[-1].x_prev
        errors.append(float((back - x0).abs().mean()))
    assert errors[0] < 0.1 and errors[1] < 0.01
    assert 5 < errors[0] / errors[1] < 20


def test_only_deterministic_samplers_run_upwards():
    schedule = make_schedule("linear", 10)
    with pytest.raises(SettingError, match="cannot run from x_0 up to x_T"):
        DDPMSampler(schedule).set_timesteps(5, ascending=True)
    with pytest.raises(SettingError, match="cannot run"):
        DDIMSampler(schedule, eta=0.5).set_timesteps(5, ascending=True)


def test_settings_metadata_checks_ranges_and_types():
    @dataclass(frozen=True)
    class Example:
        rate: float = setting(0.1, "Rate", "a rate", gt=0, lt=1)
        count: int | None = setting(None, "Count", "a count", ge=1)

    from diffusion_studio.core.settings import check_settings

    check_settings(Example(0.5, 3))
    check_settings(Example(0.5, None))
    for bad, match in ((Example(1.0), "rate: must be > 0 and < 1"), (Example(float("nan")), "rate: must be a finite"),
                       (Example(0.5, 0), "count: must be ≥ 1"), (Example(0.5, 2.5), "count: must be a whole number")):
        with pytest.raises(SettingError, match=match):
            check_settings(bad)
