"""The sampling panel's costs: scrubbing, GIF export, and what recording adds to the sampler.

    python benchmarks/bench_sampling.py [--steps 200]

Scrub: milliseconds to show one recorded frame (x_t, x̂_0, ε̂ of 16 samples) and paint the views.
GIF: seconds to write 100 frames of 256×256 RGB with the per-frame quantization fast path.
Sampling: a DDPM run of the bundled model (16 samples) three ways, the best of several runs of
each: the number of network calls times one forward pass; the bare sampling loop (network and
sampler step); the panel's worker (the same loop, recording every step and making previews).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=200, help="DDPM steps for the recording figure")
    args = parser.parse_args()

    import numpy as np
    import torch
    from PySide6.QtCore import QSettings

    from diffusion_studio.core.loaded_model import open_model
    from diffusion_studio.core.export import save_gif
    from diffusion_studio.core.sample_config import SampleConfig
    from diffusion_studio.core.sampling import SamplingRun
    from diffusion_studio.gui.app import application
    from diffusion_studio.gui.main_window import MainWindow
    from diffusion_studio.gui.preferences import Preferences
    from diffusion_studio.app.sampling import SamplingSession
    from diffusion_studio.gui.sampling_panel import PREVIEW_INTERVAL_S
    from diffusion_studio.gui.tasks import GeneratorWorker

    torch.set_num_threads(os.cpu_count() or 1)
    model = open_model("default")
    config = SampleConfig(sampler="ddpm", steps=args.steps, num=16, seed=0)

    # one forward pass of the network on the batch, median of many
    x = torch.randn(16, *model.sample_shape)
    index = torch.full((16,), 500, dtype=torch.long)
    times = []
    with torch.inference_mode():
        for _ in range(30):
            start = time.perf_counter()
            model.network(x, index)
            times.append(time.perf_counter() - start)
    forward = min(times[5:])  # the best of each, so that machine noise does not favour either side

    def best_of(action, runs: int = 3) -> float:
        walls = []
        for _ in range(runs):
            start = time.perf_counter()
            action()
            walls.append(time.perf_counter() - start)
        return min(walls)

    # the bare loop (network + sampler step), then the panel's GeneratorWorker over a SamplingSession's Job (the same, recording every
    # step and making previews), both on this thread
    bare = best_of(lambda: sum(1 for _ in SamplingRun(model, config).steps()))
    results = []

    def worker_run() -> None:
        worker = GeneratorWorker(SamplingSession().start(model, config), PREVIEW_INTERVAL_S)
        worker.finished.connect(results.append)
        worker.run()

    wall = best_of(worker_run)
    ideal = args.steps * forward
    print(f"sampling {args.steps} DDPM steps of 16 samples: {args.steps} × one forward pass ({forward * 1e3:.1f} ms) = "
          f"{ideal:.2f} s; bare loop {bare:.2f} s; the panel's worker {wall:.2f} s")
    print(f"  recording and previews add {100 * (wall / bare - 1):.1f} % to the bare loop")

    # scrubbing the recorded trajectory in the panel
    application()
    window = MainWindow(Preferences(QSettings(os.path.join(tempfile.mkdtemp(), "b.ini"), QSettings.Format.IniFormat)))
    window.resize(1280, 800)
    window.show()
    window.state.set_model(model)
    panel = window.sampling
    window.tabs.setCurrentWidget(panel)
    panel.session.set_trajectories([results[0].trajectory])
    frames = len(panel.session.trajectory)
    start = time.perf_counter()
    for k in range(frames):
        panel.timeline.slider.setValue(frames - 1 - k)
        panel.image_views.grab()
    print(f"scrub: {(time.perf_counter() - start) / frames * 1e3:.2f} ms per frame (show + paint, {frames} frames)")
    window.close()

    # GIF export
    rng = np.random.default_rng(0)
    base = rng.integers(0, 256, (256, 256, 3), dtype=np.uint8)
    gif_frames = [np.roll(base, 3 * i, axis=1) for i in range(100)]
    with tempfile.TemporaryDirectory() as folder:
        start = time.perf_counter()
        save_gif(gif_frames, Path(folder) / "b.gif", fps=20)
        print(f"GIF: 100 frames of 256×256 RGB in {time.perf_counter() - start:.2f} s")


if __name__ == "__main__":
    main()
