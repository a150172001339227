"""Data-parallel training's pieces in one process, and a resumed two-process run on the CPU (gloo)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from diffusion_studio.core import checkpoint as ck
from diffusion_studio.core.data.datasets import load_toy
from diffusion_studio.core.distributed import SINGLE, World, joined, launched_world
from diffusion_studio.core.errors import SettingError
from diffusion_studio.core.models.config import MLPConfig
from diffusion_studio.core.schedules import ScheduleConfig
from diffusion_studio.core.train_config import TrainConfig
from diffusion_studio.core.training import Trainer

ROOT = Path(__file__).resolve().parents[2]


def torchrun(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    """Two processes started by torchrun on this machine; --standalone picks a free port for their meeting."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", *args],
                          cwd=cwd, env=env, capture_output=True, text=True, timeout=180)


def test_the_world_comes_from_torchruns_variables():
    assert launched_world({}) is SINGLE and launched_world({"WORLD_SIZE": "1", "RANK": "0"}) is SINGLE
    assert launched_world({"WORLD_SIZE": "4", "RANK": "3", "LOCAL_RANK": "1"}) == World(rank=3, size=4, local_rank=1)
    for environ, needle in [({"WORLD_SIZE": "2", "RANK": "1"}, "LOCAL_RANK is not set"),
                            ({"WORLD_SIZE": "two"}, "whole number"),
                            ({"WORLD_SIZE": "2", "RANK": "2", "LOCAL_RANK": "0"}, "0…1")]:
        with pytest.raises(SettingError, match=needle):
            launched_world(environ)
    with joined(torch.device("cpu"), {}) as world:
        assert world is SINGLE and not torch.distributed.is_initialized()


def test_each_process_takes_an_equal_slice_of_the_global_batch():
    slices = [World(rank=r, size=4).shard(64) for r in range(4)]
    assert [(s.start, s.stop) for s in slices] == [(0, 16), (16, 32), (32, 48), (48, 64)]
    assert SINGLE.shard(7) == slice(0, 7)
    assert World(rank=3, size=4, local_rank=1).device(torch.device("cuda")) == torch.device("cuda", 1)
    assert World(rank=1, size=2).device(torch.device("cpu")) == torch.device("cpu")
    assert World(rank=1, size=2).seed(0) != World(rank=0, size=2).seed(0) == World(rank=0, size=2).seed(0)
    config = TrainConfig(data="two_moons", batch_size=33, device="cpu")
    with pytest.raises(SettingError, match="33 does not split evenly over 2 processes; use a multiple of 2"):
        Trainer(MLPConfig(hidden=8), ScheduleConfig("linear", 10), config, load_toy("two_moons", 100), World(rank=0, size=2))


def test_two_processes_continue_a_run_with_dropout_exactly_as_if_uninterrupted(tmp_path):
    done = torchrun("-m", "tests.core.distributed_resume", str(tmp_path))
    assert done.returncode == 0, done.stderr[-3000:]
    assert (tmp_path / "saves.log").read_text().splitlines() == ["0 straight 3", "0 straight 6", "0 split 3", "0 split 6"]
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == ["split", "straight"]
    straight, split = ck.load_checkpoint(tmp_path / "runs" / "straight"), ck.load_checkpoint(tmp_path / "runs" / "split")
    assert straight.step == split.step == 6 and straight.model_config.dropout > 0 and straight.model_config.num_classes == 10
    for state in ("model_state", "ema_state"):
        torch.testing.assert_close(getattr(split, state), getattr(straight, state), rtol=0, atol=0)
    torch.testing.assert_close(split.training_state, straight.training_state, rtol=0, atol=0)
    ranks = straight.training_state["rng"]["ranks"]
    assert len(ranks) == 2 and not torch.equal(ranks[0]["torch_cpu"], ranks[1]["torch_cpu"])  # dropout streams of their own
