"""The bundled model on held-out digits: its guesses over t (round trip) and DDIM inversion.

Round trip: for a few held-out digits, MSE(x̂_0, x_0) and MSE(ε̂, ε) at every t = 1…T (one ε per
digit), with their rank correlation against t and the share of consecutive t where the x̂_0 error
rises. Inversion: for several step counts, invert-then-sample's mean RMS error over the 179
held-out digits and the inverted noise's mean and standard deviation, with the seconds taken.
Run: python benchmarks/bench_insight.py [--device cpu] [--steps 10,20,50,100] [--digits 5]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from diffusion_studio.core.control import drain
from diffusion_studio.core.data.datasets import evaluation_set
from diffusion_studio.core.devices import resolve_device
from diffusion_studio.core.inversion import invert
from diffusion_studio.core.loaded_model import open_model
from diffusion_studio.core.round_trip import errors_by_t
from diffusion_studio.core.sample_config import SampleConfig


def rank_correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman's ρ: the correlation of the ranks."""
    return float(np.corrcoef(np.argsort(np.argsort(a)), np.argsort(np.argsort(b)))[0, 1])


def round_trips(model, x0: torch.Tensor, digits: int) -> None:
    print(f"\nRound trip, {digits} held-out digits, one ε each")
    print("| digit | MSE(x̂_0) t = 1 | t = T/4 | t = T | ρ(t, MSE x̂_0) | rising steps | MSE(ε̂) t = 1 | t = T | ρ(t, MSE ε̂) |")
    print("|---|---|---|---|---|---|---|---|---|")
    for i in range(digits):
        noise = torch.randn(x0[i:i + 1].shape, generator=torch.Generator().manual_seed(i)).to(x0.device)
        errors = drain(errors_by_t(model, x0[i:i + 1], noise))
        quarter = len(errors.t) // 4 - 1
        print(f"| {i} | {errors.x0[0]:.1e} | {errors.x0[quarter]:.3f} | {errors.x0[-1]:.2f} "
              f"| {rank_correlation(errors.t, errors.x0):.3f} | {np.mean(np.diff(errors.x0) > 0):.0%} "
              f"| {errors.eps[0]:.3f} | {errors.eps[-1]:.1e} | {rank_correlation(errors.t, errors.eps):.3f} |")


def inversions(model, x0: torch.Tensor, steps: list[int], device) -> None:
    print(f"\nDDIM inversion and back, {len(x0)} held-out digits")
    print("| steps | RMS error | gray levels | x_T mean | x_T std | seconds |")
    print("|---|---|---|---|---|---|")
    for k in steps:
        started = time.perf_counter()
        inversion = drain(invert(model, x0, SampleConfig(sampler="ddim", steps=k), device))
        seconds = time.perf_counter() - started
        error, noise = float(inversion.rms_error().mean()), inversion.noise
        print(f"| {k} | {error:.4f} | {error * 127.5:.2f} | {float(noise.mean()):+.3f} | {float(noise.std()):.3f} "
              f"| {seconds:.1f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto")
    parser.add_argument("--steps", default="10,20,50,100", help="inversion step counts, comma separated")
    parser.add_argument("--digits", type=int, default=5, help="held-out digits for the round trip")
    args = parser.parse_args()
    device = resolve_device(args.device)
    model = open_model("default", device)
    channels, size, _ = model.sample_shape
    x0 = torch.from_numpy(evaluation_set("digits", size, channels).data).to(device)
    print(f"bundled model, held-out digits, {device}, torch {torch.__version__}")
    round_trips(model, x0, args.digits)
    inversions(model, x0, [int(k) for k in args.steps.split(",")], device)


if __name__ == "__main__":
    main()
