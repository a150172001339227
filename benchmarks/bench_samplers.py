"""Samplers compared: quality per network call on a 2-D model, and seconds per sample on the bundled one.

    python benchmarks/bench_samplers.py [--model FOLDER] [--train-steps 4000] [--device cpu]

Quality: a Swiss-roll MLP (trained here unless --model names one) samples 2,000 points from one
x_T with each sampler; the table gives NFE and the sliced Wasserstein distance to the data
(lower is closer; N(0, I) itself is printed for scale). The question it answers: is
DPM-Solver++(2M) at 20 calls at least as close as DDIM at 50?

Speed: the bundled digits U-Net, --num samples at once, milliseconds per sample for each
sampler at its usual step count, on the chosen device (the best of --repeats runs).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

QUALITY_RUNS = "ddpm;ddim:steps=50;ddim:steps=20;dpmpp-2m:steps=20;dpmpp-2m:steps=10;euler:steps=20;heun:steps=10;euler-a:steps=50"
SPEED_RUNS = "ddpm;ddim:steps=50;euler:steps=50;euler-a:steps=50;heun:steps=30;dpmpp-2m:steps=20"


def swiss_roll_model(steps: int, device: str) -> Path:
    from diffusion_studio.core.checkpoint import save_checkpoint
    from diffusion_studio.core.data.datasets import load_toy
    from diffusion_studio.core.models.config import MLPConfig
    from diffusion_studio.core.schedules import ScheduleConfig
    from diffusion_studio.core.train_config import TrainConfig
    from diffusion_studio.core.training import Trainer

    config = TrainConfig(data="swiss_roll", steps=steps, batch_size=512, learning_rate=1e-3, warmup_steps=200, device=device)
    trainer = Trainer(MLPConfig(hidden=128, num_layers=3), ScheduleConfig("linear", 1000), config, load_toy("swiss_roll"))
    started = time.perf_counter()
    for _ in trainer.train(report_every=steps):
        pass
    print(f"trained a Swiss-roll MLP for {steps} steps in {time.perf_counter() - started:.0f} s")
    return save_checkpoint(Path(tempfile.mkdtemp()) / "swiss_roll", trainer.checkpoint())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, help="a Swiss-roll checkpoint (default: train one here)")
    parser.add_argument("--train-steps", type=int, default=4000)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--num", type=int, default=16, help="samples drawn at once in the speed runs")
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()

    import numpy as np

    from diffusion_studio.core.compare import compare_items, measure, parse_runs, sliced_wasserstein
    from diffusion_studio.core.control import drain
    from diffusion_studio.core.data.datasets import load_toy
    from diffusion_studio.core.loaded_model import open_model
    from diffusion_studio.core.sample_config import SampleConfig

    model = open_model(args.model or swiss_roll_model(args.train_steps, args.device), args.device)
    data = load_toy("swiss_roll").data
    runs = measure(drain(compare_items(model, parse_runs(QUALITY_RUNS, SampleConfig(num=2000, seed=0)), args.device)), data)
    noise = sliced_wasserstein(np.random.default_rng(0).standard_normal((2000, 2)), data)
    floor = sliced_wasserstein(data[:2000], data[-2000:])  # two draws of the data itself: the estimate's own noise
    print(f"\nQuality per NFE on the Swiss roll ({model.schedule_config.name}, T = {model.schedule_config.timesteps}), "
          "sliced W2 to the data:")
    width = max(len(r.label) for r in runs)
    for r in sorted(runs, key=lambda r: r.nfe):
        print(f"  {r.label.ljust(width)}  {r.nfe:>5} NFE  {r.distance:.4f}")
    print(f"  {'N(0, I), for scale'.ljust(width)}            {noise:.4f}")
    print(f"  {'another 2,000 data points'.ljust(width)}            {floor:.4f}   (the floor: sampling noise of the estimate)")
    by_label = {r.label: r.distance for r in runs}
    dpm, ddim = by_label["DPM-Solver++(2M) 20 steps"], by_label["DDIM 50 steps"]
    print(f"  DPM-Solver++(2M) at 20 NFE {'is' if dpm <= ddim else 'is NOT'} at least as close as DDIM at 50 "
          f"({dpm:.4f} vs {ddim:.4f})")

    digits = open_model("default", args.device)
    print(f"\nMilliseconds per sample, bundled digits U-Net, {args.num} samples at once, {args.device}:")
    configs = parse_runs(SPEED_RUNS, SampleConfig(num=args.num, seed=0, record_every=10_000))
    best: dict[str, tuple[float, int]] = {}
    for _ in range(args.repeats):
        for r in drain(compare_items(digits, configs, args.device)):
            if r.label not in best or r.seconds < best[r.label][0]:
                best[r.label] = (r.seconds, r.nfe)
    width = max(map(len, best))
    for label, (seconds, nfe) in best.items():
        print(f"  {label.ljust(width)}  {nfe:>5} NFE  {seconds / args.num * 1000:8.2f} ms/sample")


if __name__ == "__main__":
    main()
