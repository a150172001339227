"""Setting up a training run, for the CLI and the app alike: a new one from settings, or one
continued from its checkpoint."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import torch

from diffusion_studio.core.checkpoint import STATE_FILE, Checkpoint, load_checkpoint
from diffusion_studio.core.data.datasets import load_dataset
from diffusion_studio.core.errors import CheckpointError, SettingError
from diffusion_studio.core.models.presets import NetworkSize, model_config_for
from diffusion_studio.core.schedules import ScheduleConfig
from diffusion_studio.core.train_config import TrainConfig
from diffusion_studio.core.training import Trainer


def new_run(
    config: TrainConfig,
    schedule: ScheduleConfig,
    size: NetworkSize,
    image_size: int = 16,
    channels: int | None = None,
) -> Trainer:
    """A fresh trainer on config.data: images resized to image_size² (channels 1, 3 or as the data)."""
    dataset = load_dataset(config.data, image_size, channels, seed=config.seed)
    return Trainer(model_config_for(size, tuple(dataset.data.shape[1:])), schedule, config, dataset)


def resumable_checkpoint(folder: str | Path) -> Checkpoint:
    """A checkpoint that holds what continuing needs (CheckpointError otherwise)."""
    checkpoint = load_checkpoint(folder)
    if checkpoint.training_state is None:
        raise CheckpointError(f"'{checkpoint.path.name}' holds no {STATE_FILE}: it can be sampled from but not continued")
    return checkpoint


def continue_run(folder: str | Path, steps: int, device: str = "auto") -> Trainer:
    """A trainer at the checkpoint's step, with its model, schedule, data and settings; only the
    total number of steps and the device change."""
    checkpoint = resumable_checkpoint(folder)
    if steps <= checkpoint.step:
        raise SettingError("steps", f"the checkpoint is at step {checkpoint.step}; ask for more steps than that to continue")
    config = replace(checkpoint.train_config, steps=steps, device=device)
    model = checkpoint.model_config
    dataset = load_dataset(config.data, getattr(model, "image_size", 16), getattr(model, "in_channels", None), seed=config.seed)
    trainer = Trainer(model, checkpoint.schedule_config, config, dataset)
    trainer.restore(checkpoint)
    return trainer


def report_interval(device: torch.device) -> int:
    """Steps per progress report: every step on the CPU; on a GPU every 10th, as each report waits
    for the device to finish."""
    return 1 if device.type == "cpu" else 10
