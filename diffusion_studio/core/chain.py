"""The forward process run as the Markov chain it is defined as, one step at a time.

x_t = √α_t x_{t−1} + √β_t ε_t (Ho et al. eq. 2), a fresh ε_t at every step. In law x_t equals the
closed form √ᾱ_t x_0 + √(1 − ᾱ_t) ε (eq. 4); running the chain shows it lands there.
"""

from __future__ import annotations

import numpy as np

from diffusion_studio.core.errors import SettingError
from diffusion_studio.core.process import q_step
from diffusion_studio.core.schedules import NoiseSchedule


class ForwardChain:
    """x_0 → x_1 → … → x_t, walked incrementally so that an interactive view never blocks for long.

    Step t draws ε_t from a generator seeded by (seed, t), so x_t is the same whichever way the
    chain got there. Every ``keep_every`` steps the state is kept; going back to an earlier t
    restarts from the nearest kept state instead of from x_0.
    """

    def __init__(self, schedule: NoiseSchedule, x0: np.ndarray, seed: int, keep_every: int = 100) -> None:
        if keep_every < 1:
            raise SettingError("keep_every", f"must be at least 1, got {keep_every}")
        self.schedule = schedule
        self.seed = seed
        self.keep_every = keep_every
        self.x0 = np.asarray(x0, dtype=np.float32)
        self.t = 0
        self.x = self.x0
        self._kept: dict[int, np.ndarray] = {0: self.x0}

    @property
    def kept_times(self) -> list[int]:
        """The t whose x_t is kept, in order: where a walk back to an earlier t restarts."""
        return sorted(self._kept)

    def noise(self, t: int) -> np.ndarray:
        """ε_t, the fresh noise of step t (the same on every call)."""
        return np.random.default_rng((self.seed, t)).standard_normal(self.x0.shape, dtype=np.float32)

    def advance(self, target: int, max_steps: int | None = None) -> bool:
        """Walk towards x_target, at most ``max_steps`` steps this call; True once there."""
        if not 0 <= target <= self.schedule.timesteps:
            raise SettingError("t", f"must lie in 0…T = {self.schedule.timesteps}, got {target}")
        if target < self.t:
            start = max(k for k in self._kept if k <= target)
            self.t, self.x = start, self._kept[start]
        steps = target - self.t if max_steps is None else min(target - self.t, max_steps)
        for _ in range(steps):
            t = self.t + 1
            self.x = q_step(self.schedule, self.x, t, self.noise(t))
            self.t = t
            if t % self.keep_every == 0 and t not in self._kept:
                self._kept[t] = self.x  # each step makes a new array, so keeping it is free
        return self.t == target
