"""Your own image through a trained model: x_0 noised to x_t by q, what the network makes of x_t,
and how far its guesses are from the truth at every t.

Because x_t is made from a known x_0 and a known ε, the network's x̂_0 and ε̂ can be set beside
the truth, which sampling never allows. SDEdit (Meng et al. 2022) then runs the reverse process
from that x_t (``SamplingRun(…, start_t=t)``): strength t/T.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch

from diffusion_studio.core.errors import SettingError
from diffusion_studio.core.process import q_sample
from diffusion_studio.core.schedules import NoiseSchedule

if TYPE_CHECKING:
    from diffusion_studio.core.loaded_model import LoadedModel

ERROR_BATCH = 100
"""Timesteps sent through the network at once when measuring the errors over t."""


@dataclass(frozen=True)
class RoundTrip:
    """x_0, the ε that noised it, x_t, and the network's x̂_0 and ε̂ from x_t: N×C×H×W each."""

    t: int
    x0: torch.Tensor
    noise: torch.Tensor
    x_t: torch.Tensor
    pred_x0: torch.Tensor
    pred_eps: torch.Tensor


def _guess(model: LoadedModel, x_t: torch.Tensor, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(x̂_0, ε̂) from the network's output for x_t at per-sample t ≥ 1 (whatever it predicts), unclamped."""
    with torch.inference_mode():
        guess = model.denoiser(x_t.device).predict(x_t, t)
    return guess.pred_x0, guess.pred_eps


def round_trip(model: LoadedModel, x0: torch.Tensor, t: int, noise: torch.Tensor) -> RoundTrip:
    """x_t = √ᾱ_t x_0 + √(1 − ᾱ_t) ε (Ho et al. eq. 4), then x̂_0 and ε̂ from the network at t
    (x̂_0 = (x_t − √(1 − ᾱ_t) ε̂)/√ᾱ_t for an ε-model, eq. 15). At t = 0 nothing is noised: x_t =
    x̂_0 = x_0 and ε̂ = ε (the network is trained on t = 1…T only)."""
    T = model.schedule_config.timesteps
    if not 0 <= t <= T:
        raise SettingError("t", f"t must be between 0 and T = {T}, got {t}")
    device = model.device
    x0, noise = x0.to(device), noise.to(device)
    if t == 0:
        return RoundTrip(0, x0, noise, x0, x0, noise)
    x_t = q_sample(NoiseSchedule(model.schedule_config), x0, t, noise)
    pred_x0, pred_eps = _guess(model, x_t, torch.full((x0.shape[0],), t, device=device))
    return RoundTrip(t, x0, noise, x_t, pred_x0, pred_eps)


@dataclass(frozen=True)
class Errors:
    """Mean squared errors of the network's guesses at some timesteps (one x_0, one ε for all t)."""

    t: np.ndarray  # (K,) ascending
    x0: np.ndarray  # (K,) MSE(x̂_0, x_0)
    eps: np.ndarray  # (K,) MSE(ε̂, ε)


def errors_by_t(
    model: LoadedModel, x0: torch.Tensor, noise: torch.Tensor, should_stop: Callable[[], bool] = lambda: False
) -> Generator[Errors, None, Errors | None]:
    """MSE(x̂_0, x_0) and MSE(ε̂, ε) for one image x_0 (1×C×H×W) noised with the same ε at every
    t = 1…T, ``ERROR_BATCH`` timesteps per network call. Yields the errors so far after each call;
    returns all of them (None if stopped before the end)."""
    T = model.schedule_config.timesteps
    schedule = NoiseSchedule(model.schedule_config)
    device = model.device
    x0, noise = x0.to(device), noise.to(device)
    done_t, done_x0, done_eps = [], [], []
    for start in range(1, T + 1, ERROR_BATCH):
        if should_stop():
            return None
        t = torch.arange(start, min(start + ERROR_BATCH, T + 1), device=device)
        x0s, noises = x0.expand(len(t), *x0.shape[1:]), noise.expand(len(t), *noise.shape[1:])
        pred_x0, pred_eps = _guess(model, q_sample(schedule, x0s, t, noises), t)
        done_t.append(t.cpu().numpy())
        done_x0.append((pred_x0 - x0s).square().flatten(1).mean(1).cpu().numpy())
        done_eps.append((pred_eps - noises).square().flatten(1).mean(1).cpu().numpy())
        yield Errors(np.concatenate(done_t), np.concatenate(done_x0), np.concatenate(done_eps))
    return Errors(np.concatenate(done_t), np.concatenate(done_x0), np.concatenate(done_eps))
