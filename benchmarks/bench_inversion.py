"""DDIM inversion on the bundled model: how closely invert-then-sample returns the held-out digits.

Prints, for several step counts, the mean RMS reconstruction error over the 179 held-out digits
(in data units of [−1, 1] and in gray levels of 255) and the inverted noise's mean and standard
deviation, with the seconds taken. Run: python benchmarks/bench_inversion.py [--device cpu]
"""

from __future__ import annotations

import argparse
import time

import torch

from diffusion_studio.core.control import drain
from diffusion_studio.core.data.datasets import evaluation_set
from diffusion_studio.core.devices import resolve_device
from diffusion_studio.core.inversion import invert
from diffusion_studio.core.loaded_model import open_model
from diffusion_studio.core.sample_config import SampleConfig


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto")
    parser.add_argument("--steps", default="10,20,50,100", help="step counts, comma separated")
    args = parser.parse_args()
    device = resolve_device(args.device)
    model = open_model("default", device)
    channels, size, _ = model.sample_shape
    x0 = torch.from_numpy(evaluation_set("digits", size, channels).data).to(device)
    print(f"DDIM inversion and back, bundled model, {len(x0)} held-out digits, {device}, torch {torch.__version__}")
    print("| steps | RMS error | gray levels | x_T mean | x_T std | seconds |")
    print("|---|---|---|---|---|---|")
    for steps in map(int, args.steps.split(",")):
        started = time.perf_counter()
        inversion = drain(invert(model, x0, SampleConfig(sampler="ddim", steps=steps), device))
        seconds = time.perf_counter() - started
        error = float(inversion.rms_error().mean())
        noise = inversion.noise
        print(f"| {steps} | {error:.4f} | {error * 127.5:.2f} | {float(noise.mean()):+.3f} | {float(noise.std()):.3f} "
              f"| {seconds:.1f} |")


if __name__ == "__main__":
    main()
