"""Denoising networks: the DDPM U-Net and an MLP for 2-D points, each built from its config.

Configs live in ``models.config`` (no torch); building a network loads torch.
"""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING

from diffusion_studio.core.errors import SettingError
from diffusion_studio.core.limits import MAX_PARAMETERS
from diffusion_studio.core.models.config import ModelConfig, UNetConfig, model_kind

if TYPE_CHECKING:
    from torch import nn


def build_model(config: ModelConfig) -> nn.Module:
    """The network a config describes, freshly initialised; SettingError for one of more than
    MAX_PARAMETERS parameters (counted first, without allocating them)."""
    count = parameter_count(config)
    if count > MAX_PARAMETERS:
        raise SettingError("model", f"{count:,} parameters is over the limit of {MAX_PARAMETERS:,}")
    return _network(config)


def _network(config: ModelConfig) -> nn.Module:
    from diffusion_studio.core.models.mlp import MLPDenoiser
    from diffusion_studio.core.models.unet import UNet

    model_kind(config)  # refuses configs of unknown types
    return UNet(config) if isinstance(config, UNetConfig) else MLPDenoiser(config)


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


@lru_cache(maxsize=64)
def parameter_count(config: ModelConfig) -> int:
    """Trainable parameters of the network a config describes, counted without allocating its weights."""
    import torch

    with torch.device("meta"):
        return count_parameters(_network(config))
