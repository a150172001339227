"""Several samplers from the same x_T, side by side: what each costs and where it lands.

Every run starts from the same seed, so from the same x_T ~ N(0, I) (``sample_loop`` draws x_T
first). A run is measured by its network evaluations (NFE), its wall time, and a distance:

- 2-D models: the sliced Wasserstein distance from its samples to the training data;
- image models: the root mean square distance, sample by sample, to the probability-flow ODE
  solved finely from the same x_T (DDIM with η = 0 on all T steps). A deterministic sampler
  that solves the ODE well lands near it; a stochastic one (DDPM, Euler ancestral) lands
  elsewhere by design, and its distance says how far its noise took it.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from diffusion_studio.core.errors import SettingError
from diffusion_studio.core.provenance import output_metadata
from diffusion_studio.core.sample_config import SampleConfig, deterministic, run_label, validate_sample_config
from diffusion_studio.core.samplers import sampler_class
from diffusion_studio.core.settings import SettingField, setting_fields
from diffusion_studio.core.control import tagged
from diffusion_studio.core.trajectory import Trajectory, record_run

if TYPE_CHECKING:
    import torch

    from diffusion_studio.core.loaded_model import LoadedModel
    from diffusion_studio.core.sampling import SamplingStep

MAX_RUNS = 8
"""At most this many runs in one comparison."""

_RUN_KEYS = ("steps", "spacing", "clip", "record_every", "class_label", "guidance", "guidance_from", "guidance_to")
"""The SampleConfig fields a run may set for itself; seed and number of samples are shared."""


def parse_runs(text: str, base: SampleConfig = SampleConfig()) -> list[SampleConfig]:
    """Runs written as ``sampler[:key=value,…]`` separated by ';', e.g.
    ``"ddpm;ddim:steps=50,eta=0.5;dpmpp-2m:steps=20"``. A key is one of steps, spacing, clip,
    record_every, or an option of that sampler (eta, variance); the rest comes from ``base``.
    SettingError names what cannot be read."""
    run_fields = {f.name: f for f in setting_fields(SampleConfig) if f.name in _RUN_KEYS}
    configs = []
    for part in (p.strip() for p in text.split(";")):
        if not part:
            continue
        name, _, settings = part.partition(":")
        cls = sampler_class(name.strip())
        option_fields = {f.name: f for f in setting_fields(cls.Options)}
        values: dict[str, Any] = {"sampler": cls.name, "steps": None, "options": {}}
        for item in (s.strip() for s in settings.split(",") if s.strip()):
            key, equals, raw = item.partition("=")
            key = key.strip().replace("-", "_")
            if not equals:
                raise SettingError("samplers", f"'{item}' in '{part}' is not key=value")
            if key in run_fields:
                values[key] = _read(run_fields[key], raw.strip())
            elif key in option_fields:
                values["options"][key] = _read(option_fields[key], raw.strip())
            else:
                takes = ", ".join([*run_fields, *option_fields])
                raise SettingError("samplers", f"'{key}' is not a setting of {cls.label} (it takes {takes})")
        config = replace(base, **values)
        validate_sample_config(config)
        configs.append(config)
    if not 1 <= len(configs) <= MAX_RUNS:
        raise SettingError("samplers", f"name 1 to {MAX_RUNS} runs separated by ';', got {len(configs)}")
    return configs


_TRUE, _FALSE = ("true", "on", "yes", "1"), ("false", "off", "no", "0")


def _read(field: SettingField, raw: str) -> Any:
    """A setting's value from its text, as its field's kind (bool, int, float or str)."""
    try:
        if field.kind is bool:
            if raw.lower() not in _TRUE + _FALSE:
                raise ValueError
            return raw.lower() in _TRUE
        return field.kind(raw)
    except ValueError:
        raise SettingError(field.name, f"cannot read '{raw}' as {field.kind.__name__}") from None


@dataclass(frozen=True)
class ComparedRun:
    """One sampler's run in a comparison."""

    label: str
    config: SampleConfig
    trajectory: Trajectory  # recorded as config.record_every asks
    final: np.ndarray  # the samples at full precision: N×C×H×W or N×D
    nfe: int  # network evaluations
    seconds: float  # wall time of the run (recording included)
    distance: float | None = None  # see the module docstring; None until measured


