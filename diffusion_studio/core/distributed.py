"""Data-parallel training over several processes started by torchrun: which process this is, its
process group, and the few exchanges between processes that the Trainer needs.

Every process draws the whole global batch of n samples (data indices, t and ε) from the run's one
seeded generator and trains on its own slice of m = n/W, so together the W processes see exactly
the samples one process would. DistributedDataParallel averages their gradients, which for equal
slices is the gradient of the global batch's mean loss:

    (1/W) Σ_r ∇ (1/m) Σ_{i ∈ slice r} ℓ_i  =  ∇ (1/n) Σ_i ℓ_i,

so gradient clipping, AdamW and the EMA take the same steps as in one process.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

from diffusion_studio.core.errors import SettingError

LAUNCH_VARIABLES = ("WORLD_SIZE", "RANK", "LOCAL_RANK")
"""What torchrun tells each process it starts."""


@dataclass(frozen=True)
class World:
    """The processes that train one run together; one process alone is a world of size 1."""

    rank: int = 0  # this process's number, 0…size − 1 (torchrun's RANK); rank 0 saves and reports
    size: int = 1  # how many processes train the run (torchrun's WORLD_SIZE)
    local_rank: int = 0  # its number on this machine (LOCAL_RANK): the GPU it trains on
    group: Any = field(default=None, compare=False, repr=False)  # gloo group for small CPU exchanges (None: the default group)

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.size > 1

    def shard(self, batch_size: int) -> slice:
        """This process's part of a global batch of n: samples r·n/W … (r + 1)·n/W − 1 (n must split evenly)."""
        if batch_size % self.size:
            raise SettingError(
                "batch_size", f"{batch_size} does not split evenly over {self.size} processes; use a multiple of {self.size}"
            )
        part = batch_size // self.size
        return slice(self.rank * part, (self.rank + 1) * part)

    def device(self, device: torch.device) -> torch.device:
        """Where this process trains: its own GPU, cuda:LOCAL_RANK, when the run trains on CUDA."""
        return torch.device("cuda", self.local_rank) if self.distributed and device.type == "cuda" else device

    def wrap(self, model: torch.nn.Module) -> torch.nn.Module:
        """The network to call for training steps: in a world of several, one whose backward pass
        averages the gradients over the processes (DistributedDataParallel); else the model itself."""
        if not self.distributed:
            return model
        device = next(model.parameters()).device
        return DistributedDataParallel(model, device_ids=[device] if device.type == "cuda" else None)

    def gather(self, rows: torch.Tensor) -> torch.Tensor:
        """Every process's k × m ``rows`` side by side, rank 0's columns first: k × (W·m), on every process."""
        if not self.distributed:
            return rows
        parts = [torch.empty_like(rows) for _ in range(self.size)]
        dist.all_gather(parts, rows.contiguous())
        return torch.cat(parts, dim=1)

    def any(self, flag: bool) -> bool:
        """Whether ``flag`` is true in any process; all must ask together (so that a stop asked in one
        process ends every process at the same step)."""
        if not self.distributed:
            return flag
        value = torch.tensor([int(flag)])
        dist.all_reduce(value, op=dist.ReduceOp.MAX, group=self.group)
        return bool(value.item())

    def gather_objects(self, item: Any) -> list[Any]:
        """Every process's ``item`` (picklable), in rank order, on every process; all must ask together."""
        if not self.distributed:
            return [item]
        items: list[Any] = [None] * self.size
        dist.all_gather_object(items, item, group=self.group)
        return items

    def seed(self, seed: int, *more: int) -> int:
        """A seed for this process's own stream, from the run's seed, its rank and ``more`` (SeedSequence)."""
        return int(np.random.SeedSequence([seed, self.rank, *more]).generate_state(1)[0])


SINGLE = World()
"""One process training alone."""


def _whole(environ: Mapping[str, str], name: str) -> int:
    try:
        return int(environ[name])
    except ValueError:
        raise SettingError(name, f"must be a whole number, got {environ[name]!r}") from None


def launched_world(environ: Mapping[str, str] = os.environ) -> World:
    """This process's place as torchrun's variables give it (WORLD_SIZE, RANK, LOCAL_RANK); without
    them, or with WORLD_SIZE 1, a world of one."""
    if "WORLD_SIZE" not in environ or _whole(environ, "WORLD_SIZE") <= 1:
        return SINGLE
    missing = [name for name in LAUNCH_VARIABLES if name not in environ]
    if missing:
        raise SettingError("WORLD_SIZE", f"is {environ['WORLD_SIZE']} but {', '.join(missing)} is not set; "
                           "start the processes with torchrun")
    size, rank, local_rank = (_whole(environ, name) for name in LAUNCH_VARIABLES)
    if not 0 <= rank < size or local_rank < 0:
        raise SettingError("RANK", f"must lie in 0…{size - 1} (and LOCAL_RANK ≥ 0), got RANK {rank}, LOCAL_RANK {local_rank}")
    return World(rank=rank, size=size, local_rank=local_rank)


@contextlib.contextmanager
def joined(device: torch.device, environ: Mapping[str, str] = os.environ) -> Iterator[World]:
    """The world this process was launched into, its process group up for the block and torn down
    after it, however it ends: NCCL between GPUs when training on CUDA (each process on the GPU of
    its LOCAL_RANK), gloo on the CPU. A world of one needs no group."""
    world = launched_world(environ)
    if not world.distributed:
        yield world
        return
    if device.type == "cuda":
        if world.local_rank >= torch.cuda.device_count():
            raise SettingError("device", f"process {world.local_rank} on this machine has no GPU of its own "
                               f"({torch.cuda.device_count()} here): start at most that many processes per machine")
        torch.cuda.set_device(world.local_rank)
        dist.init_process_group("nccl", rank=world.rank, world_size=world.size, device_id=world.device(device))
    elif device.type == "cpu":
        dist.init_process_group("gloo", rank=world.rank, world_size=world.size)
    else:
        raise SettingError("device", f"several processes train on CUDA GPUs or on the CPU, not on {device.type}")
    try:
        if device.type == "cuda":  # the small exchanges (a stop flag, random states) stay on the CPU
            world = replace(world, group=dist.new_group(backend="gloo"))
        yield world
        # Every process leaves together: gloo aborts a process (std::terminate) whose peer tore
        # the group down while its own teardown still talked to it. After an error, no wait: the
        # peer may be gone.
        dist.barrier()
    finally:
        dist.destroy_process_group()
