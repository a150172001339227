"""The forward process q, its posterior, and conversions between what a network may predict.

Every function works on numpy arrays and on torch tensors alike. ``t`` is the papers' step
(1…T) and may be one int for the whole batch or one per sample (an integer array or tensor of
length N, broadcast over the other axes of an N×… batch). Equations are numbered as in
Ho et al. (2020); seed 002 restates them.
"""

from __future__ import annotations

import weakref
from typing import Any, Literal, TypeVar

import numpy as np

from diffusion_studio.core.errors import SettingError
from diffusion_studio.core.schedules import NoiseSchedule

Array = TypeVar("Array")  # np.ndarray or torch.Tensor; functions return the kind they are given
Prediction = Literal["eps", "x0", "v", "velocity"]
PREDICTIONS: tuple[str, ...] = ("eps", "x0", "v", "velocity")


_DEVICE_COPIES: dict[int, dict[tuple[Any, Any], Any]] = {}


def _device_copy(values: np.ndarray, like: Any) -> Any:
    """``values`` as a tensor on ``like``'s device and dtype, made once per array and device.

    Copying from host memory on every call would synchronise a GPU stream several times a
    training step. Entries are dropped when the array is freed, so a reused id never hits.
    """
    import torch

    copies = _DEVICE_COPIES.get(id(values))
    if copies is None:
        copies = _DEVICE_COPIES[id(values)] = {}
        weakref.finalize(values, _DEVICE_COPIES.pop, id(values), None)
    key = (like.device, like.dtype)
    if key not in copies:
        copies[key] = torch.tensor(values, dtype=like.dtype, device=like.device)
    return copies[key]


def coefficient(values: np.ndarray, t: Any, like: Any) -> Any:
    """values[t], shaped to broadcast against ``like`` (a per-sample t becomes N×1×…×1).

    A scalar t gives a Python float, which keeps ``like``'s dtype in either library.
    """
    if isinstance(t, (int, np.integer)):
        return float(values[int(t)])
    if isinstance(t, np.ndarray):
        picked = values[t]
        return picked.reshape(picked.shape + (1,) * (like.ndim - picked.ndim)).astype(like.dtype)
    picked = _device_copy(values, like)[t.to(like.device)]
    return picked.reshape(picked.shape + (1,) * (like.ndim - picked.ndim))


def q_sample(schedule: NoiseSchedule, x0: Array, t: Any, noise: Array) -> Array:
    """Closed form of the forward process: x_t = √ᾱ_t x_0 + √(1 − ᾱ_t) ε (eq. 4, reparameterized)."""
    return (
        coefficient(schedule.sqrt_alpha_bars, t, x0) * x0
        + coefficient(schedule.sqrt_one_minus_alpha_bars, t, x0) * noise
    )


def q_step(schedule: NoiseSchedule, x_prev: Array, t: Any, noise: Array) -> Array:
    """One Markov step x_{t−1} → x_t: x_t = √α_t x_{t−1} + √β_t ε (eq. 2; seed 000's α^S, β^S)."""
    return (
        coefficient(np.sqrt(schedule.alphas), t, x_prev) * x_prev
        + coefficient(np.sqrt(schedule.betas), t, x_prev) * noise
    )


def q_posterior_coefficients(schedule: NoiseSchedule, t: int, s: int) -> tuple[float, float, float]:
    """Posterior q(x_s | x_t, x_0) for any s < t: mean = c_0 x_0 + c_t x_t, variance v.

    With ᾱ_{t|s} = ᾱ_t / ᾱ_s (the signal kept from s to t) and β_{t|s} = 1 − ᾱ_{t|s}:
    c_0 = √ᾱ_s β_{t|s} / (1 − ᾱ_t),  c_t = √ᾱ_{t|s} (1 − ᾱ_s) / (1 − ᾱ_t),
    v = (1 − ᾱ_s) / (1 − ᾱ_t) · β_{t|s}.
    For s = t − 1 these are eq. (7): μ̃_t and β̃_t. Skipping steps (s < t − 1) is what lets
    DDPM run on a subsequence of timesteps.
    """
    if not 0 <= s < t <= schedule.timesteps:
        raise SettingError("timestep", f"need 0 ≤ s < t ≤ T = {schedule.timesteps}, got s = {s}, t = {t}")
    a_t, a_s = schedule.alpha_bars[t], schedule.alpha_bars[s]
    one_minus_a_t, one_minus_a_s = schedule.one_minus_alpha_bars[t], schedule.one_minus_alpha_bars[s]
    alpha_ts = a_t / a_s
    beta_ts = -np.expm1(schedule.log_alpha_bars[t] - schedule.log_alpha_bars[s])
    c0 = np.sqrt(a_s) * beta_ts / one_minus_a_t
    ct = np.sqrt(alpha_ts) * one_minus_a_s / one_minus_a_t
    return float(c0), float(ct), float(one_minus_a_s / one_minus_a_t * beta_ts)


def q_posterior_mean_variance(
    schedule: NoiseSchedule, x0: Array, x_t: Array, t: int, s: int | None = None
) -> tuple[Array, float]:
    """Mean μ̃ and variance of q(x_s | x_t, x_0); s defaults to t − 1 (eq. 6–7)."""
    c0, ct, variance = q_posterior_coefficients(schedule, t, t - 1 if s is None else s)
    return c0 * x0 + ct * x_t, variance


