"""Samplers of the reverse process, one class per file, and the registry that names them.

Adding a sampler: a file with a ``Sampler`` subclass (its name, label, options dataclass and
``step``), and its class in ``REGISTERED`` below. The CLI, the app and configs find it by name.
"""

from __future__ import annotations

from typing import Any

from diffusion_studio.core.errors import SettingError
from diffusion_studio.core.process import Prediction
from diffusion_studio.core.samplers.base import SPACINGS, Denoise, NoOptions, Sampler, Spacing, StepOutput, spaced_timesteps
from diffusion_studio.core.samplers.ddim import DDIMOptions, DDIMSampler
from diffusion_studio.core.samplers.ddpm import DDPM_VARIANCES, DDPMOptions, DDPMSampler
from diffusion_studio.core.samplers.dpmpp_2m import DPMPP2MSampler
from diffusion_studio.core.samplers.euler import EulerSampler
from diffusion_studio.core.samplers.euler_ancestral import EulerAncestralOptions, EulerAncestralSampler
from diffusion_studio.core.samplers.flow_euler import FlowEulerSampler
from diffusion_studio.core.samplers.flow_heun import FlowHeunSampler
from diffusion_studio.core.samplers.heun import HeunSampler
from diffusion_studio.core.schedules import NoiseSchedule

REGISTERED: tuple[type[Sampler], ...] = (
    DDPMSampler, DDIMSampler, EulerSampler, EulerAncestralSampler, HeunSampler, DPMPP2MSampler, FlowEulerSampler,
    FlowHeunSampler,
)

SAMPLERS: dict[str, type[Sampler]] = {cls.name: cls for cls in REGISTERED}
"""Every sampler by the name the CLI, configs and trajectory files use."""


def sampler_class(name: str) -> type[Sampler]:
    """The sampler registered as ``name`` (SettingError naming the choices otherwise)."""
    try:
        return SAMPLERS[name]
    except KeyError:
        raise SettingError("sampler", f"unknown sampler '{name}' (choose from {', '.join(SAMPLERS)})") from None


def build_sampler(
    name: str,
    schedule: NoiseSchedule,
    prediction: Prediction = "eps",
    x0_range: tuple[float, float] | None = None,
    **options: Any,
) -> Sampler:
    """A sampler by name, with its own options (DDPM: variance; DDIM: eta; …); x̂_0 clamped to x0_range."""
    return sampler_class(name)(schedule, prediction, x0_range, **options)


__all__ = [
    "DDIMOptions", "DDIMSampler", "DDPMOptions", "DDPMSampler", "DDPM_VARIANCES", "DPMPP2MSampler", "Denoise",
    "EulerAncestralOptions", "EulerAncestralSampler", "EulerSampler", "FlowEulerSampler", "FlowHeunSampler", "HeunSampler",
    "NoOptions", "SAMPLERS",
    "SPACINGS", "Sampler", "Spacing", "StepOutput", "build_sampler", "sampler_class", "spaced_timesteps",
]
