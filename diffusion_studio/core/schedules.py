"""Gaussian paths: named β schedules, rectified flow, and the one immutable object that holds
everything derived from them.

A Gaussian path is x_t = α_t x_0 + σ_t ε (../shared/DESIGN.md). A variance-preserving (VP) path is
a β schedule in Ho et al.'s (2020) notation, seed 002: q(x_t | x_{t-1}) = N(x_t; √α_t x_{t-1}, β_t I)
with α_t = 1 − β_t and ᾱ_t = Π_{s≤t} α_s, so α_t = √ᾱ_t and σ_t = √(1 − ᾱ_t) on the path.
Rectified flow (linear interpolation) is α_s = 1 − s, σ_s = s for s ∈ [0, 1], laid on the grid
s = t/T. Every path is also a VP one after x is divided by c_t = √(α_t² + σ_t²), with
ᾱ_t = α_t²/(α_t² + σ_t²) (Gao, Hoogeboom et al. 2025): the samplers, posteriors and the bound work
on that VP equivalent, and a network is shown c_t x_t, the path's own x_t.

Every array is float64 and indexed by the papers' t = 0…T: entry 0 is the data itself
(β_0 = 0, ᾱ_0 = 1), entries 1…T are the diffusion steps. VP networks take the 0-based index t − 1;
flow networks the time T·s = t (as diffusers' flow-matching schedulers count, σ·1000).

Adding a path (say EDM's σ): its (α_t, σ_t) on the grid in ``PATH_FUNCTIONS``, its name in
``PATH_HELP``, and the derivatives (α'_s, σ'_s) if a network may predict its velocity.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Sequence
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np

from diffusion_studio.core.errors import SettingError
from diffusion_studio.core.limits import MAX_TIMESTEPS
from diffusion_studio.core.settings import check_settings, setting

COSINE_OFFSET = 0.008
"""s in Nichol & Dhariwal's cosine schedule; keeps β_1 from being vanishingly small."""

MAX_BETA = 0.999
"""Cosine β_t is clipped here so that the last steps stay well defined (ᾱ_T > 0)."""


VP_PATH = "vp"
FLOW_PATH = "rectified-flow"
PATH_HELP = {
    VP_PATH: "variance-preserving diffusion (DDPM): x_t = √ᾱ_t x_0 + √(1 − ᾱ_t) ε, ᾱ from the β schedule",
    FLOW_PATH: "rectified flow (flow matching): x_s = (1 − s) x_0 + s ε, s = t/T ∈ [0, 1]; the network "
               "predicts the velocity u = ε − x_0",
}
"""The Gaussian paths and what each is."""

SCHEDULE_HELP = {
    "linear": "β_t rises linearly from β_1 to β_T (Ho et al. 2020)",
    "scaled_linear": "linear, with the β range scaled by 1000/T so that any T ends as noisy as T = 1000",
    "cosine": "ᾱ_t = f(t)/f(0), f(t) = cos²(((t/T) + s)/(1 + s)·π/2), s = 0.008; β_t ≤ 0.999 (Nichol & Dhariwal)",
    "quadratic": "√β_t rises linearly from √β_1 to √β_T (Ho et al.'s 'quad')",
    "sigmoid": "β_t follows a sigmoid from β_1 to β_T (GeoDiff)",
}
"""The named schedules and what each does (BETA_FUNCTIONS below computes them)."""


