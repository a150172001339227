"""Inversion: the x_T that a deterministic sampler maps back to a given image, and the way back.

DDIM with η = 0 is a discretised ODE (Song et al. 2021, §4.3), so its step x_s = √ᾱ_s x̂_0 +
√(1 − ᾱ_s) ε̂ (eq. 12) also runs upwards, s > t, with ε̂ read at s (Mokady et al. 2023); so does
any sampler that declares itself invertible (``Sampler.invertible_with``: Euler's ODE step). From
x_0 it reaches an x_T that should look like N(0, I); sampling from that x_T with the same steps
returns close to x_0, and the gap measures how well the ODE's discretisation and the network's
ε̂ agree going up and coming down.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import torch

from diffusion_studio.core.errors import SettingError
from diffusion_studio.core.sample_config import SampleConfig
from diffusion_studio.core.samplers import SAMPLERS, sampler_class
from diffusion_studio.core.sampling import SamplingRun

if TYPE_CHECKING:
    from diffusion_studio.core.loaded_model import LoadedModel


@dataclass(frozen=True)
class Inversion:
    """An image, the x_T inversion found for it, and the sampler's sample from that x_T."""

    x0: torch.Tensor  # N×C×H×W (or N×D)
    noise: torch.Tensor  # x_T
    reconstruction: torch.Tensor
    settings: dict[str, Any] = field(default_factory=dict)  # the runs' settings (SamplingRun.metadata), for pictures of it

    def rms_error(self) -> torch.Tensor:
        """(N,): √(mean (x̂ − x_0)²) per image, in data units ([−1, 1] for images: 2/255 a gray level)."""
        return (self.reconstruction - self.x0).square().flatten(1).mean(1).sqrt()


def inversion_config(config: SampleConfig) -> SampleConfig:
    """``config`` checked for an inversion: its sampler, with its options, must be invertible
    (deterministic: DDIM with η = 0, Euler); a SettingError naming the ones that are, otherwise."""
    cls = sampler_class(config.sampler)
    if not cls.invertible_with(cls.make_options(**config.options)):
        invertible = [c.label for c in SAMPLERS.values() if c.invertible_with(c.Options())]
        raise SettingError("sampler", f"{cls.label} with these options adds fresh noise at each step, so it cannot run "
                           f"from x_0 up to x_T; invert with a deterministic sampler ({', '.join(invertible)})")
    return config


def invert(
    model: LoadedModel, x0: torch.Tensor, config: SampleConfig, device: torch.device | str = "cpu",
    should_stop: Callable[[], bool] = lambda: False,
) -> Generator[tuple[str, Any], None, Inversion | None]:
    """Run the sampler from x_0 up to x_T, then back down from that x_T over the same timesteps.
    Yields ("invert", step) for each upward step and ("reconstruct", step) for each downward one;
    returns the Inversion (None if stopped)."""
    config = replace(inversion_config(config), num=x0.shape[0])
    up = SamplingRun(model, config, device, ascending=True)
    noise = None
    for step in up.steps(should_stop, x_start=x0):
        noise = step.x_prev
        yield "invert", step
    if noise is None or should_stop():
        return None
    reconstruction, down = None, SamplingRun(model, config, device)
    for step in down.steps(should_stop, x_start=noise):
        reconstruction = step.x_prev
        yield "reconstruct", step
    if reconstruction is None or should_stop():
        return None
    return Inversion(x0.cpu(), noise, reconstruction, down.metadata())
