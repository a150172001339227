"""Model configs: frozen dataclasses saved as JSON beside the weights. No torch here, so the
CLI and the GUI can build and check them before torch is loaded."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any

from diffusion_studio.core.errors import SettingError
from diffusion_studio.core.limits import MAX_BLOCKS, MAX_CHANNELS, MAX_CLASSES, MAX_IMAGE_SIZE


@dataclass(frozen=True)
class UNetConfig:
    """The shape of a U-Net; saved as JSON beside its weights."""

    image_size: int = 32  # H = W of the images it denoises
    in_channels: int = 3  # 1 (gray) or 3 (RGB)
    out_channels: int = 3  # same as in_channels for ε, x_0 or v prediction
    base_channels: int = 64  # width of the first level (Ho et al.: 128 for CIFAR-10)
    channel_mults: tuple[int, ...] = (1, 2, 2, 2)  # width of each level, × base_channels
    num_res_blocks: int = 2  # residual blocks per level
    attention_resolutions: tuple[int, ...] = (16,)  # feature-map sizes with self-attention
    dropout: float = 0.1
    num_heads: int = 1  # attention heads (Ho et al. use one)
    num_classes: int = 0  # classes c = 0…K−1 it is conditioned on, plus the null label ∅ = K; 0: unconditional

    @property
    def resolutions(self) -> tuple[int, ...]:
        """The feature-map size at each level, from image_size down."""
        return tuple(self.image_size >> level for level in range(len(self.channel_mults)))


def validate_unet_config(c: UNetConfig) -> None:
    """Raise SettingError, naming the setting, for a U-Net that cannot be built."""
    if c.in_channels not in (1, 3) or c.out_channels not in (1, 3):
        raise SettingError("channels", f"in/out channels must be 1 or 3, got {c.in_channels}/{c.out_channels}")
    if not c.channel_mults or any(m < 1 for m in c.channel_mults):
        raise SettingError("channel_mults", f"need one or more positive multipliers, got {c.channel_mults}")
    depth = len(c.channel_mults)
    if c.image_size < 2 ** (depth - 1) or c.image_size % 2 ** (depth - 1):
        raise SettingError(
            "image_size",
            f"{c.image_size} cannot be halved {depth - 1} times for {depth} levels; "
            f"use a multiple of {2 ** (depth - 1)} or fewer levels",
        )
    if c.base_channels < 1 or c.num_res_blocks < 1 or c.num_heads < 1:
        raise SettingError("base_channels", "base width, residual blocks and heads must each be at least 1")
    _at_most("image_size", c.image_size, MAX_IMAGE_SIZE)
    _at_most("base_channels", c.base_channels * max(c.channel_mults), MAX_CHANNELS, "the widest level")
    _at_most("num_res_blocks", c.num_res_blocks, MAX_BLOCKS)
    for r in c.attention_resolutions:
        if r not in c.resolutions:
            raise SettingError(
                "attention_resolutions",
                f"{r} is not a feature-map size of this network ({', '.join(map(str, c.resolutions))})",
            )
    if not 0.0 <= c.dropout < 1.0:
        raise SettingError("dropout", f"must lie in [0, 1), got {c.dropout}")
    validate_num_classes(c.num_classes)
    for mult in c.channel_mults:
        if (c.base_channels * mult) % c.num_heads:
            raise SettingError("num_heads", f"{c.num_heads} heads do not divide a width of {c.base_channels * mult}")


def validate_mlp_config(c: MLPConfig) -> None:
    """Raise SettingError for an MLP that cannot be built."""
    if c.dim < 1 or c.hidden < 1 or c.num_layers < 1 or c.time_dim < 2:
        raise SettingError("mlp", f"dimensions must be positive (time_dim ≥ 2), got {c}")
    for name in ("dim", "hidden", "time_dim"):
        _at_most(name, getattr(c, name), MAX_CHANNELS)
    _at_most("num_layers", c.num_layers, MAX_BLOCKS)
    validate_num_classes(c.num_classes)


def _at_most(name: str, value: int, limit: int, what: str = "") -> None:
    if value > limit:
        raise SettingError(name, f"{what + ' ' if what else ''}{value:,} is over the limit of {limit:,}")


def validate_num_classes(num_classes: int) -> None:
    """Raise SettingError unless num_classes is 0 (unconditional) or a positive count of classes."""
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 0:
        raise SettingError("num_classes", f"must be a whole number ≥ 0 (0: unconditional), got {num_classes!r}")
    _at_most("num_classes", num_classes, MAX_CLASSES)


def null_label(num_classes: int) -> int:
    """The null label ∅ of a network conditioned on ``num_classes`` classes: K, the row after the
    classes 0…K−1 in its class embedding. It stands for "no class" (p(x) rather than p(x | c));
    training replaces a label by it with probability p_uncond (label dropout, Ho & Salimans 2022)."""
    return num_classes


@dataclass(frozen=True)
class MLPConfig:
    """The shape of a point-data denoiser; saved as JSON beside its weights."""

    dim: int = 2  # dimensions of one data point
    hidden: int = 128  # width of every hidden layer
    num_layers: int = 3  # residual hidden layers
    time_dim: int = 32  # size of the sinusoidal time embedding
    num_classes: int = 0  # classes c = 0…K−1 it is conditioned on, plus the null label ∅ = K; 0: unconditional


ModelConfig = UNetConfig | MLPConfig
_CONFIG_TYPES: dict[str, type] = {"unet": UNetConfig, "mlp": MLPConfig}


def model_kind(config: ModelConfig) -> str:
    """"unet" or "mlp": the name saved in config.json."""
    for kind, config_type in _CONFIG_TYPES.items():
        if isinstance(config, config_type):
            return kind
    raise SettingError("model", f"unknown model config {type(config).__name__}")


def config_to_dict(config: ModelConfig) -> dict[str, Any]:
    """JSON-ready form: {"kind": ..., field: value, ...}."""
    return {"kind": model_kind(config), **asdict(config)}


def config_from_dict(data: dict[str, Any]) -> ModelConfig:
    """Inverse of config_to_dict; unknown kinds or fields raise SettingError."""
    if not isinstance(data, dict):
        raise SettingError("model", f"must be an object of settings, got {data!r}")
    data = dict(data)
    kind = data.pop("kind", None)
    if not isinstance(kind, str) or kind not in _CONFIG_TYPES:
        raise SettingError("model", f"unknown model kind {kind!r} (expected one of {', '.join(_CONFIG_TYPES)})")
    config_type = _CONFIG_TYPES[kind]
    unknown = set(data) - {f.name for f in fields(config_type)}
    if unknown:
        raise SettingError("model", f"unknown {kind} settings: {', '.join(sorted(unknown))}")
    config = config_type(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items()})
    _check_types(config)
    (validate_unet_config if isinstance(config, UNetConfig) else validate_mlp_config)(config)
    return config


def _check_types(config: ModelConfig) -> None:
    """SettingError, naming the field, for a value of another type than the field's (a width of
    "64", 2.5 layers, a NaN dropout): what a hand-edited or damaged config.json may hold."""
    for f in fields(config):
        value, default = getattr(config, f.name), f.default
        if value is None and default is None:
            continue
        if isinstance(default, tuple):
            ok = isinstance(value, tuple) and all(isinstance(v, int) and not isinstance(v, bool) for v in value)
            kind = "a list of whole numbers"
        elif isinstance(default, float):
            ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
            kind = "a finite number"
        else:
            ok = isinstance(value, int) and not isinstance(value, bool)
            kind = "a whole number"
        if not ok:
            raise SettingError(f.name, f"must be {kind}, got {value!r}")


def is_image_model(config: ModelConfig) -> bool:
    """True for networks of images (N×C×H×W), False for point data (N×D)."""
    return isinstance(config, UNetConfig)


def sample_shape(config: ModelConfig) -> tuple[int, ...]:
    """The shape of one sample the network takes: (C, S, S) or (D,)."""
    if isinstance(config, UNetConfig):
        return (config.in_channels, config.image_size, config.image_size)
    return (config.dim,)
