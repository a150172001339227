"""The sampling loop: a generator yielding every step of a sampler, driven by the CLI and the GUI."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch

from diffusion_studio.core.denoiser import Denoiser, Guidance, Network, as_denoiser
from diffusion_studio.core.errors import SettingError
from diffusion_studio.core.models.config import null_label
from diffusion_studio.core.provenance import run_settings
from diffusion_studio.core.sample_config import AUTO_SPACING, SampleConfig, validate_sample_config
from diffusion_studio.core.samplers import Sampler, build_sampler
from diffusion_studio.core.schedules import NoiseSchedule

if TYPE_CHECKING:
    from diffusion_studio.core.loaded_model import LoadedModel

@dataclass(frozen=True)
class SamplingStep:
    """One recorded step, its tensors detached and on the CPU."""

    index: int  # 0-based position in the loop
    total: int  # number of steps in the loop
    t: int  # the timestep of x_t (papers' count, 1…T; 0 at the start of an ascending run)
    prev_t: int  # the timestep s this step landed on (0 after the last descending step)
    x_t: torch.Tensor  # the sample at t, on the model's path (x_t = α_t x_0 + σ_t ε; VP: what the network saw)
    pred_x0: torch.Tensor  # x̂_0 predicted from x_t
    pred_eps: torch.Tensor  # ε̂ predicted from x_t
    x_prev: torch.Tensor  # x_s, the sample after the step (and after the hook, if any), on the path
    nfe: int  # network evaluations so far


StepHook = Callable[[int, torch.Tensor], torch.Tensor]
"""hook(s, x_s) → the x_s to go on from: conditioning between steps (e.g. inpainting puts the known
pixels back at q(x_s | x_0))."""


def sample_loop(
    denoiser: Denoiser | Network,
    sampler: Sampler,
    shape: Sequence[int],
    *,
    generator: torch.Generator | None = None,
    device: torch.device | str = "cpu",
    x_T: torch.Tensor | None = None,
    should_stop: Callable[[], bool] = lambda: False,
    after_step: StepHook | None = None,
) -> Iterator[SamplingStep]:
    """Walk the sampler's timesteps from x_T ~ N(0, I) (or the given start: x_T, or x_0 for an
    ascending run), yielding every step.

    The samplers step on the VP equivalent of the schedule's path; the start and the recorded
    samples are on the path itself (x = c_t x_t, ``path_scales``: the same on a VP path, where
    c_t = 1; on rectified flow x_s = (1 − s) x_0 + s ε), so that a run shows the model's own x_t.

    The sampler calls the denoiser as often as it needs (``nfe`` counts the network evaluations); a
    bare network(x, index) is read with the sampler's schedule and target (``as_denoiser``).
    ``should_stop`` is asked before each step; when it answers True the loop ends quietly.
    The same generator seed gives the same samples on the same device.
    """
    denoise = as_denoiser(denoiser, sampler.schedule, sampler.prediction)
    x = (
        torch.randn(tuple(shape), generator=generator, device=device)
        if x_T is None
        else _from_path(sampler.schedule, x_T.to(device=device, dtype=torch.float32), int(sampler.timesteps[0]))
    )
    nfe_before = denoise.nfe
    sampler.reset()
    total = len(sampler.timesteps)
    (x_host,) = _on_host(_to_path(sampler.schedule, x, int(sampler.timesteps[0])))
    for index, t in enumerate(sampler.timesteps.tolist()):
        if should_stop():
            return
        s = sampler.prev_timestep(t)
        with torch.inference_mode():
            step = sampler.advance(denoise, t, x, prev_t=s, generator=generator)
            x_prev = step.prev_sample if after_step is None else after_step(s, step.prev_sample)
        pred_x0, pred_eps, x_prev_host = _on_host(step.pred_x0, step.pred_eps, _to_path(sampler.schedule, x_prev, s))
        yield SamplingStep(
            index=index,
            total=total,
            t=t,
            prev_t=s,
            x_t=x_host,
            pred_x0=pred_x0,
            pred_eps=pred_eps,
            x_prev=x_prev_host,
            nfe=denoise.nfe - nfe_before,
        )
        x, x_host = x_prev, x_prev_host


def _to_path(schedule: NoiseSchedule, x: torch.Tensor, t: int) -> torch.Tensor:
    """The path's x = c_t x_t from the VP equivalent x_t (x itself on a VP path)."""
    return x * float(schedule.path_scales[t]) if schedule.is_flow else x