def compare_items(
    model: LoadedModel,
    configs: Sequence[SampleConfig],
    device: torch.device | str = "cpu",
    should_stop: Callable[[], bool] = lambda: False,
) -> Generator[tuple[int, SamplingStep], None, list[ComparedRun]]:
    """Run each config in turn from the same seed, yielding (run index, step); returns the runs
    (those finished before a stop)."""
    from diffusion_studio.core.sampling import SamplingRun

    if len({config.seed for config in configs}) > 1 or len({config.num for config in configs}) > 1:
        raise SettingError("samplers", "runs compared must share the seed and the number of samples")
    runs = []
    for index, config in enumerate(configs):
        run = SamplingRun(model, config, device)
        recorder = yield from tagged(index, record_run(run, should_stop))
        if should_stop() or recorder.final is None:
            break
        label = run_label(config, run.schedule.timesteps)
        runs.append(ComparedRun(label, config, recorder.trajectory(), recorder.final, recorder.nfe, recorder.seconds))
    return runs


def comparison_metadata(runs: Sequence[ComparedRun]) -> dict[str, Any]:
    """What a picture of a comparison records (core.provenance): each run's settings, label and NFE."""
    return output_metadata("compare", [{**run.trajectory.metadata, "label": run.label, "nfe": run.nfe} for run in runs])


def check_fork(parent: ComparedRun, t: int) -> None:
    """A fork starts from one of the parent's recorded frames before the result (SettingError otherwise)."""
    if t <= 0 or t not in parent.trajectory.timesteps:
        raise SettingError("t", f"a fork starts from a recorded frame before the result; t = {t} is not one of {parent.label}")


def fork_items(
    model: LoadedModel,
    parent: ComparedRun,
    t: int,
    child: SampleConfig,
    device: torch.device | str = "cpu",
    should_stop: Callable[[], bool] = lambda: False,
) -> Generator[SamplingStep, None, ComparedRun | None]:
    """Go back to x_t of a run and go on with other settings: the parent runs again from its seed
    (so along the same path) down to x_t, and the child's sampler, steps and seed take over from
    there. The fork's trajectory is the parent's frames above t, then its own; its NFE counts the
    parent's calls down to t too. Yields every step; returns the run (None if stopped)."""
    from diffusion_studio.core.sampling import SamplingRun

    check_fork(parent, t)
    x_t, parent_nfe = None, 0
    for step in SamplingRun(model, parent.config, device).steps(should_stop):
        if step.t == t:
            x_t = step.x_t
            break
        parent_nfe = step.nfe
        yield step
    if x_t is None:
        return None
    label = f"{run_label(child, t)} from t = {t} of {parent.label}"
    run = SamplingRun(model, child, device, start_t=t)
    recorder = yield from record_run(run, should_stop, x_t, {"forked_from": parent.label, "fork_t": t})
    if should_stop() or recorder.final is None:
        return None
    own, above = recorder.trajectory(), parent.trajectory.timesteps > t
    prefix_eps = parent.trajectory.pred_eps
    joined = Trajectory(
        np.concatenate([parent.trajectory.timesteps[above], own.timesteps]),
        np.concatenate([parent.trajectory.x_t[above], own.x_t]),
        np.concatenate([parent.trajectory.pred_x0[above], own.pred_x0]),
        own.metadata,
        None if prefix_eps is None else np.concatenate([prefix_eps[above], own.pred_eps]),
        None if parent.trajectory.moments is None else np.concatenate([parent.trajectory.moments[above], own.moments]),
    )
    return ComparedRun(label, child, joined, recorder.final, parent_nfe + recorder.nfe, recorder.seconds)


def sliced_wasserstein(a: np.ndarray, b: np.ndarray, projections: int = 256, seed: int = 0) -> float:
    """SW_2(a, b) = √(mean over directions θ of W_2²(θ·a, θ·b)), θ uniform on the unit sphere.

    In one dimension W_2 matches quantiles: with the sorted projections as empirical quantile
    functions, W_2² = ∫₀¹ (F_a⁻¹(u) − F_b⁻¹(u))² du, taken here on a common grid of u.
    """
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    directions = np.random.default_rng(seed).standard_normal((a.shape[1], projections))
    directions /= np.linalg.norm(directions, axis=0, keepdims=True)
    u = (np.arange(max(len(a), len(b))) + 0.5) / max(len(a), len(b))
    quantiles = [_quantiles(np.sort(points @ directions, axis=0), u) for points in (a, b)]
    return float(np.sqrt(np.mean((quantiles[0] - quantiles[1]) ** 2)))


def noise_ratio(samples: np.ndarray, data: np.ndarray, seed: int = 0) -> float:
    """SW_2(samples, data) / SW_2(z, data), z ~ N(0, I) as many as the samples (seeded): about 0 for
    samples of the data's own distribution (the estimator's noise is the floor), 1 for no closer than noise."""
    noise = np.random.default_rng(seed).standard_normal(np.shape(samples))
    return sliced_wasserstein(samples, data) / sliced_wasserstein(noise, data)


