"""What a 2-D model does to every point of the plane at t: its score and its reverse step, on a
grid, beside the exact ones when the data is a Gaussian mixture (core.mixture).

Seed 002's reverse step in Ho et al.'s terms: the network's ε̂ gives the score estimate
s_θ(x_t, t) = −ε̂/√(1 − ᾱ_t), and the DDPM mean μ_θ(x_t, t) = (x_t − β_t/√(1 − ᾱ_t) ε̂)/√α_t
(eq. 11), so a step moves x_t by μ_θ − x_t on average.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch

from diffusion_studio.core.loaded_model import LoadedModel
from diffusion_studio.core.mixture import GaussianMixture
from diffusion_studio.core.schedules import NoiseSchedule

FieldKind = Literal["score", "mean_step"]


def grid(bounds: tuple[float, float, float, float], n: int) -> np.ndarray:
    """n×n points evenly over (x_min, x_max, y_min, y_max), row by row: (n², 2) float32."""
    x_min, x_max, y_min, y_max = bounds
    xs, ys = np.meshgrid(np.linspace(x_min, x_max, n), np.linspace(y_min, y_max, n))
    return np.stack([xs.ravel(), ys.ravel()], axis=1).astype(np.float32)


def learned_eps(model: LoadedModel, x_t: np.ndarray, t: int) -> np.ndarray:
    """ε̂(x_t, t) of the model at the points x_t (N×D), whatever it predicts (eps, x0 or v)."""
    x = torch.from_numpy(np.ascontiguousarray(x_t, dtype=np.float32)).to(model.device)
    with torch.inference_mode():
        eps = model.denoiser(model.device).predict(x, t).pred_eps
    return eps.float().cpu().numpy()


def from_eps(schedule: NoiseSchedule, x_t: np.ndarray, eps: np.ndarray, t: int, kind: FieldKind) -> np.ndarray:
    """The field from an ε (learned or exact): the score −ε/√(1 − ᾱ_t), or the mean DDPM step
    μ − x_t = (x_t − β_t/√(1 − ᾱ_t) ε)/√α_t − x_t (Ho et al. eq. 11)."""
    if kind == "score":
        return -eps / schedule.sqrt_one_minus_alpha_bars[t]
    mean = (x_t - schedule.betas[t] / schedule.sqrt_one_minus_alpha_bars[t] * eps) / math.sqrt(schedule.alphas[t])
    return mean - x_t


@dataclass(frozen=True)
class DriftField:
    """The field at t on a grid: the model's, and the exact one when the data's density is known."""

    t: int
    points: np.ndarray  # G×2 grid points
    learned: np.ndarray  # G×2 the model's vectors
    exact: np.ndarray | None  # G×2 the exact vectors of a known mixture, else None

    @property
    def difference(self) -> np.ndarray | None:
        """learned − exact, where the exact field is known."""
        return None if self.exact is None else self.learned - self.exact


def drift_field(model: LoadedModel, points: np.ndarray, t: int, kind: FieldKind = "score",
                mixture: GaussianMixture | None = None) -> DriftField:
    """The model's field (and the mixture's exact one) at the points, at timestep t (1…T)."""
    schedule = NoiseSchedule(model.schedule_config)
    learned = from_eps(schedule, points, learned_eps(model, points, t), t, kind)
    exact = None
    if mixture is not None:
        exact_eps = mixture.exact_eps(points, float(schedule.alpha_bars[t]))
        exact = from_eps(schedule, points, exact_eps, t, kind).astype(np.float32)
    return DriftField(t, points, learned.astype(np.float32), exact)


class MixtureDenoiser(torch.nn.Module):
    """The perfect ε-network for data drawn from a Gaussian mixture: ε*(x_t, t) =
    −√(1 − ᾱ_t) ∇ log q(x_t) (core.mixture). It stands wherever a trained 2-D network would
    (network(x_t, index) with index = t − 1), so samplers and the drift field can run on the truth."""

    def __init__(self, mixture: GaussianMixture, schedule: NoiseSchedule) -> None:
        super().__init__()
        self.mixture, self.schedule = mixture, schedule

    def forward(self, x: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        points, ts = x.detach().cpu().double().numpy(), (index + 1).cpu().numpy()
        eps = np.empty_like(points)
        for t in np.unique(ts):
            rows = ts == t
            eps[rows] = self.mixture.exact_eps(points[rows], float(self.schedule.alpha_bars[t]))
        return torch.from_numpy(eps).to(device=x.device, dtype=x.dtype)
