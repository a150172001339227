"""What every sampler shares: the timesteps it visits, turning a network output into (x̂_0, ε̂),
and one step from x_t to x_s.

A sampler never owns the network. The loop hands ``advance()`` a ``denoise(x, t)`` callable (a
``core.denoiser.Denoiser``, the one place that calls a network); a
one-call sampler (DDPM, DDIM) calls it once and passes the output to ``step()``, a sampler that
needs more (Heun) calls it again inside its own ``advance()``, and a multistep solver keeps its
history between steps until ``reset()``. Timesteps are the papers' t = 1…T; a step goes from t to
the next visited timestep s (0 after the last), or to any s the caller names.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import numpy as np

from diffusion_studio.core.errors import SettingError
from diffusion_studio.core.denoiser import denoised
from diffusion_studio.core.process import Prediction, check_prediction
from diffusion_studio.core.schedules import NoiseSchedule
from diffusion_studio.core.settings import check_settings

if TYPE_CHECKING:  # torch is loaded by whoever hands us tensors; naming samplers needs none
    import torch

Spacing = Literal["linspace", "leading", "trailing", "karras", "logsnr"]
SPACINGS: tuple[str, ...] = ("linspace", "leading", "trailing", "karras", "logsnr")
KARRAS_RHO = 7.0
"""ρ of Karras et al. (2022) eq. 5: larger ρ puts more of the steps at low noise."""
KARRAS_SIGMA_MAX = 80.0
"""σ_max of Karras et al.'s (2022) own sampling schedule: their runs start no noisier than this, nor do "logsnr" ones."""

Denoise = Callable[["torch.Tensor", int], "torch.Tensor"]
"""denoise(x, t) → the network's output for the batch x at timestep t (1…T)."""


@dataclass(frozen=True)
class StepOutput:
    """What one step produced."""

    prev_sample: torch.Tensor  # x_s, the sample at the timestep the step went to
    pred_x0: torch.Tensor  # x̂_0, the network's estimate of the clean data at t
    pred_eps: torch.Tensor  # ε̂, the network's estimate of the noise in x_t


@dataclass(frozen=True)
class NoOptions:
    """The settings of a sampler that has none of its own."""


