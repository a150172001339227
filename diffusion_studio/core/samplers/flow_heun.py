"""Heun's second-order method on the rectified-flow ODE (core.samplers.flow_euler's coordinates).

An Euler step predicts x_s; a second network call there gives the velocity at s, and the step is
taken again with the mean of the two (the trapezoidal rule), as EDM's Algorithm 1 does in σ-space.
The last step, to r = 0 (t = 0, where no network was trained), is a plain Euler step, so a run of
K steps costs 2K − 1 calls.
"""

from __future__ import annotations

from diffusion_studio.core.samplers.base import StepOutput
from diffusion_studio.core.samplers.flow_euler import FlowEulerSampler


class FlowHeunSampler(FlowEulerSampler):
    """Heun on the rectified-flow ODE: an Euler predictor, then the mean of two velocities.

    With û_t = ε̂(x_t, t) − x̂_0(x_t, t) in the flow's coordinates x^F = x/k, time r:

        x^F'_s = x^F_t + (r_s − r_t) û_t                      Euler predictor
        x^F_s  = x^F_t + (r_s − r_t) (û_t + û(x'_s, s))/2     corrector, a second network call

    ``step()`` alone is the predictor; ``advance()`` makes both calls and records x̂_0, ε̂ at t.
    """

    name = "flow-heun"
    label = "Heun (flow)"
    nfe_per_step = 2
    default_steps = 10

    @classmethod
    def invertible_with(cls, options) -> bool:
        return False  # the corrector reads the network at the step's far end: it is not run upwards here

    def advance(self, denoise, t, x_t, *, prev_t=None, noise=None, generator=None):
        s = self._target(t, prev_t)
        # 1–2. predicted x_0 and ε at t, and the Euler predictor x'_s (step())
        euler = self.step(denoise(x_t, self.model_timestep(t, s)), t, x_t, prev_t=s)
        # 3. to r = 0 the Euler step is the whole step: one network call
        if s == 0:
            return euler
        # 4. the velocity at the predictor, a second network call
        x0_s, eps_s = self.predict(denoise(euler.prev_sample, s), s, euler.prev_sample)
        # 5. the step again with the mean velocity
        mean_velocity = 0.5 * ((euler.pred_eps - euler.pred_x0) + (eps_s - x0_s))
        return StepOutput(self._euler(x_t, t, s, mean_velocity), euler.pred_x0, euler.pred_eps)


