"""The marginals check: is x_t on the reverse path distributed as the forward process says?

Training teaches the network x_t ~ q(x_t) = ∫ q(x_t | x_0) q(x_0) dx_0 (Ho et al. eq. 4). Where
the sampler's x_t drifts away from those marginals (exposure bias), or where q(x_T) is not N(0, I)
(a terminal SNR above 0; Lin et al. 2024), the network sees inputs it never learned. Both show in
two numbers per t, averaged over the dimensions d: the mean of x_t, and its standard deviation

    m_q(t) = √ᾱ_t m_0,    s_q(t)² = ᾱ_t v_0 + 1 − ᾱ_t,

where m_0 is the data's mean and v_0 the mean over d of the per-dimension variance of x_0; on any
Gaussian path x_t = α_t x_0 + σ_t ε, m_q = α_t m_0 and s_q² = α_t² v_0 + σ_t² (rectified flow:
α_t = 1 − s, σ_t = s), which is how a run records its x_t.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from diffusion_studio.core.schedules import NoiseSchedule


@dataclass(frozen=True)
class Marginals:
    """Mean and standard deviation of x_t at each timestep, averaged over the dimensions."""

    t: np.ndarray  # (K,) timesteps
    mean: np.ndarray  # (K,) mean of x_t over samples and dimensions
    std: np.ndarray  # (K,) √(mean over dimensions of the variance over samples)


def moments(samples: np.ndarray) -> tuple[float, float]:
    """(mean, std) of a batch N×… as Marginals counts them: the std is √(mean_d Var_n x[n, d])."""
    flat = np.asarray(samples, dtype=np.float64).reshape(len(samples), -1)
    return float(flat.mean()), float(np.sqrt(flat.var(axis=0).mean()))


def forward_marginals(schedule: NoiseSchedule, data: np.ndarray, t: np.ndarray | None = None) -> Marginals:
    """m_q(t) = α_t m_0 and s_q(t) = √(α_t² v_0 + σ_t²) of the data under q on the schedule's path
    (VP: α_t = √ᾱ_t, σ_t² = 1 − ᾱ_t), at t (default 0…T)."""
    t = np.arange(schedule.timesteps + 1) if t is None else np.asarray(t)
    mean_0, std_0 = moments(data)
    alpha, sigma = schedule.path_alphas[t], schedule.path_sigmas[t]
    return Marginals(t, alpha * mean_0, np.sqrt(alpha**2 * std_0**2 + sigma**2))


def path_marginals(t: np.ndarray, frames: np.ndarray) -> Marginals:
    """The moments of recorded frames (K×N×…, frame k at timestep t[k]) of a reverse run."""
    stats = np.array([moments(frame) for frame in frames])
    return Marginals(np.asarray(t), stats[:, 0], stats[:, 1])
