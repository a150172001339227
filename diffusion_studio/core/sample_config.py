"""Sampling settings, shared by the CLI and the app so that the same settings give the same samples. No torch here."""

from __future__ import annotations

import math
from dataclasses import dataclass

from diffusion_studio.core.errors import SettingError
from diffusion_studio.core.samplers import DDPM_VARIANCES, SAMPLERS, SPACINGS


@dataclass(frozen=True)
class SampleConfig:
    """How to run the reverse process."""

    sampler: str = "ddpm"  # "ddpm" or "ddim"
    steps: int | None = None  # network calls; None runs all T
    eta: float = 0.0  # DDIM η: 0 deterministic, 1 as noisy as DDPM with β̃
    variance: str = "beta"  # DDPM σ_t²: "beta" (β_t) or "beta_tilde" (β̃_t)
    spacing: str = "trailing"  # which timesteps K < T steps visit
    clip: bool | None = None  # clip x̂_0 to [−1, 1]; None: on for images, off for points
    num: int = 16  # samples in the batch (a grid)
    seed: int = 0  # seeds x_T and every step's noise
    record_every: int = 1  # keep every k-th step (and always the result)


def validate_sample_config(c: SampleConfig) -> None:
    """Raise SettingError, naming the setting, for settings sampling cannot use."""
    checks = [
        ("sampler", c.sampler in SAMPLERS, f"choose from {', '.join(SAMPLERS)}"),
        ("steps", c.steps is None or c.steps >= 1, "must be at least 1"),
        ("eta", math.isfinite(c.eta) and c.eta >= 0, "must be a number ≥ 0"),
        ("variance", c.variance in DDPM_VARIANCES, f"choose from {', '.join(DDPM_VARIANCES)}"),
        ("spacing", c.spacing in SPACINGS, f"choose from {', '.join(SPACINGS)}"),
        ("num", c.num >= 1, "must be at least 1"),
        ("record_every", c.record_every >= 1, "must be at least 1"),
    ]
    for setting, ok, reason in checks:
        if not ok:
            raise SettingError(setting, f"{reason}, got {getattr(c, setting)!r}")