@dataclass(frozen=True)
class ScheduleConfig:
    """What defines a schedule; saved beside a model's weights and shared by CLI and GUI."""

    name: str = setting("linear", "Schedule", "The β schedule of a VP path: how much noise each step adds",
                        choices={name: name.replace("_", " ") for name in SCHEDULE_HELP}, choice_help=SCHEDULE_HELP,
                        flag="--schedule")
    timesteps: int = setting(1000, "T", "T, the number of diffusion steps: t runs 1…T, x_0 is the data", ge=1,
                             le=MAX_TIMESTEPS,
                             flag=("--timesteps", "-T"))
    beta_start: float = setting(1e-4, "β₁", "β_1, the noise variance of the first step (not used by cosine)",
                                gt=0, lt=1, step=1e-4, decimals=5)
    beta_end: float = setting(0.02, "β_T", "β_T, the noise variance of the last step (not used by cosine)",
                              gt=0, lt=1, step=1e-4, decimals=5)
    path: str = setting(VP_PATH, "Path", "The Gaussian path x_t = α_t x_0 + σ_t ε the model is trained on",
                        choices={VP_PATH: "VP (DDPM)", FLOW_PATH: "rectified flow"}, choice_help=PATH_HELP, flag="--path")

def _linear(c: ScheduleConfig) -> np.ndarray:
    """β_t rising linearly from β_start to β_end (Ho et al.: 1e-4 → 0.02 for T = 1000)."""
    return np.linspace(c.beta_start, c.beta_end, c.timesteps, dtype=np.float64)


def _scaled_linear(c: ScheduleConfig) -> np.ndarray:
    """The linear schedule with its range scaled by 1000/T (improved-diffusion).

    Keeps ᾱ_T about the same for any T, so T = 100 destroys the image as T = 1000 does.
    (diffusers' "scaled_linear", a square-root interpolation, is our "quadratic".)
    """
    scale = 1000.0 / c.timesteps
    return np.linspace(scale * c.beta_start, scale * c.beta_end, c.timesteps, dtype=np.float64)


def _quadratic(c: ScheduleConfig) -> np.ndarray:
    """β_t = (linear interpolation of √β_start → √β_end)², Ho et al.'s "quad" schedule."""
    return np.linspace(math.sqrt(c.beta_start), math.sqrt(c.beta_end), c.timesteps) ** 2


def _sigmoid(c: ScheduleConfig) -> np.ndarray:
    """β_t = β_start + (β_end − β_start)·σ(u_t), u_t evenly spaced on [−6, 6] (GeoDiff)."""
    u = np.linspace(-6.0, 6.0, c.timesteps)
    return c.beta_start + (c.beta_end - c.beta_start) / (1.0 + np.exp(-u))


def _cosine(c: ScheduleConfig) -> np.ndarray:
    """Nichol & Dhariwal: ᾱ_t = f(t)/f(0), f(t) = cos²(((t/T) + s)/(1 + s) · π/2).

    β_t = 1 − ᾱ_t/ᾱ_{t−1}, clipped at MAX_BETA.
    """
    t = np.arange(c.timesteps + 1, dtype=np.float64)
    f = np.cos(((t / c.timesteps) + COSINE_OFFSET) / (1 + COSINE_OFFSET) * math.pi / 2) ** 2
    alpha_bar = f / f[0]
    return np.minimum(1.0 - alpha_bar[1:] / alpha_bar[:-1], MAX_BETA)


BETA_FUNCTIONS: dict[str, Callable[[ScheduleConfig], np.ndarray]] = {
    "linear": _linear,
    "scaled_linear": _scaled_linear,
    "cosine": _cosine,
    "quadratic": _quadratic,
    "sigmoid": _sigmoid,
}
SCHEDULE_NAMES: tuple[str, ...] = tuple(BETA_FUNCTIONS)


def flow_alpha_sigma(s: Any) -> tuple[Any, Any]:
    """Rectified flow at time s ∈ [0, 1] (numbers, arrays or tensors): α_s = 1 − s, σ_s = s."""
    return 1.0 - s, s


def _flow_path(c: ScheduleConfig) -> tuple[np.ndarray, np.ndarray]:
    """Rectified flow on the grid s = t/T, t = 0…T."""
    return flow_alpha_sigma(np.arange(c.timesteps + 1, dtype=np.float64) / c.timesteps)


