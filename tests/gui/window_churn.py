"""Open and close several windows, then load torch and the bundled model on a worker and sample.

    python window_churn.py FOLDER

The closed windows leave Qt objects in reference cycles; the model load and the sampling run
allocate on worker threads. Were garbage collected there, Shiboken would delete those widgets on
the worker, which could deadlock with the UI thread (issue 16.6). Prints what happened as JSON and
exits 0; a hang is ended by the caller's timeout.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtCore import QSettings, QTimer  # noqa: E402

WINDOWS = 4


def main(folder: Path) -> int:
    from diffusion_studio.gui.app import application
    from diffusion_studio.gui.main_window import MainWindow
    from diffusion_studio.gui.preferences import Preferences

    app = application()
    settings = QSettings(str(folder / "settings.ini"), QSettings.Format.IniFormat)
    for _ in range(WINDOWS):
        window = MainWindow(Preferences(settings))
        window.show()
        app.processEvents()
        window.close()
        window.deleteLater()
    torch_before = "torch" in sys.modules
    window = MainWindow(Preferences(settings))
    window.show()
    panel = window.sampling
    samples = []

    def sample() -> None:
        panel.settings.run_form.set_values({"steps": 5, "num": 4})
        panel.run()

    def check() -> None:
        if panel.session.final is not None and not panel.running:
            samples.append(panel.session.final.shape)
            window.close()
            app.quit()

    timer = QTimer()
    timer.timeout.connect(check)
    timer.start(20)
    window.tabs.setCurrentWidget(panel)
    window.open_model("default", then=sample)
    app.exec()
    print(json.dumps({"torch_before": torch_before, "samples": [list(s) for s in samples]}))
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1])))
