"""Few-step sampling is as sound as the full chain on every schedule (issue 16 #1).

On cosine, ᾱ_T ≈ 2·10⁻⁹: a first step from t = T through x̂_0 = (x_t − √(1 − ᾱ_t) ε̂)/√ᾱ_t
magnified the network's error in ε̂ some 2·10⁴ times, and DDIM-50 put every point of a trained
Swiss-roll model hundreds of units away. x̂_0 is now kept within the data's range, which the
checkpoint records. Heun's trapezoid cannot bridge that first step at all (σ from 2·10⁴ to about
6 in one step), so it runs on Karras et al.'s noise levels, which start at σ = 80.
"""

import numpy as np
import pytest
import torch

from diffusion_studio.core.checkpoint import save_checkpoint
from diffusion_studio.core.data.datasets import load_toy
from diffusion_studio.core.loaded_model import open_model
from diffusion_studio.core.models.config import MLPConfig
from diffusion_studio.core.sample_config import SampleConfig
from diffusion_studio.core.sampling import SamplingRun
from diffusion_studio.core.schedules import SCHEDULE_NAMES, ScheduleConfig
from diffusion_studio.core.train_config import TrainConfig
from diffusion_studio.core.training import Trainer

DATA = load_toy("swiss_roll")
REFERENCE = torch.from_numpy(DATA.data[:2000])


def distance_to_data(points: np.ndarray) -> float:
    """Mean distance from each point to its nearest data point."""
    return torch.cdist(torch.from_numpy(points), REFERENCE).min(1).values.mean().item()


def samples(model, **config) -> np.ndarray:
    last = None
    for last in SamplingRun(model, SampleConfig(num=300, seed=1, **config)).steps():  # noqa: B007 (kept: the last step)
        pass
    return last.x_prev.numpy()


@pytest.mark.parametrize("schedule", SCHEDULE_NAMES)
def test_few_step_samplers_land_as_near_the_data_as_the_full_chain(tmp_path, schedule):
    config = TrainConfig(data="swiss_roll", steps=600, batch_size=128, learning_rate=1e-3, warmup_steps=100, device="cpu")
    trainer = Trainer(MLPConfig(hidden=64, num_layers=2), ScheduleConfig(schedule, 1000), config, DATA)
    for _ in trainer.train(report_every=600):
        pass
    model = open_model(save_checkpoint(tmp_path / "model", trainer.checkpoint()))
    low, high = model.data_range
    assert (low, high) == DATA.value_range

    full = distance_to_data(samples(model, sampler="ddpm"))
    noise = distance_to_data(np.random.default_rng(0).standard_normal((300, 2)).astype(np.float32))
    assert full < noise / 1.5
    for sampler, steps in (("ddim", 20), ("ddim", 50), ("dpmpp-2m", 20), ("heun", 10)):
        few = samples(model, sampler=sampler, steps=steps)
        assert few.min() >= 1.5 * low and few.max() <= 1.5 * high, f"{sampler}-{steps} threw points far off the data"
        assert distance_to_data(few) < max(1.3 * full, full + 0.03), f"{sampler}-{steps} lands farther from the data than DDPM"
