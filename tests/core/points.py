"""An exact denoiser, with no training: the network that knows its data is a few fixed images."""

import torch

from diffusion_studio.core import process as P
from diffusion_studio.core.loaded_model import IMAGE_RANGE, LoadedModel
from diffusion_studio.core.schedules import NoiseSchedule, ScheduleConfig


class PointsDenoiser(torch.nn.Module):
    """The exact ε-network for data drawn evenly from K images p_k (K×C×H×W): x̂_0 = E[x_0 | x_t] =
    Σ_k w_k p_k, w = softmax_k(−‖x_t − √ᾱ_t p_k‖² / 2(1 − ᾱ_t)), and ε̂ = (x_t − √ᾱ_t x̂_0)/√(1 − ᾱ_t)."""

    def __init__(self, schedule: NoiseSchedule, points: torch.Tensor) -> None:
        super().__init__()
        self.schedule = schedule
        self.register_buffer("points", points.float())

    def forward(self, x_t: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        t = index + 1
        signal = P.coefficient(self.schedule.sqrt_alpha_bars, t, x_t)  # N×1×1×1
        noise = P.coefficient(self.schedule.one_minus_alpha_bars, t, x_t)
        distance = ((x_t[:, None] - signal[:, None] * self.points[None]) ** 2).flatten(2).sum(2)  # N×K
        weights = torch.softmax(-distance / (2 * noise.flatten()[:, None]), dim=1)
        pred_x0 = torch.einsum("nk,kchw->nchw", weights, self.points)
        return P.predict_eps_from_x0(self.schedule, x_t, t, pred_x0)


def points_model(points: torch.Tensor, timesteps: int = 50) -> LoadedModel:
    """A LoadedModel of image data that is only these K×C×H×W images (in [−1, 1]), on the scaled linear schedule (x_T is pure noise)."""
    config = ScheduleConfig("scaled_linear", timesteps)
    network = PointsDenoiser(NoiseSchedule(config), points).eval()
    return LoadedModel(network, config, "eps", tuple(points.shape[1:]), "points", "", IMAGE_RANGE)
