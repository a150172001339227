"""Euler ancestral (k-diffusion's ``sample_euler_ancestral``, Crowson 2022): an Euler step down
past the target noise level, then fresh noise back up to it.

In σ-space (x̃ = x/√ᾱ = x_0 + σ ε, σ_t = √((1 − ᾱ_t)/ᾱ_t); see euler.py) a step from σ_t to σ_s
splits σ_s² = σ_down² + σ_up²: the deterministic Euler step goes to σ_down, and z ~ N(0, I)
scaled by σ_up tops the noise back up to σ_s. With η = 1 the noise added is exactly DDPM's
posterior noise: ᾱ_s σ_up² = β̃_{t|s} = (1 − ᾱ_s)/(1 − ᾱ_t) (1 − ᾱ_t/ᾱ_s).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from diffusion_studio.core.samplers.base import Sampler, StepOutput
from diffusion_studio.core.samplers.euler import sigma_of, sqrt_alpha_bar
from diffusion_studio.core.settings import setting


@dataclass(frozen=True)
class EulerAncestralOptions:
    eta: float = setting(
        1.0, "η", "σ_up = min(σ_s, η √(σ_s²(σ_t² − σ_s²)/σ_t²)): 1 adds DDPM's posterior noise (k-diffusion's default), "
        "0 is plain Euler",
        ge=0, step=0.1, decimals=2,
    )


def ancestral_sigmas(sigma_t: float, sigma_s: float, eta: float = 1.0) -> tuple[float, float]:
    """(σ_down, σ_up) of a step from σ_t to σ_s (k-diffusion's ``get_ancestral_step``):
    σ_up = min(σ_s, η √(σ_s²(σ_t² − σ_s²)/σ_t²)), σ_down = √(σ_s² − σ_up²)."""
    if eta == 0 or sigma_s == 0:
        return sigma_s, 0.0
    sigma_up = min(sigma_s, eta * math.sqrt(sigma_s**2 * (sigma_t**2 - sigma_s**2) / sigma_t**2))
    return math.sqrt(sigma_s**2 - sigma_up**2), sigma_up


class EulerAncestralSampler(Sampler):
    """Euler ancestral (k-diffusion): an Euler step to σ_down, then σ_up z of fresh noise.

    In σ-space, x̃ = x/√ᾱ, σ_t = √((1 − ᾱ_t)/ᾱ_t):

        σ_up = min(σ_s, η √(σ_s² (σ_t² − σ_s²)/σ_t²)),    σ_down = √(σ_s² − σ_up²)
        x̃_s = x̃_t + (σ_down − σ_t) ε̂ + σ_up z,    x_s = √ᾱ_s x̃_s

    In VP space this is x_s = √ᾱ_s x̂_0 + √(1 − ᾱ_s − σ²) ε̂ + σ z with σ² = ᾱ_s σ_up², which
    for η = 1 is DDIM with η = 1 (the posterior noise β̃_{t|s}); η = 0 is plain Euler. The last
    step (σ_s = 0) adds no noise. diffusers: EulerAncestralDiscreteScheduler (η = 1).
    """

    name = "euler-a"
    sigma_space = True
    label = "Euler ancestral"
    Options = EulerAncestralOptions
    default_steps = 50

    def variance(self, t, prev_t=None):
        s = self._target(t, prev_t)
        _, sigma_up = ancestral_sigmas(sigma_of(self.schedule, t), sigma_of(self.schedule, s), self.options.eta)
        return float(self.schedule.alpha_bars[s]) * sigma_up**2

    def step(self, model_output, t, x_t, *, prev_t=None, noise=None, generator=None):
        s = self._target(t, prev_t)
        # 1. predicted x_0 and ε
        pred_x0, pred_eps = self.predict(model_output, t, x_t)
        # 2. split the target noise level: σ_s² = σ_down² + σ_up²
        sigma_t = sigma_of(self.schedule, t)
        sigma_down, sigma_up = ancestral_sigmas(sigma_t, sigma_of(self.schedule, s), self.options.eta)
        # 3. Euler step along dx̃/dσ = ε̂ from σ_t down to σ_down, in σ-space x̃_t = x_t/√ᾱ_t
        x_tilde = x_t / sqrt_alpha_bar(self.schedule, t) + (sigma_down - sigma_t) * pred_eps
        # 4. fresh noise back up to σ_s: + σ_up z, z ~ N(0, I) (none on the last step)
        if sigma_up > 0:
            x_tilde = x_tilde + sigma_up * self._noise(x_t, generator, noise)
        # 5. back to VP space: x_s = √ᾱ_s x̃_s
        prev = sqrt_alpha_bar(self.schedule, s) * x_tilde
        return StepOutput(prev, pred_x0, pred_eps)
