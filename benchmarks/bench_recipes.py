"""The 2-D recipes measured: train each bundled set with its full recipe, then sample and compare with fresh data.

    python benchmarks/bench_recipes.py [--num 50000] [--threads 2] [--sets swiss_roll,two_moons]

For each bundled 2-D set: train with core.recipes.recipe_for(set), as `diffusion-studio train --data
SET` with no flags does, on the CPU with --threads threads; then draw --num samples with the app's
default sampler for 2-D models (DDPM over all T steps) and with DDIM in 20 steps (the training
previews'), and measure the sliced Wasserstein distance (core.compare) to --num FRESH points of the
set (another seed than the training points). The ratio divides it by the distance N(0, I) scores.
The "floor" is the ratio of another --num fresh points: the estimator's own noise, which no model
beats. With a few thousand points that floor is high for the multi-modal sets (SW_2 weighs the
share of points in each mode), so the default is 50,000.

Training seconds are given as wall time and as the process's CPU time divided by the threads: on
a shared machine the wall time is inflated by other work, the CPU time much less.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

FRESH_SEED, FLOOR_SEED, SAMPLE_SEED = 1, 2, 3
"""Seeds of the fresh points compared with, of the points that give the floor, and of the sampling."""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--num", type=int, default=50_000, help="samples drawn, and fresh points compared with")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--sets", default="swiss_roll,two_moons,eight_gaussians,checkerboard")
    args = parser.parse_args()

    import numpy as np
    import torch

    from diffusion_studio.core.checkpoint import save_checkpoint
    from diffusion_studio.core.compare import noise_ratio, sliced_wasserstein
    from diffusion_studio.core.data.datasets import load_toy
    from diffusion_studio.core.loaded_model import open_model
    from diffusion_studio.core.recipes import recipe_for
    from diffusion_studio.core.runs import new_run
    from diffusion_studio.core.sample_config import SampleConfig
    from diffusion_studio.core.sampling import SamplingRun

    torch.set_num_threads(args.threads)
    folder = Path(tempfile.mkdtemp())
    print(f"torch {torch.__version__}, {args.threads} threads, {args.num:,} samples and fresh points per set")
    header = ("data", "steps", "train s (wall)", "train s (CPU/threads)", "SWD", "noise SWD", "ratio", "DDIM-20 ratio",
              "floor")
    print("| " + " | ".join(header) + " |\n|" + "---|" * len(header))
    for name in args.sets.split(","):
        recipe = recipe_for(name)
        trainer = new_run(recipe.train_config(data=name, device="cpu"), recipe.schedule, recipe.size)
        wall, cpu = time.perf_counter(), time.process_time()
        for _ in trainer.train(report_every=trainer.config.steps):
            pass
        wall, cpu = time.perf_counter() - wall, (time.process_time() - cpu) / args.threads
        model = open_model(save_checkpoint(folder / name, trainer.checkpoint()))
        fresh = load_toy(name, args.num, seed=FRESH_SEED).data

        def samples(model, **settings) -> np.ndarray:
            run = SamplingRun(model, SampleConfig(num=args.num, seed=SAMPLE_SEED, **settings))
            last = None
            for last in run.steps():  # noqa: B007 (kept: the last step)
                pass
            return last.x_prev.numpy()

        swd = sliced_wasserstein(samples(model, sampler="ddpm"), fresh)
        noise = sliced_wasserstein(np.random.default_rng(0).standard_normal((args.num, 2)), fresh)  # as noise_ratio draws it
        ddim = noise_ratio(samples(model, sampler="ddim", steps=20), fresh)
        floor = noise_ratio(load_toy(name, args.num, seed=FLOOR_SEED).data, fresh)
        print(f"| {name} | {trainer.config.steps:,} | {wall:.1f} | {cpu:.1f} | {swd:.4f} | {noise:.3f} | {swd / noise:.3f} "
              f"| {ddim:.3f} | {floor:.3f} |", flush=True)


if __name__ == "__main__":
    main()
