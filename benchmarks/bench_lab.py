"""The 2-D lab's training: what live previews cost, and the cloud forming as a GIF.

Trains the lab's recipe on a bundled 2-D set twice from the same seed, once with a preview cloud
every LAB_PREVIEW_EVERY steps (as the lab shows them) and once without, and prints the seconds of
each and the previews' share. With --gif, writes the previews as an animation over the data.
Run: python benchmarks/bench_lab.py [--data swiss_roll] [--steps N] [--gif docs/cloud-forming.gif]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from diffusion_studio.app.jobs import drive
from diffusion_studio.app.lab import LAB_PREVIEW_EVERY, LabSession
from diffusion_studio.app.training import TrainingSession
from diffusion_studio.core.export import label_frame, reference_points, save_gif, scatter_frame


def train(request) -> tuple[float, list[tuple[int, np.ndarray]]]:
    """Seconds to train the request, and its previews (step, points)."""
    session, previews = TrainingSession(), []
    session.progressed.connect(lambda u: u.preview is not None and previews.append((u.preview_step, u.preview)))
    job = session.start(request)
    started = time.perf_counter()
    session.on_finished(drive(job, session.on_update, 0.1))
    return time.perf_counter() - started, previews


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="swiss_roll")
    parser.add_argument("--steps", type=int, help="instead of the recipe's")
    parser.add_argument("--gif", type=Path, help="write the cloud forming here")
    args = parser.parse_args()
    lab = LabSession()
    lab.set_data(args.data)
    with tempfile.TemporaryDirectory() as folder:
        request = lab.training_request(Path(folder), args.steps)
        bare, _ = train(replace(request, output=Path(folder) / "bare", preview_every=0))
        live, previews = train(replace(request, output=Path(folder) / "live"))
    steps = request.config.steps
    print(f"{args.data}: {steps:,} steps, batch {request.config.batch_size}, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads")
    print("| run | seconds | steps/s |\n|---|---|---|")
    print(f"| no previews | {bare:.1f} | {steps / bare:.0f} |")
    print(f"| a preview every {LAB_PREVIEW_EVERY} steps ({len(previews)} previews) | {live:.1f} | {steps / live:.0f} |")
    print(f"previews cost {100 * (live / bare - 1):+.1f} % of the training time")
    if args.gif:
        data = reference_points(lab.data)
        frames = [label_frame(scatter_frame(points, 360, data), f"{lab.recipe().label}: EMA samples at step {step:,}")
                  for step, points in previews]
        save_gif(frames + frames[-1:] * 6, args.gif, fps=4)
        print(f"wrote {args.gif} ({len(frames)} frames)")


if __name__ == "__main__":
    main()
