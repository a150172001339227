"""Euler's method on the rectified-flow ODE (Liu et al. 2022; Lipman et al. 2022), on any path.

Every Gaussian path reads as a rectified flow (Gao, Hoogeboom et al. 2025): with the VP
equivalent's a_t = √ᾱ_t and b_t = √(1 − ᾱ_t), dividing x_t by k_t = a_t + b_t gives

    x^F_r = x_t / k_t = (1 − r) x_0 + r ε,    r_t = b_t / (a_t + b_t)  (0 at t = 0, 1 where ᾱ_T = 0)

whose velocity is u = dx^F/dr = ε − x_0. The probability-flow ODE is then dx^F/dr = û = ε̂ − x̂_0,
the straight-line field a flow-matching network learns. On a rectified-flow model (``--path
rectified-flow``) r_t = s = t/T and x^F is the path's own x_s, so a step is diffusers'
``FlowMatchEulerDiscreteScheduler``'s; on a VP model it reads that model's ε̂ as a velocity field.
Since x^F_t − r_t û = x̂_0, the step is DDIM's with η = 0 to float error: one model, two coordinates.

Samples stay in VP space everywhere else in the engine; x^F lives only inside a step. The helpers
here are shared by the flow Heun sampler.
"""

from __future__ import annotations

from diffusion_studio.core.samplers.base import NoOptions, Sampler, StepOutput
from diffusion_studio.core.schedules import NoiseSchedule


def flow_time(schedule: NoiseSchedule, t: int) -> float:
    """r_t = √(1 − ᾱ_t)/(√ᾱ_t + √(1 − ᾱ_t)): the path's time as a rectified flow (s = t/T on one)."""
    a, b = float(schedule.sqrt_alpha_bars[t]), float(schedule.sqrt_one_minus_alpha_bars[t])
    return b / (a + b)


def flow_scale(schedule: NoiseSchedule, t: int) -> float:
    """k_t = √ᾱ_t + √(1 − ᾱ_t), the factor between the VP sample and the flow: x_t = k_t x^F_r."""
    return float(schedule.sqrt_alpha_bars[t]) + float(schedule.sqrt_one_minus_alpha_bars[t])


class FlowEulerSampler(Sampler):
    """Euler on the rectified-flow ODE: x^F_s = x^F_t + (r_s − r_t) û, û = ε̂ − x̂_0.

    With x^F = x/k_t, k_t = √ᾱ_t + √(1 − ᾱ_t) and r_t = √(1 − ᾱ_t)/k_t:

        x^F_t = x_t/k_t,    x^F_s = x^F_t + (r_s − r_t)(ε̂ − x̂_0),    x_s = k_s x^F_s

    A flow-matching model's sampler (diffusers: FlowMatchEulerDiscreteScheduler); on any model the
    same update as DDIM with η = 0. Deterministic, so it also runs upwards (inversion), reading
    ε̂ at the upper timestep as DDIM inversion does.
    """

    name = "flow-euler"
    label = "Euler (flow)"
    default_steps = 20
    default_spacing = "linspace"  # r from 1 down to 1/T evenly, as diffusers' flow-matching schedulers step

    @classmethod
    def invertible_with(cls, options: NoOptions) -> bool:
        return True

    def variance(self, t, prev_t=None):
        return 0.0

    def _euler(self, x_t, t: int, s: int, velocity):
        """x_s from x^F_s = x^F_t + (r_s − r_t) · velocity, in VP space at both ends."""
        flow = x_t / flow_scale(self.schedule, t) + (flow_time(self.schedule, s) - flow_time(self.schedule, t)) * velocity
        return flow_scale(self.schedule, s) * flow

    def step(self, model_output, t, x_t, *, prev_t=None, noise=None, generator=None):
        s = self._target(t, prev_t)
        # 1. predicted x_0 and ε (ε read where the network was told: t going down, s going up)
        pred_x0, pred_eps = self.predict(model_output, t, x_t, at=self.model_timestep(t, s))
        # 2. Euler on the flow with the velocity they imply: x^F_s = x^F_t + (r_s − r_t)(ε̂ − x̂_0)
        return StepOutput(self._euler(x_t, t, s, pred_eps - pred_x0), pred_x0, pred_eps)