def _validate(c: ScheduleConfig) -> None:
    """Raise SettingError, naming the setting, for a schedule that cannot exist."""
    check_settings(c)
    if c.beta_start > c.beta_end:
        raise SettingError("beta_start", f"β_start = {c.beta_start} is larger than β_end = {c.beta_end}")

@dataclass(frozen=True)
class Seed000Notation:
    """The same schedule in seed 000's letters, where (α_t^S)² + (β_t^S)² = 1 (DESIGN.md table)."""

    alpha: np.ndarray  # α_t^S = √α_t = √(1 − β_t), the per-step signal scale
    beta: np.ndarray  # β_t^S = √β_t, the per-step noise scale
    alpha_bar: np.ndarray  # ᾱ_t^S = √ᾱ_t, the cumulative signal scale
    beta_bar: np.ndarray  # β̄_t^S = √(1 − ᾱ_t), the cumulative noise scale


def _read_only(a: np.ndarray) -> np.ndarray:
    a = np.ascontiguousarray(a, dtype=np.float64)
    a.flags.writeable = False
    return a


class NoiseSchedule:
    """β_1…β_T and every quantity derived from them, float64, indexed by t = 0…T.

    Immutable: the arrays are read-only and attributes cannot be reassigned.
    """

    def __init__(self, config: ScheduleConfig) -> None:
        _validate(config)
        object.__setattr__(self, "config", config)
        if config.path == FLOW_PATH:
            alphas, sigmas = _flow_path(config)
            with np.errstate(divide="ignore"):  # ᾱ_T = 0: the flow ends in pure noise
                log_alpha_bars = 2 * np.log(alphas) - np.log(alphas**2 + sigmas**2)
            betas = -np.expm1(np.diff(log_alpha_bars))  # β_t = 1 − ᾱ_t/ᾱ_{t−1}; β_T = 1
            object.__setattr__(self, "log_alpha_bars", _read_only(log_alpha_bars))
            object.__setattr__(self, "path_alphas", _read_only(alphas))
            object.__setattr__(self, "path_sigmas", _read_only(sigmas))
        else:
            betas = BETA_FUNCTIONS[config.name](config)
            if not np.all((betas > 0) & (betas < 1)):
                raise SettingError(
                    "beta_end", f"the {config.name} schedule with T = {config.timesteps} gives β outside (0, 1)"
                )
        object.__setattr__(self, "betas", _read_only(np.concatenate([[0.0], betas])))

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("NoiseSchedule is immutable; build a new one from a ScheduleConfig")

    def __repr__(self) -> str:
        c = self.config
        if self.is_flow:
            return f"NoiseSchedule({c.path!r}, T={c.timesteps})"
        return f"NoiseSchedule({c.name!r}, T={c.timesteps}, β {c.beta_start:g}→{c.beta_end:g})"

    @property
    def is_flow(self) -> bool:
        """Whether this is a flow path (time s = t/T in [0, 1], the network told T·s) rather than VP."""
        return self.config.path == FLOW_PATH

    @cached_property
    def path_times(self) -> np.ndarray:
        """t in the path's own units: the step t for VP, s = t/T ∈ [0, 1] for a flow."""
        t = np.arange(self.timesteps + 1, dtype=np.float64)
        return _read_only(t / self.timesteps if self.is_flow else t)

    @cached_property
    def path_alphas(self) -> np.ndarray:
        """α_t of the path x_t = α_t x_0 + σ_t ε (√ᾱ_t on a VP path)."""
        return self.sqrt_alpha_bars

    @cached_property
    def path_sigmas(self) -> np.ndarray:
        """σ_t of the path (√(1 − ᾱ_t) on a VP path)."""
        return self.sqrt_one_minus_alpha_bars

    @cached_property
    def path_scales(self) -> np.ndarray:
        """c_t = √(α_t² + σ_t²): the path's x_t is c_t times its VP equivalent's (1 on a VP path)."""
        return _read_only(np.sqrt(self.path_alphas**2 + self.path_sigmas**2))

    def velocity_coefficients(self) -> tuple[float, float]:
        """(α'_s, σ'_s), the path's derivatives in its own time s, so that the velocity is
        u = dx_s/ds = α'_s x_0 + σ'_s ε; rectified flow: (−1, 1), u = ε − x_0. A VP path on its
        discrete grid has no velocity: SettingError."""
        if not self.is_flow:
            raise SettingError("prediction", "the velocity target needs a flow path (--path rectified-flow); "
                               "a VP model predicts ε, x_0 or v")
        return -1.0, 1.0

    @property
    def timesteps(self) -> int:
        """T."""
        return self.config.timesteps

    @property
    def t(self) -> np.ndarray:
        """The steps 1…T, as an integer array (handy as a plot's x axis)."""
        return np.arange(1, self.timesteps + 1)

    @cached_property
    def alphas(self) -> np.ndarray:
        """α_t = 1 − β_t."""
        return _read_only(1.0 - self.betas)

    @cached_property
    def log_alpha_bars(self) -> np.ndarray:
        """log ᾱ_t = Σ_{s≤t} log(1 − β_s), summed in log space for accuracy (a flow path sets it
        from its α and σ: log ᾱ_t = log α_t² − log(α_t² + σ_t²))."""
        return _read_only(np.cumsum(np.log1p(-self.betas)))

    @cached_property
    def alpha_bars(self) -> np.ndarray:
        """ᾱ_t = Π_{s≤t} α_s (Ho et al. eq. 4), with ᾱ_0 = 1."""
        return _read_only(np.exp(self.log_alpha_bars))

    @cached_property
    def one_minus_alpha_bars(self) -> np.ndarray:
        """1 − ᾱ_t, the variance of q(x_t | x_0), computed without cancellation."""
        return _read_only(-np.expm1(self.log_alpha_bars))

    @cached_property
    def sqrt_alpha_bars(self) -> np.ndarray:
        """√ᾱ_t, the signal scale of q(x_t | x_0) = N(√ᾱ_t x_0, (1 − ᾱ_t) I)."""
        return _read_only(np.sqrt(self.alpha_bars))

    @cached_property
    def sqrt_one_minus_alpha_bars(self) -> np.ndarray:
        """√(1 − ᾱ_t), the noise scale of q(x_t | x_0)."""
        return _read_only(np.sqrt(self.one_minus_alpha_bars))

    @cached_property
    def snr(self) -> np.ndarray:
        """SNR(t) = ᾱ_t / (1 − ᾱ_t); infinite at t = 0."""
        with np.errstate(divide="ignore"):
            return _read_only(self.alpha_bars / self.one_minus_alpha_bars)

    @cached_property
    def log_snr(self) -> np.ndarray:
        """log SNR(t) = log ᾱ_t − log(1 − ᾱ_t) (natural log); +∞ at t = 0."""
        with np.errstate(divide="ignore"):
            return _read_only(self.log_alpha_bars - np.log(self.one_minus_alpha_bars))

    @cached_property
    def posterior_variances(self) -> np.ndarray:
        """β̃_t = (1 − ᾱ_{t−1}) / (1 − ᾱ_t) · β_t, the variance of q(x_{t−1} | x_t, x_0) (eq. 7).

        β̃_1 = 0: given x_1 and x_0, x_0 is known. Entry 0 is 0 too.
        """
        out = np.zeros_like(self.betas)
        out[1:] = self.one_minus_alpha_bars[:-1] / self.one_minus_alpha_bars[1:] * self.betas[1:]
        return _read_only(out)

    @cached_property
    def seed000(self) -> Seed000Notation:
        """The schedule in seed 000's notation (α^S, β^S, ᾱ^S, β̄^S)."""
        return Seed000Notation(
            alpha=_read_only(np.sqrt(self.alphas)),
            beta=_read_only(np.sqrt(self.betas)),
            alpha_bar=self.sqrt_alpha_bars,
            beta_bar=self.sqrt_one_minus_alpha_bars,
        )


