"""Denoising networks, each built from a frozen config dataclass that is saved as JSON."""

from __future__ import annotations

from dataclasses import asdict, fields
from typing import Any, Union

from torch import nn

from diffusion_studio.core.errors import SettingError
from diffusion_studio.core.models.mlp import MLPConfig, MLPDenoiser
from diffusion_studio.core.models.unet import UNet, UNetConfig

ModelConfig = Union[UNetConfig, MLPConfig]
_KINDS: dict[str, tuple[type, type[nn.Module]]] = {"unet": (UNetConfig, UNet), "mlp": (MLPConfig, MLPDenoiser)}


def model_kind(config: ModelConfig) -> str:
    """"unet" or "mlp": the name saved in config.json."""
    for kind, (config_type, _) in _KINDS.items():
        if isinstance(config, config_type):
            return kind
    raise SettingError("model", f"unknown model config {type(config).__name__}")


def build_model(config: ModelConfig) -> nn.Module:
    """The network a config describes, freshly initialised."""
    return _KINDS[model_kind(config)][1](config)


def config_to_dict(config: ModelConfig) -> dict[str, Any]:
    """JSON-ready form: {"kind": ..., field: value, ...}."""
    return {"kind": model_kind(config), **asdict(config)}


def config_from_dict(data: dict[str, Any]) -> ModelConfig:
    """Inverse of config_to_dict; unknown kinds or fields raise SettingError."""
    data = dict(data)
    kind = data.pop("kind", None)
    if kind not in _KINDS:
        raise SettingError("model", f"unknown model kind {kind!r} (expected one of {', '.join(_KINDS)})")
    config_type = _KINDS[kind][0]
    names = {f.name for f in fields(config_type)}
    unknown = set(data) - names
    if unknown:
        raise SettingError("model", f"unknown {kind} settings: {', '.join(sorted(unknown))}")
    values = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items()}
    return config_type(**values)


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def is_image_model(config: ModelConfig) -> bool:
    """True for networks of images (N×C×H×W), False for point data (N×D)."""
    return isinstance(config, UNetConfig)
