"""Started by torchrun from test_distributed.py (``-m tests.core.distributed_resume FOLDER``): two
processes train a tiny class-conditional U-Net with dropout and label dropout to step 6 straight through ("straight"), and to step 3
then continued from its checkpoint to step 6 ("split"), each run saved in FOLDER/runs for the test to
compare. Every save is logged in FOLDER/saves.log with the rank of the process that wrote it."""

import sys
from dataclasses import replace
from pathlib import Path

import torch
import torch.distributed as dist

from diffusion_studio.core import runs
from diffusion_studio.core.checkpoint import save_checkpoint
from diffusion_studio.core.control import drain
from diffusion_studio.core.distributed import joined
from diffusion_studio.core.models.presets import NetworkSize
from diffusion_studio.core.runs import continue_run, new_run, run_training
from diffusion_studio.core.schedules import ScheduleConfig
from diffusion_studio.core.train_config import TrainConfig

SIZE = NetworkSize(base_channels=8, channel_mults=(1, 2), num_res_blocks=1, dropout=0.3)
CONFIG = TrainConfig(data="digits", steps=6, batch_size=8, warmup_steps=2, conditional=True, p_uncond=0.5, device="cpu")
SCHEDULE = ScheduleConfig("linear", 20)


def logged_save(path, checkpoint, **options):
    with open(Path(sys.argv[1]) / "saves.log", "a") as log:
        log.write(f"{dist.get_rank()} {Path(path).name} {checkpoint.step}\n")
    return save_checkpoint(path, checkpoint, **options)


if __name__ == "__main__":
    folder = Path(sys.argv[1]) / "runs"
    runs.save_checkpoint = logged_save
    with joined(torch.device("cpu")) as world:
        drain(run_training(new_run(CONFIG, SCHEDULE, SIZE, image_size=8, world=world), folder / "straight", save_every=3))
        drain(run_training(new_run(replace(CONFIG, steps=3), SCHEDULE, SIZE, image_size=8, world=world), folder / "split", save_every=3))
        dist.barrier()  # the first process has saved what all now continue from
        drain(run_training(continue_run(folder / "split", 6, "cpu", world), folder / "split", save_every=3))
