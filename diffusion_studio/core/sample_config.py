"""Sampling settings, shared by the CLI and the app so that the same settings give the same samples. No torch here."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from diffusion_studio.core.samplers import SAMPLERS, sampler_class
from diffusion_studio.core.settings import check_settings, setting

SPACING_LABELS = {"trailing": "trailing (from T)", "linspace": "evenly spaced", "leading": "leading (DDIM paper)"}


@dataclass(frozen=True)
class SampleConfig:
    """How to run the reverse process."""

    sampler: str = setting("ddpm", "Sampler", "How each step goes from x_t to a less noisy x_s",
                           choices={name: cls.label for name, cls in SAMPLERS.items()},
                           choice_help={name: cls.summary() for name, cls in SAMPLERS.items()})
    steps: int | None = setting(None, "Steps", "Sampling steps on a subsequence of t (default: all T)", ge=1)
    spacing: str = setting("trailing", "Spacing", "Which timesteps K < T steps visit (trailing starts at T, Lin et al. 2024)",
                           choices=SPACING_LABELS)
    clip: bool | None = setting(None, "Keep x̂₀ in the data's range",
                                "Clamp each step's x̂_0 to the range of the training data ([−1, 1] for images, "
                                "the points' extent for 2-D data): few-step samplers stay sound on every schedule "
                                "(default: on when the model records its range)")
    num: int = setting(16, "Samples", "Samples drawn at once, shown as a grid", ge=1)
    seed: int = setting(0, "Seed", "Seeds x_T ~ N(0, I) and every step's noise: the same seed gives the same samples", ge=0)
    record_every: int = setting(1, "Record every", "Keep every k-th step for the timeline (and always the result)", ge=1)
    options: Mapping[str, Any] = field(default_factory=dict, hash=False)  # the sampler's own settings, e.g. {"eta": 0.5}


def validate_sample_config(c: SampleConfig) -> None:
    """Raise SettingError, naming the setting, for settings sampling cannot use."""
    check_settings(c)
    sampler_class(c.sampler).make_options(**c.options)
