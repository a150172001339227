"""The app's responsiveness: time to window, and the forward panel's t slider on a 512×512 RGB image.

    python benchmarks/bench_gui.py [--launches 5] [--steps 200]

Time to window: from starting a fresh Python process to the window's first event-loop turn after
show() (it is painted by then), median of several launches; also whether torch had been loaded.
Slider: milliseconds per step of t, split into the closed form alone (pixels from x_0 and ε), the
panel's whole update (pixels, histogram, read-outs), and the update plus the repaint of the views.
The reference is pyqtgraph alone: setImage of a fixed 512×512 RGB uint8 frame plus the repaint.
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

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

LAUNCH = """
import json, sys, time
from PySide6.QtCore import QTimer
from diffusion_studio.gui.app import application
from diffusion_studio.gui.main_window import MainWindow
app = application()
window = MainWindow()
window.show()
def shown():
    print(json.dumps({"at": time.monotonic(), "torch": "torch" in sys.modules}))
    app.quit()
QTimer.singleShot(0, shown)
app.exec()
"""


def time_to_window(launches: int) -> tuple[float, bool]:
    """Median seconds from spawning the process to the shown window; whether torch was loaded."""
    env = {**os.environ, "XDG_CONFIG_HOME": tempfile.mkdtemp()}  # a first launch: no saved settings
    times, torch_loaded = [], False
    for _ in range(launches):
        start = time.monotonic()
        done = subprocess.run([sys.executable, "-c", LAUNCH], capture_output=True, text=True, env=env, check=True)
        report = json.loads(done.stdout.strip().splitlines()[-1])
        times.append(report["at"] - start)
        torch_loaded |= report["torch"]
    return statistics.median(times), torch_loaded


def per_step_ms(action, steps: int) -> float:
    start = time.perf_counter()
    for i in range(steps):
        action(i)
    return (time.perf_counter() - start) / steps * 1e3


def slider(steps: int) -> dict[str, float]:
    import numpy as np
    from PySide6.QtCore import QSettings

    from diffusion_studio.gui.app import application
    from diffusion_studio.gui.imaging import ClosedFormRenderer, show_pixels
    from diffusion_studio.gui.main_window import MainWindow
    from diffusion_studio.gui.preferences import Preferences

    application()
    settings = QSettings(os.path.join(tempfile.mkdtemp(), "bench.ini"), QSettings.Format.IniFormat)
    window = MainWindow(Preferences(settings))
    window.resize(1400, 900)
    window.show()
    panel = window.forward
    assert panel.session.images[0].x0.shape == (512, 512, 3), "the bundled sample is 512×512 RGB"
    views = panel.views
    schedule = window.state.schedule
    ts = np.resize(np.arange(1, schedule.timesteps + 1, 7), steps)
    renderer = ClosedFormRenderer(panel.session.x0, panel.session.eps)  # what the panel paints x_t with

    def closed_form(i: int) -> None:
        t = ts[i]
        renderer.render(schedule.sqrt_alpha_bars[t], schedule.sqrt_one_minus_alpha_bars[t])

    def update(i: int) -> None:
        panel.t_slider.setValue(int(ts[i]))

    def update_and_paint(i: int) -> None:
        panel.t_slider.setValue(int(ts[i]))
        views.grab()  # paints the views into a pixmap: the full render path, on any platform

    frame = renderer.render(0.5, 0.5).copy()
    item = panel.images_items["xt"]

    def pyqtgraph_only(i: int) -> None:
        show_pixels(item, frame)
        views.grab()  # paints the views into a pixmap: the full render path, on any platform

    for action in (update_and_paint, pyqtgraph_only):  # warm up caches and the paint path
        per_step_ms(action, 10)
    figures = {
        "closed form only": per_step_ms(closed_form, steps),
        "panel update (pixels, histogram, read-outs)": per_step_ms(update, steps),
        "panel update + paint": per_step_ms(update_and_paint, steps),
        "pyqtgraph alone: setImage + paint": per_step_ms(pyqtgraph_only, steps),
    }
    window.close()
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--launches", type=int, default=5)
    parser.add_argument("--steps", type=int, default=200)
    args = parser.parse_args()
    seconds, torch_loaded = time_to_window(args.launches)
    print(f"time to window: {seconds:.2f} s (median of {args.launches}; torch loaded by then: {'yes' if torch_loaded else 'no'})")
    print(f"t slider on a 512×512 RGB image ({os.environ['QT_QPA_PLATFORM']} platform), ms per step:")
    for name, ms in slider(args.steps).items():
        print(f"  {name:46s} {ms:6.2f}")


if __name__ == "__main__":
    main()
