"""Network sizes: the settings behind a U-Net or an MLP, named presets, and the config for some data.

No torch here: the CLI and the GUI build configs before torch is loaded.
"""

from __future__ import annotations

from dataclasses import dataclass

from diffusion_studio.core.models.config import MLPConfig, ModelConfig, UNetConfig
from diffusion_studio.core.limits import MAX_BLOCKS, MAX_CHANNELS
from diffusion_studio.core.settings import check_settings, setting


@dataclass(frozen=True)
class NetworkSize:
    """How big a denoiser is, whatever the data: U-Net settings for images, MLP ones for points."""

    base_channels: int = setting(32, "Base width", "U-Net width of the first level (Ho et al.: 128 for CIFAR-10)",
                                 ge=1, le=MAX_CHANNELS, step=8)
    channel_mults: tuple[int, ...] = setting((1, 2, 2), "Level widths", "U-Net widths of each level as multiples of "
                                             "the first, e.g. 1,2,2,2; one level per entry")
    num_res_blocks: int = setting(2, "Res blocks", "U-Net residual blocks per level", ge=1, le=MAX_BLOCKS,
                                flag="--res-blocks")
    attention_resolutions: tuple[int, ...] | None = setting(
        None, "Attention at", "U-Net feature-map sizes with self-attention, e.g. 8 (if none: the second level's size)",
        flag="--attention")
    dropout: float = setting(0.1, "Dropout", "Dropout in the U-Net's residual blocks (Ho et al.: 0.1)", ge=0, lt=1,
                             step=0.05, decimals=2)
    num_heads: int = setting(1, "Heads", "U-Net attention heads (Ho et al.: 1); each must divide every level's width",
                             ge=1, le=MAX_CHANNELS, flag="--heads")
    hidden: int = setting(128, "MLP width", "MLP width of every hidden layer, for 2-D points", ge=1, le=MAX_CHANNELS,
                        step=16)
    num_layers: int = setting(3, "MLP layers", "MLP residual layers, for 2-D points", ge=1, le=MAX_BLOCKS,
                            flag="--mlp-layers")

PRESETS: dict[str, NetworkSize] = {
    "tiny": NetworkSize(base_channels=16, channel_mults=(1, 2), num_res_blocks=1, hidden=64, num_layers=2),
    "small": NetworkSize(),
    "medium": NetworkSize(base_channels=64, channel_mults=(1, 2, 2, 2), hidden=256, num_layers=4),
    "large": NetworkSize(base_channels=128, channel_mults=(1, 2, 2, 2), hidden=512, num_layers=6),
}
"""From quick CPU demos to Ho et al.'s CIFAR-10 network ("large" at 32×32 RGB: 35.7M parameters).
"small" is the bundled model's size."""


def model_config_for(size: NetworkSize, sample_shape: tuple[int, ...], num_classes: int = 0) -> ModelConfig:
    """The network for samples of ``sample_shape``: a U-Net for (C, S, S) images, an MLP for (D,) points;
    conditioned on ``num_classes`` classes (0: unconditional).

    Attention defaults to the second level's feature-map size, as Ho et al. put it at 16×16 for
    32×32 images. SettingError for a size its settings do not allow.
    """
    check_settings(size)
    if len(sample_shape) == 1:
        return MLPConfig(dim=sample_shape[0], hidden=size.hidden, num_layers=size.num_layers, num_classes=num_classes)
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
        num_classes=num_classes,
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
