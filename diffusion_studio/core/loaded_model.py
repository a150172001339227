"""A model opened to sample from: ours, the bundled default, or a diffusers UNet2DModel folder."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from diffusion_studio.core.checkpoint import load_checkpoint
from diffusion_studio.core.models.config import sample_shape
from diffusion_studio.core.models.diffusers_unet import is_diffusers_unet, load_diffusers_unet
from diffusion_studio.core.schedules import ScheduleConfig
from diffusion_studio.resources import DEFAULT_MODEL


@dataclass(frozen=True)
class LoadedModel:
    """A denoiser ready to sample from, with what sampling needs to know about it."""

    network: torch.nn.Module  # eval mode, on the requested device
    schedule_config: ScheduleConfig
    prediction: str  # "eps", "x0" or "v"
    sample_shape: tuple[int, ...]  # (C, H, W) or (D,)
    source: str  # the folder it came from
    data: str  # what it was trained on, when known ("" otherwise)

    @property
    def is_image(self) -> bool:
        return len(self.sample_shape) == 3


def open_model(source: str | Path, device: torch.device | str = "cpu") -> LoadedModel:
    """A checkpoint folder, "default" (the bundled model) or a diffusers UNet2DModel folder."""
    folder = DEFAULT_MODEL if str(source) == "default" else Path(source)
    if folder.is_dir() and is_diffusers_unet(folder):
        network, schedule, prediction, shape = load_diffusers_unet(folder)
        return LoadedModel(network.to(device), schedule, prediction, shape, str(folder), "")
    checkpoint = load_checkpoint(folder)
    return LoadedModel(
        network=checkpoint.network(device),
        schedule_config=checkpoint.schedule_config,
        prediction=checkpoint.train_config.prediction,
        sample_shape=sample_shape(checkpoint.model_config),
        source=str(checkpoint.path),
        data=checkpoint.train_config.data,
    )
