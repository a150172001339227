"""The app's panels at 1280×800 and 1024×600, as docs/screens/<panel>-<width>x<height>.png.

    python docs/screenshots.py [--only forward,sampling] [--out docs/screens]

Each scene opens the real window on a settings file of its own (never the user's), puts one
panel in a state worth seeing (a run finished, a timeline scrubbed), and grabs the window at
each size. Runs on Qt's offscreen platform unless QT_QPA_PLATFORM says otherwise. Training and
the comparison run on the CPU: the whole set takes a few minutes.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from PySide6.QtCore import QSettings  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

SIZES = ((1280, 800), (1024, 600))


def wait(app: QApplication, done: Callable[[], bool], timeout: float = 600.0) -> None:
    """Let the event loop run until ``done()`` (a worker's result arrives through it)."""
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            raise TimeoutError("the scene did not settle")
        app.processEvents()
        time.sleep(0.02)


def settle(app: QApplication, seconds: float = 0.5) -> None:
    """Let the event loop run a while (layouts follow a resize over several turns)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        app.processEvents()
        time.sleep(0.02)


def choose(combo, value: str) -> None:
    combo.setCurrentIndex(combo.findData(value))
    combo.activated.emit(combo.currentIndex())


def forward(window, app) -> None:
    window.forward.t_spin.setValue(250)


def schedules(window, app) -> None:
    window.schedules.bulk.setChecked(True)
    window.state.set_t(400)


def training_before(window, app) -> None:
    """The Training panel as a first launch shows it: nothing trained yet."""


def training(window, app) -> None:
    panel = window.training
    choose(panel.data, "two_moons")
    panel.train_form.set_values({"steps": 1500})
    panel.preview_every.setValue(500)
    panel.runs_folder.setText(tempfile.mkdtemp())
    panel.start()
    wait(app, lambda: not panel.running)


def sampling_points(window, app) -> None:
    """Train on the two moons (as the training scene does), open the result, sample 1,000 points."""
    training(window, app)
    panel = window.sampling
    window.training.sample_button.click()
    wait(app, lambda: window.state.model is not None and window.tabs.currentWidget() is panel)
    choose(panel.settings.sampler_form["sampler"].widget, "ddpm")
    panel.run()
    wait(app, lambda: not panel.running)
    panel.timeline.slider.setValue(int(panel.timeline.slider.maximum() * 0.9))


def sample_digits(window, app, runs: list[tuple[str, int]]) -> None:
    """The bundled model opened; one run, or a comparison of several from one x_T."""
    panel = window.sampling
    open_default(window, app)
    for sampler, steps in runs:
        choose(panel.settings.sampler_form["sampler"].widget, sampler)
        panel.settings.run_form.set_values({"steps": steps, "num": 16, "seed": 0})
        if len(runs) > 1:
            panel.add_run()
    panel.compare() if len(runs) > 1 else panel.run()
    wait(app, lambda: not panel.running)
    panel.timeline.slider.setValue(panel.timeline.slider.maximum() // 2)


def sampling(window, app) -> None:
    sample_digits(window, app, [("ddim", 50)])


def comparison(window, app) -> None:
    sample_digits(window, app, [("ddim", 10), ("dpmpp-2m", 10), ("euler-a", 20), ("ddpm", 50)])


def open_default(window, app) -> None:
    """The bundled model opened (and any model load the window began on its own settled)."""
    opened = []
    window.open_model("default", then=lambda: opened.append(True))
    wait(app, lambda: bool(opened))
    settle(app, 1.0)


def inpainting(window, app) -> None:
    """A band across a held-out digit, filled by DDPM in 250 steps."""
    panel = window.inpainting
    open_default(window, app)
    wait(app, lambda: panel.session.image is not None)
    panel.session.paint((0.0, 8.0), 2.0, start=(15.0, 8.0))
    panel.settings.run_form.set_values({"steps": 250})
    panel.run()
    wait(app, lambda: not panel.running)


def your_image(window, app) -> None:
    """A held-out digit at t = 250, denoised from x_t (SDEdit) and inverted with DDIM."""
    panel = window.round_trip
    open_default(window, app)
    wait(app, lambda: panel.session.errors is not None)
    for action in (panel.denoise, panel.invert):
        wait(app, lambda: not panel.session.running)
        action()
        settle(app)
    wait(app, lambda: not panel.session.running)


def bound(window, app) -> None:
    """The bound of the bundled model on 32 held-out digits."""
    panel = window.bound
    open_default(window, app)
    panel.measure()
    wait(app, lambda: not panel.session.running)


def lab(window, app) -> None:
    panel = window.lab
    choose(panel.data_choice, "eight_gaussians")
    panel.exact.setChecked(True)
    panel.run()
    wait(app, lambda: panel.session.runs is not None and not panel.busy)
    panel.timeline.slider.setValue(int(panel.timeline.slider.maximum() * 0.8))


SCENES = {"forward": forward, "schedules": schedules, "training-before": training_before, "training": training,
          "sampling": sampling, "sampling-points": sampling_points, "comparison": comparison, "inpainting": inpainting,
          "your-image": your_image, "bound": bound, "lab": lab}
TABS = {"training-before": "training", "sampling-points": "training", "comparison": "sampling",
        "your-image": "round_trip"}  # a scene's first tab, if not its name


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default=",".join(SCENES), help="scenes, comma-separated: " + ", ".join(SCENES))
    parser.add_argument("--out", type=Path, default=Path(__file__).with_name("screens"))
    args = parser.parse_args()

    from diffusion_studio.gui.app import application
    from diffusion_studio.gui.main_window import MainWindow
    from diffusion_studio.gui.preferences import Preferences

    app = application()
    args.out.mkdir(parents=True, exist_ok=True)
    for name in args.only.split(","):
        settings = QSettings(str(Path(tempfile.mkdtemp()) / "settings.ini"), QSettings.Format.IniFormat)
        window = MainWindow(Preferences(settings))
        window.resize(*SIZES[0])
        window.show()
        window.tabs.setCurrentWidget(getattr(window, TABS.get(name, name)))
        settle(app)
        started = time.monotonic()
        SCENES[name](window, app)
        for width, height in SIZES:
            window.resize(width, height)
            settle(app)
            path = args.out / f"{name}-{width}x{height}.png"
            window.grab().save(str(path))
            print(f"{path}  ({time.monotonic() - started:.0f} s)")
        window.close()


if __name__ == "__main__":
    main()