def spaced_timesteps(schedule: NoiseSchedule, num_steps: int, spacing: Spacing, start: int | None = None) -> np.ndarray:
    """K of the T training steps, descending, as the papers count them (1…T).

    "linspace": evenly from T down to 1; "leading": 1 + k·⌊T/K⌋ (DDIM paper, never reaches T);
    "trailing": T − k·T/K rounded (starts at T, recommended by Lin et al. 2024); "karras": the
    noise levels of Karras et al. (2022) eq. 5 (``karras_timesteps``); "logsnr": evenly in
    log SNR (``logsnr_timesteps``). With ``start`` < T, the same spacing of 1…start (a run
    continued from x_start, as a fork is).
    """
    num_train = schedule.timesteps if start is None else start
    if not 1 <= num_train <= schedule.timesteps:
        raise SettingError("t", f"a run can start from t = 1…{schedule.timesteps}, got {start}")
    if spacing not in SPACINGS:
        raise SettingError("spacing", f"unknown spacing '{spacing}' (choose from {', '.join(SPACINGS)})")
    if isinstance(num_steps, bool) or not isinstance(num_steps, (int, np.integer)) or not 1 <= num_steps <= num_train:
        upto = f"T = {num_train}" if start is None else f"t = {num_train}, where the run starts"
        raise SettingError("steps", f"the number of sampling steps must be between 1 and {upto}, got {num_steps!r}")
    if spacing == "karras":
        return karras_timesteps(schedule, num_steps, num_train)
    if spacing == "logsnr":
        return logsnr_timesteps(schedule, num_steps, num_train)
    if spacing == "linspace":
        ts = np.round(np.linspace(num_train, 1, num_steps))
    elif spacing == "leading":
        ts = 1 + np.arange(num_steps)[::-1] * (num_train // num_steps)
    else:
        ts = np.round(np.arange(num_train, 0, -num_train / num_steps))
    return np.unique(ts.astype(np.int64))[::-1].copy()


def noise_levels(schedule: NoiseSchedule, start: int) -> np.ndarray:
    """σ_t = √((1 − ᾱ_t)/ᾱ_t) for t = 1…start, rising (Karras et al.'s σ; λ_t = −log σ_t = ½ log SNR)."""
    with np.errstate(divide="ignore"):  # σ_T = ∞ where ᾱ_T = 0 (a flow path ends in pure noise)
        return np.sqrt(schedule.one_minus_alpha_bars[1:start + 1] / schedule.alpha_bars[1:start + 1])


def nearest_timesteps(sigmas: np.ndarray, wanted: np.ndarray) -> np.ndarray:
    """For each wanted noise level (descending), the t whose σ_t (``sigmas``: σ_1…σ_start) is nearest
    in log σ, nudged down where two would share a t, so that all K differ and stay ≥ 1."""
    nearest = 1 + np.abs(np.log(sigmas)[None, :] - np.log(wanted)[:, None]).argmin(axis=1)
    num_steps = len(wanted)
    ts = np.empty(num_steps, dtype=np.int64)
    for i, t in enumerate(nearest):  # strictly descending, leaving room for the steps still to come
        ts[i] = max(min(int(t), ts[i - 1] - 1 if i else int(t)), num_steps - i)
    return ts


def karras_timesteps(schedule: NoiseSchedule, num_steps: int, start: int | None = None) -> np.ndarray:
    """K timesteps whose noise levels σ_t = √((1 − ᾱ_t)/ᾱ_t) follow Karras et al. (2022) eq. 5:

        σ_i = (σ_max^{1/ρ} + i/(K − 1) · (σ_min^{1/ρ} − σ_max^{1/ρ}))^ρ,  i = 0…K − 1, ρ = 7,

    from σ_max = min(σ_start, 80) (start = T unless given) down to σ_min = σ_1, each taken to the
    t nearest in log σ (``nearest_timesteps``). Steps shrink as the noise does; and on a schedule
    whose σ_T is huge (cosine: ᾱ_T ≈ 2·10⁻⁹, σ_T ≈ 2·10⁴) no step spans decades of σ, which a
    second-order step (Heun's trapezoid) cannot bridge.
    """
    start = schedule.timesteps if start is None else start
    if num_steps == 1:
        return np.array([start])
    sigmas = noise_levels(schedule, start)
    high, low = min(float(sigmas[-1]), KARRAS_SIGMA_MAX) ** (1 / KARRAS_RHO), float(sigmas[0]) ** (1 / KARRAS_RHO)
    return nearest_timesteps(sigmas, (high + np.linspace(0.0, 1.0, num_steps) * (low - high)) ** KARRAS_RHO)


def logsnr_timesteps(schedule: NoiseSchedule, num_steps: int, start: int | None = None) -> np.ndarray:
    """K timesteps evenly spaced in λ = ½ log SNR = −log σ_t (Lu et al. 2022, DPM-Solver's "logSNR"
    steps; diffusers' use_lu_lambdas):

        λ_i = λ_first + i/(K − 1) · (λ_1 − λ_first),  i = 0…K − 1,

    from λ_first = −log min(σ_start, 80) (start = T unless given; no noisier than Karras's σ_max,
    as Lu et al. end the cosine schedule near λ = −5) up to λ_1, each taken to the t nearest in λ
    (``nearest_timesteps``). A multistep solver written in λ (DPM-Solver++) then takes equal steps
    h, and its last step, to σ = 0, starts from σ_1 rather than from σ_{T/K}.
    """
    start = schedule.timesteps if start is None else start
    if num_steps == 1:
        return np.array([start])
    sigmas = noise_levels(schedule, start)
    high, low = math.log(min(float(sigmas[-1]), KARRAS_SIGMA_MAX)), math.log(float(sigmas[0]))
    return nearest_timesteps(sigmas, np.exp(np.linspace(high, low, num_steps)))


class Sampler(ABC):
    """The base of every sampler. A subclass names itself, declares its options and implements ``step``."""

    name: ClassVar[str]  # as the CLI, configs and trajectory files spell it
    label: ClassVar[str]  # in menus
    Options: ClassVar[type] = NoOptions  # the frozen dataclass of its own settings, each a core.settings.setting
    nfe_per_step: ClassVar[int] = 1  # network evaluations per step
    default_steps: ClassVar[int | None] = 50  # the steps a form offers first (None: all T)
    default_spacing: ClassVar[Spacing] = "trailing"  # the timesteps a run visits unless told otherwise
    sigma_space: ClassVar[bool] = False  # steps in x̃ = x/√ᾱ_t (σ-space), undefined where ᾱ_t = 0 (a flow's t = T)

    @classmethod
    def summary(cls) -> str:
        """The first line of the class's docstring: what the sampler does, for a tooltip."""
        return (cls.__doc__ or cls.label).strip().splitlines()[0]

    def __init__(
        self, schedule: NoiseSchedule, prediction: Prediction = "eps", x0_range: tuple[float, float] | None = None, **options: Any
    ) -> None:
        check_prediction(prediction)
        self.options = self.make_options(**options)
        self.schedule = schedule
        self.prediction = prediction
        self.x0_range = x0_range  # x̂_0 is clamped to [low, high] at every step; None: never
        self._visit(spaced_timesteps(schedule, schedule.timesteps, self.default_spacing), ascending=False)

    @classmethod
    def make_options(cls, **options: Any) -> Any:
        """This sampler's Options from keyword values, checked (SettingError naming a bad one)."""
        known = {f.name for f in fields(cls.Options)}
        unknown = sorted(set(options) - known)
        if unknown:
            takes = f"it takes {', '.join(sorted(known))}" if known else "it takes none"
            raise SettingError(unknown[0], f"not an option of the {cls.label} sampler ({takes})")
        made = cls.Options(**options)
        check_settings(made)
        return made

    @classmethod
    def invertible_with(cls, options: Any) -> bool:
        """Whether with these Options the sampler is deterministic, so that it can also run upwards
        from x_0 to x_T (inversion). A deterministic sampler says so by overriding this."""
        return False

    @property
    def invertible(self) -> bool:
        """Deterministic with its options, so that it can also run upwards from x_0 to x_T."""
        return self.invertible_with(self.options)

    def set_timesteps(
        self, num_steps: int, spacing: Spacing | None = None, ascending: bool = False, start: int | None = None
    ) -> None:
        """Choose the K timesteps to visit (all T by default, where every spacing agrees), spaced
        as told or as this sampler does by default; from ``start`` < T for a run that goes on from
        x_start.

        Descending: t_1 = T > … > t_K, then 0. Ascending (inversion, deterministic samplers only):
        the same edges walked upwards, 0 → t_K → … → t_1.
        """
        descending = spaced_timesteps(self.schedule, num_steps, spacing or self.default_spacing, start)
        if self.sigma_space and self.schedule.alpha_bars[descending[0]] == 0:
            raise SettingError("sampler", f"{self.label} steps in σ = √((1 − ᾱ_t)/ᾱ_t), infinite at t = {descending[0]} "
                               "where this path is pure noise (ᾱ_t = 0); use the karras or logsnr spacing (from σ = 80), "
                               "or a sampler that steps on ᾱ itself (DDIM, DPM-Solver++, Euler (flow))")
        self._visit(descending, ascending)

    def _visit(self, descending: np.ndarray, ascending: bool) -> None:
        """Visit these timesteps (descending, as spaced_timesteps gives them), downwards or upwards."""
        if ascending:
            if not self.invertible:
                raise SettingError("sampler", f"{self.label} adds fresh noise at each step, so it cannot run from x_0 up to x_T")
            visited, targets = np.concatenate([[0], descending[:0:-1]]), descending[::-1]
        else:
            visited, targets = descending, np.append(descending[1:], 0)
        self.timesteps = visited
        self._next = dict(zip(visited.tolist(), targets.tolist()))
        self.reset()

    def reset(self) -> None:  # noqa: B027 (a hook: most samplers keep nothing between steps)
        """Forget what earlier steps left behind (a multistep solver's history); a run starts afresh."""

    def prev_timestep(self, t: int) -> int:
        """The timestep s the step from t lands on (0 after the last; T after the last ascending one)."""
        try:
            return self._next[int(t)]
        except KeyError:
            raise SettingError("timestep", f"t = {t} is not one of this sampler's timesteps") from None

    def _target(self, t: int, prev_t: int | None) -> int:
        return self.prev_timestep(t) if prev_t is None else int(prev_t)

    def predict(self, model_output: torch.Tensor, t: int, x_t: torch.Tensor, at: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """(x̂_0, ε̂) from the network output for x_t, x̂_0 kept within ``x0_range`` (core.denoiser.denoised);
        ``at``: the timestep the network was told, when not t (an ascending step)."""
        return denoised(self.schedule, self.prediction, model_output, x_t, t, self.x0_range, at)

    @staticmethod
    def model_timestep(t: int, s: int) -> int:
        """The timestep the network is told on a step from t to s: t going down; s going up, so that
        an inversion from x_0 asks about t_K (Mokady et al. 2023; diffusers' DDIMInverseScheduler)."""
        return max(t, s)

    @abstractmethod
    def variance(self, t: int, prev_t: int | None = None) -> float:
        """σ², the variance of the noise this sampler adds on the step from t (to prev_t)."""

    @abstractmethod
    def step(
        self,
        model_output: torch.Tensor,
        t: int,
        x_t: torch.Tensor,
        *,
        prev_t: int | None = None,
        noise: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> StepOutput:
        """One step from x_t to x_s, s = prev_t (default: the next visited timestep), given the
        network's output for x_t. ``noise`` is the z of this step (diffusers' ``variance_noise``);
        without it z is drawn from ``generator``."""

    def advance(
        self,
        denoise: Denoise,
        t: int,
        x_t: torch.Tensor,
        *,
        prev_t: int | None = None,
        noise: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> StepOutput:
        """One whole step, calling the network as this sampler needs (once here; more in a subclass)."""
        s = self._target(t, prev_t)
        output = denoise(x_t, self.model_timestep(t, s))
        return self.step(output, t, x_t, prev_t=s, noise=noise, generator=generator)

    @staticmethod
    def _noise(like: torch.Tensor, generator: torch.Generator | None, noise: torch.Tensor | None) -> torch.Tensor:
        """z ~ N(0, I) shaped like x: the one given, or a fresh draw."""
        if noise is not None:
            if noise.shape != like.shape:
                raise SettingError("noise", f"expected the shape of x_t {tuple(like.shape)}, got {tuple(noise.shape)}")
            return noise.to(device=like.device, dtype=like.dtype)
        import torch

        return torch.randn(like.shape, generator=generator, device=like.device, dtype=like.dtype)
