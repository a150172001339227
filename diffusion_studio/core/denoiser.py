"""The one place that calls a network: its time convention, its input scaling, what its output
means, the x̂_0 clamp, and a condition with classifier-free guidance.

Everything that asks a trained network about x_t (sampling, the bound, your image's round trip, the
2-D lab's field, the export check) goes through a ``Denoiser``, so a new kind of model (another
path, a condition) changes this file and nothing that calls it. Training calls the network itself,
because its loss needs the raw output with gradients.

Conventions (../shared/DESIGN.md): the papers' t runs 1…T. A VP network is told the 0-based
index t − 1, as diffusers counts; a flow network the time T·s = t of its grid s = t/T (diffusers'
σ·1000). Callers hold x_t on the VP equivalent of the path, x_t = √ᾱ_t x_0 + √(1 − ᾱ_t) ε
(Ho et al. eq. 4); the network sees the path's own x, c_t x_t with c_t = √(α_t² + σ_t²) (1 on a
VP path; schedules.NoiseSchedule.path_scales).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from numbers import Integral
from typing import TYPE_CHECKING, Any

from diffusion_studio.core.process import (
    Prediction, check_prediction, coefficient, predict_eps_from_x0, predict_x0_from_eps, split_prediction,
)
from diffusion_studio.core.schedules import NoiseSchedule

if TYPE_CHECKING:  # torch comes with the tensors; naming a denoiser's settings needs none
    import torch

Network = Callable[..., "torch.Tensor"]
"""network(x, index) → output, index = t − 1 per sample; a conditional one also takes labels."""


def denoised(
    schedule: NoiseSchedule,
    prediction: Prediction,
    output: Any,
    x_t: Any,
    t: Any,
    x0_range: tuple[float, float] | None = None,
    at: int | None = None,
) -> tuple[Any, Any]:
    """(x̂_0, ε̂) from a network's output for x_t, whichever target it predicts (``split_prediction``).

    With ``x0_range``, x̂_0 is clamped to it (the data's range: [−1, 1] for images) and
    ε̂ = (x_t − √ᾱ_t x̂_0)/√(1 − ᾱ_t) recomputed to match. Near t = T, where ᾱ_t is tiny,
    x̂_0 = (x_t − √(1 − ᾱ_t) ε̂)/√ᾱ_t (eq. 15) magnifies any error in ε̂ by 1/√ᾱ_t (about 2·10⁴ at
    cosine's T); the clamp keeps a large first step from carrying it.

    ``at``: the timestep the network was told, when not t (an ascending step tells it s > t, as
    DDIM inversion does): ε̂ is read at that level and x̂_0 = (x_t − √(1 − ᾱ_t) ε̂)/√ᾱ_t at t.
    """
    if at is None or at == t:
        pred_x0, pred_eps = split_prediction(schedule, output, x_t, t, prediction)
    else:
        _, pred_eps = split_prediction(schedule, output, x_t, at, prediction)
        pred_x0 = predict_x0_from_eps(schedule, x_t, t, pred_eps)
    if x0_range is not None and not (isinstance(t, Integral) and t == 0):
        pred_x0 = pred_x0.clamp(*x0_range)
        pred_eps = predict_eps_from_x0(schedule, x_t, t, pred_x0)
    return pred_x0, pred_eps


@dataclass(frozen=True)
class Guidance:
    """Classifier-free guidance (Ho & Salimans 2022) towards a class: the network's two outputs,
    with the class c and with the null label ∅, combined as

        ε̃ = ε̂(x, ∅) + (1 + w)(ε̂(x, c) − ε̂(x, ∅)) = (1 + w) ε̂(x, c) − w ε̂(x, ∅).

    w = 0 is the plain conditional model; diffusers' ``guidance_scale`` is 1 + w. Every target
    (ε, x_0, v, velocity) is affine in ε̂ at a fixed x_t, so the outputs combine the same way.
    Where w = 0 the conditional output alone is needed: one evaluation.
    """

    label: Any  # the class c asked for: an int for the batch, or a LongTensor of one per sample
    null: int  # the network's null label ∅ (the row that label dropout trained)
    scale: float = 0.0  # w; 0: conditional, unguided
    interval: tuple[float, float] = (0.0, 1.0)  # guide only while t/T lies in [low, high] (Kynkäänniemi et al. 2024)

    def scale_at(self, t: Any, timesteps: int) -> Any:
        """w at timestep t (an int, or a tensor of one t per sample): ``scale`` where t/T lies in the
        interval, 0 elsewhere."""
        low, high = self.interval
        return self.scale * ((low <= t / timesteps) & (t / timesteps <= high))


@dataclass(frozen=True)
class Denoised:
    """What the network makes of x_t: its raw output and the (x̂_0, ε̂) it implies."""

    output: torch.Tensor  # the network's output (guided, with guidance)
    pred_x0: torch.Tensor  # x̂_0
    pred_eps: torch.Tensor  # ε̂


class Denoiser:
    """A network with what it takes to read it: the schedule it was trained on, its target, where
    x̂_0 is kept, and optionally a condition. ``denoiser(x, t)`` is the network's output (what a
    sampler's ``advance`` asks for); ``predict(x, t)`` adds x̂_0 and ε̂. ``nfe`` counts network
    evaluations: a guided call is two, batched into one forward pass.
    """

    def __init__(
        self,
        network: Network,
        schedule: NoiseSchedule,
        prediction: Prediction = "eps",
        x0_range: tuple[float, float] | None = None,
        guidance: Guidance | None = None,
    ) -> None:
        check_prediction(prediction)
        self.network = network
        self.schedule = schedule
        self.prediction = prediction
        self.x0_range = x0_range  # x̂_0 is clamped to [low, high]; None: never
        self.guidance = guidance
        self.nfe = 0

    def _index(self, x: torch.Tensor, t: Any) -> torch.Tensor:
        """The network's time input for x at t, one per sample: the index t − 1 (VP), or T·s = t (flow)."""
        import torch

        dtype = torch.float32 if self.schedule.is_flow else torch.long
        if not self.schedule.is_flow:
            t = t - 1
        if isinstance(t, Integral):
            return torch.full((x.shape[0],), t, device=x.device, dtype=dtype)
        return t.to(device=x.device, dtype=dtype).expand(x.shape[0])

    def __call__(self, x: torch.Tensor, t: Any) -> torch.Tensor:
        """The network's output for the batch x (VP coordinates) at timestep t (an int, or one per sample)."""
        index = self._index(x, t)
        if self.schedule.is_flow:  # the network sees the path's x = c_t x_t
            x = coefficient(self.schedule.path_scales, t, x) * x
        guidance = self.guidance
        if guidance is None:
            self.nfe += 1
            return self.network(x, index)
        import torch

        n = x.shape[0]
        labels = torch.as_tensor(guidance.label, device=x.device).expand(n)
        w = guidance.scale_at(t, self.schedule.timesteps)
        if not torch.as_tensor(w).any():  # the conditional model alone
            self.nfe += 1
            return self.network(x, index, labels)
        self.nfe += 2
        both = torch.cat([labels, torch.full((n,), guidance.null, device=x.device)])
        conditional, unconditional = self.network(torch.cat([x, x]), torch.cat([index, index]), both).chunk(2)
        if not isinstance(t, Integral):
            w = w.to(conditional.dtype).reshape(-1, *(1,) * (conditional.ndim - 1))
        return (1 + w) * conditional - w * unconditional

    def predict(self, x: torch.Tensor, t: Any, *, clamp: bool = True) -> Denoised:
        """The output for x at t with its x̂_0 and ε̂ (x̂_0 clamped to ``x0_range`` unless told not to)."""
        output = self(x, t)
        pred_x0, pred_eps = denoised(self.schedule, self.prediction, output, x, t, self.x0_range if clamp else None)
        return Denoised(output, pred_x0, pred_eps)


def as_denoiser(network: Network | Denoiser, schedule: NoiseSchedule, prediction: Prediction = "eps") -> Denoiser:
    """A Denoiser as it is, or a bare network(x, index) read with ``schedule`` and ``prediction``."""
    return network if isinstance(network, Denoiser) else Denoiser(network, schedule, prediction)
