"""Training images/s, eager and compiled, and sampling ms per step, for the default model and a CIFAR-sized U-Net.

    python benchmarks/bench_training.py [--device cpu|cuda|all] [--seconds 5] [--batch N] [--no-compile]

Prints one row per configuration and device. Training runs the real Trainer as ``diffusion-studio
train`` does (AdamW, EMA, a progress report every report_interval steps; on CUDA bf16 autocast,
channels-last U-Nets and fused AdamW), once with compile="off" and once with compile="on". The
compiler's time (what the first report took beyond the steady rate) is printed apart from the
steady rate. On CUDA, "GPU busy" is the share of the wall time over steady steps in which the GPU
runs a kernel or a copy (torch.profiler's device events). Sampling times one network call plus one
DDPM step on a batch of 16.
"""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Callable, Iterator

import torch
from torch.autograd import DeviceType
from torch.profiler import ProfilerActivity, profile

from diffusion_studio.core.data.datasets import Dataset
from diffusion_studio.core.devices import available_devices
from diffusion_studio.core.models import build_model, count_parameters
from diffusion_studio.core.models.config import UNetConfig, sample_shape
from diffusion_studio.core.runs import report_interval
from diffusion_studio.core.samplers import DDPMSampler
from diffusion_studio.core.schedules import NoiseSchedule, ScheduleConfig
from diffusion_studio.core.train_config import TrainConfig
from diffusion_studio.core.training import TrainProgress, Trainer

CONFIGS = {
    # the bundled default model (resources/models/default)
    "default 16×16×1": UNetConfig(16, 1, 1, 32, (1, 2, 2), 2, (8,)),
    # Ho et al.'s CIFAR-10 network: 35.7M parameters
    "CIFAR 32×32×3": UNetConfig(32, 3, 3, 128, (1, 2, 2, 2), 2, (16,)),
}
BATCH = {"cpu": {"default 16×16×1": 64, "CIFAR 32×32×3": 8}, "cuda": {"default 16×16×1": 512, "CIFAR 32×32×3": 256}}
GPU_WORK = ("kernel", "gpu_memcpy", "gpu_memset")
"""The profiler's activities that keep a GPU busy (not its annotations of CPU ranges)."""
PROFILED_REPORTS = 3
"""Reports (of report_interval steps each) over which the GPU's busy share is measured."""


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def busy_share(run: Callable[[], None], device_type: DeviceType = DeviceType.CUDA,
               activities: tuple[str, ...] = GPU_WORK) -> float:
    """The share of ``run``'s wall time in which the device was at work: the union of the profiler's
    events of those activities on that device, over the time from start to finish (NaN: none seen)."""
    profiled = ProfilerActivity.CUDA if device_type == DeviceType.CUDA else ProfilerActivity.CPU
    with profile(activities=[profiled]) as prof:
        started = time.perf_counter()
        run()
        wall_us = (time.perf_counter() - started) * 1e6
    spans = sorted((e.time_range.start, e.time_range.end) for e in prof.events()
                   if e.device_type == device_type and e.activity_type in activities)
    busy, reach = 0.0, -math.inf
    for start, end in spans:  # the union's length: each span counts beyond what earlier ones covered
        busy, reach = busy + max(end - max(start, reach), 0.0), max(reach, end)
    return busy / wall_us if spans else math.nan


def train_rate(config: UNetConfig, device: str, batch: int, seconds: float, compile: str) -> tuple[float, float, float | None]:
    """(steady images/s, seconds the first report took beyond the steady rate, GPU busy share or None)."""
    data = torch.rand(256, *sample_shape(config)).mul(2).sub(1).numpy()
    settings = TrainConfig(steps=10**9, batch_size=batch, device=device, compile=compile)
    trainer = Trainer(config, ScheduleConfig(), settings, Dataset("noise", data))
    every = report_interval(trainer.device)
    reports: Iterator[TrainProgress] = iter(trainer.train(report_every=every))
    started = time.perf_counter()
    next(reports)  # compiles, lets cuDNN pick its convolutions
    first = time.perf_counter() - started
    next(reports)
    started, images = time.perf_counter(), 0
    while time.perf_counter() - started < seconds:
        next(reports)
        images += every * batch
    rate = images / (time.perf_counter() - started)

    def profiled() -> None:
        for _ in range(PROFILED_REPORTS):
            next(reports)
        _sync(trainer.device)

    busy = busy_share(profiled) if trainer.device.type == "cuda" else None
    return rate, max(first - every * batch / rate, 0.0), busy


@torch.inference_mode()
def sample_ms(config: UNetConfig, device: str, seconds: float, batch: int = 16) -> float:
    dev = torch.device(device)
    net = build_model(config).to(dev).eval()
    sampler = DDPMSampler(NoiseSchedule(ScheduleConfig()))
    x = torch.randn(batch, *sample_shape(config), device=dev)
    index = torch.full((batch,), 499, device=dev)
    for _ in range(3):
        sampler.step(net(x, index), 500, x)
    _sync(dev)
    started, n = time.perf_counter(), 0
    while time.perf_counter() - started < seconds:
        x = sampler.step(net(x, index), 500, x).prev_sample
        n += 1
    _sync(dev)
    return (time.perf_counter() - started) / n * 1000


def _share(busy: float | None) -> str:
    return "—" if busy is None else f"{busy:.0%}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="all", help="cpu, cuda, or all available (default)")
    parser.add_argument("--seconds", type=float, default=5.0, help="time per measurement")
    parser.add_argument("--batch", type=int, help="the training batch for every configuration (default: per device)")
    parser.add_argument("--no-compile", action="store_true", help="measure eager training only")
    args = parser.parse_args()
    devices = [d for d in available_devices() if d in ("cpu", "cuda")] if args.device == "all" else [args.device]
    name = torch.cuda.get_device_name() if "cuda" in devices else ""
    print(f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads" + (f", GPU: {name}" if name else ""))
    print(f"{'configuration':<18} {'device':<6} {'params':>7} {'batch':>5} | {'eager img/s':>11} {'GPU busy':>8} | "
          f"{'compiled img/s':>14} {'GPU busy':>8} {'compile s':>9} | {'sample ms/step (16)':>19}")
    for label, config in CONFIGS.items():
        params = count_parameters(build_model(config))
        for device in devices:
            batch = args.batch or BATCH["cuda" if device == "cuda" else "cpu"][label]
            eager, _, eager_busy = train_rate(config, device, batch, args.seconds, "off")
            compiled, compile_s, compiled_busy = (None, None, None) if args.no_compile else train_rate(
                config, device, batch, args.seconds, "on")
            ms = sample_ms(config, device, args.seconds)
            compiled_columns = (f"{'—':>14} {'—':>8} {'—':>9}" if compiled is None else
                                f"{compiled:>14.1f} {_share(compiled_busy):>8} {compile_s:>9.1f}")
            print(f"{label:<18} {device:<6} {params / 1e6:>6.1f}M {batch:>5} | {eager:>11.1f} {_share(eager_busy):>8} | "
                  f"{compiled_columns} | {ms:>19.2f}", flush=True)


if __name__ == "__main__":
    main()