def make_schedule(
    name: str = "linear",
    timesteps: int = 1000,
    beta_start: float | None = None,
    beta_end: float | None = None,
) -> NoiseSchedule:
    """Build a schedule by name; β_start/β_end default to Ho et al.'s 1e-4 and 0.02."""
    defaults = ScheduleConfig()
    return NoiseSchedule(
        ScheduleConfig(
            name=name,
            timesteps=timesteps,
            beta_start=defaults.beta_start if beta_start is None else beta_start,
            beta_end=defaults.beta_end if beta_end is None else beta_end,
        )
    )


def config_from_betas(betas: Sequence[float], rtol: float = 1e-6) -> ScheduleConfig | None:
    """The schedule whose β_1…β_T these are (to ``rtol``, float32's precision by default), or None.

    Tries cosine, then linear and quadratic with β_start = β_1 and β_end = β_T (a scaled_linear
    schedule is found as the linear one with the same β: its range times 1000/T). Sigmoid is not tried.
    """
    b = np.asarray(betas, dtype=np.float64)
    if b.ndim != 1 or not len(b) or not np.all(np.isfinite(b)):
        return None
    T = len(b)
    candidates = (
        ScheduleConfig("cosine", T),
        ScheduleConfig("linear", T, float(b[0]), float(b[-1])),
        ScheduleConfig("quadratic", T, float(b[0]), float(b[-1])),
    )
    for config in candidates:
        try:
            ours = NoiseSchedule(config).betas[1:]
        except SettingError:
            continue
        if np.allclose(ours, b, rtol=rtol, atol=0.0):
            return config
    return None


