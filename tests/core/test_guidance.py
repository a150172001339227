"""Classifier-free guidance through the sampling run, on a perfect conditional network: two Gaussian
components, one per class, whose conditional and unconditional ε are known exactly."""

import numpy as np
import pytest
import torch

from diffusion_studio.core.errors import SettingError
from diffusion_studio.core.loaded_model import LoadedModel
from diffusion_studio.core.mixture import GaussianMixture
from diffusion_studio.core.sample_config import SampleConfig
from diffusion_studio.core.sampling import SamplingRun
from diffusion_studio.core.schedules import make_schedule

SCHEDULE = make_schedule("linear", 200, 1e-3, 0.05)
MIXTURE = GaussianMixture(np.array([[-1.0, 0.0], [1.0, 0.0]]), np.array([0.4, 0.4]), np.array([0.5, 0.5]))
COMPONENTS = [GaussianMixture(MIXTURE.means[k:k + 1], MIXTURE.stds[k:k + 1], np.ones(1)) for k in range(2)]


class ExactClasses(torch.nn.Module):
    """ε*(x_t, t, c) of component c, and of the whole mixture for the null label 2."""

    num_classes = 2

    def forward(self, x, index, label=None):
        points, ts = x.detach().double().numpy(), (index + 1).numpy()
        labels = np.full(len(x), 2) if label is None else label.numpy()
        eps = np.empty_like(points)
        for i, (t, c) in enumerate(zip(ts, labels)):
            density = MIXTURE if c == 2 else COMPONENTS[c]
            eps[i] = density.exact_eps(points[i:i + 1], float(SCHEDULE.alpha_bars[t]))[0]
        return torch.from_numpy(eps).float()


MODEL = LoadedModel(ExactClasses(), SCHEDULE.config, "eps", (2,), "exact", "")


def draw(**config):
    steps = list(SamplingRun(MODEL, SampleConfig(sampler="ddim", steps=20, num=400, seed=0, clip=False, **config)).steps())
    return steps[-1].x_prev.numpy(), steps[-1].nfe


def test_a_class_draws_its_component_and_guidance_pushes_it_away_from_the_other():
    unconditional, nfe_plain = draw()
    assert 0.3 < (unconditional[:, 0] > 0).mean() < 0.7  # both components
    conditional, nfe_conditional = draw(class_label=1)
    assert (conditional[:, 0] > 0).mean() > 0.97 and nfe_conditional == nfe_plain == 20  # w = 0: one evaluation
    guided, nfe_guided = draw(class_label=1, guidance=3.0)
    assert nfe_guided == 40  # the conditional and the null prediction every step
    assert guided[:, 0].mean() > conditional[:, 0].mean() + 0.1  # further from class 0's component
    assert guided[:, 0].std() < conditional[:, 0].std()  # and more concentrated: fidelity for diversity


def test_guidance_only_in_an_interval_of_t_counts_its_evaluations_there():
    _, nfe = draw(class_label=0, guidance=2.0, guidance_from=0.5, guidance_to=1.0)
    assert nfe == 31  # trailing steps t = 200, 190, …, 10: the 11 with t/T ≥ 0.5 twice, the other 9 once


@pytest.mark.parametrize("config, setting", [
    ({"guidance": 2.0}, "guidance"),
    ({"class_label": 2}, "class_label"),
    ({"class_label": 0, "guidance_from": 0.8, "guidance_to": 0.2}, "guidance_from"),
])
def test_impossible_guidance_is_refused_naming_the_setting(config, setting):
    with pytest.raises(SettingError) as info:
        SamplingRun(MODEL, SampleConfig(sampler="ddim", steps=5, **config))
    assert info.value.setting == setting


def test_an_unconditional_model_takes_no_class():
    plain = LoadedModel(torch.nn.Linear(2, 2), SCHEDULE.config, "eps", (2,), "plain", "")
    with pytest.raises(SettingError, match="not class-conditional"):
        SamplingRun(plain, SampleConfig(sampler="ddim", steps=5, class_label=0))
