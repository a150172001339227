"""Sampling settings, shared by the CLI and the app so that the same settings give the same samples. No torch here."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from diffusion_studio.core.samplers import SAMPLERS, sampler_class
from diffusion_studio.core.limits import MAX_CLASSES, MAX_GUIDANCE, MAX_SAMPLES, MAX_SEED, MAX_TIMESTEPS
from diffusion_studio.core.settings import check_settings, setting, setting_fields

POINT_SAMPLES = 1000
"""Samples a 2-D model draws unless told: a cloud that shows the distribution (images: SampleConfig's num, a grid)."""
MAX_POINTS = 20_000
"""The most points a 2-D run in the app draws: two numbers each, so thousands show the distribution."""
AUTO_SPACING = "auto"
"""The spacing each sampler is best run with (Sampler.default_spacing)."""
SPACING_LABELS = {AUTO_SPACING: "the sampler's own", "trailing": "trailing (from T)", "linspace": "evenly spaced",
                  "leading": "leading (DDIM paper)", "karras": "Karras σ (ρ = 7)",
                  "logsnr": "even in log SNR (Lu et al.)"}
SPACING_HELP = {
    AUTO_SPACING: "Karras σ for Heun, trailing for the others",
    "trailing": "T − k·T/K: starts at T (Lin et al. 2024)",
    "linspace": "evenly from T down to 1",
    "leading": "1 + k·⌊T/K⌋ as in the DDIM paper: never visits T",
    "karras": "noise levels σ evenly spaced in σ^(1/7) from min(σ_T, 80) to σ_1 (Karras et al. 2022, eq. 5)",
    "logsnr": "λ = ½ log SNR = −log σ evenly spaced from −log min(σ_T, 80) to λ_1: equal steps for DPM-Solver++ "
              "(Lu et al. 2022)",
}


@dataclass(frozen=True)
class SampleConfig:
    """How to run the reverse process."""

    sampler: str = setting("ddpm", "Sampler", "How each step goes from x_t to a less noisy x_s",
                           choices={name: cls.label for name, cls in SAMPLERS.items()},
                           choice_help={name: cls.summary() for name, cls in SAMPLERS.items()})
    steps: int | None = setting(None, "Steps", "Sampling steps on a subsequence of t (default: all T)", ge=1,
                                le=MAX_TIMESTEPS)
    spacing: str = setting(AUTO_SPACING, "Spacing", "Which timesteps K < T steps visit",
                           choices=SPACING_LABELS, choice_help=SPACING_HELP)
    clip: bool | None = setting(None, "Keep x̂₀ in the data's range",
                                "Clamp each step's x̂_0 to the range of the training data ([−1, 1] for images, "
                                "the points' extent for 2-D data): few-step samplers stay sound on every schedule "
                                "(default: on when the model records its range)")
    num: int = setting(16, "Samples", "Samples drawn at once, shown as a grid", ge=1, le=MAX_SAMPLES)
    seed: int = setting(0, "Seed", "Seeds x_T ~ N(0, I) and every step's noise: the same seed gives the same samples", ge=0,
                       le=MAX_SEED)
    class_label: int | None = setting(None, "Class", "The class c to draw from a class-conditional model (its labels "
                                      "0…K−1; default: none, the model's p(x))", ge=0, le=MAX_CLASSES, flag="--class")
    guidance: float = setting(0.0, "Guidance w", "Classifier-free guidance (Ho & Salimans 2022) towards the class: "
                              "ε̃ = (1 + w) ε̂(x, c) − w ε̂(x, ∅); 0 is the conditional model unguided, and each guided "
                              "step costs two network evaluations (diffusers' guidance_scale is 1 + w)",
                              ge=0, le=MAX_GUIDANCE, step=0.5, decimals=2)
    guidance_from: float = setting(0.0, "Guide from t/T", "Guidance acts only while t/T is at least this (an interval "
                                   "of t, Kynkäänniemi et al. 2024); below it the conditional model alone",
                                   ge=0, le=1, step=0.05, decimals=2)
    guidance_to: float = setting(1.0, "Guide to t/T", "Guidance acts only while t/T is at most this; above it the "
                                 "conditional model alone", ge=0, le=1, step=0.05, decimals=2)
    record_every: int = setting(1, "Record every", "Keep every k-th step for the timeline (and always the result)", ge=1,
                               le=MAX_TIMESTEPS)
    options: Mapping[str, Any] = field(default_factory=dict, hash=False)  # the sampler's own settings, e.g. {"eta": 0.5}


DETERMINISTIC = SampleConfig(sampler="ddim", options={"eta": 0.0})
"""The deterministic reference that compare, previews, the round trip and the 2-D lab run: DDIM with
η = 0, the probability-flow ODE discretised (Song et al. 2021, §4.3), so one x_T gives one sample."""


def deterministic(config: SampleConfig = DETERMINISTIC, **changes: Any) -> SampleConfig:
    """``config`` with DETERMINISTIC's sampler and options (and any other ``changes``)."""
    return replace(config, sampler=DETERMINISTIC.sampler, options=dict(DETERMINISTIC.options), **changes)


def default_num(is_image: bool) -> int:
    """Samples drawn unless told: SampleConfig's num (a grid) for images, POINT_SAMPLES (a cloud) for 2-D points."""
    return SampleConfig().num if is_image else POINT_SAMPLES


def validate_sample_config(c: SampleConfig) -> None:
    """Raise SettingError, naming the setting, for settings sampling cannot use."""
    check_settings(c)
    sampler_class(c.sampler).make_options(**c.options)


def run_label(config: SampleConfig, timesteps: int) -> str:
    """A run in a few words, e.g. "DDIM 50 steps η=0.5": what differs from the sampler's defaults
    (its options, a spacing other than its own, x̂_0 left unclamped)."""
    cls = sampler_class(config.sampler)
    defaults = cls.Options()
    changed = [f for f in setting_fields(cls.Options) if f.name in config.options and config.options[f.name] != getattr(defaults, f.name)]
    words = [f"{f.setting.label}={config.options[f.name]}" for f in changed]
    if config.spacing != AUTO_SPACING:
        words.append(f"{config.spacing} spacing")
    if config.clip is False:
        words.append("x̂₀ unclamped")
    if config.class_label is not None:
        words.append(f"class {config.class_label}" + (f" w={config.guidance:g}" if config.guidance else ""))
    return " ".join([cls.label, f"{config.steps or timesteps} steps", *words])
