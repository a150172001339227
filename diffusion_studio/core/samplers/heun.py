"""Heun's second-order method on the probability-flow ODE in σ-space (Karras et al. 2022,
Algorithm 1 with no churn, S_churn = 0).

An Euler step predicts x_s; a second network call at (x_s, s) gives the slope there, and the
step is taken again with the average of the two slopes (the trapezoidal rule). The local error
falls from O(h²) to O(h³), so fewer steps reach the same accuracy, at two network calls a step.
The last step, to σ = 0, is a plain Euler step: there is no slope to evaluate at σ = 0
(EDM Algorithm 1: the correction needs σ_{i+1} ≠ 0), so a run of K steps costs 2K − 1 calls.
"""

from __future__ import annotations

from diffusion_studio.core.samplers.base import Sampler, StepOutput
from diffusion_studio.core.samplers.euler import sigma_of, sqrt_alpha_bar


class HeunSampler(Sampler):
    """Heun's 2nd-order method (EDM Algorithm 1): an Euler predictor, then the mean of two slopes.

    In σ-space (x̃ = x/√ᾱ = x_0 + σ ε, σ_t = √((1 − ᾱ_t)/ᾱ_t)), with ε̂_t = ε̂(x_t, t):

        x̃'_s = x̃_t + (σ_s − σ_t) ε̂_t                        Euler predictor
        x̃_s  = x̃_t + (σ_s − σ_t) (ε̂_t + ε̂(x'_s, s))/2       corrector, a second network call
        x_s  = √ᾱ_s x̃_s

    On the last step (σ_s = 0) only the predictor is taken, so K steps cost 2K − 1 network calls
    (nfe_per_step = 2 is the cost of every step but the last). ``step()`` alone is the Euler
    predictor; ``advance()`` makes both calls. The step records x̂_0 and ε̂ at t, the first call.
    diffusers: HeunDiscreteScheduler.
    """

    name = "heun"
    sigma_space = True
    label = "Heun (2nd order)"
    nfe_per_step = 2
    default_steps = 30
    default_spacing = "karras"  # its trapezoid cannot bridge one step across decades of σ (karras_timesteps)

    def variance(self, t, prev_t=None):
        return 0.0

    def _euler(self, x_t, t: int, s: int, slope):
        """x_s from x̃_s = x̃_t + (σ_s − σ_t) · slope, in VP space at both ends."""
        x_tilde = x_t / sqrt_alpha_bar(self.schedule, t) + (sigma_of(self.schedule, s) - sigma_of(self.schedule, t)) * slope
        return sqrt_alpha_bar(self.schedule, s) * x_tilde

    def step(self, model_output, t, x_t, *, prev_t=None, noise=None, generator=None):
        """The Euler predictor alone: one network output can do no more (``advance()`` adds the corrector)."""
        s = self._target(t, prev_t)
        # 1. predicted x_0 and ε at t
        pred_x0, pred_eps = self.predict(model_output, t, x_t)
        # 2. Euler predictor: x̃'_s = x̃_t + (σ_s − σ_t) ε̂_t (EDM Algorithm 1)
        return StepOutput(self._euler(x_t, t, s, pred_eps), pred_x0, pred_eps)

    def advance(self, denoise, t, x_t, *, prev_t=None, noise=None, generator=None):
        s = self._target(t, prev_t)
        # 1–2. predicted x_0 and ε at t, and the Euler predictor x'_s (step())
        euler = self.step(denoise(x_t, self.model_timestep(t, s)), t, x_t, prev_t=s)
        # 3. to σ_s = 0 the Euler step is the whole step (Algorithm 1 corrects only if σ_s ≠ 0): one network call
        if sigma_of(self.schedule, s) == 0:
            return euler
        # 4. the slope at the predictor, a second network call: ε̂(x'_s, s)
        _, eps_s = self.predict(denoise(euler.prev_sample, s), s, euler.prev_sample)
        # 5. the step again with the mean slope: x̃_s = x̃_t + (σ_s − σ_t) (ε̂_t + ε̂_s)/2
        prev = self._euler(x_t, t, s, 0.5 * (euler.pred_eps + eps_s))
        return StepOutput(prev, euler.pred_x0, euler.pred_eps)
