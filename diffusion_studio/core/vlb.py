"""The variational bound L = L_T + Σ_{t=2}^T L_{t−1} + L_0 (Ho et al. eq. 5; seed 002, eq. 15).

All terms are returned in bits per dimension: nats / (D · ln 2), D the dimensions of one sample.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Generator
from dataclasses import dataclass

import numpy as np
import torch

from diffusion_studio.core.errors import SettingError
from diffusion_studio.core.denoiser import Denoiser
from diffusion_studio.core.process import q_posterior_coefficients, q_sample
from diffusion_studio.core.samplers import DDPM_VARIANCES
from diffusion_studio.core.schedules import NoiseSchedule

BIN_HALF_WIDTH = 1.0 / 255.0
"""Half a pixel level when 0…255 is scaled to [−1, 1] (Ho et al. §3.3)."""


def normal_kl(mean1, logvar1, mean2, logvar2) -> torch.Tensor:
    """KL(N(μ₁, σ₁²) ‖ N(μ₂, σ₂²)) per element, in nats (seed 002, eq. 2):
    log(σ₂/σ₁) + (σ₁² + (μ₁ − μ₂)²) / (2σ₂²) − ½."""
    mean1, logvar1, mean2, logvar2 = (torch.as_tensor(v, dtype=torch.float64) for v in (mean1, logvar1, mean2, logvar2))
    return 0.5 * (logvar2 - logvar1 + torch.exp(logvar1 - logvar2) + (mean1 - mean2) ** 2 * torch.exp(-logvar2) - 1.0)


def discretized_gaussian_log_likelihood(x: torch.Tensor, mean: torch.Tensor, log_scale) -> torch.Tensor:
    """log ∫_{δ−(x)}^{δ+(x)} N(y; μ, σ²) dy per element (the decoder p_θ(x_0 | x_1), seed 002).

    δ±(x) = x ± 1/255, except δ+(1) = +∞ and δ−(−1) = −∞, so the 256 bins cover the real line.
    """
    x, mean = x.to(torch.float64), mean.to(torch.float64)
    inv_scale = torch.exp(-torch.as_tensor(log_scale, dtype=torch.float64))
    upper = (x - mean + BIN_HALF_WIDTH) * inv_scale
    lower = (x - mean - BIN_HALF_WIDTH) * inv_scale
    log_cdf_upper = torch.special.log_ndtr(upper)  # log Φ(upper): the whole bin at x = −1
    log_one_minus_cdf_lower = torch.special.log_ndtr(-lower)  # log(1 − Φ(lower)): at x = 1
    cdf_delta = torch.special.ndtr(upper) - torch.special.ndtr(lower)  # Φ(upper) − Φ(lower)
    log_delta = torch.log(cdf_delta.clamp_min(1e-12))
    return torch.where(x < -0.999, log_cdf_upper, torch.where(x > 0.999, log_one_minus_cdf_lower, log_delta))


def _bits_per_dim(nats: torch.Tensor) -> torch.Tensor:
    """Mean over all but the batch axis, converted from nats to bits."""
    return nats.flatten(1).mean(1) / math.log(2.0)


def prior_bpd(schedule: NoiseSchedule, x0: torch.Tensor) -> torch.Tensor:
    """L_T = KL(q(x_T | x_0) ‖ N(0, I)) per sample, bits/dim (≈ 1e−5 for Ho et al.'s schedule)."""
    T = schedule.timesteps
    mean = schedule.sqrt_alpha_bars[T] * x0.to(torch.float64)
    logvar = math.log(schedule.one_minus_alpha_bars[T])
    return _bits_per_dim(normal_kl(mean, logvar, 0.0, 0.0))


@dataclass(frozen=True)
class BoundTerms:
    """Each term of the bound per sample, in bits/dim."""

    prior: torch.Tensor  # L_T, shape (N,)
    terms: torch.Tensor  # column t − 1 holds L_{t−1} for t = 1…T (column 0 is L_0), shape (N, T)

    @property
    def total(self) -> torch.Tensor:
        """L = L_T + Σ L_{t−1} + L_0, an upper bound on −log₂ p(x_0) per dimension."""
        return self.prior + self.terms.sum(1)


def reverse_log_variance(schedule: NoiseSchedule, t: int, variance: str) -> float:
    """log σ_t² of p_θ(x_{t−1} | x_t); β̃_1 = 0 is replaced by β̃_2 so that L_0 stays finite."""
    if variance not in DDPM_VARIANCES:
        raise SettingError("variance", f"unknown variance '{variance}' (choose from {', '.join(DDPM_VARIANCES)})")
    if variance == "beta":
        return math.log(schedule.betas[t])
    tilde = schedule.posterior_variances
    if t > 1:
        return math.log(tilde[t])
    return math.log(tilde[2] if schedule.timesteps >= 2 else schedule.betas[1])


def quantize(x: torch.Tensor) -> torch.Tensor:
    """x ∈ [−1, 1] put on the 256 levels k/127.5 − 1 of an 8-bit image, as the bound's decoder
    assumes (Ho et al. §3.3): round((x + 1)·127.5)/127.5 − 1."""
    return torch.round((x.clamp(-1.0, 1.0) + 1.0) * 127.5) / 127.5 - 1.0


def bound_weights(schedule: NoiseSchedule, variance: str = "beta") -> np.ndarray:
    """λ_t for t = 1…T (index t − 1): with ε-prediction the bound's term at t is
    L_{t−1} = λ_t E‖ε − ε̂‖² per dimension, λ_t = β_t² / (2 σ_t² α_t (1 − ᾱ_t)) (Ho et al. eq. 12),
    where L_simple weighs every t alike (eq. 14). In nats; σ_t² as ``reverse_log_variance``."""
    t = np.arange(1, schedule.timesteps + 1)
    sigma2 = np.exp([reverse_log_variance(schedule, int(k), variance) for k in t])
    return schedule.betas[t] ** 2 / (2.0 * sigma2 * schedule.alphas[t] * schedule.one_minus_alpha_bars[t])


@dataclass(frozen=True)
class BoundStep:
    """The bound's term at one t for every sample of the batch, bits/dim."""

    t: int  # 1…T
    bits: torch.Tensor  # (N,): L_{t−1} (L_0 at t = 1)


def bound_steps(
    denoiser: Denoiser,
    x0: torch.Tensor,
    variance: str = "beta",
    generator: torch.Generator | None = None,
    batch_size: int = 256,
    should_stop: Callable[[], bool] = lambda: False,
) -> Generator[BoundStep, None, BoundTerms | None]:
    """The bound's terms for a batch x_0 ∈ [−1, 1], t = 1…T, one at a time (a view fills as they
    come; ``should_stop`` is asked before each t); returns the BoundTerms (None if stopped before
    the end). One x_t ~ q(x_t | x_0) per t and sample; the network sees at most ``batch_size``
    samples at once, through ``denoiser`` (x̂_0 as the network predicts it: a clamp there applies).

    L_{t−1} = KL(q(x_{t−1} | x_t, x_0) ‖ N(μ̃(x_t, x̂_0), σ_t²)) for t ≥ 2 (eq. 5),
    L_0 = −log p_θ(x_0 | x_1) with the discretized Gaussian decoder (§3.3).
    """
    schedule = denoiser.schedule
    columns = []
    for t in range(1, schedule.timesteps + 1):
        if should_stop():
            return None
        c0, ct, true_var = q_posterior_coefficients(schedule, t, t - 1)
        model_logvar = reverse_log_variance(schedule, t, variance)
        bits = []
        for batch in x0.split(batch_size):
            noise = torch.randn(batch.shape, generator=generator, device=batch.device, dtype=batch.dtype)
            x_t = q_sample(schedule, batch, t, noise)
            with torch.inference_mode():
                pred_x0 = denoiser.predict(x_t, t).pred_x0
            model_mean = c0 * pred_x0 + ct * x_t
            if t == 1:
                nats = -discretized_gaussian_log_likelihood(batch, model_mean, 0.5 * model_logvar)
            else:
                nats = normal_kl(c0 * batch + ct * x_t, math.log(true_var), model_mean, model_logvar)
            bits.append(_bits_per_dim(nats))
        columns.append(torch.cat(bits).cpu())
        yield BoundStep(t, columns[-1])
    return BoundTerms(prior=prior_bpd(schedule, x0).cpu(), terms=torch.stack(columns, dim=1))