def _quantiles(ordered: np.ndarray, u: np.ndarray) -> np.ndarray:
    """F⁻¹(u) of each column of sorted samples, the i-th of n standing at u = (i + ½)/n, linear between."""
    position = np.clip(u * len(ordered) - 0.5, 0, len(ordered) - 1)
    low = np.floor(position).astype(np.intp)
    high = np.minimum(low + 1, len(ordered) - 1)
    weight = (position - low)[:, None]
    return ordered[low] * (1 - weight) + ordered[high] * weight


@dataclass(frozen=True)
class Reference:
    """What the runs are measured against: ``data`` (a 2-D model's training points, nothing to run),
    ``ode`` (the probability-flow ODE from the runs' x_T, DDIM with η = 0 in ``steps`` steps; None:
    all T, the run that dominates a comparison of few-step samplers) or ``none`` (no distance)."""

    kind: str
    steps: int | None = None

    def describe(self, timesteps: int) -> str:
        """In words, for a model of T = ``timesteps``."""
        if self.kind == "ode":
            return f"the probability-flow ODE in {self.steps or timesteps} steps (DDIM, η = 0)"
        return "the training data" if self.kind == "data" else "nothing"


REFERENCES = ("data", "ode", "ode:K", "none")
"""How a reference is written (``parse_reference``)."""


def parse_reference(text: str | None, is_image: bool, timesteps: int) -> Reference:
    """The reference written as one of REFERENCES for a model of T = ``timesteps``; None: the model's
    own (the data of a 2-D model, the ODE on all T steps for an image model). SettingError for one the
    model cannot be measured by."""
    if text is None:
        return Reference("ode") if is_image else Reference("data")
    kind, colon, steps = text.strip().partition(":")
    if kind not in ("data", "ode", "none") or (colon and kind != "ode"):
        raise SettingError("reference", f"'{text}' is not one of {', '.join(REFERENCES)}")
    if kind != "none" and (kind == "ode") != is_image:
        own = "ode or ode:K (image models are measured by their distance to the ODE's solution)" if is_image else \
            "data (2-D models are measured against their training data)"
        raise SettingError("reference", f"'{kind}' does not measure this model: use {own}, or none")
    if not colon:
        return Reference(kind)
    if not steps.strip().isdigit() or not 1 <= int(steps) <= timesteps:
        raise SettingError("reference", f"'{text}': K in ode:K is a number of steps from 1 to T = {timesteps}")
    return Reference(kind, int(steps))


def ode_reference(
    model: LoadedModel,
    config: SampleConfig,
    device: torch.device | str = "cpu",
    should_stop: Callable[[], bool] = lambda: False,
    steps: int | None = None,
) -> Generator[SamplingStep, None, np.ndarray | None]:
    """The probability-flow ODE solved from the runs' x_T (the DETERMINISTIC sampler, in ``steps``
    steps; None: all T, finely): yields its steps, returns its samples (None if stopped)."""
    from diffusion_studio.core.sampling import SamplingRun

    fine = deterministic(config, steps=steps, spacing="trailing", record_every=1)
    last = None
    for last in SamplingRun(model, fine, device).steps(should_stop=should_stop):
        yield last
    if should_stop() or last is None:
        return None
    return last.x_prev.numpy()


def reference_for(
    model: LoadedModel, config: SampleConfig, device: torch.device | str = "cpu", should_stop: Callable[[], bool] = lambda: False,
    reference: Reference | None = None,
) -> Generator[SamplingStep, None, np.ndarray | None]:
    """What runs of this model are measured against (``reference``; None: the model's own, see
    parse_reference): the training data of a 2-D model (when it is a built-in set; nothing to run),
    the ODE's solution for an image model (its steps yielded), or None for no reference."""
    reference = reference or parse_reference(None, model.is_image, model.schedule_config.timesteps)
    if reference.kind == "data":
        return model.training_points()
    if reference.kind == "none":
        return None
    return (yield from ode_reference(model, config, device, should_stop, reference.steps))


def distance_name(is_image: bool, ode_steps: int | None = None) -> str:
    """What ``measure`` measures, in words, for an image model (against the ODE's solution in
    ``ode_steps`` steps; None: all T, the fine one) or a 2-D one."""
    if not is_image:
        return "sliced W₂ to the data"
    return "RMS to the fine ODE solution" if ode_steps is None else f"RMS to the {ode_steps}-step ODE solution"


def measure(runs: Sequence[ComparedRun], reference: np.ndarray | None) -> list[ComparedRun]:
    """Each run with its distance: sliced Wasserstein to the data for points, RMS to the fine ODE
    solution for images (``reference`` is the data, or ode_reference's samples; None: unmeasured)."""
    if reference is None:
        return list(runs)
    measured = []
    for run in runs:
        if run.final.ndim == 2:
            distance = sliced_wasserstein(run.final, reference)
        else:
            distance = float(np.sqrt(np.mean((run.final - reference) ** 2)))
        measured.append(replace(run, distance=distance))
    return measured
