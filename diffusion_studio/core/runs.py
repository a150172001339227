"""A training run, for the CLI and the app alike: a new one from settings, or one continued from
its checkpoint, trained with checkpoints saved on one cadence."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import torch

from diffusion_studio.core.atomic import recover_folder
from diffusion_studio.core.checkpoint import STATE_FILE, Checkpoint, load_checkpoint, save_checkpoint
from diffusion_studio.core.data.datasets import load_dataset
from diffusion_studio.core.distributed import SINGLE, World
from diffusion_studio.core.errors import CheckpointError, SettingError
from diffusion_studio.core.models.presets import NetworkSize, model_config_for
from diffusion_studio.core.schedules import ScheduleConfig
from diffusion_studio.core.settings import check_settings
from diffusion_studio.core.train_config import TrainConfig
from diffusion_studio.core.training import Trainer, TrainProgress
from diffusion_studio.core.training_log import TrainingLog


def new_run(
    config: TrainConfig,
    schedule: ScheduleConfig,
    size: NetworkSize,
    image_size: int = 16,
    channels: int | None = None,
    world: World = SINGLE,
) -> Trainer:
    """A fresh trainer on config.data: images resized to image_size² (channels 1, 3 or as the data), the
    network conditioned on the data's classes when config.conditional; ``world``: the processes training
    it together. Settings are checked before any data is read."""
    check_settings(config)
    dataset = load_dataset(config.data, image_size, channels, seed=config.seed)
    classes = dataset.num_classes if config.conditional else 0
    return Trainer(model_config_for(size, tuple(dataset.data.shape[1:]), classes), schedule, config, dataset, world)


def resumable_checkpoint(folder: str | Path) -> Checkpoint:
    """A checkpoint that holds what continuing needs (CheckpointError otherwise)."""
    checkpoint = load_checkpoint(folder)
    if checkpoint.training_state is None:
        raise CheckpointError(f"'{checkpoint.path.name}' holds no {STATE_FILE}: it can be sampled from but not continued")
    return checkpoint


def continue_run(folder: str | Path, steps: int, device: str = "auto", world: World = SINGLE, compile: str = "auto") -> Trainer:
    """A trainer at the checkpoint's step, with its model, schedule, data and settings; only the
    total number of steps, the device, the processes training it (``world``) and whether it compiles change."""
    checkpoint = resumable_checkpoint(folder)
    if steps <= checkpoint.step:
        raise SettingError("steps", f"the checkpoint is at step {checkpoint.step}; ask for more steps than that to continue")
    config = replace(checkpoint.train_config, steps=steps, device=device, compile=compile)
    model = checkpoint.model_config
    dataset = load_dataset(config.data, getattr(model, "image_size", 16), getattr(model, "in_channels", None), seed=config.seed)
    trainer = Trainer(model, checkpoint.schedule_config, config, dataset, world)
    trainer.restore(checkpoint)
    return trainer


def report_interval(device: torch.device) -> int:
    """Steps per progress report: every step on the CPU; on a GPU every 10th, as each report waits
    for the device to finish."""
    return 1 if device.type == "cpu" else 10


@dataclass(frozen=True)
class Saved:
    """A checkpoint was written."""

    folder: Path
    step: int


def run_training(
    trainer: Trainer,
    output: str | Path,
    save_every: int,
    *,
    should_stop: Callable[[], bool] = lambda: False,
    preview_every: int = 0,
    preview_count: int = 16,
    inference_only: bool = False,
) -> Iterator[TrainProgress | Saved]:
    """Train to the trainer's last step, yielding every report and every save.

    The checkpoint at ``output`` is written every ``save_every`` steps and once more when the run
    ends, finished or stopped (if it did any step); every report is logged beside it (TrainingLog:
    loss.csv, loss_by_t.csv, TensorBoard). The CLI and the Training panel both train here. With
    several processes all run this; the first alone logs, writes and yields the saves.
    """
    if save_every < 1:
        raise SettingError("save_every", f"must be at least 1 step, got {save_every}")
    output, first_step = Path(output), trainer.step
    log = None
    if trainer.world.is_main:
        recover_folder(output)  # a save killed mid-swap: its logs are beside the checkpoint it left
        log = TrainingLog(output, first_step, trainer.schedule.timesteps)

    def save() -> Iterator[Saved]:
        checkpoint = trainer.checkpoint()  # in every process: it gathers their random states
        if log is not None:
            log.close()  # a save swaps the whole folder in, the logs linked into it
            save_checkpoint(output, checkpoint, inference_only=inference_only)
            yield Saved(output, trainer.step)

    try:
        for record in trainer.train(should_stop=should_stop, report_every=report_interval(trainer.device),
                                    preview_every=preview_every, preview_count=preview_count):
            if log is not None:
                log.write(record)
            yield record
            if record.step % save_every == 0 and record.step != record.total_steps:
                yield from save()
        if trainer.step > first_step:
            yield from save()
    finally:
        if log is not None:
            log.close()
