"""Euler's method on the probability-flow ODE in σ-space (Karras et al. 2022, "EDM").

Divide the VP sample by its signal scale and the process becomes "data plus noise of size σ":

    x̃_t = x_t / √ᾱ_t = x_0 + σ_t ε,    σ_t = √((1 − ᾱ_t)/ᾱ_t)   (σ_0 = 0; σ_T ≈ 157 for Ho et al.'s linear T = 1000)

σ_t is e^{−λ_t}, the inverse square root of the signal-to-noise ratio. In these coordinates the
probability-flow ODE is dx̃/dσ = ε̂(x, σ) (EDM eq. 3 with s(t) = 1, σ(t) = t), the straightest
way to write the deterministic sampler: each step follows the predicted noise direction.

Samples stay in VP space everywhere else in the engine; x̃ lives only inside a step. The helpers
here are shared by Euler ancestral and Heun.
"""

from __future__ import annotations

import math

from diffusion_studio.core.samplers.base import NoOptions, Sampler, StepOutput
from diffusion_studio.core.schedules import NoiseSchedule


def sigma_of(schedule: NoiseSchedule, t: int) -> float:
    """σ_t = √((1 − ᾱ_t)/ᾱ_t), the noise level of x̃_t = x_t/√ᾱ_t = x_0 + σ_t ε (0 at t = 0)."""
    return math.sqrt(float(schedule.one_minus_alpha_bars[t]) / float(schedule.alpha_bars[t]))


def sqrt_alpha_bar(schedule: NoiseSchedule, t: int) -> float:
    """√ᾱ_t = 1/√(σ_t² + 1), the factor between the VP sample and σ-space: x_t = √ᾱ_t x̃_t."""
    return float(schedule.sqrt_alpha_bars[t])


class EulerSampler(Sampler):
    """Euler's method on the probability-flow ODE in σ-space: x̃_s = x̃_t + (σ_s − σ_t) ε̂.

    With x̃ = x/√ᾱ and σ_t = √((1 − ᾱ_t)/ᾱ_t) (Karras et al. 2022):

        x̃_t = x_t/√ᾱ_t,    x̃_s = x̃_t + (σ_s − σ_t) ε̂(x_t, t),    x_s = √ᾱ_s x̃_s

    Since x̃_t − σ_t ε̂ = x̂_0, this is x_s = √ᾱ_s x̂_0 + √(1 − ᾱ_s) ε̂: the same update as DDIM
    with η = 0 (Song et al. 2021 §4.3 note it). It is deterministic, so it also runs upwards
    (inversion), reading ε̂ at the upper timestep as DDIM inversion does. diffusers:
    EulerDiscreteScheduler.
    """

    name = "euler"
    sigma_space = True
    label = "Euler (ODE)"
    default_steps = 50

    @classmethod
    def invertible_with(cls, options: NoOptions) -> bool:
        return True

    def variance(self, t, prev_t=None):
        return 0.0

    def step(self, model_output, t, x_t, *, prev_t=None, noise=None, generator=None):
        s = self._target(t, prev_t)
        # 1. predicted x_0 and ε (ε read where the network was told: t going down, s going up)
        pred_x0, pred_eps = self.predict(model_output, t, x_t, at=self.model_timestep(t, s))
        # 2. into σ-space: x̃_t = x_t/√ᾱ_t = x_0 + σ_t ε
        sigma_t, sigma_s = sigma_of(self.schedule, t), sigma_of(self.schedule, s)
        x_tilde = x_t / sqrt_alpha_bar(self.schedule, t)
        # 3. Euler step along dx̃/dσ = ε̂ (EDM eq. 3)
        x_tilde = x_tilde + (sigma_s - sigma_t) * pred_eps
        # 4. back to VP space: x_s = √ᾱ_s x̃_s
        prev = sqrt_alpha_bar(self.schedule, s) * x_tilde
        return StepOutput(prev, pred_x0, pred_eps)
