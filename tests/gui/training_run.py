"""Train in the real window, in a process of its own, and print what happened as JSON.

    python training_run.py close FOLDER   close the window mid-run; the worker must stop and save
    python training_run.py flood FOLDER   3,000 steps, every step's update its own signal

Prints each step shown as it is shown (the progress tests/gui/child_process.py watches), then the
JSON. Exits 0 when all went well; an abort (as PySide6 6.12.0 does on Python 3.11 after a few
hundred emits) ends it otherwise, and a hang falls silent.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtCore import QSettings, QTimer  # noqa: E402

from diffusion_studio.core.models.presets import NetworkSize  # noqa: E402
from diffusion_studio.core.schedules import ScheduleConfig  # noqa: E402

TINY = NetworkSize(base_channels=8, channel_mults=(1, 2), num_res_blocks=1, hidden=32, num_layers=1)


def configure(panel, folder: Path, data="swiss_roll", steps=40, preview_every=0, save_every=1000) -> None:
    """Tiny settings on the form: T = 50, a small network, small batches, runs under folder."""
    panel.state.set_schedule_config(ScheduleConfig("linear", 50))
    panel.data.setCurrentIndex(panel.data.findData(data))
    panel.size_form.set_values(TINY)
    panel.image_size.setValue(8)
    panel.train_form.set_values({"steps": steps, "batch_size": 16, "learning_rate": 0.001})
    panel.preview_every.setValue(preview_every)
    panel.save_every.setValue(save_every)
    panel.runs_folder.setText(str(folder / "runs"))


def main(mode: str, folder: Path) -> int:
    from diffusion_studio.core.checkpoint import load_checkpoint
    from diffusion_studio.gui.app import application
    from diffusion_studio.gui.main_window import MainWindow
    from diffusion_studio.gui.preferences import Preferences

    app = application()
    window = MainWindow(Preferences(QSettings(str(folder / "settings.ini"), QSettings.Format.IniFormat)))
    window.show()
    panel = window.training
    flood = mode == "flood"
    configure(panel, folder, steps=3000 if flood else 1_000_000, preview_every=500 if flood else 0)
    updates = []
    panel.stepShown.connect(updates.append)
    panel.stepShown.connect(lambda step: print("step", step, flush=True))
    if flood:
        panel.update_interval = 0.0

    def check() -> None:
        if flood and not panel.running and updates:
            window.close()
            app.quit()
        elif not flood and panel.progress.value() > 50:
            window.close()  # mid-run: stops the worker, which saves
            app.quit()

    timer = QTimer()
    timer.timeout.connect(check)
    timer.start(20)
    panel.start()
    app.exec()
    print(json.dumps({"updates": len(updates), "step": load_checkpoint(panel.session.output).step}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], Path(sys.argv[2])))
