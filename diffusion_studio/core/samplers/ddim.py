"""DDIM (Song, Meng and Ermon 2021): the same marginals as DDPM, with a tunable amount of noise."""

from __future__ import annotations

import math
from dataclasses import dataclass

from diffusion_studio.core.process import q_posterior_coefficients
from diffusion_studio.core.samplers.base import Sampler, StepOutput
from diffusion_studio.core.settings import setting


@dataclass(frozen=True)
class DDIMOptions:
    eta: float = setting(
        0.0, "η", "σ_s = η √((1 − ᾱ_s)/(1 − ᾱ_t)) √(1 − ᾱ_t/ᾱ_s): 0 is deterministic, 1 as noisy as DDPM with β̃_t",
        ge=0, step=0.1, decimals=2,
    )


class DDIMSampler(Sampler):
    """DDIM (Song et al. 2021, eq. 12): x_s = √ᾱ_s x̂_0 + √(1 − ᾱ_s − σ²) ε̂ + σ z.

    σ = η √((1 − ᾱ_s)/(1 − ᾱ_t)) √(1 − ᾱ_t/ᾱ_s) (eq. 16): η = 0 is deterministic, η = 1 over
    all T steps is DDPM with σ_t² = β̃_t. With η = 0 the same update runs upwards (s > t): DDIM
    inversion, from x_0 to the x_T that the sampler would map back to it.
    """

    name = "ddim"
    label = "DDIM"
    Options = DDIMOptions

    @classmethod
    def invertible_with(cls, options: DDIMOptions) -> bool:
        return options.eta == 0

    def variance(self, t, prev_t=None):
        s = self._target(t, prev_t)
        if self.options.eta == 0:
            return 0.0
        return self.options.eta**2 * q_posterior_coefficients(self.schedule, t, s)[2]

    def step(self, model_output, t, x_t, *, prev_t=None, noise=None, generator=None):
        s = self._target(t, prev_t)
        alpha_bar_s = float(self.schedule.alpha_bars[s])
        one_minus_alpha_bar_s = float(self.schedule.one_minus_alpha_bars[s])
        # 1. predicted x_0 and ε, eq. (9)
        pred_x0, pred_eps = self.predict(model_output, t, x_t, at=self.model_timestep(t, s))
        # 2. σ_t(η), eq. (16)
        variance = self.variance(t, s)
        # 3. direction pointing to x_t, eq. (12)
        direction = math.sqrt(max(one_minus_alpha_bar_s - variance, 0.0)) * pred_eps
        # 4. x_s = √ᾱ_s x̂_0 + direction + σ z, eq. (12)
        prev = math.sqrt(alpha_bar_s) * pred_x0 + direction
        if variance > 0:
            prev = prev + math.sqrt(variance) * self._noise(x_t, generator, noise)
        return StepOutput(prev, pred_x0, pred_eps)
