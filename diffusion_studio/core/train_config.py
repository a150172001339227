"""Training settings: a frozen dataclass saved in config.json. No torch here."""

from __future__ import annotations

import math
from dataclasses import dataclass

from diffusion_studio.core.errors import SettingError
from diffusion_studio.core.process import PREDICTIONS

DEVICES: tuple[str, ...] = ("auto", "cpu", "cuda", "mps")


@dataclass(frozen=True)
class TrainConfig:
    """How to train; saved in config.json so a run can be resumed and repeated."""

    data: str = "digits"  # a built-in set ("digits", "swiss_roll", …) or an image folder
    steps: int = 10_000  # total optimizer steps (a resumed run continues towards this)
    batch_size: int = 64
    learning_rate: float = 2e-4  # peak AdamW learning rate (Ho et al.: 2e-4)
    warmup_steps: int = 200  # the learning rate rises linearly over these first steps
    weight_decay: float = 0.0
    grad_clip: float = 1.0  # clip the gradient's global norm to this (Ho et al.: 1)
    ema_decay: float = 0.999  # EMA of weights: θ̄ ← d θ̄ + (1 − d) θ (Ho et al.: 0.9999)
    prediction: str = "eps"  # what the network predicts: "eps", "x0" or "v"
    seed: int = 0
    device: str = "auto"  # "auto" (CUDA, then MPS, then CPU), "cpu", "cuda" or "mps"
    mixed_precision: bool = True  # bfloat16 autocast on CUDA; ignored elsewhere


def validate_train_config(c: TrainConfig) -> None:
    """Raise SettingError, naming the setting, for settings training cannot use."""
    checks = [
        ("steps", c.steps >= 1, "must be at least 1"),
        ("batch_size", c.batch_size >= 1, "must be at least 1"),
        ("learning_rate", math.isfinite(c.learning_rate) and c.learning_rate > 0, "must be a positive number"),
        ("warmup_steps", c.warmup_steps >= 0, "cannot be negative"),
        ("weight_decay", c.weight_decay >= 0, "cannot be negative"),
        ("grad_clip", c.grad_clip > 0, "must be positive"),
        ("ema_decay", 0 <= c.ema_decay < 1, "must lie in [0, 1)"),
        ("prediction", c.prediction in PREDICTIONS, f"choose from {', '.join(PREDICTIONS)}"),
        ("device", c.device in DEVICES, f"choose from {', '.join(DEVICES)}"),
    ]
    for setting, ok, reason in checks:
        if not ok:
            raise SettingError(setting, f"{reason}, got {getattr(c, setting)!r}")