def predict_x0_from_eps(schedule: NoiseSchedule, x_t: Array, t: Any, eps: Array) -> Array:
    """x̂_0 = (x_t − √(1 − ᾱ_t) ε) / √ᾱ_t, eq. (4) solved for x_0 (eq. 15)."""
    return (x_t - coefficient(schedule.sqrt_one_minus_alpha_bars, t, x_t) * eps) / coefficient(
        schedule.sqrt_alpha_bars, t, x_t
    )


def predict_eps_from_x0(schedule: NoiseSchedule, x_t: Array, t: Any, x0: Array) -> Array:
    """ε̂ = (x_t − √ᾱ_t x_0) / √(1 − ᾱ_t), eq. (4) solved for ε."""
    return (x_t - coefficient(schedule.sqrt_alpha_bars, t, x_t) * x0) / coefficient(
        schedule.sqrt_one_minus_alpha_bars, t, x_t
    )


def v_from_x0_eps(schedule: NoiseSchedule, x0: Array, t: Any, eps: Array) -> Array:
    """The velocity target v = √ᾱ_t ε − √(1 − ᾱ_t) x_0 (Salimans & Ho, 2022)."""
    return coefficient(schedule.sqrt_alpha_bars, t, x0) * eps - coefficient(
        schedule.sqrt_one_minus_alpha_bars, t, x0
    ) * x0


def predict_x0_from_v(schedule: NoiseSchedule, x_t: Array, t: Any, v: Array) -> Array:
    """x̂_0 = √ᾱ_t x_t − √(1 − ᾱ_t) v."""
    return coefficient(schedule.sqrt_alpha_bars, t, x_t) * x_t - coefficient(
        schedule.sqrt_one_minus_alpha_bars, t, x_t
    ) * v


def predict_eps_from_v(schedule: NoiseSchedule, x_t: Array, t: Any, v: Array) -> Array:
    """ε̂ = √(1 − ᾱ_t) x_t + √ᾱ_t v."""
    return coefficient(schedule.sqrt_one_minus_alpha_bars, t, x_t) * x_t + coefficient(
        schedule.sqrt_alpha_bars, t, x_t
    ) * v


def predict_x0_eps_from_velocity(schedule: NoiseSchedule, x_t: Array, t: Any, u: Array) -> tuple[Array, Array]:
    """(x̂_0, ε̂) from a flow network's velocity u = α'_s x_0 + σ'_s ε at the path's x = c_t x_t
    (x_t the VP equivalent, c_t = √(α_t² + σ_t²)): the 2×2 system x = α x_0 + σ ε, u = α' x_0 + σ' ε,
    solved with Δ = α σ' − σ α':

        x̂_0 = (σ' x − σ u)/Δ,  ε̂ = (α u − α' x)/Δ;  rectified flow: x̂_0 = x − s u, ε̂ = x + (1 − s) u.
    """
    d_alpha, d_sigma = schedule.velocity_coefficients()
    alpha, sigma = coefficient(schedule.path_alphas, t, x_t), coefficient(schedule.path_sigmas, t, x_t)
    x = coefficient(schedule.path_scales, t, x_t) * x_t
    delta = alpha * d_sigma - sigma * d_alpha
    return (d_sigma * x - sigma * u) / delta, (alpha * u - d_alpha * x) / delta


def velocity_from_x0_eps(schedule: NoiseSchedule, x0: Array, eps: Array) -> Array:
    """The flow-matching target u = dx_s/ds = α'_s x_0 + σ'_s ε (rectified flow: ε − x_0)."""
    d_alpha, d_sigma = schedule.velocity_coefficients()
    return d_alpha * x0 + d_sigma * eps


def check_target(schedule: NoiseSchedule, prediction: str) -> None:
    """Raise SettingError unless a network on this schedule's path can learn ``prediction``: the
    velocity on a flow path (where ᾱ_T = 0 makes x̂_0 from ε or v undefined at s = 1), ε, x_0 or v on a VP one."""
    check_prediction(prediction)
    if schedule.is_flow and prediction != "velocity":
        raise SettingError("prediction", f"a rectified-flow model predicts the velocity u = ε − x_0, not '{prediction}'")
    if prediction == "velocity":
        schedule.velocity_coefficients()  # refuses a VP path


def check_prediction(prediction: str) -> None:
    """Raise SettingError unless ``prediction`` names a target we know."""
    if prediction not in PREDICTIONS:
        raise SettingError("prediction", f"unknown target '{prediction}' (choose from {', '.join(PREDICTIONS)})")


def split_prediction(
    schedule: NoiseSchedule, output: Array, x_t: Array, t: Any, prediction: Prediction
) -> tuple[Array, Array]:
    """(x̂_0, ε̂) from a network's output for the VP-equivalent x_t, whichever target it was trained on."""
    check_prediction(prediction)
    if prediction == "eps":
        return predict_x0_from_eps(schedule, x_t, t, output), output
    if prediction == "x0":
        return output, predict_eps_from_x0(schedule, x_t, t, output)
    if prediction == "velocity":
        return predict_x0_eps_from_velocity(schedule, x_t, t, output)
    return predict_x0_from_v(schedule, x_t, t, output), predict_eps_from_v(schedule, x_t, t, output)


def training_target(schedule: NoiseSchedule, x0: Array, t: Any, eps: Array, prediction: Prediction) -> Array:
    """What a network trained on ``prediction`` should output for x_t = q_sample(x0, t, eps)."""
    check_prediction(prediction)
    if prediction == "eps":
        return eps
    if prediction == "x0":
        return x0
    if prediction == "velocity":
        return velocity_from_x0_eps(schedule, x0, eps)
    return v_from_x0_eps(schedule, x0, t, eps)
