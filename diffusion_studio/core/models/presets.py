"""Network sizes: the settings behind a U-Net or an MLP, named presets, and the config for some data.

No torch here: the CLI and the GUI build configs before torch is loaded.
"""

from __future__ import annotations

from dataclasses import dataclass

from diffusion_studio.core.models.config import MLPConfig, ModelConfig, UNetConfig


@dataclass(frozen=True)
class NetworkSize:
    """How big a denoiser is, whatever the data: U-Net settings for images, MLP ones for points."""

    base_channels: int = 32  # U-Net width of the first level
    channel_mults: tuple[int, ...] = (1, 2, 2)  # U-Net width of each level, × base_channels
    num_res_blocks: int = 2  # residual blocks per level
    attention_resolutions: tuple[int, ...] | None = None  # feature-map sizes with attention; None: the second level's
    dropout: float = 0.1
    num_heads: int = 1
    hidden: int = 128  # MLP width, for point data
    num_layers: int = 3  # MLP residual layers


PRESETS: dict[str, NetworkSize] = {
    "tiny": NetworkSize(base_channels=16, channel_mults=(1, 2), num_res_blocks=1, hidden=64, num_layers=2),
    "small": NetworkSize(),
    "medium": NetworkSize(base_channels=64, channel_mults=(1, 2, 2, 2), hidden=256, num_layers=4),
    "large": NetworkSize(base_channels=128, channel_mults=(1, 2, 2, 2), hidden=512, num_layers=6),
}
"""From quick CPU demos to Ho et al.'s CIFAR-10 network ("large" at 32×32 RGB: 35.7M parameters).
"small" is the bundled model's size."""


def model_config_for(size: NetworkSize, sample_shape: tuple[int, ...]) -> ModelConfig:
    """The network for samples of ``sample_shape``: a U-Net for (C, S, S) images, an MLP for (D,) points.

    Attention defaults to the second level's feature-map size, as Ho et al. put it at 16×16 for
    32×32 images.
    """
    if len(sample_shape) == 1:
        return MLPConfig(dim=sample_shape[0], hidden=size.hidden, num_layers=size.num_layers)
    channels, image_size = sample_shape[0], sample_shape[-1]
    resolutions = [image_size >> level for level in range(len(size.channel_mults))]
    attention = size.attention_resolutions if size.attention_resolutions is not None else tuple(resolutions[1:2])
    return UNetConfig(
        image_size=image_size,
        in_channels=channels,
        out_channels=channels,
        base_channels=size.base_channels,
        channel_mults=tuple(size.channel_mults),
        num_res_blocks=size.num_res_blocks,
        attention_resolutions=tuple(attention),
        dropout=size.dropout,
        num_heads=size.num_heads,
    )


def size_of(config: ModelConfig) -> NetworkSize:
    """The NetworkSize that model_config_for turns back into ``config`` (for a form showing a checkpoint)."""
    if isinstance(config, MLPConfig):
        return NetworkSize(hidden=config.hidden, num_layers=config.num_layers)
    return NetworkSize(
        base_channels=config.base_channels,
        channel_mults=config.channel_mults,
        num_res_blocks=config.num_res_blocks,
        attention_resolutions=config.attention_resolutions,
        dropout=config.dropout,
        num_heads=config.num_heads,
    )
