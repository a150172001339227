"""Networks that know the answer: the exact ε (or x_0, v) for data whose distribution is known, as
nn.Modules so that they can stand in a LoadedModel wherever a trained network would."""

import torch

from diffusion_studio.core import process as P
from diffusion_studio.core.loaded_model import LoadedModel
from diffusion_studio.core.schedules import NoiseSchedule


class OnePoint(torch.nn.Module):
    """Data that is one point x*: ε = (x_t − √ᾱ_t x*)/√(1 − ᾱ_t), given as ``prediction`` asks."""

    def __init__(self, schedule: NoiseSchedule, point: torch.Tensor, prediction: str = "eps") -> None:
        super().__init__()
        self.schedule, self.prediction = schedule, prediction
        self.point = torch.nn.Parameter(point, requires_grad=False)

    def forward(self, x_t, index):
        t, point = index + 1, self.point.expand_as(x_t).to(x_t.dtype)
        eps = P.predict_eps_from_x0(self.schedule, x_t, t, point)
        return P.training_target(self.schedule, point, t, eps, self.prediction)


class GaussianEps(torch.nn.Module):
    """Data ~ N(μ, s² I): ε̂ = √(1 − ᾱ_t)(x_t − √ᾱ_t μ)/(ᾱ_t s² + 1 − ᾱ_t), linear in x_t."""

    def __init__(self, schedule: NoiseSchedule, mean: torch.Tensor, std: float) -> None:
        super().__init__()
        self.schedule, self.std = schedule, std
        self.mean = torch.nn.Parameter(mean, requires_grad=False)

    def forward(self, x_t, index):
        a = torch.as_tensor(self.schedule.alpha_bars[(index + 1).cpu().numpy()], dtype=x_t.dtype)
        a = a.reshape(-1, *[1] * (x_t.ndim - 1))
        return (1 - a).sqrt() * (x_t - a.sqrt() * self.mean.to(x_t.dtype)) / (a * self.std**2 + 1 - a)


def loaded(network: torch.nn.Module, schedule: NoiseSchedule, shape: tuple[int, ...], prediction: str = "eps",
           data_range=(-1.0, 1.0)) -> LoadedModel:
    """A LoadedModel around an exact network."""
    return LoadedModel(network, schedule.config, prediction, shape, "exact", "", data_range)
