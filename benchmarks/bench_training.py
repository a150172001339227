"""Training images/s and sampling ms per step, for the default model and a CIFAR-sized U-Net.

    python benchmarks/bench_training.py [--device cpu|cuda|auto] [--seconds 5]

Prints one row per configuration and device. Training runs the real Trainer (AdamW, EMA,
bf16 autocast on CUDA); sampling times one network call plus one DDPM step on a batch of 16.
"""

from __future__ import annotations

import argparse
import time

import torch

from diffusion_studio.core.data.datasets import Dataset
from diffusion_studio.core.models import build_model, count_parameters
from diffusion_studio.core.models.config import UNetConfig, sample_shape
from diffusion_studio.core.samplers import DDPMSampler
from diffusion_studio.core.schedules import NoiseSchedule, ScheduleConfig
from diffusion_studio.core.train_config import TrainConfig
from diffusion_studio.core.devices import available_devices
from diffusion_studio.core.training import Trainer

CONFIGS = {
    # the bundled default model (resources/models/default)
    "default 16×16×1": UNetConfig(16, 1, 1, 32, (1, 2, 2), 2, (8,)),
    # Ho et al.'s CIFAR-10 network: 35.7M parameters
    "CIFAR 32×32×3": UNetConfig(32, 3, 3, 128, (1, 2, 2, 2), 2, (16,)),
}
BATCH = {"cpu": {"default 16×16×1": 64, "CIFAR 32×32×3": 8}, "cuda": {"default 16×16×1": 128, "CIFAR 32×32×3": 128}}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def train_rate(config: UNetConfig, device: str, batch: int, seconds: float) -> float:
    data = torch.rand(256, *sample_shape(config)).mul(2).sub(1).numpy()
    trainer = Trainer(config, ScheduleConfig(), TrainConfig(steps=10**9, batch_size=batch, device=device), Dataset("noise", data))
    steps = iter(trainer.train(report_every=5))
    next(steps)  # warm-up
    started, images = time.perf_counter(), 0
    while time.perf_counter() - started < seconds:
        images += 5 * batch
        next(steps)
    return images / (time.perf_counter() - started)


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="all", help="cpu, cuda, or all available (default)")
    parser.add_argument("--seconds", type=float, default=5.0, help="time per measurement")
    args = parser.parse_args()
    devices = [d for d in available_devices() if d in ("cpu", "cuda")] if args.device == "all" else [args.device]
    name = torch.cuda.get_device_name() if "cuda" in devices else ""
    print(f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads" + (f", GPU: {name}" if name else ""))
    print(f"{'configuration':<18} {'device':<6} {'params':>8} {'batch':>6} {'train img/s':>12} {'sample ms/step (16)':>20}")
    for label, config in CONFIGS.items():
        params = count_parameters(build_model(config))
        for device in devices:
            batch = BATCH["cuda" if device == "cuda" else "cpu"][label]
            rate = train_rate(config, device, batch, args.seconds)
            ms = sample_ms(config, device, args.seconds)
            print(f"{label:<18} {device:<6} {params / 1e6:>7.1f}M {batch:>6} {rate:>12.1f} {ms:>20.2f}", flush=True)


if __name__ == "__main__":
    main()
