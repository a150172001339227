"""Reverse-process samplers, one class each: ``set_timesteps()`` then ``step()`` per timestep.

A sampler never calls the network; the sampling loop does, then hands its output to
``step()``, which returns the new sample together with the predicted x̂_0 and ε̂.
Timesteps are the papers' t = 1…T; a step goes from t to the next timestep s < t (0 at the end).
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import numpy as np

from diffusion_studio.core.errors import SettingError
from diffusion_studio.core.process import (
    Prediction,
    check_prediction,
    predict_eps_from_x0,
    q_posterior_coefficients,
    split_prediction,
)
from diffusion_studio.core.schedules import NoiseSchedule

if TYPE_CHECKING:  # torch is loaded by whoever hands us tensors; naming samplers needs none
    import torch

Spacing = Literal["linspace", "leading", "trailing"]
SPACINGS: tuple[str, ...] = ("linspace", "leading", "trailing")
DDPMVariance = Literal["beta", "beta_tilde"]
DDPM_VARIANCES: tuple[str, ...] = ("beta", "beta_tilde")


@dataclass(frozen=True)
class StepOutput:
    """What one reverse step produced."""

    prev_sample: torch.Tensor  # x_s, the sample at the next (smaller) timestep
    pred_x0: torch.Tensor  # x̂_0, the network's estimate of the clean data at t
    pred_eps: torch.Tensor  # ε̂, the network's estimate of the noise in x_t


def spaced_timesteps(num_train: int, num_steps: int, spacing: Spacing) -> np.ndarray:
    """K of the T training steps, descending, as the papers count them (1…T).

    "linspace": evenly from T down to 1; "leading": 1 + k·⌊T/K⌋ (DDIM paper, never reaches T);
    "trailing": T − k·T/K rounded (starts at T, recommended by Lin et al. 2024).
    """
    if spacing not in SPACINGS:
        raise SettingError("spacing", f"unknown spacing '{spacing}' (choose from {', '.join(SPACINGS)})")
    if isinstance(num_steps, bool) or not isinstance(num_steps, (int, np.integer)) or not 1 <= num_steps <= num_train:
        raise SettingError("steps", f"the number of sampling steps must be between 1 and T = {num_train}, got {num_steps!r}")
    if spacing == "linspace":
        ts = np.round(np.linspace(num_train, 1, num_steps))
    elif spacing == "leading":
        ts = 1 + np.arange(num_steps)[::-1] * (num_train // num_steps)
    else:
        ts = np.round(np.arange(num_train, 0, -num_train / num_steps))
    return np.unique(ts.astype(np.int64))[::-1].copy()


class Sampler(ABC):
    """Shared machinery: the timestep sequence and turning a network output into (x̂_0, ε̂)."""

    name: str = ""

    def __init__(self, schedule: NoiseSchedule, prediction: Prediction = "eps", clip_x0: bool = False) -> None:
        check_prediction(prediction)
        self.schedule = schedule
        self.prediction = prediction
        self.clip_x0 = clip_x0
        self.set_timesteps(schedule.timesteps)

    def set_timesteps(self, num_steps: int, spacing: Spacing = "trailing") -> None:
        """Choose the K timesteps to visit (all T by default, where every spacing agrees)."""
        self.timesteps = spaced_timesteps(self.schedule.timesteps, num_steps, spacing)
        self._next = dict(zip(self.timesteps.tolist(), self.timesteps[1:].tolist() + [0]))

    def prev_timestep(self, t: int) -> int:
        """The timestep s the step from t lands on (0 after the last)."""
        try:
            return self._next[int(t)]
        except KeyError:
            raise SettingError("timestep", f"t = {t} is not one of this sampler's timesteps") from None

    def predict(self, model_output: torch.Tensor, t: int, x_t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(x̂_0, ε̂) from the network output; with clipping, x̂_0 ∈ [−1, 1] and ε̂ recomputed to match."""
        pred_x0, pred_eps = split_prediction(self.schedule, model_output, x_t, t, self.prediction)
        if self.clip_x0:
            pred_x0 = pred_x0.clamp(-1.0, 1.0)
            pred_eps = predict_eps_from_x0(self.schedule, x_t, t, pred_x0)
        return pred_x0, pred_eps

    @abstractmethod
    def variance(self, t: int) -> float:
        """σ², the variance of the noise this sampler adds on the step from t."""

    @abstractmethod
    def step(
        self,
        model_output: torch.Tensor,
        t: int,
        x_t: torch.Tensor,
        generator: torch.Generator | None = None,
    ) -> StepOutput:
        """One reverse step from x_t to x_s, s = prev_timestep(t)."""

    def _noise(self, like: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        import torch

        return torch.randn(like.shape, generator=generator, device=like.device, dtype=like.dtype)


class DDPMSampler(Sampler):
    """Ancestral sampling, Ho et al. Algorithm 2: x_s ~ N(μ̃(x_t, x̂_0), σ_t² I).

    σ_t² = β_t ("beta") or β̃_t ("beta_tilde"); both are named in Ho et al. §3.2. On a subsequence
    of timesteps β_t becomes β_{t|s} = 1 − ᾱ_t/ᾱ_s and μ̃, β̃ the posterior from t to s.
    """

    name = "ddpm"

    def __init__(
        self,
        schedule: NoiseSchedule,
        prediction: Prediction = "eps",
        variance: DDPMVariance = "beta",
        clip_x0: bool = False,
    ) -> None:
        if variance not in DDPM_VARIANCES:
            raise SettingError("variance", f"unknown choice '{variance}' (choose from {', '.join(DDPM_VARIANCES)})")
        self.variance_type = variance
        super().__init__(schedule, prediction, clip_x0)

    def variance(self, t: int) -> float:
        s = self.prev_timestep(t)
        if s == 0:
            return 0.0  # Algorithm 2, line 3: no noise on the last step
        if self.variance_type == "beta_tilde":
            return q_posterior_coefficients(self.schedule, t, s)[2]
        return float(-np.expm1(self.schedule.log_alpha_bars[t] - self.schedule.log_alpha_bars[s]))

    def step(self, model_output, t, x_t, generator=None):
        s = self.prev_timestep(t)
        # 1. predicted x_0 and ε, eq. (15)
        pred_x0, pred_eps = self.predict(model_output, t, x_t)
        # 2. posterior mean μ̃(x_t, x̂_0), eq. (7)
        c0, ct, _ = q_posterior_coefficients(self.schedule, t, s)
        mean = c0 * pred_x0 + ct * x_t
        # 3. add σ_t z, z ~ N(0, I), except on the last step (Algorithm 2, lines 3–4)
        variance = self.variance(t)
        prev = mean + math.sqrt(variance) * self._noise(x_t, generator) if variance > 0 else mean
        return StepOutput(prev, pred_x0, pred_eps)


class DDIMSampler(Sampler):
    """DDIM (Song et al. 2021, eq. 12): x_s = √ᾱ_s x̂_0 + √(1 − ᾱ_s − σ²) ε̂ + σ z.

    σ = η √((1 − ᾱ_s)/(1 − ᾱ_t)) √(1 − ᾱ_t/ᾱ_s) (eq. 16): η = 0 is deterministic, η = 1 over
    all T steps is DDPM with σ_t² = β̃_t.
    """

    name = "ddim"

    def __init__(
        self,
        schedule: NoiseSchedule,
        prediction: Prediction = "eps",
        eta: float = 0.0,
        clip_x0: bool = False,
    ) -> None:
        if not (isinstance(eta, (int, float)) and math.isfinite(eta) and eta >= 0):
            raise SettingError("eta", f"η must be a number ≥ 0, got {eta!r}")
        self.eta = float(eta)
        super().__init__(schedule, prediction, clip_x0)

    def variance(self, t: int) -> float:
        s = self.prev_timestep(t)
        return self.eta**2 * q_posterior_coefficients(self.schedule, t, s)[2]

    def step(self, model_output, t, x_t, generator=None):
        s = self.prev_timestep(t)
        alpha_bar_s = float(self.schedule.alpha_bars[s])
        one_minus_alpha_bar_s = float(self.schedule.one_minus_alpha_bars[s])
        # 1. predicted x_0 and ε, eq. (9)
        pred_x0, pred_eps = self.predict(model_output, t, x_t)
        # 2. σ_t(η), eq. (16)
        variance = self.variance(t)
        # 3. direction pointing to x_t, eq. (12)
        direction = math.sqrt(max(one_minus_alpha_bar_s - variance, 0.0)) * pred_eps
        # 4. x_s = √ᾱ_s x̂_0 + direction + σ z, eq. (12)
        prev = math.sqrt(alpha_bar_s) * pred_x0 + direction
        if variance > 0:
            prev = prev + math.sqrt(variance) * self._noise(x_t, generator)
        return StepOutput(prev, pred_x0, pred_eps)


SAMPLERS: dict[str, type[Sampler]] = {DDPMSampler.name: DDPMSampler, DDIMSampler.name: DDIMSampler}


def build_sampler(
    name: str,
    schedule: NoiseSchedule,
    prediction: Prediction = "eps",
    eta: float = 0.0,
    variance: DDPMVariance = "beta",
    clip_x0: bool = False,
) -> Sampler:
    """A sampler by name; DDPM takes ``variance``, DDIM takes ``eta``."""
    if name == DDPMSampler.name:
        return DDPMSampler(schedule, prediction, variance=variance, clip_x0=clip_x0)
    if name == DDIMSampler.name:
        return DDIMSampler(schedule, prediction, eta=eta, clip_x0=clip_x0)
    raise SettingError("sampler", f"unknown sampler '{name}' (choose from {', '.join(SAMPLERS)})")
