"""Samplers compared: error per network call on 2-D data, and seconds per sample on the bundled model.

    python benchmarks/bench_samplers.py [--num 50000] [--seeds 3] [--train-steps 4000] [--device cpu] [--only quality|speed]

The question (issue 12): is DPM-Solver++(2M) at 20 network calls (NFE) at least as close to the
data as DDIM at 50? Asked on two schedules, Ho et al.'s linear β with T = 1000 (the Swiss-roll model
this bench has always trained: an MLP 128 wide, 4,000 steps) and the 2-D recipe's linear T = 100
(core.recipes: what `diffusion-studio train --data swiss_roll` trains), and measured two ways:

- exact ε: the perfect denoiser of the eight Gaussians (core.drift.MixtureDenoiser), so that a
  sampler's only error is its discretisation. Measured point by point: the RMS distance from each
  sample to where the exact probability-flow ODE carries the same x_T (GaussianMixture.
  probability_flow), which bounds W₂ between the two distributions from above. x̂_0 unclamped.
- trained: a Swiss-roll MLP trained here, sliced W₂ (core.compare) from --num samples to --num
  fresh points of the data (lower is closer), for the runs in TRAINED_RUNS. Its error is the
  network's and the sampler's together; DPM-Solver++ on 50 logSNR steps is nearly where every ODE
  sampler converges with this network. The floor: two draws of --num fresh points (the estimate's
  own noise, which no model beats).

Every figure is a mean ± standard deviation over --seeds seeds, each its own x_T (--exact-num points
for the exact ε) and its own fresh data. A difference between two runs is taken seed by seed, on the
same x_T and data, which cancels most of the estimate's noise.

Speed: the bundled digits U-Net, --num-images samples at once, milliseconds per sample for each
sampler at its usual step count, on the chosen device (the best of --repeats runs).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

QUALITY_RUNS = ("ddim:steps=20;ddim:steps=50;heun:steps=10;dpmpp-2m:steps=10;dpmpp-2m:steps=20;"
                "dpmpp-2m:steps=10,spacing=logsnr;dpmpp-2m:steps=20,spacing=logsnr;dpmpp-2m:steps=50,spacing=logsnr")
"""Every run with the exact ε; the last is nearly the exact ODE (an RMS of 0.003 from it at T = 1000, 0.005 at T = 100)."""
TRAINED_RUNS = ("ddim:steps=20", "ddim:steps=50", "dpmpp-2m:steps=20", "dpmpp-2m:steps=20,spacing=logsnr",
                "dpmpp-2m:steps=50,spacing=logsnr")
"""Those also run with the trained model (each costs --num × NFE network calls a seed)."""
QUESTION = ("dpmpp-2m:steps=20", "dpmpp-2m:steps=20,spacing=logsnr", "dpmpp-2m:steps=50,spacing=logsnr")
"""The runs set against DDIM in 50 steps seed by seed: DPM-Solver++ at 20 NFE with its own spacing and
with logSNR steps, and the nearly exact ODE (on a trained model: where every ODE sampler converges)."""
SPEED_RUNS = "ddpm;ddim:steps=50;euler:steps=50;euler-a:steps=50;heun:steps=30;dpmpp-2m:steps=20"
FRESH_SEED, FLOOR_SEED = 1000, 2000
"""Seed k compares with load_toy(seed=FRESH_SEED + k); its floor draws load_toy(seed=FLOOR_SEED + k)."""


def swiss_roll_model(steps: int, width: int, layers: int, seed: int, device: str) -> Path:
    """The bench's own model: Ho et al.'s linear β, T = 1000, an MLP (by default 128 wide, 3 layers), batch 512, lr 10⁻³."""
    from diffusion_studio.core.data.datasets import load_toy
    from diffusion_studio.core.models.config import MLPConfig
    from diffusion_studio.core.schedules import ScheduleConfig
    from diffusion_studio.core.train_config import TrainConfig
    from diffusion_studio.core.training import Trainer

    config = TrainConfig(data="swiss_roll", steps=steps, batch_size=512, learning_rate=1e-3, warmup_steps=200, device=device,
                         seed=seed)
    network = MLPConfig(hidden=width, num_layers=layers, time_dim=max(32, width // 4))
    return trained(f"linear β, T = 1000, {width} wide, {layers} layers", Trainer(network, ScheduleConfig("linear", 1000), config,
                                                                              load_toy("swiss_roll")))


def recipe_model(seed: int, device: str) -> Path:
    """What `diffusion-studio train --data swiss_roll` trains: the 2-D recipe (core.recipes)."""
    from diffusion_studio.core.recipes import recipe_for
    from diffusion_studio.core.runs import new_run

    recipe = recipe_for("swiss_roll")
    config = recipe.train_config(data="swiss_roll", device=device, seed=seed)
    return trained("the 2-D recipe", new_run(config, recipe.schedule, recipe.size))


def trained(what: str, trainer) -> Path:
    """Run a Trainer to its end and save the model in a temporary folder (its path returned)."""
    from diffusion_studio.core.checkpoint import save_checkpoint

    started = time.perf_counter()
    for _ in trainer.train(report_every=trainer.config.steps):
        pass
    print(f"trained a Swiss-roll MLP ({what}) for {trainer.config.steps:,} steps in {time.perf_counter() - started:.0f} s")
    return save_checkpoint(Path(tempfile.mkdtemp()) / "swiss_roll", trainer.checkpoint())


def sample(model, config, device: str):
    """(x_T, the samples, NFE) of one run: full precision, N×2."""
    from diffusion_studio.core.sampling import SamplingRun

    first = last = None
    for last in SamplingRun(model, config, device).steps():
        first = last if first is None else first
    return first.x_t.double().numpy(), last.x_prev.double().numpy(), last.nfe


def spread(values, sign: str = "") -> str:
    """mean ± standard deviation (the mean alone for one value)."""
    import numpy as np

    mean = f"{np.mean(values):{sign}.4f}"
    return f"{mean} ± {np.std(values, ddof=1):.4f}" if len(values) > 1 else mean


def quality(title: str, model, args) -> None:
    """One schedule's table: every run with the exact ε of the eight Gaussians and with the trained model."""
    from dataclasses import replace

    import numpy as np

    from diffusion_studio.core.compare import parse_runs, sliced_wasserstein
    from diffusion_studio.core.data.datasets import load_toy
    from diffusion_studio.core.drift import MixtureDenoiser
    from diffusion_studio.core.loaded_model import LoadedModel
    from diffusion_studio.core.mixture import EIGHT_GAUSSIANS
    from diffusion_studio.core.sample_config import run_label
    from diffusion_studio.core.schedules import NoiseSchedule, schedule_label

    schedule = NoiseSchedule(model.schedule_config)
    exact = LoadedModel(MixtureDenoiser(EIGHT_GAUSSIANS, schedule), model.schedule_config, "eps", (2,), "exact", "eight_gaussians")
    runs = QUALITY_RUNS.split(";")
    configs = dict(zip(runs, parse_runs(QUALITY_RUNS)))
    errors = {run: [] for run in runs}  # exact ε: RMS to the flow, one per seed
    distances = {run: [] for run in runs}  # trained: sliced W₂ to fresh data, one per seed
    nfe, floor = {}, []
    for seed in range(args.seeds):
        fresh = load_toy("swiss_roll", args.num, seed=FRESH_SEED + seed).data
        floor.append(sliced_wasserstein(load_toy("swiss_roll", args.num, seed=FLOOR_SEED + seed).data, fresh))
        flow = None
        for run, config in configs.items():
            x_T, x_0, nfe[run] = sample(exact, replace(config, num=args.exact_num, seed=seed, record_every=10_000), "cpu")
            if flow is None:  # every run of a seed starts from the same x_T
                flow = EIGHT_GAUSSIANS.probability_flow(x_T, float(schedule.alpha_bars[-1]))
            errors[run].append(float(np.sqrt(((x_0 - flow) ** 2).sum(axis=1).mean())))
            if run in TRAINED_RUNS:
                _, x_0, _ = sample(model, replace(config, num=args.num, seed=seed, record_every=10_000), args.device)
                distances[run].append(sliced_wasserstein(x_0, fresh))

    T = schedule.timesteps
    labels = {run: run_label(config, T) for run, config in configs.items()}
    print(f"\n{title}, {schedule_label(model.schedule_config)}, {args.seeds} seeds: exact ε (eight Gaussians, {args.exact_num:,} "
          f"points) RMS to the exact ODE; trained Swiss roll ({args.num:,} points) sliced W₂ to fresh data")
    width = max(map(len, labels.values())) + 2
    print(f"  {'run'.ljust(width)}  NFE  {'exact ε: RMS to ODE':>20}  {'trained: sliced W₂':>20}")
    for run in sorted(runs, key=lambda r: nfe[r]):
        trained_distance = spread(distances[run]) if distances[run] else "—"
        print(f"  {labels[run].ljust(width)} {nfe[run]:>4}  {spread(errors[run]):>20}  {trained_distance:>20}")
    print(f"  {f'another {args.num:,} data points (floor)'.ljust(width)}       {'':>20}  {spread(floor):>20}")
    ddim = "ddim:steps=50"
    for run in QUESTION:
        parts = []
        for what, values in (("exact ε", errors), ("trained", distances)):
            difference = np.subtract(values[run], values[ddim])
            parts.append(f"{what} {spread(difference, '+')} (closer on {int((difference <= 0).sum())} of {args.seeds} seeds)")
        print(f"  {labels[run]} minus {labels[ddim]}, seed by seed: {'; '.join(parts)}")


