"""The compute devices this machine has, named for menus and chosen for training and sampling."""

from __future__ import annotations

import torch

from diffusion_studio.core.errors import SettingError


def available_devices() -> list[str]:
    """The devices this machine can compute on, best first."""
    found = []
    if torch.cuda.is_available():
        found.append("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        found.append("mps")
    return found + ["cpu"]


def device_label(name: str) -> str:
    """A device in words for menus: "CUDA (NVIDIA H100 80GB HBM3)", "MPS (Apple GPU)", "CPU"."""
    if name == "cuda":
        return f"CUDA ({torch.cuda.get_device_name(0)})"
    return "MPS (Apple GPU)" if name == "mps" else name.upper()


def resolve_device(name: str) -> torch.device:
    """"auto" → the best available device; a named one must exist here."""
    available = available_devices()
    if name == "auto":
        return torch.device(available[0])
    if name not in available:
        raise SettingError("device", f"'{name}' is not available on this machine (available: {', '.join(available)})")
    return torch.device(name)