TABLE_COLUMNS: tuple[str, ...] = (
    "beta",
    "alpha",
    "alpha_bar",
    "sqrt_alpha_bar",
    "sqrt_one_minus_alpha_bar",
    "snr",
    "log_snr",
    "posterior_variance",
)
"""The per-step quantities a schedule table lists, by the names the CLI and CSV exports write."""


def schedule_table(schedule: NoiseSchedule) -> dict[str, np.ndarray]:
    """The schedule's columns for t = 1…T: t, then TABLE_COLUMNS."""
    s = schedule
    columns = (s.betas, s.alphas, s.alpha_bars, s.sqrt_alpha_bars, s.sqrt_one_minus_alpha_bars, s.snr, s.log_snr, s.posterior_variances)
    return {"t": s.t, **{name: values[1:] for name, values in zip(TABLE_COLUMNS, columns)}}


def schedule_label(config: ScheduleConfig) -> str:
    """A short name for a schedule: 'linear T=1000 β 0.0001…0.02', 'cosine T=1000', 'rectified-flow T=1000'."""
    if config.path == FLOW_PATH:
        return f"{FLOW_PATH} T={config.timesteps}"
    if config.name == "cosine":
        return f"cosine T={config.timesteps}"
    return f"{config.name} T={config.timesteps} β {config.beta_start:g}…{config.beta_end:g}"


def schedule_csv(schedules: Sequence[NoiseSchedule]) -> str:
    """CSV of schedule tables, full precision. One schedule: t, then TABLE_COLUMNS, one row per t.

    Several: a first column 'schedule' holds each row's schedule_label, tables one after another.
    """
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    labelled = len(schedules) > 1
    for i, schedule in enumerate(schedules):
        table = schedule_table(schedule)
        prefix = [schedule_label(schedule.config)] if labelled else []
        if i == 0:
            writer.writerow((["schedule"] if labelled else []) + list(table))
        for row in zip(*table.values()):
            writer.writerow(prefix + [int(row[0]), *(f"{v:.17g}" for v in row[1:])])
    return buffer.getvalue()