def speed(args) -> None:
    from diffusion_studio.core.compare import compare_items, parse_runs
    from diffusion_studio.core.control import drain
    from diffusion_studio.core.loaded_model import open_model
    from diffusion_studio.core.sample_config import SampleConfig

    digits = open_model("default", args.device)
    print(f"\nMilliseconds per sample, bundled digits U-Net, {args.num_images} samples at once, {args.device}:")
    configs = parse_runs(SPEED_RUNS, SampleConfig(num=args.num_images, seed=0, record_every=10_000))
    best: dict[str, tuple[float, int]] = {}
    for _ in range(args.repeats):
        for r in drain(compare_items(digits, configs, args.device)):
            if r.label not in best or r.seconds < best[r.label][0]:
                best[r.label] = (r.seconds, r.nfe)
    width = max(map(len, best))
    for label, (seconds, nfe) in best.items():
        print(f"  {label.ljust(width)}  {nfe:>5} NFE  {seconds / args.num_images * 1000:8.2f} ms/sample")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, action="append",
                        help="a Swiss-roll checkpoint to measure (repeatable; default: train both models here)")
    parser.add_argument("--train-steps", type=int, default=4000, help="training steps of the T = 1000 model")
    parser.add_argument("--train-width", type=int, default=128, help="width of the T = 1000 model's MLP")
    parser.add_argument("--train-layers", type=int, default=3, help="hidden layers of the T = 1000 model's MLP")
    parser.add_argument("--train-seed", type=int, default=0, help="the seed both models are trained with")
    parser.add_argument("--num", type=int, default=50_000, help="samples of the trained model, and fresh points, per seed")
    parser.add_argument("--exact-num", type=int, default=4_000, help="samples with the exact ε per seed")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--num-images", type=int, default=16, help="samples drawn at once in the speed runs")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--only", choices=("quality", "speed"), help="measure one of the two (default: both)")
    args = parser.parse_args()

    import torch

    from diffusion_studio.core.loaded_model import open_model

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, device {args.device}")
    if args.only != "speed":
        started = time.perf_counter()
        models = ([(str(folder), folder) for folder in args.model] if args.model else
                  [("The bench's model", swiss_roll_model(args.train_steps, args.train_width, args.train_layers, args.train_seed,
                                                                args.device)),
                   ("The 2-D recipe", recipe_model(args.train_seed, args.device))])
        for title, folder in models:
            quality(title, open_model(folder, args.device), args)
        print(f"(quality measured in {time.perf_counter() - started:.0f} s)")
    if args.only != "quality":
        speed(args)


if __name__ == "__main__":
    main()
