"""What training in the app costs: the UI's event-loop latency while training, and the app's
training speed against the bare trainer loop that `diffusion-studio train` runs.

    python benchmarks/bench_training_panel.py [--steps 150] [--batch 64] [--rounds 2]

Both run the first-launch settings (the bundled model's recipe: 16×16 digits, the 1.6M-parameter
U-Net, T = 1000) on the same device, without previews or saves in the timed span. Speed counts
the steps between the first and the last progress report, so data loading and network building
are left out of both. The bare loop runs in a child process of its own, as the CLI does: once
torch has computed on one thread, libgomp throttles its spinning threads for the next thread that
computes, which would slow whichever side came second by a third. Latency: a 10 ms QTimer on the UI thread, its lateness over each interval,
while training and while idle. The rounds alternate bare and app; each side keeps its best.
Runs on Qt's offscreen platform unless QT_QPA_PLATFORM says otherwise.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

TICK_MS = 10


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=150)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--bare", action="store_true", help="only the bare loop; print its images/s as JSON")
    args = parser.parse_args()

    from PySide6.QtCore import QElapsedTimer, QSettings, QTimer

    from diffusion_studio.core.models.presets import PRESETS
    from diffusion_studio.core.runs import new_run, report_interval
    from diffusion_studio.core.schedules import ScheduleConfig
    from diffusion_studio.core.train_config import TrainConfig
    from diffusion_studio.gui.app import application
    from diffusion_studio.gui.main_window import MainWindow
    from diffusion_studio.gui.preferences import Preferences

    config = TrainConfig(data="digits", steps=args.steps, batch_size=args.batch, learning_rate=5e-4,
                         warmup_steps=500, device=args.device)
    schedule = ScheduleConfig()

    if args.bare:
        trainer = new_run(config, schedule, PRESETS["small"])
        marks = [(r.step, time.perf_counter()) for r in trainer.train(report_every=report_interval(trainer.device))]
        (first, started), (last, ended) = marks[0], marks[-1]
        print(json.dumps((last - first) * args.batch / (ended - started)))
        return

    def bare() -> float:
        """Images/s of the trainer's own loop, as the CLI runs it: in a process of its own."""
        command = [sys.executable, __file__, "--bare", "--steps", str(args.steps), "--batch", str(args.batch), "--device", args.device]
        return json.loads(subprocess.run(command, capture_output=True, text=True, check=True).stdout)

    app = application()
    folder = Path(tempfile.mkdtemp())
    window = MainWindow(Preferences(QSettings(str(folder / "bench.ini"), QSettings.Format.IniFormat)))
    window.resize(1280, 800)
    window.show()
    panel = window.training
    window.tabs.setCurrentWidget(panel)
    panel.data.setCurrentIndex(panel.data.findData("digits"))
    panel.preset.setCurrentIndex(panel.preset.findData("small"))
    panel.image_size.setValue(16)
    panel.train_form.set_values({"steps": args.steps, "batch_size": args.batch, "learning_rate": 5e-4})
    panel.tuning_form.set_values({"warmup_steps": 500})
    panel.preview_every.setValue(0)
    panel.save_every.setValue(10 * args.steps)
    panel.runs_folder.setText(str(folder / "runs"))

    def measure_latency(until) -> list[tuple[float, float]]:
        """Run the event loop until ``until()``; (when, lateness in ms) of each 10 ms timer tick."""
        ticks, clock = [], QElapsedTimer()
        timer = QTimer()
        timer.setTimerType(timer.timerType().PreciseTimer)

        def tick() -> None:
            ticks.append((time.perf_counter(), max(clock.nsecsElapsed() / 1e6 - TICK_MS, 0.0)))
            clock.restart()
            if until():
                app.quit()

        timer.timeout.connect(tick)
        clock.start()
        timer.start(TICK_MS)
        app.exec()
        timer.stop()
        return ticks[1:]

    def in_app() -> tuple[float, dict[str, list[float]]]:
        """Images/s in the app, and the timer's lateness in three phases: setting up (data,
        network), training (first to last progress report), ending (the last save)."""
        marks = []

        def mark(step: int) -> None:
            marks.append((step, time.perf_counter()))

        panel.stepShown.connect(mark)
        panel.start()
        ticks = measure_latency(lambda: not panel.running)
        panel.stepShown.disconnect(mark)
        (first, started), (last, ended) = marks[0], marks[-1]
        phases = {
            "setting up": [late for when, late in ticks if when <= started],
            "training": [late for when, late in ticks if started < when <= ended],
            "ending": [late for when, late in ticks if when > ended],
        }
        return (last - first) * args.batch / (ended - started), phases

    measure_latency(lambda: panel.train_form["device"].widget.count() > 1)  # the panel has looked for devices (loading torch)
    idle_until = time.perf_counter() + 2.0
    idle = [late for _, late in measure_latency(lambda: time.perf_counter() > idle_until)]
    bare_rates, app_rates, lateness = [], [], {}
    for _ in range(args.rounds):
        bare_rates.append(bare())
        rate, phases = in_app()
        app_rates.append(rate)
        for phase, ticks in phases.items():
            lateness.setdefault(phase, []).extend(ticks)
    window.close()

    def summary(ticks: list[float]) -> str:
        ranked = sorted(ticks)
        return (f"median {statistics.median(ranked):.1f} ms, 99th percentile {ranked[int(0.99 * (len(ranked) - 1))]:.1f} ms, "
                f"worst {ranked[-1]:.1f} ms ({len(ranked)} ticks)")

    best_bare, best_app = max(bare_rates), max(app_rates)
    print(f"training {args.steps} steps of batch {args.batch} (digits 16×16, small U-Net), best of {args.rounds}:")
    print(f"  bare trainer loop: {best_bare:.0f} images/s (rounds: {', '.join(f'{r:.0f}' for r in bare_rates)})")
    print(f"  in the app:        {best_app:.0f} images/s ({100 * (best_app / best_bare - 1):+.1f} % against the bare loop; "
          f"rounds: {', '.join(f'{r:.0f}' for r in app_rates)})")
    print(f"event-loop lateness of a {TICK_MS} ms timer:")
    for phase, ticks in lateness.items():
        print(f"  {phase + ':':12} {summary(ticks)}")
    print(f"  {'idle:':12} {summary(idle)}")


if __name__ == "__main__":
    main()
