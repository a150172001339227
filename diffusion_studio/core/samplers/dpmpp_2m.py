"""DPM-Solver++(2M) (Lu et al. 2022, "DPM-Solver++", Algorithm 2): a second-order multistep
solver of the probability-flow ODE written for the data prediction x̂_0.

In the half-log-SNR λ_t = log(√ᾱ_t/√(1 − ᾱ_t)) (VP: α_t = √ᾱ_t, σ_t = √(1 − ᾱ_t)) the ODE has
an exact solution whose only unknown is an integral of x̂_0 over λ:

    x_s = (σ_s/σ_t) x_t + σ_s ∫_{λ_t}^{λ_s} e^λ x̂_0(λ) dλ

Taking x̂_0 constant gives the first-order step (DDIM, η = 0). 2M instead extrapolates x̂_0
linearly from the estimate of the step before, at no extra network call: the same cost per step
as DDIM, one order more accurate.
"""

from __future__ import annotations

import math
from typing import Any

from diffusion_studio.core.samplers.base import Sampler, StepOutput


class DPMPP2MSampler(Sampler):
    """DPM-Solver++(2M) (Lu et al. 2022): second order from one network call a step, reusing the last x̂_0.

    With λ = log(α/σ), α_t = √ᾱ_t, σ_t = √(1 − ᾱ_t), h = λ_s − λ_t and the previous step's
    (λ_p, x̂_0^p) (Algorithm 2; diffusers' solver_type="midpoint"):

        r = (λ_t − λ_p)/h,    D = (1 + 1/(2r)) x̂_0 − (1/(2r)) x̂_0^p
        x_s = (σ_s/σ_t) x_t − α_s (e^{−h} − 1) D

    The first step has no previous x̂_0 and takes D = x̂_0 (first order, which is DDIM with
    η = 0). The last step goes to σ_s = 0, λ_s = ∞, where the first-order step is x_s = x̂_0,
    as diffusers' final_sigmas_type="zero" does. Deterministic; ``reset()`` clears the history.
    """

    name = "dpmpp-2m"
    label = "DPM-Solver++(2M)"
    default_steps = 20

    def reset(self) -> None:
        self._previous: tuple[int, float, Any] | None = None  # (the step's target s, λ_t, x̂_0 at t)

    def variance(self, t, prev_t=None):
        return 0.0

    def half_log_snr(self, t: int) -> float:
        """λ_t = log(√ᾱ_t/√(1 − ᾱ_t)) = ½ log SNR(t); +∞ at t = 0."""
        return 0.5 * float(self.schedule.log_snr[t])

    def step(self, model_output, t, x_t, *, prev_t=None, noise=None, generator=None):
        s = self._target(t, prev_t)
        # 1. predicted x_0 (the data prediction DPM-Solver++ integrates) and ε
        pred_x0, pred_eps = self.predict(model_output, t, x_t)
        lambda_t = self.half_log_snr(t)
        previous, self._previous = self._previous, (s, lambda_t, pred_x0)
        # 2. the last step, to σ_s = 0 (λ_s = ∞): the first-order step lands on x̂_0
        if s == 0:
            return StepOutput(pred_x0, pred_x0, pred_eps)
        # 3. step size in λ: h = λ_s − λ_t
        h = self.half_log_snr(s) - lambda_t
        # 4. D: x̂_0 alone (first order), or extrapolated from the previous step's x̂_0 when that
        #    step ended here, r = h_prev/h (Algorithm 2, the multistep second-order update)
        data = pred_x0
        if previous is not None and previous[0] == t and previous[2].shape == pred_x0.shape:
            _, lambda_p, pred_x0_p = previous
            r = (lambda_t - lambda_p) / h
            data = pred_x0 + (pred_x0 - pred_x0_p) / (2 * r)
        # 5. x_s = (σ_s/σ_t) x_t − α_s (e^{−h} − 1) D
        sigma_ratio = float(self.schedule.sqrt_one_minus_alpha_bars[s] / self.schedule.sqrt_one_minus_alpha_bars[t])
        alpha_s = float(self.schedule.sqrt_alpha_bars[s])
        prev = sigma_ratio * x_t - alpha_s * math.expm1(-h) * data
        return StepOutput(prev, pred_x0, pred_eps)
