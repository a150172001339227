"""DDPM's ancestral sampler (Ho et al. 2020, Algorithm 2)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from diffusion_studio.core.process import q_posterior_coefficients
from diffusion_studio.core.samplers.base import Sampler, StepOutput
from diffusion_studio.core.settings import setting

DDPM_VARIANCES: dict[str, str] = {"beta": "σ²ₜ = βₜ", "beta_tilde": "σ²ₜ = β̃ₜ"}


@dataclass(frozen=True)
class DDPMOptions:
    variance: str = setting(
        "beta", "Variance", "The reverse variance σ_t²: β_t, or β̃_t = (1 − ᾱ_{t−1})/(1 − ᾱ_t) β_t (Ho et al. §3.2)",
        choices=DDPM_VARIANCES,
    )


class DDPMSampler(Sampler):
    """Ancestral sampling, Ho et al. Algorithm 2: x_s ~ N(μ̃(x_t, x̂_0), σ_t² I).

    σ_t² = β_t ("beta") or β̃_t ("beta_tilde"); both are named in Ho et al. §3.2. On a subsequence
    of timesteps β_t becomes β_{t|s} = 1 − ᾱ_t/ᾱ_s and μ̃, β̃ the posterior from t to s.
    """

    name = "ddpm"
    label = "DDPM (ancestral)"
    Options = DDPMOptions
    default_steps = None  # the full chain, as Ho et al. sample

    def variance(self, t, prev_t=None):
        s = self._target(t, prev_t)
        if s == 0:
            return 0.0  # Algorithm 2, line 3: no noise on the last step
        if self.options.variance == "beta_tilde":
            return q_posterior_coefficients(self.schedule, t, s)[2]
        return float(-np.expm1(self.schedule.log_alpha_bars[t] - self.schedule.log_alpha_bars[s]))

    def step(self, model_output, t, x_t, *, prev_t=None, noise=None, generator=None):
        s = self._target(t, prev_t)
        # 1. predicted x_0 and ε, eq. (15)
        pred_x0, pred_eps = self.predict(model_output, t, x_t)
        # 2. posterior mean μ̃(x_t, x̂_0), eq. (7)
        c0, ct, _ = q_posterior_coefficients(self.schedule, t, s)
        mean = c0 * pred_x0 + ct * x_t
        # 3. add σ_t z, z ~ N(0, I), except on the last step (Algorithm 2, lines 3–4)
        variance = self.variance(t, s)
        prev = mean + math.sqrt(variance) * self._noise(x_t, generator, noise) if variance > 0 else mean
        return StepOutput(prev, pred_x0, pred_eps)