def _from_path(schedule: NoiseSchedule, x: torch.Tensor, t: int) -> torch.Tensor:
    """The VP equivalent x_t = x / c_t of the path's x (x itself on a VP path)."""
    return x / float(schedule.path_scales[t]) if schedule.is_flow else x


def _on_host(*tensors: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Same-shaped tensors detached and on the CPU: from a GPU in one copy, so a step waits for the
    device once rather than once per tensor; CPU tensors as they are."""
    if tensors[0].device.type == "cpu":
        return tuple(t.detach() for t in tensors)
    return torch.stack(tensors).detach().cpu().unbind(0)


def guidance_for(model: LoadedModel, config: SampleConfig) -> Guidance | None:
    """The condition a run asks for: its class with classifier-free guidance w over [guidance_from,
    guidance_to] of t/T, or None (the model's p(x)). SettingError for a class the model does not take,
    or guidance without a class."""
    if config.class_label is None:
        if config.guidance:
            raise SettingError("guidance", "guidance needs a class to guide towards (--class)")
        return None
    classes = model.num_classes
    if not classes:
        raise SettingError("class_label", "this model is not class-conditional: it takes no class")
    if config.class_label >= classes:
        raise SettingError("class_label", f"this model's classes are 0…{classes - 1}, got {config.class_label}")
    if config.guidance_from > config.guidance_to:
        raise SettingError("guidance_from", f"the interval of t/T is empty: {config.guidance_from} > {config.guidance_to}")
    return Guidance(config.class_label, null_label(classes), config.guidance, (config.guidance_from, config.guidance_to))


def x0_range(model: LoadedModel, config: SampleConfig) -> tuple[float, float] | None:
    """Where the run keeps x̂_0: the model's data range unless the config turns clipping off."""
    if config.clip is False:
        return None
    if model.data_range is None and config.clip:
        raise SettingError("clip", "this model does not record its data's range, so x̂_0 cannot be kept within it")
    return model.data_range


class SamplingRun:
    """One reverse-process run of a model with a SampleConfig: the CLI and the app both go through
    here, so the same settings and seed give the same samples. With ``start_t``, the run goes on
    from a given x_{start_t} (``steps(x_start=…)``), its steps spaced over 1…start_t. An
    ``ascending`` run (deterministic samplers only) walks the same timesteps upwards from a given
    x_0 to x_T: an inversion. With ``after_step``, every step's x_s passes through that hook before
    the next step (conditioning, such as inpainting's known pixels: core.inpainting)."""

    def __init__(
        self,
        model: LoadedModel,
        config: SampleConfig,
        device: torch.device | str = "cpu",
        start_t: int | None = None,
        ascending: bool = False,
        after_step: StepHook | None = None,
    ) -> None:
        validate_sample_config(config)
        self.model = model
        self.config = config
        self.device = torch.device(device)
        self.after_step = after_step
        self.denoiser = model.denoiser(self.device, x0_range(model, config), guidance_for(model, config))
        self.schedule = self.denoiser.schedule
        self.sampler = build_sampler(config.sampler, self.schedule, model.prediction, self.denoiser.x0_range, **config.options)
        spacing = None if config.spacing == AUTO_SPACING else config.spacing
        start = self.schedule.timesteps if start_t is None else start_t
        self.sampler.set_timesteps(config.steps or start, spacing, ascending, start=start_t)

    @property
    def num_steps(self) -> int:
        return len(self.sampler.timesteps)

    @property
    def shape(self) -> tuple[int, ...]:
        return (self.config.num, *self.model.sample_shape)

    def metadata(self) -> dict[str, Any]:
        """What a trajectory, and a picture of it, records about how it was made (run_settings)."""
        return run_settings(self.model.source, self.config, self.device, data=self.model.data,
                            T=self.schedule.timesteps, steps=self.num_steps)

    def steps(self, should_stop: Callable[[], bool] = lambda: False, x_start: torch.Tensor | None = None) -> Iterator[SamplingStep]:
        """The run's steps, from x_T ~ N(0, I) drawn from the seed, or from ``x_start``."""
        generator = torch.Generator(self.device).manual_seed(self.config.seed)
        return sample_loop(self.denoiser, self.sampler, self.shape, generator=generator, device=self.device,
                           x_T=x_start, should_stop=should_stop, after_step=self.after_step)
