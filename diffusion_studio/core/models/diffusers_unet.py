"""Sampling from a diffusers ``UNet2DModel`` folder (config.json + diffusion_pytorch_model.safetensors).

Needs the optional ``diffusers`` package. diffusers counts timesteps 0…T−1, as our networks'
index does, so the model plugs into our samplers unchanged. The schedule comes from a sibling
``scheduler/scheduler_config.json`` (a pipeline folder) when there is one, else Ho et al.'s.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import nn

from diffusion_studio.core.errors import CheckpointError
from diffusion_studio.core.schedules import ScheduleConfig

WEIGHTS_FILE = "diffusion_pytorch_model.safetensors"
_SCHEDULE_NAMES = {"linear": "linear", "scaled_linear": "quadratic", "squaredcos_cap_v2": "cosine", "sigmoid": "sigmoid"}
_PREDICTIONS = {"epsilon": "eps", "sample": "x0", "v_prediction": "v"}


def is_diffusers_unet(folder: Path) -> bool:
    """True if the folder holds a diffusers UNet2DModel in safetensors."""
    try:
        config = json.loads((folder / "config.json").read_text())
    except (OSError, ValueError):
        return False
    return isinstance(config, dict) and config.get("_class_name") == "UNet2DModel"


class DiffusersDenoiser(nn.Module):
    """network(x_t, index) → unet(x_t, index).sample."""

    def __init__(self, unet: nn.Module) -> None:
        super().__init__()
        self.unet = unet

    def forward(self, x: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        return self.unet(x, index).sample


def load_diffusers_unet(folder: Path) -> tuple[DiffusersDenoiser, ScheduleConfig, str, tuple[int, int, int]]:
    """(network, schedule, prediction, sample shape C×H×W) of a UNet2DModel folder; weights only."""
    if not (folder / WEIGHTS_FILE).is_file():
        raise CheckpointError(f"'{folder.name}' is a diffusers UNet2DModel without {WEIGHTS_FILE} (only safetensors are read)")
    try:
        from diffusers import UNet2DModel
    except ImportError:
        raise CheckpointError(
            f"'{folder.name}' is a diffusers model; install the optional extra to read it: pip install -e '.[diffusers]'"
        ) from None
    try:
        unet = UNet2DModel.from_pretrained(str(folder), use_safetensors=True, local_files_only=True)
    except (OSError, ValueError, RuntimeError) as exc:
        raise CheckpointError(f"'{folder.name}': the diffusers model cannot be loaded ({exc})") from None
    schedule, prediction = ScheduleConfig(), "eps"
    scheduler_file = folder.parent / "scheduler" / "scheduler_config.json"
    if scheduler_file.is_file():
        try:
            sc = json.loads(scheduler_file.read_text())
            schedule = ScheduleConfig(
                name=_SCHEDULE_NAMES.get(sc.get("beta_schedule", "linear"), "linear"),
                timesteps=int(sc.get("num_train_timesteps", 1000)),
                beta_start=float(sc.get("beta_start", schedule.beta_start)),
                beta_end=float(sc.get("beta_end", schedule.beta_end)),
            )
            prediction = _PREDICTIONS.get(sc.get("prediction_type", "epsilon"), "eps")
        except (ValueError, TypeError, AttributeError) as exc:
            raise CheckpointError(f"'{folder.name}': scheduler_config.json is damaged ({exc})") from None
    c = unet.config
    size = c.sample_size if isinstance(c.sample_size, int) else c.sample_size[0]
    return DiffusersDenoiser(unet).eval(), schedule, prediction, (c.in_channels, size, size)
